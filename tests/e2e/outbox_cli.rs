//! `countersign outbox status|list|export|retry` beside a running daemon, dead letters from a
//! rejection, and a damaged outbox file moved aside at start.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use crate::harness_mqtt::*;

fn outbox_cmd(setup: &StationSetup, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("outbox")
        .args(args)
        .arg("--config")
        .arg(&setup.config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pending_ids(setup: &StationSetup) -> Vec<String> {
    let o = countersign::outbox::Outbox::open(&setup.outbox).unwrap();
    o.list(100)
        .unwrap()
        .into_iter()
        .map(|l| l.record_id)
        .collect()
}

#[test]
fn dead_letters_are_reported_exported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let setup = &station.setup;
    let daemon = start_daemon(setup);
    drop_page(&station.inbox, "a.jpg", &page_bytes(1, 100_000));
    drop_page(&station.inbox, "b.jpg", &page_bytes(2, 100_000));
    wait_until(Duration::from_secs(30), "two records committed", || {
        outbox_stats(&setup.outbox).depth == 2
    });
    let (ok, status, _) = outbox_cmd(setup, &["status"]);
    assert!(ok);
    assert!(status.contains("pending records: 2"), "{status}");
    assert!(status.contains("dead letters: 0"), "{status}");

    // The case system rejects the first record (a signed receipt bound to its bytes).
    let ids = pending_ids(setup);
    let first = pending_records(setup).remove(0);
    assert_eq!(first.0, ids[0]);
    let rejection = countersign::receipts::Outcome::Rejected {
        reason: "unknown case reference".into(),
    };
    let answer = receipt(
        &setup.case_sign,
        STATION,
        &ids[0],
        &rejection,
        &countersign::receipts::sha256_ref(&first.1),
        countersign::commands::now_secs(),
    );
    publish_answer(broker.port, &answer);
    wait_until(Duration::from_secs(20), "a dead letter", || {
        outbox_stats(&setup.outbox).dead_letters == 1
    });
    // The log line follows the commit the file shows: wait for it too.
    wait_until(Duration::from_secs(10), "the reason in the log", || {
        strip_ansi(&daemon.stderr()).contains("unknown case reference")
    });
    let (_, status, _) = outbox_cmd(setup, &["status"]);
    assert!(status.contains("pending records: 1"), "{status}");
    assert!(status.contains("dead letters: 1"), "{status}");
    let (_, list, _) = outbox_cmd(setup, &["list"]);
    assert!(
        list.contains(&ids[0]) && list.contains("unknown case reference"),
        "{list}"
    );

    let export = dir.path().join("export");
    let (ok, files, err) = outbox_cmd(setup, &["export", export.to_str().unwrap()]);
    assert!(ok, "{err}");
    let record_file = files.lines().next().unwrap().to_string();
    let wire = std::fs::read(&record_file).unwrap();
    let o = countersign::outbox::Outbox::open(&setup.outbox).unwrap();
    let dead = o.dead_letters().unwrap();
    assert_eq!(dead[0].record_id, ids[0]);
    assert!(
        record_file.ends_with(".jws") || record_file.ends_with(".jwe"),
        "{record_file}"
    );
    assert_eq!(
        wire.iter().filter(|b| **b == b'.').count() % 2,
        0,
        "compact JOSE"
    );
    assert_eq!(std::fs::read_dir(export.join("blobs")).unwrap().count(), 1);
    let meta = std::fs::read_to_string(export.join(format!("rejected/{}.json", ids[0]))).unwrap();
    assert!(meta.contains("unknown case reference"), "{meta}");
    // The export is what `countersign verify` reads: signature, decryption, blob hashes.
    let mut verify = Command::new(bin());
    verify
        .args(["verify", "--station-key"])
        .arg(&setup.public_key);
    if let Some(key) = decrypt_key(setup) {
        verify.arg("--decrypt-key").arg(key);
    }
    let out = verify.arg(&export).output().unwrap();
    assert!(
        out.status.success(),
        "verify accepts the export:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Retry: the dead letter is delivered to a case system that takes it.
    let (ok, _, err) = outbox_cmd(setup, &["retry", &ids[0]]);
    assert!(ok, "{err}");
    let (ok, _, err) = outbox_cmd(setup, &["retry", "no-such-record"]);
    assert!(!ok && err.contains("no dead letter"), "{err}");
    let consumer = RefConsumer::start(broker.port, setup, &dir.path().join("case"), None);
    wait_until(Duration::from_secs(30), "both stored", || {
        consumer.stored().len() == 2
    });
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_stats(&setup.outbox) == countersign::outbox::Stats::default()
    });
}

#[test]
fn a_damaged_outbox_is_moved_aside_and_the_daemon_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let setup = &station.setup;
    std::fs::create_dir_all(setup.outbox.parent().unwrap()).unwrap();
    let garbage = b"this is not an SQLite database, it was damaged on the way".repeat(100);
    std::fs::write(&setup.outbox, &garbage).unwrap();
    let consumer = RefConsumer::start(broker.port, setup, &dir.path().join("case"), None);
    let daemon = start_daemon(setup);
    drop_page(&station.inbox, "a.jpg", &page_bytes(5, 50_000));
    wait_until(Duration::from_secs(30), "the page delivered", || {
        consumer.stored().len() == 1
    });
    let log = strip_ansi(&daemon.stderr());
    assert!(log.contains("the outbox file was damaged"), "{log}");
    let state = setup.outbox.parent().unwrap();
    let damaged: Vec<_> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("outbox.sqlite.damaged-"))
        .collect();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert_eq!(
        std::fs::read(&damaged[0]).unwrap(),
        garbage,
        "never deleted, never changed"
    );
}
