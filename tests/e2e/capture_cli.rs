//! `countersign capture`: a real scanimage on SANE's test backend (feeder, injected errors) and
//! a replay camera (DHT-less frames), through the same driver and pipeline code as the daemon.

use std::time::Instant;

use crate::harness_capture::*;

fn code(output: &std::process::Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

#[test]
fn the_feeder_scans_ten_pages_and_each_is_processed_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let sane = sane_config_dir(dir.path());
    let out = dir.path().join("out");
    let tail = scanner_table(
        "feeder",
        &sane,
        "feeder = true\nsource = \"Automatic Document Feeder\"\noptions = [\"--test-picture=Grid\"]",
    );
    let started = Instant::now();
    let output = capture_cli(
        dir.path(),
        &tail,
        &[
            "--source",
            "feeder",
            "--out",
            out.to_str().unwrap(),
            "--label",
            "household_register",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(code(&output), 0, "{stderr}");
    let pages = json_lines(&output);
    assert_eq!(pages.len(), 10, "the test feeder holds 10 sheets");
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(p["page"], i + 1);
        assert_eq!(p["source"], "feeder");
        assert_eq!(p["kind"], "scanner");
        assert_eq!(p["label"], "household_register");
        assert_eq!(p["report"]["processed"], true, "{p}");
        let path = p["output"].as_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(&[0xFF, 0xD8]), "{path}");
    }
    eprintln!(
        "10 feeder pages scanned, processed and written in {} ms",
        started.elapsed().as_millis()
    );
}

#[test]
fn scanner_errors_are_named_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sane = sane_config_dir(dir.path());
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases = [
        ("SANE_STATUS_JAMMED", 6, "jam"),
        ("SANE_STATUS_COVER_OPEN", 6, "cover"),
        ("SANE_STATUS_NO_DOCS", 5, "no paper"),
        ("SANE_STATUS_IO_ERROR", 6, "I/O"),
        ("SANE_STATUS_DEVICE_BUSY", 4, "busy"),
    ];
    for (value, exit, words) in cases {
        let tail = scanner_table(
            "feeder",
            &sane,
            &format!(
                "feeder = true\nsource = \"Automatic Document Feeder\"\noptions = [\"--read-return-value={value}\"]"
            ),
        );
        let output = capture_cli(dir.path(), &tail, &["--source", "feeder", "--out", out]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(code(&output), exit, "{value}: {stderr}");
        assert!(stderr.contains(words), "{value}: {stderr}");
        assert!(json_lines(&output).is_empty());
    }
    // A device SANE does not know, and a source the configuration does not name.
    let tail = format!(
        "[scanners.feeder]\ndevice = \"nosuch:0\"\nsane_config_dir = \"{}\"\n",
        sane.display()
    );
    let output = capture_cli(dir.path(), &tail, &["--source", "feeder", "--out", out]);
    assert_eq!(
        code(&output),
        3,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = capture_cli(dir.path(), &tail, &["--source", "desk", "--out", out]);
    assert_eq!(code(&output), 3);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no camera or scanner \"desk\""));
}

#[test]
fn a_replay_camera_gives_a_repaired_processed_page() {
    let dir = tempfile::tempdir().unwrap();
    let frames = replay_dir(
        &dir.path().join("frames"),
        &[("000.jpg", page_frame(3, false))],
    );
    let out = dir.path().join("out");
    let tail = format!(
        "[cameras.desk]\nreplay = \"{}\"\nreplay_fps = 30\nreplay_loop = true\nsettle_ms = 300\n",
        frames.display()
    );
    let output = capture_cli(
        dir.path(),
        &tail,
        &[
            "--source",
            "desk",
            "--out",
            out.to_str().unwrap(),
            "--label",
            "id_card",
            "--mode",
            "grey",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(code(&output), 0, "{stderr}");
    let pages = json_lines(&output);
    assert_eq!(pages.len(), 1);
    let p = &pages[0];
    assert_eq!(p["kind"], "camera");
    assert_eq!(p["report"]["found"], true, "{p}");
    assert_eq!(p["report"]["dht_inserted"], true, "{p}");
    let jpeg = std::fs::read(p["output"].as_str().unwrap()).unwrap();
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    eprintln!(
        "replay still: settle 300 ms + capture + pipeline = {} ms; pipeline stages {}",
        p["capture_ms"], p["report"]["timings"]
    );

    // The empty desk: the frame is written, flagged, exit 5.
    let empty = replay_dir(
        &dir.path().join("empty"),
        &[("000.jpg", page_frame(4, true))],
    );
    let tail = format!(
        "[cameras.desk]\nreplay = \"{}\"\nreplay_loop = true\nsettle_ms = 0\n",
        empty.display()
    );
    let output = capture_cli(
        dir.path(),
        &tail,
        &["--source", "desk", "--out", out.to_str().unwrap()],
    );
    assert_eq!(
        code(&output),
        5,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(json_lines(&output)[0]["report"]["found"], false);

    // A camera that is not plugged in.
    let tail = "[cameras.desk]\ndevice = \"/dev/v4l/by-id/usb-none-video-index0\"\n";
    let output = capture_cli(
        dir.path(),
        tail,
        &["--source", "desk", "--out", out.to_str().unwrap()],
    );
    assert_eq!(code(&output), 3);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));
}
