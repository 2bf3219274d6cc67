//! Travel documents over PC/SC (ePassports, exit-entry permits): the mapping of a chip read into
//! the record's identity, checks and evidence ([`capture_of`]); one read on demand
//! ([`read_document`], for `countersign read-document` and case-system commands); and the
//! supervisor thread that watches the configured readers (status-change events, no polling
//! loop) and reads a card once an MRZ for it is known. Active Authentication's challenge bound to
//! the station's chain, its checks and its re-check: [`aa`].

use std::time::{Instant, SystemTime};

use ga467::card::CivilDate;
use icao9303::lds::{self, ImageFormat};
use icao9303::mrz::{Mrz, MrzFormat, MrzKey, mask};
use icao9303::pa::{self, CscaStore, Verdict};
use icao9303::{DocumentRead, ReadError};

use super::Capture;
use crate::record::{Check, CheckResult, Coded, DeviceInfo, Evidence, Identity, MrzFields};

fn check(name: &str, result: CheckResult, detail: Option<String>) -> Check {
    Check {
        name: name.into(),
        result,
        detail,
    }
}

fn blob(role: &str, media_type: &str, bytes: Vec<u8>) -> Evidence {
    Evidence {
        role: role.into(),
        media_type: media_type.into(),
        bytes,
        identity: None,
        label: None,
    }
}

/// `document` of the record from the MRZ's document code.
pub fn document_kind(mrz: &Mrz) -> &'static str {
    match mrz.document_code.as_str() {
        "CS" | "CD" => "exit_entry_permit",
        code if code.starts_with('P') => "passport",
        _ => "travel_document",
    }
}

/// `YYMMDD` as a full date: birth dates lie in the past (a year after this one's is last
/// century), expiry dates in this century.
fn full_date(yymmdd: &str, birth: bool, today: CivilDate) -> Option<CivilDate> {
    let yy: u16 = yymmdd.get(0..2)?.parse().ok()?;
    let century = if birth && yy > today.year() % 100 {
        1900
    } else {
        2000
    };
    CivilDate::parse_yyyymmdd(&format!("{}{}", century + yy, yymmdd.get(2..6)?))
}

fn mrz_fields(mrz: &Mrz) -> MrzFields {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    MrzFields {
        format: mrz.format.as_str().into(),
        document_code: mrz.document_code.clone(),
        issuing_state: mrz.issuing_state.clone(),
        document_number: mrz.document_number.clone(),
        birth_date: mrz.birth_date.clone(),
        sex: mrz.sex.clone(),
        expiry_date: mrz.expiry_date.clone(),
        nationality: mrz.nationality.clone(),
        surname: mrz.surname.clone(),
        given_names: mrz.given_names.clone(),
        optional_data: some(&mrz.optional_data),
        encoded_name: mrz.encoded_name.clone(),
        lines: mrz.lines.clone(),
    }
}

fn sex_of(code: &str) -> Coded {
    let label = match code {
        "M" => Some("男"),
        "F" => Some("女"),
        "X" | "<" => Some("未指明"),
        _ => None,
    };
    Coded {
        code: code.into(),
        label: label.map(str::to_string),
    }
}

/// DG11's full name: in the holder's script (Chinese for permits) without fillers.
fn full_name(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let name: String = text.chars().filter(|c| *c != '<').collect();
    (!name.trim().is_empty()).then(|| name.trim().to_string())
}

