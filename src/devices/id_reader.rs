//! The ID card reader supervisor: one thread per configured GA 467 reader. It opens the serial
//! port (probing the rate when `baud = "auto"`), checks the SAM, polls for cards and reports each
//! new card once. When the port fails (unplugged USB adapter, wrong device) it closes it and tries
//! again with bounded backoff, so a reader plugged back in is picked up without a restart. A
//! device that answers but does not speak GA 467 is reported once as an unsupported reader
//! protocol and retried only at the longest backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ga467::card::{CivilDate, ParsedText, Sex, Validity, mask_id_number, run_checks};
use ga467::photo::WltDecoder;
use ga467::reader::{
    AppendedAddress, CardRead, PROBE_BAUDS, PollOutcome, Reader, ReaderError, ReaderOptions,
};
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
/// While idle, the SAM status is re-checked this often (reference §6).
const STATUS_RECHECK: Duration = Duration::from_secs(5);

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
            let decoder = load_decoder(&name, &config);
            let supervisor = Supervisor {
                name,
                config,
                tx,
                events,
                stop,
                decoder,
            };
            supervisor.run();
        })
}

/// The configured photo decoder; a library that cannot be loaded is a warning (records keep the
/// raw WLT photo), not a reason to stop reading cards.
fn load_decoder(name: &str, config: &IdReaderConfig) -> Option<WltDecoder> {
    let settings = config.photo_decoder.as_ref()?;
    match WltDecoder::load(&settings.library, settings.signature.0) {
        Ok(decoder) => {
            info!(reader = %name, library = %settings.library.display(), signature = settings.signature.0.as_str(), "WLT photo decoder loaded");
            Some(decoder)
        }
        Err(e) => {
            warn!(reader = %name, error = %e, "WLT photo decoder unavailable; records keep the raw WLT photo only");
            None
        }
    }
}

/// Why a session ended.
struct Problem {
    text: String,
    /// The device answers, but not in GA 467: retry only at the longest backoff.
    unsupported: bool,
    /// The session had reached "ready" (port open, SAM fine): the device is there, so the next
    /// attempt starts from the shortest backoff.
    after_ready: bool,
}

impl Problem {
    fn after_ready(mut self) -> Self {
        self.after_ready = true;
        self
    }
}

impl From<String> for Problem {
    fn from(text: String) -> Self {
        Self {
            text,
            unsupported: false,
            after_ready: false,
        }
    }
}

impl From<ReaderError> for Problem {
    fn from(e: ReaderError) -> Self {
        Self {
            unsupported: matches!(e, ReaderError::UnsupportedProtocol { .. }),
            text: e.to_string(),
            after_ready: false,
        }
    }
}

struct Supervisor {
    name: String,
    config: IdReaderConfig,
    tx: mpsc::Sender<DeviceEvent>,
    events: EventBus,
    stop: Arc<AtomicBool>,
    decoder: Option<WltDecoder>,
}

