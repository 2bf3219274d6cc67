//! `[id_readers.<name>]`: GA 467 ID card SAM readers.

use std::path::PathBuf;

use serde::Deserialize;

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdReaderConfig {
    /// The serial device; prefer a stable name (`/dev/serial/by-id/...` or a udev symlink).
    pub port: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: Baud,
    /// How often to look for a card.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: Bounded<50, 10000>,
    /// A card left on the reader is read once; it counts as removed after this many empty polls.
    #[serde(default = "default_rearm")]
    pub rearm_after_empty_polls: Bounded<1, 100>,
}

fn default_baud() -> Baud {
    Baud(115200)
}
fn default_poll_interval() -> Bounded<50, 10000> {
    Bounded(500)
}
fn default_rearm() -> Bounded<1, 100> {
    Bounded(2)
}

/// A serial speed the GA 467 readers are known to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Baud(pub u32);

pub const READER_BAUDS: [u32; 5] = [115200, 57600, 38400, 19200, 9600];

impl TryFrom<i64> for Baud {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        READER_BAUDS
            .iter()
            .find(|b| i64::from(**b) == value)
            .map(|b| Baud(*b))
            .ok_or_else(|| {
                format!("must be one of 115200, 57600, 38400, 19200, 9600; found {value}")
            })
    }
}
