//! The PC/SC side: reads on demand and the reader supervisor.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ga467::card::CivilDate;
use icao9303::mrz::{MrzKey, mask};
use icao9303::pa::CscaStore;
use icao9303::pcsc::{PcscCard, ReaderEvent, Watcher, reader_cstring, sys as pcsc};
use icao9303::{DocumentRead, ReadError, ReadOptions};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{ChainHead, DocumentError, ReadSettings, capture_of, load_csca, parse_mrz_file};
use crate::config::PcscConfig;
use crate::devices::{Capture, DeviceEvent};
use crate::events::{Event, EventBus, emit};
use crate::record::{CheckResult, DeviceInfo};

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest wait for reader events; shutdown and the MRZ inbox are looked at in between.
const WAIT: Duration = Duration::from_millis(500);

fn options(settings: &ReadSettings) -> ReadOptions {
    let mut o = ReadOptions::default();
    if let Some(b) = settings.block_size {
        o.block = b;
    }
    o.can.clone_from(&settings.can);
    o.chip_authentication = !settings.skip_chip_authentication;
    o.active_authentication = !settings.skip_active_authentication;
    o.extended_length = settings.extended_length;
    // The chain head as the read starts: the challenge proves the chip answered after it.
    o.aa_binding = settings
        .chain
        .as_ref()
        .and_then(|c| c.binding(std::time::SystemTime::now()));
    o
}

fn device(name: &str, reader: &str, atr: &[u8]) -> DeviceInfo {
    DeviceInfo {
        kind: "pcsc".into(),
        name: name.into(),
        sam_id: None,
        detail: Some(format!("{reader} (ATR {})", icao9303::hex(atr))),
    }
}

/// Reads the document on the reader whose PC/SC name contains `reader`, opening the chip with
/// `key`. Blocking; the internal API for `countersign read-document` and case-system commands.
pub fn read_document(
    reader: &str,
    key: &MrzKey,
    csca: Option<&CscaStore>,
    settings: &ReadSettings,
) -> Result<(Capture, DocumentRead), DocumentError> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)
        .map_err(|e| DocumentError::NoService(e.to_string()))?;
    let names: Vec<String> = match ctx.list_readers_owned() {
        Ok(n) => n.iter().map(|c| c.to_string_lossy().into_owned()).collect(),
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(DocumentError::NoService(e.to_string())),
    };
    let Some(full) = names.iter().find(|n| n.contains(reader)) else {
        return Err(DocumentError::NoReader(reader.into(), names.join(", ")));
    };
    let cname = reader_cstring(full)
        .ok_or_else(|| DocumentError::NoReader(reader.into(), names.join(", ")))?;
    let mut card = match PcscCard::connect(&ctx, &cname) {
        Ok(c) => c,
        Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => {
            return Err(DocumentError::NoCard(full.clone()));
        }
        Err(e @ (pcsc::Error::ReaderUnavailable | pcsc::Error::UnknownReader)) => {
            return Err(DocumentError::NoReader(reader.into(), e.to_string()));
        }
        Err(e) => return Err(DocumentError::NoService(e.to_string())),
    };
    let atr = card.atr();
    let read = icao9303::read_document(&mut card, key, &options(settings))?;
    let capture = capture_of(
        &read,
        key,
        &device(reader, full, &atr),
        csca,
        CivilDate::today_in_china(),
    );
    Ok((capture, read))
}

/// An MRZ waiting for its card.
struct Pending {
    key: MrzKey,
    /// A configured reader name, or any reader.
    reader: Option<String>,
    expires: Instant,
}

pub fn spawn(
    config: PcscConfig,
    chain: ChainHead,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("pcsc".into())
        .spawn(move || {
            let csca = match load_csca(&config.csca_files) {
                Ok(store) => store,
                Err(e) => {
                    warn!(error = %e, "CSCA store unavailable; chain checks will be unknown");
                    None
                }
            };
            if let Some(store) = &csca {
                info!(certificates = store.len(), "CSCA store loaded");
            }
            Supervisor {
                config,
                chain,
                csca,
                tx,
                events,
                stop,
                pending: Vec::new(),
                present: BTreeSet::new(),
                done: BTreeSet::new(),
            }
            .run();
        })
}

