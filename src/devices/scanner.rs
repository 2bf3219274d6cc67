//! The scanner supervisor: one thread per `[scanners.<name>]`. A scan runs as a `scanimage`
//! subprocess (the `sane` driver), so a crashing or hanging backend ends that scan only. Scans
//! happen on request (a [`CaptureRequest`]) and, with `poll_interval_secs`, by themselves (a
//! feeder with paper in it is scanned; an empty one is quiet). Each page goes through
//! [`super::page`] and becomes its own capture; a feeder batch that stops on a jam keeps the pages
//! before it and says how many were taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sane::{Feed, Next, ScanEnd, ScanError, Scanimage, Scanner as _};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::page;
use super::{CaptureRequest, DeviceEvent};
use crate::config::ScannerConfig;
use crate::events::{Event, EventBus, emit};
use crate::imaging::ProcessOptions;

const IDLE_TICK: Duration = Duration::from_millis(50);

/// The driver for `config`; scans run in the system's temporary directory.
pub fn scanner(config: &ScannerConfig) -> Scanimage {
    Scanimage::new(config.scanimage_options(std::env::temp_dir()))
}

pub fn feed(config: &ScannerConfig) -> Feed {
    if config.feeder {
        Feed::Batch
    } else {
        Feed::Single
    }
}

pub fn spawn(
    name: String,
    config: ScannerConfig,
    imaging: ProcessOptions,
    tx: mpsc::Sender<DeviceEvent>,
    requests: mpsc::Receiver<CaptureRequest>,
    events: EventBus,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("scanner-{name}"))
        .spawn(move || {
            Supervisor {
                presence: super::Presence::new("scanner", &name),
                scanner: scanner(&config),
                name,
                config,
                imaging,
                tx,
                requests,
                events,
                stop,
                last_problem: String::new(),
            }
            .run()
        })
}

struct Supervisor {
    name: String,
    config: ScannerConfig,
    scanner: Scanimage,
    imaging: ProcessOptions,
    tx: mpsc::Sender<DeviceEvent>,
    requests: mpsc::Receiver<CaptureRequest>,
    events: EventBus,
    stop: Arc<AtomicBool>,
    last_problem: String,
    /// A scanner is only known to be there when it answers a scan (`scanimage -L` can take
    /// seconds).
    presence: super::Presence,
}

struct StationGone;

impl Supervisor {
    fn run(mut self) {
        info!(scanner = %self.name, device = %self.config.device, feeder = self.config.feeder, "scanner ready");
        let poll = self.config.poll_interval_secs.secs();
        let mut next_poll = Instant::now() + poll;
        while !self.stop.load(Ordering::Relaxed) {
            if let Ok(request) = self.requests.try_recv() {
                let opts = match page::with_mode(self.imaging, request.mode.as_deref()) {
                    Ok(o) => o,
                    Err(e) => {
                        let _ = request.reply.send(Err(e));
                        continue;
                    }
                };
                let answer = match self.scan(Some(request.label), &opts) {
                    Err(StationGone) => return,
                    Ok(answer) => answer,
                };
                let _ = request.reply.send(answer);
                continue;
            }
            if !poll.is_zero() && Instant::now() >= next_poll {
                let opts = self.imaging;
                if let Err(StationGone) = self.scan(None, &opts) {
                    return;
                }
                next_poll = Instant::now() + poll;
                continue;
            }
            std::thread::sleep(IDLE_TICK);
        }
    }

    /// One scan: the pages delivered, or why there were none (or why the feeder stopped).
    fn scan(
        &mut self,
        label: Option<String>,
        opts: &ProcessOptions,
    ) -> Result<Result<u32, String>, StationGone> {
        let started = Instant::now();
        let polled = label.is_none();
        let mut gone = false;
        let (name, device, dpi) = (
            self.name.clone(),
            self.config.device.clone(),
            self.config.resolution.get(),
        );
        let tx = self.tx.clone();
        let stop = self.stop.clone();
        // Each page is processed and handed to the station as soon as it is scanned (the station
        // commits it while the feeder goes on); a stopping daemon ends the batch after the pages
        // already taken.
        let scan = self.scanner.scan_each(
            feed(&self.config),
            &|| stop.load(Ordering::Relaxed),
            &mut |scanned| {
                let number = scanned.number;
                let page = page::page(
                    scanned.bytes,
                    scanned.format.media_type(),
                    label.clone(),
                    opts,
                );
                let detail = format!("{device} page {number} at {dpi} dpi");
                let capture = page::capture(&name, "scanner", detail, page.evidence, &page.report);
                info!(scanner = %name, page = number, summary = %capture.summary, ms = started.elapsed().as_millis() as u64, "page scanned");
                if tx
                    .blocking_send(DeviceEvent::Captured(Box::new(capture)))
                    .is_err()
                {
                    gone = true;
                    return Next::Stop;
                }
                Next::Continue
            },
        );
        if gone {
            return Err(StationGone);
        }
        self.presence(&scan);
        let ScanEnd {
            pages: count,
            stopped,
        } = match scan {
            Ok(end) => end,
            Err(ScanError::NoDocuments) if polled => {
                debug!(scanner = %self.name, "no paper in the feeder");
                return Ok(Ok(0));
            }
            Err(e) => {
                self.problem(&e, !polled);
                return Ok(Err(format!("scanner {}: {e}", self.name)));
            }
        };
        self.last_problem.clear();
        Ok(match stopped {
            None => Ok(count),
            Some(e) => {
                self.problem(&e, !polled);
                Err(format!(
                    "scanner {}: {count} page(s) captured, then: {e}",
                    self.name
                ))
            }
        })
    }

    /// Device connected / disconnected, once per change: a scanner that answered (pages, no
    /// paper, a jam, an open cover) is there; one that cannot be opened, reached or run is not.
    fn presence(&mut self, scan: &Result<ScanEnd, ScanError>) {
        let state = match scan {
            Err(
                e @ (ScanError::NoDevice { .. }
                | ScanError::Io(_)
                | ScanError::AccessDenied(_)
                | ScanError::Crashed { .. }
                | ScanError::Spawn { .. }
                | ScanError::Timeout { .. }),
            ) => Err(e.to_string()),
            _ => Ok(()),
        };
        self.presence.report(&self.events, state);
    }

    /// Reports a failed scan: to the counter's screen (an event) each time a scan was asked for,
    /// once per change of problem when the feeder is polled; to the log once per change.
    fn problem(&mut self, e: &ScanError, asked: bool) {
        let problem = e.to_string();
        let changed = self.last_problem != problem;
        if asked || changed {
            emit(
                &self.events,
                Event::QualityProblem {
                    device: self.name.clone(),
                    reason: problem.clone(),
                },
            );
        }
        if changed {
            warn!(scanner = %self.name, kind = e.kind(), %problem, "scan failed");
            self.last_problem = problem;
        }
    }
}
