//! UVC document cameras through V4L2 (`linuxvideo`, pure Rust). Opened by a stable name
//! (`/dev/v4l/by-id/usb-…-video-index0`: the document and face cameras of one unit are separate
//! USB functions); the largest MJPEG size, read back after `S_FMT`; the highest frame rate at
//! that size; 2 mmap buffers; power-line frequency set when the control exists. EBUSY names the
//! processes that hold the device and a vendor camera service listening on loopback when it can
//! find them. A frame wait has a timeout (`poll(2)` before `DQBUF`).
//!
//! Tested here without a camera: the negotiation (`negotiate.rs`), the frame checks
//! (`frame.rs`) and the busy-cause lookup; the ioctl path needs a real UVC device (there is no
//! user-space virtual V4L2 device: v4l2loopback and vivid are kernel modules, vivid has no MJPEG).

use std::os::fd::AsRawFd as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use linuxvideo::controls::Cid;
use linuxvideo::format::{FrameIntervals, FrameSizes, PixFormat, PixelFormat};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, Device, Fract};

use crate::negotiate::{self, Interval, Intervals, Sizes};
use crate::{CameraError, ControlOutcome, Controls, FormatRequest, FrameSource, Negotiated};

/// Loopback ports of vendor camera services known to hold the document camera
/// (Eloam's local HTTP service).
const VENDOR_SERVICES: &[(u16, &str)] = &[(38088, "Eloam camera service")];

pub struct V4l2Source {
    path: PathBuf,
    /// Between `open` and the stream start (controls are set on the device first).
    device: Option<Device>,
    stream: Option<ReadStream>,
    sequence: u64,
    pending: Option<(PixFormat, Option<Fract>)>,
}

