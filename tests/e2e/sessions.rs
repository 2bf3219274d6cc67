//! Case sessions and commands end to end: a Python case system signs commands (joserfc) and
//! sends them over a real Mosquitto (paho-mqtt); the daemon reads cards from the pty simulator
//! into the session and seals one record, which the independent consumer verifies.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::harness_idcard::{plain, start_scenario_sim};
use crate::harness_mqtt::{send_command, trust_case_system_commands};

/// A resident card, then a 2023 foreign permanent residence card, each placed once.
const TWO_CARDS: &str = r#"
[cards.resident]
fake = 0

[cards.foreigner]
fake = 4

[[at]]
ms = 1500
place = "resident"

[[at]]
ms = 2300
remove = true

[[at]]
ms = 3000
place = "foreigner"

[[at]]
ms = 3800
remove = true
"#;

/// A station that accepts commands signed by `case-sign/station.jwk`.
fn station(dir: &Path, port: u16, link: &Path, extra: &str) -> StationSetup {
    let setup = setup_station(dir, port, link);
    trust_case_system_commands(&setup, extra);
    setup
}

fn local(setup: &StationSetup, args: &[&str]) -> Value {
    let out = Command::new(bin())
        .arg("session")
        .arg("--config")
        .arg(&setup.config)
        .args(args)
        .output()
        .unwrap();
    // Exit 2 with nothing on stdout: the daemon is not listening (yet).
    serde_json::from_slice(&out.stdout).unwrap_or_else(
        |_| json!({"status": "unreachable", "stderr": String::from_utf8_lossy(&out.stderr)}),
    )
}

fn wait_for_control(setup: &StationSetup) {
    wait_until(
        Duration::from_secs(20),
        "the daemon's control socket",
        || local(setup, &["status"])["status"] == "accepted",
    );
}

fn wait_identities(setup: &StationSetup, n: u64, daemon: &Proc) {
    wait_until(Duration::from_secs(30), "cards in the session", || {
        let status = local(setup, &["status"]);
        status["result"]["session"]["identities"].as_u64() == Some(n)
    });
    let _ = daemon;
}

fn reason(response: &Value) -> &str {
    assert_eq!(response["status"], "rejected", "{response}");
    response["reason"].as_str().unwrap()
}

/// Unsigned, wrong key, replayed, stale, malformed, wrong station, unknown command: each is
/// rejected and counted, and nothing else changes; only commands signed by the case system for
/// this station, fresh and first seen, are answered (with the reason when refused).
#[test]
fn commands_are_authenticated_and_only_the_case_systems_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let setup = station(dir.path(), broker.port, &dir.path().join("no-reader"), "");
    let daemon = start_daemon(&setup);
    let port = broker.port;
    let d = dir.path();
    let ping = send_command(port, d, "ping", json!({}), &[]);
    assert_eq!(ping["status"], "accepted", "{ping}\n{}", daemon.stderr());
    assert_eq!(ping["result"]["pong"], true);

    // Refused before the message is known to be the case system's, fresh and new: counted and
    // logged, never answered (anyone who can publish on the broker could make the station
    // publish otherwise).
    let unanswered = |extra: &[&str]| {
        let mut args = vec!["--timeout", "2"];
        args.extend_from_slice(extra);
        let response = send_command(port, d, "ping", json!({}), &args);
        assert_eq!(response, json!({"timeout": true}), "{extra:?} was answered");
    };
    unanswered(&["--unsigned"]);
    // Signed by a key the station does not trust.
    let other = d.join("other");
    assert!(
        Command::new(bin())
            .args(["keygen", "--out"])
            .arg(&other)
            .output()
            .unwrap()
            .status
            .success()
    );
    let wrong = Command::new(python())
        .arg(peer_script("commander.py"))
        .args(["--port", &port.to_string(), "--station", STATION, "--key"])
        .arg(other.join("station.jwk"))
        .args(["--timeout", "2", "ping"])
        .output()
        .unwrap();
    let wrong: Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(
        wrong,
        json!({"timeout": true}),
        "a foreign key was answered"
    );
    let first = send_command(port, d, "ping", json!({}), &["--id", "once"]);
    assert_eq!(first["status"], "accepted");
    unanswered(&["--id", "once"]);
    unanswered(&["--iat-offset=-900"]);
    unanswered(&["--raw", "x.y.z"]);
    unanswered(&["--raw", "{oops"]);
    unanswered(&["--station-claim", "elsewhere"]);
    // Signed, fresh and new but wrong: answered, once.
    assert_eq!(
        reason(&send_command(port, d, "open_session", json!({}), &[])),
        "malformed"
    );
    assert_eq!(
        reason(&send_command(port, d, "reboot", json!({}), &[])),
        "unknown_command"
    );
    assert_eq!(
        reason(&send_command(port, d, "close_session", json!({}), &[])),
        "no_session"
    );

    // Nothing changed: no session, no record; the refusals are counted.
    let status = send_command(port, d, "status", json!({}), &[]);
    assert_eq!(status["result"]["session"], Value::Null, "{status}");
    let rejected = &status["result"]["rejected_commands"];
    for code in [
        "unsigned",
        "bad_signature",
        "replayed",
        "stale",
        "malformed",
        "wrong_station",
        "unknown_command",
    ] {
        assert!(
            rejected[code].as_u64().unwrap_or(0) >= 1,
            "{code} counted: {status}"
        );
    }
    assert_eq!(outbox_depth(&setup.outbox), (0, 0));
}

