//! The camera supervisor: one thread per `[cameras.<name>]`. It opens the camera (V4L2, or a
//! replay standing in for one), keeps it open, reopens it with bounded backoff when it goes away
//! (unplugged, busy, stalled), and captures pages two ways: on request (a [`CaptureRequest`]: the
//! case system's `capture` command) as a still, and, with `auto_capture`, by itself once a new
//! page lies still ([`camera::stillness`]). Every page goes through [`super::page`] (Huffman
//! tables, the imaging pipeline) before it becomes a [`Capture`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camera::stillness::{Decision, StillnessDetector, StillnessOptions};
use camera::{
    Camera, CameraError, CameraOptions, Controls, FormatRequest, Frame, FrameFormat, FrameSource,
    ReplaySource,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::page;
use super::{CaptureRequest, DeviceEvent};
use crate::config::CameraConfig;
use crate::events::{Event, EventBus, emit};
use crate::imaging::{self, ProcessOptions};

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often an idle supervisor looks for requests.
const IDLE_TICK: Duration = Duration::from_millis(20);
/// How often a camera without auto-capture is checked for being there.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// The frame source `config` names (not opened yet).
pub fn source(config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
    if let Some(path) = &config.replay {
        return Ok(Box::new(ReplaySource::from_path(
            path,
            config.replay_fps.get() as f64,
            config.replay_hold_frames.get() as u32,
            config.replay_loop,
        )?));
    }
    #[cfg(target_os = "linux")]
    if let Some(path) = &config.device {
        return Ok(Box::new(camera::V4l2Source::new(path)));
    }
    Err(CameraError::NotFound {
        path: config.device.clone().unwrap_or_default(),
    })
}

/// Opens `source` as `config` says.
pub fn open(
    source: Box<dyn FrameSource>,
    config: &CameraConfig,
) -> Result<Camera, (CameraError, Box<dyn FrameSource>)> {
    let power_line_hz = match config.power_line_hz.get() {
        0 => None,
        hz => Some(hz as u32),
    };
    Camera::open(
        source,
        &FormatRequest {
            max_size: config.max_size.map(|[w, h]| (w, h)),
        },
        &Controls { power_line_hz },
        CameraOptions {
            settle: config.settle_ms.millis(),
            frame_timeout: config.frame_timeout_ms.millis(),
            max_bad_frames: 30,
        },
    )
}

/// A page of a frame, as the record and the requester see it.
pub fn page_of(frame: Frame, label: Option<String>, opts: &ProcessOptions) -> page::Page {
    let media_type = match frame.format {
        FrameFormat::Jpeg => "image/jpeg",
        FrameFormat::Png => "image/png",
    };
    page::page(frame.bytes, media_type, label, opts)
}

pub fn spawn(
    name: String,
    config: CameraConfig,
    imaging: ProcessOptions,
    tx: mpsc::Sender<DeviceEvent>,
    requests: mpsc::Receiver<CaptureRequest>,
    events: EventBus,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    spawn_with(name, config, None, imaging, tx, requests, events, stop)
}

/// As [`spawn`], with the frame source given (tests: a replay they unplug and replug).
#[allow(clippy::too_many_arguments)]
pub fn spawn_with(
    name: String,
    config: CameraConfig,
    source: Option<Box<dyn FrameSource>>,
    imaging: ProcessOptions,
    tx: mpsc::Sender<DeviceEvent>,
    requests: mpsc::Receiver<CaptureRequest>,
    events: EventBus,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("camera-{name}"))
        .spawn(move || {
            Supervisor {
                presence: super::Presence::new("camera", &name),
                detector: StillnessDetector::new(stillness_options(&config)),
                name,
                config,
                imaging,
                tx,
                requests,
                events,
                stop,
                last_problem: String::new(),
                detail: String::new(),
            }
            .run(source)
        })
}

fn stillness_options(config: &CameraConfig) -> StillnessOptions {
    StillnessOptions {
        motion_threshold: config.motion_threshold,
        still_frames: config.still_frames.get() as u32,
        change_threshold: config.change_threshold,
    }
}

struct Supervisor {
    name: String,
    config: CameraConfig,
    imaging: ProcessOptions,
    tx: mpsc::Sender<DeviceEvent>,
    requests: mpsc::Receiver<CaptureRequest>,
    events: EventBus,
    stop: Arc<AtomicBool>,
    detector: StillnessDetector,
    last_problem: String,
    /// The open camera, for the records' device detail (`Eloam S1300 (usb-...) 4208x3120`).
    detail: String,
    presence: super::Presence,
}

/// The station stopped listening: the supervisor ends.
struct StationGone;

