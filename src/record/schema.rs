//! The record payload, schema `countersign.record.v1` (documented in `docs/record-format.md`,
//! JSON Schema in `docs/record.schema.json`). Field names are stable English snake_case; absent
//! values are omitted. Personal data appears only here, inside the signed (and, on the wire,
//! encrypted) payload; never in topics, MQTT properties, file names or info-level logs.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "countersign.record.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    /// UUIDv7: unique, time-ordered, no personal data.
    pub record_id: String,
    /// `capture` (identities and evidence) or `checkpoint` (chain head attestation).
    pub kind: RecordKind,
    pub station: String,
    /// The signing key's `kid` (RFC 7638 thumbprint); also in the JWS header.
    pub station_kid: String,
    /// Per-station sequence number: 1, 2, 3... never reused, survives restarts.
    pub seq: u64,
    /// `sha256:<hex>` of the previous record's exact wire bytes; absent for a station's first record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// When the first item was captured (RFC 3339, UTC, milliseconds).
    pub captured_at: String,
    /// When the record was sealed and committed.
    pub sealed_at: String,
    /// The case system key the wire form is encrypted to (binds the recipient inside the signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_kid: Option<String>,
    /// Where the station is (its configured location: a counter's office, a mobile kit's site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Case and operator references when the case system supplied them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// Evidence blobs sent separately; each is bound here by its SHA-256 and size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceRef>,
    /// Present on checkpoint records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Capture,
    Checkpoint,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Attests the chain head: every record up to `seq` (this one included) hashes to `head`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Records this station has sealed so far, this checkpoint included (equals `seq`).
    pub count: u64,
    /// Same as `prev`: the hash of the last record before this checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device family: `ga467` (ID card SAM reader), later `camera`, `sane`, `folder`, `pcsc`.
    pub kind: String,
    /// The device's name in the configuration.
    pub name: String,
    /// GA 467 readers: the SAM module's 16-byte id, hex, as read (`12 FF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sam_id: Option<String>,
    /// Free-form model or port description (never personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A code as printed on the card with its meaning; `label` is absent for codes outside the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coded {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One identity document as read. Which fields are present depends on `document`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// `resident` (居民身份证), `foreign_permanent_2017` ('I'), `foreign_permanent_2023` ('Y'),
    /// `hk_macau_taiwan` ('J' residence permit); travel documents read over PC/SC: `passport`,
    /// `exit_entry_permit` (CS/CD), `travel_document` (other TD1/TD2 documents).
    pub document: String,
    /// The device (by name in `devices`) it was read with.
    pub device: String,
    /// Chinese name (姓名 / 中文姓名).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// English name (foreign cards; the 2023 card's two parts joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Coded>,
    /// 民族, resident cards (GB 3304 code and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nation: Option<Coded>,
    /// Nationality or region, alpha-3 (foreign cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// `YYYY-MM-DD` when the card holds a well-formed YYYYMMDD, else the card's text unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// 追加住址 (`30 03`), when the card has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appended_address: Option<String>,
    /// The document number (公民身份号码, 永久居留证号码...). Always a string: IDs exceed 2^53
    /// and may end in X.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// 签发机关.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// 当次申请受理机关代码 ('I' cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// A date as for `birth_date`, or `long_term` (长期).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// 证件版本号 ('I' cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_version: Option<String>,
    /// 换证次数 ('Y' cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_count: Option<String>,
    /// 既往版本证件号码关联项 ('Y' cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_number_link: Option<String>,
    /// 通行证号码 ('J' permits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_number: Option<String>,
    /// 签发次数 ('J' permits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_count: Option<String>,
    /// The raw 256-byte text block (base64): every field above derives from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_raw: Option<String>,
    /// Travel documents: the MRZ as stored in the chip's DG1, field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrz: Option<MrzFields>,
    /// Travel documents: how the chip was accessed (`PACE` or `BAC`; the `pace` check says
    /// with which parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_protocol: Option<String>,
    /// Travel documents: DG11 personal number (or the TD3 MRZ's optional data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_number: Option<String>,
    /// Travel documents: DG11 place of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_birth: Option<String>,
    /// Checks run on the document; a failed check is reported, never "fixed".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Travel documents: Active Authentication's exchange, enough to re-check it from the record
    /// alone (`countersign verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_authentication: Option<ActiveAuthenticationRecord>,
}

