use super::*;
use crate::command::Command;
use crate::test_util::{Lcg, h};

fn drain(d: &mut FrameDecoder) -> Vec<Result<Vec<u8>, FrameError>> {
    std::iter::from_fn(|| d.next_frame()).collect()
}

const STATUS_OK: &str = "AA AA AA 96 69 00 04 00 00 90 94";

#[test]
fn known_command_frames_encode_exactly() {
    let known = [
        (Command::SamStatus, "AA AA AA 96 69 00 03 11 FF ED"),
        (Command::SamId, "AA AA AA 96 69 00 03 12 FF EE"),
        (Command::FindCard, "AA AA AA 96 69 00 03 20 01 22"),
        (Command::SelectCard, "AA AA AA 96 69 00 03 20 02 21"),
        (Command::ReadTextPhoto, "AA AA AA 96 69 00 03 30 01 32"),
        (
            Command::ReadAppendedAddress,
            "AA AA AA 96 69 00 03 30 03 30",
        ),
        (
            Command::ReadTextPhotoFingerprint,
            "AA AA AA 96 69 00 03 30 10 23",
        ),
        (
            Command::SetMaxRfByte(0x50),
            "AA AA AA 96 69 00 04 61 FF 50 CA",
        ),
        (Command::ResetSam, "AA AA AA 96 69 00 03 10 FF EC"),
    ];
    for (cmd, frame) in known {
        assert_eq!(cmd.encode(), h(frame), "{cmd}");
        // And the command-side decoder (simulator) reads them back.
        let mut d = FrameDecoder::for_commands();
        d.push(&h(frame));
        let body = d.next_frame().expect("frame").expect("valid");
        let (c, p) = cmd.cmd_para();
        assert_eq!(body.get(..2), Some(&[c, p][..]));
        assert_eq!(
            Command::from_frame(c, p, body.get(2..).unwrap_or_default()),
            Some(cmd)
        );
    }
}

#[test]
fn known_response_frames_decode() {
    let known: [(&str, u8, &[u8]); 7] = [
        (STATUS_OK, 0x90, &[]),
        ("AA AA AA 96 69 00 04 00 00 60 64", 0x60, &[]),
        (
            "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97",
            0x9F,
            &[0; 4],
        ),
        ("AA AA AA 96 69 00 04 00 00 80 84", 0x80, &[]),
        (
            "AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C",
            0x90,
            &[0; 8],
        ),
        ("AA AA AA 96 69 00 04 00 00 81 85", 0x81, &[]),
        ("AA AA AA 96 69 00 04 00 00 41 45", 0x41, &[]),
    ];
    for (frame, sw3, data) in known {
        let mut d = FrameDecoder::for_responses();
        d.push(&h(frame));
        let body = d.next_frame().expect("frame").expect("valid");
        let r = Response::from_body(&body).expect("response");
        assert_eq!((r.sw1, r.sw2, r.sw3), (0, 0, sw3), "{frame}");
        assert_eq!(r.data, data);
        assert_eq!(encode_response(0, 0, sw3, data), h(frame));
        assert_eq!(r.encode(), h(frame));
        assert!(d.next_frame().is_none());
    }
}

#[test]
fn full_size_read_replies_have_reference_lengths() {
    let text = [0x20u8; 256];
    let photo = [0x5Au8; 1024];
    let cases: [(&[u8], usize, [u8; 2]); 4] = [
        (&[0x01, 0x00, 0x04, 0x00], 0, [0x05, 0x08]),
        (&[0x01, 0x00, 0x04, 0x00, 0x04, 0x00], 1024, [0x09, 0x0A]),
        (&[0x01, 0x00, 0x04, 0x00, 0x00, 0x00], 0, [0x05, 0x0A]),
        (&[0x01, 0x00, 0x04, 0x00, 0x02, 0x00], 512, [0x07, 0x0A]),
    ];
    for (lens, fp, len_field) in cases {
        let mut data = lens.to_vec();
        data.extend_from_slice(&text);
        data.extend_from_slice(&photo);
        data.extend(std::iter::repeat_n(0x33, fp));
        let frame = encode_response(0, 0, 0x90, &data);
        assert_eq!(frame.get(5..7), Some(&len_field[..]));
        assert_eq!(frame.len(), 7 + usize::from(u16::from_be_bytes(len_field)));
        let mut d = FrameDecoder::for_responses();
        d.push(&frame);
        let body = d.next_frame().expect("frame").expect("valid");
        assert_eq!(Response::from_body(&body).expect("response").data, data);
    }
    // The 30 01 reply totals 1295 bytes and its CHK sits at offset 1294.
    let mut data = vec![0x01, 0x00, 0x04, 0x00];
    data.extend_from_slice(&text);
    data.extend_from_slice(&photo);
    assert_eq!(encode_response(0, 0, 0x90, &data).len(), 1295);
}