/// Responses follow the requested MQTT response topic only within this station's responses
/// topic or a configured case-system prefix: a signed, valid command asking for its response on
/// the station's own `records` topic or on another station's gets it on the default responses
/// topic, and nothing is published where it asked.
#[test]
fn responses_never_go_to_the_stations_own_or_another_stations_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let setup = station(
        dir.path(),
        broker.port,
        &dir.path().join("no-reader"),
        "response_topic_prefixes = [\"casesys/replies/\"]",
    );
    let daemon = start_daemon(&setup);
    let port = broker.port;
    let d = dir.path();
    let ping = send_command(port, d, "ping", json!({}), &[]);
    assert_eq!(ping["status"], "accepted", "{ping}\n{}", daemon.stderr());
    let default = format!("countersign/v1/{STATION}/responses");
    for (asked, allowed) in [
        (format!("countersign/v1/{STATION}/records"), false),
        (format!("countersign/v1/{STATION}/status"), false),
        (format!("countersign/v1/{STATION}/acks"), false),
        ("countersign/v1/other-station/records".to_string(), false),
        ("countersign/v1/other-station/responses".to_string(), false),
        ("elsewhere/replies/1".to_string(), false),
        (format!("{default}/case-7"), true),
        ("casesys/replies/w1/42".to_string(), true),
    ] {
        let out = send_command(
            port,
            d,
            "ping",
            json!({}),
            &["--response-topic", &asked, "--listen", &asked],
        );
        let response = &out["response"];
        assert_eq!(response["status"], "accepted", "{asked}: {out}");
        // The station's presence on `status` is its own business: look for this response.
        let id = response["id"].as_str().unwrap();
        let answered_on = |topic: &str| {
            out["seen"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m[0].as_str() == Some(topic) && m[1].as_str().unwrap().contains(id))
        };
        if allowed {
            assert!(answered_on(&asked), "{asked}: {out}");
        } else {
            assert!(!answered_on(&asked), "published on {asked}: {out}");
            assert!(answered_on(&default), "{asked}: {out}");
        }
    }
    assert_eq!(outbox_depth(&setup.outbox), (0, 0));
}

