//! Capture sources in the daemon, delivered as records to the reference consumer: a replay
//! camera with auto-capture (one record per new page once it lies still; the same page after a
//! hand passed over it, and the empty desk, are not captured), and a scanner feeder scanned by
//! itself through SANE's test backend.

use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::harness::*;
use crate::harness_capture::*;
use crate::harness_mqtt::*;

fn sha256_ref(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn roles(record: &serde_json::Value) -> Vec<String> {
    record["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["role"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn auto_capture_makes_one_record_per_new_page_lying_still() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let empty = page_frame(1, true);
    let page_a = page_frame(21, false);
    let page_b = page_frame(22, false);
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: &str, bytes: &Vec<u8>, n: usize| {
        for _ in 0..n {
            let name = format!("{:04}-{what}.jpg", frames.len());
            frames.push((name, bytes.clone()));
        }
    };
    add("empty", &empty, 8);
    for seed in 30..33 {
        add("moving", &page_frame(seed, false), 1); // a hand bringing page A
    }
    add("a", &page_a, 10);
    for seed in 33..35 {
        add("hand", &page_frame(seed, false), 1); // a hand passing over A
    }
    add("a-again", &page_a, 10);
    add("removed", &empty, 8);
    add("b", &page_b, 10);
    let frames: Vec<(&str, Vec<u8>)> = frames
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let replay = replay_dir(&dir.path().join("frames"), &frames);
    let setup = capture_station(
        dir.path(),
        broker.port,
        &format!(
            "[cameras.desk]\nreplay = \"{}\"\nreplay_fps = 20\nreplay_hold_frames = 1\nsettle_ms = 0\n\
             auto_capture = true\nanalysis_interval_ms = 20\nstill_frames = 4\n",
            replay.display()
        ),
    );
    let consumer = RefConsumer::start(broker.port, &setup, &dir.path().join("case"), None);
    let started = Instant::now();
    let daemon = start_daemon(&setup);
    wait_until(Duration::from_secs(90), "two pages stored", || {
        consumer.stored().len() >= 2
    });
    // The rest of the replay (A again, the empty desk) adds nothing.
    std::thread::sleep(Duration::from_secs(3));
    let stored = consumer.stored();
    let log = strip_ansi(&daemon.stderr());
    assert_eq!(stored.len(), 2, "{log}");
    for record in &stored {
        assert_eq!(roles(record), ["page", "page_original"], "{record}");
        assert_eq!(record["devices"][0]["kind"], "camera");
        assert_eq!(record["evidence"][0]["media_type"], "image/jpeg");
    }
    // The originals are the frames as captured, Huffman tables inserted.
    for (record, frame) in stored.iter().zip([&page_a, &page_b]) {
        let repaired = countersign::imaging::ensure_huffman_tables(frame);
        assert_eq!(
            record["evidence"][1]["sha256"].as_str().unwrap(),
            sha256_ref(&repaired),
            "page_original is the repaired frame"
        );
        let blob = consumer
            .blob(record["evidence"][0]["blob_id"].as_str().unwrap())
            .unwrap();
        assert!(blob.starts_with(&[0xFF, 0xD8]));
    }
    let decisions = log.matches("auto-capture:").count();
    eprintln!(
        "auto-capture: {} records from {} replayed frames in {} ms; decisions logged: {decisions}\n{}",
        stored.len(),
        frames.len(),
        started.elapsed().as_millis(),
        log.lines()
            .filter(|l| l.contains("auto-capture:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(log.matches("a new page lies still").count(), 2, "{log}");
    assert!(log.contains("without a page in it"), "{log}");
}

#[test]
fn a_scanner_feeder_polled_by_the_daemon_delivers_pages_as_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let sane = sane_config_dir(dir.path());
    let setup = capture_station(
        dir.path(),
        broker.port,
        &scanner_table(
            "feeder",
            &sane,
            "feeder = true\nsource = \"Automatic Document Feeder\"\nmax_pages = 2\npoll_interval_secs = 2\n\
             options = [\"--test-picture=Color pattern\"]\nmode = \"Color\"",
        )
        .replace("mode = \"Color\"", "scan_mode = \"Color\""),
    );
    let consumer = RefConsumer::start(broker.port, &setup, &dir.path().join("case"), None);
    let daemon = start_daemon(&setup);
    wait_until(Duration::from_secs(60), "two scanned pages stored", || {
        consumer.stored().len() >= 2
    });
    drop(daemon);
    for record in consumer.stored().iter().take(2) {
        assert_eq!(record["devices"][0]["kind"], "scanner", "{record}");
        assert_eq!(record["devices"][0]["name"], "feeder");
        assert_eq!(roles(record), ["page", "page_original"], "{record}");
    }
}
