//! Presence: the retained `countersign/v1/<station>/status` message. `online` after each CONNACK
//! and whenever something changes (devices, outbox depth; at most once a second), `offline` as the
//! Last Will (the broker publishes it when the connection dies) and explicitly before a clean
//! shutdown (a clean DISCONNECT discards the Will).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::events::Event;
use crate::outbox::Stats;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutboxStatus {
    pub depth: u64,
    pub bytes: u64,
    pub dead_letters: u64,
    /// Age of the oldest undelivered record, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_age_secs: Option<u64>,
}

impl From<&Stats> for OutboxStatus {
    fn from(s: &Stats) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        OutboxStatus {
            depth: s.depth,
            bytes: s.bytes,
            dead_letters: s.dead_letters,
            oldest_age_secs: s
                .oldest_created_ms
                .map(|t| (now.saturating_sub(t).max(0) / 1000) as u64),
        }
    }
}

/// What the station says about itself.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    /// Device name → `ready` or `unavailable: <reason>`.
    pub devices: BTreeMap<String, String>,
    pub outbox: Option<OutboxStatus>,
}

#[derive(Serialize)]
struct Message<'a> {
    state: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    devices: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<&'a OutboxStatus>,
}

impl Presence {
    /// Updates device states from a station event; true when something changed.
    pub fn apply(&mut self, event: &Event) -> bool {
        let (name, state) = match event {
            Event::ReaderReady { reader } => (reader, "ready".to_string()),
            Event::ReaderUnavailable { reader, reason } => {
                (reader, format!("unavailable: {reason}"))
            }
            Event::FolderReady { folder } => (folder, "ready".to_string()),
            Event::CaptureDeviceReady { name, .. } => (name, "ready".to_string()),
            Event::CaptureDeviceUnavailable { name, reason, .. } => {
                (name, format!("unavailable: {reason}"))
            }
            Event::FolderUnavailable { folder, reason } => {
                (folder, format!("unavailable: {reason}"))
            }
            _ => return false,
        };
        self.devices.insert(name.clone(), state.clone()) != Some(state)
    }

    pub fn online(&self) -> Vec<u8> {
        self.message("online", None)
    }

    pub fn offline(&self, reason: &str) -> Vec<u8> {
        self.message("offline", Some(reason))
    }

    fn message(&self, state: &str, reason: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&Message {
            state,
            version: VERSION,
            reason,
            devices: &self.devices,
            outbox: self.outbox.as_ref(),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_change_only_on_change() {
        let mut p = Presence::default();
        assert!(p.apply(&Event::ReaderReady {
            reader: "desk".into()
        }));
        assert!(!p.apply(&Event::ReaderReady {
            reader: "desk".into()
        }));
        assert!(p.apply(&Event::ReaderUnavailable {
            reader: "desk".into(),
            reason: "unplugged".into()
        }));
        let v: serde_json::Value = serde_json::from_slice(&p.online()).unwrap();
        assert_eq!(v["state"], "online");
        assert_eq!(v["devices"]["desk"], "unavailable: unplugged");
        let v: serde_json::Value = serde_json::from_slice(&p.offline("shutdown")).unwrap();
        assert_eq!(v["state"], "offline");
        assert_eq!(v["reason"], "shutdown");
    }
}
