//! Document cameras. [`FrameSource`] is the device-kind trait: open with a requested format, set
//! controls, deliver frames. [`V4l2Source`] drives UVC cameras through V4L2 (Linux);
//! [`ReplaySource`] plays recorded MJPEG streams or image files as if they were a camera (tests,
//! the demo). [`Camera`] is what callers use on top of either: it discards settle frames after
//! opening, rejects bad frames (truncated, empty) and takes stills. [`stillness`] decides when a
//! newly laid page lies still (auto-capture).
//!
//! Frames are untrusted bytes: they are checked by [`frame::check`] and never parsed beyond their
//! marker segments here (decoding is the imaging module's).

// The one unsafe call is poll(2) in v4l2.rs (allowed there, audited).
#![deny(unsafe_code)]

pub mod frame;
pub mod negotiate;
pub mod replay;
pub mod stillness;
pub mod thumbnail;
#[cfg(target_os = "linux")]
pub mod v4l2;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use frame::{Frame, FrameFormat, FrameInfo, FrameProblem};
pub use replay::ReplaySource;
#[cfg(target_os = "linux")]
pub use v4l2::V4l2Source;

/// What the caller asks of the source.
#[derive(Debug, Clone)]
pub struct FormatRequest {
    /// At most this size (width, height); `None`: the largest the camera offers.
    pub max_size: Option<(u32, u32)>,
}

/// What the source settled on (read back from the device after setting it).
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// E.g. `MJPG`.
    pub pixel_format: String,
    /// Name and bus for logs (`"Eloam S1300 (usb-0000:00:14.0-2)"`).
    pub description: String,
}

/// Controls set after opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controls {
    /// Power-line frequency for anti-flicker: 50 (China), 60, or `None` to leave it alone.
    pub power_line_hz: Option<u32>,
}

/// What became of a control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlOutcome {
    Set(String),
    /// The camera has no such control (not an error).
    Absent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera {path} not found (unplugged, or the name in /dev/v4l/by-id changed)")]
    NotFound { path: PathBuf },
    #[error("camera {path} is busy: {cause}")]
    Busy { path: PathBuf, cause: String },
    #[error("no permission to open {path} (the service user needs the video group)")]
    PermissionDenied { path: PathBuf },
    #[error("camera {path} was unplugged")]
    Unplugged { path: PathBuf },
    #[error("camera {path} offers no MJPEG format (it offers {offered})")]
    NoMjpeg { path: PathBuf, offered: String },
    #[error("no frame from {source_name} within {}ms", .after.as_millis())]
    Timeout {
        source_name: String,
        after: Duration,
    },
    #[error("{source_name}: {count} bad frames in a row, the last: {last}")]
    BadFrames {
        source_name: String,
        count: u32,
        last: FrameProblem,
    },
    #[error("{path}: {op}: {error}")]
    Io {
        path: PathBuf,
        op: &'static str,
        error: std::io::Error,
    },
    #[error("replay {path}: {reason}")]
    Replay { path: PathBuf, reason: String },
    #[error("the replay has played all its frames")]
    Ended,
    #[error("source is not open")]
    NotOpen,
    #[error("V4L2 driver for {path} misbehaved: {detail}")]
    Driver { path: PathBuf, detail: String },
}

impl CameraError {
    /// Worth reopening the device for (versus a configuration problem).
    pub fn is_device_lost(&self) -> bool {
        matches!(
            self,
            Self::Unplugged { .. }
                | Self::NotFound { .. }
                | Self::Io { .. }
                | Self::Timeout { .. }
                | Self::Driver { .. }
                | Self::BadFrames { .. }
        )
    }
}

/// One kind of device: something that delivers camera frames.
pub trait FrameSource: Send {
    /// Opens the device and starts streaming in the best format that fits `request`.
    fn open(&mut self, request: &FormatRequest) -> Result<Negotiated, CameraError>;
    /// Sets controls; absent controls are reported, not errors.
    fn set_controls(&mut self, controls: &Controls) -> Result<Vec<ControlOutcome>, CameraError>;
    /// The next frame as delivered (unchecked), waiting at most `timeout`.
    fn next_frame(&mut self, timeout: Duration) -> Result<(Vec<u8>, u64), CameraError>;
    /// Stops streaming and releases the device.
    fn close(&mut self);
    /// For logs and records.
    fn name(&self) -> String;
}

