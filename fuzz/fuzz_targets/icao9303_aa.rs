//! Active Authentication on arbitrary bytes: DG15 parsing (RSA and EC keys, named or explicit
//! curves), the terminal's check of a chip's answer under fixed keys (ISO/IEC 9796-2 recovery
//! for RSA-1024/2048, plain ECDSA on P-256), the recovered-representative checks on their own,
//! and the emulator's INTERNAL AUTHENTICATE on arbitrary commands. No panic; errors are values.
#![no_main]

use std::sync::OnceLock;

use icao9303::aa::{self, AaPublicKey, chip::AaPrivateKey};
use icao9303::sod::HashAlg;
use icao9303::{apdu, tlv};
use libfuzzer_sys::fuzz_target;
use rsa::pkcs1::DecodeRsaPrivateKey as _;

/// The emulator's fixed RSA test keys and one P-256 key, their DG15 public keys parsed once.
fn keys() -> &'static [(AaPrivateKey, AaPublicKey)] {
    static KEYS: OnceLock<Vec<(AaPrivateKey, AaPublicKey)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = |der: &[u8], hash| {
            AaPrivateKey::Rsa(Box::new(rsa::PrivateKey::from_pkcs1_der(der).unwrap()), hash)
        };
        let p256 = AaPrivateKey::P256(
            p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap(),
            HashAlg::Sha256,
        );
        [
            rsa(
                include_bytes!("../../drivers/icao9303/src/sim/fixtures/aa-rsa1024.der"),
                HashAlg::Sha1,
            ),
            rsa(
                include_bytes!("../../drivers/icao9303/src/sim/fixtures/aa-rsa2048.der"),
                HashAlg::Sha256,
            ),
            p256,
        ]
        .into_iter()
        .map(|k| {
            let public = aa::parse_dg15(&tlv::encode(0x6F, &k.public_spki())).unwrap();
            (k, public)
        })
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = aa::parse_dg15(data);
    let _ = aa::parse_dg15(&tlv::encode(0x6F, data));
    let _ = aa::ecdsa_hash(data);
    let (challenge, rest) = data.split_at(data.len().min(8));
    let _ = aa::check_representative(rest, challenge);
    for (private, public) in keys() {
        // An answer of arbitrary bytes never verifies (nor panics); the key's own answer does.
        let hash = matches!(public, AaPublicKey::Ec { .. }).then_some(HashAlg::Sha256);
        assert!(aa::verify_response(public, challenge, rest, hash).is_err());
        let cmd = apdu::Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data(challenge.to_vec())
            .with_le(256);
        if let Ok(signature) = aa::chip::internal_authenticate(private, &cmd) {
            assert!(aa::verify_response(public, challenge, &signature, hash).is_ok());
        }
        // The chip side on an arbitrary command.
        if let Ok(cmd) = apdu::Command::parse(data) {
            let _ = aa::chip::internal_authenticate(private, &cmd);
        }
    }
});
