//! Bursts through the channels between the station loop and the devices, larger than their
//! capacity, with a slow consumer: nothing is lost and nothing deadlocks. The producers are the
//! real supervisors (three hot folders holding 50 files, a replay camera asked for stills by 12
//! callers at once); the consumer stands in for the station loop, which the supervisors must
//! not depend on being fast. Capacities as the station sets them: the device channel 16 slots,
//! each source's capture requests 4.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{CaptureRequest, DeviceEvent, IntakeOutcome};
use crate::config::{CameraConfig, FolderConfig};
use crate::imaging::ProcessOptions;
use crate::imaging::testgen::{SceneOptions, scene};

const DEVICE_SLOTS: usize = 16;
const REQUEST_SLOTS: usize = 4;
const FILES: usize = 50;
const FOLDERS: usize = 3;
const REQUESTS: usize = 12;

fn folder_config(dir: &Path) -> FolderConfig {
    let text = format!(
        "path = {:?}\nsettle_ms = 0\npoll_interval_ms = 50\nprocess = false\n",
        dir.display().to_string()
    );
    toml::from_str(&text).expect("folder config")
}

fn camera_config() -> CameraConfig {
    let text =
        "replay = \"/unused\"\nsettle_ms = 0\nauto_capture = false\nframe_timeout_ms = 2000\n";
    toml::from_str(text).expect("camera config")
}

#[test]
fn device_and_request_channels_survive_bursts_past_capacity_with_a_slow_consumer() {
    let root = tempfile::tempdir().expect("temp dir");
    let stop = Arc::new(AtomicBool::new(false));
    let bus = crate::events::bus();
    let (tx, mut rx) = mpsc::channel::<DeviceEvent>(DEVICE_SLOTS);

    // 50 files over three folders, all there before the supervisors start: a burst.
    let mut folders = Vec::new();
    let mut threads = Vec::new();
    for f in 0..FOLDERS {
        let dir = root.path().join(format!("in-{f}"));
        std::fs::create_dir_all(&dir).expect("folder");
        for n in (f..FILES).step_by(FOLDERS) {
            std::fs::write(
                dir.join(format!("page-{n:02}.pdf")),
                format!("%PDF-1.7 {n}"),
            )
            .expect("file");
        }
        threads.push(
            super::folder::spawn(
                format!("folder{f}"),
                folder_config(&dir),
                None,
                tx.clone(),
                bus.clone(),
                stop.clone(),
            )
            .expect("folder thread"),
        );
        folders.push(dir);
    }

    // A replay camera asked for a still by 12 callers at once, through its 4-slot channel.
    let frame = scene(
        5,
        &SceneOptions {
            width: 320,
            height: 240,
            ..SceneOptions::default()
        },
    )
    .jpeg;
    let source = camera::ReplaySource::from_frames(Path::new("mem"), vec![(frame, 1)], 30.0, true);
    let (req_tx, req_rx) = mpsc::channel::<CaptureRequest>(REQUEST_SLOTS);
    threads.push(
        super::camera::spawn_with(
            "desk".into(),
            camera_config(),
            Some(Box::new(source)),
            ProcessOptions {
                dpi: 72,
                ..ProcessOptions::default()
            },
            tx.clone(),
            req_rx,
            bus.clone(),
            stop.clone(),
        )
        .expect("camera thread"),
    );
    drop(tx);
    let callers: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let req_tx = req_tx.clone();
            std::thread::spawn(move || {
                let (reply, answer) = oneshot::channel();
                req_tx
                    .blocking_send(CaptureRequest {
                        label: format!("form-{i}"),
                        mode: None,
                        reply,
                    })
                    .expect("the camera takes the request");
                answer.blocking_recv().expect("the camera answers")
            })
        })
        .collect();

    // The slow consumer: 20 ms per event for the first 40, so the channel stays full a while.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut files, mut stills) = (BTreeSet::new(), BTreeSet::new());
    let mut handled = 0;
    while (files.len() < FILES || stills.len() < REQUESTS) && Instant::now() < deadline {
        if handled < 40 {
            std::thread::sleep(Duration::from_millis(20));
        }
        match rx.try_recv() {
            Ok(DeviceEvent::Intake(capture, intake)) => {
                let bytes = capture.evidence.first().map(|e| e.bytes.clone());
                let text = String::from_utf8(bytes.unwrap_or_default()).unwrap_or_default();
                assert!(files.insert(text.clone()), "file delivered twice: {text}");
                let _ = intake
                    .outcome
                    .send(IntakeOutcome::Committed(format!("rec-{handled}")));
                handled += 1;
            }
            Ok(DeviceEvent::Captured(capture)) => {
                let label = capture.evidence.first().and_then(|e| e.label.clone());
                assert!(
                    stills.insert(label.clone()),
                    "still delivered twice: {label:?}"
                );
                handled += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert_eq!(
        files.len(),
        FILES,
        "every file arrived once, within the timeout"
    );
    assert_eq!(stills.len(), REQUESTS, "every requested still arrived once");
    for caller in callers {
        assert_eq!(
            caller.join().expect("caller"),
            Ok(1),
            "each request answered"
        );
    }
    // Every file moved to done/ after its commit (the folder thread waits for the outcome).
    let done = |dir: &Path| {
        std::fs::read_dir(dir.join("done"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let wait = Instant::now() + Duration::from_secs(10);
    while folders.iter().map(|d| done(d)).sum::<usize>() < FILES && Instant::now() < wait {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(folders.iter().map(|d| done(d)).sum::<usize>(), FILES);
    stop.store(true, Ordering::Relaxed);
    drop(req_tx);
    for thread in threads {
        thread.join().expect("device thread ends cleanly");
    }
}
