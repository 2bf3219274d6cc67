//! Seal (sign + encrypt) and open a record carrying a 3 MB page, next to the raw AEAD throughput
//! of the same crates on the same machine, for both profiles. Run:
//!     cargo bench --bench seal
//! Prints MB/s (median of several runs) and the ratio to the raw cipher.

use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm};
use countersign::record::keys::{
    DecryptKeys, Jwk, Keyring, Recipient, RecipientSecret, SigningKey, StationKey,
};
use countersign::record::{self, EvidenceRef, Record, RecordKind, chain_hash};

const PAGE: usize = 3 * 1024 * 1024;
const RUNS: usize = 9;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn time(mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

struct Keys {
    station: StationKey,
    recipient: Recipient,
    keyring: Keyring,
    decrypt: DecryptKeys,
}

fn keys(gm: bool) -> Keys {
    let signing = if gm {
        SigningKey::Sm2(Box::new(
            sm2::dsa::SigningKey::from_slice(countersign::record::keys::SM2_USER_ID, &[3u8; 32])
                .unwrap(),
        ))
    } else {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]))
    };
    let public = Jwk::public_of_signing(&signing);
    let mut keyring = Keyring::default();
    keyring.insert(public.thumbprint(), public.verifying_key().unwrap());
    let secret = if gm {
        RecipientSecret::Sm2(sm2::SecretKey::from_slice(&[4u8; 32]).unwrap())
    } else {
        RecipientSecret::X25519(x25519_dalek::StaticSecret::from([4u8; 32]))
    };
    let recipient = Recipient {
        key: secret.public(),
        kid: Jwk::public_of_recipient(&secret.public()).thumbprint(),
    };
    let mut decrypt = DecryptKeys::default();
    decrypt.insert(recipient.kid.clone(), secret);
    Keys {
        station: StationKey {
            kid: public.thumbprint(),
            signing,
        },
        recipient,
        keyring,
        decrypt,
    }
}

fn record_for(page: &[u8], k: &Keys) -> Record {
    Record {
        schema: record::SCHEMA.into(),
        record_id: "01a21f06-aa81-7618-85f9-7098c7009427".into(),
        kind: RecordKind::Capture,
        station: "bench".into(),
        station_kid: k.station.kid.clone(),
        seq: 1,
        prev: None,
        captured_at: "2026-11-27T10:00:00.000Z".into(),
        sealed_at: "2026-11-27T10:00:00.000Z".into(),
        recipient_kid: Some(k.recipient.kid.clone()),
        location: None,
        case: None,
        devices: Vec::new(),
        identities: Vec::new(),
        evidence: vec![EvidenceRef {
            blob_id: "01a21f06-aa81-7618-85f9-7098c7009428".into(),
            role: "page".into(),
            media_type: "image/jpeg".into(),
            size: page.len() as u64,
            sha256: chain_hash(page),
            identity: None,
            label: None,
        }],
        checkpoint: None,
    }
}

fn main() {
    let page: Vec<u8> = (0..PAGE).map(|i| (i * 31 % 251) as u8).collect();
    println!(
        "record with a {} MiB page, median of {RUNS} runs",
        PAGE >> 20
    );
    for gm in [false, true] {
        let k = keys(gm);
        let raw = if gm {
            let cipher =
                AesGcm::<sm4::Sm4, aes_gcm::aead::consts::U12>::new_from_slice(&[1u8; 16]).unwrap();
            time(|| {
                let mut buf = page.clone();
                cipher
                    .encrypt_inout_detached(&[0u8; 12].into(), b"", buf.as_mut_slice().into())
                    .unwrap();
            })
        } else {
            let cipher = Aes256Gcm::new_from_slice(&[1u8; 32]).unwrap();
            time(|| {
                let mut buf = page.clone();
                cipher
                    .encrypt_inout_detached(&[0u8; 12].into(), b"", buf.as_mut_slice().into())
                    .unwrap();
            })
        };
        let mut wires = (Vec::new(), Vec::new());
        let seal = time(|| {
            // What the station does per capture: hash the page, encrypt it, sign + encrypt the record.
            let record = record_for(&page, &k);
            let blob = record::seal_blob(&page, &k.recipient, "bench").unwrap();
            let wire = record::seal(&record, &k.station, &k.recipient).unwrap();
            wires = (wire, blob);
        });
        let open = time(|| {
            // What a case system does: decrypt + verify the record, decrypt the blob, check its hash.
            let opened = record::open(&wires.0, &k.keyring, &k.decrypt).unwrap();
            let plain = record::open_blob(&wires.1, &k.decrypt).unwrap();
            assert_eq!(chain_hash(&plain), opened.record.evidence[0].sha256);
        });
        let sha = time(|| {
            std::hint::black_box(chain_hash(&page));
        });
        let b64 = time(|| {
            std::hint::black_box(countersign::record::jose::b64url(&page));
        });
        let (name, cipher) = if gm {
            ("gm (SM2 + SM4-GCM)", "SM4-GCM")
        } else {
            ("standard (EdDSA + ECDH-ES+A256KW/A256GCM)", "AES-256-GCM")
        };
        let raw_rate = mb_per_s(PAGE, raw);
        println!("{name}:");
        println!("  raw {cipher} encrypt      {raw_rate:8.1} MB/s");
        println!(
            "  (parts of the floor: SHA-256 of the page {:.1} MB/s, base64url {:.1} MB/s)",
            mb_per_s(PAGE, sha),
            mb_per_s(PAGE, b64)
        );
        for (what, d) in [
            ("seal (hash+sign+encrypt)", seal),
            ("open (decrypt+verify+hash)", open),
        ] {
            let rate = mb_per_s(PAGE, d);
            println!(
                "  {what:<26} {rate:8.1} MB/s  ({:.2} of raw, {:.1} ms)",
                rate / raw_rate,
                d.as_secs_f64() * 1000.0
            );
        }
    }
}
