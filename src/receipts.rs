//! Receipts: the case system's signed answers on `countersign/v1/<station>/acks`.
//!
//! An answer takes a record out of the station (`stored` deletes it, `rejected` moves it to the
//! dead letters) or moves a blob transfer on (`progress`), so it is as strong as a command: a
//! compact JWS by a trusted case-system key, `typ: "vnd.countersign.ack+jws"`, whose payload is
//!
//! ```json
//! {"station": "window-03", "record_id": "...", "status": "stored",
//!  "record_sha256": "sha256:<hex of the record message's exact bytes>", "iat": 1764237600}
//! ```
//!
//! (`rejected` adds `"reason"`; `progress` names `blob_id`, `next_offset` and `blob_sha256`, the
//! blob's wire hash every chunk carries, instead of `record_sha256`: progress is reported before
//! the record itself is sent). The hash binds a receipt to the bytes it answers, so it cannot be
//! replayed onto another record; the outbox compares it with what it holds before it changes
//! anything ([`crate::outbox::Settle`]). A `stored` receipt is kept after the record leaves, for
//! both sides' auditors (`countersign outbox receipts`, `countersign verify --receipts`).
//!
//! Unsigned JSON answers (the format before receipts) are accepted only when the configuration
//! says so ([`Policy`]); refusals are counted and logged by the uplink, never answered.

use serde::{Deserialize, Serialize};

use crate::record::jose::JoseError;
use crate::record::jws;
use crate::record::keys::{Keyring, StationKey};

/// The JWS `typ` of a receipt.
pub const ACK_TYP: &str = "vnd.countersign.ack+jws";

/// Longest rejection reason kept (the rest is cut, on a character boundary).
const MAX_REASON: usize = 256;

/// What the case system says about a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and verified: the record may leave the outbox.
    Stored,
    /// Refused for good: the record goes to the dead letters.
    Rejected { reason: String },
    /// The case system holds the first `next_offset` bytes of the blob's wire form.
    Progress { blob_id: String, next_offset: u64 },
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Progress { .. } => "progress",
        }
    }
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub record_id: String,
    pub outcome: Outcome,
    /// `sha256:<hex>` of the record (stored, rejected) or of the blob (progress) the answer is
    /// bound to; None for an unsigned answer, which binds to nothing.
    pub bound_to: Option<String>,
    /// The signature's facts, for a signed answer.
    pub signed: Option<Signed>,
}

/// Who signed a receipt, when, and the receipt itself (kept for audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub kid: String,
    pub alg: String,
    pub iat: i64,
    pub jws: String,
}

/// Why an answer was refused: `code` is the metrics label and log reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

impl Refusal {
    fn new(code: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            code,
            detail: detail.into(),
        }
    }
}

/// Every refusal code, in the order `/metrics` lists them.
pub const REFUSAL_CODES: [&str; 6] = [
    "unsigned",
    "bad_signature",
    "wrong_station",
    "wrong_hash",
    "stale",
    "malformed",
];

/// The signed payload. Unknown fields are refused: a field we ignore could change what the
/// signer meant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    station: String,
    record_id: String,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob_sha256: Option<String>,
    iat: i64,
}

const CLAIM_FIELDS: &[&str] = &["station", "record_id", "status", "iat"];
const CLAIM_SHAPE: &str = "{\"station\", \"record_id\", \"status\": \"stored\"|\"rejected\"|\"progress\", \"record_sha256\" or \"blob_id\"+\"next_offset\"+\"blob_sha256\", \"iat\"}";

/// The unsigned answer of stations before receipts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsigned {
    record_id: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    blob_id: Option<String>,
    #[serde(default)]
    next_offset: Option<u64>,
}

const UNSIGNED_FIELDS: &[&str] = &["record_id", "status"];
const UNSIGNED_SHAPE: &str =
    "{\"record_id\", \"status\"[, \"reason\" | \"blob_id\", \"next_offset\"]}";

