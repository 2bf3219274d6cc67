//! Chaos: while 300 records with blobs flow (picked up from a hot folder, sealed, chunked,
//! delivered), the daemon is killed with SIGKILL at random moments and the broker is stopped and
//! started. Every record arrives, every blob intact, the chain verifies, no page is captured
//! twice, and duplicates on the wire carry the same record id.
//! `COUNTERSIGN_SOAK=1` runs a longer version (2000 records, 200 kills, 40 broker restarts).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::harness::*;
use crate::harness_mqtt::*;

fn random(below: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % below.max(1)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sigkill_and_broker_restarts_lose_and_duplicate_nothing() {
    let soak = std::env::var_os("COUNTERSIGN_SOAK").is_some_and(|v| v == "1");
    let (records, min_kills, min_restarts) = if soak { (2000, 200, 40) } else { (300, 20, 5) };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "chunk_bytes = 32768", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);

    // Pages of 4 KiB to 160 KiB: one to five chunks each.
    let mut pages = BTreeMap::new();
    for i in 0..records {
        let page = page_bytes(i, 4096 + random(160 * 1024) as usize);
        pages.insert(format!("sha256:{}", hex(&Sha256::digest(&page))), i);
        drop_page(&station.inbox, &format!("scan-{i:05}.jpg"), &page);
    }

    let mut daemon = start_daemon(&station.setup);
    let mut kills = 0;
    let started = Instant::now();
    while kills < min_kills || broker.restarts < min_restarts {
        std::thread::sleep(Duration::from_millis(150 + random(900)));
        daemon.kill9();
        kills += 1;
        if kills % 4 == 0 {
            broker.down();
            std::thread::sleep(Duration::from_millis(random(700)));
            broker.up();
        }
        daemon = start_daemon(&station.setup);
    }
    println!(
        "chaos: {kills} SIGKILLs of the daemon and {} broker restarts in {:?}",
        broker.restarts,
        started.elapsed()
    );

    // Let it drain.
    let deadline = Instant::now() + Duration::from_secs(if soak { 1800 } else { 240 });
    let mut stored_ids = BTreeSet::new();
    let mut duplicates = 0;
    loop {
        let pending = outbox_stats(&station.setup.outbox).depth;
        let inbox_left = std::fs::read_dir(&station.inbox)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_file())
            .count();
        if pending == 0 && inbox_left == 0 && stored_ids.len() >= records as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: {pending} pending, {inbox_left} files in the inbox, {} stored\n{}",
            stored_ids.len(),
            strip_ansi(&daemon.stderr())
        );
        while let Ok(e) = consumer.events.recv_timeout(Duration::from_millis(200)) {
            assert_ne!(e["event"], "rejected", "{e}");
            if e["event"] == "stored" {
                let id = e["record_id"].as_str().unwrap().to_string();
                if e["duplicate"] == true {
                    duplicates += 1;
                    assert!(
                        stored_ids.contains(&id),
                        "a duplicate of a stored record: {e}"
                    );
                } else {
                    assert!(stored_ids.insert(id), "stored twice as new: {e}");
                }
            }
        }
    }

    // Every page exactly once, byte for byte; the chain verifies over the exact wire bytes.
    let stored = consumer.stored();
    let mut seen_pages = BTreeSet::new();
    for r in stored.iter().filter(|r| r["kind"] == "capture") {
        let ev = &r["evidence"][0];
        let sha = ev["sha256"].as_str().unwrap().to_string();
        assert!(
            pages.contains_key(&sha),
            "a page that was never dropped: {r}"
        );
        assert!(seen_pages.insert(sha.clone()), "page captured twice: {sha}");
        let blob = consumer.blob(ev["blob_id"].as_str().unwrap()).unwrap();
        assert_eq!(format!("sha256:{}", hex(&Sha256::digest(&blob))), sha);
    }
    assert_eq!(seen_pages.len(), records as usize, "every page arrived");
    let mut wires: Vec<_> = std::fs::read_dir(consumer.out.join(STATION))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jws" || e == "jwe"))
        .collect();
    wires.sort();
    let by_seq: Vec<_> = stored.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        by_seq,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "sequence numbers 1..n without gaps or repeats"
    );
    for (i, r) in stored.iter().enumerate().skip(1) {
        let prev = std::fs::read(&wires[i - 1]).unwrap();
        assert_eq!(
            r["prev"].as_str().unwrap(),
            format!("sha256:{}", hex(&Sha256::digest(&prev))),
            "chain link at seq {}",
            r["seq"]
        );
    }
    // Every answer was a signed receipt (the station takes no other), and every record that left
    // the outbox left its receipt behind in the same transaction, kills or not.
    let kept = countersign::outbox::Outbox::open(&station.setup.outbox)
        .unwrap()
        .receipts(None)
        .unwrap();
    let receipted: BTreeSet<&str> = kept.iter().map(|k| k.record_id.as_str()).collect();
    let delivered: BTreeSet<&str> = stored
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        receipted, delivered,
        "one kept receipt per delivered record"
    );
    assert!(
        kept.iter()
            .all(|k| k.status == "stored" && k.receipt.alg == "EdDSA")
    );
    println!(
        "chaos: {} records stored ({records} pages), {duplicates} duplicate deliveries (same ids), {} receipts kept",
        stored.len(),
        kept.len()
    );
}