/// Everything a chip read contributes to a record: the identity with every check (MRZ check
/// digits, the access key against DG1, passive authentication, expiry) and the evidence (the
/// face as JPEG and as stored, EF.SOD and the data groups as read, so a verifier can redo every
/// check). `key` is the MRZ the chip was opened with; `csca` the trusted store, if any.
pub fn capture_of(
    read: &DocumentRead,
    key: &MrzKey,
    device: &DeviceInfo,
    csca: Option<&CscaStore>,
    today: CivilDate,
) -> Capture {
    let instant = Instant::now();
    let mut identity = Identity {
        document: "travel_document".into(),
        device: device.name.clone(),
        access_protocol: Some(read.access.as_str().into()),
        ..Default::default()
    };
    let mut checks = Vec::new();
    let mut evidence = Vec::new();
    let mut number = key.document_number.clone();

    match read.dg(1).map(lds::parse_dg1) {
        Some(Ok(mrz)) => {
            identity.document = document_kind(&mrz).into();
            identity.id_number = Some(mrz.document_number.clone());
            identity.nationality = Some(mrz.nationality.clone()).filter(|n| !n.is_empty());
            identity.sex = Some(sex_of(&mrz.sex));
            identity.name_en = Some(if mrz.given_names.is_empty() {
                mrz.surname.clone()
            } else {
                format!("{}, {}", mrz.surname, mrz.given_names)
            });
            identity.birth_date = Some(
                full_date(&mrz.birth_date, true, today)
                    .map_or(mrz.birth_date.clone(), |d| d.to_string()),
            );
            let expiry = full_date(&mrz.expiry_date, false, today);
            identity.valid_until = Some(expiry.map_or(mrz.expiry_date.clone(), |d| d.to_string()));
            if mrz.format == MrzFormat::Td3 && !mrz.optional_data.is_empty() {
                identity.personal_number = Some(mrz.optional_data.clone());
            }
            for c in &mrz.checks {
                let (result, detail) = match c.ok {
                    Some(true) => (CheckResult::Pass, None),
                    Some(false) => (CheckResult::Fail, Some("check digit does not match".into())),
                    None if mrz.format == MrzFormat::ChinaExitEntry => (
                        CheckResult::Unknown,
                        Some("the composite rule of the CS/CD layout is not confirmed".into()),
                    ),
                    None => (
                        CheckResult::Unknown,
                        Some("characters outside the MRZ alphabet".into()),
                    ),
                };
                checks.push(check(&format!("mrz_{}", c.field), result, detail));
            }
            let same = mrz.key().is_ok_and(|k| k == *key);
            checks.push(check(
                "mrz_matches_access_key",
                if same {
                    CheckResult::Pass
                } else {
                    CheckResult::Fail
                },
                (!same).then(|| {
                    "DG1's number or dates differ from the MRZ the chip was opened with".into()
                }),
            ));
            checks.push(match expiry {
                Some(d) if d >= today => check("not_expired", CheckResult::Pass, None),
                Some(d) => check(
                    "not_expired",
                    CheckResult::Fail,
                    Some(format!("expired on {d}")),
                ),
                None => check(
                    "not_expired",
                    CheckResult::Unknown,
                    Some("expiry date is not a date".into()),
                ),
            });
            number = mrz.document_number.clone();
            identity.mrz = Some(mrz_fields(&mrz));
        }
        Some(Err(e)) => checks.push(check("mrz", CheckResult::Fail, Some(e.to_string()))),
        None => checks.push(check(
            "mrz",
            CheckResult::Fail,
            Some("DG1 was not read".into()),
        )),
    }

    if let Some(bytes) = read.dg(11) {
        match lds::parse_dg11(bytes) {
            Ok(dg11) => {
                identity.name = dg11.full_name.as_deref().and_then(full_name);
                if let Some(date) = dg11
                    .full_birth_date
                    .as_deref()
                    .and_then(CivilDate::parse_yyyymmdd)
                {
                    identity.birth_date = Some(date.to_string());
                }
                identity.place_of_birth = dg11.place_of_birth;
                identity.address = dg11.address;
                if dg11.personal_number.is_some() {
                    identity.personal_number = dg11.personal_number;
                }
            }
            Err(e) => checks.push(check("dg11", CheckResult::Fail, Some(e.to_string()))),
        }
    }
    if let Some(bytes) = read.dg(12) {
        match lds::parse_dg12(bytes) {
            Ok(dg12) => {
                identity.issuer = dg12.issuing_authority;
                identity.valid_from = dg12
                    .issue_date
                    .map(|d| CivilDate::parse_yyyymmdd(&d).map_or(d, |c| c.to_string()));
            }
            Err(e) => checks.push(check("dg12", CheckResult::Fail, Some(e.to_string()))),
        }
    }

    match read.dg(2).map(lds::parse_dg2) {
        Some(Ok(faces)) => {
            if let Some(face) = faces.first() {
                match icao9303::face::to_jpeg(face) {
                    Ok(jpeg) => {
                        evidence.push(blob("face_photo", "image/jpeg", jpeg));
                        if face.format != ImageFormat::Jpeg {
                            checks.push(check("face_conversion", CheckResult::Pass, None));
                        }
                    }
                    Err(e) => checks.push(check(
                        "face_conversion",
                        CheckResult::Fail,
                        Some(format!("{e}; the image as stored is kept")),
                    )),
                }
                evidence.push(blob(
                    "face_photo_original",
                    face.format.media_type(),
                    face.bytes.clone(),
                ));
            }
        }
        Some(Err(e)) => checks.push(check("face_image", CheckResult::Fail, Some(e.to_string()))),
        None => checks.push(check(
            "face_image",
            CheckResult::Fail,
            Some("DG2 was not read".into()),
        )),
    }

    let files: Vec<(u8, &[u8])> = read
        .data_groups
        .iter()
        .map(|(n, b)| (*n, b.as_slice()))
        .collect();
    for c in pa::verify(&read.sod, &files, csca) {
        let result = match c.verdict {
            Verdict::Pass => CheckResult::Pass,
            Verdict::Fail => CheckResult::Fail,
            Verdict::Unknown => CheckResult::Unknown,
        };
        checks.push(check(c.name, result, c.detail));
    }
    // PACE as run (`access_protocol` is PACE), or why a chip that offers it was read with BAC.
    match (&read.pace, &read.pace_not_used) {
        (Some((params, password)), _) => checks.push(check(
            "pace",
            CheckResult::Pass,
            Some(format!("{params}, {password} password")),
        )),
        (None, Some(why)) => checks.push(check(
            "pace_offered",
            CheckResult::Unknown,
            Some(why.clone()),
        )),
        (None, None) if read.pace_offered => checks.push(check(
            "pace_offered",
            CheckResult::Unknown,
            Some(format!(
                "the chip offers PACE; it was read with {}",
                read.access.as_str()
            )),
        )),
        (None, None) => {}
    }
    // Chip authentication (a clone's chip fails it): the detail starts with the outcome.
    checks.push(aa::check("chip_authentication", &read.chip_authentication));
    // Active Authentication (Chinese passports' clone protection), and every listed group read.
    checks.push(aa::check(
        "active_authentication",
        &read.active_authentication,
    ));
    checks.push(aa::data_groups_check(read));
    identity.checks = checks;
    identity.active_authentication = aa::exchange_record(read);

    evidence.push(blob("sod", "application/octet-stream", read.sod.clone()));
    // By data group number (DG14, read first for chip authentication, comes last).
    let mut groups: Vec<&(u8, Vec<u8>)> = read.data_groups.iter().collect();
    groups.sort_by_key(|(n, _)| *n);
    for (n, bytes) in groups {
        evidence.push(blob(
            &format!("dg{n}"),
            "application/octet-stream",
            bytes.clone(),
        ));
    }
    Capture {
        captured_at: SystemTime::now(),
        instant,
        device: device.clone(),
        summary: format!("{} {}", identity.document, mask(&number)),
        warnings: Vec::new(),
        identity: Some(identity),
        evidence,
    }
}