#[test]
fn resyncs_after_leading_garbage() {
    let mut d = FrameDecoder::for_responses();
    let mut input = h("00 FF 13 AA 96 69 AA AA 42");
    input.extend(h(STATUS_OK));
    d.push(&input);
    let frames = drain(&mut d);
    assert_eq!(frames, vec![Ok(h("00 00 90"))]);
    assert_eq!(d.discarded(), 9);
}

#[test]
fn resyncs_after_stray_byte_inside_a_preamble() {
    let mut d = FrameDecoder::for_responses();
    // A select reply with a stray byte inside its preamble is lost, the next frame is not.
    let mut input = h("AA AA AA 00 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C");
    input.extend(h(STATUS_OK));
    d.push(&input);
    assert_eq!(drain(&mut d), vec![Ok(h("00 00 90"))]);

    // An extra AA before a preamble is just garbage.
    let mut d = FrameDecoder::for_responses();
    d.push(&h("AA AA AA AA 96 69 00 04 00 00 80 84"));
    assert_eq!(drain(&mut d), vec![Ok(h("00 00 80"))]);
}

#[test]
fn false_preamble_with_absurd_length_is_skipped() {
    for bad_len in ["FF FF", "10 01", "00 03", "00 00"] {
        let mut d = FrameDecoder::for_responses();
        let mut input = h(&format!("AA AA AA 96 69 {bad_len} 00"));
        input.extend(h(STATUS_OK));
        d.push(&input);
        let frames = drain(&mut d);
        assert!(
            matches!(frames.first(), Some(Err(FrameError::BadLength { .. }))),
            "{bad_len}: {frames:?}"
        );
        assert_eq!(frames.last(), Some(&Ok(h("00 00 90"))), "{bad_len}");
    }
    // The false preamble's "length" is the start of the real preamble: nothing may be skipped.
    let mut d = FrameDecoder::for_responses();
    let mut input = PREAMBLE.to_vec();
    input.extend(h(STATUS_OK));
    d.push(&input);
    let frames = drain(&mut d);
    assert_eq!(
        frames,
        vec![
            Err(FrameError::BadLength {
                len: 0xAAAA,
                min: 4,
                max: 4096
            }),
            Ok(h("00 00 90"))
        ]
    );
}

#[test]
fn length_bounds_are_inclusive() {
    let mut d = FrameDecoder::for_responses();
    d.push(&h("AA AA AA 96 69 10 00"));
    assert!(
        d.next_frame().is_none(),
        "4096 is accepted: waits for the body"
    );
    assert!(d.in_frame());
    let mut d = FrameDecoder::for_responses();
    d.push(&h("AA AA AA 96 69 10 01"));
    assert!(matches!(
        d.next_frame(),
        Some(Err(FrameError::BadLength { len: 4097, .. }))
    ));
    // A command decoder accepts len 3, a response decoder does not.
    let mut d = FrameDecoder::for_responses();
    d.push(&Command::FindCard.encode());
    assert!(matches!(
        d.next_frame(),
        Some(Err(FrameError::BadLength { len: 3, .. }))
    ));
}

#[test]
fn truncated_frame_waits_then_completes() {
    let frame = h("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97");
    for split in 1..frame.len() {
        let mut d = FrameDecoder::for_responses();
        d.push(frame.get(..split).unwrap_or_default());
        assert!(d.next_frame().is_none(), "split {split}");
        d.push(frame.get(split..).unwrap_or_default());
        assert_eq!(drain(&mut d), vec![Ok(h("00 00 9F 00 00 00 00"))]);
    }
    // Byte by byte, several frames back to back.
    let mut d = FrameDecoder::for_responses();
    let mut got = Vec::new();
    for b in frame.iter().chain(&h(STATUS_OK)).chain(&frame) {
        d.push(&[*b]);
        got.extend(drain(&mut d));
    }
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(Result::is_ok));
}

#[test]
fn end_of_input_reports_truncation() {
    let mut d = FrameDecoder::for_responses();
    d.push(&h("AA AA AA 96 69 00 08 00 00 9F"));
    assert!(d.next_frame().is_none());
    assert_eq!(
        d.end_of_input(),
        Some(FrameError::Truncated { have: 10, need: 15 })
    );
    assert!(!d.in_frame());
    d.push(&h("AA AA AA 96 69 00"));
    assert_eq!(
        d.end_of_input(),
        Some(FrameError::Truncated { have: 6, need: 7 })
    );
    d.push(&h("12 34 AA AA"));
    assert_eq!(d.end_of_input(), None, "garbage is not a truncated frame");
}

