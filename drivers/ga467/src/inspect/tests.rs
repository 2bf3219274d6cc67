use super::*;
use crate::frame::encode_response;
use crate::sim::{Simulator, fake_cards_all_types};
use crate::test_util::h;

/// A capture of a whole card read, both directions interleaved as a sniffer records them.
fn session() -> Vec<u8> {
    let mut sim = Simulator::new();
    let mut card = fake_cards_all_types().remove(4);
    card.appended_address = Some("北京市西城区测试街2号".into());
    sim.set_card(Some(card));
    let mut out = Vec::new();
    for c in [
        Command::SamStatus,
        Command::SamId,
        Command::FindCard,
        Command::SelectCard,
        Command::ReadTextPhoto,
        Command::ReadAppendedAddress,
    ] {
        let frame = c.encode();
        out.extend(&frame);
        out.extend(sim.feed(&frame));
    }
    out
}

fn kinds(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Item::Frame {
                direction, content, ..
            } => match content {
                Content::Command { command, .. } => format!(
                    "{} {}",
                    direction.as_str(),
                    command.map_or("?", |c| c.key())
                ),
                Content::Response { sw, .. } => format!("{} {:02X}", direction.as_str(), sw[2]),
            },
            Item::Garbage { bytes, .. } => format!("garbage {}", bytes.len()),
            Item::BadFrame { .. } => "bad".into(),
        })
        .collect()
}

#[test]
fn a_clean_session_decodes_frame_by_frame() {
    let capture = session();
    let items = inspect(&capture);
    assert_eq!(
        kinds(&items),
        [
            "command sam_status",
            "response 90",
            "command sam_id",
            "response 90",
            "command find_card",
            "response 9F",
            "command select_card",
            "response 90",
            "command read_text_photo",
            "response 90",
            "command read_appended_address",
            "response 90",
        ]
    );
    let Item::Frame {
        content:
            Content::Response {
                payload: Payload::Card(card),
                in_reply_to,
                ..
            },
        offset,
        len,
        ..
    } = &items[9]
    else {
        panic!("read reply: {:?}", items[9]);
    };
    let card = card.as_ref().as_ref().expect("card parses");
    assert_eq!(*in_reply_to, Some(Command::ReadTextPhoto));
    assert_eq!(*len, 1295);
    assert_eq!(*offset, 10 + 11 + 10 + 27 + 10 + 15 + 10 + 19 + 10);
    assert_eq!(card.parsed.name(), "测试戊");
    assert!(matches!(
        &items[3],
        Item::Frame {
            content: Content::Response {
                payload: Payload::SamId(_),
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        &items[11],
        Item::Frame {
            content: Content::Response {
                payload: Payload::AppendedAddress(AppendedAddress::Present(_)),
                ..
            },
            ..
        }
    ));
}

#[test]
fn garbage_and_bad_frames_are_reported_and_decoding_continues() {
    let mut capture = h("00 FF 13");
    capture.extend(Command::FindCard.encode());
    // A reply with a bad checksum.
    capture.extend(h("AA AA AA 96 69 00 04 00 00 80 85"));
    // A false preamble with an absurd length.
    capture.extend(h("AA AA AA 96 69 FF FF 01"));
    // A truncated read reply cut off by the next frame.
    let read = encode_response(0, 0, 0x90, &[0u8; 600]);
    capture.extend(&read[..100]);
    capture.extend(Command::SamStatus.encode());
    // An additive-checksum frame.
    capture.extend(h("AA AA AA 96 69 00 04 00 00 90 6C"));
    // And a frame cut off by the end of the capture.
    capture.extend(&Command::FindCard.encode()[..8]);
    let items = inspect(&capture);
    assert_eq!(
        kinds(&items),
        [
            "garbage 3",
            "command find_card",
            "bad",
            "bad",
            "bad",
            "command sam_status",
            "bad",
            "bad"
        ]
    );
    let reasons: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            Item::BadFrame { offset, reason, .. } => Some(format!("{offset}: {reason}")),
            _ => None,
        })
        .collect();
    assert!(
        reasons[0].starts_with("13: checksum mismatch"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("length field 65535"), "{reasons:?}");
    assert!(reasons[2].contains("truncated: 100 of 611"), "{reasons:?}");
    assert!(reasons[3].contains("additive checksum"), "{reasons:?}");
    assert!(reasons[4].contains("truncated: 8 of 10"), "{reasons:?}");
}

#[test]
fn malformed_read_data_is_reported_in_the_frame() {
    let mut capture = Command::ReadTextPhoto.encode();
    capture.extend(encode_response(0, 0, 0x90, &[1, 0, 4, 0, 0x20]));
    let items = inspect(&capture);
    assert!(matches!(
        &items[1],
        Item::Frame {
            content: Content::Response {
                payload: Payload::Card(card),
                ..
            },
            ..
        } if card.as_ref().as_ref().is_err_and(|why| why.contains("data bytes"))
    ));
}

#[test]
fn hex_text_input() {
    assert_eq!(hex_text(b"AA aa\n 9 6"), Some(Ok(vec![0xAA, 0xAA, 0x96])));
    assert_eq!(hex_text(&[0xAA, 0x00]), None);
    assert_eq!(hex_text(b"  \n"), None);
    assert!(matches!(hex_text(b"AA A"), Some(Err(e)) if e.contains("byte 3")));
}

#[test]
fn random_captures_never_panic_and_cover_every_byte() {
    let mut rng = crate::test_util::Lcg(99);
    let pieces = [session(), h("AA AA AA 96 69"), h("00 04"), h("FF")];
    for _ in 0..500 {
        let mut capture = Vec::new();
        for _ in 0..rng.below(12) {
            let piece = &pieces[rng.below(4) as usize];
            let cut = rng.below(piece.len() as u32 + 1) as usize;
            capture.extend(&piece[..cut]);
            if rng.below(3) == 0 {
                capture.push(rng.next() as u8);
            }
        }
        let items = inspect(&capture);
        let covered: usize = items
            .iter()
            .map(|i| match i {
                Item::Frame { len, .. } | Item::BadFrame { len, .. } => *len,
                Item::Garbage { bytes, .. } => bytes.len(),
            })
            .sum();
        assert_eq!(covered, capture.len());
    }
}
