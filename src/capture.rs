//! What a device hands the station: a capture in the record's vocabulary (identity, evidence,
//! device), how a source that must learn the outcome waits for it (hot folders), and how the
//! station asks a camera or scanner for a capture. Shared by `devices` (which make them),
//! `session` and `seal` (which keep and seal them) and `station` (which routes them), so that none
//! of those imports another for its types.

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
