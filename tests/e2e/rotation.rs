//! Keys change and records keep flowing: a station key and a case-system key rotated while
//! records are queued; checkpoints in the chain; nothing personal at rest outside the ciphertext.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// Records queued under the old keys are still delivered after both keys are rotated in the
/// configuration; new records use the new keys; the chain runs on across the rotation.
#[test]
fn rotating_both_keys_keeps_queued_records_and_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let mut sim = start_sim(&link, 600, 400);
    let setup = setup_station(dir.path(), broker.port, &link);

    // Phase 1: records are sealed under the first keys and stay queued (nobody acks).
    let observer = CaseSystem::start(broker.port, &setup, None, false);
    let mut daemon = start_daemon(&setup);
    for _ in 0..2 {
        observer
            .next_record(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
    }
    sim.kill9();
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(10)).is_some());
    drop(observer);
    let (queued, _) = outbox_depth(&setup.outbox);
    assert!(queued >= 2);

    // Phase 2: both keys rotated; the case system knows old and new keys.
    let (new_station, new_case) = setup.rotate_keys("2");
    let received = dir.path().join("received");
    std::fs::create_dir_all(&received).unwrap();
    let case = CaseSystem::start_signing(
        broker.port,
        &setup,
        &[&setup.public_key, &new_station],
        &[&setup.decrypt_key, &new_case],
        Some(&received),
        true,
    );
    let _sim = start_sim(&link, 600, 400);
    let daemon = start_daemon(&setup);
    let new_kid =
        serde_json::from_slice::<Value>(&std::fs::read(&new_station).unwrap()).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_string();
    let mut by_seq: BTreeMap<u64, Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while by_seq
        .values()
        .filter(|r| r["kid"] == new_kid.as_str())
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no new-key records:\n{}",
            daemon.stderr()
        );
        if let Some(r) = case.next_record(Duration::from_millis(500)) {
            assert_eq!(r["joserfc"], true, "{r}");
            assert_eq!(r["jwcrypto"], true, "{r}");
            by_seq.insert(r["seq"].as_u64().unwrap(), r);
        }
    }
    let old: Vec<u64> = by_seq
        .iter()
        .filter(|(_, r)| r["kid"] != new_kid.as_str())
        .map(|(s, _)| *s)
        .collect();
    assert!(
        old.len() >= 2,
        "queued records under the old key arrived: {old:?}"
    );
    let first_new = by_seq
        .iter()
        .find(|(_, r)| r["kid"] == new_kid.as_str())
        .map(|(s, _)| *s)
        .unwrap();
    assert!(
        first_new > *old.iter().max().unwrap(),
        "new key only after the old records"
    );

    // The whole received set verifies as one chain with both keyrings.
    let verify = Command::new(bin())
        .arg("verify")
        .args(["--skip-blobs", "--station-key"])
        .arg(&setup.public_key)
        .arg("--station-key")
        .arg(&new_station)
        .arg("--decrypt-key")
        .arg(&setup.decrypt_key)
        .arg("--decrypt-key")
        .arg(&new_case)
        .arg(&received)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

/// With `checkpoint_every = 2`, every third record is a checkpoint naming its chain position.
#[test]
fn checkpoints_attest_the_chain_head() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let _sim = start_sim(&link, 500, 300);
    let setup = setup_station(dir.path(), broker.port, &link);
    setup.append_config("[records]\ncheckpoint_every = 2\n");
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let daemon = start_daemon(&setup);
    let mut records = Vec::new();
    while records.len() < 6 {
        let r = case
            .next_record(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
        assert_eq!(r["joserfc"], true, "{r}");
        records.push(r);
    }
    records.sort_by_key(|r| r["seq"].as_u64().unwrap());
    let checkpoints: Vec<&Value> = records
        .iter()
        .filter(|r| r["payload"]["kind"] == "checkpoint")
        .collect();
    assert_eq!(checkpoints.len(), 2, "{records:?}");
    for cp in checkpoints {
        let seq = cp["seq"].as_u64().unwrap();
        assert_eq!(seq % 3, 0, "a checkpoint after every two captures");
        assert_eq!(cp["payload"]["checkpoint"]["count"], seq);
        assert_eq!(cp["payload"]["checkpoint"]["head"], cp["prev"]);
        let before = records.iter().find(|r| r["seq"] == seq - 1).unwrap();
        assert_eq!(
            cp["prev"],
            format!("sha256:{}", before["sha256"].as_str().unwrap())
        );
    }
}

/// What the station keeps on disk is ciphertext: no ID number or name of the fake cards appears
/// in the outbox files (database and write-ahead log) while records wait there.
#[test]
fn the_outbox_holds_no_personal_data_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let _sim = start_sim(&link, 500, 300);
    let setup = setup_station(dir.path(), broker.port, &link);
    let observer = CaseSystem::start(broker.port, &setup, None, false);
    let daemon = start_daemon(&setup);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let r = observer
            .next_record(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
        seen.push(r);
    }
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(setup.outbox.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        // Files only (the control socket lives here too).
        if path.is_file() {
            at_rest.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(at_rest.len() > 4096, "the outbox has content");
    for r in &seen {
        let identity = &r["payload"]["identities"][0];
        for field in ["id_number", "name", "address"] {
            let value = identity[field].as_str().unwrap();
            let hit = at_rest.windows(value.len()).any(|w| w == value.as_bytes());
            assert!(!hit, "{field} found in clear in the outbox");
        }
    }
}

/// A station key of type P-256 (the option for keys held in hardware tokens) signs ES256
/// records that joserfc and jwcrypto verify.
#[test]
fn es256_station_records_verify_in_joserfc_and_jwcrypto() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let _sim = start_sim(&link, 500, 300);
    let setup = setup_station(dir.path(), broker.port, &link);
    let (station, case_key) = setup.rotate_keys_with("p256", "p256");
    let case =
        CaseSystem::start_signing(broker.port, &setup, &[&station], &[&case_key], None, true);
    let daemon = start_daemon(&setup);
    let r = case
        .next_record(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
    assert_eq!(r["alg"], "ES256", "{r}");
    assert_eq!(r["joserfc"], true, "{r}");
    assert_eq!(r["jwcrypto"], true, "{r}");
    assert_eq!(r["acked"], true, "{r}");
}
