//! What the broker delivers on the acks topic (anyone who can publish there): ack and progress
//! messages parse without panicking, and what parses has ids of 1 to 64 characters.
#![no_main]

use countersign::uplink::ack::{Ack, AckMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match AckMessage::parse(data) {
        Ok(AckMessage::Record(ack)) => {
            assert!((1..=64).contains(&ack.record_id.len()));
            // What parses survives its own serialisation.
            let again = Ack::parse(&ack.to_bytes()).expect("a parsed ack re-parses");
            assert_eq!(again.record_id, ack.record_id);
        }
        Ok(AckMessage::Progress(p)) => {
            assert!((1..=64).contains(&p.record_id.len()));
            assert!((1..=64).contains(&p.blob_id.len()));
        }
        Err(_) => {}
    }
    let _ = Ack::parse(data);
});
