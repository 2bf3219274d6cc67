//! What happens at the counter, as the station reports it: the demo prints these, the service
//! status line and the case system's live feed are built from them. No personal data in clear:
//! ID numbers are masked before they get here.

use std::time::Instant;

use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub enum Event {
    ReaderReady {
        reader: String,
    },
    ReaderUnavailable {
        reader: String,
        reason: String,
    },
    CardRead {
        reader: String,
        card_type: String,
        masked_number: String,
        /// Names of the checks that failed (`chip_authentication`, `sod_hashes`...): what the
        /// clerk must be warned of. Names only, never details.
        failed_checks: Vec<String>,
    },
    /// The record is durable in the outbox; the capture may be acknowledged to the clerk.
    RecordCommitted {
        record_id: String,
        seq: u64,
        masked_number: String,
        card_read_at: Instant,
    },
    /// The capture could not be committed (outbox failure); nothing was stored.
    CaptureRefused {
        reason: String,
    },
    /// The outbox reached a capacity limit: the capture was refused (it stays at its source when
    /// it can, e.g. a hot-folder file); everything already held is kept and delivered.
    OutboxFull {
        detail: String,
    },
    /// The outbox file was damaged: it was moved aside (never deleted) and a new one started.
    OutboxQuarantined {
        moved_to: String,
        reason: String,
    },
    FolderReady {
        folder: String,
    },
    /// A camera or scanner (`kind`) is usable: opened, or its last scan worked.
    CaptureDeviceReady {
        kind: &'static str,
        name: String,
    },
    /// A camera or scanner went away or failed; its supervisor keeps trying.
    CaptureDeviceUnavailable {
        kind: &'static str,
        name: String,
        reason: String,
    },
    FolderUnavailable {
        folder: String,
        reason: String,
    },
    /// A page was captured (into the open session, or as its own record).
    PageCaptured {
        device: String,
        label: Option<String>,
        /// The page's number within its session (1 outside a session).
        page: u32,
        /// Quality warnings the clerk may act on (blurred, too_dark, ...).
        warnings: Vec<String>,
    },
    /// A capture attempt the clerk should repeat (no document, paper jam...).
    QualityProblem {
        device: String,
        reason: String,
    },
    SessionOpened {
        session_id: String,
        case_ref: Option<String>,
        opened_by: String,
    },
    /// The session was sealed into one record.
    SessionClosed {
        session_id: String,
        record_id: String,
        identities: u32,
        pages: u32,
    },
    /// The session was cancelled (by command, by timeout): nothing it captured is sent.
    SessionCancelled {
        session_id: String,
        reason: String,
        items: u32,
    },
    UplinkConnected,
    UplinkDisconnected {
        reason: String,
    },
    /// The case system acknowledged the record; it has left the outbox.
    RecordDelivered {
        record_id: String,
    },
    /// The case system rejected the record; it moved to the dead letters.
    RecordRejected {
        record_id: String,
        reason: String,
    },
    /// A message on the acks topic changed nothing (`receipts::REFUSAL_CODES`).
    AnswerRefused {
        reason: &'static str,
    },
}

pub type EventBus = broadcast::Sender<Event>;

pub fn bus() -> EventBus {
    broadcast::channel(256).0
}

/// Sends an event; having no listener is normal.
pub fn emit(bus: &EventBus, event: Event) {
    let _ = bus.send(event);
}
