//! Open case sessions, durable before they are sealed: what a session captured survives a
//! restart. Items (identities, page metadata) are stored sealed with the station's local data
//! key (`crate::session::store`), blobs already encrypted to the case system; closing a session
//! appends one record and absorbs the session's blobs into it in the same transaction, so a crash
//! leaves either the open session or the record, never both or neither.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Outbox, OutboxError, now_ms};
use crate::record::SealedBlob;

/// An open session as stored.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub session_id: String,
    pub opened_ms: i64,
    pub touched_ms: i64,
    /// Sealed metadata (case reference, operator, purpose).
    pub meta: Vec<u8>,
}

/// What [`Outbox::session_add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAdded {
    /// Added as the item with this ordinal.
    Added(u32),
    /// Nothing added: the intake key was committed before, as this record (or `session:<id>`).
    AlreadyCommitted(String),
}

/// Moves a session's blobs to `record_id` and deletes the session (inside the append).
pub(super) fn absorb(
    tx: &Connection,
    session_id: &str,
    record_id: &str,
    first_ordinal: usize,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO blobs (blob_id, record_id, ordinal, wire, sha256)
         SELECT blob_id, ?2, ?3 + ordinal, wire, sha256 FROM session_blobs WHERE session_id = ?1",
        params![session_id, record_id, first_ordinal as i64],
    )?;
    tx.execute(
        "DELETE FROM session_blobs WHERE session_id = ?1",
        [session_id],
    )?;
    tx.execute(
        "DELETE FROM session_items WHERE session_id = ?1",
        [session_id],
    )?;
    tx.execute("DELETE FROM sessions WHERE session_id = ?1", [session_id])?;
    Ok(())
}

impl Outbox {
    pub fn session_open(&mut self, session_id: &str, meta: &[u8]) -> Result<(), OutboxError> {
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO sessions (session_id, opened_ms, touched_ms, meta) VALUES (?1, ?2, ?2, ?3)",
                params![session_id, now, meta],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Adds one item with its blobs, durably, within the capacity limits. `intake` tags the
    /// item with a hot-folder intake key; a key committed before (in a session or as a record)
    /// adds nothing. The look-up, the add and the tag are one transaction: one file, one item.
    pub fn session_add(
        &mut self,
        session_id: &str,
        item: &[u8],
        blobs: &[SealedBlob],
        intake: Option<&str>,
    ) -> Result<SessionAdded, OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let limits = self.limits;
        // A full disk refuses the capture before anything is written (see `reserve`).
        self.admit_capture()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        if let Some(key) = intake {
            let before: Option<String> = tx
                .query_row("SELECT record_id FROM intake WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sqlite)?;
            if let Some(record_id) = before {
                return Ok(SessionAdded::AlreadyCommitted(record_id));
            }
        }
        let (_, held_bytes) = Self::held(&tx).map_err(sqlite)?;
        // Items are small; blob bytes are what the capacity limit is about (and what is counted
        // as held, like the outbox's blobs, until the session becomes a record).
        let new_bytes: u64 = blobs.iter().map(|b| b.wire.len() as u64).sum();
        if held_bytes + new_bytes > limits.max_bytes {
            return Err(OutboxError::Full {
                path,
                detail: format!(
                    "{held_bytes} bytes held, {new_bytes} more needed, limit {} (outbox.max_bytes)",
                    limits.max_bytes
                ),
            });
        }
        let ordinal: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(ordinal) + 1, 0) FROM session_items WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        tx.execute(
            "INSERT INTO session_items (session_id, ordinal, item) VALUES (?1, ?2, ?3)",
            params![session_id, ordinal, item],
        )
        .map_err(sqlite)?;
        let first_blob: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(ordinal) + 1, 0) FROM session_blobs WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        for (i, blob) in blobs.iter().enumerate() {
            tx.execute(
                "INSERT INTO session_blobs (blob_id, session_id, ordinal, wire, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    blob.blob_id,
                    session_id,
                    first_blob + i as i64,
                    blob.wire,
                    crate::record::chain_hash(&blob.wire)
                ],
            )
            .map_err(sqlite)?;
        }
        if let Some(key) = intake {
            tx.execute(
                "INSERT INTO intake (key, record_id, created_ms) VALUES (?1, ?2, ?3)",
                params![key, format!("session:{session_id}"), now_ms()],
            )
            .map_err(sqlite)?;
        }
        let touched = tx
            .execute(
                "UPDATE sessions SET touched_ms = ?2 WHERE session_id = ?1",
                params![session_id, now_ms()],
            )
            .map_err(sqlite)?;
        if touched == 0 {
            return Err(OutboxError::Seal {
                path,
                reason: format!("session {session_id} is not open"),
            });
        }
        Self::add_held(&tx, 0, new_bytes as i64).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(SessionAdded::Added(ordinal as u32))
    }

    /// Open sessions (at start, to resume them).
    pub fn sessions(&self) -> Result<Vec<StoredSession>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT session_id, opened_ms, touched_ms, meta FROM sessions ORDER BY opened_ms",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredSession {
                    session_id: r.get(0)?,
                    opened_ms: r.get(1)?,
                    touched_ms: r.get(2)?,
                    meta: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A session's items in capture order.
    pub fn session_items(&self, session_id: &str) -> Result<Vec<Vec<u8>>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare("SELECT item FROM session_items WHERE session_id = ?1 ORDER BY ordinal")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([session_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Deletes a session and everything it captured (cancel). Returns the number of items.
    pub fn session_cancel(&mut self, session_id: &str) -> Result<u32, OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let items: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM session_items WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        let bytes: i64 = tx
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM session_blobs WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        tx.execute(
            "DELETE FROM session_blobs WHERE session_id = ?1",
            [session_id],
        )
        .map_err(sqlite)?;
        tx.execute(
            "DELETE FROM session_items WHERE session_id = ?1",
            [session_id],
        )
        .map_err(sqlite)?;
        tx.execute("DELETE FROM sessions WHERE session_id = ?1", [session_id])
            .map_err(sqlite)?;
        tx.execute(
            "DELETE FROM intake WHERE record_id = ?1",
            [format!("session:{session_id}")],
        )
        .map_err(sqlite)?;
        Self::add_held(&tx, 0, -bytes).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(items as u32)
    }

    /// The next `append` absorbs this session (its blobs become the record's; its rows go).
    pub fn absorb_session_on_next_append(&mut self, session_id: &str) {
        self.next_session = Some(session_id.to_string());
    }

    /// Whether a session is open (stored).
    pub fn session_exists(&self, session_id: &str) -> Result<bool, OutboxError> {
        self.conn
            .query_row(
                "SELECT 1 FROM sessions WHERE session_id = ?1",
                [session_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }
}
