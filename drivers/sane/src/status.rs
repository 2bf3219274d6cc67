//! SANE status codes and the errors a scan ends with. scanimage reports a failed `sane_start`
//! or `sane_read` as its exit status (the `SANE_Status` value) and, in batch mode, as
//! `(scanner status = N)` on stderr while it may still exit 0, so both are read. The numbers are
//! locale-independent; the texts are translated by gettext, so the subprocess runs with
//! `LC_ALL=C` and the texts are only shown, never matched.

use std::time::Duration;

/// `SANE_Status` (sane.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaneStatus {
    Good,
    Unsupported,
    Cancelled,
    DeviceBusy,
    Inval,
    Eof,
    Jammed,
    NoDocs,
    CoverOpen,
    IoError,
    NoMem,
    AccessDenied,
    Other(i64),
}

impl SaneStatus {
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::Good,
            1 => Self::Unsupported,
            2 => Self::Cancelled,
            3 => Self::DeviceBusy,
            4 => Self::Inval,
            5 => Self::Eof,
            6 => Self::Jammed,
            7 => Self::NoDocs,
            8 => Self::CoverOpen,
            9 => Self::IoError,
            10 => Self::NoMem,
            11 => Self::AccessDenied,
            n => Self::Other(n),
        }
    }

    /// The error this status means, `None` for success and end of page.
    pub fn error(self, detail: &str) -> Option<ScanError> {
        let detail = detail.to_string();
        Some(match self {
            Self::Good | Self::Eof => return None,
            Self::Jammed => ScanError::Jammed,
            Self::NoDocs => ScanError::NoDocuments,
            Self::CoverOpen => ScanError::CoverOpen,
            Self::DeviceBusy => ScanError::DeviceBusy,
            Self::IoError => ScanError::Io(detail),
            Self::AccessDenied => ScanError::AccessDenied(detail),
            other => ScanError::Status {
                status: format!("{other:?}"),
                detail,
            },
        })
    }
}

/// Why a scan produced nothing, or why a batch stopped early. Messages are for operators.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no paper: the document feeder is empty (or no document on the glass)")]
    NoDocuments,
    #[error("paper jam: clear the document feeder and scan the remaining pages again")]
    Jammed,
    #[error("the scanner's cover is open: close it and scan again")]
    CoverOpen,
    #[error("the scanner is busy (another program is scanning, or it is still warming up)")]
    DeviceBusy,
    #[error("scanner I/O error: {0} (check the cable and power)")]
    Io(String),
    #[error("access to the scanner denied: {0} (is the service user in the scanner group?)")]
    AccessDenied(String),
    #[error(
        "scanner {device:?} cannot be opened: {detail} (is it connected and listed by `scanimage -L`?)"
    )]
    NoDevice { device: String, detail: String },
    #[error("scanner reported {status}: {detail}")]
    Status { status: String, detail: String },
    #[error("the scanner made no progress for {}s after {pages} page(s); scanimage was killed", .after.as_secs())]
    Timeout { after: Duration, pages: usize },
    #[error("scanimage ended abnormally ({how}): {detail}")]
    Crashed { how: String, detail: String },
    #[error("cannot run {program}: {error} (install sane-utils)")]
    Spawn {
        program: String,
        error: std::io::Error,
    },
    #[error("page {page} from the scanner is unusable: {reason}")]
    BadPage { page: u32, reason: String },
    #[error("scan directory {path}: {error}")]
    WorkDir { path: String, error: std::io::Error },
    #[error("the scan was stopped after {pages} page(s): the daemon is stopping")]
    Cancelled { pages: u32 },
}