/// How answers are trusted.
pub struct Policy {
    pub station: String,
    pub keys: Keyring,
    /// The key ids, for the start line.
    pub kids: Vec<String>,
    /// Accept the unsigned JSON answers of stations before receipts (trusting the broker's ACLs).
    pub accept_unsigned: bool,
    /// Why unsigned answers are accepted (None: they are not), for the start line.
    pub unsigned_because: Option<&'static str>,
    /// The gm profile: only SM2 signatures.
    pub sm2_only: bool,
    /// How far `iat` may be from the station's clock, either way, seconds. Receipts are bound
    /// to the bytes they answer, so freshness only narrows replays of old answers onto the same
    /// record (a rejection replayed after `outbox retry`); it is generous so that a kit whose
    /// clock drifted while offline still drains.
    pub max_age_secs: i64,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("station", &self.station)
            .field("kids", &self.kids)
            .field("accept_unsigned", &self.accept_unsigned)
            .field("sm2_only", &self.sm2_only)
            .field("max_age_secs", &self.max_age_secs)
            .finish()
    }
}

impl Policy {
    /// The policy `[acks]` (and `[commands]`) describe. `upgraded`: the outbox held records
    /// before receipts existed (see `outbox::Outbox::upgraded_before_receipts`).
    pub fn from_config(config: &crate::config::Config, upgraded: bool) -> anyhow::Result<Policy> {
        let acks = &config.acks;
        let sm2_only = config.crypto.profile == crate::config::Profile::Gm;
        let paths = acks.keys(&config.commands);
        let key_setting = if acks.trusted_keys.is_empty() {
            "commands.trusted_keys (used for receipts as [acks] trusted_keys is empty)"
        } else {
            "acks.trusted_keys"
        };
        let (keys, kids) = crate::commands::load_keys(paths, sm2_only, key_setting)?;
        let unsigned_because = match acks.accept_unsigned {
            Some(true) => Some("[acks] accept_unsigned = true"),
            Some(false) => None,
            None if config.commands.trust_broker_acls => {
                Some("[commands] trust_broker_acls = true and [acks] accept_unsigned is not set")
            }
            None if upgraded => Some(
                "this station was upgraded from a version before signed receipts and [acks] accept_unsigned is not set",
            ),
            None => None,
        };
        Ok(Policy {
            station: config.station.id.to_string(),
            keys,
            kids,
            accept_unsigned: unsigned_because.is_some(),
            unsigned_because,
            sm2_only,
            max_age_secs: acks.max_age_secs.get() as i64,
        })
    }

    /// Unsigned answers only, no keys: for tests and tools on loopback (`UplinkOptions::loopback`).
    pub fn trusting_broker(station: &str) -> Policy {
        Policy {
            station: station.to_string(),
            keys: Keyring::default(),
            kids: Vec::new(),
            accept_unsigned: true,
            unsigned_because: Some("the uplink was built for a test or tool"),
            sm2_only: false,
            max_age_secs: 86_400,
        }
    }

    /// Says at start what answers the station accepts (warnings where it is weaker than it
    /// should be).
    pub fn log_start(&self) {
        let signed = if self.kids.is_empty() {
            "no case-system key is configured for receipts".to_string()
        } else {
            format!(
                "receipts signed by {} accepted ({})",
                if self.kids.len() == 1 {
                    "one case-system key".to_string()
                } else {
                    format!("{} case-system keys", self.kids.len())
                },
                self.kids.join(", ")
            )
        };
        match (self.unsigned_because, self.kids.is_empty()) {
            (Some(why), _) => tracing::warn!(
                "answers: {signed}; unsigned answers accepted too, because {why}: anyone who can \
                 publish on the acks topic can take records out of the outbox. Set [acks] \
                 accept_unsigned = false once the case system signs its answers"
            ),
            (None, true) => tracing::warn!(
                "answers: {signed} and unsigned answers are refused: no record can leave the \
                 outbox. Set [acks] trusted_keys (or [commands] trusted_keys) to the case \
                 system's public key"
            ),
            (None, false) => tracing::info!("answers: {signed}; unsigned answers refused"),
        }
    }
}