/// A group in /etc/group other than `own` that this process may chown a file to.
fn givable_group(own: u32) -> Option<(String, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let root = field("Uid:").first() == Some(&0);
    let ours = field("Groups:");
    let table = std::fs::read_to_string("/etc/group").ok()?;
    table.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let gid: u32 = f.get(2)?.parse().ok()?;
        let may = if root { gid != 0 } else { ours.contains(&gid) };
        (gid != own && may).then(|| (f[0].to_string(), gid))
    })
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One request on a raw connection; the response, or Null when none came within 5 s.
fn raw_request(stream: &mut std::os::unix::net::UnixStream, line: Option<&[u8]>) -> Value {
    use std::io::{BufRead as _, Write as _};
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if let Some(line) = line {
        stream.write_all(line).unwrap();
    }
    let mut answer = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut answer);
    serde_json::from_str(&answer).unwrap_or(Value::Null)
}

/// The control socket holds whoever connects to its bounds: 10 MB without a newline are cut
/// off at 64 KiB (the daemon's memory does not grow with them) and the socket still answers;
/// with 16 connections open the 17th is answered `busy`, and `status` works once they close.
#[test]
fn the_control_socket_bounds_lines_and_connections() {
    use std::io::Write as _;
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let setup = station(dir.path(), broker.port, &dir.path().join("no-reader"), "");
    let daemon = start_daemon(&setup);
    wait_for_control(&setup);
    let socket = dir.path().join("state/control.sock");
    let pid = daemon.child.id();

    let before = rss_kib(pid);
    let mut flood = UnixStream::connect(&socket).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..160 {
        // The daemon closes after 64 KiB: the writes fail long before 10 MB.
        if flood.write_all(&chunk).is_err() {
            break;
        }
    }
    let refusal = raw_request(&mut flood, None);
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!("daemon RSS grew by {grown} KiB during a 10 MB line");
    assert!(grown < 4 * 1024, "the daemon grew by {grown} KiB");
    assert_eq!(
        refusal["reason"],
        "malformed",
        "{refusal}\n{}",
        daemon.stderr()
    );
    assert_eq!(local(&setup, &["status"])["status"], "accepted");

    let mut open = Vec::new();
    for i in 0..16 {
        let mut c = UnixStream::connect(&socket).unwrap();
        let status = raw_request(&mut c, Some(b"{\"command\":\"status\"}\n"));
        assert_eq!(status["status"], "accepted", "connection {i}: {status}");
        open.push(c);
    }
    let mut extra = UnixStream::connect(&socket).unwrap();
    let busy = raw_request(&mut extra, None);
    assert_eq!(busy["reason"], "busy", "{busy}\n{}", daemon.stderr());
    drop(open);
    wait_until(
        Duration::from_secs(10),
        "status after the 16 closed",
        || local(&setup, &["status"])["status"] == "accepted",
    );
    // Every connection's peer is logged from the kernel's credentials.
    let pid_field = format!("pid={}", std::process::id());
    assert!(
        daemon.stderr().contains("control socket connection")
            && daemon.stderr().contains(&pid_field),
        "{}",
        daemon.stderr()
    );
}

/// An idle client is disconnected after `control_idle_timeout_secs`; the socket belongs to
/// `control_socket_group`, and a group that does not exist stops the start with a clear error.
#[test]
fn the_control_socket_drops_idle_clients_and_has_its_own_group() {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::net::UnixStream;
    // A group other than the one the state directory gets, that we may give a file to (root:
    // any; others: one of our supplementary groups).
    let own = std::fs::metadata(std::env::temp_dir()).unwrap().gid();
    let (group, gid) = givable_group(own).expect("a second group we may give files to");
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let setup = station(
        dir.path(),
        broker.port,
        &dir.path().join("no-reader"),
        &format!("[session]\ncontrol_idle_timeout_secs = 2\ncontrol_socket_group = \"{group}\"\n"),
    );
    let daemon = start_daemon(&setup);
    wait_for_control(&setup);
    let socket = dir.path().join("state/control.sock");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.gid(), gid, "socket group, want {group}");
    assert_eq!(meta.mode() & 0o777, 0o660);

    let mut idle = UnixStream::connect(&socket).unwrap();
    idle.write_all(b"{\"command\":").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut sink = [0u8; 64];
    let n = idle.read(&mut sink).unwrap_or(usize::MAX);
    assert_eq!(n, 0, "the daemon should have closed the idle connection");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(local(&setup, &["status"])["status"], "accepted");
    drop(daemon);

    let missing = setup.dir.join("missing-group.toml");
    let config = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace(&format!("\"{group}\""), "\"no-such-group-countersign\"");
    std::fs::write(&missing, config).unwrap();
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("control_socket_group") && stderr.contains("no-such-group-countersign"),
        "{stderr}"
    );
}