impl Supervisor {
    fn run(&self) {
        let mut backoff = BACKOFF_FIRST;
        let mut last_problem = String::new();
        // With `baud = "auto"`, the rate found last is tried first after a reconnect.
        let mut known_baud = self.config.baud.fixed();
        while !self.stopped() {
            let started = Instant::now();
            let problem = match self.serve(&mut known_baud) {
                Ok(()) => return,
                Err(problem) => problem,
            };
            // A session that got going, or ran for a while, was healthy: start the backoff over.
            if problem.after_ready || started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_FIRST;
            }
            if problem.unsupported {
                backoff = BACKOFF_MAX;
            }
            // Say it once per change, not every retry.
            if problem.text != last_problem {
                warn!(reader = %self.name, port = %self.config.port.display(), problem = %problem.text, "ID card reader unavailable; retrying");
                emit(
                    &self.events,
                    Event::ReaderUnavailable {
                        reader: self.name.clone(),
                        reason: problem.text.clone(),
                    },
                );
                last_problem = problem.text;
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

    fn reader_options(&self, baud: u32) -> ReaderOptions {
        ReaderOptions {
            baud,
            byte_gap: Duration::from_millis(100),
            rearm_after_empty_polls: self.config.rearm_after_empty_polls.get() as u32,
            fingerprint: self.config.fingerprint,
            appended_address: self.config.appended_address,
            max_rf_byte: Some(0x50),
            status_recheck: STATUS_RECHECK,
        }
    }

    /// One session on an open port. Returns Ok on shutdown, Err with the reason otherwise.
    fn serve(&self, known_baud: &mut Option<u32>) -> Result<(), Problem> {
        let port = self.config.port.to_string_lossy();
        let first_rate = known_baud.unwrap_or(PROBE_BAUDS[0]);
        let transport = SerialTransport::open(&port, first_rate).map_err(|e| e.to_string())?;
        let mut reader = Reader::new(transport, self.reader_options(first_rate));
        let baud = match self.config.baud.fixed() {
            Some(rate) => rate,
            None => {
                let mut rates = vec![first_rate];
                rates.extend(PROBE_BAUDS.iter().filter(|r| **r != first_rate));
                let rate = reader.probe_baud(&rates)?;
                if *known_baud != Some(rate) {
                    info!(reader = %self.name, baud = rate, "reader line rate detected");
                }
                *known_baud = Some(rate);
                rate
            }
        };
        reader.start()?;
        let sam_id = match reader.sam_id() {
            Ok(id) => Some(hex(&id)),
            Err(e @ ReaderError::Io { .. }) => return Err(e.into()),
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
                    return Err(Problem::from(format!("port failed: {source}")).after_ready());
                }
                Err(e @ (ReaderError::UnsupportedProtocol { .. } | ReaderError::Sam { .. })) => {
                    return Err(Problem::from(e).after_ready());
                }
                Err(e) => {
                    failures += 1;
                    debug!(reader = %self.name, error = %e, failures, "poll failed");
                    if failures >= MAX_POLL_FAILURES {
                        return Err(Problem::from(e).after_ready());
                    }
                }
            }
            self.sleep(interval);
        }
        Ok(())
    }

    fn report(&self, card: &CardRead, device: &DeviceInfo) {
        let capture = capture_of(
            card,
            device,
            self.decoder.as_ref(),
            CivilDate::today_in_china(),
        );
        let masked_number = card.parsed.number().map(mask_id_number).unwrap_or_default();
        let failed: Vec<&str> = capture
            .identity
            .iter()
            .flat_map(|i| &i.checks)
            .filter(|c| c.result == CheckResult::Fail)
            .map(|c| c.name.as_str())
            .collect();
        info!(
            reader = %self.name,
            card_type = card.card_type.as_str(),
            id_number = %masked_number,
            failed_checks = ?failed,
            "card read"
        );
        emit(
            &self.events,
            Event::CardRead {
                reader: self.name.clone(),
                card_type: card.card_type.as_str().into(),
                masked_number,
                failed_checks: failed.iter().map(|n| n.to_string()).collect(),
            },
        );
        if self
            .tx
            .blocking_send(DeviceEvent::Captured(Box::new(capture)))
            .is_err()
        {
            debug!(reader = %self.name, "station gone; card dropped at shutdown");
        }
    }
}

