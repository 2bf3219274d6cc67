//! Signed receipts with a real Mosquitto: only the case system's key, naming this station and the
//! record's exact bytes, takes a record out of the outbox; everything else changes nothing, is
//! counted in /metrics and logged at most once a minute. Interop: receipts signed by joserfc,
//! jwcrypto and (GM profile) gmssl.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use countersign::commands::now_secs;
use countersign::receipts::{Outcome, sha256_ref};

use crate::harness::*;
use crate::harness_mqtt::*;

const REFUSED_LINE: &str = "an answer on the acks topic was refused";

fn metrics_table(port: u16) -> String {
    format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n")
}

fn refused(metrics: u16, reason: &str) -> u64 {
    let body = http_get(metrics, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let key = format!("countersign_acks_refused_total{{reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn kid_of(public: &Path) -> String {
    let jwk: serde_json::Value = serde_json::from_slice(&std::fs::read(public).unwrap()).unwrap();
    jwk["kid"].as_str().unwrap().to_string()
}

fn kept_receipts(setup: &StationSetup) -> Vec<countersign::outbox::KeptReceipt> {
    countersign::outbox::Outbox::open(&setup.outbox)
        .unwrap()
        .receipts(None)
        .unwrap()
}

#[test]
fn forged_unsigned_foreign_stale_and_malformed_answers_leave_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let metrics = free_port();
    let station = folder_station(dir.path(), broker.port, "", &metrics_table(metrics));
    let setup = &station.setup;
    let daemon = start_daemon(setup);
    drop_page(&station.inbox, "a.jpg", &page_bytes(1, 50_000));
    wait_until(Duration::from_secs(30), "a record committed", || {
        outbox_stats(&setup.outbox).depth == 1
    });
    let (id, wire) = pending_records(setup).remove(0);
    let hash = sha256_ref(&wire);
    let forger = dir.path().join("forger");
    keygen(&[], &forger);
    let now = now_secs();
    let stored = |key: &Path, station: &str, sha: &str, iat: i64| {
        receipt(key, station, &id, &Outcome::Stored, sha, iat)
    };
    let cases = [
        (
            "unsigned",
            format!(r#"{{"record_id":"{id}","status":"stored"}}"#),
        ),
        (
            "bad_signature",
            stored(&forger.join("station.jwk"), STATION, &hash, now),
        ),
        (
            "wrong_station",
            stored(&setup.case_sign, "window-99", &hash, now),
        ),
        (
            "wrong_hash",
            stored(&setup.case_sign, STATION, &sha256_ref(b"other bytes"), now),
        ),
        (
            "stale",
            stored(&setup.case_sign, STATION, &hash, now - 8 * 86_400),
        ),
        ("malformed", "%%% not a receipt %%%".to_string()),
    ];
    for (_, payload) in &cases {
        publish_answer(broker.port, payload);
    }
    wait_until(Duration::from_secs(20), "every refusal counted", || {
        cases
            .iter()
            .all(|(reason, _)| refused(metrics, reason) == 1)
    });
    let stats = outbox_stats(&setup.outbox);
    assert_eq!((stats.depth, stats.dead_letters), (1, 0), "nothing changed");
    assert_eq!(pending_records(setup)[0].0, id);
    // Six refusals within a minute: one log line, which names its reason and nothing of the
    // message (no record id, no signature).
    let log = strip_ansi(&daemon.stderr());
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(REFUSED_LINE)).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("reason=\"unsigned\""), "{}", lines[0]);
    assert!(!lines[0].contains(&id), "{}", lines[0]);

    // The case system's real receipt takes it out, and is kept.
    publish_answer(broker.port, &stored(&setup.case_sign, STATION, &hash, now));
    wait_until(Duration::from_secs(20), "the record acknowledged", || {
        outbox_stats(&setup.outbox).depth == 0
    });
    let kept = kept_receipts(setup);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].record_id.as_str(), kept[0].status.as_str()),
        (id.as_str(), "stored")
    );
    assert_eq!(kept[0].record_sha256, hash);
    assert_eq!(
        kept[0].receipt.kid,
        kid_of(&setup.case_sign.with_file_name("station.pub.jwk"))
    );
    let log = strip_ansi(&daemon.stderr());
    assert!(
        log.contains("receipts signed by one case-system key accepted")
            && log.contains("unsigned answers refused"),
        "the start line says what is accepted: {log}"
    );
}