/// How [`Camera`] treats frames.
#[derive(Debug, Clone, Copy)]
pub struct CameraOptions {
    /// Frames in this window after opening are discarded (exposure and white balance settle).
    pub settle: Duration,
    /// Longest wait for one frame.
    pub frame_timeout: Duration,
    /// This many bad frames in a row is an error (the device is reopened).
    pub max_bad_frames: u32,
}

impl Default for CameraOptions {
    fn default() -> Self {
        Self {
            settle: Duration::from_millis(1000),
            frame_timeout: Duration::from_secs(5),
            max_bad_frames: 30,
        }
    }
}

/// Counters for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameStats {
    pub good: u64,
    pub bad: u64,
    pub settle_discarded: u64,
    pub without_huffman_tables: u64,
}

/// A frame source opened and checked: settle frames discarded, bad frames skipped.
pub struct Camera {
    source: Box<dyn FrameSource>,
    options: CameraOptions,
    opened_at: Instant,
    negotiated: Negotiated,
    controls: Vec<ControlOutcome>,
    stats: FrameStats,
    last_problem: Option<FrameProblem>,
}

impl Camera {
    /// Opens `source`, sets `controls`; frames are settled from now. On failure the source is
    /// handed back with the error, to be opened again later.
    pub fn open(
        mut source: Box<dyn FrameSource>,
        request: &FormatRequest,
        controls: &Controls,
        options: CameraOptions,
    ) -> Result<Camera, (CameraError, Box<dyn FrameSource>)> {
        let negotiated = match source.open(request) {
            Ok(n) => n,
            Err(e) => return Err((e, source)),
        };
        let controls = match source.set_controls(controls) {
            Ok(c) => c,
            Err(e) => {
                source.close();
                return Err((e, source));
            }
        };
        Ok(Camera {
            source,
            options,
            opened_at: Instant::now(),
            negotiated,
            controls,
            stats: FrameStats::default(),
            last_problem: None,
        })
    }

    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }
    pub fn controls(&self) -> &[ControlOutcome] {
        &self.controls
    }
    pub fn stats(&self) -> FrameStats {
        self.stats
    }
    pub fn last_problem(&self) -> Option<&FrameProblem> {
        self.last_problem.as_ref()
    }
    pub fn name(&self) -> String {
        self.source.name()
    }

    /// The next good frame, settle frames discarded.
    pub fn next_good_frame(&mut self) -> Result<Frame, CameraError> {
        let mut bad_in_a_row = 0;
        loop {
            let (bytes, sequence) = self.source.next_frame(self.options.frame_timeout)?;
            let at = Instant::now();
            let settling = at.duration_since(self.opened_at) < self.options.settle;
            match frame::check(&bytes) {
                Ok(_) if settling => self.stats.settle_discarded += 1,
                Ok(info) => {
                    self.stats.good += 1;
                    if info.format == FrameFormat::Jpeg && !info.has_huffman_tables {
                        self.stats.without_huffman_tables += 1;
                    }
                    return Ok(Frame {
                        bytes,
                        format: info.format,
                        width: info.width,
                        height: info.height,
                        sequence,
                        at,
                    });
                }
                Err(problem) => {
                    self.stats.bad += 1;
                    bad_in_a_row += 1;
                    self.last_problem = Some(problem.clone());
                    if bad_in_a_row >= self.options.max_bad_frames {
                        return Err(CameraError::BadFrames {
                            source_name: self.source.name(),
                            count: bad_in_a_row,
                            last: problem,
                        });
                    }
                }
            }
        }
    }

    /// A still: the next good frame after the settle time that was exposed after the request.
    /// A frame the driver hands over at once was already waiting in its buffers (exposed before
    /// the request): up to `MAX_BUFFERED` of those are skipped.
    pub fn still(&mut self) -> Result<Frame, CameraError> {
        const MAX_BUFFERED: u32 = 4;
        let mut skipped = 0;
        loop {
            let asked = Instant::now();
            let frame = self.next_good_frame()?;
            if frame.at.duration_since(asked) < Duration::from_millis(3) && skipped < MAX_BUFFERED {
                skipped += 1;
                continue;
            }
            return Ok(frame);
        }
    }

    /// Stops streaming and gives the source back (to reopen it later).
    pub fn close(mut self) -> Box<dyn FrameSource> {
        self.source.close();
        self.source
    }
}

#[cfg(test)]
mod tests;