/// Active Authentication as it happened: the challenge's inputs, the challenge, DG15 and the
/// chip's answer. With `bound_record` the challenge is `SHA-256(...)[..8]` over the documented
/// encoding of `station`, `bound_seq`, `bound_record` and `read_at` (`docs/record-format.md`):
/// the answer then proves the chip signed after that record was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActiveAuthenticationRecord {
    /// `chain` (derived from the station's chain at read time) or `random`.
    pub challenge_source: String,
    /// The 8-byte challenge sent in INTERNAL AUTHENTICATE, hex.
    pub challenge: String,
    /// `chain` challenges: the station id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// `chain` challenges: `seq` and `sha256:<hex>` of the station's last sealed record when the
    /// read began (absent for a station with no record yet). It may be older than this record's
    /// `prev` when other records were sealed between the read and this record's sealing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_record: Option<String>,
    /// `chain` challenges: the read's start, RFC 3339 UTC with milliseconds (station clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
    /// DG15 as read (base64): the public key the answer is checked with.
    pub dg15: String,
    /// The chip's answer to INTERNAL AUTHENTICATE (base64).
    pub signature: String,
    /// ECDSA keys: the hash DG14's ActiveAuthenticationInfo names (`SHA-256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdsa_hash: Option<String>,
}

/// The MRZ of a travel document as the chip stores it (DG1). Dates stay `YYMMDD` as in the MRZ;
/// the identity's `birth_date` and `valid_until` carry them as full dates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MrzFields {
    /// `TD1`, `TD2`, `TD3` or `CS/CD` (the Chinese exit-entry permits' 3×30 layout).
    pub format: String,
    /// `P`, `PO`, `I`, `CS`, `CD`...
    pub document_code: String,
    pub issuing_state: String,
    pub document_number: String,
    pub birth_date: String,
    pub sex: String,
    pub expiry_date: String,
    pub nationality: String,
    pub surname: String,
    pub given_names: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_data: Option<String>,
    /// CS/CD permits: the 12-character encoded Chinese name of line 2, as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_name: Option<String>,
    /// The MRZ lines as stored.
    pub lines: Vec<String>,
}

/// One check run on an identity document. A failed check is a warning on the record; the
/// document is kept as read.
///
/// GA 467 ID cards (`ga467::card::checks` has the exact rules):
/// - `text_decoding`: every text field decoded without invalid UTF-16;
/// - `card_type_consistent`: the number fits the card's type mark (resident, 'I', 'Y', 'J');
/// - `id_number_checksum`: GB 11643 MOD 11-2 check character (resident, 'Y', 'J');
/// - `sex_code_known`, `nation_code_known`: codes are in GB/T 2261.1 and GB 3304;
/// - `birth_date_valid`: a real calendar date, not in the future;
/// - `birth_date_matches_id`, `sex_matches_id`: against number digits 7–14 and 17;
/// - `validity_period`: real, ordered dates; resident cards also follow the age rule
///   (5/10/20 years or long-term);
/// - `not_expired`: the end of validity is today or later (China time), or long-term;
/// - `appended_address_read`: present only when reading the appended address failed;
/// - `photo_decoding`: present only when a WLT decoder is configured; fails when it could not
///   decode the photo (the raw WLT is kept either way).
///
/// Travel documents (`icao9303::pa` and `devices::pcsc` have the exact rules):
/// - `mrz_document_number`, `mrz_birth_date`, `mrz_expiry_date`, `mrz_personal_number`,
///   `mrz_composite`: the check digits of DG1's MRZ;
/// - `mrz_matches_access_key`: DG1's number and dates are those the chip was opened with;
/// - `sod_hashes`: every data group read hashes to its value in EF.SOD (fail names the group);
/// - `sod_signature`: the document signer's CMS signature over the security object;
/// - `csca_chain`: the signer's certificate chains to a configured CSCA (`unknown` when none is
///   configured or the algorithm is not supported, never `fail` for that);
/// - `pace`: present (`pass`) when read with PACE; the detail names mapping, curve, cipher and
///   password (`ECDH-GM brainpoolP256r1 AES-128, MRZ password`);
/// - `pace_offered`: present when the chip offers PACE but was read with BAC (`unknown`, the
///   detail says why);
/// - `chip_authentication`: the chip holds the private key of DG14's public key (not a clone);
///   the detail starts with `passed`, `failed`, `not_trusted` (DG14 failed passive
///   authentication), `not_offered`, `not_supported` or `skipped` (the last three `unknown`);
/// - `active_authentication`: the chip holds the private key of DG15's public key (Active
///   Authentication); the same outcomes and results as `chip_authentication`, `not_trusted` when
///   DG15's hash or EF.SOD's signature fails (the exchange is in `active_authentication`);
/// - `sod_data_groups`: every data group EF.COM or EF.SOD lists was read and hashed (`pass`), or
///   which were not and why (`unknown`);
/// - `face_conversion`: the DG2 image could be converted to JPEG (the original is kept);
/// - `not_expired`: the expiry date is today or later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// e.g. `id_number_checksum`, `birth_date_valid`, `birth_date_matches_id`,
    /// `sex_matches_id`, `validity_period`, `not_expired`, `card_type_consistent`.
    pub name: String,
    pub result: CheckResult,
    /// Why, when it did not pass (no personal data beyond what the record already holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Pass,
    Fail,
    /// Could not be decided (e.g. a rule the reference marks unverified).
    Unknown,
}