impl Supervisor {
    fn run(mut self, mut source: Option<Box<dyn FrameSource>>) {
        let mut camera: Option<Camera> = None;
        let mut backoff = BACKOFF_FIRST;
        let mut next_open = Instant::now();
        let mut next_look = Instant::now();
        let mut next_check = Instant::now();
        let mut ended = false;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(cam) = camera.as_mut() else {
                if Instant::now() >= next_open {
                    match self.open(source.take()) {
                        Ok(c) => {
                            camera = Some(c);
                            backoff = BACKOFF_FIRST;
                            ended = false;
                            continue;
                        }
                        Err((e, s)) => {
                            source = s;
                            self.problem(&e);
                            next_open = Instant::now() + backoff;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
                while let Ok(request) = self.requests.try_recv() {
                    let _ = request.reply.send(Err(format!(
                        "camera {} is unavailable: {}",
                        self.name, self.last_problem
                    )));
                }
                std::thread::sleep(IDLE_TICK);
                continue;
            };
            let result = if let Ok(request) = self.requests.try_recv() {
                self.requested(cam, request)
            } else if self.config.auto_capture && !ended {
                match cam.next_good_frame() {
                    Ok(frame) if Instant::now() >= next_look => {
                        next_look = Instant::now() + self.config.analysis_interval_ms.millis();
                        self.look(frame).map(|()| Ok(()))
                    }
                    Ok(_) => Ok(Ok(())),
                    Err(e) => Ok(Err(e)),
                }
            } else if !ended && Instant::now() >= next_check {
                // Idle: take a frame now and then, so an unplugged camera is noticed (and
                // reopened) before the next request rather than by it.
                next_check = Instant::now() + IDLE_CHECK;
                Ok(cam.next_good_frame().map(|_| ()))
            } else {
                std::thread::sleep(IDLE_TICK);
                Ok(Ok(()))
            };
            match result {
                Err(StationGone) => return,
                Ok(Ok(())) => {}
                Ok(Err(CameraError::Ended)) => {
                    if !ended {
                        info!(camera = %self.name, "the replay has ended; captures on request fail until a restart");
                    }
                    ended = true;
                }
                Ok(Err(e)) if e.is_device_lost() => {
                    self.problem(&e);
                    if let Some(c) = camera.take() {
                        source = Some(c.close());
                    }
                    next_open = Instant::now() + backoff;
                }
                Ok(Err(e)) => warn!(camera = %self.name, error = %e, "camera error"),
            }
        }
        if let Some(c) = camera.take() {
            c.close();
        }
    }

    fn open(
        &mut self,
        source: Option<Box<dyn FrameSource>>,
    ) -> Result<Camera, (CameraError, Option<Box<dyn FrameSource>>)> {
        let source = match source {
            Some(s) => s,
            None => self::source(&self.config).map_err(|e| (e, None))?,
        };
        let cam = open(source, &self.config).map_err(|(e, s)| (e, Some(s)))?;
        let n = cam.negotiated();
        self.detail = format!("{} {}x{}", n.description, n.width, n.height);
        info!(
            camera = %self.name,
            device = %n.description,
            size = %format!("{}x{}", n.width, n.height),
            fps = n.fps,
            format = %n.pixel_format,
            controls = ?cam.controls(),
            auto_capture = self.config.auto_capture,
            "camera ready"
        );
        // The detector keeps its last still view across a reopen: the page that lay there before
        // the camera went away is not captured again.
        self.last_problem.clear();
        self.presence.report(&self.events, Ok(()));
        Ok(cam)
    }

    fn problem(&mut self, e: &CameraError) {
        let problem = e.to_string();
        if self.last_problem != problem {
            warn!(camera = %self.name, %problem, "camera unavailable; retrying");
            self.last_problem = problem.clone();
        }
        self.presence.report(&self.events, Err(problem));
    }

    /// A still on request, answered with the pages delivered or why none was.
    fn requested(
        &mut self,
        cam: &mut Camera,
        request: CaptureRequest,
    ) -> Result<Result<(), CameraError>, StationGone> {
        let asked = Instant::now();
        let opts = match page::with_mode(self.imaging, request.mode.as_deref()) {
            Ok(o) => o,
            Err(e) => {
                let _ = request.reply.send(Err(e));
                return Ok(Ok(()));
            }
        };
        let frame = match cam.still() {
            Ok(f) => f,
            Err(e) => {
                let _ = request
                    .reply
                    .send(Err(format!("camera {}: {e}", self.name)));
                return Ok(Err(e));
            }
        };
        let page = page_of(frame, Some(request.label), &opts);
        if page.report.found == Some(false) {
            emit(
                &self.events,
                Event::QualityProblem {
                    device: self.name.clone(),
                    reason: "no document found in the camera's view".into(),
                },
            );
        }
        self.send(page, "request", asked)?;
        let _ = request.reply.send(Ok(1));
        Ok(Ok(()))
    }

    /// Auto-capture: one look at a frame.
    fn look(&mut self, frame: Frame) -> Result<(), StationGone> {
        let started = Instant::now();
        let repaired = match frame.format {
            FrameFormat::Jpeg => imaging::ensure_huffman_tables(&frame.bytes),
            FrameFormat::Png => std::borrow::Cow::Borrowed(&frame.bytes[..]),
        };
        let thumb = match camera::thumbnail::thumbnail(&repaired, frame.format) {
            Ok(t) => t,
            Err(e) => {
                debug!(camera = %self.name, error = %e, "frame not analysed");
                return Ok(());
            }
        };
        let decision = self.detector.observe(thumb);
        match decision {
            Decision::NewView(change) => {
                let page = page_of(frame, None, &self.imaging);
                if page.report.found == Some(false) {
                    info!(camera = %self.name, change, "auto-capture: the view settled without a page in it");
                    return Ok(());
                }
                info!(camera = %self.name, change, "auto-capture: a new page lies still");
                self.send(page, "auto-capture", started)
            }
            Decision::SameView(change) => {
                debug!(camera = %self.name, change, "auto-capture: the same page is still there");
                Ok(())
            }
            other => {
                debug!(camera = %self.name, ?other, look_ms = started.elapsed().as_millis() as u64, "auto-capture look");
                Ok(())
            }
        }
    }

    fn send(&mut self, page: page::Page, how: &str, started: Instant) -> Result<(), StationGone> {
        let detail = self.detail.clone();
        let capture = page::capture(&self.name, "camera", detail, page.evidence, &page.report);
        info!(
            camera = %self.name,
            how,
            summary = %capture.summary,
            ms = started.elapsed().as_millis() as u64,
            "page captured"
        );
        self.tx
            .blocking_send(DeviceEvent::Captured(Box::new(capture)))
            .map_err(|_| StationGone)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use camera::ReplaySource;

    use super::*;
    use crate::devices::Capture;
    use crate::imaging::testgen::{SceneOptions, scene};

    fn frame(seed: u64, empty: bool) -> Vec<u8> {
        scene(
            seed,
            &SceneOptions {
                width: 640,
                height: 480,
                empty,
                blur: Some(0.0),
                light: Some(1.0),
                ..SceneOptions::default()
            },
        )
        .jpeg
    }

    fn config() -> CameraConfig {
        let text = "replay = \"/unused\"\nsettle_ms = 0\nauto_capture = true\nanalysis_interval_ms = 20\nframe_timeout_ms = 2000\n";
        toml::from_str(text).unwrap()
    }

    fn next_capture(rx: &mut mpsc::Receiver<DeviceEvent>, within: Duration) -> Option<Capture> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match rx.try_recv() {
                Ok(DeviceEvent::Captured(c)) => return Some(*c),
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        None
    }

    #[test]
    fn recovers_after_unplug_without_capturing_the_same_page_twice_and_answers_requests() {
        let a = frame(41, false);
        let b = frame(42, false);
        // Page A lies there; later page B (the replay loops over B at the end).
        let source = ReplaySource::from_frames(
            Path::new("mem"),
            vec![(frame(1, true), 6), (a.clone(), 60), (b.clone(), 1_000_000)],
            50.0,
            false,
        );
        let control = source.control();
        let (tx, mut rx) = mpsc::channel(16);
        let (req_tx, req_rx) = mpsc::channel(4);
        let stop = Arc::new(AtomicBool::new(false));
        let bus = crate::events::bus();
        let mut events = bus.subscribe();
        let thread = spawn_with(
            "desk".into(),
            config(),
            Some(Box::new(source)),
            ProcessOptions::default(),
            tx,
            req_rx,
            bus,
            stop.clone(),
        )
        .unwrap();
        let first = next_capture(&mut rx, Duration::from_secs(30)).expect("page A captured");
        assert_eq!(
            first.evidence[1].bytes, a,
            "page_original is page A as captured"
        );
        // Unplugged while A lies there, back a second later.
        control.unplug();
        std::thread::sleep(Duration::from_millis(1200));
        control.replug();
        let second = next_capture(&mut rx, Duration::from_secs(30)).expect("page B captured");
        assert_eq!(second.evidence[1].bytes, b, "A was not captured again");
        assert!(control.opens() >= 2, "reopened after the unplug");
        // The counter was told: connected, disconnected, connected, once each.
        let mut changes = Vec::new();
        while let Ok(e) = events.try_recv() {
            match e {
                Event::CaptureDeviceReady { kind, name } => {
                    changes.push(format!("{kind} {name} up"))
                }
                Event::CaptureDeviceUnavailable { kind, name, .. } => {
                    changes.push(format!("{kind} {name} down"))
                }
                _ => {}
            }
        }
        assert_eq!(
            changes,
            ["camera desk up", "camera desk down", "camera desk up"]
        );
        // A request: a still with the label, answered with the page count.
        let (reply, answer) = tokio::sync::oneshot::channel();
        req_tx
            .blocking_send(CaptureRequest {
                label: "household_register".into(),
                mode: Some("grey".into()),
                reply,
            })
            .unwrap();
        let requested = next_capture(&mut rx, Duration::from_secs(30)).expect("requested still");
        assert_eq!(answer.blocking_recv().unwrap(), Ok(1));
        assert!(
            requested
                .evidence
                .iter()
                .all(|e| e.label.as_deref() == Some("household_register"))
        );
        let (reply, answer) = tokio::sync::oneshot::channel();
        req_tx
            .blocking_send(CaptureRequest {
                label: "x".into(),
                mode: Some("sepia".into()),
                reply,
            })
            .unwrap();
        assert!(
            answer
                .blocking_recv()
                .unwrap()
                .unwrap_err()
                .contains("sepia")
        );
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
    }
}
