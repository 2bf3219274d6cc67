//! [`Scanimage`]: one `scanimage` run per scan, batch files in a private directory, progress from
//! `--batch-print` (a page's name is printed once its file is closed), errors from the exit status
//! and the `(scanner status = N)` lines.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::page::{Page, PageFormat, check_page};
use crate::status::{SaneStatus, ScanError, StderrReport, tail};
use crate::{Feed, Next, ScanEnd, Scanner};

/// How one scanner is driven.
#[derive(Debug, Clone)]
pub struct ScanimageOptions {
    /// The scanimage program (`scanimage` from `PATH` by default).
    pub program: PathBuf,
    /// The SANE device name (`scanimage -L`), e.g. `fujitsu:fi-7160:1234` or `test:0`.
    pub device: String,
    /// `--source` (e.g. `ADF`, `ADF Duplex`, `Automatic Document Feeder`); backend-specific.
    pub source: Option<String>,
    /// `--mode` (`Color`, `Gray`, `Lineart`); backend-specific.
    pub mode: Option<String>,
    /// `--resolution` in dpi.
    pub resolution: Option<u32>,
    pub format: PageFormat,
    /// Further backend options, passed as given (e.g. `["-x", "210", "-y", "297"]`).
    pub extra_args: Vec<String>,
    /// `SANE_CONFIG_DIR` for the subprocess (which backends `dll.conf` loads).
    pub sane_config_dir: Option<PathBuf>,
    /// scanimage is killed when neither a page nor a line of output came for this long.
    pub page_timeout: Duration,
    /// Where each scan's private directory is created.
    pub work_dir: PathBuf,
    /// A feeder batch stops after this many pages.
    pub max_pages: u32,
    /// A larger page is refused.
    pub max_page_bytes: u64,
}