/// An evidence blob in the record's manifest. The blob itself travels separately (encrypted to
/// the same recipient); these fields bind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// Unique id of the blob (UUIDv7); its wire file and chunk messages carry this id.
    pub blob_id: String,
    /// `face_photo_wlt` (raw 1024-byte WLT), `face_photo` (decoded image), `fingerprint`,
    /// `page` (a scanned page); travel documents: `face_photo_original` (DG2's image as stored),
    /// `sod` (EF.SOD) and `dg1`, `dg2`, `dg11`, `dg12`, `dg14` (the data groups as read), ...
    pub role: String,
    /// Media type of the plaintext, e.g. `image/jpeg`, `application/octet-stream`.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// `sha256:<hex>` of the plaintext bytes.
    pub sha256: String,
    /// Index into `identities` when the blob belongs to one (photo, fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<usize>,
    /// The case system's label for a page (`household_register`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_record() -> Record {
        Record {
            schema: SCHEMA.into(),
            record_id: "0193b3c4-0000-7000-8000-000000000001".into(),
            kind: RecordKind::Capture,
            station: "window-01".into(),
            station_kid: "kid".into(),
            seq: 1,
            prev: None,
            captured_at: "2026-11-27T10:00:00.000Z".into(),
            sealed_at: "2026-11-27T10:00:00.010Z".into(),
            recipient_kid: None,
            location: None,
            case: None,
            devices: vec![DeviceInfo {
                kind: "ga467".into(),
                name: "desk".into(),
                sam_id: Some("00".repeat(16)),
                detail: None,
            }],
            identities: vec![Identity {
                document: "resident".into(),
                device: "desk".into(),
                name: Some("测试甲".into()),
                sex: Some(Coded {
                    code: "1".into(),
                    label: Some("男".into()),
                }),
                nation: Some(Coded {
                    code: "01".into(),
                    label: Some("汉".into()),
                }),
                birth_date: Some("1949-12-31".into()),
                address: Some("北京市东城区测试路1号".into()),
                id_number: Some("11010519491231002X".into()),
                issuer: Some("北京市公安局东城分局".into()),
                valid_from: Some("2010-01-01".into()),
                valid_until: Some("long_term".into()),
                checks: vec![Check {
                    name: "id_number_checksum".into(),
                    result: CheckResult::Pass,
                    detail: None,
                }],
                ..Default::default()
            }],
            evidence: vec![EvidenceRef {
                blob_id: "0193b3c4-0000-7000-8000-000000000002".into(),
                role: "face_photo_wlt".into(),
                media_type: "application/octet-stream".into(),
                size: 1024,
                sha256: format!("sha256:{}", "ab".repeat(32)),
                identity: Some(0),
                label: None,
            }],
            checkpoint: None,
        }
    }
}
