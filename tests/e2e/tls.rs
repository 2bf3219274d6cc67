//! TLS to a Mosquitto TLS listener with certificates generated at test time (rcgen): mutual TLS,
//! password over TLS, and a broker the station must not trust.

use std::time::Duration;

use crate::harness::*;
use crate::harness_mqtt::*;

#[test]
fn mutual_tls_delivers_and_an_unknown_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&dir.path().join("pki"));
    let broker = Broker::start(
        dir.path(),
        BrokerSetup {
            tls: Some((&pki, true)),
            ..Default::default()
        },
    );
    let station = folder_station(&dir.path().join("s1"), broker.port, "", &pki.tls_table());
    let consumer = RefConsumer::start(
        broker.port,
        &station.setup,
        &dir.path().join("case"),
        Some(&pki),
    );
    let daemon = start_daemon(&station.setup);
    drop_page(&station.inbox, "p.jpg", &page_bytes(3, 200_000));
    wait_until(
        Duration::from_secs(30),
        "the page stored over mutual TLS",
        || consumer.stored().len() == 1,
    );
    drop(daemon);

    // A station that trusts another CA never talks to this broker, and keeps its record.
    let other = folder_station(
        &dir.path().join("s2"),
        broker.port,
        "",
        &format!("[mqtt.tls]\nca_file = \"{}\"\n", pki.other_ca.display()),
    );
    let daemon = start_daemon(&other.setup);
    drop_page(&other.inbox, "q.jpg", &page_bytes(4, 1000));
    wait_until(Duration::from_secs(20), "the record committed", || {
        outbox_stats(&other.setup.outbox).depth == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    let log = strip_ansi(&daemon.stderr());
    assert!(!log.contains("uplink connected"), "{log}");
    assert_eq!(outbox_stats(&other.setup.outbox).depth, 1, "kept");
}

#[test]
fn username_and_password_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&dir.path().join("pki"));
    let broker = Broker::start(
        dir.path(),
        BrokerSetup {
            tls: Some((&pki, false)),
            password: Some(("window", "s3cret")),
            ..Default::default()
        },
    );
    let pw = dir.path().join("mqtt-password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    // A secret file: the daemon refuses one that group or others can read.
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let station = folder_station(
        dir.path(),
        broker.port,
        &format!(
            "username = \"window\"\npassword_file = \"{}\"",
            pw.display()
        ),
        &format!("[mqtt.tls]\nca_file = \"{}\"\n", pki.ca.display()),
    );
    let daemon = start_daemon(&station.setup);
    wait_until(
        Duration::from_secs(20),
        "connected with the password",
        || strip_ansi(&daemon.stderr()).contains("uplink connected"),
    );
    drop(daemon);
    // A wrong password is refused by the broker: no connection.
    std::fs::write(&pw, "wrong\n").unwrap();
    let other = start_daemon(&station.setup);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !strip_ansi(&other.stderr()).contains("uplink connected"),
        "{}",
        other.stderr()
    );
}
