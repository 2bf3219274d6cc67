//! What the daemon is doing, built from the event bus and the outbox's figures: the source of
//! STATUS lines, `/metrics`, `/ready` and the log of device changes. No personal data: events
//! carry masked numbers only, and nothing here keeps even those.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use tracing::warn;

use super::reload::Outcome;
use crate::config::Config;
use crate::events::Event;
use crate::outbox::{self, SharedOutbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Configured; its supervisor has not reported yet.
    Starting,
    Ready,
    /// Unplugged, refused, not answering: its supervisor keeps trying.
    Missing,
}

impl DeviceState {
    fn as_str(self) -> &'static str {
        match self {
            DeviceState::Starting => "starting",
            DeviceState::Ready => "ready",
            DeviceState::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uplink {
    Connecting,
    Up,
    Down,
}

#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub cards_read: u64,
    pub pages: u64,
    pub records_queued: u64,
    pub records_acked: u64,
    pub records_rejected: u64,
    pub captures_refused_full: u64,
    pub captures_refused_error: u64,
    pub quality_problems: u64,
    pub sessions_closed: u64,
    pub sessions_cancelled: u64,
    pub reloads_applied: u64,
    pub reloads_refused: u64,
    /// Answers on the acks topic refused, by `receipts::REFUSAL_CODES` index.
    pub answers_refused: [u64; crate::receipts::REFUSAL_CODES.len()],
}

#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxFigures {
    pub depth: u64,
    pub bytes: u64,
    pub oldest_age_secs: Option<u64>,
    pub dead_letters: u64,
}

/// A consistent copy for rendering.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// (kind, name) → state.
    pub devices: BTreeMap<(String, String), DeviceState>,
    pub uplink: Uplink,
    pub counters: Counters,
    pub outbox: Option<OutboxFigures>,
    pub pending_restart: Vec<String>,
    pub reload_refused: Option<String>,
    pub ready: bool,
    pub stalled: bool,
    pub profile: &'static str,
}

struct Inner {
    devices: BTreeMap<(String, String), DeviceState>,
    uplink: Uplink,
    counters: Counters,
    outbox: Option<OutboxFigures>,
    pending_restart: Vec<String>,
    reload_refused: Option<String>,
}

pub struct State {
    inner: Mutex<Inner>,
    outbox: Mutex<Option<SharedOutbox>>,
    ready: AtomicBool,
    stalled: AtomicBool,
    profile: &'static str,
}

