//! Scanners through SANE. The backend runs inside `scanimage`, a subprocess with a no-progress
//! timeout and a kill: a backend that crashes or hangs ends that one scan, never the daemon.
//!
//! [`Scanner`] is the device-kind trait; [`Scanimage`] implements it. Its simulator is SANE's own
//! `test` backend (a virtual flatbed and a feeder that runs out after 10 pages, with injected
//! `sane_read` errors), reached through exactly this code: see `tests/test_backend.rs`.
//!
//! Every byte scanimage writes (pages, stdout, stderr) is untrusted: pages are checked against
//! their format's signature and size limit, and status lines are parsed without panicking.

mod page;
mod scanimage;
mod status;

pub use page::{Page, PageFormat, check_page};
pub use scanimage::{Scanimage, ScanimageOptions};
pub use status::{SaneStatus, ScanError};

/// What to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// One page (flatbed, or one sheet from the feeder).
    Single,
    /// Every sheet in the feeder, until it is empty (or `max_pages`).
    Batch,
}

/// The pages of one scan. A feeder batch that stops on an error (a jam after three pages) keeps
/// the pages completed before it, and says why it stopped.
#[derive(Debug)]
pub struct Scan {
    pub pages: Vec<Page>,
    /// Why a batch stopped early; `None` when it ended normally (the feeder ran out).
    pub stopped: Option<ScanError>,
}

/// One kind of device: something that scans pages on request.
pub trait Scanner: Send {
    /// Scans; `Err` when not a single page was completed.
    fn scan(&mut self, feed: Feed) -> Result<Scan, ScanError>;
    /// For logs and records: the SANE device name.
    fn device(&self) -> &str;
}
