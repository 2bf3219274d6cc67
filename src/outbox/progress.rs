//! Blob transfer progress and intake keys.
//!
//! Progress: the case system reports how many leading bytes of a blob's wire form it holds; a
//! transfer interrupted by a disconnect, a broker restart or a crash resumes there. Progress is
//! an optimisation, never a promise: losing an update only means sending a few chunks again, and
//! the case system may report a smaller number (it lost a partial transfer) to get them again.
//!
//! Intake keys name where a capture came from (a hot-folder file by name and hash), committed in
//! the same transaction as its record, so a file picked up just before a crash is recognised
//! after the restart instead of being captured twice.

use rusqlite::{OptionalExtension, params};

use super::{Outbox, OutboxError, now_ms};

/// How long intake keys are remembered (a file left behind by a crash is recognised within it).
const INTAKE_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

impl Outbox {
    /// Where to resume sending a blob: the case system's last reported contiguous byte count.
    pub fn progress(&self, blob_id: &str) -> Result<u64, OutboxError> {
        let offset: Option<i64> = self
            .conn
            .query_row(
                "SELECT next_offset FROM blob_progress WHERE blob_id = ?1",
                [blob_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(offset.unwrap_or(0).max(0) as u64)
    }

    /// Stores progress reports in one transaction (`(blob_id, next_offset)`; the last one for a
    /// blob wins). Reports for blobs no longer pending are ignored. Returns how many applied.
    pub fn set_progress(&mut self, reports: &[(String, u64)]) -> Result<usize, OutboxError> {
        self.with_relaxed_sync(|o| o.set_progress_inner(reports))
    }

    fn set_progress_inner(&mut self, reports: &[(String, u64)]) -> Result<usize, OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let mut applied = 0;
        for (blob_id, offset) in reports {
            applied += tx
                .execute(
                    "INSERT INTO blob_progress (blob_id, next_offset)
                     SELECT b.blob_id, ?2 FROM blobs b JOIN records r ON r.record_id = b.record_id
                     WHERE b.blob_id = ?1 AND ?2 <= LENGTH(b.wire)
                     ON CONFLICT(blob_id) DO UPDATE SET next_offset = excluded.next_offset",
                    params![blob_id, (*offset).min(i64::MAX as u64) as i64],
                )
                .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)?;
        Ok(applied)
    }

    /// Tags the next [`Outbox::append`] with an intake key, stored in the same transaction.
    /// The tag is cleared by that append, whether it succeeds or not.
    pub fn tag_next_append(&mut self, key: String) {
        self.next_intake = Some(key);
    }

    /// Drops a tag that no append consumed (the seal failed before reaching the outbox).
    pub fn clear_append_tag(&mut self) {
        self.next_intake = None;
    }

    /// The record committed for an intake key, if any (recent keys only).
    pub fn intake_record(&self, key: &str) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row("SELECT record_id FROM intake WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Forgets intake keys older than the retention period.
    pub fn prune_intake(&self) -> Result<usize, OutboxError> {
        self.conn
            .execute(
                "DELETE FROM intake WHERE created_ms < ?1",
                [now_ms() - INTAKE_RETENTION_MS],
            )
            .map_err(|e| self.err(e))
    }
}