fn id_ok(what: &str, id: &str) -> Result<(), Refusal> {
    if id.is_empty() || id.len() > 64 {
        return Err(Refusal::new(
            "malformed",
            format!("{what} must be 1 to 64 characters"),
        ));
    }
    Ok(())
}

/// `sha256:` and 64 lowercase hex digits.
fn hash_ok(what: &str, hash: Option<&String>) -> Result<String, Refusal> {
    match hash {
        Some(h)
            if h.len() == 71
                && h.starts_with("sha256:")
                && h[7..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(h.clone())
        }
        Some(_) => Err(Refusal::new(
            "malformed",
            format!("{what} must be \"sha256:\" and 64 lowercase hex digits"),
        )),
        None => Err(Refusal::new("malformed", format!("{what} is required"))),
    }
}

fn cut_reason(reason: Option<String>) -> String {
    let mut reason = reason.unwrap_or_else(|| "no reason given".into());
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// The outcome a status names, with its own fields.
fn outcome(
    status: &str,
    reason: Option<String>,
    blob_id: Option<String>,
    next_offset: Option<u64>,
) -> Result<Outcome, Refusal> {
    match status {
        "stored" => Ok(Outcome::Stored),
        "rejected" => Ok(Outcome::Rejected {
            reason: cut_reason(reason),
        }),
        "progress" => {
            let blob_id = blob_id.unwrap_or_default();
            id_ok("blob_id", &blob_id)?;
            let next_offset = next_offset
                .ok_or_else(|| Refusal::new("malformed", "a progress report needs next_offset"))?;
            Ok(Outcome::Progress {
                blob_id,
                next_offset,
            })
        }
        _ => Err(Refusal::new(
            "malformed",
            "status must be stored, rejected or progress",
        )),
    }
}

/// Verifies a receipt's signature and reads it, without the station's freshness rules (for
/// `countersign verify`, which checks receipts long after they were issued). Returns the answer
/// and the station it names.
pub fn open(jws_bytes: &[u8], keys: &Keyring, sm2_only: bool) -> Result<(Answer, String), Refusal> {
    let verified = jws::verify(jws_bytes, keys).map_err(|e| {
        let code = match e {
            JoseError::Malformed(_) => "malformed",
            _ => "bad_signature",
        };
        Refusal::new(code, e.to_string())
    })?;
    if sm2_only && verified.header.alg != "SM2" {
        return Err(Refusal::new(
            "bad_signature",
            "the gm profile accepts only SM2-signed receipts",
        ));
    }
    if verified.header.typ.as_deref() != Some(ACK_TYP) {
        return Err(Refusal::new(
            "malformed",
            format!("JWS typ must be {ACK_TYP}"),
        ));
    }
    let claims: Claims = serde_json::from_slice(&verified.payload).map_err(|e| {
        let detail = crate::commands::json_refusal(&e, "the receipt", CLAIM_FIELDS, CLAIM_SHAPE);
        Refusal::new("malformed", detail)
    })?;
    id_ok("record_id", &claims.record_id)?;
    let outcome = outcome(
        &claims.status,
        claims.reason,
        claims.blob_id,
        claims.next_offset,
    )?;
    let bound_to = match outcome {
        Outcome::Progress { .. } => hash_ok("blob_sha256", claims.blob_sha256.as_ref())?,
        _ => hash_ok("record_sha256", claims.record_sha256.as_ref())?,
    };
    let signed = Signed {
        kid: verified.header.kid.unwrap_or_default(),
        alg: verified.header.alg,
        iat: claims.iat,
        // A verified compact JWS is ASCII.
        jws: String::from_utf8_lossy(jws_bytes.trim_ascii()).into_owned(),
    };
    Ok((
        Answer {
            record_id: claims.record_id,
            outcome,
            bound_to: Some(bound_to),
            signed: Some(signed),
        },
        claims.station,
    ))
}

impl Policy {
    /// Authenticates and reads one message from the acks topic. The hash is checked later,
    /// against the outbox, in the transaction that applies the answer.
    pub fn check(&self, payload: &[u8], now: i64) -> Result<Answer, Refusal> {
        // JSON starts with `{`; a compact JWS never does (base64url).
        if payload.trim_ascii_start().first() == Some(&b'{') {
            return self.check_unsigned(payload);
        }
        let (answer, station) = open(payload, &self.keys, self.sm2_only)?;
        if station != self.station {
            return Err(Refusal::new(
                "wrong_station",
                format!("the receipt is for station {station:?}"),
            ));
        }
        let iat = answer.signed.as_ref().map_or(0, |s| s.iat);
        // abs_diff cannot overflow: an `iat` of i64::MIN is stale, not wrapped into the window.
        if now.abs_diff(iat) > self.max_age_secs.unsigned_abs() {
            return Err(Refusal::new(
                "stale",
                format!(
                    "issued at {iat} but the station's clock says {now} (allowed: {} s either way)",
                    self.max_age_secs
                ),
            ));
        }
        Ok(answer)
    }

    fn check_unsigned(&self, payload: &[u8]) -> Result<Answer, Refusal> {
        if !self.accept_unsigned {
            return Err(Refusal::new(
                "unsigned",
                "answers must be a JWS signed by a trusted case-system key ([acks] accept_unsigned is off)",
            ));
        }
        let raw: Unsigned = serde_json::from_slice(payload).map_err(|e| {
            let detail =
                crate::commands::json_refusal(&e, "the answer", UNSIGNED_FIELDS, UNSIGNED_SHAPE);
            Refusal::new("malformed", detail)
        })?;
        id_ok("record_id", &raw.record_id)?;
        Ok(Answer {
            record_id: raw.record_id,
            outcome: outcome(&raw.status, raw.reason, raw.blob_id, raw.next_offset)?,
            bound_to: None,
            signed: None,
        })
    }
}

/// What a receipt says, for [`sign`].
pub struct Claim<'a> {
    pub station: &'a str,
    pub record_id: &'a str,
    pub outcome: &'a Outcome,
    /// `sha256:<hex>` of the record (stored, rejected) or blob (progress).
    pub sha256: &'a str,
    pub iat: i64,
}

