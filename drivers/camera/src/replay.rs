//! The replay backend: recorded frames played as if they were a camera, through the same
//! [`Camera`](crate::Camera) checks as V4L2 frames. Frames come from a directory of JPEG/PNG
//! files (name order), a recorded MJPEG stream (`*.mjpeg`, `*.mjpg`: `v4l2-ctl --stream-to`),
//! a single image, or memory (tests, the demo). Each frame is shown `hold` times at `fps`, so a
//! directory of page images plays as pages laid one after another. Nothing is repaired or
//! filtered here: DHT-less and truncated frames reach the checks and the repair as recorded.
//!
//! A [`ReplayControl`] unplugs and replugs the replay or makes it busy, to drive the recovery
//! paths of the code above it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::frame::{self, split_mjpeg};
use crate::{CameraError, ControlOutcome, Controls, FormatRequest, FrameSource, Negotiated};

/// Plug state shared with tests.
#[derive(Debug, Default)]
struct Plug {
    unplugged: bool,
    busy: Option<String>,
    opens: u32,
}

/// Unplugs, replugs or occupies a replay source from outside.
#[derive(Debug, Clone, Default)]
pub struct ReplayControl(Arc<Mutex<Plug>>);

impl ReplayControl {
    pub fn unplug(&self) {
        self.lock().unplugged = true;
    }
    pub fn replug(&self) {
        self.lock().unplugged = false;
    }
    /// Opening fails with EBUSY and this cause until `free`.
    pub fn hold(&self, cause: &str) {
        self.lock().busy = Some(cause.to_string());
    }
    pub fn free(&self) {
        self.lock().busy = None;
    }
    /// How many times the source was opened.
    pub fn opens(&self) -> u32 {
        self.lock().opens
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Plug> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Frames played as a camera.
pub struct ReplaySource {
    path: PathBuf,
    /// Each frame with how many times it is shown in a row.
    frames: Vec<(Arc<Vec<u8>>, u32)>,
    interval: Duration,
    looping: bool,
    control: ReplayControl,
    open: bool,
    position: usize,
    shown: u32,
    sequence: u64,
    next_due: Option<Instant>,
    power_line_hz: Option<u32>,
}

/// Image files a directory replay takes.
fn is_frame_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| matches!(e.as_str(), "jpg" | "jpeg" | "png" | "mjpeg" | "mjpg"))
}

fn is_stream_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| e == "mjpeg" || e == "mjpg")
}

impl ReplaySource {
    /// Frames from a directory, a recorded MJPEG stream or an image file.
    pub fn from_path(
        path: &Path,
        fps: f64,
        hold: u32,
        looping: bool,
    ) -> Result<ReplaySource, CameraError> {
        let err = |reason: String| CameraError::Replay {
            path: path.to_path_buf(),
            reason,
        };
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| err(format!("cannot list: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_frame_file(p))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut frames = Vec::new();
        for file in files {
            let bytes =
                std::fs::read(&file).map_err(|e| err(format!("{}: {e}", file.display())))?;
            if is_stream_file(&file) {
                frames.extend(split_mjpeg(&bytes).into_iter().map(|f| f.to_vec()));
            } else {
                frames.push(bytes);
            }
        }
        if frames.is_empty() {
            return Err(err("no frames (JPEG, PNG or MJPEG files)".into()));
        }
        Ok(Self::from_frames(
            path,
            frames.into_iter().map(|f| (f, hold.max(1))).collect(),
            fps,
            looping,
        ))
    }

    /// Frames from memory, each with how many times it is shown in a row.
    pub fn from_frames(
        name: &Path,
        frames: Vec<(Vec<u8>, u32)>,
        fps: f64,
        looping: bool,
    ) -> ReplaySource {
        let interval = if fps > 0.0 && fps.is_finite() {
            Duration::from_secs_f64(1.0 / fps)
        } else {
            Duration::ZERO
        };
        ReplaySource {
            path: name.to_path_buf(),
            frames: frames
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(f, n)| (Arc::new(f), n))
                .collect(),
            interval,
            looping,
            control: ReplayControl::default(),
            open: false,
            position: 0,
            shown: 0,
            sequence: 0,
            next_due: None,
            power_line_hz: None,
        }
    }

    /// A handle to unplug, replug or occupy this source.
    pub fn control(&self) -> ReplayControl {
        self.control.clone()
    }

    /// The power-line frequency last set (replay records it, as a camera would apply it).
    pub fn power_line_hz(&self) -> Option<u32> {
        self.power_line_hz
    }

    /// Frames in one pass (counting holds).
    pub fn len(&self) -> u64 {
        self.frames.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl FrameSource for ReplaySource {
    fn open(&mut self, _request: &FormatRequest) -> Result<Negotiated, CameraError> {
        {
            let mut plug = self.control.lock();
            if plug.unplugged {
                return Err(CameraError::NotFound {
                    path: self.path.clone(),
                });
            }
            if let Some(cause) = &plug.busy {
                return Err(CameraError::Busy {
                    path: self.path.clone(),
                    cause: cause.clone(),
                });
            }
            plug.opens += 1;
        }
        let (width, height) = self
            .frames
            .iter()
            .find_map(|(f, _)| frame::check(f).ok())
            .map(|i| (i.width, i.height))
            .unwrap_or((0, 0));
        self.open = true;
        self.next_due = None;
        Ok(Negotiated {
            width,
            height,
            fps: if self.interval.is_zero() {
                0.0
            } else {
                1.0 / self.interval.as_secs_f64()
            },
            pixel_format: "replay".into(),
            description: format!("replay of {}", self.path.display()),
        })
    }

    fn set_controls(&mut self, controls: &Controls) -> Result<Vec<ControlOutcome>, CameraError> {
        if !self.open {
            return Err(CameraError::NotOpen);
        }
        let mut out = Vec::new();
        if let Some(hz) = controls.power_line_hz {
            self.power_line_hz = Some(hz);
            out.push(ControlOutcome::Set(format!("power_line_frequency={hz} Hz")));
        }
        Ok(out)
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<(Vec<u8>, u64), CameraError> {
        if !self.open {
            return Err(CameraError::NotOpen);
        }
        if self.control.lock().unplugged {
            self.open = false;
            return Err(CameraError::Unplugged {
                path: self.path.clone(),
            });
        }
        if self.position >= self.frames.len() {
            if !self.looping || self.frames.is_empty() {
                return Err(CameraError::Ended);
            }
            self.position = 0;
            self.shown = 0;
        }
        let now = Instant::now();
        let due = self.next_due.unwrap_or(now);
        if due > now {
            let wait = due - now;
            if wait > timeout {
                std::thread::sleep(timeout);
                return Err(CameraError::Timeout {
                    source_name: self.name(),
                    after: timeout,
                });
            }
            std::thread::sleep(wait);
        }
        // Keep the pace without drifting, but do not burst after a long pause.
        let now = Instant::now();
        let base = due.max(now.checked_sub(self.interval).unwrap_or(now));
        self.next_due = Some(base + self.interval);
        let (bytes, times) = &self.frames[self.position];
        let bytes = bytes.as_ref().clone();
        self.shown += 1;
        if self.shown >= *times {
            self.position += 1;
            self.shown = 0;
        }
        self.sequence += 1;
        Ok((bytes, self.sequence))
    }

    fn close(&mut self) {
        self.open = false;
    }

    fn name(&self) -> String {
        format!("replay {}", self.path.display())
    }
}
