//! The ID card reader end to end: the simulator on a real pseudo-terminal (driven by scenario
//! files), the daemon, and the records it commits (decrypted and verified from its outbox).

use std::time::{Duration, Instant};

use countersign::record::CheckResult;
use serde_json::Value;

use crate::harness::*;
use crate::harness_idcard::*;

/// The six built-in cards by name: a, b, c resident, i, y, j.
const CARDS: &str = r#"
[cards.a]
fake = 0
[cards.b]
fake = 1
[cards.c]
fake = 2
[cards.i]
fake = 3
[cards.y]
fake = 4
[cards.j]
fake = 5
"#;

fn scenario(body: &str) -> String {
    scenario_at(115_200, body)
}

/// A scenario for a reader whose own line rate is `baud`.
fn scenario_at(baud: u32, body: &str) -> String {
    format!("baud = {baud}\n{CARDS}\n{body}")
}

/// `[[at]]` entries placing each card in turn for `present` ms with `gap` ms between.
fn placements(names: &[&str], start: u64, present: u64, gap: u64) -> String {
    let mut s = String::new();
    for (i, name) in names.iter().enumerate() {
        let at = start + i as u64 * (present + gap);
        s.push_str(&format!(
            "[[at]]\nms = {at}\nplace = \"{name}\"\n[[at]]\nms = {}\nremove = true\n",
            at + present
        ));
    }
    s
}

#[test]
fn every_card_type_is_read_into_a_verified_record() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    let mut text = scenario(&placements(&["a", "c", "i", "y", "j"], 300, 900, 400));
    // 'b' carries fingerprints and an appended address.
    text.push_str(
        "[cards.b2]\nfake = 1\nfingerprints = 2\nappended_address = \"北京市西城区测试街2号\"\n\
         [[at]]\nms = 7000\nplace = \"b2\"\n",
    );
    let _sim = start_scenario_sim(&link, &text);
    let setup = reader_station(dir.path(), &link, "115200", "fingerprint = true");
    let daemon = start_daemon(&setup);
    let records = wait_for_records(&setup, 6, Duration::from_secs(30), &daemon);
    assert_eq!(records.len(), 6, "{:?}", numbers(&records));
    let documents: Vec<&str> = records
        .iter()
        .map(|r| r.identities[0].document.as_str())
        .collect();
    assert_eq!(
        documents,
        [
            "resident",
            "resident",
            "foreign_permanent_2017",
            "foreign_permanent_2023",
            "hk_macau_taiwan",
            "resident"
        ]
    );
    for r in &records {
        let id = &r.identities[0];
        assert_eq!(r.devices[0].kind, "ga467");
        assert_eq!(
            r.devices[0].sam_id.as_deref(),
            Some("0100020005b432010100000002000000"),
            "raw SAM id, hex, in every record"
        );
        assert!(id.text_raw.is_some());
        for c in &id.checks {
            assert_eq!(c.result, CheckResult::Pass, "{}: {c:?}", id.document);
        }
        assert_eq!(r.evidence[0].role, "face_photo_wlt");
        assert_eq!(r.evidence[0].size, 1024);
    }
    let i = &records[2].identities[0];
    assert_eq!(i.name_en.as_deref(), Some("TESTPERSON, ALPHA"));
    assert_eq!(i.issuer_code.as_deref(), Some("1100"));
    let y = &records[3].identities[0];
    assert_eq!(
        y.name_en.as_deref(),
        Some("TESTPERSON, ALPHABETA GAMMADELTA EPSILON ZETA")
    );
    assert_eq!(y.previous_number_link.as_deref(), Some("BJ1"));
    let j = &records[4].identities[0];
    assert_eq!(j.permit_number.as_deref(), Some("H12345678"));
    assert_eq!(
        records[1].identities[0].valid_until.as_deref(),
        Some("long_term")
    );
    let b = &records[5];
    assert_eq!(
        b.identities[0].appended_address.as_deref(),
        Some("北京市西城区测试街2号")
    );
    let roles: Vec<(&str, u64)> = b
        .evidence
        .iter()
        .map(|e| (e.role.as_str(), e.size))
        .collect();
    assert_eq!(roles, [("face_photo_wlt", 1024), ("fingerprint", 1024)]);
    // Cards without fingerprints carry none.
    assert_eq!(records[0].evidence.len(), 1);
}

