use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

fn kid_of(pubkey: &std::path::Path) -> String {
    let jwk: Value = serde_json::from_slice(&std::fs::read(pubkey).unwrap()).unwrap();
    jwk["kid"].as_str().unwrap().to_string()
}

fn next(case: &CaseSystem, daemon: &Proc) -> Value {
    case.next_record(Duration::from_secs(30))
        .unwrap_or_else(|| {
            panic!(
                "no record reached the case system\n--- daemon ---\n{}\n--- case system ---\n{}",
                daemon.stderr(),
                case.proc.stderr()
            )
        })
}

/// The whole chain with real peers: simulator on a pty → daemon → Mosquitto → Python case system.
#[test]
fn records_verify_independently_are_acked_and_leave_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let _sim = start_sim(&link, 700, 500);
    let setup = setup_station(dir.path(), broker.port, &link);
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let mut daemon = start_daemon(&setup);
    let kid = kid_of(&setup.public_key);

    let records: Vec<Value> = (0..3).map(|_| next(&case, &daemon)).collect();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["joserfc"], true, "joserfc verifies: {r}");
        assert_eq!(r["jwcrypto"], true, "jwcrypto verifies: {r}");
        assert_eq!(
            r["blobs_ok"], true,
            "blobs arrived and match the manifest: {r}"
        );
        assert_eq!(r["acked"], true);
        assert_eq!(r["encrypted"], true, "records travel encrypted: {r}");
        assert_eq!(r["kid"], kid.as_str());
        assert_eq!(r["alg"], "EdDSA");
        assert_eq!(r["typ"], "vnd.countersign.record+jws");
        assert_eq!(r["topic"], format!("countersign/v1/{STATION}/records"));
        assert_eq!(r["content_type"], "application/jose");
        // MQTT properties carry ids only, never personal data.
        let props: Vec<&str> = r["user_properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap())
            .collect();
        assert_eq!(props, ["record_id", "seq"], "{r}");
        let payload = &r["payload"];
        assert_eq!(payload["station"], STATION);
        assert_eq!(payload["seq"], (i + 1) as u64, "per-station sequence");
        assert_eq!(payload["devices"][0]["kind"], "ga467");
        assert_eq!(payload["devices"][0]["sam_id"].as_str().unwrap().len(), 32);
        let identity = &payload["identities"][0];
        let number = identity["id_number"].as_str().unwrap();
        assert!(ga467::card::id_number_valid(number), "{number}");
        assert_eq!(identity["document"], "resident");
        assert_eq!(payload["evidence"][0]["role"], "face_photo_wlt");
        assert_eq!(payload["evidence"][0]["size"], 1024);
    }
    // The hash chain: each record names the exact wire bytes of the one before.
    assert_eq!(records[0]["prev"], Value::Null);
    for pair in records.windows(2) {
        assert_eq!(
            pair[1]["prev"],
            format!("sha256:{}", pair[0]["sha256"].as_str().unwrap())
        );
    }
    // Consecutive placements of the simulator's cards are distinct reads.
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["payload"]["identities"][0]["id_number"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);

    wait_until(Duration::from_secs(10), "an empty outbox", || {
        // New cards keep arriving; the outbox drains to zero between them.
        outbox_depth(&setup.outbox).0 == 0
    });

    daemon.sigterm();
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("daemon stops on SIGTERM");
    assert!(
        status.success(),
        "clean exit: {status:?}\n{}",
        daemon.stderr()
    );

    // No personal data in the info-level log.
    let log = daemon.stderr();
    for r in &records {
        let identity = &r["payload"]["identities"][0];
        for field in ["id_number", "name", "address"] {
            let value = identity[field].as_str().unwrap();
            assert!(!log.contains(value), "log leaks {field}:\n{log}");
        }
    }
    assert!(log.contains("card read"), "{log}");
}

/// Records committed while nobody acks survive a broker restart (which forgets everything) and
/// are delivered once a case system is back.
#[test]
fn unacked_records_are_resent_after_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let mut sim = start_sim(&link, 600, 400);
    let setup = setup_station(dir.path(), broker.port, &link);
    let observer = CaseSystem::start(broker.port, &setup, None, false);
    let daemon = start_daemon(&setup);

    let first = next(&observer, &daemon);
    let second = next(&observer, &daemon);
    assert_eq!(second["acked"], false);
    // No more cards: what is committed now is all there is.
    sim.kill9();
    std::thread::sleep(Duration::from_millis(500));
    let (pending, _) = outbox_depth(&setup.outbox);
    assert!(
        pending >= 2,
        "unacked records stay in the outbox ({pending})"
    );
    drop(observer);

    let broker = broker.restart();
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < pending as usize {
        let r = next(&case, &daemon);
        assert_eq!(r["joserfc"], true);
        seen.insert(r["record_id"].as_str().unwrap().to_string());
    }
    assert!(seen.contains(first["record_id"].as_str().unwrap()));
    assert!(seen.contains(second["record_id"].as_str().unwrap()));
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_depth(&setup.outbox) == (0, 0)
    });
}