/// The counter flow: open by command, two cards of different types read into the session,
/// close: one record with both identities, verified by the independent consumer; the live
/// events say what happened without personal data.
#[test]
fn a_session_gathers_two_cards_into_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let setup = station(dir.path(), broker.port, &link, "");
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let daemon = start_daemon(&setup);
    let port = broker.port;
    let d = dir.path();
    // The clerk's screen: a plain MQTT subscriber on the events topic.
    let events_log = d.join("events.log");
    let _events = Proc::spawn(
        "mosquitto_sub",
        Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-V",
                "mqttv5",
                "-q",
                "1",
            ])
            .args(["-t", &format!("countersign/v1/{STATION}/events")])
            .stdout(std::fs::File::create(&events_log).unwrap()),
    );
    std::thread::sleep(Duration::from_millis(500));
    let opened = send_command(
        port,
        d,
        "open_session",
        json!({"case_ref": "MR-2026-0042", "operator": "op7", "purpose": "marriage_registration"}),
        &[],
    );
    assert_eq!(
        opened["status"],
        "accepted",
        "{opened}\n{}",
        daemon.stderr()
    );
    assert_eq!(
        reason(&send_command(
            port,
            d,
            "open_session",
            json!({"case_ref": "X"}),
            &[]
        )),
        "session_open"
    );
    let _sim = start_scenario_sim(&link, TWO_CARDS);
    wait_identities(&setup, 2, &daemon);
    assert!(
        case.next_record(Duration::from_millis(500)).is_none(),
        "nothing is sent while the session is open"
    );
    let closed = send_command(port, d, "close_session", json!({}), &[]);
    assert_eq!(closed["status"], "accepted", "{closed}");
    assert_eq!(closed["result"]["identities"], 2);
    let record = case
        .next_record(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
    assert_eq!(record["joserfc"], true, "{record}");
    assert_eq!(record["blobs_ok"], true, "{record}");
    assert_eq!(record["record_id"], closed["result"]["record_id"]);
    let payload = &record["payload"];
    let documents: Vec<&str> = payload["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["document"].as_str().unwrap())
        .collect();
    assert_eq!(documents, ["resident", "foreign_permanent_2023"]);
    assert_eq!(payload["case"]["case_ref"], "MR-2026-0042");
    assert_eq!(payload["case"]["operator"], "op7");
    let photos: Vec<u64> = payload["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identity"].as_u64().unwrap())
        .collect();
    assert_eq!(photos, [0, 1], "each photo names its identity");
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_depth(&setup.outbox) == (0, 0)
    });

    // The live events told the story, without personal data.
    let mut kinds = Vec::new();
    wait_until(Duration::from_secs(10), "the session_closed event", || {
        let text = std::fs::read_to_string(&events_log).unwrap_or_default();
        kinds = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect();
        kinds.iter().any(|k| k == "session_closed")
    });
    assert_eq!(
        kinds.iter().filter(|k| *k == "card_read").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"session_opened".to_string()), "{kinds:?}");
    let text = std::fs::read_to_string(&events_log).unwrap();
    for identity in payload["identities"].as_array().unwrap() {
        for field in ["id_number", "name", "name_en"] {
            if let Some(value) = identity[field].as_str() {
                assert!(!text.contains(value), "events leak {field}: {text}");
            }
        }
    }
    assert!(text.contains("**********"), "masked numbers: {text}");
}

