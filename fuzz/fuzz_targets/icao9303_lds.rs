//! The ICAO 9303 parsers on arbitrary chip bytes: BER-TLV, EF.COM, DG1 (MRZ), DG2 (ISO 19794-5
//! face record), DG11/DG12, EF.SOD (CMS SignedData and the LDS security object) with passive
//! authentication, CSCA files, secure messaging objects and command APDUs; SecurityInfos
//! (EF.CardAccess, DG14), PACE and chip authentication: the terminal fed arbitrary chip answers,
//! the emulator's chip side fed arbitrary commands, AES secure messaging. No panic on any input; errors are values.
#![no_main]

use icao9303::ca;
use icao9303::cipher::Cipher;
use icao9303::ec::Curve;
use icao9303::pace::{self, Password};
use icao9303::security_infos::{self, KeyAgreement, Mapping, PaceProtocol};
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
    let mut aes = sm::SecureMessaging::new(Cipher::Aes256.sm(&[3; 32], &[4; 32]), &[0; 16]);
    let _ = aes.unprotect(&apdu::Response::new(data.to_vec(), 0x9000));

    // SecurityInfos as EF.CardAccess (31) and DG14 (6E), and the choice of PACE parameters.
    for bytes in [
        data.to_vec(),
        tlv::encode(0x31, data),
        tlv::encode(0x6E, &tlv::encode(0x31, data)),
    ] {
        if let Ok(infos) = security_infos::parse(&bytes) {
            let _ = pace::choose(&infos);
            if let ca::CaOffer::Supported(params) = ca::choose(&infos) {
                // A DG14 key from the input: refused or used, never a panic.
                let mut refuse = |_: &apdu::Command| -> Result<apdu::Response, ()> {
                    Ok(apdu::Response::status(0x6A80))
                };
                let _ = ca::authenticate(&mut refuse, &params, &ca::CaTerminal::default());
            }
        }
    }

    // The PACE terminal against a chip answering with pieces of the input (each piece one
    // response: data ‖ SW), on the curve and cipher the first byte picks.
    let pick = data.first().copied().unwrap_or(0);
    let curve = Curve::ALL[usize::from(pick & 3)];
    let cipher =
        [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256][usize::from(pick >> 2 & 3)];
    let params = pace::PaceParams::new(
        PaceProtocol {
            agreement: KeyAgreement::Ecdh,
            mapping: Mapping::Generic,
            cipher,
        },
        curve,
    );
    let mut pieces = data.get(1..).unwrap_or_default().split(|b| *b == 0xFF);
    let mut transmit = |_: &apdu::Command| -> Result<apdu::Response, ()> {
        let piece = pieces.next().ok_or(())?;
        let mut bytes = piece.to_vec();
        bytes.extend_from_slice(&[0x90, 0x00]);
        apdu::Response::parse(&bytes).map_err(|_| ())
    };
    let key = mrz::MrzKey::new("E12345678", "850315", "330101").unwrap();
    let _ = pace::pace(
        &mut transmit,
        &Password::Mrz(key.clone()),
        &params,
        &pace::PaceTerminal::default(),
    );

    // The chip authentication terminal against the same pieces, for inputs whose second byte
    // is CA (libFuzzer finds the constant): its two scalar multiplications come before any
    // answer is read and cost more than all the parsers together (on every input they cut the
    // runs sevenfold). Its chip side is fed the input as MSE:Set KAT, MSE:Set AT and GENERAL
    // AUTHENTICATE data. One key per curve.
    static KEYS: std::sync::OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        Curve::ALL
            .iter()
            .map(|c| {
                let sk = c.random_scalar();
                let pk = c.mul(&sk, &c.generator(), "G").unwrap();
                (sk, pk)
            })
            .collect()
    });
    let (sk, pk) = keys[usize::from(pick & 3)].clone();
    let ca_params = ca::CaParams {
        cipher,
        curve,
        oid: ca::CaParams::oid_for(cipher),
        key_id: (pick & 0x10 != 0).then_some(u32::from(pick)),
        chip_key: pk,
        inferred: false,
    };
    if data.get(1) == Some(&0xCA) {
        // On P-256, the fastest curve, with a fixed ephemeral key: the answers are the target.
        let (p256_sk, p256_pk) = keys[0].clone();
        let p256 = ca::CaParams {
            curve: Curve::NistP256,
            chip_key: p256_pk,
            ..ca_params.clone()
        };
        let terminal = ca::CaTerminal {
            sk_eph: Some(p256_sk),
        };
        let _ = ca::authenticate(&mut transmit, &p256, &terminal);
    }
    let mut ca_chip = ca::chip::CaChip::new(curve, cipher, ca_params.key_id, sk);
    let _ = ca_chip.set_kat(&apdu::Command::new(0, 0x22, 0x41, 0xA6).with_data(data.to_vec()));
    let _ = ca_chip.set_at(&apdu::Command::new(0, 0x22, 0x41, 0xA4).with_data(data.to_vec()));
    let _ = ca_chip.set_at(
        &apdu::Command::new(0, 0x22, 0x41, 0xA4).with_data(tlv::encode(0x80, &ca_params.oid)),
    );
    let _ =
        ca_chip.general_authenticate(&apdu::Command::new(0, 0x86, 0, 0).with_data(data.to_vec()));

    // The chip side: Set AT, then the input as GENERAL AUTHENTICATE data.
    let mut chip = pace::chip::PaceChip::new(
        params.clone(),
        vec![(1, Password::Mrz(key).key())],
        pace::chip::ChipPaceFixed::default(),
    );
    let _ = chip.set_at(&apdu::Command::new(0, 0x22, 0xC1, 0xA4).with_data(data.to_vec()));
    let mut set = tlv::encode(0x80, &params.oid);
    set.extend_from_slice(&tlv::encode(0x83, &[1]));
    let _ = chip.set_at(&apdu::Command::new(0, 0x22, 0xC1, 0xA4).with_data(set));
    for (i, piece) in data.split(|b| *b == 0xFF).take(4).enumerate() {
        let cla = if i == 3 { 0x00 } else { 0x10 };
        let _ = chip.general_authenticate(
            &apdu::Command::new(cla, 0x86, 0, 0).with_data(tlv::encode(0x7C, piece)),
        );
    }
});
