//! Scanners through SANE. The backend runs inside `scanimage`, a subprocess with a no-progress
//! timeout and a kill: a backend that crashes or hangs ends that one scan, never the daemon.
//!
//! [`Scanner`] is the device-kind trait; [`Scanimage`] implements it. Its simulator is SANE's own
//! `test` backend (a virtual flatbed and a feeder that runs out after 10 pages, with injected
//! `sane_read` errors), reached through exactly this code: see `tests/test_backend.rs`.
//!
//! Every byte scanimage writes (pages, stdout, stderr) is untrusted: pages are checked against
//! their format's signature and size limit, and status lines are parsed without panicking.

// The one unsafe call (kill(2) of scanimage's process group) is allowed at its spot.
#![deny(unsafe_code)]

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

/// How a scan ended when its pages were handed over one by one ([`Scanner::scan_each`]).
#[derive(Debug)]
pub struct ScanEnd {
    /// Pages handed over.
    pub pages: u32,
    /// Why the scan stopped early (a jam, a cancel); `None` when it ended normally.
    pub stopped: Option<ScanError>,
}

/// What the consumer of [`Scanner::scan_each`] says after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// No more pages: the scan is ended (the pages taken so far are kept).
    Stop,
}

/// One kind of device: something that scans pages on request.
pub trait Scanner: Send {
    /// Scans, handing each page to `sink` as soon as it is complete, so a long feeder batch is
    /// committed page by page. `cancel` is asked while the scanner works; when it says yes the
    /// scan ends with [`ScanError::Cancelled`] after the pages already handed over. `Err` when not
    /// a single page was completed.
    fn scan_each(
        &mut self,
        feed: Feed,
        cancel: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(Page) -> Next,
    ) -> Result<ScanEnd, ScanError>;
    /// Scans and returns all pages at once (tools, tests); `Err` when not a single page was
    /// completed.
    fn scan(&mut self, feed: Feed) -> Result<Scan, ScanError> {
        let mut pages = Vec::new();
        let end = self.scan_each(feed, &|| false, &mut |page| {
            pages.push(page);
            Next::Continue
        })?;
        Ok(Scan {
            pages,
            stopped: end.stopped,
        })
    }
    /// For logs and records: the SANE device name.
    fn device(&self) -> &str;
}
