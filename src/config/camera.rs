//! `[cameras.<name>]`: document cameras (UVC through V4L2), or a replay of recorded frames that
//! stands in for one (tests, the demo, a site without the camera yet).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The V4L2 device by a stable name: `/dev/v4l/by-id/usb-<vendor>_<model>-video-index0`
    /// (the document and face cameras of one unit are separate USB functions), or a udev
    /// symlink. Exactly one of `device` and `replay`.
    #[serde(default)]
    pub device: Option<PathBuf>,
    /// Frames to play instead of a camera: a directory of JPEG/PNG files (name order), a
    /// recorded MJPEG stream (`*.mjpeg`, from `v4l2-ctl --stream-to`), or one image.
    #[serde(default)]
    pub replay: Option<PathBuf>,
    /// Replay frame rate.
    #[serde(default = "default_replay_fps")]
    pub replay_fps: Bounded<1, 60>,
    /// Each replayed file is shown this many frames in a row (a page lying still).
    #[serde(default = "default_replay_hold")]
    pub replay_hold_frames: Bounded<1, 100000>,
    /// Play the replay again from the start when it ends.
    #[serde(default)]
    pub replay_loop: bool,
    /// Largest frame size to ask for, `[width, height]`; default: the largest MJPEG size.
    #[serde(default)]
    pub max_size: Option<[u32; 2]>,
    /// Frames during this long after opening are discarded (exposure and white balance settle).
    #[serde(default = "default_settle")]
    pub settle_ms: Bounded<0, 5000>,
    /// Power-line frequency for anti-flicker: 50 (mainland China), 60, or 0 to leave it.
    #[serde(default = "default_power_line")]
    pub power_line_hz: Bounded<0, 60>,
    /// Longest wait for one frame before the camera counts as lost and is reopened.
    #[serde(default = "default_frame_timeout")]
    pub frame_timeout_ms: Bounded<100, 60000>,
    /// Capture each new page by itself once it lies still (see `[cameras.<name>]` docs).
    #[serde(default)]
    pub auto_capture: bool,
    /// Auto-capture looks at one frame per this interval.
    #[serde(default = "default_analysis")]
    pub analysis_interval_ms: Bounded<20, 5000>,
    /// Mean grey-level change between looks (0-255) above which the view is moving.
    #[serde(default = "default_motion")]
    pub motion_threshold: f32,
    /// Looks without motion before a view counts as still.
    #[serde(default = "default_still")]
    pub still_frames: Bounded<1, 100>,
    /// Mean change from the last still view (0-255) above which a still view is a new page.
    #[serde(default = "default_change")]
    pub change_threshold: f32,
}

fn default_replay_fps() -> Bounded<1, 60> {
    Bounded(10)
}
fn default_replay_hold() -> Bounded<1, 100000> {
    Bounded(20)
}
fn default_settle() -> Bounded<0, 5000> {
    Bounded(1000)
}
fn default_power_line() -> Bounded<0, 60> {
    Bounded(50)
}
fn default_frame_timeout() -> Bounded<100, 60000> {
    Bounded(5000)
}
fn default_analysis() -> Bounded<20, 5000> {
    Bounded(200)
}
fn default_motion() -> f32 {
    3.0
}
fn default_still() -> Bounded<1, 100> {
    Bounded(4)
}
fn default_change() -> f32 {
    8.0
}

impl CameraConfig {
    /// Returns the dotted key and the message of the first problem.
    pub(super) fn validate(&self, name: &str) -> Result<(), (String, String)> {
        let key = |k: &str| format!("cameras.{name}.{k}");
        match (&self.device, &self.replay) {
            (None, None) => {
                return Err((key("device"), "set `device` (or `replay`)".into()));
            }
            (Some(_), Some(_)) => {
                return Err((key("replay"), "set `device` or `replay`, not both".into()));
            }
            (Some(p), None) | (None, Some(p)) if p.as_os_str().is_empty() => {
                return Err((key("device"), "must not be empty".into()));
            }
            _ => {}
        }
        if ![0, 50, 60].contains(&self.power_line_hz.get()) {
            return Err((key("power_line_hz"), "must be 0, 50 or 60".into()));
        }
        for (k, v) in [
            ("motion_threshold", self.motion_threshold),
            ("change_threshold", self.change_threshold),
        ] {
            if !(0.1..=255.0).contains(&v) {
                return Err((key(k), format!("must be between 0.1 and 255, found {v}")));
            }
        }
        if let Some([w, h]) = self.max_size
            && (w < 64 || h < 64)
        {
            return Err((key("max_size"), "must be at least [64, 64]".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CameraConfig, String> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| e.message().to_string())?;
        let c: CameraConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: {}", e.path(), e.inner().message()))?;
        c.validate("desk").map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(c)
    }

    #[test]
    fn a_device_or_a_replay_and_sane_thresholds() {
        let c = parse("device = \"/dev/v4l/by-id/usb-x-video-index0\"\n").unwrap();
        assert_eq!(c.power_line_hz.get(), 50);
        assert_eq!(c.settle_ms.get(), 1000);
        assert!(!c.auto_capture);
        let c = parse("replay = \"/srv/frames\"\nauto_capture = true\nstill_frames = 6\n").unwrap();
        assert_eq!(c.still_frames.get(), 6);
        assert!(parse("").unwrap_err().contains("cameras.desk.device"));
        assert!(
            parse("device = \"/dev/video0\"\nreplay = \"/x\"\n")
                .unwrap_err()
                .contains("not both")
        );
        assert!(
            parse("device = \"/dev/video0\"\npower_line_hz = 55\n")
                .unwrap_err()
                .contains("power_line_hz")
        );
        assert!(
            parse("device = \"/dev/video0\"\nmotion_threshold = 0.0\n")
                .unwrap_err()
                .contains("motion_threshold")
        );
        assert!(parse("device = \"/dev/video0\"\nfps = 5\n").is_err());
    }
}
