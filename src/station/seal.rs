//! Sealing: turns what was captured into a record, signs it and commits it to the outbox in one
//! transaction with the chain link. Blocking (SQLite, signing); the station calls it on a blocking
//! thread, benchmarks and tools call it directly.

use std::time::SystemTime;

use time::OffsetDateTime;

use super::Crypto;
use crate::devices::Capture;
use crate::outbox::{Outbox, OutboxError};
use crate::record::{
    self, CaseRef, Checkpoint, DeviceInfo, Evidence, EvidenceRef, Identity, Record, RecordKind,
    Sealed, SealedBlob,
};

/// What goes into one capture record.
#[derive(Debug)]
pub struct RecordContents {
    pub captured_at: SystemTime,
    pub case: Option<CaseRef>,
    /// The station's location from its configuration (mobile kits: where the kit is used).
    pub location: Option<String>,
    pub devices: Vec<DeviceInfo>,
    pub identities: Vec<Identity>,
    pub evidence: Vec<Evidence>,
}

/// Record contents whose evidence is already encrypted (a session's, sealed as it was captured).
#[derive(Debug)]
pub struct PreparedContents {
    pub captured_at: SystemTime,
    pub case: Option<CaseRef>,
    pub location: Option<String>,
    pub devices: Vec<DeviceInfo>,
    pub identities: Vec<Identity>,
    pub evidence: Vec<EvidenceRef>,
}

impl RecordContents {
    /// A record holding one capture; its evidence belongs to its identity, if any.
    pub fn from_capture(capture: Capture) -> RecordContents {
        let has_identity = capture.identity.is_some();
        let evidence = capture
            .evidence
            .into_iter()
            .map(|mut e| {
                if has_identity && e.identity.is_none() && e.label.is_none() {
                    e.identity = Some(0);
                }
                e
            })
            .collect();
        RecordContents {
            captured_at: capture.captured_at,
            case: None,
            location: None,
            devices: vec![capture.device],
            identities: capture.identity.into_iter().collect(),
            evidence,
        }
    }
}

/// A committed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub record_id: String,
    pub seq: u64,
}

/// RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    // Always three fractional digits (the well-known Rfc3339 format trims trailing zeros, and the
    // record schema promises milliseconds). Formatting a valid UTC time cannot fail.
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from(t).format(FORMAT).unwrap_or_default()
}

/// Encrypts evidence to the case system: the manifest entries (plaintext hash and size) and the
/// blobs' wire forms, sharing fresh blob ids.
pub fn seal_evidence(
    evidence: Vec<Evidence>,
    station: &str,
    crypto: &Crypto,
) -> Result<(Vec<EvidenceRef>, Vec<SealedBlob>), record::jose::JoseError> {
    let mut manifest = Vec::with_capacity(evidence.len());
    let mut blobs = Vec::with_capacity(evidence.len());
    for e in evidence {
        let blob_id = uuid::Uuid::now_v7().to_string();
        manifest.push(EvidenceRef {
            blob_id: blob_id.clone(),
            role: e.role.clone(),
            media_type: e.media_type.clone(),
            size: e.bytes.len() as u64,
            sha256: record::chain_hash(&e.bytes),
            identity: e.identity,
            label: e.label.clone(),
        });
        let wire = record::seal_blob(&e.bytes, &crypto.recipient, station)?;
        blobs.push(SealedBlob { blob_id, wire });
    }
    Ok((manifest, blobs))
}

/// Seals `contents` as the station's next record and commits it with its blobs. Returns once the
/// commit is durable.
pub fn commit(
    outbox: &mut Outbox,
    station: &str,
    crypto: &Crypto,
    contents: RecordContents,
) -> Result<Committed, OutboxError> {
    // Blobs are encrypted before the transaction (the slow part for large pages).
    let (evidence, blobs) =
        seal_evidence(contents.evidence, station, crypto).map_err(|err| OutboxError::Seal {
            path: outbox.path().to_path_buf(),
            reason: err.to_string(),
        })?;
    let prepared = PreparedContents {
        captured_at: contents.captured_at,
        case: contents.case,
        location: contents.location,
        devices: contents.devices,
        identities: contents.identities,
        evidence,
    };
    commit_prepared(outbox, station, crypto, prepared, blobs)
}

/// Commits a capture record whose evidence is already sealed; `blobs` are the wire forms not yet
/// in the outbox (a session's are absorbed from its own table, see `Outbox::absorb_session_*`).
pub fn commit_prepared(
    outbox: &mut Outbox,
    station: &str,
    crypto: &Crypto,
    contents: PreparedContents,
    blobs: Vec<SealedBlob>,
) -> Result<Committed, OutboxError> {
    let record = Record {
        schema: record::SCHEMA.into(),
        record_id: uuid::Uuid::now_v7().to_string(),
        kind: RecordKind::Capture,
        station: station.to_string(),
        station_kid: crypto.key.kid.clone(),
        seq: 0,
        prev: None,
        captured_at: rfc3339(contents.captured_at),
        sealed_at: String::new(),
        recipient_kid: Some(crypto.recipient.kid.clone()),
        location: contents.location,
        case: contents.case,
        devices: contents.devices,
        identities: contents.identities,
        evidence: contents.evidence,
        checkpoint: None,
    };
    append(outbox, crypto, record, blobs)
}

/// Seals a checkpoint: a record attesting the chain head and the count of records so far.
pub fn checkpoint(
    outbox: &mut Outbox,
    station: &str,
    crypto: &Crypto,
) -> Result<Committed, OutboxError> {
    let now = SystemTime::now();
    let record = Record {
        schema: record::SCHEMA.into(),
        record_id: uuid::Uuid::now_v7().to_string(),
        kind: RecordKind::Checkpoint,
        station: station.to_string(),
        station_kid: crypto.key.kid.clone(),
        seq: 0,
        prev: None,
        captured_at: rfc3339(now),
        sealed_at: String::new(),
        recipient_kid: Some(crypto.recipient.kid.clone()),
        location: None,
        case: None,
        devices: Vec::new(),
        identities: Vec::new(),
        evidence: Vec::new(),
        checkpoint: Some(Checkpoint {
            count: 0,
            head: None,
        }),
    };
    append(outbox, crypto, record, Vec::new())
}

/// Fills in the chain link inside the append transaction, signs, encrypts, commits.
fn append(
    outbox: &mut Outbox,
    crypto: &Crypto,
    mut record: Record,
    blobs: Vec<SealedBlob>,
) -> Result<Committed, OutboxError> {
    let station = record.station.clone();
    let (link, record_id) = outbox.append(&station, |link| {
        record.seq = link.seq;
        record.prev = link.prev.clone();
        record.sealed_at = rfc3339(SystemTime::now());
        if let Some(checkpoint) = &mut record.checkpoint {
            checkpoint.count = link.seq;
            checkpoint.head = link.prev.clone();
        }
        let wire =
            record::seal(&record, &crypto.key, &crypto.recipient).map_err(|e| e.to_string())?;
        Ok(Sealed {
            record_id: record.record_id.clone(),
            wire,
            blobs,
        })
    })?;
    Ok(Committed {
        record_id,
        seq: link.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn milliseconds_keep_trailing_zeros() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_764_237_600_540);
        assert_eq!(rfc3339(t), "2025-11-27T10:00:00.540Z");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_237_600);
        assert_eq!(rfc3339(t), "2025-11-27T10:00:00.000Z");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_764_237_600_123_456_789);
        assert_eq!(rfc3339(t), "2025-11-27T10:00:00.123Z");
    }
}