impl V4l2Source {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            device: None,
            stream: None,
            sequence: 0,
            pending: None,
        }
    }

    fn io(&self, op: &'static str, error: std::io::Error) -> CameraError {
        match error.raw_os_error() {
            Some(libc::ENOENT) => CameraError::NotFound {
                path: self.path.clone(),
            },
            Some(libc::ENODEV) | Some(libc::ENXIO) => CameraError::Unplugged {
                path: self.path.clone(),
            },
            Some(libc::EACCES) | Some(libc::EPERM) => CameraError::PermissionDenied {
                path: self.path.clone(),
            },
            Some(libc::EBUSY) => CameraError::Busy {
                path: self.path.clone(),
                cause: busy_cause(&self.path),
            },
            _ => CameraError::Io {
                path: self.path.clone(),
                op,
                error,
            },
        }
    }

    /// Runs `f`, turning a panic inside `linuxvideo` (it asserts on impossible kernel answers)
    /// into an error, so a misbehaving driver is reopened instead of ending the thread.
    fn guarded<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Self) -> Result<T, CameraError>,
    ) -> Result<T, CameraError> {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(result) => result,
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                self.close();
                Err(CameraError::Driver {
                    path: self.path.clone(),
                    detail: format!("{what}: {detail}"),
                })
            }
        }
    }

    fn open_device(&mut self, request: &FormatRequest) -> Result<Negotiated, CameraError> {
        let device = Device::open(&self.path).map_err(|e| self.io("open", e))?;
        let caps = device
            .capabilities()
            .map_err(|e| self.io("VIDIOC_QUERYCAP", e))?;
        let description = format!("{} ({})", caps.card(), caps.bus_info());
        let mut offered = Vec::new();
        for format in device.formats(BufType::VIDEO_CAPTURE) {
            let format = format.map_err(|e| self.io("VIDIOC_ENUM_FMT", e))?;
            offered.push(format.pixel_format());
        }
        let pixel_format = [PixelFormat::MJPG, PixelFormat::JPEG]
            .into_iter()
            .find(|f| offered.contains(f))
            .ok_or_else(|| CameraError::NoMjpeg {
                path: self.path.clone(),
                offered: offered
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let sizes = device
            .frame_sizes(pixel_format)
            .map_err(|e| self.io("VIDIOC_ENUM_FRAMESIZES", e))?;
        let (width, height) = negotiate::pick_size(&sizes_of(&sizes), request.max_size)
            .ok_or_else(|| CameraError::Io {
                path: self.path.clone(),
                op: "VIDIOC_ENUM_FRAMESIZES",
                error: std::io::Error::other("no frame size fits the request"),
            })?;
        let interval = device
            .frame_intervals(pixel_format, width, height)
            .ok()
            .and_then(|i| negotiate::pick_interval(&intervals_of(&i)));
        self.pending = Some((
            PixFormat::new(width, height, pixel_format),
            interval.map(|i| Fract::new(i.numerator, i.denominator.max(1))),
        ));
        self.device = Some(device);
        Ok(Negotiated {
            width,
            height,
            fps: interval.map_or(0.0, Interval::fps),
            pixel_format: pixel_format.to_string(),
            description,
        })
    }

    fn start_stream(&mut self) -> Result<(u32, u32, f64), CameraError> {
        let device = self.device.take().ok_or(CameraError::NotOpen)?;
        let (format, interval) = self.pending.take().ok_or(CameraError::NotOpen)?;
        let capture = device
            .video_capture(format)
            .map_err(|e| self.io("VIDIOC_S_FMT", e))?;
        // The driver may have chosen otherwise: what it read back is what we get.
        let actual = capture.format();
        let (width, height) = (actual.width(), actual.height());
        let fps = match interval {
            Some(i) => capture
                .set_frame_interval(i)
                .map(|f| {
                    Interval {
                        numerator: f.numerator(),
                        denominator: f.denominator(),
                    }
                    .fps()
                })
                .unwrap_or(0.0),
            None => 0.0,
        };
        let stream = capture
            .into_stream()
            .map_err(|e| self.io("VIDIOC_STREAMON", e))?;
        self.stream = Some(stream);
        self.sequence = 0;
        Ok((width, height, fps))
    }

    fn dequeue(&mut self, timeout: Duration) -> Result<(Vec<u8>, u64), CameraError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(CameraError::NotOpen);
        };
        let mut pfd = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        #[allow(unsafe_code)]
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            return Err(self.io("poll", e));
        }
        if ready == 0 {
            return Err(CameraError::Timeout {
                source_name: self.path.display().to_string(),
                after: timeout,
            });
        }
        if pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 && pfd.revents & libc::POLLIN == 0 {
            return Err(CameraError::Unplugged {
                path: self.path.clone(),
            });
        }
        let result = stream.dequeue(|buf| {
            // A buffer flagged as an error holds a corrupt frame: hand over nothing, and the
            // frame check rejects it (the stream goes on).
            Ok(if buf.is_error() {
                Vec::new()
            } else {
                buf.to_vec()
            })
        });
        match result {
            Ok(bytes) => {
                self.sequence += 1;
                Ok((bytes, self.sequence))
            }
            Err(e) => Err(self.io("VIDIOC_DQBUF", e)),
        }
    }
}

impl FrameSource for V4l2Source {
    fn open(&mut self, request: &FormatRequest) -> Result<Negotiated, CameraError> {
        self.close();
        self.guarded("open", |s| s.open_device(request))
    }

    fn set_controls(&mut self, controls: &Controls) -> Result<Vec<ControlOutcome>, CameraError> {
        let mut out = Vec::new();
        if let Some(hz) = controls.power_line_hz {
            let value = match hz {
                0 => 0,
                50 => 1,
                60 => 2,
                _ => 3, // auto
            };
            let path = self.path.clone();
            let device = self.device.as_mut().ok_or(CameraError::NotOpen)?;
            match device.write_control_raw(Cid::POWER_LINE_FREQUENCY, value) {
                Ok(()) => out.push(ControlOutcome::Set(format!("power_line_frequency={hz} Hz"))),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    out.push(ControlOutcome::Absent("power_line_frequency".into()))
                }
                Err(error) => {
                    return Err(CameraError::Io {
                        path,
                        op: "VIDIOC_S_CTRL power_line_frequency",
                        error,
                    });
                }
            }
        }
        // The controls go to the device before streaming starts.
        self.guarded("stream start", |s| s.start_stream())?;
        Ok(out)
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<(Vec<u8>, u64), CameraError> {
        if self.stream.is_none() && self.pending.is_some() {
            // Opened without set_controls: start streaming now.
            self.guarded("stream start", |s| s.start_stream())?;
        }
        self.guarded("dequeue", |s| s.dequeue(timeout))
    }

