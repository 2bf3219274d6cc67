//! Adapters from the driver crates (under `drivers/`) to station events. Each device runs in its
//! own supervisor (a thread for blocking serial I/O) that opens the device, recovers it with
//! bounded backoff when it goes away, and reports what it read as a [`DeviceEvent`].

#[cfg(test)]
mod bursts;
pub mod camera;
pub mod folder;
pub mod id_reader;
pub mod page;
pub mod pcsc;
pub mod scanner;

use std::time::{Instant, SystemTime};

use crate::record::{DeviceInfo, Evidence, Identity};

#[derive(Debug)]
pub enum DeviceEvent {
    /// Something was captured: an identity document read, a page scanned.
    Captured(Box<Capture>),
    /// A capture whose source must learn the outcome: a hot-folder file is moved away only once
    /// its record is committed, and a file committed just before a crash is recognised by its
    /// intake key instead of being captured twice.
    Intake(Box<Capture>, Intake),
}

/// Where a capture came from, and who waits for the outcome.
#[derive(Debug)]
pub struct Intake {
    /// Identifies the source item (e.g. `folder:<name>:<sha256 of file name, size, content
    /// hash>`: no file name, which may be a citizen's); it stays in the outbox.
    pub key: String,
    pub outcome: tokio::sync::oneshot::Sender<IntakeOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Committed now, as this record.
    Committed(String),
    /// Committed before (the source item was left behind by a crash), as this record.
    AlreadyCommitted(String),
    /// Not committed (outbox full or failing); the source keeps the item and tries again.
    Refused(String),
}

/// One capture from one device, mapped into the record's vocabulary.
#[derive(Debug)]
pub struct Capture {
    pub captured_at: SystemTime,
    /// For latency measurements (capture to ack).
    pub instant: Instant,
    pub device: DeviceInfo,
    /// The identity document read, if this capture is one.
    pub identity: Option<Identity>,
    /// The face photo (raw WLT), fingerprints, scanned pages. `identity` indexes are left None
    /// when the blob belongs to this capture's identity (the station places it in the record).
    pub evidence: Vec<Evidence>,
    /// What logs and events may say about it, no personal data (`resident 1101**********002X`).
    pub summary: String,
    /// Quality warnings the clerk may act on (`blurred`, `too_dark`, ...; pages only).
    pub warnings: Vec<String>,
}

/// Asks a capture source (camera, scanner) for a capture now: the case system's `capture`
/// command. The source delivers the pages as `Captured` events first, then answers with how many
/// it delivered, or why it could not capture (no paper, jam, camera unavailable...).
#[derive(Debug)]
pub struct CaptureRequest {
    /// The case system's label for the page(s) (`household_register`...).
    pub label: String,
    /// `colour`, `grey` or `bw`; default: `[imaging] mode`.
    pub mode: Option<String>,
    pub reply: tokio::sync::oneshot::Sender<Result<u32, String>>,
}

/// Where capture requests for one source go.
pub type CaptureHandle = tokio::sync::mpsc::Sender<CaptureRequest>;

/// What the counter was last told about a camera or scanner, so that each change of state is
/// reported once (device connected / disconnected: STATUS, metrics, presence, live events).
pub(crate) struct Presence {
    kind: &'static str,
    name: String,
    up: Option<bool>,
}

impl Presence {
    pub(crate) fn new(kind: &'static str, name: &str) -> Presence {
        Presence {
            kind,
            name: name.to_string(),
            up: None,
        }
    }

    /// Reports `Ok(())` as ready and `Err(reason)` as unavailable, when that is a change.
    pub(crate) fn report(&mut self, events: &crate::events::EventBus, state: Result<(), String>) {
        if self.up == Some(state.is_ok()) {
            return;
        }
        self.up = Some(state.is_ok());
        let (kind, name) = (self.kind, self.name.clone());
        crate::events::emit(
            events,
            match state {
                Ok(()) => crate::events::Event::CaptureDeviceReady { kind, name },
                Err(reason) => {
                    crate::events::Event::CaptureDeviceUnavailable { kind, name, reason }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, bus};

    #[test]
    fn presence_reports_each_change_once() {
        let events = bus();
        let mut rx = events.subscribe();
        let mut p = Presence::new("scanner", "adf");
        p.report(&events, Ok(()));
        p.report(&events, Ok(()));
        p.report(&events, Err("scanner I/O error".into()));
        p.report(&events, Err("another error".into()));
        p.report(&events, Ok(()));
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(match e {
                Event::CaptureDeviceReady { kind, name } => format!("{kind} {name} up"),
                Event::CaptureDeviceUnavailable { kind, name, reason } => {
                    format!("{kind} {name} down: {reason}")
                }
                other => format!("{other:?}"),
            });
        }
        assert_eq!(
            seen,
            [
                "scanner adf up",
                "scanner adf down: scanner I/O error",
                "scanner adf up"
            ]
        );
    }
}
