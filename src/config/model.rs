//! The configuration model. Defaults live here, next to the keys; `config/countersign.toml`
//! documents every key. Values that must be in a range use [`Bounded`], so the error points at
//! the value itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::camera::*;
pub use super::crypto::*;
pub use super::folder::*;
pub use super::id_reader::*;
pub use super::imaging::*;
pub use super::mqtt::*;
pub use super::outbox::*;
pub use super::pcsc::*;
pub use super::scanner::*;
pub use super::service::*;
pub use super::session::*;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub station: StationConfig,
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// Signing and encryption profile, and the case system's key.
    pub crypto: CryptoConfig,
    /// Chain checkpoints.
    #[serde(default)]
    pub records: RecordsConfig,
    /// ID card SAM readers (GA 467 protocol), by name: `[id_readers.desk]`.
    #[serde(default)]
    pub id_readers: BTreeMap<DeviceName, IdReaderConfig>,
    /// Capacity limits of the outbox.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// Hot folders, by name: `[folders.scanner]`.
    #[serde(default)]
    pub folders: BTreeMap<DeviceName, FolderConfig>,
    /// PC/SC readers for travel documents: `[pcsc]`, readers in `[pcsc.readers.<name>]`.
    #[serde(default)]
    pub pcsc: Option<PcscConfig>,
    /// Document cameras (V4L2, or a replay), by name: `[cameras.desk]`.
    #[serde(default)]
    pub cameras: BTreeMap<DeviceName, CameraConfig>,
    /// SANE scanners, by name: `[scanners.feeder]`.
    #[serde(default)]
    pub scanners: BTreeMap<DeviceName, ScannerConfig>,
    /// Log level.
    #[serde(default)]
    pub log: LogConfig,
    /// The Prometheus endpoint (off by default).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Case sessions: auto-open, timeouts, the local control socket.
    #[serde(default)]
    pub session: SessionConfig,
    /// Which case-system keys may drive the counter over MQTT.
    #[serde(default)]
    pub commands: CommandsConfig,
    /// The case system's answers (receipts).
    #[serde(default)]
    pub acks: AcksConfig,
    /// How captured pages are processed: mode, dpi, page size, quality warnings.
    #[serde(default)]
    pub imaging: ImagingConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// The station's id: letters, digits, `-`, `_`, `.`; it appears in MQTT topics.
    pub id: StationId,
    /// The private signing key written by `countersign keygen` (mode 0600).
    pub signing_key: PathBuf,
    /// Where the outbox lives (`outbox.sqlite`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where this station is (an office, a mobile kit's site); recorded in every record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/countersign")
}

impl StationConfig {
    pub fn outbox_path(&self) -> PathBuf {
        self.state_dir.join("outbox.sqlite")
    }

    /// The local control socket (`[session] control_socket`, default in the state directory).
    pub fn control_socket(&self, session: &super::session::SessionConfig) -> PathBuf {
        session
            .control_socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("control.sock"))
    }
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

impl<const MIN: u64, const MAX: u64> Serialize for Bounded<MIN, MAX> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
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

impl Serialize for StationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
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
        self.validate_uplink()?;
        for (i, prefix) in self.commands.response_topic_prefixes.iter().enumerate() {
            if let Some(problem) = crate::uplink::response_topic::prefix_problem(prefix) {
                return Err((
                    format!("commands.response_topic_prefixes[{i}]"),
                    problem.into(),
                ));
            }
        }
        for (name, folder) in &self.folders {
            folder.validate(name.as_str())?;
        }
        if let Some(pcsc) = &self.pcsc {
            pcsc.validate()?;
        }
        for (name, camera) in &self.cameras {
            camera.validate(name.as_str())?;
        }
        for (name, scanner) in &self.scanners {
            scanner.validate(name.as_str())?;
        }
        self.validate_source_names()?;
        self.metrics.validate()?;
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

    /// Capture sources (`countersign capture --source NAME`) are named across `[cameras]`,
    /// `[scanners]` and `[folders]`: a name may be used once.
    fn validate_source_names(&self) -> Result<(), (String, String)> {
        let taken = |name: &DeviceName| self.cameras.contains_key(name);
        for name in self.scanners.keys() {
            if taken(name) {
                return Err((
                    format!("scanners.{name}"),
                    format!(
                        "{name:?} is already a camera's name (capture sources need distinct names)"
                    ),
                ));
            }
        }
        for name in self.folders.keys() {
            if taken(name) || self.scanners.contains_key(name) {
                return Err((
                    format!("folders.{name}"),
                    format!(
                        "{name:?} is already a camera's or scanner's name (capture sources need distinct names)"
                    ),
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