#[test]
fn a_receipt_for_other_bytes_is_refused_and_real_ones_from_python_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let metrics = free_port();
    let station = folder_station(dir.path(), broker.port, "", &metrics_table(metrics));
    let setup = &station.setup;
    let daemon = start_daemon(setup);
    drop_page(&station.inbox, "a.jpg", &page_bytes(1, 50_000));
    drop_page(&station.inbox, "b.jpg", &page_bytes(2, 50_000));
    wait_until(Duration::from_secs(30), "two records committed", || {
        outbox_stats(&setup.outbox).depth == 2
    });
    let pending = pending_records(setup);
    let ((a, a_wire), (b, b_wire)) = (&pending[0], &pending[1]);
    let (a_hash, b_hash) = (sha256_ref(a_wire), sha256_ref(b_wire));
    let now = now_secs();
    let key = &setup.case_sign;
    // What the case system signs when it was handed A's bytes under B's id (a substituted
    // record), and a rejection bound to the wrong bytes: both refused, nothing moves.
    publish_answer(
        broker.port,
        &receipt(key, STATION, b, &Outcome::Stored, &a_hash, now),
    );
    let rejection = Outcome::Rejected {
        reason: "schema".into(),
    };
    publish_answer(
        broker.port,
        &receipt(key, STATION, a, &rejection, &b_hash, now),
    );
    wait_until(Duration::from_secs(20), "two wrong hashes counted", || {
        refused(metrics, "wrong_hash") == 2
    });
    let stats = outbox_stats(&setup.outbox);
    assert_eq!((stats.depth, stats.dead_letters), (2, 0));

    // A's real receipt takes A out; replayed, it changes nothing more.
    let real_a = receipt(key, STATION, a, &Outcome::Stored, &a_hash, now);
    publish_answer(broker.port, &real_a);
    wait_until(Duration::from_secs(20), "A acknowledged", || {
        outbox_stats(&setup.outbox).depth == 1
    });
    publish_answer(broker.port, &real_a);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pending_records(setup)[0].0, *b, "B is still there");

    // The independent case system signs with jwcrypto: B is delivered and acknowledged.
    let _case = CaseSystem::start_jwcrypto(broker.port, setup);
    wait_until(
        Duration::from_secs(60),
        "B acknowledged by the Python case system",
        || outbox_stats(&setup.outbox).depth == 0,
    );
    let kept = kept_receipts(setup);
    let ids: Vec<&str> = kept.iter().map(|k| k.record_id.as_str()).collect();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    assert_eq!(kept[1].record_sha256, b_hash);
    assert_eq!(kept[1].receipt.alg, "EdDSA");
    assert_eq!(refused(metrics, "wrong_hash"), 2, "{}", daemon.stderr());

    // The administrator's view: which key acknowledged which record, and an export that
    // `verify` checks beside the records (as the case system archived them).
    let case_public = setup.case_sign.with_file_name("station.pub.jwk");
    let listed = outbox_receipts(setup, &["--json"]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["record_id"], a.as_str());
    assert_eq!(listed[1]["kid"], kid_of(&case_public).as_str());
    assert_eq!(listed[1]["record_sha256"], b_hash.as_str());
    assert!(outbox_receipts(setup, &["--json", "--since", "2099-01-01"]).is_empty());
    assert_eq!(
        outbox_receipts(setup, &["--json", "--since", "1h"]).len(),
        2
    );
    let text = Command::new(bin())
        .args(["outbox", "receipts", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("{b}  seq 2  stored  by {}", kid_of(&case_public))),
        "{text}"
    );
    let export = dir.path().join("audit");
    let out = Command::new(bin())
        .args(["outbox", "receipts", "--config"])
        .arg(&setup.config)
        .arg("--export")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(export.join("records")).unwrap();
    for (id, wire) in &pending {
        std::fs::write(export.join("records").join(format!("{id}.jwe")), wire).unwrap();
    }
    let verify = |receipt_key: &Path| {
        let out = Command::new(bin())
            .arg("verify")
            .arg("--station-key")
            .arg(&setup.public_key)
            .arg("--decrypt-key")
            .arg(&setup.decrypt_key)
            .arg("--receipt-key")
            .arg(receipt_key)
            .arg("--skip-blobs")
            .arg(&export)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, report) = verify(&case_public);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains(&format!("receipt for record {b}  stored by"))
            && report.contains("2 receipt(s) checked: 2 verified, 0 problem(s)")
            && report.matches("the record's bytes match").count() == 2,
        "{report}"
    );
    // Another key's view, then A's receipt passed off as B's: both fail.
    let other = dir.path().join("other-case-system");
    keygen(&[], &other);
    let (code, report) = verify(&other.join("station.pub.jwk"));
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("FAIL  bad receipt"), "{report}");
    let receipts = export.join("receipts");
    std::fs::copy(
        receipts.join(format!("{a}.jws")),
        receipts.join(format!("{b}.jws")),
    )
    .unwrap();
    let (code, report) = verify(&case_public);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "FAIL  receipt mismatch: record {a} ({}): the file is named {b}",
            receipts.join(format!("{b}.jws")).display()
        )),
        "{report}"
    );
}

