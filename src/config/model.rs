//! The configuration model. Defaults live here, next to the keys; `config/countersign.toml`
//! documents every key. Values that must be in a range use [`Bounded`], so the error points at
//! the value itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub station: StationConfig,
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// ID card SAM readers (GA 467 protocol), by name: `[id_readers.desk]`.
    #[serde(default)]
    pub id_readers: BTreeMap<DeviceName, IdReaderConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// The station's id: letters, digits, `-`, `_`, `.`; it appears in MQTT topics.
    pub id: StationId,
    /// The private signing key written by `countersign keygen` (mode 0600).
    pub signing_key: PathBuf,
    /// Where the outbox lives (`outbox.sqlite`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/countersign")
}

impl StationConfig {
    pub fn outbox_path(&self) -> PathBuf {
        self.state_dir.join("outbox.sqlite")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Defaults to `countersign-<station id>`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (kept out of the config, which is world-readable).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: Bounded<5, 3600>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: Bounded<1, 300>,
    /// Largest MQTT packet we send or accept; must hold a whole record.
    #[serde(default = "default_max_packet")]
    pub max_packet_bytes: Bounded<16384, 268435455>,
    /// Records published and not yet acknowledged by the case system, at most.
    #[serde(default = "default_inflight")]
    pub inflight_records: Bounded<1, 1000>,
    /// A record not acknowledged within this time is published again.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_secs: Bounded<1, 86400>,
    /// Upper bound of the jittered reconnect backoff.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_secs: Bounded<1, 3600>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: default_host(),
            port: default_port(),
            client_id: None,
            username: None,
            password_file: None,
            keep_alive_secs: default_keep_alive(),
            connect_timeout_secs: default_connect_timeout(),
            max_packet_bytes: default_max_packet(),
            inflight_records: default_inflight(),
            ack_timeout_secs: default_ack_timeout(),
            reconnect_max_secs: default_reconnect_max(),
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_keep_alive() -> Bounded<5, 3600> {
    Bounded(30)
}
fn default_connect_timeout() -> Bounded<1, 300> {
    Bounded(30)
}
fn default_max_packet() -> Bounded<16384, 268435455> {
    Bounded(1024 * 1024)
}
fn default_inflight() -> Bounded<1, 1000> {
    Bounded(16)
}
fn default_ack_timeout() -> Bounded<1, 86400> {
    Bounded(60)
}
fn default_reconnect_max() -> Bounded<1, 3600> {
    Bounded(30)
}

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

/// An integer that must lie in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> TryFrom<i64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match u64::try_from(value) {
            Ok(v) if (MIN..=MAX).contains(&v) => Ok(Bounded(v)),
            _ => Err(format!("must be between {MIN} and {MAX}, found {value}")),
        }
    }
}

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn get(self) -> u64 {
        self.0
    }
    pub fn secs(self) -> Duration {
        Duration::from_secs(self.0)
    }
    pub fn millis(self) -> Duration {
        Duration::from_millis(self.0)
    }
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

/// An id safe for MQTT topic levels and file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct StationId(String);

/// A device name in the configuration (`[id_readers.<name>]`), same rules as a station id.
pub type DeviceName = StationId;

impl TryFrom<String> for StationId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if value.is_empty() || value.len() > 64 || !value.chars().all(ok_char) {
            return Err(format!(
                "{value:?} is not a valid id: use 1 to 64 letters, digits, '-', '_' or '.' (it is used in MQTT topics)"
            ));
        }
        Ok(StationId(value))
    }
}

impl StationId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Checks that need more than one value; returns the dotted key and the message.
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if self.mqtt.host.trim().is_empty() {
            return Err(("mqtt.host".into(), "must not be empty".into()));
        }
        if self.mqtt.password_file.is_some() && self.mqtt.username.is_none() {
            return Err((
                "mqtt.password_file".into(),
                "is set but mqtt.username is not".into(),
            ));
        }
        for (name, reader) in &self.id_readers {
            if reader.port.as_os_str().is_empty() {
                return Err((
                    format!("id_readers.{name}.port"),
                    "must not be empty".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn client_id(&self) -> String {
        self.mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| format!("countersign-{}", self.station.id))
    }
}
