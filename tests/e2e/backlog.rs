//! The case system is offline for a while: the station keeps capturing, and the backlog drains
//! in order when the case system returns.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::harness_mqtt::*;

#[test]
fn the_backlog_drains_in_order_when_the_case_system_returns() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let daemon = start_daemon(&station.setup);
    const N: u64 = 40;
    for i in 0..N {
        drop_page(
            &station.inbox,
            &format!("p{i:03}.png"),
            &page_bytes(i, 20_000 + i as usize * 997),
        );
        // Scanner order: one page after the other.
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_until(Duration::from_secs(60), "every page committed", || {
        outbox_stats(&station.setup.outbox).depth == N
    });
    // Nobody listens: published and re-published, nothing leaves the outbox.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(outbox_stats(&station.setup.outbox).depth, N);

    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut order = Vec::new();
    while order.len() < N as usize {
        let e = consumer
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("{} of {N} drained\n{}", order.len(), daemon.stderr()));
        if e["event"] == "stored" && e["duplicate"].is_null() {
            order.push(e["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(
        order,
        (1..=N).collect::<Vec<_>>(),
        "drained in sequence order"
    );
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_stats(&station.setup.outbox).depth == 0
    });
}
