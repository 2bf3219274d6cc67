//! The streaming frame decoder on arbitrary input split into arbitrary pieces, in both
//! directions: no panic, every body it returns fits the length cap, and the reply-level parsers
//! take whatever it returns without panicking.
#![no_main]

use ga467::frame::{FrameDecoder, MAX_LEN, Response};
use ga467::reader::{parse_appended_address, parse_read_reply};
use ga467::{Command, variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the piece size, so the fuzzer explores how input is split.
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split % 64) + 1;
    for mut decoder in [FrameDecoder::for_responses(), FrameDecoder::for_commands()] {
        for chunk in input.chunks(piece) {
            decoder.push(chunk);
            while let Some(item) = decoder.next_frame() {
                if let Ok(body) = item {
                    assert!(body.len() < usize::from(MAX_LEN));
                    if let Ok(r) = Response::from_body(&body) {
                        let _ = r.encode();
                        let _ = parse_read_reply(Command::ReadTextPhoto, &r.data);
                        let _ = parse_read_reply(Command::ReadTextPhotoFingerprint, &r.data);
                        let _ = parse_appended_address(r.sw3, &r.data);
                    }
                }
            }
        }
        let _ = decoder.end_of_input();
        assert!(decoder.next_frame().is_none());
    }
    let _ = variant::find_stx_etx(input);
});