/// `countersign outbox receipts --json ARGS`, one object per line.
fn outbox_receipts(setup: &StationSetup, args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(bin())
        .args(["outbox", "receipts", "--config"])
        .arg(&setup.config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A station upgraded with its old configuration (no [acks], no keys) keeps taking the unsigned
/// answers of its case system and says so; a new station with the same configuration refuses
/// them and says why.
#[test]
fn an_upgraded_station_keeps_working_and_a_new_one_is_signed_only() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let metrics = free_port();
    let station = folder_station(dir.path(), broker.port, "", &metrics_table(metrics));
    let setup = &station.setup;
    let config = std::fs::read_to_string(&setup.config).unwrap();
    let acks = config
        .lines()
        .skip_while(|l| *l != "[acks]")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&setup.config, config.replace(&acks, "")).unwrap();

    // New: unsigned answers refused.
    let mut daemon = start_daemon(setup);
    drop_page(&station.inbox, "a.jpg", &page_bytes(1, 30_000));
    wait_until(Duration::from_secs(30), "a record committed", || {
        outbox_stats(&setup.outbox).depth == 1
    });
    let id = pending_records(setup)[0].0.clone();
    publish_answer(
        broker.port,
        &format!(r#"{{"record_id":"{id}","status":"stored"}}"#),
    );
    wait_until(
        Duration::from_secs(20),
        "the unsigned answer refused",
        || refused(metrics, "unsigned") == 1,
    );
    assert_eq!(outbox_stats(&setup.outbox).depth, 1);
    let log = strip_ansi(&daemon.stderr());
    assert!(log.contains("no record can leave the outbox"), "{log}");
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(20));

    // The same file as a version before receipts left it.
    let sql = "DROP INDEX receipts_by_time; DROP TABLE receipts; DELETE FROM meta WHERE key = 'upgraded_before_receipts';";
    let status = Command::new(python())
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(&setup.outbox)
        .arg(sql)
        .status()
        .unwrap();
    assert!(status.success());
    let daemon = start_daemon(setup);
    let case = CaseSystem::start_with_keys(
        broker.port,
        &[&setup.public_key],
        &[&setup.decrypt_key],
        None,
        true,
    );
    wait_until(
        Duration::from_secs(60),
        "drained with unsigned answers",
        || outbox_stats(&setup.outbox).depth == 0,
    );
    drop(case);
    let log = strip_ansi(&daemon.stderr());
    assert!(
        log.contains("unsigned answers accepted too, because this station was upgraded"),
        "{log}"
    );
    assert!(
        kept_receipts(setup).is_empty(),
        "an unsigned answer is no receipt"
    );
}

/// The GM profile: SM2 receipts signed by gmssl (an independent SM2 implementation) take records
/// out; an Ed25519 receipt cannot, even for the right bytes.
#[test]
fn gm_profile_receipts_signed_by_gmssl_are_accepted_and_others_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let metrics = free_port();
    let station = folder_station(dir.path(), broker.port, "", &metrics_table(metrics));
    let setup = &station.setup;
    // SM2 everywhere: station key, case-system encryption key, case-system signing key.
    let gm = dir.path().join("gm");
    keygen(&["--alg", "sm2"], &gm.join("station"));
    keygen(&["--recipient", "--alg", "sm2"], &gm.join("case"));
    keygen(&["--alg", "sm2"], &gm.join("case-sign"));
    let config = std::fs::read_to_string(&setup.config).unwrap();
    let config = config
        .replace(
            &setup
                .public_key
                .with_file_name("station.jwk")
                .display()
                .to_string(),
            &gm.join("station/station.jwk").display().to_string(),
        )
        .replace(
            &setup
                .decrypt_key
                .with_file_name("case-system.pub.jwk")
                .display()
                .to_string(),
            &gm.join("case/case-system.pub.jwk").display().to_string(),
        )
        .replace(
            &setup
                .case_sign
                .with_file_name("station.pub.jwk")
                .display()
                .to_string(),
            &gm.join("case-sign/station.pub.jwk").display().to_string(),
        )
        .replace("[crypto]\n", "[crypto]\nprofile = \"gm\"\n");
    std::fs::write(&setup.config, config).unwrap();
    let daemon = start_daemon(setup);
    drop_page(&station.inbox, "a.jpg", &page_bytes(1, 30_000));
    wait_until(Duration::from_secs(30), "a record committed", || {
        outbox_stats(&setup.outbox).depth == 1
    });
    let (id, wire) = pending_records(setup).remove(0);
    assert_eq!(wire.iter().filter(|b| **b == b'.').count(), 4, "a JWE");
    let record_file = dir.path().join("record.jwe");
    std::fs::write(&record_file, &wire).unwrap();

    // Ed25519, by the key that signs in the standard profile: refused.
    let ed = receipt(
        &setup.case_sign,
        STATION,
        &id,
        &Outcome::Stored,
        &sha256_ref(&wire),
        now_secs(),
    );
    publish_answer(broker.port, &ed);
    wait_until(
        Duration::from_secs(20),
        "the Ed25519 receipt refused",
        || refused(metrics, "bad_signature") == 1,
    );
    assert_eq!(outbox_stats(&setup.outbox).depth, 1);

    // SM2 by gmssl: accepted.
    let signed = Command::new(python())
        .arg(peer_script("receipt.py"))
        .args([
            "sign",
            "--signer",
            "gmssl",
            "--station",
            STATION,
            "--status",
            "stored",
        ])
        .args(["--record-id", &id, "--key"])
        .arg(gm.join("case-sign/station.jwk"))
        .arg("--record-file")
        .arg(&record_file)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let jws = String::from_utf8(signed.stdout).unwrap();
    publish_answer(broker.port, jws.trim());
    wait_until(Duration::from_secs(20), "the SM2 receipt applied", || {
        outbox_stats(&setup.outbox).depth == 0
    });
    let kept = kept_receipts(setup);
    assert_eq!(kept.len(), 1, "{}", daemon.stderr());
    assert_eq!(kept[0].receipt.alg, "SM2");
    assert_eq!(kept[0].receipt.jws, jws.trim());
}

