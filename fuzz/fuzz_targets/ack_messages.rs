//! What the broker delivers on the acks topic (anyone who can publish there): answers are checked
//! without panicking, signed or not; what passes names ids of 1 to 64 characters, and a signed one
//! is bound to a well-formed hash. The first byte picks whether unsigned answers are allowed.
#![no_main]

use countersign::receipts::{Outcome, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, payload)) = data.split_first() else {
        return;
    };
    let mut policy = Policy::trusting_broker("w1");
    policy.accept_unsigned = first & 1 == 1;
    if let Ok(answer) = policy.check(payload, i64::from(*first) << 24) {
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
    let _ = countersign::receipts::open(payload, &policy.keys, first & 2 == 2);
});
