//! Presence: the retained status message says online with version, devices and outbox depth,
//! follows changes, says offline before a clean shutdown, and the broker says it (Last Will)
//! when the daemon dies.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::harness_mqtt::*;

/// The retained status, read the way any client would.
fn status(port: u16) -> Option<Value> {
    let out = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-V",
            "mqttv5",
            "-C",
            "1",
            "-W",
            "2",
        ])
        .args(["-t", &format!("countersign/v1/{STATION}/status")])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn wait_status(port: u16, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(s) = status(port) {
            if f(&s) {
                return s;
            }
            last = Some(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("status never showed {what}; last: {last:?}");
}

#[test]
fn retained_status_online_on_change_and_offline_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let mut daemon = start_daemon(&station.setup);
    let s = wait_status(broker.port, "online with the folder ready", |s| {
        s["state"] == "online" && s["devices"]["scanner"] == "ready"
    });
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["outbox"]["depth"], 0);

    // Nobody acknowledges: the depth shows in the status.
    drop_page(&station.inbox, "p.jpg", &page_bytes(9, 5000));
    let s = wait_status(broker.port, "depth 1", |s| s["outbox"]["depth"] == 1);
    assert_eq!(s["state"], "online");

    // A clean shutdown says offline itself.
    daemon.sigterm();
    assert!(
        daemon
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    let s = wait_status(broker.port, "offline (shutdown)", |s| {
        s["state"] == "offline"
    });
    assert_eq!(s["reason"], "shutdown");

    // Killed: the broker publishes the Last Will.
    let mut daemon = start_daemon(&station.setup);
    wait_status(broker.port, "online again", |s| s["state"] == "online");
    daemon.kill9();
    let s = wait_status(broker.port, "offline (will)", |s| s["state"] == "offline");
    assert_eq!(s["reason"], "connection lost");
}
