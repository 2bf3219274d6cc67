use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::*;

/// SIGKILL after a record is committed but before the case system acknowledged it: after a
/// restart the same record (same id, same bytes) is delivered, exactly once more.
#[test]
fn sigkill_before_ack_redelivers_the_same_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let mut sim = start_sim(&link, 600, 400);
    let setup = setup_station(dir.path(), broker.port, &link);

    // Phase 1: a case system that sees records but never acks.
    let observer = CaseSystem::start(broker.port, &setup, None, false);
    let mut daemon = start_daemon(&setup);
    let seen = observer
        .next_record(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no record published:\n{}", daemon.stderr()));
    assert_eq!(seen["acked"], false);
    let record_id = seen["record_id"].as_str().unwrap().to_string();
    let sha = seen["sha256"].as_str().unwrap().to_string();

    // Committed, published, not acknowledged: kill -9.
    daemon.kill9();
    sim.kill9();
    drop(observer);
    let (pending, _) = outbox_depth(&setup.outbox);
    assert!(pending >= 1, "the committed record survived SIGKILL");

    // Phase 2: restart the daemon with an acking case system.
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let daemon = start_daemon(&setup);
    let mut received: HashMap<String, u32> = HashMap::new();
    let mut bytes_of_record = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (outbox_depth(&setup.outbox).0 > 0 || received.is_empty()) && Instant::now() < deadline {
        if let Some(r) = case.next_record(Duration::from_millis(200)) {
            let id = r["record_id"].as_str().unwrap().to_string();
            if id == record_id {
                bytes_of_record = Some(r["sha256"].as_str().unwrap().to_string());
            }
            *received.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        outbox_depth(&setup.outbox),
        (0, 0),
        "outbox drained:\n{}",
        daemon.stderr()
    );
    // Listen a little longer: no duplicate may follow the ack.
    while let Some(r) = case.next_record(Duration::from_secs(2)) {
        *received
            .entry(r["record_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        received.get(&record_id),
        Some(&1),
        "delivered exactly once more: {received:?}"
    );
    assert_eq!(
        bytes_of_record.as_deref(),
        Some(sha.as_str()),
        "same wire bytes"
    );
}
