//! Opening records and blobs as a verifier does (`countersign verify`, the case system's reference
//! code): compact JWS verification, JWE decryption (X25519 and SM2) and `record::open` take any
//! bytes without panicking. Besides raw bytes, the fuzzer reaches past the signature and the
//! decryption: it picks a header and payload that are then validly signed, and optionally
//! encrypted to the fixed test recipient, so the header, `typ`, `crit`, kid and record checks run
//! on its input.
#![no_main]

#[path = "common/keys.rs"]
mod keys;

use std::sync::OnceLock;

use countersign::record::{self, jwe, jws};
use libfuzzer_sys::fuzz_target;

static FIXTURE: OnceLock<keys::Fixture> = OnceLock::new();

fn open_all(wire: &[u8], f: &keys::Fixture) {
    let _ = jws::verify(wire, &f.keyring);
    let _ = jwe::decrypt(wire, &f.decrypt);
    let _ = record::open(wire, &f.keyring, &f.decrypt);
    let _ = record::open(wire, &f.keyring, &Default::default());
    let _ = record::open_blob(wire, &f.decrypt);
}

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(keys::Fixture::new);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        // Any bytes as a wire form.
        0 => open_all(rest, f),
        // A validly signed JWS over the fuzzer's header and payload.
        1 => {
            let (header, payload) = keys::split(rest);
            let kid = match (mode >> 2) % 3 {
                0 => &f.kid,
                1 => &f.p256_kid,
                _ => &f.sm2_kid,
            };
            let header = f.header_with(header, kid, Some(jws::RECORD_TYP));
            open_all(&f.sign_raw(&header, payload), f);
        }
        // The same, encrypted to the X25519 or SM2 recipient.
        2 => {
            let (header, payload) = keys::split(rest);
            let header = f.header_with_kid(header, Some(jws::RECORD_TYP));
            let signed = f.sign_raw(&header, payload);
            let recipient = if mode & 4 == 0 {
                &f.x25519
            } else {
                &f.sm2_recipient
            };
            if let Ok(wire) = jwe::encrypt(&signed, recipient, "window-01", Some("JOSE")) {
                open_all(wire.as_bytes(), f);
            }
        }
        // A valid JWE with one of its five parts replaced by the fuzzer's text.
        _ => {
            let signed = f.sign_raw(
                &f.header_with_kid(b"{}", Some(jws::RECORD_TYP)),
                b"{\"v\":1}",
            );
            let Ok(wire) = jwe::encrypt(&signed, &f.x25519, "window-01", Some("JOSE")) else {
                return;
            };
            let mut parts: Vec<&str> = wire.split('.').collect();
            let replacement = String::from_utf8_lossy(rest);
            let index = usize::from(mode >> 2) % parts.len().max(1);
            if let Some(part) = parts.get_mut(index) {
                *part = &replacement;
            }
            open_all(parts.join(".").as_bytes(), f);
        }
    }
});