#[test]
fn bad_checksum_is_reported_then_decoding_resumes() {
    let mut d = FrameDecoder::for_responses();
    let mut input = h("AA AA AA 96 69 00 04 00 00 90 95");
    input.extend(h(STATUS_OK));
    d.push(&input);
    let frames = drain(&mut d);
    assert_eq!(
        frames,
        vec![
            Err(FrameError::BadChecksum {
                expected: 0x94,
                got: 0x95,
                len: 4
            }),
            Ok(h("00 00 90"))
        ]
    );
    let msg = frames
        .first()
        .and_then(|f| f.as_ref().err())
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(msg.contains("0x94") && msg.contains("0x95"), "{msg}");
}

#[test]
fn every_single_bit_flip_is_caught_or_harmless() {
    let frame = h("AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C");
    for byte in 0..frame.len() {
        for bit in 0..8 {
            let mut bad = frame.clone();
            if let Some(b) = bad.get_mut(byte) {
                *b ^= 1 << bit;
            }
            let mut d = FrameDecoder::for_responses();
            d.push(&bad);
            let frames = drain(&mut d);
            // Body and CHK flips must be detected by the XOR.
            if byte >= HEADER_LEN {
                assert!(
                    matches!(frames.as_slice(), [Err(FrameError::BadChecksum { .. })]),
                    "byte {byte} bit {bit}: {frames:?}"
                );
            }
            assert!(
                frames
                    .iter()
                    .all(|f| f.as_ref().map_or(true, |b| b.len() >= 3)),
                "byte {byte} bit {bit}"
            );
            let _ = d.end_of_input();
        }
    }
}

#[test]
fn random_input_never_panics_and_buffer_stays_bounded() {
    let mut rng = Lcg(0x0009_A467);
    let pieces = [
        PREAMBLE.to_vec(),
        h(STATUS_OK),
        h("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97"),
        h("AA AA AA 96 69 10 00"),
        h("00 04"),
    ];
    let mut good = 0usize;
    for round in 0..4000 {
        let mut d = FrameDecoder::new(if round % 2 == 0 { 4 } else { 3 });
        for _ in 0..rng.below(12) {
            let mut chunk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            if rng.below(3) == 0
                && let Some(p) = pieces.get(rng.below(pieces.len() as u32) as usize)
            {
                let at = rng.below(chunk.len() as u32 + 1) as usize;
                chunk.splice(at..at, p.iter().copied());
            }
            if rng.below(4) == 0
                && let Some(b) = chunk.get_mut(rng.below(64) as usize)
            {
                *b ^= 1 << rng.below(8);
            }
            d.push(&chunk);
            while let Some(f) = d.next_frame() {
                if let Ok(body) = f {
                    good += 1;
                    let _ = Response::from_body(&body);
                }
            }
            assert!(d.buf.len() <= HEADER_LEN + usize::from(MAX_LEN) + 64);
        }
        let _ = d.end_of_input();
    }
    assert!(
        good > 100,
        "the generator should produce some valid frames ({good})"
    );
}

#[test]
fn garbage_is_not_buffered() {
    let mut d = FrameDecoder::for_responses();
    let mut rng = Lcg(1);
    for _ in 0..1000 {
        let chunk: Vec<u8> = (0..1024).map(|_| (rng.next() as u8) & 0x7F).collect();
        d.push(&chunk);
        assert!(d.next_frame().is_none());
        assert!(d.buf.len() < PREAMBLE.len());
    }
    assert!(d.discarded() > 1_000_000);
}

#[test]
fn short_response_body_is_an_error() {
    assert!(matches!(
        Response::from_body(&[0, 0]),
        Err(FrameError::ShortBody { len: 2, .. })
    ));
}

#[test]
fn additive_checksum_frames_are_recognised_as_a_vendor_variant() {
    // CVR-100AU init as sent by its host (§10): XOR fails, the byte sum from offset 5 is 0.
    let mut d = FrameDecoder::for_commands();
    d.push(&h("AA AA AA 96 69 00 03 00 01 FC"));
    assert_eq!(
        drain(&mut d),
        vec![Err(FrameError::AdditiveChecksum { len: 3 })]
    );
    // A status reply with an additive CHK; a good frame after it still decodes.
    let mut d = FrameDecoder::for_responses();
    let mut input = h("AA AA AA 96 69 00 04 00 00 90 6C");
    input.extend(h(STATUS_OK));
    d.push(&input);
    let frames = drain(&mut d);
    assert_eq!(
        frames,
        vec![
            Err(FrameError::AdditiveChecksum { len: 4 }),
            Ok(h("00 00 90"))
        ]
    );
    let msg = frames[0].as_ref().unwrap_err().to_string();
    assert!(msg.contains("vendor extension"), "{msg}");
}
