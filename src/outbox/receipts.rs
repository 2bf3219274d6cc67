//! Receipts kept after their record left: which case-system key acknowledged (or rejected) which
//! record, when, and the signed receipt itself, for `countersign outbox receipts` and auditors.
//! Bounded by age and count ([`ReceiptLimits`]); pruned as new ones come in. The outbox stores
//! them as opaque text with the facts the uplink read from them; it does not verify them.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Outbox, OutboxError, now_ms};

/// A signed answer as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The signing key's id (RFC 7638 thumbprint).
    pub kid: String,
    pub alg: String,
    /// When the case system issued it (Unix seconds, its clock).
    pub iat: i64,
    /// The compact JWS as received.
    pub jws: String,
}

/// A kept receipt, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    pub record_id: String,
    pub seq: u64,
    /// `stored` or `rejected`.
    pub status: String,
    /// `sha256:<hex>` of the record's wire bytes.
    pub record_sha256: String,
    pub receipt: Receipt,
    /// When the station applied it (Unix milliseconds, its clock).
    pub received_ms: i64,
}

/// How many receipts are kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptLimits {
    pub max_age_ms: i64,
    pub max_count: u64,
}

impl Default for ReceiptLimits {
    fn default() -> Self {
        ReceiptLimits {
            max_age_ms: 365 * 86_400_000,
            max_count: 100_000,
        }
    }
}

/// Receipts applied between two prunings: pruning on every burst of acks would cost a scan of
/// the index each time, and a few hundred extra rows are nothing.
const PRUNE_EVERY: u32 = 256;

pub(super) const CREATE: &str = "CREATE TABLE IF NOT EXISTS receipts (
         record_id TEXT PRIMARY KEY,
         seq INTEGER NOT NULL,
         status TEXT NOT NULL,
         record_sha256 TEXT NOT NULL,
         kid TEXT NOT NULL,
         alg TEXT NOT NULL,
         iat INTEGER NOT NULL,
         received_ms INTEGER NOT NULL,
         jws TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS receipts_by_time ON receipts (received_ms);";

/// Marks a file that held records before receipts existed: its station was upgraded, and keeps
/// accepting the unsigned answers its case system still sends until `[acks]` says otherwise.
pub(super) fn mark_upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('upgraded_before_receipts', 1)",
        [],
    )
    .map(|_| ())
}

pub(super) fn keep(
    tx: &Connection,
    record_id: &str,
    seq: i64,
    status: &str,
    record_sha256: &str,
    receipt: &Receipt,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO receipts
             (record_id, seq, status, record_sha256, kid, alg, iat, received_ms, jws)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            record_id,
            seq,
            status,
            record_sha256,
            receipt.kid,
            receipt.alg,
            receipt.iat,
            now_ms(),
            receipt.jws
        ],
    )
    .map(|_| ())
}

impl Outbox {
    /// Sets how many receipts are kept and for how long.
    pub fn set_receipt_limits(&mut self, limits: ReceiptLimits) {
        self.receipt_limits = limits;
    }

    /// True when this file held records before receipts existed (see [`mark_upgrade`]).
    pub fn upgraded_before_receipts(&self) -> Result<bool, OutboxError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM meta WHERE key = 'upgraded_before_receipts' AND value = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Drops receipts older than the limits allow, or beyond the count (oldest first).
    pub fn prune_receipts(&mut self) -> Result<usize, OutboxError> {
        let limits = self.receipt_limits;
        prune(&self.conn, limits, now_ms()).map_err(|e| self.err(e))
    }