/// What a session captured survives SIGKILL: after a restart the session goes on and its record
/// holds the card read before the crash. A cancelled session sends nothing.
#[test]
fn sessions_survive_sigkill_and_cancel_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    // Cards read with no session open are dropped, not recorded: only sessions send anything.
    let setup = station(
        dir.path(),
        broker.port,
        &link,
        "[session]\noutside_session = \"ignore\"",
    );
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let mut daemon = start_daemon(&setup);
    wait_for_control(&setup);

    // Opened locally (the clerk's command line), two cards, then the daemon is killed.
    let opened = local(&setup, &["open", "--case-ref", "SA-17"]);
    assert_eq!(
        opened["status"],
        "accepted",
        "{opened}\n{}",
        daemon.stderr()
    );
    let mut sim = start_scenario_sim(&link, TWO_CARDS);
    wait_identities(&setup, 2, &daemon);
    sim.kill9();
    daemon.kill9();
    let daemon = start_daemon(&setup);
    wait_for_control(&setup);
    let status = local(&setup, &["status"]);
    assert_eq!(status["result"]["session"]["identities"], 2, "{status}");
    let closed = local(&setup, &["close"]);
    assert_eq!(closed["status"], "accepted", "{closed}");
    let record = case
        .next_record(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
    assert_eq!(record["payload"]["identities"].as_array().unwrap().len(), 2);
    assert_eq!(record["payload"]["case"]["case_ref"], "SA-17");

    // Cancel: nothing is delivered.
    assert_eq!(
        local(&setup, &["open", "--case-ref", "SA-18"])["status"],
        "accepted"
    );
    let _sim = start_scenario_sim(&link, TWO_CARDS);
    wait_identities(&setup, 1, &daemon);
    let cancelled = local(&setup, &["cancel", "--reason", "wrong citizen"]);
    assert_eq!(cancelled["status"], "accepted", "{cancelled}");
    assert!(cancelled["result"]["items_discarded"].as_u64().unwrap() >= 1);
    assert!(
        case.next_record(Duration::from_secs(3)).is_none(),
        "a cancelled session sends nothing"
    );
    assert_eq!(outbox_depth(&setup.outbox).0, 0);
}

/// A counter without a case system: the first card opens a session, the next joins it, and
/// the idle timeout seals both into one record.
#[test]
fn auto_open_and_timeout_seal_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let setup = station(
        dir.path(),
        broker.port,
        &link,
        "[session]\nauto_open = true\ntimeout_secs = 5\ntimeout_action = \"close\"",
    );
    let case = CaseSystem::start(broker.port, &setup, None, true);
    let daemon = start_daemon(&setup);
    let _sim = start_scenario_sim(&link, TWO_CARDS);
    let record = case
        .next_record(Duration::from_secs(40))
        .unwrap_or_else(|| panic!("no record:\n{}", daemon.stderr()));
    assert_eq!(record["joserfc"], true, "{record}");
    let payload = &record["payload"];
    assert_eq!(
        payload["identities"].as_array().unwrap().len(),
        2,
        "{payload}"
    );
    assert_eq!(payload["case"]["purpose"], "auto");
    assert!(payload["case"]["session_id"].is_string());
    assert!(
        case.next_record(Duration::from_secs(2)).is_none(),
        "one record only"
    );
}

