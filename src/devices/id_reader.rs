//! The ID card reader supervisor: one thread per configured GA 467 reader. It opens the serial
//! port, checks the SAM, polls for cards and reports each new card once. When the port fails
//! (unplugged USB adapter, wrong device) it closes it and tries again with bounded backoff, so a
//! reader plugged back in is picked up without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ga467::card::{CivilDate, ParsedText, Sex, Validity, mask_id_number, run_checks};
use ga467::reader::{CardRead, PollOutcome, Reader, ReaderError, ReaderOptions};
use ga467::transport::SerialTransport;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{Capture, DeviceEvent};
use crate::config::IdReaderConfig;
use crate::events::{Event, EventBus, emit};
use crate::record::{Check, CheckResult, Coded, DeviceInfo, Evidence, Identity};

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Consecutive failed polls (garbled replies, timeouts) before the port is reopened.
const MAX_POLL_FAILURES: u32 = 5;

pub fn spawn(
    name: String,
    config: IdReaderConfig,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("id-reader-{name}"))
        .spawn(move || {
            let supervisor = Supervisor {
                name,
                config,
                tx,
                events,
                stop,
            };
            supervisor.run();
        })
}

struct Supervisor {
    name: String,
    config: IdReaderConfig,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
}

impl Supervisor {
    fn run(&self) {
        let mut backoff = BACKOFF_FIRST;
        let mut last_problem = String::new();
        while !self.stopped() {
            let started = Instant::now();
            let problem = match self.serve() {
                Ok(()) => return,
                Err(problem) => problem,
            };
            // A session that ran for a while was healthy: start the backoff over.
            if started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_FIRST;
            }
            // Say it once per change, not every retry.
            if problem != last_problem {
                warn!(reader = %self.name, port = %self.config.port.display(), %problem, "ID card reader unavailable; retrying");
                emit(
                    &self.events,
                    Event::ReaderUnavailable {
                        reader: self.name.clone(),
                        reason: problem.clone(),
                    },
                );
                last_problem = problem;
            }
            self.sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps in small steps so that shutdown is not delayed.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// One session on an open port. Returns Ok on shutdown, Err with the reason otherwise.
    fn serve(&self) -> Result<(), String> {
        let baud = self.config.baud.0;
        let port = self.config.port.to_string_lossy();
        let transport = SerialTransport::open(&port, baud).map_err(|e| e.to_string())?;
        let mut reader = Reader::new(
            transport,
            ReaderOptions {
                baud,
                byte_gap: Duration::from_millis(100),
                rearm_after_empty_polls: self.config.rearm_after_empty_polls.get() as u32,
            },
        );
        reader.sam_status().map_err(|e| e.to_string())?;
        let sam_id = match reader.sam_id() {
            Ok(id) => Some(hex(&id)),
            Err(e) => {
                warn!(reader = %self.name, error = %e, "cannot read the SAM id; records will lack it");
                None
            }
        };
        info!(reader = %self.name, port = %port, baud, "ID card reader ready");
        emit(
            &self.events,
            Event::ReaderReady {
                reader: self.name.clone(),
            },
        );
        let device = DeviceInfo {
            kind: "ga467".into(),
            name: self.name.clone(),
            sam_id,
            detail: None,
        };
        let interval = self.config.poll_interval_ms.millis();
        let mut failures = 0;
        while !self.stopped() {
            match reader.poll() {
                Ok(PollOutcome::Card(card)) => {
                    failures = 0;
                    self.report(&card, &device);
                }
                Ok(PollOutcome::NoCard | PollOutcome::StillPresent) => failures = 0,
                Err(ReaderError::Io { source, .. }) => {
                    return Err(format!("port failed: {source}"));
                }
                Err(e) => {
                    failures += 1;
                    debug!(reader = %self.name, error = %e, failures, "poll failed");
                    if failures >= MAX_POLL_FAILURES {
                        return Err(e.to_string());
                    }
                }
            }
            self.sleep(interval);
        }
        Ok(())
    }

    fn report(&self, card: &CardRead, device: &DeviceInfo) {
        let read_instant = Instant::now();
        let masked_number = card.parsed.number().map(mask_id_number).unwrap_or_default();
        info!(
            reader = %self.name,
            card_type = card.card_type.as_str(),
            id_number = %masked_number,
            "card read"
        );
        emit(
            &self.events,
            Event::CardRead {
                reader: self.name.clone(),
                card_type: card.card_type.as_str().into(),
                masked_number: masked_number.clone(),
            },
        );
        let capture = Capture {
            captured_at: SystemTime::now(),
            instant: read_instant,
            device: device.clone(),
            identity: Some(identity_of(card, &self.name, CivilDate::today_in_china())),
            evidence: evidence_of(card),
            summary: format!("{} {masked_number}", card.card_type.as_str()),
        };
        if self
            .tx
            .blocking_send(DeviceEvent::Captured(Box::new(capture)))
            .is_err()
        {
            debug!(reader = %self.name, "station gone; card dropped at shutdown");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDD` → `YYYY-MM-DD` when it is a real date; anything else unchanged.
fn iso_date(text: &str) -> String {
    match CivilDate::parse_yyyymmdd(text) {
        Some(date) => date.to_string(),
        None => text.to_string(),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn sex_of(sex: &Sex) -> Coded {
    Coded {
        code: sex.code().to_string(),
        label: match sex {
            Sex::Unrecognised(_) => None,
            _ => Some(sex.label().to_string()),
        },
    }
}

fn valid_until_of(v: &Validity) -> String {
    match v {
        Validity::LongTerm => "long_term".to_string(),
        Validity::Until(date) => iso_date(date),
    }
}

/// Maps the driver's view of a card into the record's identity: every field of every card type,
/// plus the driver's checks (a failed check is reported in the record, the card is kept).
/// `today` is the date expiry is judged against.
pub fn identity_of(card: &CardRead, device: &str, today: CivilDate) -> Identity {
    let parsed = &card.parsed;
    let mut identity = Identity {
        document: card.card_type.as_str().into(),
        device: device.to_string(),
        name: non_empty(parsed.name()),
        sex: Some(sex_of(parsed.sex())),
        birth_date: non_empty(&iso_date(parsed.birth_date())),
        id_number: parsed.number().and_then(non_empty),
        valid_from: non_empty(&iso_date(parsed.valid_from())),
        valid_until: non_empty(&valid_until_of(parsed.valid_until())),
        text_raw: Some(BASE64.encode(card.text)),
        ..Default::default()
    };
    match parsed {
        ParsedText::Resident(t) => {
            identity.nation = Some(Coded {
                code: t.nation.code.clone(),
                label: t.nation.name.map(str::to_string),
            });
            identity.address = non_empty(&t.address);
            identity.issuer = non_empty(&t.issuer);
        }
        ParsedText::Foreign2017(t) => {
            identity.name_en = non_empty(&t.name_en);
            identity.nationality = non_empty(&t.nationality);
            identity.card_version = non_empty(&t.card_version);
            identity.issuer_code = non_empty(&t.issuer_code);
        }
        ParsedText::Foreign2023(t) => {
            identity.name_en = non_empty(&t.name_en);
            identity.nationality = non_empty(&t.nationality);
            identity.renewal_count = non_empty(&t.renewal_count);
            identity.previous_number_link = non_empty(&t.previous_number_link);
        }
        ParsedText::HkMacauTaiwan(t) => {
            identity.address = non_empty(&t.address);
            identity.issuer = non_empty(&t.issuer);
            identity.permit_number = non_empty(&t.permit_number);
            identity.issue_count = non_empty(&t.issue_count);
        }
    }
    identity.checks = run_checks(parsed, today)
        .into_iter()
        .map(|c| Check {
            name: c.name.to_string(),
            result: match c.result {
                ga467::CheckResult::Pass => CheckResult::Pass,
                ga467::CheckResult::Fail => CheckResult::Fail,
                ga467::CheckResult::Unknown => CheckResult::Unknown,
            },
            detail: c.detail,
        })
        .collect();
    identity
}

/// The card's evidence: the raw WLT photo, always (decoding it needs a vendor library).
fn evidence_of(card: &CardRead) -> Vec<Evidence> {
    vec![Evidence {
        role: "face_photo_wlt".into(),
        media_type: "application/octet-stream".into(),
        bytes: card.photo_wlt.clone(),
        identity: None,
        label: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_only_for_eight_digits() {
        assert_eq!(iso_date("19491231"), "1949-12-31");
        assert_eq!(iso_date("长期"), "长期");
        assert_eq!(iso_date("2020013"), "2020013");
    }

    #[test]
    fn fake_cards_map_to_identity_fields() {
        for fake in ga467::sim::fake_resident_cards() {
            let parsed = ga467::card::parse_text(&fake.text).unwrap();
            let card = CardRead {
                text: fake.text,
                photo_wlt: fake.photo.clone(),
                card_type: parsed.card_type(),
                parsed,
            };
            let identity = identity_of(&card, "desk", CivilDate::today_in_china());
            assert_eq!(identity.document, "resident");
            let number = identity.id_number.clone().unwrap();
            assert!(ga467::card::id_number_valid(&number), "{number}");
            let birth = identity.birth_date.clone().unwrap();
            assert_eq!(
                birth.replace('-', ""),
                number[6..14],
                "birth date matches the number"
            );
            assert!(identity.nation.as_ref().unwrap().label.is_some());
            assert_eq!(evidence_of(&card)[0].bytes, fake.photo);
            assert_eq!(
                BASE64.decode(identity.text_raw.unwrap()).unwrap(),
                fake.text
            );
        }
    }
}