impl Default for ScanimageOptions {
    fn default() -> Self {
        Self {
            program: PathBuf::from("scanimage"),
            device: String::new(),
            source: None,
            mode: None,
            resolution: None,
            format: PageFormat::Jpeg,
            extra_args: Vec::new(),
            sane_config_dir: None,
            page_timeout: Duration::from_secs(60),
            work_dir: std::env::temp_dir(),
            max_pages: 100,
            max_page_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The state of one scanimage run.
struct Run<'a> {
    dir: &'a Path,
    /// Pages handed to the consumer.
    pages: u32,
    bad_page: Option<ScanError>,
    stop: Option<Stop>,
    report: StderrReport,
    stderr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The caller's `cancel` said so (the daemon is stopping).
    Cancelled,
    /// The consumer wants no more pages.
    Sink,
}

impl Run<'_> {
    /// No more pages are taken: scanimage is to be ended.
    fn ended(&self) -> bool {
        self.bad_page.is_some() || self.stop.is_some()
    }
}

/// A SANE scanner driven through `scanimage`.
#[derive(Debug, Clone)]
pub struct Scanimage {
    options: ScanimageOptions,
}

enum Line {
    Out(String),
    Err(String),
}

/// Longest line kept from scanimage's output; the rest of a longer line is dropped.
const MAX_LINE: usize = 4096;
/// Most stderr text kept for error messages.
const MAX_STDERR: usize = 64 * 1024;
/// How long scanimage may take to close the device after it reported the end of its batch.
const EXIT_GRACE: Duration = Duration::from_secs(5);

impl Scanimage {
    pub fn new(options: ScanimageOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &ScanimageOptions {
        &self.options
    }

    /// The command line for a scan into `dir`.
    pub fn args(&self, feed: Feed, dir: &Path) -> Vec<OsString> {
        let o = &self.options;
        let mut args: Vec<OsString> = vec!["-d".into(), o.device.clone().into()];
        args.push(format!("--format={}", o.format.arg()).into());
        if let Some(mode) = &o.mode {
            args.push(format!("--mode={mode}").into());
        }
        if let Some(dpi) = o.resolution {
            args.push(format!("--resolution={dpi}").into());
        }
        if let Some(source) = &o.source {
            args.push(format!("--source={source}").into());
        }
        let count = match feed {
            Feed::Single => 1,
            Feed::Batch => o.max_pages.max(1),
        };
        // The batch name is a printf format: a '%' in the directory must be doubled.
        let mut pattern = OsString::from("--batch=");
        let dir = dir.as_os_str().to_string_lossy().replace('%', "%%");
        pattern.push(format!("{dir}/page-%04d.{}", o.format.extension()));
        args.push(pattern);
        args.push(format!("--batch-count={count}").into());
        args.push("--batch-print".into());
        args.extend(o.extra_args.iter().map(OsString::from));
        args
    }

    /// One scanimage run. Each page is checked and handed to `sink` as soon as scanimage reports
    /// it complete (and its file is removed), so a long feeder batch never holds more than one
    /// page in memory or on disk, and its consumer can commit pages while the scanner works.
    /// `cancel` is asked every 50 ms; when it says yes, or `sink` says stop, scanimage is killed
    /// and the scan ends with the pages already handed over.
    fn run(
        &self,
        feed: Feed,
        cancel: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(Page) -> Next,
    ) -> Result<ScanEnd, ScanError> {
        let o = &self.options;
        let dir = tempfile::Builder::new()
            .prefix("scan-")
            .tempdir_in(&o.work_dir)
            .map_err(|error| ScanError::WorkDir {
                path: o.work_dir.display().to_string(),
                error,
            })?;
        let mut cmd = Command::new(&o.program);
        cmd.args(self.args(feed, dir.path()))
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a hang is ended with everything it started.
            .process_group(0);
        if let Some(config) = &o.sane_config_dir {
            cmd.env("SANE_CONFIG_DIR", config);
        }
        let mut child = cmd.spawn().map_err(|error| ScanError::Spawn {
            program: o.program.display().to_string(),
            error,
        })?;
        let (tx, rx) = mpsc::channel();
        let readers = [
            child
                .stdout
                .take()
                .map(|s| spawn_reader(s, tx.clone(), Line::Out)),
            child
                .stderr
                .take()
                .map(|s| spawn_reader(s, tx.clone(), Line::Err)),
        ];
        drop(tx);

        let mut run = Run {
            dir: dir.path(),
            pages: 0,
            bad_page: None,
            stop: None,
            report: StderrReport::default(),
            stderr: String::new(),
        };
        let mut last_progress = Instant::now();
        let mut timed_out = false;
        let mut hung_at_exit = false;
        let status = loop {
            if !run.ended() && cancel() {
                run.stop = Some(Stop::Cancelled);
            }
            if run.ended() {
                kill_group(&mut child);
                break child.wait().ok();
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    last_progress = Instant::now();
                    self.handle(&mut run, line, sink);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both pipes closed: the process is ending.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break child.wait().ok();
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            // Some backends hang in sane_close/sane_exit after the batch is over (SANE's test
            // backend does about once in a hundred runs under load, waiting for its reader):
            // everything is said by then, so scanimage gets a short grace and the scan ends
            // with what it reported, not as a timeout minutes later.
            if run.report.batch_ended && last_progress.elapsed() >= EXIT_GRACE {
                hung_at_exit = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
            if last_progress.elapsed() >= o.page_timeout {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
        };
        // Killed after its batch ended: the exit status is ours, not the scanner's.
        let status = if hung_at_exit { None } else { status };
        // What was written before the end (readers finish once the pipes close).
        for reader in readers.into_iter().flatten() {
            let _ = reader.join();
        }
        while let Ok(line) = rx.try_recv() {
            self.handle(&mut run, line, sink);
        }

        let pages = run.pages;
        let error = if timed_out {
            Some(ScanError::Timeout {
                after: o.page_timeout,
                pages: pages as usize,
            })
        } else if let Some(e) = run.bad_page.take() {
            Some(e)
        } else if run.stop.is_some() {
            Some(ScanError::Cancelled { pages })
        } else {
            self.error_of(status, &run.report, &run.stderr)
        };
        let error = match (feed, error) {
            // The feeder running out after at least one page is how a batch ends.
            (Feed::Batch, Some(ScanError::NoDocuments)) if pages > 0 => None,
            // The consumer asked for no more: the pages it took are the scan.
            (_, Some(ScanError::Cancelled { .. })) if run.stop == Some(Stop::Sink) => None,
            (_, e) => e,
        };
        if pages == 0 {
            return Err(error.unwrap_or_else(|| ScanError::Status {
                status: "no page".into(),
                detail: format!("scanimage ended without a page: {}", tail(&run.stderr)),
            }));
        }
        Ok(ScanEnd {
            pages,
            stopped: error,
        })
    }

    /// One line of scanimage's output: a completed page (stdout) or a status line (stderr).
    fn handle(&self, run: &mut Run<'_>, line: Line, sink: &mut dyn FnMut(Page) -> Next) {
        match line {
            Line::Err(text) => {
                run.report.feed(&text);
                if run.stderr.len() < MAX_STDERR {
                    run.stderr.push_str(&text);
                    run.stderr.push('\n');
                }
            }
            // After a bad page or a stop, later pages are not taken (order is kept).
            Line::Out(_) if run.ended() => {}
            Line::Out(name) => match self.take_page(run.dir, run.pages + 1, &name) {
                Ok(page) => {
                    run.pages += 1;
                    if sink(page) == Next::Stop {
                        run.stop = Some(Stop::Sink);
                    }
                }
                Err(e) => run.bad_page = Some(e),
            },
        }
    }

    /// Reads, checks and removes the page file scanimage reported complete.
    fn take_page(&self, dir: &Path, number: u32, name: &str) -> Result<Page, ScanError> {
        let path = PathBuf::from(name.trim());
        // Only files in this scan's own directory are taken.
        if path.parent() != Some(dir) {
            return Err(ScanError::BadPage {
                page: number,
                reason: format!("scanimage named a file outside its directory: {name:?}"),
            });
        }
        let checked = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|bytes| {
                check_page(self.options.format, &bytes, self.options.max_page_bytes).map(|()| bytes)
            });
        let _ = std::fs::remove_file(&path);
        checked
            .map(|bytes| Page {
                number,
                format: self.options.format,
                bytes,
            })
            .map_err(|reason| ScanError::BadPage {
                page: number,
                reason,
            })
    }

    fn error_of(
        &self,
        status: Option<std::process::ExitStatus>,
        report: &StderrReport,
        stderr: &str,
    ) -> Option<ScanError> {
        if let Some(signal) = status.and_then(|s| s.signal()) {
            return Some(ScanError::Crashed {
                how: format!("killed by signal {signal}"),
                detail: tail(stderr),
            });
        }
        if let Some(detail) = &report.open_failure {
            return Some(ScanError::NoDevice {
                device: self.options.device.clone(),
                detail: detail.clone(),
            });
        }
        if let Some((status, message)) = &report.page_status {
            return status.error(message);
        }
        let code = status.and_then(|s| s.code()).unwrap_or(0);
        if code == 0 {
            return None;
        }
        let detail = report.last_message.clone().unwrap_or_else(|| tail(stderr));
        match SaneStatus::from_code(i64::from(code)).error(&detail) {
            // scanimage exits 1 for its own failures (bad option, no device).
            Some(ScanError::Status { .. }) if code == 1 => Some(ScanError::Status {
                status: "scanimage failed".into(),
                detail: tail(stderr),
            }),
            e => e,
        }
    }
}

impl Scanner for Scanimage {
    fn scan_each(
        &mut self,
        feed: Feed,
        cancel: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(Page) -> Next,
    ) -> Result<ScanEnd, ScanError> {
        self.run(feed, cancel, sink)
    }
    fn device(&self) -> &str {
        &self.options.device
    }
}

fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    tx: mpsc::Sender<Line>,
    wrap: fn(String) -> Line,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &chunk[..n] {
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&pending).into_owned();
                    pending.clear();
                    if tx.send(wrap(line)).is_err() {
                        return;
                    }
                } else if pending.len() < MAX_LINE {
                    pending.push(b);
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(wrap(String::from_utf8_lossy(&pending).into_owned()));
        }
    })
}

/// SIGKILL to scanimage's process group (it was started as the group's leader).
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}