/// The marriage registration: two cards of different types and four labelled pages from the
/// replay camera, requested by signed commands, arrive as ONE record whose manifest lists
/// everything, stored and verified (signature, blobs, chain) by the reference consumer.
#[test]
fn marriage_registration_arrives_as_one_record_for_the_reference_consumer() {
    use crate::harness_capture::{page_frame, replay_dir};
    use crate::harness_mqtt::RefConsumer;

    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("idcard");
    let frames: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("{i:03}.jpg"), page_frame(300 + i, false)))
        .collect();
    let frames: Vec<(&str, Vec<u8>)> = frames
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let replay = replay_dir(&dir.path().join("camera"), &frames);
    let setup = station(
        dir.path(),
        broker.port,
        &link,
        &format!(
            "[session]\noutside_session = \"ignore\"\n\n[cameras.desk-camera]\nreplay = \"{}\"\nreplay_fps = 20\nreplay_hold_frames = 12\nreplay_loop = true\nsettle_ms = 0",
            replay.display()
        ),
    );
    let consumer = RefConsumer::start(broker.port, &setup, &dir.path().join("archive"), None);
    let events_log = dir.path().join("events.log");
    let _events = Proc::spawn(
        "mosquitto_sub",
        Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-V",
                "mqttv5",
                "-q",
                "1",
            ])
            .args(["-t", &format!("countersign/v1/{STATION}/events")])
            .stdout(std::fs::File::create(&events_log).unwrap()),
    );
    let daemon = start_daemon(&setup);
    let (port, d) = (broker.port, dir.path());
    wait_until(Duration::from_secs(20), "the station to answer", || {
        send_command(port, d, "ping", json!({}), &[])["status"] == "accepted"
    });
    let opened = send_command(
        port,
        d,
        "open_session",
        json!({"case_ref": "MR-2026-0100", "operator": "op3", "purpose": "marriage_registration"}),
        &[],
    );
    assert_eq!(opened["status"], "accepted", "{opened}");
    let _sim = start_scenario_sim(&link, TWO_CARDS);
    wait_identities(&setup, 2, &daemon);
    let labels = [
        "household_register",
        "household_register",
        "marriage_photo",
        "application_form",
    ];
    for label in labels {
        let r = send_command(
            port,
            d,
            "capture",
            json!({"source": "desk-camera", "label": label}),
            &[],
        );
        assert_eq!(r["status"], "accepted", "{r}\n{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(600));
    }
    let closed = send_command(port, d, "close_session", json!({}), &[]);
    assert_eq!(closed["status"], "accepted", "{closed}");
    assert_eq!(closed["result"]["pages"], 4);

    wait_until(
        Duration::from_secs(60),
        "the reference consumer to store the record",
        || !consumer.stored().is_empty(),
    );
    let stored = consumer.stored();
    assert_eq!(stored.len(), 1, "one record");
    let record = &stored[0];
    let documents: Vec<&str> = record["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["document"].as_str().unwrap())
        .collect();
    assert_eq!(documents, ["resident", "foreign_permanent_2023"]);
    let evidence = record["evidence"].as_array().unwrap();
    let page_labels: Vec<&str> = evidence
        .iter()
        .filter(|e| e["role"] == "page")
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(page_labels, labels);
    assert_eq!(
        evidence
            .iter()
            .filter(|e| e["role"] == "page_original")
            .count(),
        4
    );
    assert_eq!(
        evidence
            .iter()
            .filter(|e| e["role"] == "face_photo_wlt")
            .count(),
        2
    );
    for e in evidence {
        let blob = consumer
            .blob(e["blob_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("blob {} stored", e["blob_id"]));
        assert_eq!(blob.len() as u64, e["size"].as_u64().unwrap());
    }
    assert_eq!(record["case"]["case_ref"], "MR-2026-0100");
    // The clerk's screen saw each page with its label and number.
    let pages: Vec<(String, u64)> = std::fs::read_to_string(&events_log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "page_captured")
        .map(|e| {
            (
                e["label"].as_str().unwrap().to_string(),
                e["page"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = labels
        .iter()
        .zip(1..)
        .map(|(l, n)| (l.to_string(), n))
        .collect();
    assert_eq!(pages, expected);
    wait_until(Duration::from_secs(10), "an empty outbox", || {
        outbox_depth(&setup.outbox) == (0, 0)
    });
}

/// The card the reader test lays down, with the values grepped for afterwards.
const HOLDER_CARD: &str = r#"
[cards.resident]
type = "resident"
name = "测试甲"
sex = "1"
nation = "01"
birth_date = "19900307"
address = "北京市东城区测试路1号"
id_number = "110101199003070011"
issuer = "北京市公安局东城分局"
valid_from = "20200610"
valid_until = "20400610"

# The card text comes back under a vendor's additive checksum: "unsupported reader protocol".
[[at]]
ms = 0
additive_checksum = true
command = "read_text_photo"

[[at]]
ms = 1200
place = "resident"
"#;

/// Every spelling of `text` a log or an event could carry: as is, and its UCS-2 (the card's
/// encoding) and UTF-8 bytes in hex, spaced or not, upper or lower case.
fn spellings(text: &str) -> Vec<String> {
    let ucs2: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut out = vec![text.to_string()];
    for bytes in [ucs2, text.as_bytes().to_vec()] {
        let window = &bytes[..bytes.len().min(6)];
        for sep in [" ", ""] {
            let upper: Vec<String> = window.iter().map(|b| format!("{b:02X}")).collect();
            let lower: Vec<String> = window.iter().map(|b| format!("{b:02x}")).collect();
            out.push(upper.join(sep));
            out.push(lower.join(sep));
        }
    }
    out
}

/// Personal data stays out of logs and events: a card whose text arrives under a vendor's
/// checksum (an "unsupported reader protocol" error) and wrong MRZs typed into `read_document`
/// leave no name, number or date in the daemon's debug log or in anything it publishes.
#[test]
fn no_name_or_number_reaches_the_log_or_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("reader");
    let _sim = start_scenario_sim(&link, HOLDER_CARD);
    let setup = station(
        dir.path(),
        broker.port,
        &link,
        "[pcsc.readers.counter]\nmatch = \"no such reader\"\n",
    );
    let published = dir.path().join("published.txt");
    let _listener = Proc::spawn(
        "mosquitto_sub",
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-V", "mqttv5", "-v", "-t", "countersign/v1/#"])
            .stdout(std::fs::File::create(&published).unwrap()),
    );
    let daemon = Proc::spawn(
        "daemon",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("RUST_LOG", "debug")
            .stdout(std::process::Stdio::null()),
    );
    wait_for_control(&setup);
    wait_until(Duration::from_secs(20), "the card's reply refused", || {
        daemon.stderr().contains("unsupported reader protocol")
    });
    let opened = local(&setup, &["open", "--case-ref", "C-1"]);
    assert_eq!(opened["status"], "accepted", "{opened}");

    let td3 = |line1: &str, line2: &str| format!("{line1:<<44}\n{line2:<<43}0");
    let socket = dir.path().join("state/control.sock");
    for (mrz, can) in [
        ("E12345678 851315 330101".to_string(), None),
        ("E12345678 1985-13-15 330101".to_string(), None),
        (td3("P<CHNZHANG<<SAN", "E123456784CHN8513155M3301014"), None),
        (td3("P<CHN张<<三", "E123456784CHN8503155M3301014"), None),
        ("E12345678 850315 330101".to_string(), Some("98765")),
    ] {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        let request = json!({"command": "read_document", "args": {"mrz": mrz, "can": can}});
        let response = raw_request(&mut stream, Some(format!("{request}\n").as_bytes()));
        assert_eq!(response["reason"], "malformed", "{mrz}: {response}");
    }
    // The live events go out (the reader's problem among them) before we look.
    wait_until(
        Duration::from_secs(10),
        "the reader's problem on events",
        || {
            std::fs::read_to_string(&published)
                .unwrap_or_default()
                .contains("device_disconnected")
        },
    );
    let daemon_log = plain(&daemon.stderr());
    assert!(daemon_log.contains("DEBUG"), "a debug log");
    drop(daemon);
    std::thread::sleep(Duration::from_millis(300));

    let published = std::fs::read_to_string(&published).unwrap();
    assert!(published.contains("/events"), "{published}");
    // Timestamps go: their microseconds could spell any six digits.
    let log: Vec<&str> = daemon_log
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    let everything = format!("{published}\n{}", log.join("\n"));
    for value in [
        "测试甲",
        "110101199003070011",
        "199003070011",
        "19900307",
        "北京市东城区测试路1号",
        "东城分局",
        "20400610",
        "851315",
        "8513155",
        "1985-13-15",
        "850315",
        "330101",
        "E12345678",
        "ZHANG",
        "张",
        "98765",
    ] {
        for spelling in spellings(value) {
            assert!(
                !everything.contains(&spelling),
                "{value:?} ({spelling}) reached the log or the broker:\n{everything}"
            );
        }
    }
}