    /// Kept receipts received at or after `since_ms` (all when None), oldest first.
    pub fn receipts(&self, since_ms: Option<i64>) -> Result<Vec<KeptReceipt>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT record_id, seq, status, record_sha256, kid, alg, iat, received_ms, jws
                 FROM receipts WHERE received_ms >= ?1 ORDER BY received_ms, seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([since_ms.unwrap_or(i64::MIN)], |r| {
                Ok(KeptReceipt {
                    record_id: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    status: r.get(2)?,
                    record_sha256: r.get(3)?,
                    receipt: Receipt {
                        kid: r.get(4)?,
                        alg: r.get(5)?,
                        iat: r.get(6)?,
                        jws: r.get(8)?,
                    },
                    received_ms: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

impl Outbox {
    /// Writes the kept receipts received at or after `since_ms` to `dir/receipts/<record_id>.jws`
    /// (the compact JWS as received), the layout `countersign verify` reads beside `records/`.
    /// Never overwrites a file.
    pub fn export_receipts(
        &self,
        dir: &Path,
        since_ms: Option<i64>,
    ) -> Result<Vec<PathBuf>, OutboxError> {
        let io = |what: String, source| OutboxError::Io {
            path: self.path.clone(),
            what,
            source,
        };
        let out = dir.join("receipts");
        std::fs::create_dir_all(&out)
            .map_err(|e| io(format!("cannot create {}", out.display()), e))?;
        let mut written = Vec::new();
        for kept in self.receipts(since_ms)? {
            // Ids of applied receipts are the outbox's own record ids; still, never a path.
            if kept.record_id.contains(['/', '\\']) || kept.record_id.starts_with('.') {
                continue;
            }
            let file = out.join(format!("{}.jws", kept.record_id));
            super::admin::write_new(&file, kept.receipt.jws.as_bytes())
                .map_err(|e| io(format!("cannot write {}", file.display()), e))?;
            written.push(file);
        }
        Ok(written)
    }
}

/// Counts receipts kept; true when it is time to prune (and the count starts again).
pub(super) fn prune_due(since_prune: &mut u32, kept: u32) -> bool {
    *since_prune = since_prune.saturating_add(kept);
    if *since_prune >= PRUNE_EVERY {
        *since_prune = 0;
        return true;
    }
    false
}

pub(super) fn prune(
    conn: &Connection,
    limits: ReceiptLimits,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let old = conn.execute(
        "DELETE FROM receipts WHERE received_ms < ?1",
        [now_ms.saturating_sub(limits.max_age_ms)],
    )?;
    let over = conn.execute(
        "DELETE FROM receipts WHERE record_id IN
             (SELECT record_id FROM receipts ORDER BY received_ms DESC LIMIT -1 OFFSET ?1)",
        [limits.max_count.min(i64::MAX as u64) as i64],
    )?;
    Ok(old + over)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Answered, Settle, Settled};
    use crate::record::{ChainLink, Sealed, SealedBlob};

    fn seal(id: &str) -> impl FnOnce(&ChainLink) -> Result<Sealed, String> + '_ {
        move |link| {
            Ok(Sealed {
                record_id: id.to_string(),
                wire: format!("wire-{id}-{}", link.seq).into_bytes(),
                blobs: vec![SealedBlob {
                    blob_id: format!("{id}-b"),
                    wire: vec![3; 30],
                }],
            })
        }
    }

    fn receipt(n: i64) -> Receipt {
        Receipt {
            kid: "kid-1".into(),
            alg: "EdDSA".into(),
            iat: n,
            jws: format!("h.p.s{n}"),
        }
    }

    fn stored(id: &str, hash: &str, receipt: Option<Receipt>) -> Answered {
        Answered {
            settle: Settle::Stored(id.into()),
            record_sha256: Some(hash.into()),
            receipt,
        }
    }

    #[test]
    fn an_answer_bound_to_other_bytes_changes_nothing_and_a_kept_receipt_lists() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        o.append("s", seal("a")).unwrap();
        o.append("s", seal("b")).unwrap();
        let (a, b) = (
            crate::receipts::sha256_ref(b"wire-a-1"),
            crate::receipts::sha256_ref(b"wire-b-2"),
        );
        // b's receipt replayed onto a: refused, a stays with its blob.
        let got = o
            .settle_checked(&[stored("a", &b, Some(receipt(1)))])
            .unwrap();
        assert_eq!(got, [Settled::WrongHash]);
        assert_eq!(o.stats().unwrap().depth, 2);
        assert_eq!(o.blob_ids("a").unwrap(), ["a-b"]);
        let rejected = Answered {
            settle: Settle::Rejected("a".into(), "x".into()),
            record_sha256: Some(b.clone()),
            receipt: None,
        };
        assert_eq!(o.settle_checked(&[rejected]).unwrap(), [Settled::WrongHash]);
        assert_eq!(o.stats().unwrap().dead_letters, 0);
        assert!(o.receipts(None).unwrap().is_empty());
        // The real receipt: applied and kept, with the record's seq and hash.
        let got = o
            .settle_checked(&[stored("a", &a, Some(receipt(2))), stored("zz", &a, None)])
            .unwrap();
        assert_eq!(got, [Settled::Applied, Settled::Absent]);
        let kept = o.receipts(None).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (
                kept[0].record_id.as_str(),
                kept[0].seq,
                kept[0].status.as_str()
            ),
            ("a", 1, "stored")
        );
        assert_eq!(kept[0].record_sha256, a);
        assert_eq!(kept[0].receipt, receipt(2));
        // Again: the record is gone, the receipt stays as it was.
        let got = o
            .settle_checked(&[stored("a", &a, Some(receipt(3)))])
            .unwrap();
        assert_eq!(got, [Settled::Absent]);
        assert_eq!(o.receipts(None).unwrap()[0].receipt, receipt(2));
        assert!(
            o.receipts(Some(kept[0].received_ms + 1))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn receipts_are_pruned_by_count_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        o.set_receipt_limits(ReceiptLimits {
            max_age_ms: 86_400_000,
            max_count: 3,
        });
        for i in 0..5 {
            let id = format!("r{i}");
            o.append("s", seal(&id)).unwrap();
            let hash = crate::receipts::sha256_ref(format!("wire-{id}-{}", i + 1).as_bytes());
            let got = o.settle_checked(&[stored(&id, &hash, Some(receipt(i)))]);
            assert_eq!(got.unwrap(), [Settled::Applied]);
        }
        assert_eq!(o.receipts(None).unwrap().len(), 5, "pruned in batches");
        assert_eq!(o.prune_receipts().unwrap(), 2);
        let left: Vec<String> = o
            .receipts(None)
            .unwrap()
            .into_iter()
            .map(|r| r.record_id)
            .collect();
        assert_eq!(left, ["r2", "r3", "r4"], "the newest kept");
        o.conn
            .execute(
                "UPDATE receipts SET received_ms = received_ms - 86400001 WHERE record_id = 'r2'",
                [],
            )
            .unwrap();
        assert_eq!(o.prune_receipts().unwrap(), 1);
        assert_eq!(o.receipts(None).unwrap().len(), 2);
    }

    #[test]
    fn progress_bound_to_other_bytes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        o.append("s", seal("a")).unwrap();
        let right = crate::receipts::sha256_ref(&[3; 30]);
        let wrong = crate::receipts::sha256_ref(&[4; 30]);
        let done = o
            .set_progress_checked(&[
                ("a-b".into(), 20, Some(wrong)),
                ("gone".into(), 5, Some(right.clone())),
            ])
            .unwrap();
        assert_eq!((done.applied, done.wrong_hash), (0, 1));
        assert_eq!(o.progress("a-b").unwrap(), 0);
        let done = o
            .set_progress_checked(&[("a-b".into(), 20, Some(right))])
            .unwrap();
        assert_eq!((done.applied, done.wrong_hash), (1, 0));
        assert_eq!(o.progress("a-b").unwrap(), 20);
    }

    /// A station's first start, with `countersign outbox status` (or a test) opening the same
    /// new file at that moment: one of them saw the other's half-made schema (`records` but no
    /// `receipts` yet) and marked a brand-new station as upgraded, so it took unsigned answers.
    #[test]
    fn opening_a_new_file_from_several_processes_at_once_is_no_upgrade() {
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("o.sqlite");
            let start = std::sync::Arc::new(std::sync::Barrier::new(4));
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Outbox::open(&path).map(|o| o.upgraded_before_receipts())
                    })
                })
                .collect();
            for opener in openers {
                let upgraded = opener.join().unwrap().unwrap().unwrap();
                assert!(
                    !upgraded,
                    "round {round}: a new station taken for an upgraded one"
                );
            }
        }
    }

    #[test]
    fn a_file_from_before_receipts_marks_its_station_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let mut o = Outbox::open(&path).unwrap();
        assert!(!o.upgraded_before_receipts().unwrap(), "a new station");
        o.append("s", seal("a")).unwrap();
        // As the previous version left it.
        o.conn
            .execute_batch("DROP INDEX receipts_by_time; DROP TABLE receipts;")
            .unwrap();
        drop(o);
        let o = Outbox::open(&path).unwrap();
        assert!(o.upgraded_before_receipts().unwrap());
        assert!(o.receipts(None).unwrap().is_empty());
        drop(o);
        assert!(
            Outbox::open(&path)
                .unwrap()
                .upgraded_before_receipts()
                .unwrap(),
            "and stays so"
        );
    }
}
