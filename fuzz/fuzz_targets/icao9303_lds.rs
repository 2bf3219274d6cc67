//! The ICAO 9303 parsers on arbitrary chip bytes: BER-TLV, EF.COM, DG1 (MRZ), DG2 (ISO 19794-5
//! face record), DG11/DG12, EF.SOD (CMS SignedData and the LDS security object) with passive
//! authentication, CSCA files, secure messaging objects and command APDUs. No panic on any
//! input; errors are values.
#![no_main]

use icao9303::{apdu, lds, mrz, pa, sm, sod, tlv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tlv::header(data);
    let _ = tlv::parse_all(data);
    let _ = lds::parse_com(data);
    let _ = lds::parse_dg1(data);
    let _ = lds::parse_dg2(data);
    let _ = lds::parse_dg11(data);
    let _ = lds::parse_dg12(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mrz::Mrz::parse(text);
        let _ = mrz::MrzKey::from_mrz_text(text);
    }
    // The same bytes behind the outer tags, so the inner parsers are reached at once.
    let _ = sod::parse_sod(data);
    let _ = sod::parse_sod(&tlv::encode(0x77, data));
    let _ = lds::parse_dg2(&lds::build::dg2(data));
    let _ = lds::parse_dg1(&tlv::encode(0x61, data));
    // Passive authentication of the input as EF.SOD over the input as DG1: three checks always.
    let checks = pa::verify(&tlv::encode(0x77, data), &[(1, data)], None);
    assert_eq!(checks.len(), 3);
    let mut store = pa::CscaStore::default();
    let _ = store.add_bytes(data);
    let _ = apdu::Command::parse(data);
    let _ = apdu::Response::parse(data);
    let cipher = || {
        Box::new(sm::Tdes {
            ks_enc: [1; 16],
            ks_mac: [2; 16],
        })
    };
    let mut reader = sm::SecureMessaging::new(cipher(), &[0; 8]);
    let _ = reader.unprotect(&apdu::Response::new(data.to_vec(), 0x9000));
    let mut card = sm::SecureMessaging::new(cipher(), &[0; 8]);
    let _ = card.unprotect_command(&apdu::Command {
        cla: 0x0C,
        ins: 0xB0,
        p1: 0,
        p2: 0,
        data: data.to_vec(),
        le: None,
    });
});
