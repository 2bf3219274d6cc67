//! The hot-folder supervisor: one thread per `[folders.<name>]`. Complete files become captures
//! with one `page` blob; a file moves to `done/` only after its record is committed (or was
//! committed before a crash, recognised by its intake key), to `failed/` when it cannot be taken.
//! When the outbox refuses (full), the file stays where it is and is tried again later.
//!
//! A panic while handling one file (a page the imaging pipeline cannot take) is caught: that file
//! moves to `failed/` with the reason `processing crashed: <message>` and the thread goes on. A
//! file that was in the pipeline each time the daemon died, three runs in a row (the driver's
//! processing marker counts them), goes to `failed/` on the next start instead of crash-looping
//! the service; a single SIGKILL or power cut in the middle of a file does not fail it. File names may be a citizen's
//! name or ID number: they are logged at debug level only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use folder::{Found, HotFolder, Options, ReadyFile, Unread};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{Capture, DeviceEvent, Intake, IntakeOutcome};
use crate::config::FolderConfig;
use crate::events::{Event, EventBus, emit};
use crate::imaging::ProcessOptions;
use crate::record::{DeviceInfo, Evidence};

/// How long a file the outbox refused waits before it is tried again.
const RETRY_REFUSED: Duration = Duration::from_secs(5);

/// The reason given to a file that was in the pipeline when the daemon died.
const CRASHED_BEFORE: &str =
    "processing crashed: the daemon died while processing this file, three runs in a row";

pub fn spawn(
    name: String,
    config: FolderConfig,
    imaging: Option<ProcessOptions>,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("folder-{name}"))
        .spawn(move || {
            Supervisor {
                name,
                config,
                imaging,
                tx,
                events,
                stop,
            }
            .run()
        })
}

struct Supervisor {
    name: String,
    config: FolderConfig,
    /// How pages are processed; `None`: files are kept as they are.
    imaging: Option<ProcessOptions>,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
}

enum Taken {
    Done,
    Retry,
    StationGone,
}

impl Supervisor {
    fn run(&self) {
        let poll = self.config.poll_interval_ms.millis();
        let mut hot: Option<HotFolder> = None;
        let mut last_problem = String::new();
        while !self.stop.load(Ordering::Relaxed) {
            if hot.is_none() {
                match HotFolder::open(
                    &self.config.path,
                    &self.config.done_dir(),
                    &self.config.failed_dir(),
                    self.options(),
                ) {
                    Ok(h) => {
                        info!(folder = %self.name, path = %self.config.path.display(), "hot folder ready");
                        emit(
                            &self.events,
                            Event::FolderReady {
                                folder: self.name.clone(),
                            },
                        );
                        last_problem.clear();
                        hot = Some(h);
                    }
                    Err(e) => self.problem(&mut last_problem, e.to_string()),
                }
            }
            if let Some(h) = hot.as_mut() {
                match h.scan(Instant::now()) {
                    Ok(found) => {
                        for f in found {
                            if self.stop.load(Ordering::Relaxed) {
                                return;
                            }
                            let path = match &f {
                                Found::Complete(p) | Found::Unacceptable(p, _) => p.clone(),
                            };
                            // One file must never end the thread (and so the folder) for good.
                            match catch_unwind(AssertUnwindSafe(|| self.take(h, f))) {
                                Ok(Taken::StationGone) => return,
                                Ok(Taken::Done | Taken::Retry) => {}
                                Err(panic) => self.crashed(h, &path, &*panic),
                            }
                        }
                    }
                    Err(e) => {
                        self.problem(&mut last_problem, e.to_string());
                        hot = None;
                    }
                }
            }
            std::thread::sleep(poll);
        }
    }

    fn options(&self) -> Options {
        Options {
            settle: self.config.settle_ms.millis(),
            max_file_bytes: self.config.max_file_bytes.get(),
            extensions: self.config.extensions.clone(),
        }
    }

    fn problem(&self, last: &mut String, problem: String) {
        if *last != problem {
            warn!(folder = %self.name, path = %self.config.path.display(), %problem, "hot folder unavailable; retrying");
            emit(
                &self.events,
                Event::FolderUnavailable {
                    folder: self.name.clone(),
                    reason: problem.clone(),
                },
            );
            *last = problem;
        }
    }

    /// Moves a file that cannot be taken to `failed/` with the reason.
    fn fail(&self, hot: &mut HotFolder, path: &Path, reason: &str) -> Taken {
        warn!(folder = %self.name, %reason, "file not taken; moved to failed/");
        debug!(file = %path.display(), "file not taken");
        if let Err(e) = hot.finish(path, Some(reason)) {
            warn!(folder = %self.name, error = %e, "cannot move a file to failed/");
            hot.defer(path, RETRY_REFUSED, Instant::now());
        }
        Taken::Done
    }

