//! The hot folder under the daemon: a burst of 100 files with the daemon killed (SIGKILL) in the
//! middle and started again: every file becomes exactly one record, none is lost or read twice;
//! a file written in place by a slow writer that pauses longer than the settle time is taken
//! whole; images from the folder go through the page pipeline.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::harness::*;
use crate::harness_capture::page_frame;
use crate::harness_mqtt::*;

fn sha256_ref(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The page blobs' hashes of the stored records, counted.
fn stored_pages(consumer: &RefConsumer) -> BTreeMap<String, usize> {
    let mut pages = BTreeMap::new();
    for record in consumer.stored() {
        for e in record["evidence"].as_array().unwrap() {
            if e["role"] == "page" {
                *pages
                    .entry(e["sha256"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    pages
}

#[test]
fn a_burst_of_100_files_with_the_daemon_killed_midway_is_taken_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let mut daemon = start_daemon(&station.setup);
    let mut expected = BTreeMap::new();
    for i in 0..100u64 {
        let page = page_bytes(1000 + i, 8_000 + (i as usize * 131) % 4_000);
        expected.insert(sha256_ref(&page), 1usize);
        drop_page(&station.inbox, &format!("scan-{i:03}.jpg"), &page);
    }
    let started = Instant::now();
    // Watched through the consumer only: opening the outbox beside a daemon committing a burst
    // can meet SQLITE_BUSY (the outbox sets its busy timeout only after switching to WAL).
    wait_until(
        Duration::from_secs(60),
        "a sixth of the burst delivered",
        || consumer.stored().len() >= 16,
    );
    daemon.kill9();
    let at_kill = consumer.stored().len();
    let daemon = start_daemon(&station.setup);
    wait_until(Duration::from_secs(180), "all 100 stored", || {
        consumer.stored().len() >= 100
    });
    std::thread::sleep(Duration::from_secs(2));
    let pages = stored_pages(&consumer);
    assert_eq!(
        pages,
        expected,
        "each file exactly once\n{}",
        daemon.stderr()
    );
    let done = std::fs::read_dir(station.inbox.join("done"))
        .unwrap()
        .count();
    assert_eq!(done, 100);
    let left: Vec<_> = std::fs::read_dir(&station.inbox)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in the inbox: {left:?}");
    eprintln!(
        "100-file burst: killed with {at_kill} stored, all 100 stored once after {} ms",
        started.elapsed().as_millis()
    );
}

#[test]
fn a_slow_writer_in_place_is_waited_for_and_folder_images_are_processed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let _daemon = start_daemon(&station.setup);
    // Written in place (no temporary name), in chunks, with a pause of 1 s (five times the
    // settle time) while the file is still open.
    let content = page_bytes(77, 50_000);
    let mut file = std::fs::File::create(station.inbox.join("slow.pdf")).unwrap();
    for (i, chunk) in content.chunks(10_000).enumerate() {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(if i == 2 { 1000 } else { 100 }));
    }
    drop(file);
    // A camera-style image dropped by other software: processed, original kept.
    let frame = page_frame(5, false);
    drop_page(&station.inbox, "photo.jpg", &frame);
    wait_until(Duration::from_secs(60), "both stored", || {
        consumer.stored().len() >= 2
    });
    let stored = consumer.stored();
    let slow = stored
        .iter()
        .find(|r| r["evidence"][0]["media_type"] == "application/pdf")
        .expect("the PDF");
    assert_eq!(
        slow["evidence"][0]["sha256"],
        sha256_ref(&content),
        "the whole file"
    );
    assert_eq!(
        slow["evidence"].as_array().unwrap().len(),
        1,
        "PDFs are kept as they are"
    );
    let photo = stored
        .iter()
        .find(|r| r["evidence"][0]["media_type"] == "image/jpeg")
        .expect("the photo");
    let roles: Vec<&str> = photo["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["page", "page_original"]);
    assert_eq!(
        photo["evidence"][1]["sha256"],
        sha256_ref(&countersign::imaging::ensure_huffman_tables(&frame))
    );
    assert_eq!(consumer.stored().len(), 2);
}