struct Supervisor {
    config: PcscConfig,
    /// Active Authentication's challenges are bound to the station's chain.
    chain: ChainHead,
    csca: Option<CscaStore>,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
    pending: Vec<Pending>,
    /// PC/SC names of configured readers with a card, with its ATR.
    present: BTreeSet<(String, Vec<u8>)>,
    /// Readers whose current card was handled (read, refused or not an eMRTD).
    done: BTreeSet<String>,
}

impl Supervisor {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn run(&mut self) {
        let mut backoff = BACKOFF_FIRST;
        let mut last_problem = String::new();
        while !self.stopped() {
            let problem = match Watcher::new() {
                Ok(mut watcher) => {
                    backoff = BACKOFF_FIRST;
                    last_problem.clear();
                    match self.serve(&mut watcher) {
                        Ok(()) => return,
                        Err(e) => e,
                    }
                }
                Err(e) => e.to_string(),
            };
            if problem != last_problem {
                warn!(%problem, "PC/SC unavailable; retrying");
                emit(
                    &self.events,
                    Event::ReaderUnavailable {
                        reader: "pcsc".into(),
                        reason: problem.clone(),
                    },
                );
                last_problem = problem;
            }
            self.present.clear();
            self.done.clear();
            let until = Instant::now() + backoff;
            while !self.stopped() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Serves one PC/SC context until shutdown (Ok) or until the service fails (Err).
    fn serve(&mut self, watcher: &mut Watcher) -> Result<(), String> {
        info!(readers = ?watcher.readers(), "PC/SC ready");
        emit(
            &self.events,
            Event::ReaderReady {
                reader: "pcsc".into(),
            },
        );
        while !self.stopped() {
            let events = watcher.wait(WAIT).map_err(|e| e.to_string())?;
            for event in events {
                self.on_event(event);
            }
            self.take_inbox();
            self.pending.retain(|p| p.expires > Instant::now());
            self.read_waiting(watcher);
        }
        Ok(())
    }

    fn on_event(&mut self, event: ReaderEvent) {
        match event {
            ReaderEvent::ReaderAdded(r) => {
                info!(reader = %r, configured = self.config.reader_for(&r).is_some(), "PC/SC reader added")
            }
            ReaderEvent::ReaderRemoved(r) => {
                info!(reader = %r, "PC/SC reader removed");
                self.present.retain(|(n, _)| *n != r);
                self.done.remove(&r);
            }
            ReaderEvent::CardInserted { reader, atr } => {
                if let Some(name) = self.config.reader_for(&reader) {
                    debug!(reader = %name, atr = %icao9303::hex(&atr), "card inserted");
                    self.present.insert((reader, atr));
                }
            }
            ReaderEvent::CardRemoved(reader) => {
                self.present.retain(|(n, _)| *n != reader);
                self.done.remove(&reader);
            }
        }
    }

    /// Takes `*.mrz` files from the inbox.
    fn take_inbox(&mut self) {
        let Some(dir) = self.config.mrz_inbox.clone() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("mrz") {
                continue;
            }
            match parse_mrz_file(&path) {
                Ok(key) => {
                    let stem = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    let reader = self
                        .config
                        .readers
                        .keys()
                        .find(|n| n.as_str() == stem)
                        .map(|n| n.to_string());
                    info!(document = %mask(&key.document_number), reader = ?reader, "MRZ received; waiting for the document");
                    self.pending.push(Pending {
                        key,
                        reader,
                        expires: Instant::now() + self.config.mrz_ttl_secs.secs(),
                    });
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "MRZ file refused (renamed to .invalid)");
                    let _ = std::fs::rename(&path, path.with_extension("invalid"));
                }
            }
        }
    }

