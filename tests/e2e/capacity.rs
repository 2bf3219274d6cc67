//! A full outbox refuses new captures (the files stay in the hot folder, the daemon says why)
//! and keeps everything it holds; once the case system acknowledges, the rest is taken.

use std::time::Duration;

use crate::harness::*;
use crate::harness_mqtt::*;

#[test]
fn a_full_outbox_refuses_new_captures_and_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "[outbox]\nmax_records = 5\n");
    let daemon = start_daemon(&station.setup);
    for i in 0..8 {
        drop_page(&station.inbox, &format!("p{i}.jpg"), &page_bytes(i, 10_000));
    }
    wait_until(Duration::from_secs(30), "the refusal in the log", || {
        strip_ansi(&daemon.stderr()).contains("outbox is full")
    });
    std::thread::sleep(Duration::from_secs(2));
    let stats = outbox_stats(&station.setup.outbox);
    assert_eq!(
        stats.depth, 5,
        "the limit holds and nothing held was dropped"
    );
    let waiting = std::fs::read_dir(&station.inbox)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(waiting, 3, "refused pages stay in the hot folder");
    let log = strip_ansi(&daemon.stderr());
    assert!(
        log.contains("5 records held, limit 5 (outbox.max_records)"),
        "{log}"
    );

    // The case system comes: the five are delivered, then the three refused ones.
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    wait_until(Duration::from_secs(90), "all eight stored", || {
        consumer.stored().len() == 8
    });
    let seqs: Vec<u64> = consumer
        .stored()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_stats(&station.setup.outbox).depth == 0
    });
}