/// Signs a receipt (the demo's case system, tests, and integrators' reference).
pub fn sign(key: &StationKey, claim: &Claim<'_>) -> String {
    let (mut record_sha256, mut blob_sha256) = (None, None);
    let (mut reason, mut blob_id, mut next_offset) = (None, None, None);
    match claim.outcome {
        Outcome::Stored => record_sha256 = Some(claim.sha256.to_string()),
        Outcome::Rejected { reason: r } => {
            record_sha256 = Some(claim.sha256.to_string());
            reason = Some(r.clone());
        }
        Outcome::Progress {
            blob_id: b,
            next_offset: n,
        } => {
            blob_sha256 = Some(claim.sha256.to_string());
            blob_id = Some(b.clone());
            next_offset = Some(*n);
        }
    }
    let claims = Claims {
        station: claim.station.to_string(),
        record_id: claim.record_id.to_string(),
        status: claim.outcome.status().to_string(),
        reason,
        record_sha256,
        blob_id,
        next_offset,
        blob_sha256,
        iat: claim.iat,
    };
    jws::sign(
        &jws::Header {
            alg: String::new(),
            kid: Some(key.kid.clone()),
            typ: Some(ACK_TYP.into()),
        },
        &serde_json::to_vec(&claims).unwrap_or_default(),
        &key.signing,
    )
}

/// `sha256:<hex>` of some bytes (a record's wire form), as receipts name it.
pub fn sha256_ref(bytes: &[u8]) -> String {
    crate::record::chain_hash(bytes)
}

pub mod audit;

#[cfg(test)]
mod tests;
