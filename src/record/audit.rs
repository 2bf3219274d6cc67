//! Auditing a set of records, as `countersign verify` and a careful case system do: each record's
//! envelope and signature, its evidence blobs against the signed manifest, and the hash chain over
//! the whole set (gaps, forks, broken links, duplicates, reordering, checkpoints).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::jose::JoseError;
use super::keys::{DecryptKeys, Keyring};
use super::{Record, RecordKind, VerifyError, chain_hash, open, open_blob};

/// One record as found: where it came from (for messages), its file stem, its wire bytes.
pub struct Item {
    pub source: String,
    pub stem: Option<String>,
    pub wire: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a JOSE object we can read, or not a countersign record.
    Malformed,
    /// Encrypted and no key given for its recipient, or the ciphertext was altered.
    CannotDecrypt,
    /// Signed by a key not in the keyring.
    UnknownKey,
    BadSignature,
    /// The file's name is not its record id (renamed or swapped files).
    NameMismatch,
    MissingBlob,
    AlteredBlob,
    /// The same record (same bytes) more than once: a replay.
    Duplicate,
    /// Two different records with the same station and sequence number.
    Fork,
    /// Sequence numbers missing between two records of the set.
    Gap,
    /// A record's `prev` is not the hash of the record before it.
    BrokenLink,
    /// A record comes after a record with a higher sequence number.
    Reordered,
    /// A checkpoint whose count or head disagree with its own chain position.
    BadCheckpoint,
    /// A receipt that does not open: not a JWS, not signed by a given case-system key, not a
    /// receipt's shape.
    BadReceipt,
    /// A receipt that opens but does not fit the set: for other bytes than the record of its id,
    /// another station, or in a file named for another record.
    ReceiptMismatch,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ProblemKind::Malformed => "malformed",
            ProblemKind::CannotDecrypt => "cannot decrypt",
            ProblemKind::UnknownKey => "unknown station key",
            ProblemKind::BadSignature => "bad signature",
            ProblemKind::NameMismatch => "file name mismatch",
            ProblemKind::MissingBlob => "missing blob",
            ProblemKind::AlteredBlob => "altered blob",
            ProblemKind::Duplicate => "duplicate",
            ProblemKind::Fork => "fork",
            ProblemKind::Gap => "gap",
            ProblemKind::BrokenLink => "broken chain",
            ProblemKind::Reordered => "reordered",
            ProblemKind::BadCheckpoint => "bad checkpoint",
            ProblemKind::BadReceipt => "bad receipt",
            ProblemKind::ReceiptMismatch => "receipt mismatch",
        };
        f.write_str(text)
    }
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemKind,
    pub record_id: Option<String>,
    pub source: String,
    pub detail: String,
}

