//! What `countersign outbox` shows and does for administrators: list pending records, list,
//! export and retry dead letters. Reading runs beside the daemon (WAL allows readers); `retry`
//! is one short write transaction.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use super::{Outbox, OutboxError};

/// A pending record as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub record_id: String,
    pub seq: u64,
    pub created_ms: i64,
    pub attempts: u64,
    pub last_attempt_ms: Option<i64>,
    /// Record and blob bytes.
    pub bytes: u64,
    pub blobs: u64,
}

/// A record the case system rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub record_id: String,
    pub station: String,
    pub seq: u64,
    pub created_ms: i64,
    pub rejected_ms: i64,
    pub reason: String,
    pub bytes: u64,
}

/// The file extension of a wire form: compact JWE (5 parts) or JWS (3 parts).
pub fn wire_ext(wire: &[u8]) -> &'static str {
    match wire.iter().filter(|b| **b == b'.').count() {
        4 => "jwe",
        2 => "jws",
        _ => "bin",
    }
}

impl Outbox {
    /// Pending records, oldest first (at most `limit`).
    pub fn list(&self, limit: usize) -> Result<Vec<Listed>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.record_id, r.seq, r.created_ms, r.attempts, r.last_attempt_ms,
                        LENGTH(r.wire) + COALESCE((SELECT SUM(LENGTH(b.wire)) FROM blobs b WHERE b.record_id = r.record_id), 0),
                        (SELECT COUNT(*) FROM blobs b WHERE b.record_id = r.record_id)
                 FROM records r ORDER BY r.id LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit.min(i64::MAX as usize) as i64], |r| {
                Ok(Listed {
                    record_id: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    created_ms: r.get(2)?,
                    attempts: r.get::<_, i64>(3)? as u64,
                    last_attempt_ms: r.get(4)?,
                    bytes: r.get::<_, i64>(5)? as u64,
                    blobs: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Dead letters, in the order they were rejected.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.record_id, d.station, d.seq, d.created_ms, d.rejected_ms, d.reason,
                        LENGTH(d.wire) + COALESCE((SELECT SUM(LENGTH(b.wire)) FROM blobs b WHERE b.record_id = d.record_id), 0)
                 FROM dead_letters d ORDER BY d.rejected_ms, d.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeadLetter {
                    record_id: r.get(0)?,
                    station: r.get(1)?,
                    seq: r.get::<_, i64>(2)? as u64,
                    created_ms: r.get(3)?,
                    rejected_ms: r.get(4)?,
                    reason: r.get(5)?,
                    bytes: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Moves a dead letter back to the pending records (at the end of the queue, with its
    /// original sequence number and bytes). Returns false when there is no such dead letter.
    pub fn retry(&mut self, record_id: &str) -> Result<bool, OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let moved = tx
            .execute(
                "INSERT INTO records (record_id, station, seq, wire, created_ms)
                 SELECT record_id, station, seq, wire, created_ms FROM dead_letters WHERE record_id = ?1",
                [record_id],
            )
            .map_err(sqlite)?;
        tx.execute("DELETE FROM dead_letters WHERE record_id = ?1", [record_id])
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(moved > 0)
    }

    /// Writes every dead letter (or only `only`) to `dir` in wire form, in the layout
    /// `countersign verify DIR` reads: `records/<record_id>.<jwe|jws>`, `blobs/<blob_id>.jwe`
    /// (`.bin` for blobs that are not JWE), and `rejected/<record_id>.json` with the reason.
    /// Existing files are not overwritten. Returns the record files written.
    pub fn export_dead_letters(
        &self,
        dir: &Path,
        only: Option<&str>,
    ) -> Result<Vec<PathBuf>, OutboxError> {
        let io = |what: String, source| OutboxError::Io {
            path: self.path.clone(),
            what,
            source,
        };
        let (records, blobs_dir, rejected) =
            (dir.join("records"), dir.join("blobs"), dir.join("rejected"));
        for d in [&records, &blobs_dir, &rejected] {
            std::fs::create_dir_all(d)
                .map_err(|e| io(format!("cannot create {}", d.display()), e))?;
        }
        let mut written = Vec::new();
        for dead in self.dead_letters()? {
            if only.is_some_and(|id| id != dead.record_id) {
                continue;
            }
            let wire: Option<Vec<u8>> = self
                .conn
                .query_row(
                    "SELECT wire FROM dead_letters WHERE record_id = ?1",
                    [&dead.record_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(wire) = wire else { continue };
            let file = records.join(format!("{}.{}", dead.record_id, wire_ext(&wire)));
            write_new(&file, &wire)
                .map_err(|e| io(format!("cannot write {}", file.display()), e))?;
            for (blob_id, bytes) in self.blobs(&dead.record_id)? {
                let ext = match wire_ext(&bytes) {
                    "jwe" => "jwe",
                    _ => "bin",
                };
                let f = blobs_dir.join(format!("{blob_id}.{ext}"));
                write_new(&f, &bytes)
                    .map_err(|e| io(format!("cannot write {}", f.display()), e))?;
            }
            let meta = serde_json::json!({
                "record_id": dead.record_id,
                "station": dead.station,
                "seq": dead.seq,
                "created_ms": dead.created_ms,
                "rejected_ms": dead.rejected_ms,
                "reason": dead.reason,
            });
            let f = rejected.join(format!("{}.json", dead.record_id));
            write_new(&f, meta.to_string().as_bytes())
                .map_err(|e| io(format!("cannot write {}", f.display()), e))?;
            written.push(file);
        }
        Ok(written)
    }
}

pub(super) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
