//! The hot-folder supervisor: one thread per `[folders.<name>]`. Complete files become captures
//! with one `page` blob; a file moves to `done/` only after its record is committed (or was
//! committed before a crash, recognised by its intake key), to `failed/` when it cannot be taken.
//! When the outbox refuses (full), the file stays where it is and is tried again later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use folder::{Found, HotFolder, Options, ReadyFile};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{Capture, DeviceEvent, Intake, IntakeOutcome};
use crate::config::FolderConfig;
use crate::events::{Event, EventBus, emit};
use crate::imaging::ProcessOptions;
use crate::record::{DeviceInfo, Evidence};

/// How long a file the outbox refused waits before it is tried again.
const RETRY_REFUSED: Duration = Duration::from_secs(5);

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
                            if let Taken::StationGone = self.take(h, f) {
                                return;
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

    fn take(&self, hot: &mut HotFolder, found: Found) -> Taken {
        let path = match found {
            Found::Complete(path) => path,
            Found::Unacceptable(path, reason) => {
                warn!(folder = %self.name, %reason, "file not taken; moved to failed/");
                debug!(file = %path.display(), "file not taken");
                if let Err(e) = hot.finish(&path, Some(&reason)) {
                    warn!(folder = %self.name, error = %e, "cannot move a file to failed/");
                    hot.defer(&path, RETRY_REFUSED, Instant::now());
                }
                return Taken::Done;
            }
        };
        let file = match hot.read(&path) {
            Ok(f) => f,
            Err(reason) => {
                debug!(folder = %self.name, file = %path.display(), %reason, "file not read yet");
                return Taken::Retry;
            }
        };
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let key = file.key(&self.name);
        let capture = self.capture(&file);
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