/// Everything one card read contributes to a record: the identity (every field, the checks) and
/// the evidence (raw WLT always, the decoded photo when a decoder is loaded and succeeds,
/// fingerprints when they were read). `today` is the date expiry is judged against.
pub fn capture_of(
    card: &CardRead,
    device: &DeviceInfo,
    decoder: Option<&WltDecoder>,
    today: CivilDate,
) -> Capture {
    let instant = Instant::now();
    let mut identity = identity_of(card, &device.name, today);
    let decoded = decoder.map(|d| d.decode(&card.photo_wlt));
    match &decoded {
        Some(Ok(_)) => identity.checks.push(Check {
            name: "photo_decoding".into(),
            result: CheckResult::Pass,
            detail: None,
        }),
        Some(Err(e)) => identity.checks.push(Check {
            name: "photo_decoding".into(),
            result: CheckResult::Fail,
            detail: Some(format!("{e}; the raw WLT photo is kept")),
        }),
        None => {}
    }
    let masked_number = card.parsed.number().map(mask_id_number).unwrap_or_default();
    Capture {
        captured_at: SystemTime::now(),
        instant,
        device: device.clone(),
        identity: Some(identity),
        evidence: evidence_of(card, decoded.and_then(Result::ok)),
        summary: format!("{} {masked_number}", card.card_type.as_str()),
        warnings: Vec::new(),
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
    let mut extra_checks = Vec::new();
    match &card.appended_address {
        AppendedAddress::Present(address) => identity.appended_address = Some(address.clone()),
        AppendedAddress::Unreadable(why) => extra_checks.push(Check {
            name: "appended_address_read".into(),
            result: CheckResult::Fail,
            detail: Some(why.clone()),
        }),
        AppendedAddress::Absent | AppendedAddress::NotRequested => {}
    }
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
        .chain(extra_checks)
        .collect();
    identity
}

/// The card's evidence: the raw WLT photo always (decoding needs a vendor library), the decoded
/// BMP when there is one, and the fingerprint templates when they were read (opaque).
fn evidence_of(card: &CardRead, decoded_photo: Option<Vec<u8>>) -> Vec<Evidence> {
    let blob = |role: &str, media_type: &str, bytes: Vec<u8>| Evidence {
        role: role.into(),
        media_type: media_type.into(),
        bytes,
        identity: None,
        label: None,
    };
    let mut evidence = vec![blob(
        "face_photo_wlt",
        "application/octet-stream",
        card.photo_wlt.clone(),
    )];
    if let Some(bmp) = decoded_photo {
        evidence.push(blob("face_photo", "image/bmp", bmp));
    }
    if let Some(fp) = &card.fingerprint {
        evidence.push(blob("fingerprint", "application/octet-stream", fp.clone()));
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use ga467::sim::{FakeCard, fake_cards_all_types};

    fn today() -> CivilDate {
        CivilDate::new(2026, 11, 27).unwrap()
    }

    fn read(fake: &FakeCard) -> CardRead {
        let mut data = vec![0x01, 0x00, 0x04, 0x00];
        data.extend(fake.text);
        data.extend(&fake.photo);
        ga467::reader::parse_read_reply(ga467::Command::ReadTextPhoto, &data).unwrap()
    }

    fn device() -> DeviceInfo {
        DeviceInfo {
            kind: "ga467".into(),
            name: "desk".into(),
            sam_id: Some("00".repeat(16)),
            detail: None,
        }
    }

    #[test]
    fn iso_dates_only_for_real_dates() {
        assert_eq!(iso_date("19491231"), "1949-12-31");
        assert_eq!(iso_date("长期"), "长期");
        assert_eq!(iso_date("2020013"), "2020013");
        assert_eq!(iso_date("20230229"), "20230229");
    }

    #[test]
    fn every_card_type_maps_every_field_and_passes_its_checks() {
        let cards = fake_cards_all_types();
        let identities: Vec<Identity> = cards
            .iter()
            .map(|f| identity_of(&read(f), "desk", today()))
            .collect();
        let documents: Vec<&str> = identities.iter().map(|i| i.document.as_str()).collect();
        assert_eq!(
            documents,
            [
                "resident",
                "resident",
                "resident",
                "foreign_permanent_2017",
                "foreign_permanent_2023",
                "hk_macau_taiwan"
            ]
        );
        for (identity, fake) in identities.iter().zip(&cards) {
            assert_eq!(
                BASE64.decode(identity.text_raw.as_ref().unwrap()).unwrap(),
                fake.text
            );
            assert!(!identity.checks.is_empty());
            for c in &identity.checks {
                assert_eq!(c.result, CheckResult::Pass, "{}: {c:?}", identity.document);
            }
        }
        let [a, _, c, i, y, j] = identities.as_slice() else {
            panic!("six cards")
        };
        assert_eq!(a.name.as_deref(), Some("测试甲"));
        assert_eq!(a.sex.as_ref().unwrap().label.as_deref(), Some("男"));
        assert_eq!(a.nation.as_ref().unwrap().label.as_deref(), Some("汉"));
        assert_eq!(a.birth_date.as_deref(), Some("1990-03-07"));
        assert_eq!(a.valid_until.as_deref(), Some("2040-06-10"));
        assert!(a.address.is_some() && a.issuer.is_some());
        assert_eq!(c.valid_until.as_deref(), Some("long_term"));
        assert_eq!(c.nation.as_ref().unwrap().label.as_deref(), Some("畲"));

        assert_eq!(i.name_en.as_deref(), Some("TESTPERSON, ALPHA"));
        assert_eq!(i.name.as_deref(), Some("测试丁"));
        assert_eq!(i.id_number.as_deref(), Some("CAN110090010001"));
        assert_eq!(i.nationality.as_deref(), Some("CAN"));
        assert_eq!(i.card_version.as_deref(), Some("02"));
        assert_eq!(i.issuer_code.as_deref(), Some("1100"));
        assert_eq!(i.birth_date.as_deref(), Some("1990-01-01"));
        assert_eq!(i.nation, None);

        assert_eq!(
            y.name_en.as_deref(),
            Some("TESTPERSON, ALPHABETA GAMMADELTA EPSILON ZETA")
        );
        assert_eq!(y.renewal_count.as_deref(), Some("00"));
        assert_eq!(y.previous_number_link.as_deref(), Some("BJ1"));
        assert_eq!(y.sex.as_ref().unwrap().label.as_deref(), Some("女"));
        assert!(y.id_number.as_deref().unwrap().starts_with('9'));

        assert_eq!(j.permit_number.as_deref(), Some("H12345678"));
        assert_eq!(j.issue_count.as_deref(), Some("01"));
        assert!(j.address.is_some() && j.issuer.is_some());
        assert!(j.id_number.as_deref().unwrap().starts_with("81"));
    }

    #[test]
    fn failed_checks_are_reported_and_the_card_kept() {
        let mut fake = fake_cards_all_types().remove(0);
        // Corrupt the check character of the number (offset 122 + 17 characters).
        fake.text[122 + 34] = b'0' + (fake.text[122 + 34] - b'0' + 1) % 10;
        let identity = identity_of(&read(&fake), "desk", today());
        let failed: Vec<&str> = identity
            .checks
            .iter()
            .filter(|c| c.result == CheckResult::Fail)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["id_number_checksum"]);
        assert!(identity.id_number.is_some() && identity.name.is_some());
    }

    #[test]
    fn evidence_holds_the_raw_photo_the_decoded_one_and_fingerprints() {
        let fake = fake_cards_all_types().remove(0).with_fingerprints(2, 3);
        let mut card = read(&fake);
        let only_wlt = capture_of(&card, &device(), None, today());
        let roles: Vec<&str> = only_wlt.evidence.iter().map(|e| e.role.as_str()).collect();
        assert_eq!(roles, ["face_photo_wlt"]);
        assert_eq!(only_wlt.evidence[0].bytes, fake.photo);
        assert!(
            !only_wlt
                .identity
                .as_ref()
                .unwrap()
                .checks
                .iter()
                .any(|c| c.name == "photo_decoding")
        );

        card.fingerprint = Some(fake.fingerprint.clone());
        let evidence = evidence_of(&card, Some(vec![b'B', b'M']));
        let roles: Vec<(&str, &str, usize)> = evidence
            .iter()
            .map(|e| (e.role.as_str(), e.media_type.as_str(), e.bytes.len()))
            .collect();
        assert_eq!(
            roles,
            [
                ("face_photo_wlt", "application/octet-stream", 1024),
                ("face_photo", "image/bmp", 2),
                ("fingerprint", "application/octet-stream", 1024)
            ]
        );
    }

    #[test]
    fn appended_address_and_its_failure() {
        let mut card = read(&fake_cards_all_types().remove(0));
        card.appended_address = AppendedAddress::Present("北京市西城区测试街2号".into());
        let identity = identity_of(&card, "desk", today());
        assert_eq!(
            identity.appended_address.as_deref(),
            Some("北京市西城区测试街2号")
        );
        card.appended_address = AppendedAddress::Unreadable("SW3 0x41".into());
        let identity = identity_of(&card, "desk", today());
        assert_eq!(identity.appended_address, None);
        let check = identity
            .checks
            .iter()
            .find(|c| c.name == "appended_address_read")
            .unwrap();
        assert_eq!(check.result, CheckResult::Fail);
    }
}