impl State {
    pub fn new(config: &Config) -> State {
        let mut devices = BTreeMap::new();
        for name in config.id_readers.keys() {
            devices.insert(("reader".into(), name.to_string()), DeviceState::Starting);
        }
        for name in config.folders.keys() {
            devices.insert(("folder".into(), name.to_string()), DeviceState::Starting);
        }
        for name in config.cameras.keys() {
            devices.insert(("camera".into(), name.to_string()), DeviceState::Starting);
        }
        for name in config.scanners.keys() {
            devices.insert(("scanner".into(), name.to_string()), DeviceState::Starting);
        }
        if config.pcsc.as_ref().is_some_and(|p| !p.readers.is_empty()) {
            devices.insert(("pcsc".into(), "pcsc".into()), DeviceState::Starting);
        }
        State {
            inner: Mutex::new(Inner {
                devices,
                uplink: Uplink::Connecting,
                counters: Counters::default(),
                outbox: None,
                pending_restart: Vec::new(),
                reload_refused: None,
            }),
            outbox: Mutex::new(None),
            ready: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            profile: match config.crypto.profile {
                crate::config::Profile::Standard => "standard",
                crate::config::Profile::Gm => "gm",
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain counters: still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Relaxed);
    }

    pub fn set_outbox(&self, outbox: Option<SharedOutbox>) {
        *self.outbox.lock().unwrap_or_else(|p| p.into_inner()) = outbox;
    }

    /// Reads depth, bytes, oldest age and dead letters from the outbox (a blocking thread).
    pub async fn refresh_outbox(&self) {
        let Some(outbox) = self
            .outbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        match outbox::run(&outbox, |o| o.stats()).await {
            Ok(stats) => {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                self.lock().outbox = Some(OutboxFigures {
                    depth: stats.depth,
                    bytes: stats.bytes,
                    oldest_age_secs: stats
                        .oldest_created_ms
                        .map(|t| (now_ms.saturating_sub(t).max(0) / 1000) as u64),
                    dead_letters: stats.dead_letters,
                });
            }
            Err(e) => warn!(error = %e, "cannot read the outbox figures"),
        }
    }

    pub fn reloaded(&self, outcome: &Outcome) {
        let mut inner = self.lock();
        inner.counters.reloads_applied += 1;
        inner.pending_restart = outcome.restart_keys();
        inner.reload_refused = None;
    }

    pub fn reload_refused(&self, error: String) {
        let mut inner = self.lock();
        inner.counters.reloads_refused += 1;
        inner.reload_refused = Some(error);
    }

    pub fn apply(&self, event: &Event) {
        let mut inner = self.lock();
        let c = &mut inner.counters;
        match event {
            Event::CardRead { .. } => c.cards_read += 1,
            Event::PageCaptured { .. } => c.pages += 1,
            Event::RecordCommitted { .. } => c.records_queued += 1,
            Event::RecordDelivered { .. } => c.records_acked += 1,
            Event::RecordRejected { .. } => c.records_rejected += 1,
            Event::AnswerRefused { reason } => {
                if let Some(i) = crate::receipts::REFUSAL_CODES
                    .iter()
                    .position(|code| code == reason)
                {
                    c.answers_refused[i] += 1;
                }
            }
            Event::OutboxFull { .. } => c.captures_refused_full += 1,
            Event::CaptureRefused { .. } => c.captures_refused_error += 1,
            Event::QualityProblem { .. } => c.quality_problems += 1,
            Event::SessionClosed { .. } => c.sessions_closed += 1,
            Event::SessionCancelled { .. } => c.sessions_cancelled += 1,
            Event::ReaderReady { reader } => inner.device(reader, "reader", DeviceState::Ready),
            Event::ReaderUnavailable { reader, .. } => {
                inner.device(reader, "reader", DeviceState::Missing)
            }
            Event::FolderReady { folder } => inner.device(folder, "folder", DeviceState::Ready),
            Event::FolderUnavailable { folder, .. } => {
                inner.device(folder, "folder", DeviceState::Missing)
            }
            Event::CaptureDeviceReady { kind, name } => {
                inner.device(name, kind, DeviceState::Ready)
            }
            Event::CaptureDeviceUnavailable { kind, name, .. } => {
                inner.device(name, kind, DeviceState::Missing)
            }
            Event::UplinkConnected => inner.uplink = Uplink::Up,
            Event::UplinkDisconnected { .. } => inner.uplink = Uplink::Down,
            _ => {}
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            devices: inner.devices.clone(),
            uplink: inner.uplink,
            counters: inner.counters.clone(),
            outbox: inner.outbox,
            pending_restart: inner.pending_restart.clone(),
            reload_refused: inner.reload_refused.clone(),
            ready: self.ready.load(Ordering::Relaxed),
            stalled: self.stalled.load(Ordering::Relaxed),
            profile: self.profile,
        }
    }

    /// One line for systemd's STATUS=, e.g.
    /// `reader desk ready, folder scanner missing, uplink up, outbox 12 (3.1 MB, oldest 2 min)`.
    pub fn status_line(&self) -> String {
        self.snapshot().status_line()
    }
}

impl Inner {
    /// Updates a device by the name its events use; `kind` is a guess for devices that are not
    /// in the configuration (the PC/SC supervisor reports as reader "pcsc").
    fn device(&mut self, name: &str, kind: &str, state: DeviceState) {
        let key = self
            .devices
            .keys()
            .find(|(_, n)| n == name)
            .cloned()
            .unwrap_or_else(|| (kind.to_string(), name.to_string()));
        self.devices.insert(key, state);
    }
}

impl Snapshot {
    pub fn status_line(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.stalled {
            parts.push("MAIN LOOP STALLED".into());
        }
        for ((kind, name), state) in &self.devices {
            if kind == name {
                parts.push(format!("{kind} {}", state.as_str()));
            } else {
                parts.push(format!("{kind} {name} {}", state.as_str()));
            }
        }
        parts.push(
            match self.uplink {
                Uplink::Connecting => "uplink connecting",
                Uplink::Up => "uplink up",
                Uplink::Down => "uplink down",
            }
            .into(),
        );
        if let Some(o) = self.outbox {
            let mut s = format!("outbox {}", o.depth);
            if o.depth > 0 {
                s.push_str(&format!(" ({}", human_bytes(o.bytes)));
                if let Some(age) = o.oldest_age_secs {
                    s.push_str(&format!(", oldest {}", human_age(age)));
                }
                s.push(')');
            }
            if o.dead_letters > 0 {
                s.push_str(&format!(", {} dead letters", o.dead_letters));
            }
            parts.push(s);
        }
        let mut line = parts.join(", ");
        if let Some(e) = &self.reload_refused {
            line.push_str(&format!("; reload refused: {e}"));
        }
        if !self.pending_restart.is_empty() {
            line.push_str(&format!(
                "; restart needed for: {}",
                self.pending_restart.join(" ")
            ));
        }
        line
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn human_age(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}

/// Feeds the state from the event bus until the bus closes. A lagging receiver only loses
/// counts (it says so once per gap), never blocks the station.
pub async fn follow(mut rx: broadcast::Receiver<Event>, state: Arc<State>) {
    loop {
        match rx.recv().await {
            Ok(event) => state.apply(&event),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "status: missed events (counters may be low)")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn state() -> State {
        let config = crate::config::parse(
            "[station]\nid = \"w1\"\nsigning_key = \"/k\"\n[crypto]\nrecipient_key = \"/r\"\n\
             [id_readers.desk]\nport = \"/dev/x\"\n[folders.scanner]\npath = \"/s\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        State::new(&config)
    }

    #[test]
    fn status_line_says_what_is_happening() {
        let s = state();
        assert_eq!(
            s.status_line(),
            "folder scanner starting, reader desk starting, uplink connecting"
        );
        s.apply(&Event::ReaderReady {
            reader: "desk".into(),
        });
        s.apply(&Event::FolderUnavailable {
            folder: "scanner".into(),
            reason: "no such directory".into(),
        });
        s.apply(&Event::UplinkConnected);
        s.lock().outbox = Some(OutboxFigures {
            depth: 12,
            bytes: 3_100_000,
            oldest_age_secs: Some(150),
            dead_letters: 1,
        });
        assert_eq!(
            s.status_line(),
            "folder scanner missing, reader desk ready, uplink up, outbox 12 (3.1 MB, oldest 2 min), 1 dead letters"
        );
        s.reload_refused("t.toml:3:1: bad".into());
        assert!(
            s.status_line()
                .ends_with("; reload refused: t.toml:3:1: bad")
        );
    }

    #[test]
    fn cameras_and_scanners_are_in_the_status_line() {
        let config = crate::config::parse(
            "[station]\nid = \"w1\"\nsigning_key = \"/k\"\n[crypto]\nrecipient_key = \"/r\"\n\
             [cameras.doc]\ndevice = \"/dev/video0\"\n[scanners.adf]\ndevice = \"test:0\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let s = State::new(&config);
        assert_eq!(
            s.status_line(),
            "camera doc starting, scanner adf starting, uplink connecting"
        );
        s.apply(&Event::CaptureDeviceUnavailable {
            kind: "camera",
            name: "doc".into(),
            reason: "unplugged".into(),
        });
        s.apply(&Event::CaptureDeviceReady {
            kind: "scanner",
            name: "adf".into(),
        });
        assert_eq!(
            s.status_line(),
            "camera doc missing, scanner adf ready, uplink connecting"
        );
    }

    #[test]
    fn counters_follow_events() {
        let s = state();
        s.apply(&Event::CardRead {
            reader: "desk".into(),
            card_type: "resident".into(),
            masked_number: "1101**********002X".into(),
            failed_checks: Vec::new(),
        });
        s.apply(&Event::RecordDelivered {
            record_id: "r".into(),
        });
        s.apply(&Event::OutboxFull { detail: "x".into() });
        let c = s.snapshot().counters;
        assert_eq!(
            (c.cards_read, c.records_acked, c.captures_refused_full),
            (1, 1, 1)
        );
    }
}