impl ScanError {
    /// Stable short name for JSON output and events.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoDocuments => "no_paper",
            Self::Jammed => "jammed",
            Self::CoverOpen => "cover_open",
            Self::DeviceBusy => "busy",
            Self::Io(_) => "io_error",
            Self::AccessDenied(_) => "access_denied",
            Self::NoDevice { .. } => "no_device",
            Self::Status { .. } => "device_error",
            Self::Timeout { .. } => "timeout",
            Self::Crashed { .. } => "crashed",
            Self::Spawn { .. } => "no_scanimage",
            Self::BadPage { .. } => "bad_page",
            Self::WorkDir { .. } => "work_dir",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

/// What scanimage's stderr says, line by line.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct StderrReport {
    /// `(scanner status = N)` of pages that did not end with EOF, with the `sane_*:` text before.
    pub page_status: Option<(SaneStatus, String)>,
    /// `sane_start: <text>`: the status is in the exit code.
    pub start_failure: Option<String>,
    /// `open of device X failed: <text>`.
    pub open_failure: Option<String>,
    /// The last `sane_read:`/`sane_start:` text seen.
    pub last_message: Option<String>,
    /// `Batch terminated, N pages scanned`: scanimage has said all it will say and is only
    /// closing the device.
    pub batch_ended: bool,
}

impl StderrReport {
    pub fn feed(&mut self, line: &str) {
        let line = line.trim();
        let text = line.strip_prefix("scanimage: ").unwrap_or(line);
        if let Some(rest) = text.strip_prefix("sane_start: ") {
            self.start_failure = Some(rest.to_string());
            self.last_message = Some(rest.to_string());
        } else if let Some(rest) = text.strip_prefix("sane_read: ") {
            self.last_message = Some(rest.to_string());
        } else if text.starts_with("Batch terminated") {
            self.batch_ended = true;
        } else if text.starts_with("open of device") {
            let detail = text.split_once("failed: ").map_or(text, |(_, d)| d);
            self.open_failure = Some(detail.to_string());
        } else if let Some(code) = scanner_status(text) {
            let status = SaneStatus::from_code(code);
            if status != SaneStatus::Eof && status != SaneStatus::Good {
                let message = self.last_message.clone().unwrap_or_default();
                self.page_status = Some((status, message));
            }
        }
    }
}

/// `Scanned page 3. (scanner status = 6)` → 6.
fn scanner_status(line: &str) -> Option<i64> {
    let rest = line.split_once("(scanner status = ")?.1;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Last lines of stderr for an error message, bounded.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let mut s = lines[start..].join(" | ");
    if s.len() > 400 {
        let mut cut = 400;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_stderr_with_a_jam_after_two_pages() {
        let mut r = StderrReport::default();
        for line in [
            "Scanning infinity pages, incrementing by 1, numbering from 1",
            "Scanning page 1",
            "Scanned page 1. (scanner status = 5)",
            "Scanning page 2",
            "Scanned page 2. (scanner status = 5)",
            "Scanning page 3",
            "scanimage: sane_read: Document feeder jammed",
            "Scanned page 3. (scanner status = 6)",
            "Batch terminated, 3 pages scanned",
        ] {
            r.feed(line);
        }
        assert_eq!(
            r.page_status,
            Some((SaneStatus::Jammed, "Document feeder jammed".into()))
        );
        assert!(matches!(
            r.page_status.unwrap().0.error(""),
            Some(ScanError::Jammed)
        ));
    }

    #[test]
    fn odd_lines_do_not_panic() {
        let mut r = StderrReport::default();
        for line in [
            "",
            "(scanner status = ",
            "(scanner status = 99999999999999999999999)",
            "scanimage: open of device",
            "scanimage: sane_start: ",
            "\u{fffd}\u{fffd}",
            "(scanner status = 42)",
        ] {
            r.feed(line);
        }
        assert_eq!(r.page_status.map(|p| p.0), Some(SaneStatus::Other(42)));
        assert_eq!(tail("a\n\nb\nc\nd"), "b | c | d");
        assert!(tail(&"界".repeat(300)).ends_with('…'));
    }

    #[test]
    fn open_failure_names_the_reason() {
        let mut r = StderrReport::default();
        r.feed("scanimage: open of device nosuch:0 failed: Invalid argument");
        assert_eq!(r.open_failure.as_deref(), Some("Invalid argument"));
    }
}