/// Loads the CSCA store from files; `None` when there are none.
pub fn load_csca(files: &[std::path::PathBuf]) -> Result<Option<CscaStore>, String> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut store = CscaStore::default();
    for f in files {
        store.add_file(f)?;
    }
    Ok(Some(store))
}

/// Why a read on demand failed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("PC/SC is not available: {0} (is pcscd running?)")]
    NoService(String),
    #[error("no reader matches {0:?} (readers: {1})")]
    NoReader(String, String),
    #[error("no card on reader {0}")]
    NoCard(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("this build has no PC/SC support (built without the `pcsc` feature)")]
    Unsupported,
}

/// Options of a read on demand.
#[derive(Debug, Clone, Default)]
pub struct ReadSettings {
    pub block_size: Option<usize>,
    /// The card access number (six digits), when known: PACE runs with it instead of the MRZ.
    pub can: Option<String>,
    /// Do not run chip authentication (measurements; the record's check says `skipped`).
    pub skip_chip_authentication: bool,
    /// Do not run Active Authentication (measurements; the check says `skipped`).
    pub skip_active_authentication: bool,
    /// Ask for Active Authentication's answer with an extended Le (`[pcsc] extended_length`).
    pub extended_length: bool,
    /// The station's chain, which Active Authentication's challenge is bound to; a random
    /// challenge when `None`.
    pub chain: Option<ChainHead>,
}

/// An MRZ file: MRZ text (TD1, TD2, TD3, CS/CD), or `number birth expiry` separated by
/// whitespace.
pub fn parse_mrz_file(path: &std::path::Path) -> Result<MrzKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_mrz_text(&text)
}

pub fn parse_mrz_text(text: &str) -> Result<MrzKey, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if let [number, birth, expiry] = words[..]
        && number.len() <= 22
        && birth.len() <= 10
        && expiry.len() <= 10
    {
        return MrzKey::new(number, birth, expiry).map_err(|e| e.to_string());
    }
    MrzKey::from_mrz_text(text).map_err(|e| e.to_string())
}

#[cfg(feature = "pcsc")]
pub use backend::{read_document, spawn};

#[cfg(not(feature = "pcsc"))]
/// Without PC/SC support every read fails with [`DocumentError::Unsupported`].
pub fn read_document(
    _reader: &str,
    _key: &MrzKey,
    _csca: Option<&CscaStore>,
    _settings: &ReadSettings,
) -> Result<(Capture, DocumentRead), DocumentError> {
    Err(DocumentError::Unsupported)
}

#[cfg(feature = "pcsc")]
mod backend;

pub mod aa;
pub use aa::ChainHead;

#[cfg(test)]
mod tests;