    fn close(&mut self) {
        // Dropping the stream turns streaming off and unmaps the buffers.
        self.stream = None;
        self.device = None;
        self.pending = None;
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

fn sizes_of(sizes: &FrameSizes) -> Sizes {
    match sizes {
        FrameSizes::Discrete(list) => {
            Sizes::Discrete(list.iter().map(|s| (s.width(), s.height())).collect())
        }
        FrameSizes::Stepwise(s) | FrameSizes::Continuous(s) => Sizes::Stepwise {
            min: (s.min_width(), s.min_height()),
            max: (s.max_width(), s.max_height()),
            step: (s.step_width(), s.step_height()),
        },
    }
}

fn intervals_of(intervals: &FrameIntervals) -> Intervals {
    let iv = |f: &Fract| Interval {
        numerator: f.numerator(),
        denominator: f.denominator(),
    };
    match intervals {
        FrameIntervals::Discrete(list) => {
            Intervals::Discrete(list.iter().map(|i| iv(i.fract())).collect())
        }
        FrameIntervals::Stepwise(s) | FrameIntervals::Continuous(s) => {
            Intervals::Stepwise { min: iv(s.min()) }
        }
    }
}

/// Who holds `path`: processes with it open (those visible to this user), and a vendor camera
/// service answering on loopback.
pub fn busy_cause(path: &Path) -> String {
    let holders = holders(path);
    let mut parts = Vec::new();
    if !holders.is_empty() {
        parts.push(format!("held by {}", holders.join(", ")));
    }
    for (port, service) in VENDOR_SERVICES {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            parts.push(format!(
                "the {service} is running (127.0.0.1:{port}); stop it or set the camera aside for it"
            ));
        }
    }
    if parts.is_empty() {
        "another program is streaming from it (one streamer at a time; a vendor camera service \
         or a browser page with the camera open are the usual causes)"
            .into()
    } else {
        parts.join("; ")
    }
}

/// `name[pid]` of processes with `path` open, found through /proc/*/fd.
pub fn holders(path: &Path) -> Vec<String> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            found.push(format!("{name}[{pid}]"));
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_of_a_device_file_is_named() {
        // Any file works for the /proc lookup: a child process keeps one open.
        let dir = std::env::temp_dir();
        let file = dir.join(format!("fake-video-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3<'{}'; exec sleep 30", file.display()))
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut cause = String::new();
        for _ in 0..100 {
            cause = busy_cause(&file);
            if cause.contains(&format!("[{pid}]")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&file);
        // `sh[pid]` or, after its exec, `sleep[pid]`.
        assert!(cause.contains(&format!("[{pid}]")), "{cause}");
        assert!(cause.starts_with("held by "), "{cause}");
    }

    #[test]
    fn opening_a_missing_camera_names_it() {
        let mut source = V4l2Source::new(Path::new("/dev/v4l/by-id/usb-none-video-index0"));
        let err = source.open(&FormatRequest { max_size: None }).unwrap_err();
        assert!(matches!(err, CameraError::NotFound { .. }), "{err:?}");
        assert!(err.is_device_lost());
        // A file that is not a V4L2 device is refused, not a panic.
        let mut source = V4l2Source::new(Path::new("/dev/null"));
        let err = source.open(&FormatRequest { max_size: None }).unwrap_err();
        assert!(!matches!(err, CameraError::Driver { .. }), "{err:?}");
    }
}
