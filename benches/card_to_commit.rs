//! From the last byte of an ID card read reply to the record committed in the outbox.
//!
//! Each iteration starts with the complete `30 01` reply frame in hand (1295 bytes, as the
//! serial port delivers them) and runs what the daemon runs: the frame decoder (preamble,
//! length, XOR), `parse_read_reply` (layout, fields), the mapping to the record's identity and
//! evidence with every check (`capture_of`), then sealing (sign, encrypt the record and its
//! blob) and the durable outbox commit (SQLite WAL, synchronous=FULL, on the target directory's
//! file system). Cards cycle through all four card types. Printed: p50 and p99 of each part and
//! of the total over 1000 reads, next to the wire time of the frame at 115200 baud.
//!
//! Run: `cargo bench --bench card_to_commit` (`-- --reads N` for another count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign::devices::id_reader::capture_of;
use countersign::outbox::Outbox;
use countersign::record::DeviceInfo;
use countersign::record::keys::{self, KeyType};
use countersign::station::{Crypto, RecordContents, seal};
use ga467::card::CivilDate;
use ga467::command::{Command, wire_time};
use ga467::frame::{FrameDecoder, Response};
use ga467::reader::parse_read_reply;
use ga467::sim::{Simulator, fake_cards_all_types};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reads: usize = std::env::args()
        .skip_while(|a| a != "--reads")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let (private, _, _) = keys::generate(&dir.path().join("keys"), KeyType::Ed25519)?;
    let (_, recipient, _) = keys::generate(&dir.path().join("case"), KeyType::X25519)?;
    let crypto = Crypto {
        key: Arc::new(keys::load_private(&private)?),
        recipient: keys::load_recipient(&recipient)?,
    };
    let mut outbox = Outbox::open(&dir.path().join("outbox.sqlite"))?;
    let device = DeviceInfo {
        kind: "ga467".into(),
        name: "desk".into(),
        sam_id: Some("0100020005b432010100000002000000".into()),
        detail: None,
    };
    let today = CivilDate::today_in_china();

    // One wire reply per card type, exactly as the simulator sends them.
    let frames: Vec<Vec<u8>> = fake_cards_all_types()
        .into_iter()
        .map(|card| {
            let mut sim = Simulator::new();
            sim.set_card(Some(card));
            sim.feed(&Command::FindCard.encode());
            sim.feed(&Command::SelectCard.encode());
            sim.feed(&Command::ReadTextPhoto.encode())
        })
        .collect();
    let frame_len = frames[0].len();

    let mut parse_map = Vec::with_capacity(reads);
    let mut commit = Vec::with_capacity(reads);
    let mut total = Vec::with_capacity(reads);
    for i in 0..reads + 20 {
        let frame = &frames[i % frames.len()];
        let started = Instant::now();
        let mut decoder = FrameDecoder::for_responses();
        decoder.push(frame);
        let body = decoder.next_frame().ok_or("no frame")??;
        let response = Response::from_body(&body)?;
        let card = parse_read_reply(Command::ReadTextPhoto, &response.data)?;
        let capture = capture_of(&card, &device, None, today);
        let mapped = Instant::now();
        let committed = seal::commit(
            &mut outbox,
            "bench-station",
            &crypto,
            RecordContents::from_capture(capture),
        )?;
        let done = Instant::now();
        std::hint::black_box(committed);
        // The first 20 warm caches, SQLite's WAL and the allocator; they are not counted.
        if i >= 20 {
            parse_map.push(mapped - started);
            commit.push(done - mapped);
            total.push(done - started);
        }
    }

    let wire = wire_time(frame_len, 115_200);
    println!(
        "ID card read to committed record: {reads} reads (resident, 'I', 'Y', 'J' in turn), \
         outbox in {} (SQLite WAL, synchronous=FULL)",
        dir.path().display()
    );
    for (what, samples) in [
        ("decode + parse + map + checks", &mut parse_map),
        ("seal + durable commit", &mut commit),
        ("total", &mut total),
    ] {
        samples.sort();
        println!(
            "  {what:<30} p50 {:>9}  p99 {:>9}  max {:>9}",
            show(percentile(samples, 50)),
            show(percentile(samples, 99)),
            show(samples.last().copied().unwrap_or_default()),
        );
    }
    println!(
        "  wire time of the {frame_len}-byte 30 01 reply at 115200 baud (physical floor): {}",
        show(wire)
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted.get(index).copied().unwrap_or_default()
}

fn show(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}
