//! [`Camera`] over the replay backend: settle frames, bad frames, stills, unplug and busy.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::frame::tests::tiny_jpeg;

fn camera(
    frames: Vec<(Vec<u8>, u32)>,
    fps: f64,
    settle_ms: u64,
) -> (Camera, replay::ReplayControl) {
    let source = ReplaySource::from_frames(Path::new("mem"), frames, fps, true);
    let control = source.control();
    let camera = Camera::open(
        Box::new(source),
        &FormatRequest { max_size: None },
        &Controls {
            power_line_hz: Some(50),
        },
        CameraOptions {
            settle: Duration::from_millis(settle_ms),
            frame_timeout: Duration::from_secs(2),
            max_bad_frames: 5,
        },
    )
    .map_err(|(e, _)| e)
    .unwrap();
    (camera, control)
}

#[test]
fn settle_frames_are_discarded_and_bad_frames_skipped() {
    let good = tiny_jpeg(4208, 3120, false, 0x33);
    let truncated = good[..good.len() / 2].to_vec();
    let (mut cam, _) = camera(
        vec![
            (good.clone(), 20),
            (truncated, 2),
            (Vec::new(), 1),
            (good.clone(), 5),
        ],
        100.0,
        100,
    );
    assert_eq!(
        cam.controls(),
        [ControlOutcome::Set("power_line_frequency=50 Hz".into())]
    );
    assert_eq!(
        (cam.negotiated().width, cam.negotiated().height),
        (4208, 3120)
    );
    let started = Instant::now();
    let first = cam.still().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(90));
    assert_eq!((first.width, first.height), (4208, 3120));
    let stats = cam.stats();
    assert!(stats.settle_discarded >= 8, "{stats:?}");
    // Through the truncated and empty frames to the next good one.
    let mut frames = 0;
    while cam.stats().bad < 3 {
        cam.next_good_frame().unwrap();
        frames += 1;
        assert!(frames < 40);
    }
    assert!(matches!(cam.last_problem(), Some(FrameProblem::Empty)));
    assert!(cam.stats().without_huffman_tables >= 1);
}

#[test]
fn a_run_of_bad_frames_is_an_error_worth_reopening_for() {
    let (mut cam, _) = camera(vec![(b"garbage".to_vec(), 1)], 0.0, 0);
    let err = cam.next_good_frame().unwrap_err();
    assert!(
        matches!(err, CameraError::BadFrames { count: 5, .. }),
        "{err:?}"
    );
    assert!(err.is_device_lost());
}

#[test]
fn unplug_replug_and_busy() {
    let good = tiny_jpeg(640, 480, true, 1);
    let (mut cam, control) = camera(vec![(good, 1)], 0.0, 0);
    cam.next_good_frame().unwrap();
    control.unplug();
    let err = cam.next_good_frame().unwrap_err();
    assert!(matches!(err, CameraError::Unplugged { .. }), "{err:?}");
    let source = cam.close();
    let reopen = |source| {
        Camera::open(
            source,
            &FormatRequest { max_size: None },
            &Controls {
                power_line_hz: None,
            },
            CameraOptions::default(),
        )
    };
    let Err((err, source)) = reopen(source) else {
        panic!("opened while unplugged")
    };
    assert!(matches!(err, CameraError::NotFound { .. }), "{err:?}");
    control.replug();
    control.hold("held by eloamsvc[812]");
    let Err((err, source)) = reopen(source) else {
        panic!("opened while held")
    };
    assert!(
        err.to_string().contains("busy: held by eloamsvc[812]"),
        "{err}"
    );
    control.free();
    let mut cam = reopen(source).map_err(|(e, _)| e).unwrap();
    cam.next_good_frame().unwrap();
    assert_eq!(control.opens(), 2);
}

#[test]
fn a_recorded_mjpeg_stream_and_a_directory_replay() {
    let dir = std::env::temp_dir().join(format!("camera-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = tiny_jpeg(800, 600, false, 1);
    let b = tiny_jpeg(800, 600, false, 2);
    let mut stream = a.clone();
    stream.extend_from_slice(&b[..20]);
    stream.extend_from_slice(&b);
    std::fs::write(dir.join("rec.mjpeg"), &stream).unwrap();
    std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
    let mut source = ReplaySource::from_path(&dir, 0.0, 2, false).unwrap();
    assert_eq!(source.len(), 6, "three frames, each held twice");
    source.open(&FormatRequest { max_size: None }).unwrap();
    let mut checked = Vec::new();
    loop {
        match source.next_frame(Duration::from_secs(1)) {
            Ok((bytes, _)) => checked.push(frame::check(&bytes).is_ok()),
            Err(CameraError::Ended) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(checked, [true, true, false, false, true, true]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(ReplaySource::from_path(&empty, 1.0, 1, true).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
