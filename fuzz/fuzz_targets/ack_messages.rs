//! What the broker delivers on the acks topic (anyone who can publish there): answers are checked
//! without panicking, signed or not, with any station clock; what passes names ids of 1 to 64
//! characters, and a signed one is bound to a well-formed hash. Besides raw bytes, the fuzzer's
//! header and payload bytes are validly signed with the trusted test key, so the receipt's claims
//! (shape, station, freshness) are parsed too; and the offline audit of `countersign verify` runs
//! on the same bytes.
#![no_main]

#[path = "common/keys.rs"]
mod keys;

use std::sync::OnceLock;

use countersign::receipts::{ACK_TYP, Outcome, Policy, audit};
use libfuzzer_sys::fuzz_target;

static FIXTURE: OnceLock<keys::Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(keys::Fixture::new);
    if data.len() < 9 {
        return;
    }
    let (head, rest) = data.split_at(9);
    let mode = head[0];
    let mut now = [0u8; 8];
    now.copy_from_slice(&head[1..9]);
    let now = i64::from_le_bytes(now);
    let mut policy = Policy::trusting_broker("w1");
    policy.keys = f.keyring.clone();
    policy.accept_unsigned = mode & 1 == 1;
    policy.sm2_only = mode & 2 == 2;
    let message = match (mode >> 2) % 3 {
        0 => rest.to_vec(),
        1 => {
            let (header, payload) = keys::split(rest);
            f.sign_raw(&f.header_with_kid(header, Some(ACK_TYP)), payload)
        }
        _ => {
            // A well-formed header around the fuzzer's claims, near the station's clock.
            let mut claims: serde_json::Value = serde_json::from_slice(rest).unwrap_or_default();
            if let serde_json::Value::Object(map) = &mut claims {
                map.entry("station").or_insert_with(|| "w1".into());
                map.entry("iat").or_insert_with(|| now.into());
            }
            let header = f.header_with_kid(b"{}", Some(ACK_TYP));
            f.sign_raw(&header, &serde_json::to_vec(&claims).unwrap_or_default())
        }
    };
    if let Ok(answer) = policy.check(&message, now) {
        assert!((1..=64).contains(&answer.record_id.len()));
        if let Outcome::Progress { blob_id, .. } = &answer.outcome {
            assert!((1..=64).contains(&blob_id.len()));
        }
        if let Outcome::Rejected { reason } = &answer.outcome {
            assert!(reason.len() <= 256);
        }
        if answer.signed.is_some() {
            assert_eq!(answer.bound_to.as_ref().map(String::len), Some(71));
        }
    }
    // Offline checking (countersign verify) of the same bytes.
    let item = audit::ReceiptItem {
        source: "fuzz".into(),
        stem: None,
        jws: message,
    };
    let _ = audit::audit(&[item], &policy.keys, &[]);
});