#[test]
fn a_card_left_on_the_reader_is_read_once_and_each_placement_is_a_new_read() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    // A lies there 3 s (30 polls), is taken away for 0.6 s and placed again; then B replaces A
    // with no gap; then B is taken away.
    let _sim = start_scenario_sim(
        &link,
        &scenario(
            "[[at]]\nms = 300\nplace = \"a\"\n[[at]]\nms = 3300\nremove = true\n\
             [[at]]\nms = 3900\nplace = \"a\"\n[[at]]\nms = 5500\nplace = \"b\"\n\
             [[at]]\nms = 7000\nremove = true\n",
        ),
    );
    let setup = reader_station(dir.path(), &link, "115200", "");
    let daemon = start_daemon(&setup);
    let records = wait_for_records(&setup, 3, Duration::from_secs(20), &daemon);
    // Past the end of the scenario: nothing more arrives.
    std::thread::sleep(Duration::from_secs(4));
    let records_after = committed_records(&setup);
    assert_eq!(records_after.len(), 3, "{:?}", numbers(&records_after));
    assert_eq!(
        numbers(&records),
        [fake_number(0), fake_number(0), fake_number(1)]
    );
}

#[test]
fn an_unplugged_reader_is_recovered_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    let _sim = start_scenario_sim(
        &link,
        &scenario(
            "[[at]]\nms = 300\nplace = \"a\"\n[[at]]\nms = 1500\nremove = true\n\
             [[at]]\nms = 2000\nunplug = true\n[[at]]\nms = 5000\nreplug = true\n\
             [[at]]\nms = 6000\nplace = \"j\"\n",
        ),
    );
    let setup = reader_station(dir.path(), &link, "115200", "");
    let mut daemon = start_daemon(&setup);
    let pid = daemon.child.id();
    let records = wait_for_records(&setup, 2, Duration::from_secs(30), &daemon);
    assert_eq!(numbers(&records), [fake_number(0), fake_number(5)]);
    assert_eq!(daemon.child.id(), pid);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon kept running"
    );
    let log = daemon.stderr();
    assert!(log.contains("ID card reader unavailable"), "{log}");
    assert!(
        log.matches("ID card reader ready").count() >= 2,
        "ready again after the replug:\n{log}"
    );
}

/// Every SW3 code of the reference on the commands it can come back to: no error stops the
/// daemon, and the card placed afterwards is read exactly once.
#[test]
fn every_sw3_error_is_survived_and_the_card_still_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    let mut body = String::new();
    let mut fault = |code: &str, command: &str| {
        body.push_str(&format!(
            "[[at]]\nms = 0\nsw3 = \"{code}\"\ncommand = \"{command}\"\n"
        ));
    };
    // SAM faults at session start: each ends a session (the supervisor backs off and reopens).
    for code in ["60", "66"] {
        fault(code, "sam_status");
    }
    // On find: every code except 9F/80 (normal) and 21 (a vendor-variant sign, tested apart).
    for code in [
        "10", "11", "23", "24", "31", "32", "33", "40", "41", "47", "60", "66", "81", "90", "91",
        "FF",
    ] {
        fault(code, "find_card");
    }
    // The card comes; select and read fail in every way before it is read.
    for code in ["21", "24", "32", "80", "9F"] {
        fault(code, "select_card");
    }
    for code in ["21", "31", "32", "33", "40", "41", "47", "80", "81", "91"] {
        fault(code, "read_text_photo");
    }
    body.push_str("[[at]]\nms = 500\nplace = \"c\"\n");
    let _sim = start_scenario_sim(&link, &scenario(&body));
    let setup = reader_station(dir.path(), &link, "115200", "");
    let mut daemon = start_daemon(&setup);
    let records = wait_for_records(&setup, 1, Duration::from_secs(60), &daemon);
    assert_eq!(numbers(&records), [fake_number(2)]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        committed_records(&setup).len(),
        1,
        "read once while it stays"
    );
    assert!(daemon.child.try_wait().unwrap().is_none());
    let log = daemon.stderr();
    assert!(log.contains("SAM self-test failed"), "{log}");
    assert!(log.contains("SAM not authorised"), "{log}");
}

