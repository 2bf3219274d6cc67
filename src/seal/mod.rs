//! Sealing: what was captured (one capture, a whole case session, or a checkpoint of the chain)
//! becomes the station's next record, signed, encrypted and committed to the outbox in one
//! transaction with its chain link. Evidence is encrypted to the case system first (the slow part
//! for large pages), outside the transaction. Blocking (SQLite, crypto): the station calls it on a
//! blocking thread, benchmarks and tools call it directly. Below `session` and `station`, which
//! both seal; it knows nothing of either.

pub mod keys;

pub use keys::Crypto;

use std::time::SystemTime;

use crate::capture::Capture;
use crate::outbox::{AppendWith, Outbox, OutboxError};
use crate::record::{
    self, CaseRef, Checkpoint, DeviceInfo, Evidence, EvidenceRef, Identity, Record, RecordKind,
    Sealed, SealedBlob, rfc3339,
};

/// What goes into one capture record (a lone capture's, or a session's gathered), its evidence
/// already encrypted: the manifest entries name the blobs.
#[derive(Debug)]
pub struct Contents {
    pub captured_at: SystemTime,
    pub case: Option<CaseRef>,
    /// The station's location from its configuration (mobile kits: where the kit is used).
    pub location: Option<String>,
    pub devices: Vec<DeviceInfo>,
    pub identities: Vec<Identity>,
    pub evidence: Vec<EvidenceRef>,
}

/// A committed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub record_id: String,
    pub seq: u64,
}

/// Evidence without an owner belongs to the capture's identity (a card's photo and fingerprints):
/// `identity: Some(0)`, the capture's only identity. Labelled evidence (a page the case system
/// named) stays the case's.
fn bind_to_identity(evidence: &mut [Evidence], has_identity: bool) {
    if has_identity {
        for e in evidence
            .iter_mut()
            .filter(|e| e.identity.is_none() && e.label.is_none())
        {
            e.identity = Some(0);
        }
    }
}

/// Encrypts evidence to the case system: the manifest entries (plaintext hash and size) and the
/// blobs' wire forms, sharing fresh blob ids.
fn seal_evidence(
    evidence: Vec<Evidence>,
    station: &str,
    crypto: &Crypto,
) -> Result<(Vec<EvidenceRef>, Vec<SealedBlob>), record::jose::JoseError> {
    let mut manifest = Vec::with_capacity(evidence.len());
    let mut blobs = Vec::with_capacity(evidence.len());
    for e in evidence {
        let blob_id = uuid::Uuid::now_v7().to_string();
        let wire = record::seal_blob(&e.bytes, &crypto.recipient, station)?;
        manifest.push(EvidenceRef {
            blob_id: blob_id.clone(),
            role: e.role,
            media_type: e.media_type,
            size: e.bytes.len() as u64,
            sha256: record::chain_hash(&e.bytes),
            identity: e.identity,
            label: e.label,
        });
        blobs.push(SealedBlob { blob_id, wire });
    }
    Ok((manifest, blobs))
}

/// One capture as record contents, its evidence encrypted: what a lone capture's record holds,
/// and what a session keeps of each capture until it is closed.
pub fn seal_capture(
    capture: Capture,
    station: &str,
    crypto: &Crypto,
) -> Result<(Contents, Vec<SealedBlob>), record::jose::JoseError> {
    let mut evidence = capture.evidence;
    bind_to_identity(&mut evidence, capture.identity.is_some());
    let (evidence, blobs) = seal_evidence(evidence, station, crypto)?;
    let contents = Contents {
        captured_at: capture.captured_at,
        case: None,
        location: None,
        devices: vec![capture.device],
        identities: capture.identity.into_iter().collect(),
        evidence,
    };
    Ok((contents, blobs))
}

/// Seals one capture as the station's next record and commits it with its blobs (tagged with
/// the source's intake key, when given). Returns once the commit is durable.
pub fn commit_capture(
    outbox: &mut Outbox,
    station: &str,
    crypto: &Crypto,
    capture: Capture,
    location: Option<String>,
    intake: Option<&str>,
) -> Result<Committed, OutboxError> {
    let (mut contents, blobs) =
        seal_capture(capture, station, crypto).map_err(|err| OutboxError::Seal {
            path: outbox.path().to_path_buf(),
            reason: err.to_string(),
        })?;
    contents.location = location;
    let with = AppendWith {
        intake,
        ..AppendWith::default()
    };
    commit(outbox, station, crypto, contents, blobs, with)
}

/// Commits `contents` as the station's next capture record; `blobs` are the wire forms not yet in
/// the outbox (a session's are absorbed from its own table: `with.absorb_session`).
pub fn commit(
    outbox: &mut Outbox,
    station: &str,
    crypto: &Crypto,
    contents: Contents,
    blobs: Vec<SealedBlob>,
    with: AppendWith<'_>,
) -> Result<Committed, OutboxError> {
    let record = new_record(RecordKind::Capture, station, crypto, contents, None);
    append(outbox, crypto, record, blobs, with)
}

/// Seals a checkpoint: a record attesting the chain head and the count of records so far.
pub fn checkpoint(
    outbox: &mut Outbox,
    station: &str,
    crypto: &Crypto,
) -> Result<Committed, OutboxError> {
    let contents = Contents {
        captured_at: SystemTime::now(),
        case: None,
        location: None,
        devices: Vec::new(),
        identities: Vec::new(),
        evidence: Vec::new(),
    };
    let attests = Checkpoint {
        count: 0,
        head: None,
    };
    let record = new_record(
        RecordKind::Checkpoint,
        station,
        crypto,
        contents,
        Some(attests),
    );
    append(outbox, crypto, record, Vec::new(), AppendWith::default())
}

/// The record before its chain link (`seq`, `prev`, `sealed_at` and a checkpoint's figures are
/// filled in inside the append transaction).
fn new_record(
    kind: RecordKind,
    station: &str,
    crypto: &Crypto,
    contents: Contents,
    checkpoint: Option<Checkpoint>,
) -> Record {
    Record {
        schema: record::SCHEMA.into(),
        record_id: uuid::Uuid::now_v7().to_string(),
        kind,
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
        checkpoint,
    }
}

/// Fills in the chain link inside the append transaction, signs, encrypts, commits.
fn append(
    outbox: &mut Outbox,
    crypto: &Crypto,
    mut record: Record,
    blobs: Vec<SealedBlob>,
    with: AppendWith<'_>,
) -> Result<Committed, OutboxError> {
    let station = record.station.clone();
    let (link, record_id) = outbox.append_with(&station, with, |link| {
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

    fn evidence(label: Option<&str>, identity: Option<usize>) -> Evidence {
        Evidence {
            role: "photo".into(),
            media_type: "image/jpeg".into(),
            bytes: vec![1],
            identity,
            label: label.map(str::to_string),
        }
    }

    #[test]
    fn unowned_evidence_of_an_identity_capture_is_the_identitys() {
        let mut e = vec![
            evidence(None, None),
            evidence(Some("household_register"), None),
        ];
        bind_to_identity(&mut e, true);
        assert_eq!((e[0].identity, e[1].identity), (Some(0), None));
        let mut e = vec![evidence(None, None)];
        bind_to_identity(&mut e, false);
        assert_eq!(
            e[0].identity, None,
            "a page without a card belongs to no one"
        );
    }
}
