//! The capture decoder behind `countersign inspect ga467`: no panic, and every byte of the
//! capture is accounted for exactly once (frame, bad frame or garbage), in order.
#![no_main]

use ga467::inspect::{Item, hex_text, inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut next = 0;
    for item in inspect(data) {
        let (offset, len) = match &item {
            Item::Frame { offset, len, .. } | Item::BadFrame { offset, len, .. } => (*offset, *len),
            Item::Garbage { offset, bytes } => (*offset, bytes.len()),
        };
        assert_eq!(offset, next);
        assert!(len > 0);
        next = offset + len;
    }
    assert_eq!(next, data.len());
    let _ = hex_text(data);
});