#[test]
fn noise_and_corrupted_frames_neither_lose_nor_duplicate_a_card() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    let body = "[[at]]\nms = 0\nnoise = \"00 FF AA AA 13 96 69 AA AA AA 96\"\n\
                [[at]]\nms = 0\ncorrupt = true\ncommand = \"read_text_photo\"\n\
                [[at]]\nms = 0\ntruncate = 700\ncommand = \"read_text_photo\"\n\
                [[at]]\nms = 0\ntruncate = 9\ncommand = \"find_card\"\ntimes = 2\n\
                [[at]]\nms = 0\ndelay_ms = 400\ncommand = \"select_card\"\n\
                [[at]]\nms = 0\nsilent = true\ncommand = \"find_card\"\n\
                [[at]]\nms = 500\nplace = \"y\"\n[[at]]\nms = 6000\nremove = true\n";
    let _sim = start_scenario_sim(&link, &scenario(body));
    let setup = reader_station(dir.path(), &link, "115200", "");
    let daemon = start_daemon(&setup);
    let records = wait_for_records(&setup, 1, Duration::from_secs(20), &daemon);
    assert_eq!(numbers(&records), [fake_number(4)]);
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        assert_eq!(committed_records(&setup).len(), 1, "{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn baud_auto_finds_a_reader_at_9600() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    let _sim = start_scenario_sim(&link, &scenario_at(9600, "[[at]]\nms = 0\nplace = \"i\"\n"));
    let setup = reader_station(dir.path(), &link, "\"auto\"", "");
    let daemon = start_daemon(&setup);
    let records = wait_for_records(&setup, 1, Duration::from_secs(30), &daemon);
    assert_eq!(numbers(&records), [fake_number(3)]);
    let log = plain(&daemon.stderr());
    assert!(
        log.lines()
            .any(|l| l.contains("reader line rate detected") && l.contains("baud=9600")),
        "{log}"
    );
}

#[test]
fn a_vendor_variant_is_reported_once_and_not_retried_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let link = link_in(dir.path());
    let _sim = start_scenario_sim(&link, "protocol = \"additive_checksum\"\n");
    let setup = reader_station(dir.path(), &link, "115200", "");
    let daemon = start_daemon(&setup);
    wait_until(Duration::from_secs(15), "the diagnostic", || {
        daemon.stderr().contains("unsupported reader protocol")
    });
    std::thread::sleep(Duration::from_secs(4));
    let log = daemon.stderr();
    assert_eq!(
        log.matches("unsupported reader protocol").count(),
        1,
        "{log}"
    );
    assert!(log.contains("additive checksum"), "{log}");
}

/// No reader attached (the link points nowhere): the supervisor backs off, the process sleeps.
#[test]
fn idle_cpu_stays_near_zero_without_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let link = dir.path().join("no-reader-here");
    std::os::unix::fs::symlink("/dev/nonexistent-ttyUSB9", &link).unwrap();
    let setup = setup_station(dir.path(), broker.port, &link);
    let daemon = start_daemon(&setup);
    wait_until(Duration::from_secs(10), "the reader warning", || {
        daemon.stderr().contains("ID card reader unavailable")
    });
    std::thread::sleep(Duration::from_secs(1));
    let pid = daemon.child.id();
    let before = cpu_time(pid);
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let used = cpu_time(pid) - before;
    eprintln!("idle daemon without a reader: {used:?} of CPU in {window:?}");
    // 2% of one core at most (in practice a few milliseconds).
    assert!(
        used <= window / 50,
        "daemon used {used:?} of CPU in {window:?} while idle\n{}",
        daemon.stderr()
    );
    assert_eq!(
        daemon
            .stderr()
            .matches("ID card reader unavailable")
            .count(),
        1,
        "reported once, not every retry"
    );
}