    /// Reads every present, unhandled card for which an MRZ is pending.
    fn read_waiting(&mut self, watcher: &Watcher) {
        let present: Vec<(String, Vec<u8>)> = self.present.iter().cloned().collect();
        for (reader, atr) in present {
            if self.done.contains(&reader) {
                continue;
            }
            let Some(name) = self.config.reader_for(&reader).map(|n| n.to_string()) else {
                continue;
            };
            let Some(at) = self
                .pending
                .iter()
                .position(|p| p.reader.as_ref().is_none_or(|r| *r == name))
            else {
                continue;
            };
            let key = self.pending[at].key.clone();
            match self.read(watcher, &reader, &name, &atr, &key) {
                Outcome::Read | Outcome::Refused => {
                    self.pending.remove(at);
                    self.done.insert(reader);
                }
                Outcome::Ignored => {
                    self.done.insert(reader);
                }
                Outcome::Retry => {}
            }
        }
    }

    fn read(
        &self,
        watcher: &Watcher,
        reader: &str,
        name: &str,
        atr: &[u8],
        key: &MrzKey,
    ) -> Outcome {
        let Some(cname) = reader_cstring(reader) else {
            return Outcome::Ignored;
        };
        let mut card = match PcscCard::connect(watcher.context(), &cname) {
            Ok(c) => c,
            Err(e) => {
                debug!(reader = %name, error = %e, "cannot connect to the card");
                return Outcome::Retry;
            }
        };
        let options = options(&ReadSettings {
            block_size: Some(self.config.block_size.get() as usize),
            extended_length: self.config.extended_length,
            chain: Some(self.chain.clone()),
            ..ReadSettings::default()
        });
        match icao9303::read_document(&mut card, key, &options) {
            Ok(read) => {
                let capture = capture_of(
                    &read,
                    key,
                    &device(name, reader, atr),
                    self.csca.as_ref(),
                    CivilDate::today_in_china(),
                );
                let failed: Vec<String> = capture
                    .identity
                    .iter()
                    .flat_map(|i| &i.checks)
                    .filter(|c| c.result == CheckResult::Fail)
                    .map(|c| c.name.clone())
                    .collect();
                info!(
                    reader = %name,
                    document = %capture.summary,
                    apdus = read.stats.apdus,
                    ms = read.stats.total.as_millis() as u64,
                    failed_checks = ?failed,
                    "travel document read"
                );
                emit(
                    &self.events,
                    Event::CardRead {
                        reader: name.into(),
                        card_type: capture
                            .identity
                            .as_ref()
                            .map_or(String::new(), |i| i.document.clone()),
                        masked_number: mask(&key.document_number),
                        failed_checks: failed,
                    },
                );
                if self
                    .tx
                    .blocking_send(DeviceEvent::Captured(Box::new(capture)))
                    .is_err()
                {
                    debug!(reader = %name, "station gone; document dropped at shutdown");
                }
                Outcome::Read
            }
            Err(ReadError::NotAnEmrtd { sw }) => {
                debug!(reader = %name, sw = format_args!("{sw:04X}"), "not a travel document; ignored");
                Outcome::Ignored
            }
            Err(e @ (ReadError::CardRemoved { .. } | ReadError::ReaderGone { .. })) => {
                warn!(reader = %name, error = %e, "document read interrupted; waiting for it again");
                Outcome::Ignored
            }
            Err(e @ ReadError::Access(_)) => {
                warn!(reader = %name, document = %mask(&key.document_number), error = %e, "document access refused");
                Outcome::Refused
            }
            Err(e) => {
                warn!(reader = %name, error = %e, "document read failed");
                Outcome::Ignored
            }
        }
    }
}

enum Outcome {
    Read,
    /// Access refused: the MRZ is dropped.
    Refused,
    /// Not read and not to be retried while this card stays on the reader.
    Ignored,
    Retry,
}