/// A record that opened and verified (its chain findings are separate problems).
#[derive(Debug, Clone)]
pub struct Verified {
    pub source: String,
    pub record_id: String,
    pub station: String,
    pub seq: u64,
    pub kind: RecordKind,
    pub identities: usize,
    pub blobs: usize,
    /// `sha256:<hex>` of the record's wire bytes (what a receipt is bound to).
    pub wire_sha256: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub verified: Vec<Verified>,
    pub problems: Vec<Problem>,
    /// Informational lines (e.g. where each station's chain starts in this set).
    pub notes: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Opened {
    source: String,
    record: Record,
    wire_hash: String,
}

fn classify(e: &VerifyError) -> ProblemKind {
    match e {
        VerifyError::Encrypted => ProblemKind::CannotDecrypt,
        VerifyError::Jose(JoseError::Decrypt) => ProblemKind::CannotDecrypt,
        VerifyError::Jose(JoseError::UnknownKid(_)) => ProblemKind::UnknownKey,
        VerifyError::Jose(JoseError::BadSignature) => ProblemKind::BadSignature,
        VerifyError::KeyMismatch { .. } => ProblemKind::BadSignature,
        _ => ProblemKind::Malformed,
    }
}

/// Audits `items` in the order given (the order they were received or listed). `blob` finds a
/// blob's wire bytes by id; with `check_blobs` false, blobs are not looked for.
pub fn audit(
    items: &[Item],
    keyring: &Keyring,
    decrypt: &DecryptKeys,
    check_blobs: bool,
    blob: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Report {
    let mut report = Report::default();
    let mut opened = Vec::new();
    for item in items {
        match open(&item.wire, keyring, decrypt) {
            Ok(o) => {
                let record = o.record;
                if let Some(stem) = &item.stem
                    && stem != &record.record_id
                {
                    report.problems.push(Problem {
                        kind: ProblemKind::NameMismatch,
                        record_id: Some(record.record_id.clone()),
                        source: item.source.clone(),
                        detail: format!(
                            "the file is named {stem} but holds record {}",
                            record.record_id
                        ),
                    });
                }
                let blobs_before = report.problems.len();
                if check_blobs {
                    check_evidence(&record, &item.source, decrypt, blob, &mut report);
                }
                if report.problems.len() == blobs_before {
                    report.verified.push(Verified {
                        source: item.source.clone(),
                        record_id: record.record_id.clone(),
                        station: record.station.clone(),
                        seq: record.seq,
                        kind: record.kind,
                        identities: record.identities.len(),
                        blobs: record.evidence.len(),
                        wire_sha256: chain_hash(&item.wire),
                    });
                }
                opened.push(Opened {
                    source: item.source.clone(),
                    wire_hash: chain_hash(&item.wire),
                    record,
                });
            }
            Err(e) => report.problems.push(Problem {
                kind: classify(&e),
                record_id: item.stem.clone(),
                source: item.source.clone(),
                detail: e.to_string(),
            }),
        }
    }
    check_chains(&opened, &mut report);
    report
}

fn check_evidence(
    record: &Record,
    source: &str,
    decrypt: &DecryptKeys,
    blob: &dyn Fn(&str) -> Option<Vec<u8>>,
    report: &mut Report,
) {
    for evidence in &record.evidence {
        let problem = |kind, detail: String| Problem {
            kind,
            record_id: Some(record.record_id.clone()),
            source: source.to_string(),
            detail: format!("blob {} ({}): {detail}", evidence.blob_id, evidence.role),
        };
        let Some(wire) = blob(&evidence.blob_id) else {
            report
                .problems
                .push(problem(ProblemKind::MissingBlob, "not found".into()));
            continue;
        };
        match open_blob(&wire, decrypt) {
            Err(e) => report.problems.push(problem(
                ProblemKind::AlteredBlob,
                format!("cannot open: {e}"),
            )),
            Ok(plain) => {
                if plain.len() as u64 != evidence.size || chain_hash(&plain) != evidence.sha256 {
                    report.problems.push(problem(
                        ProblemKind::AlteredBlob,
                        format!(
                            "{} bytes hashing to {}, the manifest says {} bytes, {}",
                            plain.len(),
                            chain_hash(&plain),
                            evidence.size,
                            evidence.sha256
                        ),
                    ));
                }
            }
        }
    }
}

fn check_chains(opened: &[Opened], report: &mut Report) {
    let mut by_station: BTreeMap<&str, Vec<&Opened>> = BTreeMap::new();
    for o in opened {
        by_station.entry(&o.record.station).or_default().push(o);
    }
    for (station, records) in by_station {
        let problem = |kind, o: &Opened, detail: String| Problem {
            kind,
            record_id: Some(o.record.record_id.clone()),
            source: o.source.clone(),
            detail: format!("station {station}: {detail}"),
        };
        // One representative per sequence number; duplicates and forks reported.
        let mut by_seq: BTreeMap<u64, &Opened> = BTreeMap::new();
        let mut seen_hashes: HashMap<&str, &Opened> = HashMap::new();
        let mut highest: Option<u64> = None;
        for o in &records {
            let seq = o.record.seq;
            if let Some(first) = seen_hashes.get(o.wire_hash.as_str()) {
                report.problems.push(problem(
                    ProblemKind::Duplicate,
                    o,
                    format!("seq {seq} appears again (same bytes as {})", first.source),
                ));
                continue;
            }
            seen_hashes.insert(&o.wire_hash, o);
            if let Some(other) = by_seq.get(&seq) {
                report.problems.push(problem(
                    ProblemKind::Fork,
                    o,
                    format!(
                        "seq {seq} is also record {} ({}): two different records claim one place",
                        other.record.record_id, other.source
                    ),
                ));
                continue;
            }
            if let Some(h) = highest
                && seq < h
            {
                report.problems.push(problem(
                    ProblemKind::Reordered,
                    o,
                    format!("seq {seq} comes after seq {h}"),
                ));
            }
            highest = Some(highest.map_or(seq, |h| h.max(seq)));
            by_seq.insert(seq, o);
        }
        let mut previous: Option<&Opened> = None;
        for (&seq, &o) in &by_seq {
            match previous {
                None if seq > 1 => report.notes.push(format!(
                    "station {station}: the set starts at seq {seq} (earlier records not given)"
                )),
                None => {
                    if o.record.prev.is_some() {
                        report.problems.push(problem(
                            ProblemKind::BrokenLink,
                            o,
                            "seq 1 names a predecessor".into(),
                        ));
                    }
                }
                Some(p) if p.record.seq + 1 < seq => {
                    report.problems.push(problem(
                        ProblemKind::Gap,
                        o,
                        format!(
                            "seq {} to {} missing before seq {seq}",
                            p.record.seq + 1,
                            seq - 1
                        ),
                    ));
                }
                Some(p) => {
                    if o.record.prev.as_deref() != Some(p.wire_hash.as_str()) {
                        report.problems.push(problem(
                            ProblemKind::BrokenLink,
                            o,
                            format!(
                                "prev of seq {seq} is not the hash of seq {} ({})",
                                p.record.seq, p.record.record_id
                            ),
                        ));
                    }
                }
            }
            if let Some(cp) = &o.record.checkpoint
                && (cp.count != seq || cp.head != o.record.prev)
            {
                report.problems.push(problem(
                    ProblemKind::BadCheckpoint,
                    o,
                    format!("checkpoint count {} at seq {seq}", cp.count),
                ));
            }
            previous = Some(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::keys::{Jwk, Recipient, RecipientSecret, SigningKey, StationKey};
    use crate::record::{Checkpoint, EvidenceRef, seal, seal_blob};

    struct Fixture {
        items: Vec<Item>,
        blobs: HashMap<String, Vec<u8>>,
        keyring: Keyring,
        decrypt: DecryptKeys,
    }

    /// A chain of `n` sealed records (the last one a checkpoint), each capture with one blob.
    fn chain(n: u64) -> Fixture {
        let signing = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]));
        let public = Jwk::public_of_signing(&signing);
        let mut keyring = Keyring::default();
        keyring.insert(public.thumbprint(), public.verifying_key().unwrap());
        let key = StationKey {
            kid: public.thumbprint(),
            signing,
        };
        let secret = RecipientSecret::X25519(x25519_dalek::StaticSecret::from([5u8; 32]));
        let recipient = Recipient {
            key: secret.public(),
            kid: Jwk::public_of_recipient(&secret.public()).thumbprint(),
        };
        let mut decrypt = DecryptKeys::default();
        decrypt.insert(recipient.kid.clone(), secret);
        let mut items = Vec::new();
        let mut blobs = HashMap::new();
        let mut prev = None;
        for seq in 1..=n {
            let mut record = crate::record::schema::tests::sample_record();
            record.record_id = format!("r{seq}");
            record.seq = seq;
            record.prev = prev.clone();
            record.station_kid = key.kid.clone();
            record.recipient_kid = Some(recipient.kid.clone());
            if seq == n {
                record.kind = RecordKind::Checkpoint;
                record.identities.clear();
                record.evidence.clear();
                record.checkpoint = Some(Checkpoint {
                    count: seq,
                    head: prev.clone(),
                });
            } else {
                let page = vec![seq as u8; 100];
                record.evidence = vec![EvidenceRef {
                    blob_id: format!("b{seq}"),
                    role: "page".into(),
                    media_type: "image/jpeg".into(),
                    size: 100,
                    sha256: chain_hash(&page),
                    identity: None,
                    label: None,
                }];
                blobs.insert(
                    format!("b{seq}"),
                    seal_blob(&page, &recipient, "window-01").unwrap(),
                );
            }
            let wire = seal(&record, &key, &recipient).unwrap();
            prev = Some(chain_hash(&wire));
            items.push(Item {
                source: format!("r{seq}.jwe"),
                stem: Some(format!("r{seq}")),
                wire,
            });
        }
        Fixture {
            items,
            blobs,
            keyring,
            decrypt,
        }
    }

    fn run(f: &Fixture) -> Vec<(ProblemKind, String)> {
        let report = audit(&f.items, &f.keyring, &f.decrypt, true, &|id| {
            f.blobs.get(id).cloned()
        });
        report
            .problems
            .into_iter()
            .map(|p| (p.kind, p.record_id.unwrap_or_default()))
            .collect()
    }

    fn flip(bytes: &mut [u8], at: usize) {
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    }

    #[test]
    fn an_intact_chain_verifies() {
        let f = chain(5);
        let report = audit(&f.items, &f.keyring, &f.decrypt, true, &|id| {
            f.blobs.get(id).cloned()
        });
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.verified.len(), 5);
    }

    #[test]
    fn any_flipped_byte_of_a_record_is_detected() {
        let mut f = chain(4);
        let original = f.items[1].wire.clone();
        // Every 7th byte position of the whole compact JWE (dots excluded).
        for at in (0..original.len()).step_by(7) {
            if original[at] == b'.' {
                continue;
            }
            flip(&mut f.items[1].wire, at);
            let problems = run(&f);
            assert!(
                problems.iter().any(|(_, id)| id == "r2"),
                "byte {at}: {problems:?}"
            );
            f.items[1].wire.clone_from(&original);
        }
    }

    #[test]
    fn a_flipped_blob_byte_is_an_altered_blob() {
        let mut f = chain(4);
        let blob = f.blobs.get_mut("b2").unwrap();
        let at = blob.len() - 30;
        flip(blob, at);
        assert_eq!(run(&f), [(ProblemKind::AlteredBlob, "r2".to_string())]);
        f.blobs.remove("b3");
        assert!(run(&f).contains(&(ProblemKind::MissingBlob, "r3".to_string())));
    }

    #[test]
    fn a_dropped_record_is_a_gap() {
        let mut f = chain(5);
        f.items.remove(2);
        assert_eq!(run(&f), [(ProblemKind::Gap, "r4".to_string())]);
    }

    #[test]
    fn two_swapped_records_are_reordered() {
        let mut f = chain(5);
        f.items.swap(1, 2);
        assert_eq!(run(&f), [(ProblemKind::Reordered, "r2".to_string())]);
    }

    #[test]
    fn a_replayed_record_is_a_duplicate() {
        let mut f = chain(4);
        let replay = Item {
            source: "copy.jwe".into(),
            stem: Some("r2".into()),
            wire: f.items[1].wire.clone(),
        };
        f.items.push(replay);
        assert_eq!(run(&f), [(ProblemKind::Duplicate, "r2".to_string())]);
    }

    #[test]
    fn renamed_file_and_fork_are_detected() {
        let mut f = chain(4);
        f.items[0].stem = Some("r9".into());
        assert_eq!(run(&f), [(ProblemKind::NameMismatch, "r1".to_string())]);
        // Another chain's record 2 (same seq, different bytes) in the same set: a fork.
        let mut f = chain(4);
        let other = chain(4);
        let mut intruder = Item {
            source: "other.jwe".into(),
            stem: None,
            wire: other.items[1].wire.clone(),
        };
        // Same keys (deterministic fixture), different random encryption: different bytes.
        intruder.stem = Some("r2".into());
        f.items.push(intruder);
        assert_eq!(run(&f), [(ProblemKind::Fork, "r2".to_string())]);
    }

    #[test]
    fn unknown_key_and_missing_decrypt_key_are_named() {
        let f = chain(2);
        let empty = Keyring::default();
        let report = audit(&f.items, &empty, &f.decrypt, false, &|_| None);
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.kind == ProblemKind::UnknownKey)
        );
        let report = audit(
            &f.items,
            &f.keyring,
            &DecryptKeys::default(),
            false,
            &|_| None,
        );
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.kind == ProblemKind::CannotDecrypt)
        );
    }
}