    /// Handling one file panicked: that file goes to `failed/`, the folder goes on.
    fn crashed(&self, hot: &mut HotFolder, path: &Path, panic: &(dyn std::any::Any + Send)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let reason = format!("processing crashed: {message}");
        warn!(folder = %self.name, %reason, "a file crashed its processing; moved to failed/");
        debug!(file = %path.display(), "file crashed its processing");
        // The marker named this file (or nothing): no key of it is pending any more.
        if let Err(e) = hot
            .finish(path, Some(&reason))
            .and_then(|_| hot.end_processing())
        {
            warn!(folder = %self.name, error = %e, "cannot move a crashed file to failed/");
            hot.defer(path, RETRY_REFUSED, Instant::now());
        }
    }

    fn take(&self, hot: &mut HotFolder, found: Found) -> Taken {
        let path = match found {
            Found::Complete(path) => path,
            Found::Unacceptable(path, reason) => return self.fail(hot, &path, &reason),
        };
        let file = match hot.read(&path) {
            Ok(f) => f,
            Err(Unread::Unacceptable(reason)) => return self.fail(hot, &path, &reason),
            Err(Unread::Retry(reason)) => {
                debug!(folder = %self.name, file = %path.display(), %reason, "file not read yet");
                return Taken::Retry;
            }
        };
        let key = file.key(&self.name);
        if hot.crashed_while_processing(&key) {
            warn!(folder = %self.name, reason = CRASHED_BEFORE, "file not taken; moved to failed/");
            if let Err(e) = hot.fail_crashed(&path, &key, CRASHED_BEFORE) {
                warn!(folder = %self.name, error = %e, "cannot move a crashed file to failed/");
                hot.defer(&path, RETRY_REFUSED, Instant::now());
            }
            return Taken::Done;
        }
        // Durably noted before the pipeline, cleared after it: a file that kills the process
        // is not processed again after the restart.
        if let Err(e) = hot.begin_processing(&key) {
            warn!(folder = %self.name, error = %e, "cannot note the file being processed; it stays and is tried again");
            hot.defer(&path, RETRY_REFUSED, Instant::now());
            return Taken::Retry;
        }
        let capture = self.capture(&file);
        if let Err(e) = hot.end_processing() {
            warn!(folder = %self.name, error = %e, "cannot clear the processing marker");
        }
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let event = DeviceEvent::Intake(
            Box::new(capture),
            Intake {
                key,
                outcome: outcome_tx,
            },
        );
        if self.tx.blocking_send(event).is_err() {
            return Taken::StationGone;
        }
        match outcome_rx.blocking_recv() {
            Ok(IntakeOutcome::Committed(record_id))
            | Ok(IntakeOutcome::AlreadyCommitted(record_id)) => {
                match hot.finish(&path, None) {
                    Ok(_) => {
                        info!(folder = %self.name, %record_id, bytes = file.bytes.len(), "page taken from the hot folder");
                        Taken::Done
                    }
                    Err(e) => {
                        // Committed; the next scan recognises the file by its key.
                        warn!(folder = %self.name, error = %e, "cannot move a committed file to done/");
                        hot.defer(&path, RETRY_REFUSED, Instant::now());
                        Taken::Retry
                    }
                }
            }
            Ok(IntakeOutcome::Refused(reason)) => {
                warn!(folder = %self.name, %reason, "page not committed; the file stays and is tried again");
                hot.defer(&path, RETRY_REFUSED, Instant::now());
                Taken::Retry
            }
            Err(_) => Taken::StationGone,
        }
    }

    fn capture(&self, file: &ReadyFile) -> Capture {
        // Test hook: a page that crashes the pipeline (unit tests only, never in a build).
        #[cfg(test)]
        if file.bytes.starts_with(tests::CRASHING_PAGE) {
            panic!("test: the pipeline crashed on this page");
        }
        let (evidence, summary, warnings) = match &self.imaging {
            Some(opts) => {
                let page = super::page::page(file.bytes.clone(), file.media_type, None, opts);
                (
                    page.evidence,
                    page.report.summary(),
                    page.report.warning_kinds(),
                )
            }
            None => (
                vec![Evidence {
                    role: "page".into(),
                    media_type: file.media_type.into(),
                    bytes: file.bytes.clone(),
                    identity: None,
                    label: None,
                }],
                format!("page {} {} bytes", file.media_type, file.bytes.len()),
                Vec::new(),
            ),
        };
        Capture {
            captured_at: SystemTime::now(),
            instant: Instant::now(),
            device: DeviceInfo {
                kind: "folder".into(),
                name: self.name.clone(),
                sam_id: None,
                detail: None,
            },
            identity: None,
            evidence,
            summary,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests;
