//! Chunked blob transfer through a broker that refuses messages over 128 KiB, and a transfer
//! resumed after a broker restart from where the case system got to.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::harness_mqtt::*;

fn wait_stored(
    consumer: &RefConsumer,
    n: usize,
    timeout: Duration,
    daemon: &Proc,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    let mut stored = Vec::new();
    while stored.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.events.recv_timeout(left) {
            Ok(e) if e["event"] == "stored" && e["duplicate"].is_null() => stored.push(e),
            Ok(e) => assert_ne!(e["event"], "rejected", "{e}"),
            Err(_) => panic!(
                "{} of {n} records stored\n--- daemon ---\n{}\n--- consumer ---\n{}",
                stored.len(),
                daemon.stderr(),
                consumer.proc.stderr()
            ),
        }
    }
    stored
}

/// Mosquitto with `message_size_limit 131072` still delivers 5 MB pages: they go in 64 KiB
/// chunks, reassembled and checked by the reference consumer from `examples/`.
#[test]
fn five_megabyte_pages_pass_a_broker_limited_to_128_kib() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        BrokerSetup {
            message_size_limit: Some(131072),
            ..Default::default()
        },
    );
    let station = folder_station(dir.path(), broker.port, "", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let daemon = start_daemon(&station.setup);
    let pages: Vec<Vec<u8>> = (0..2).map(|i| page_bytes(i, 5 * 1024 * 1024)).collect();
    for (i, page) in pages.iter().enumerate() {
        drop_page(&station.inbox, &format!("page-{i}.jpg"), page);
    }
    wait_stored(&consumer, 2, Duration::from_secs(120), &daemon);
    let stored = consumer.stored();
    assert_eq!(stored.len(), 2);
    let mut got: Vec<Vec<u8>> = stored
        .iter()
        .map(|r| {
            let ev = &r["evidence"][0];
            assert_eq!(ev["role"], "page");
            assert_eq!(ev["media_type"], "image/jpeg");
            consumer.blob(ev["blob_id"].as_str().unwrap()).unwrap()
        })
        .collect();
    got.sort();
    let mut want = pages.clone();
    want.sort();
    assert!(got == want, "pages arrive byte for byte");
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_stats(&station.setup.outbox).depth == 0
    });
    assert!(
        !broker.log().contains("exceeds"),
        "nothing over the limit was sent: {}",
        broker.log()
    );
    // Files are moved to done/ once committed, never read twice.
    assert_eq!(
        std::fs::read_dir(station.inbox.join("done"))
            .unwrap()
            .count(),
        2
    );
}

/// A broker restart in the middle of a large blob: the transfer resumes where the case system
/// said it got to, not at offset 0, and the blob arrives intact.
#[test]
fn an_interrupted_blob_transfer_resumes_from_the_acknowledged_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(
        dir.path(),
        broker.port,
        "chunk_bytes = 8192\ninflight_messages = 4",
        "",
    );
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let daemon = start_daemon_logging(&station.setup, "info,countersign::uplink=debug");
    let page = page_bytes(7, 16 * 1024 * 1024);
    drop_page(&station.inbox, "big.png", &page);

    // Wait until the case system's progress is on disk, part-way through.
    let db = station.setup.outbox.clone();
    let mut seen = 0i64;
    let mut size = 0i64;
    wait_until(
        Duration::from_secs(60),
        "progress part-way through the blob",
        || {
            let Ok(conn) = rusqlite::Connection::open(&db) else {
                return false;
            };
            (seen, size) = conn
                .query_row(
                    "SELECT p.next_offset, LENGTH(b.wire) FROM blob_progress p JOIN blobs b USING (blob_id)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap_or((0, 0));
            seen > 0
        },
    );
    assert!(
        seen < size,
        "the transfer was still running ({seen} of {size})"
    );
    broker.down();
    std::thread::sleep(Duration::from_millis(500));
    broker.up();

    wait_stored(&consumer, 1, Duration::from_secs(120), &daemon);
    let record = &consumer.stored()[0];
    let blob = consumer
        .blob(record["evidence"][0]["blob_id"].as_str().unwrap())
        .unwrap();
    assert!(blob == page, "the page arrives intact");
    let log = strip_ansi(&daemon.stderr());
    let resumed = log
        .lines()
        .find(|l| l.contains("resuming a blob transfer"))
        .unwrap_or_else(|| panic!("no resumed transfer:\n{log}"));
    let at: i64 = resumed
        .split("resume_at=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {resumed}"));
    assert!(
        at >= seen,
        "resumed at {at}, the case system had {seen}: {resumed}"
    );
}