/// Anyone who can publish on the acks topic can send far more messages than every buffer between
/// the broker and the station holds (the MQTT client's request channel, the broker's in-flight
/// window to the station). Each must still be acknowledged to the broker: one lost PUBACK holds a
/// slot of the broker's window for the rest of the connection, and twenty stall delivery for good.
#[test]
fn a_flood_of_forged_answers_does_not_stall_delivery() {
    const PAGES: u64 = 20;
    const FLOOD: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let metrics = free_port();
    let station = folder_station(dir.path(), broker.port, "", &metrics_table(metrics));
    let setup = &station.setup;
    let daemon = start_daemon(setup);
    for i in 0..PAGES {
        drop_page(
            &station.inbox,
            &format!("p{i:03}.jpg"),
            &page_bytes(i, 8_000),
        );
    }
    wait_until(Duration::from_secs(60), "every page committed", || {
        outbox_stats(&setup.outbox).depth == PAGES
    });
    // The flood, as fast as mosquitto_pub sends: unsigned answers and garbage for ids the
    // station holds and does not.
    let ids: Vec<String> = pending_records(setup)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let lines: String = (0..FLOOD)
        .map(|i| match i % 3 {
            0 => format!(
                "{{\"record_id\":\"{}\",\"status\":\"stored\"}}\n",
                ids[i % ids.len()]
            ),
            1 => format!("forged.{i}.x\n"),
            _ => format!("{{\"record_id\":\"r{i}\",\"status\":\"rejected\"}}\n"),
        })
        .collect();
    let mut flooder = Command::new("mosquitto_pub")
        .args([
            "-p",
            &broker.port.to_string(),
            "-h",
            "127.0.0.1",
            "-q",
            "1",
            "-V",
            "mqttv5",
        ])
        .args(["-t", &format!("countersign/v1/{STATION}/acks"), "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = flooder.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = stdin.write_all(lines.as_bytes());
    });
    // The case system answers for real during the flood.
    let consumer = RefConsumer::start(broker.port, setup, &dir.path().join("case"), None);
    writer.join().unwrap();
    assert!(flooder.wait().unwrap().success(), "mosquitto_pub");
    wait_until(
        Duration::from_secs(60),
        "every record acknowledged after the flood",
        || outbox_stats(&setup.outbox).depth == 0,
    );
    assert_eq!(consumer.stored().len() as u64, PAGES);
    let counted: u64 = ["unsigned", "malformed"]
        .iter()
        .map(|r| refused(metrics, r))
        .sum();
    let log = strip_ansi(&daemon.stderr());
    // Mosquitto queues 1000 messages for a client that is behind (max_queued_messages) and drops
    // the rest: at least that many reach the station, and each is counted.
    assert!(
        counted >= 1000,
        "{counted} refusals counted\n{}",
        log.lines()
            .filter(|l| l.contains("missed") || l.contains("refused"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!log.contains("cannot queue the MQTT ack"), "{log}");
}
