//! Auditing kept receipts (`countersign outbox receipts --export`) offline, as `countersign
//! verify` does beside the records they answer: each receipt's signature by a given case-system
//! key and its shape, the file's name against the record it names, and, where that record is in
//! the set, its station and the hash of its exact wire bytes. Freshness is not checked: receipts
//! are audited long after they were issued.

use std::collections::HashMap;

use super::{Outcome, open};
use crate::record::audit::{Problem, ProblemKind, Verified};
use crate::record::keys::Keyring;

/// One receipt as found: where it came from, its file stem (the record id it was exported as),
/// its bytes (a compact JWS).
pub struct ReceiptItem {
    pub source: String,
    pub stem: Option<String>,
    pub jws: Vec<u8>,
}

/// A receipt whose signature and shape verified.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    pub source: String,
    pub record_id: String,
    pub station: String,
    /// `stored`, or `rejected: <reason>`.
    pub outcome: String,
    pub kid: String,
    pub alg: String,
    pub iat: i64,
    /// True when the record it answers is in the set and its bytes hash to what the receipt names.
    pub record_checked: bool,
}

#[derive(Debug, Default)]
pub struct ReceiptReport {
    pub verified: Vec<VerifiedReceipt>,
    pub problems: Vec<Problem>,
}

/// Audits `receipts` against the case-system `keys` and the records of the set that verified.
pub fn audit(receipts: &[ReceiptItem], keys: &Keyring, records: &[Verified]) -> ReceiptReport {
    let by_id: HashMap<&str, &Verified> =
        records.iter().map(|r| (r.record_id.as_str(), r)).collect();
    let mut report = ReceiptReport::default();
    for item in receipts {
        let problem = |kind, record_id: Option<&str>, detail: String| Problem {
            kind,
            record_id: record_id.map(str::to_string).or_else(|| item.stem.clone()),
            source: item.source.clone(),
            detail,
        };
        // No profile rule here: the keys given are the auditor's choice.
        let (answer, station) = match open(&item.jws, keys, false) {
            Ok(opened) => opened,
            Err(refusal) => {
                report.problems.push(problem(
                    ProblemKind::BadReceipt,
                    None,
                    format!("{}: {}", refusal.code, refusal.detail),
                ));
                continue;
            }
        };
        let id = answer.record_id.as_str();
        let outcome = match &answer.outcome {
            Outcome::Stored => "stored".to_string(),
            Outcome::Rejected { reason } => format!("rejected: {reason}"),
            Outcome::Progress { .. } => {
                report.problems.push(problem(
                    ProblemKind::BadReceipt,
                    Some(id),
                    "a blob progress report, not a record's receipt".into(),
                ));
                continue;
            }
        };
        if let Some(stem) = &item.stem
            && stem != id
        {
            report.problems.push(problem(
                ProblemKind::ReceiptMismatch,
                Some(id),
                format!("the file is named {stem} but holds the receipt of record {id}"),
            ));
            continue;
        }
        let mut record_checked = false;
        if let Some(record) = by_id.get(id) {
            if record.station != station {
                report.problems.push(problem(
                    ProblemKind::ReceiptMismatch,
                    Some(id),
                    format!(
                        "the receipt names station {station} but the record is station {}'s",
                        record.station
                    ),
                ));
                continue;
            }
            if answer.bound_to.as_deref() != Some(record.wire_sha256.as_str()) {
                report.problems.push(problem(
                    ProblemKind::ReceiptMismatch,
                    Some(id),
                    format!(
                        "the receipt is for bytes hashing to {}, the record in {} hashes to {}",
                        answer.bound_to.as_deref().unwrap_or("?"),
                        record.source,
                        record.wire_sha256
                    ),
                ));
                continue;
            }
            record_checked = true;
        }
        // `open` reads only signed receipts; an answer without its signature's facts is none.
        let Some(signed) = answer.signed else {
            continue;
        };
        report.verified.push(VerifiedReceipt {
            source: item.source.clone(),
            record_id: answer.record_id,
            station,
            outcome,
            kid: signed.kid,
            alg: signed.alg,
            iat: signed.iat,
            record_checked,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipts::{Claim, sha256_ref, sign};
    use crate::record::RecordKind;
    use crate::record::keys::{KeyType, StationKey, generate, load_private};

    fn key(dir: &std::path::Path, name: &str) -> StationKey {
        let (private, _, _) = generate(&dir.join(name), KeyType::Ed25519).unwrap();
        load_private(&private).unwrap()
    }

    fn record(id: &str, station: &str, wire: &[u8]) -> Verified {
        Verified {
            source: format!("records/{id}.jwe"),
            record_id: id.into(),
            station: station.into(),
            seq: 1,
            kind: RecordKind::Capture,
            identities: 1,
            blobs: 0,
            wire_sha256: sha256_ref(wire),
        }
    }

    fn receipt(key: &StationKey, station: &str, id: &str, wire: &[u8], outcome: Outcome) -> String {
        sign(
            key,
            &Claim {
                station,
                record_id: id,
                outcome: &outcome,
                sha256: &sha256_ref(wire),
                iat: 1_764_237_600,
            },
        )
    }

    fn item(stem: &str, jws: String) -> ReceiptItem {
        ReceiptItem {
            source: format!("receipts/{stem}.jws"),
            stem: Some(stem.into()),
            jws: jws.into_bytes(),
        }
    }

    #[test]
    fn every_way_a_receipt_can_be_wrong_is_reported_and_good_ones_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (case, other) = (key(dir.path(), "case"), key(dir.path(), "other"));
        let mut keys = Keyring::default();
        keys.insert(case.kid.clone(), case.verifying_key());
        let records = [record("r1", "w1", b"one"), record("r2", "w1", b"two")];
        let items = [
            // Good: in the set, and for a record that already left the set.
            item("r1", receipt(&case, "w1", "r1", b"one", Outcome::Stored)),
            item("r9", receipt(&case, "w1", "r9", b"nine", Outcome::Stored)),
            // Signed by a key the auditor did not give.
            item("r2", receipt(&other, "w1", "r2", b"two", Outcome::Stored)),
            // r1's receipt for r2's place: the bytes differ.
            item("r2", receipt(&case, "w1", "r2", b"one", Outcome::Stored)),
            // Another station's receipt for the same id.
            item("r2", receipt(&case, "w7", "r2", b"two", Outcome::Stored)),
            // Renamed file.
            item("r1", receipt(&case, "w1", "r2", b"two", Outcome::Stored)),
            // Progress is no receipt; garbage is no JWS.
            item(
                "r2",
                receipt(
                    &case,
                    "w1",
                    "r2",
                    b"blob",
                    Outcome::Progress {
                        blob_id: "b".into(),
                        next_offset: 9,
                    },
                ),
            ),
            item("r2", "not.a.receipt".into()),
        ];
        let report = audit(&items, &keys, &records);
        let verified: Vec<(&str, bool)> = report
            .verified
            .iter()
            .map(|v| (v.record_id.as_str(), v.record_checked))
            .collect();
        assert_eq!(verified, [("r1", true), ("r9", false)]);
        assert_eq!(report.verified[0].kid, case.kid);
        assert_eq!(report.verified[0].outcome, "stored");
        let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                ProblemKind::BadReceipt,
                ProblemKind::ReceiptMismatch,
                ProblemKind::ReceiptMismatch,
                ProblemKind::ReceiptMismatch,
                ProblemKind::BadReceipt,
                ProblemKind::BadReceipt,
            ]
        );
        assert!(report.problems[1].detail.contains("hashing to"));
        assert!(report.problems[2].detail.contains("station w7"));
        assert!(report.problems[3].detail.contains("named r1"));
    }

    #[test]
    fn a_rejection_receipt_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let case = key(dir.path(), "case");
        let mut keys = Keyring::default();
        keys.insert(case.kid.clone(), case.verifying_key());
        let outcome = Outcome::Rejected {
            reason: "unknown station key".into(),
        };
        let items = [item("r1", receipt(&case, "w1", "r1", b"one", outcome))];
        let report = audit(&items, &keys, &[record("r1", "w1", b"one")]);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.verified[0].outcome, "rejected: unknown station key");
    }
}
