//! A capture requested inside a case session (the `capture` command, here through the daemon's
//! local control socket, which takes the same commands as the case system): the camera takes a
//! still, the page joins the session with its label, and closing the session seals one record
//! holding the processed page and the frame as captured. Errors come back as the answer.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;
use crate::harness_capture::*;
use crate::harness_mqtt::*;

fn request(socket: &std::path::Path, command: &str, args: serde_json::Value) -> serde_json::Value {
    let response = countersign::station::control::request(socket, command, args)
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    serde_json::to_value(response).unwrap()
}

#[test]
fn a_requested_capture_joins_the_session_with_its_label() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let frame = page_frame(9, false);
    let frames = replay_dir(&dir.path().join("frames"), &[("000.jpg", frame.clone())]);
    let sane = sane_config_dir(dir.path());
    let setup = capture_station(
        dir.path(),
        broker.port,
        &format!(
            "[cameras.desk]\nreplay = \"{}\"\nreplay_fps = 15\nreplay_loop = true\nsettle_ms = 200\n\n{}",
            frames.display(),
            scanner_table(
                "feeder",
                &sane,
                "feeder = true\nsource = \"Automatic Document Feeder\"\noptions = [\"--read-return-value=SANE_STATUS_JAMMED\"]",
            )
        ),
    );
    let consumer = RefConsumer::start(broker.port, &setup, &dir.path().join("case"), None);
    let daemon = start_daemon(&setup);
    let socket = setup.dir.join("state/control.sock");
    wait_until(Duration::from_secs(20), "the control socket", || {
        socket.exists()
    });

    // Outside a session the command is refused.
    let refused = request(&socket, "capture", json!({"source": "desk", "label": "x"}));
    assert_eq!(refused["status"], "rejected", "{refused}");

    let opened = request(&socket, "open_session", json!({"case_ref": "CASE-1"}));
    assert_eq!(opened["status"], "accepted", "{opened}");
    let captured = request(
        &socket,
        "capture",
        json!({"source": "desk", "label": "household_register", "mode": "grey"}),
    );
    assert_eq!(
        captured["status"],
        "accepted",
        "{captured}\n{}",
        daemon.stderr()
    );
    assert_eq!(captured["result"]["pages"], 1, "{captured}");
    // The jammed scanner: the reason comes back, the session goes on.
    let jammed = request(
        &socket,
        "capture",
        json!({"source": "feeder", "label": "y"}),
    );
    assert_eq!(jammed["status"], "rejected", "{jammed}");
    assert!(
        jammed["detail"].as_str().unwrap().contains("jam"),
        "{jammed}"
    );
    let unknown = request(
        &socket,
        "capture",
        json!({"source": "nowhere", "label": "z"}),
    );
    assert_eq!(unknown["reason"], "unknown_source", "{unknown}");

    let closed = request(&socket, "close_session", json!({}));
    assert_eq!(closed["status"], "accepted", "{closed}");
    wait_until(Duration::from_secs(30), "the session's record", || {
        !consumer.stored().is_empty()
    });
    let stored = consumer.stored();
    assert_eq!(stored.len(), 1);
    let evidence = stored[0]["evidence"].as_array().unwrap();
    let roles: Vec<&str> = evidence
        .iter()
        .map(|e| e["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["page", "page_original"], "{}", stored[0]);
    assert!(evidence.iter().all(|e| e["label"] == "household_register"));
    let original = consumer
        .blob(evidence[1]["blob_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        original,
        countersign::imaging::ensure_huffman_tables(&frame).into_owned(),
        "the frame as captured, Huffman tables inserted"
    );
}