#[test]
fn read_card_prints_the_identity_and_exits_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    // No reader at all.
    let (code, _, err) = countersign(&["read-card", "--port", "/dev/nonexistent-ttyUSB9"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("cannot open serial port"), "{err}");

    // A card with fingerprints, at 57600, found by the default auto probe.
    let link = dir.path().join("reader");
    let mut sim = start_scenario_sim(
        &link,
        &scenario_at(
            57_600,
            "[cards.f]\nfake = 4\nfingerprints = 1\n[[at]]\nms = 0\nplace = \"f\"\n",
        ),
    );
    let port = link.to_str().unwrap();
    let (code, out, err) = countersign(&["read-card", "--port", port, "--fingerprint"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["document"], "foreign_permanent_2023");
    assert_eq!(v["id_number"], fake_number(4));
    assert_eq!(
        v["name_en"],
        "TESTPERSON, ALPHABETA GAMMADELTA EPSILON ZETA"
    );
    assert_eq!(v["birth_date"], "1985-02-03");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["result"] == "pass")
    );
    assert_eq!(
        v["devices"][0]["sam_id"],
        "0100020005b432010100000002000000"
    );
    assert!(
        v["devices"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("57600")
    );
    assert_eq!(
        v["face_photo_wlt"].as_str().unwrap().len(),
        1368,
        "1024 B base64"
    );
    assert_eq!(
        v["fingerprint"].as_str().unwrap().len(),
        684,
        "512 B base64"
    );
    // A wrong fixed rate: nothing answers.
    let (code, _, err) = countersign(&["read-card", "--port", port, "--baud", "9600"]);
    assert_eq!(code, Some(4), "{err}");
    sim.kill9();

    // No card.
    let link = dir.path().join("empty");
    let mut sim = start_scenario_sim(&link, "");
    let (code, _, err) = countersign(&["read-card", "--port", link.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no card"), "{err}");
    sim.kill9();

    // The reader stops answering mid-read.
    let link = dir.path().join("mute");
    let mut sim = start_scenario_sim(
        &link,
        &scenario(
            "[[at]]\nms = 0\nplace = \"a\"\n[[at]]\nms = 0\nsilent = true\ncommand = \"read_text_photo\"\ntimes = 5\n",
        ),
    );
    let (code, _, err) = countersign(&["read-card", "--port", link.to_str().unwrap()]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("no reply to read text+photo"), "{err}");
    sim.kill9();

    // Not a GA 467 reader.
    let link = dir.path().join("vendor");
    let mut sim = start_scenario_sim(&link, "protocol = \"stx_etx\"\n");
    let (code, _, err) = countersign(&["read-card", "--port", link.to_str().unwrap()]);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("unsupported reader protocol"), "{err}");
    sim.kill9();
}

#[test]
fn inspect_decodes_a_hex_capture_frame_by_frame() {
    use ga467::command::Command;
    use ga467::sim::{Simulator, fake_cards_all_types};
    let mut sim = Simulator::new();
    sim.set_card(Some(fake_cards_all_types().remove(5)));
    let mut capture = vec![0x00, 0x13];
    for c in [
        Command::FindCard,
        Command::SelectCard,
        Command::ReadTextPhoto,
    ] {
        let frame = c.encode();
        capture.extend(&frame);
        capture.extend(sim.feed(&frame));
    }
    // A reply with a bad checksum, then a good status.
    capture.extend([
        0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x00, 0x04, 0x00, 0x00, 0x80, 0x85,
    ]);
    capture.extend(Command::SamStatus.encode());
    capture.extend(sim.feed(&Command::SamStatus.encode()));
    let text: String = capture
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
                + "\n"
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.txt");
    std::fs::write(&file, text).unwrap();
    let (code, out, err) = countersign(&["inspect", "ga467", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let items: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<String> = items
        .iter()
        .map(|v| {
            format!(
                "{} {} {} {}",
                v["offset"],
                v["kind"].as_str().unwrap(),
                v["direction"].as_str().unwrap_or("-"),
                v["command"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "0 garbage - -",
            "2 frame command find_card",
            "12 frame response find_card",
            "27 frame command select_card",
            "37 frame response select_card",
            "56 frame command read_text_photo",
            "66 frame response read_text_photo",
            "1361 bad_frame - -",
            "1372 frame command sam_status",
            "1382 frame response sam_status",
        ]
    );
    assert_eq!(items[2]["sw3"], "9F");
    assert!(
        items[2]["status"]
            .as_str()
            .unwrap()
            .contains("寻找证/卡成功")
    );
    let card = &items[6]["card"];
    assert_eq!(card["document"], "hk_macau_taiwan");
    assert_eq!(card["permit_number"], "H12345678");
    assert_eq!(card["checks"].as_array().unwrap().len(), 9);
    assert!(items[7]["reason"].as_str().unwrap().contains("checksum"));
    // Binary input decodes the same.
    let bin = dir.path().join("capture.bin");
    std::fs::write(&bin, &capture).unwrap();
    let (_, out_bin, _) = countersign(&["inspect", "ga467", bin.to_str().unwrap()]);
    assert_eq!(out_bin, out);
}

/// A vendor WLT decoder configured in the daemon: a stand-in library (built here with rustc)
/// decodes one card's photo and refuses the other's. Both cards are recorded with the raw WLT;
/// the first also gets the BMP, the second a failed `photo_decoding` check.
#[test]
fn a_configured_photo_decoder_adds_the_bmp_and_its_failure_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_wlt_stub(dir.path());
    // Seeds whose filler photo starts with an even byte (decodes) and an odd one (refused).
    let first_byte = |seed: u32| ga467::sim::filler_photo(seed)[0];
    let even = (1..100).find(|s| first_byte(*s) % 2 == 0).unwrap();
    let odd = (1..100).find(|s| first_byte(*s) % 2 == 1).unwrap();
    let link = link_in(dir.path());
    let _sim = start_scenario_sim(
        &link,
        &scenario(&format!(
            "[cards.ok]\nfake = 0\nphoto_seed = {even}\n[cards.bad]\nfake = 5\nphoto_seed = {odd}\n\
             [[at]]\nms = 300\nplace = \"ok\"\n[[at]]\nms = 1500\nplace = \"bad\"\n"
        )),
    );
    let setup = reader_station(dir.path(), &link, "115200", "");
    setup.append_config(&format!(
        "[id_readers.desk.photo_decoder]\nlibrary = \"{}\"\nsignature = \"unpack\"\n",
        lib.display()
    ));
    let daemon = start_daemon(&setup);
    let records = wait_for_records(&setup, 2, Duration::from_secs(20), &daemon);
    let roles = |r: &countersign::record::Record| -> Vec<(String, String, u64)> {
        r.evidence
            .iter()
            .map(|e| (e.role.clone(), e.media_type.clone(), e.size))
            .collect()
    };
    let check = |r: &countersign::record::Record| {
        r.identities[0]
            .checks
            .iter()
            .find(|c| c.name == "photo_decoding")
            .cloned()
            .expect("photo_decoding check")
    };
    assert_eq!(
        roles(&records[0]),
        [
            (
                "face_photo_wlt".into(),
                "application/octet-stream".into(),
                1024
            ),
            ("face_photo".into(), "image/bmp".into(), 38_862)
        ]
    );
    assert_eq!(check(&records[0]).result, CheckResult::Pass);
    assert_eq!(
        roles(&records[1]),
        [(
            "face_photo_wlt".into(),
            "application/octet-stream".into(),
            1024
        )]
    );
    let failed = check(&records[1]);
    assert_eq!(failed.result, CheckResult::Fail);
    assert!(
        failed.detail.unwrap().contains("unpack returned -1"),
        "{}",
        daemon.stderr()
    );
    assert!(plain(&daemon.stderr()).contains("WLT photo decoder loaded"));
}

/// A cdylib exporting `unpack` that writes raw BGR and refuses photos starting with an odd byte.
fn build_wlt_stub(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("wltstub.rs");
    std::fs::write(
        &src,
        r#"
#[no_mangle]
pub extern "C" fn unpack(wlt: *const u8, out: *mut u8, _flag: i32) -> i32 {
    let wlt = unsafe { std::slice::from_raw_parts(wlt, 1024) };
    let out = unsafe { std::slice::from_raw_parts_mut(out, 102 * 126 * 3) };
    if wlt[0] % 2 == 1 { return -1; }
    for (i, b) in out.iter_mut().enumerate() { *b = wlt[i % 1024]; }
    1
}
"#,
    )
    .unwrap();
    let lib = dir.join("libwltstub.so");
    let status = std::process::Command::new("rustc")
        .args(["--edition", "2021", "--crate-type", "cdylib", "-O", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "building the stand-in WLT library failed");
    lib
}
