//! The durable outbox: sealed records waiting for the case system's acknowledgement.
//!
//! SQLite in WAL mode with `synchronous=FULL`, so a commit survives power loss, not only a crash
//! (WAL + NORMAL may roll back the last commits after an OS crash). A record is appended in the
//! same transaction that advances the station's hash chain, so a sequence number is never reused
//! and `prev` always names the record before it. Rows leave only on the case system's ack
//! (deleted) or rejection (moved to `dead_letters`, never deleted silently). This module stores
//! records as opaque bytes with ids; it knows nothing of JOSE or MQTT.
//!
//! Capacity limits ([`Limits`]) refuse new records, never drop old ones. Blob transfer progress
//! reported by the case system and the intake keys of hot-folder files live here too, so both
//! survive a crash with the records they belong to. A damaged file is moved aside at start
//! ([`recover`]).

mod admin;
mod commands;
pub mod head;
mod progress;
#[cfg(test)]
mod props;
mod receipts;
pub mod recover;
pub mod reserve;
mod session;
mod station;

pub use admin::{DeadLetter, Listed};
pub use progress::ProgressApplied;
pub use receipts::{KeptReceipt, Receipt, ReceiptLimits};
pub use recover::{Quarantined, open_or_quarantine};
pub use session::SessionAdded;
pub use station::open_for_station;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::record::{ChainLink, Sealed, chain_hash};

const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("outbox {path}: cannot create its directory: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "outbox {path} has schema version {found}; this countersign understands {SCHEMA_VERSION}"
    )]
    Version { path: PathBuf, found: i64 },
    #[error("outbox {path}: sealing failed: {reason}")]
    Seal { path: PathBuf, reason: String },
    /// Capacity reached: the new record was refused, nothing held was touched.
    #[error("outbox {path} is full: {detail}; the capture was refused, nothing held was dropped")]
    Full { path: PathBuf, detail: String },
    #[error("outbox {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: String,
        source: std::io::Error,
    },
}

/// Capacity limits: counted over everything held (pending records and dead letters, with blobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_records: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: i64::MAX as u64,
            max_records: i64::MAX as u64,
        }
    }
}

/// The case system's answer for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Stored: the record and its blobs leave the outbox.
    Stored(String),
    /// Rejected with a reason: the record moves to the dead letters, its blobs stay.
    Rejected(String, String),
}

/// An answer with what it is bound to: applied only when the record's wire bytes hash to
/// `record_sha256` (checked in the transaction that applies it, so nothing changes otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub settle: Settle,
    /// `sha256:<hex>` of the record's wire bytes; None for an unsigned answer (binds nothing).
    pub record_sha256: Option<String>,
    /// The signed receipt, kept after the record leaves.
    pub receipt: Option<Receipt>,
}

/// What an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Applied,
    /// The record is not (or no longer) pending: a duplicate, or an answer for another station's
    /// or a forgotten record. Nothing changed.
    Absent,
    /// The record is pending but its bytes do not hash to what the answer names: a receipt
    /// replayed onto another record, or a forgery. Nothing changed.
    WrongHash,
}

/// A record waiting for delivery.
#[derive(Debug, Clone)]
pub struct Pending {
    pub record_id: String,
    pub seq: u64,
    pub wire: Vec<u8>,
}

/// A blob as the uplink sends it.
#[derive(Debug)]
pub struct BlobToSend {
    pub wire: Vec<u8>,
    /// The case system's reported progress (next offset it wants).
    pub resume_at: u64,
    /// `sha256:<hex>` of `wire`, kept since it was stored (None for older files).
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub depth: u64,
    pub bytes: u64,
    /// Unix milliseconds of the oldest undelivered record.
    pub oldest_created_ms: Option<i64>,
    pub dead_letters: u64,
}

pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    limits: Limits,
    /// Intake key for the next append (see [`Outbox::tag_next_append`]).
    next_intake: Option<String>,
    /// A session whose blobs and rows the next append absorbs (see `session`).
    next_session: Option<String>,
    /// Room kept for a full disk (the daemon's outbox only; see `reserve`).
    reserve: Option<reserve::Reserve>,
    receipt_limits: ReceiptLimits,
    /// Receipts kept since they were last pruned.
    receipts_since_prune: u32,
}

/// The outbox shared between the station (appends) and the uplink (reads, acks). SQLite calls
/// block, so async code goes through [`run`].
pub type SharedOutbox = Arc<Mutex<Outbox>>;

/// Runs a blocking outbox operation off the async runtime.
pub async fn run<R, F>(outbox: &SharedOutbox, f: F) -> R
where
    F: FnOnce(&mut Outbox) -> R + Send + 'static,
    R: Send + 'static,
{
    let outbox = outbox.clone();
    let task = tokio::task::spawn_blocking(move || {
        // A poisoned lock means a panic mid-operation; SQLite rolled the transaction back, so
        // the connection is still consistent and we keep using it.
        let mut guard = outbox.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    });
    match task.await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Files written before blobs kept their wire hash get the (nullable) column; their blobs are
/// hashed when sent, as before. An added nullable column leaves the file readable by older
/// versions, so the schema version stays.
fn add_wire_hash_columns(conn: &Connection) -> rusqlite::Result<()> {
    for table in ["blobs", "session_blobs"] {
        let has: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = 'sha256'",
            [table],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN sha256 TEXT"))?;
        }
    }
    Ok(())
}

/// Every table and index `open` creates, to tell whether the schema needs creating.
const SCHEMA_OBJECTS: [&str; 13] = [
    "meta",
    "chain",
    "records",
    "blobs",
    "blobs_by_record",
    "dead_letters",
    "blob_progress",
    "intake",
    "sessions",
    "session_items",
    "session_blobs",
    "receipts",
    "receipts_by_time",
];

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )
}

fn schema_complete(conn: &Connection) -> rusqlite::Result<bool> {
    let mut found = 0usize;
    for name in SCHEMA_OBJECTS {
        let there: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        found += usize::from(there);
    }
    Ok(found == SCHEMA_OBJECTS.len())
}

/// SQLITE_FULL: the disk (or the file size limit) has no room for the write.
pub(crate) fn is_disk_full(e: &OutboxError) -> bool {
    matches!(e, OutboxError::Sqlite { source, .. }
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Outbox {
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::Dir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let err = |source| OutboxError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        // The busy timeout first: switching to WAL needs a lock a running daemon may hold for a
        // moment (tools like `countersign outbox status` open the file beside it).
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // Every transaction takes the write lock up front: the daemon and an admin tool
        // (`outbox retry`, `outbox status`) share this file, and a deferred transaction that reads
        // and then writes gets SQLITE_BUSY at once, without waiting, if the other side commits
        // in between.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        // Switching a new file to WAL needs the file to itself: when another process opens the
        // same new file at that moment, SQLite answers "database is locked" at once, without
        // its busy handler. Try again for as long as the busy timeout would have waited.
        let mut tries = 0;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && tries < 1000 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(err(e)),
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // Nothing is written at open unless it must be: on a full disk the daemon still starts
        // and drains (see `reserve`). The schema is created only when something is missing.
        if !schema_complete(&conn).map_err(err)? {
            // Checked again under the write lock: another process (the daemon and `countersign
            // outbox`, at a station's first start) may be creating it at this moment, and a
            // half-made schema must neither look like a file from before receipts nor lack its
            // version row.
            let tx = conn.transaction().map_err(err)?;
            if !schema_complete(&tx).map_err(err)? {
                // A file that held records before receipts existed belongs to an upgraded station.
                let upgrading = table_exists(&tx, "records").map_err(err)?
                    && !table_exists(&tx, "receipts").map_err(err)?;
                tx.execute_batch(
                    "CREATE TABLE IF NOT EXISTS meta (
                         key TEXT PRIMARY KEY,
                         value INTEGER NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS chain (
                         station TEXT PRIMARY KEY,
                         seq INTEGER NOT NULL,
                         head TEXT NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS records (
                         id INTEGER PRIMARY KEY AUTOINCREMENT,
                         record_id TEXT NOT NULL UNIQUE,
                         station TEXT NOT NULL,
                         seq INTEGER NOT NULL,
                         wire BLOB NOT NULL,
                         created_ms INTEGER NOT NULL,
                         attempts INTEGER NOT NULL DEFAULT 0,
                         last_attempt_ms INTEGER
                     );
                     CREATE TABLE IF NOT EXISTS blobs (
                         blob_id TEXT PRIMARY KEY,
                         record_id TEXT NOT NULL,
                         ordinal INTEGER NOT NULL,
                         wire BLOB NOT NULL,
                         sha256 TEXT
                     );
                     CREATE INDEX IF NOT EXISTS blobs_by_record ON blobs (record_id, ordinal);
                     CREATE TABLE IF NOT EXISTS dead_letters (
                         id INTEGER PRIMARY KEY,
                         record_id TEXT NOT NULL UNIQUE,
                         station TEXT NOT NULL,
                         seq INTEGER NOT NULL,
                         wire BLOB NOT NULL,
                         created_ms INTEGER NOT NULL,
                         rejected_ms INTEGER NOT NULL,
                         reason TEXT NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS blob_progress (
                         blob_id TEXT PRIMARY KEY,
                         next_offset INTEGER NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS intake (
                         key TEXT PRIMARY KEY,
                         record_id TEXT NOT NULL,
                         created_ms INTEGER NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS sessions (
                         session_id TEXT PRIMARY KEY,
                         opened_ms INTEGER NOT NULL,
                         touched_ms INTEGER NOT NULL,
                         meta BLOB NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS session_items (
                         session_id TEXT NOT NULL,
                         ordinal INTEGER NOT NULL,
                         item BLOB NOT NULL,
                         PRIMARY KEY (session_id, ordinal)
                     );
                     CREATE TABLE IF NOT EXISTS session_blobs (
                         blob_id TEXT PRIMARY KEY,
                         session_id TEXT NOT NULL,
                         ordinal INTEGER NOT NULL,
                         wire BLOB NOT NULL,
                         sha256 TEXT
                     );
                     INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 1);",
                )
                .map_err(err)?;
                // An added table leaves the file readable by older versions: the version stays.
                tx.execute_batch(receipts::CREATE).map_err(err)?;
                if upgrading {
                    receipts::mark_upgrade(&tx).map_err(err)?;
                }
            }
            tx.commit().map_err(err)?;
        }
        let found: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if found != SCHEMA_VERSION {
            return Err(OutboxError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        add_wire_hash_columns(&conn).map_err(err)?;
        progress::hash_legacy_intake_keys(&conn).map_err(err)?;
        // What is held is counted once here and then kept up to date by every write, so the
        // capacity check on each append costs two reads, not a scan of the outbox.
        // Written only when the kept figures are off (a file from an older version, or none yet).
        let tx = conn.transaction().map_err(err)?;
        let (records, bytes) = Self::count_held(&tx).map_err(err)?;
        let kept = Self::held_if_kept(&tx).map_err(err)?;
        if kept != Some((records, bytes)) {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('held_records', ?1), ('held_bytes', ?2)",
                params![records as i64, bytes as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Outbox {
            conn,
            path: path.to_path_buf(),
            limits: Limits::default(),
            next_intake: None,
            next_session: None,
            reserve: None,
            receipt_limits: ReceiptLimits::default(),
            receipts_since_prune: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the capacity limits checked by [`Outbox::append`].
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Records held (pending and dead letters) and their bytes with blobs, as kept in `meta`.
    fn held(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
        conn.query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'held_records'),
                    (SELECT value FROM meta WHERE key = 'held_bytes')",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            },
        )
    }

    /// The held counters as kept in `meta`, None when they are not there.
    fn held_if_kept(conn: &Connection) -> rusqlite::Result<Option<(u64, u64)>> {
        conn.query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'held_records'),
                    (SELECT value FROM meta WHERE key = 'held_bytes')",
            [],
            |r| {
                let records: Option<i64> = r.get(0)?;
                let bytes: Option<i64> = r.get(1)?;
                Ok(records
                    .zip(bytes)
                    .map(|(n, b)| (n.max(0) as u64, b.max(0) as u64)))
            },
        )
    }

    /// Keeps `reserve` for a full disk (the daemon's outbox), written now when there is room;
    /// false when it could not be (the disk is full: captures are refused until it fits).
    pub fn set_reserve(&mut self, reserve: reserve::Reserve) -> bool {
        let held = reserve.ensure().is_ok();
        self.reserve = Some(reserve);
        held
    }

    /// A new capture may take room only while the reserve is held (it is written again as soon
    /// as it fits): a capture must never spend the room that draining the outbox needs.
    pub(crate) fn admit_capture(&self) -> Result<(), OutboxError> {
        let Some(reserve) = &self.reserve else {
            return Ok(());
        };
        reserve.ensure().map_err(|e| self.disk_full(&e.to_string()))
    }

    fn disk_full(&self, cause: &str) -> OutboxError {
        OutboxError::Full {
            path: self.path.clone(),
            detail: format!(
                "disk full: the disk holding {} has no room ({cause}); captures resume once space is freed, and records held are still delivered",
                self.path.display()
            ),
        }
    }

    /// Runs a write; when it fails for want of room, gives the reserve back and tries once more
    /// (acks and delivery bookkeeping must work on a full disk).
    fn with_room<R>(
        &mut self,
        mut write: impl FnMut(&mut Self) -> Result<R, OutboxError>,
    ) -> Result<R, OutboxError> {
        match write(self) {
            Err(e) if is_disk_full(&e) && self.release_reserve() => write(self),
            result => result,
        }
    }

    /// Deletes the reserve; true when there was one to give back.
    fn release_reserve(&self) -> bool {
        let released = self.reserve.as_ref().is_some_and(|r| r.release());
        if released {
            tracing::warn!(
                outbox = %self.path.display(),
                "disk full: released the outbox's reserve so that records can still be delivered; new captures are refused until space is freed"
            );
        }
        released
    }

    /// Adds to the held counters (negative to subtract), inside the caller's transaction.
    fn add_held(conn: &Connection, records: i64, bytes: i64) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE meta SET value = value + CASE key WHEN 'held_records' THEN ?1 ELSE ?2 END
             WHERE key IN ('held_records', 'held_bytes')",
            params![records, bytes],
        )
        .map(|_| ())
    }

    /// Counts what is held by scanning the tables (at open).
    fn count_held(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM records) + (SELECT COUNT(*) FROM dead_letters),
                    (SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM records)
                  + (SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM dead_letters)
                  + (SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM blobs)
                  + (SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM session_blobs)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends the station's next record with its blobs. `seal` receives the chain link (next
    /// sequence number and the previous record's hash) and returns the sealed record. Returns after
    /// the commit is durable; only then may the capture be acknowledged.
    pub fn append<F>(&mut self, station: &str, seal: F) -> Result<(ChainLink, String), OutboxError>
    where
        F: FnOnce(&ChainLink) -> Result<Sealed, String>,
    {
        let result = match self.admit_capture() {
            Ok(()) => self.append_inner(station, seal),
            Err(e) => Err(e),
        };
        let result = match result {
            Err(e) if is_disk_full(&e) => {
                self.release_reserve();
                Err(self.disk_full(&e.to_string()))
            }
            result => result,
        };
        self.next_intake = None;
        self.next_session = None;
        result
    }

    fn append_inner<F>(
        &mut self,
        station: &str,
        seal: F,
    ) -> Result<(ChainLink, String), OutboxError>
    where
        F: FnOnce(&ChainLink) -> Result<Sealed, String>,
    {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| OutboxError::Sqlite {
                path: path.clone(),
                source,
            })?;
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let head: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, head FROM chain WHERE station = ?1",
                [station],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sqlite)?;
        let link = match head {
            Some((seq, head)) => ChainLink {
                seq: seq as u64 + 1,
                prev: Some(head),
            },
            None => ChainLink { seq: 1, prev: None },
        };
        let Sealed {
            record_id,
            wire,
            blobs,
        } = seal(&link).map_err(|reason| OutboxError::Seal {
            path: path.clone(),
            reason,
        })?;
        let (held_records, held_bytes) = Self::held(&tx).map_err(sqlite)?;
        let new_bytes = wire.len() as u64 + blobs.iter().map(|b| b.wire.len() as u64).sum::<u64>();
        let limits = self.limits;
        let full = if held_records + 1 > limits.max_records {
            Some(format!(
                "{held_records} records held, limit {} (outbox.max_records)",
                limits.max_records
            ))
        } else if held_bytes + new_bytes > limits.max_bytes {
            Some(format!(
                "{held_bytes} bytes held, {new_bytes} more needed, limit {} (outbox.max_bytes)",
                limits.max_bytes
            ))
        } else {
            None
        };
        if let Some(detail) = full {
            self.next_intake = None;
            return Err(OutboxError::Full { path, detail });
        }
        if let Some(key) = self.next_intake.take() {
            tx.execute(
                "INSERT OR REPLACE INTO intake (key, record_id, created_ms) VALUES (?1, ?2, ?3)",
                params![key, record_id, now_ms()],
            )
            .map_err(sqlite)?;
        }
        tx.execute(
            "INSERT INTO records (record_id, station, seq, wire, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![record_id, station, link.seq as i64, wire, now_ms()],
        )
        .map_err(sqlite)?;
        for (ordinal, blob) in blobs.iter().enumerate() {
            // The wire hash every chunk carries, computed once here rather than at each send
            // (hashing at send time cost the drain about a third of its throughput).
            tx.execute(
                "INSERT INTO blobs (blob_id, record_id, ordinal, wire, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![blob.blob_id, record_id, ordinal as i64, blob.wire, chain_hash(&blob.wire)],
            )
            .map_err(sqlite)?;
        }
        if let Some(session_id) = self.next_session.take() {
            // The session's blobs (counted as held since they were captured) become the record's,
            // and the session is gone: one transaction, so a crash leaves one or the other.
            session::absorb(&tx, &session_id, &record_id, blobs.len()).map_err(sqlite)?;
        }
        tx.execute(
            "INSERT INTO chain (station, seq, head) VALUES (?1, ?2, ?3)
             ON CONFLICT(station) DO UPDATE SET seq = excluded.seq, head = excluded.head",
            params![station, link.seq as i64, chain_hash(&wire)],
        )
        .map_err(sqlite)?;
        Self::add_held(&tx, 1, new_bytes as i64).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok((link, record_id))
    }

    /// The oldest undelivered records, in order (at most `limit`).
    pub fn oldest(&self, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record_id, seq, wire FROM records ORDER BY id LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(Pending {
                    record_id: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    wire: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A record's blobs (id and wire bytes), in manifest order.
    pub fn blobs(&self, record_id: &str) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blob_id, wire FROM blobs WHERE record_id = ?1 ORDER BY ordinal")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([record_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A record's blob ids, in manifest order.
    pub fn blob_ids(&self, record_id: &str) -> Result<Vec<String>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blob_id FROM blobs WHERE record_id = ?1 ORDER BY ordinal")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([record_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A blob's wire bytes, the case system's progress on it, and its wire hash
    /// (`sha256:<hex>`; None in files written before it was kept).
    pub fn blob_for_sending(&self, blob_id: &str) -> Result<Option<BlobToSend>, OutboxError> {
        let found: Option<(Vec<u8>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT wire, sha256 FROM blobs WHERE blob_id = ?1",
                [blob_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match found {
            Some((wire, sha256)) => Ok(Some(BlobToSend {
                wire,
                resume_at: self.progress(blob_id)?,
                sha256,
            })),
            None => Ok(None),
        }
    }

    /// Applies the case system's answers in one transaction (one fsync for a burst of acks).
    /// Returns, per answer, whether it changed anything (false for duplicates).
    pub fn settle(&mut self, answers: &[Settle]) -> Result<Vec<bool>, OutboxError> {
        let answers: Vec<Answered> = answers
            .iter()
            .map(|settle| Answered {
                settle: settle.clone(),
                record_sha256: None,
                receipt: None,
            })
            .collect();
        let settled = self.settle_checked(&answers)?;
        Ok(settled.into_iter().map(|s| s == Settled::Applied).collect())
    }

    /// Applies answers bound to record hashes, keeping their receipts, in one transaction.
    pub fn settle_checked(&mut self, answers: &[Answered]) -> Result<Vec<Settled>, OutboxError> {
        self.with_room(|o| o.with_relaxed_sync(|o| o.settle_inner(answers)))
    }

    /// Runs `f` with `synchronous=NORMAL`, then restores FULL. For writes that may be lost on a
    /// power cut without losing anything: a lost ack deletion means the record is sent again and
    /// the case system answers again (it is idempotent); lost progress means chunks sent again.
    /// In WAL mode the next FULL commit makes them durable too, in order. Captures always commit
    /// with FULL.
    pub(crate) fn with_relaxed_sync<R>(
        &mut self,
        f: impl FnOnce(&mut Outbox) -> Result<R, OutboxError>,
    ) -> Result<R, OutboxError> {
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err(e))?;
        let result = f(self);
        let restored = self
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e));
        let result = result?;
        restored?;
        Ok(result)
    }

    fn settle_inner(&mut self, answers: &[Answered]) -> Result<Vec<Settled>, OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let mut changed = Vec::with_capacity(answers.len());
        let mut kept = 0u32;
        for answered in answers {
            let answer = &answered.settle;
            let record_id = match answer {
                Settle::Stored(id) | Settle::Rejected(id, _) => id,
            };
            let pending: Option<(Vec<u8>, i64)> = tx
                .query_row(
                    "SELECT wire, seq FROM records WHERE record_id = ?1",
                    [record_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sqlite)?;
            let Some((wire, seq)) = pending else {
                changed.push(Settled::Absent);
                continue;
            };
            let actual = crate::receipts::sha256_ref(&wire);
            if answered
                .record_sha256
                .as_ref()
                .is_some_and(|bound| *bound != actual)
            {
                changed.push(Settled::WrongHash);
                continue;
            }
            if let Some(receipt) = &answered.receipt {
                let status = match answer {
                    Settle::Stored(_) => "stored",
                    Settle::Rejected(..) => "rejected",
                };
                receipts::keep(&tx, record_id, seq, status, &actual, receipt).map_err(sqlite)?;
                kept += 1;
            }
            let n = match answer {
                Settle::Stored(_) => 0,
                Settle::Rejected(id, reason) => tx
                    .execute(
                        "INSERT OR IGNORE INTO dead_letters (record_id, station, seq, wire, created_ms, rejected_ms, reason)
                         SELECT record_id, station, seq, wire, created_ms, ?2, ?3 FROM records WHERE record_id = ?1",
                        params![id, now_ms(), reason],
                    )
                    .map_err(sqlite)?,
            };
            tx.execute(
                "DELETE FROM blob_progress WHERE blob_id IN (SELECT blob_id FROM blobs WHERE record_id = ?1)",
                [record_id],
            )
            .map_err(sqlite)?;
            let freed: i64 = if matches!(answer, Settle::Stored(_)) {
                tx.query_row(
                    "SELECT COALESCE((SELECT LENGTH(wire) FROM records WHERE record_id = ?1), 0)
                          + COALESCE((SELECT SUM(LENGTH(wire)) FROM blobs WHERE record_id = ?1), 0)",
                    [record_id],
                    |r| r.get(0),
                )
                .map_err(sqlite)?
            } else {
                0
            };
            let deleted = tx
                .execute("DELETE FROM records WHERE record_id = ?1", [record_id])
                .map_err(sqlite)?;
            if matches!(answer, Settle::Stored(_)) && deleted > 0 {
                tx.execute("DELETE FROM blobs WHERE record_id = ?1", [record_id])
                    .map_err(sqlite)?;
                Self::add_held(&tx, -1, -freed).map_err(sqlite)?;
            }
            let applied = match answer {
                Settle::Stored(_) => deleted > 0,
                Settle::Rejected(..) => n > 0,
            };
            changed.push(if applied {
                Settled::Applied
            } else {
                Settled::Absent
            });
        }
        if receipts::prune_due(&mut self.receipts_since_prune, kept) {
            receipts::prune(&tx, self.receipt_limits, now_ms()).map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)?;
        Ok(changed)
    }

    /// Notes delivery attempts in one transaction (for status and diagnostics).
    pub fn mark_attempts(&mut self, record_ids: &[String]) -> Result<(), OutboxError> {
        self.with_room(|o| o.with_relaxed_sync(|o| o.mark_attempts_inner(record_ids)))
    }

    fn mark_attempts_inner(&mut self, record_ids: &[String]) -> Result<(), OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        for id in record_ids {
            tx.execute(
                "UPDATE records SET attempts = attempts + 1, last_attempt_ms = ?2 WHERE record_id = ?1",
                params![id, now_ms()],
            )
            .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)
    }

    /// Notes a delivery attempt (for status and diagnostics).
    pub fn mark_attempt(&self, record_id: &str) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE records SET attempts = attempts + 1, last_attempt_ms = ?2 WHERE record_id = ?1",
                params![record_id, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The case system stored the record: it leaves the outbox. Returns false when it was not
    /// (or no longer) in the outbox, e.g. a duplicate ack.
    pub fn acknowledge(&mut self, record_id: &str) -> Result<bool, OutboxError> {
        Ok(self.settle(&[Settle::Stored(record_id.to_string())])?[0])
    }

    /// The case system rejected the record: it moves to `dead_letters` with the reason (its blobs
    /// stay, for export and retry).
    pub fn reject(&mut self, record_id: &str, reason: &str) -> Result<bool, OutboxError> {
        Ok(self.settle(&[Settle::Rejected(record_id.to_string(), reason.to_string())])?[0])
    }

    pub fn stats(&self) -> Result<Stats, OutboxError> {
        let (depth, bytes, oldest): (i64, i64, Option<i64>) = self
            .conn
            .query_row(
                "SELECT COUNT(*),
                        COALESCE(SUM(LENGTH(wire)), 0)
                          + (SELECT COALESCE(SUM(LENGTH(b.wire)), 0) FROM blobs b
                             WHERE b.record_id IN (SELECT record_id FROM records)),
                        MIN(created_ms)
                 FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))?;
        let dead: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(Stats {
            depth: depth as u64,
            bytes: bytes as u64,
            oldest_created_ms: oldest,
            dead_letters: dead as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_as(id: &str) -> impl FnOnce(&ChainLink) -> Result<Sealed, String> + '_ {
        move |link| {
            Ok(Sealed {
                record_id: id.to_string(),
                wire: format!("wire-{id}-{}", link.seq).into_bytes(),
                blobs: vec![crate::record::SealedBlob {
                    blob_id: format!("{id}-photo"),
                    wire: vec![7; 100],
                }],
            })
        }
    }

    #[test]
    fn pragmas_are_wal_and_full() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        let mode: String = outbox
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = outbox
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn chain_sequence_survives_reopen_and_acks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let mut outbox = Outbox::open(&path).unwrap();
        let (l1, _) = outbox.append("s1", seal_as("a")).unwrap();
        let (l2, _) = outbox.append("s1", seal_as("b")).unwrap();
        assert_eq!(l1, ChainLink { seq: 1, prev: None });
        assert_eq!(l2.seq, 2);
        assert_eq!(l2.prev.as_deref(), Some(chain_hash(b"wire-a-1").as_str()));
        assert_eq!(
            outbox.blobs("a").unwrap(),
            [("a-photo".to_string(), vec![7; 100])]
        );
        assert!(outbox.acknowledge("a").unwrap());
        assert!(
            outbox.blobs("a").unwrap().is_empty(),
            "blobs leave with their record"
        );
        assert!(outbox.acknowledge("b").unwrap());
        assert!(
            !outbox.acknowledge("b").unwrap(),
            "duplicate ack is a no-op"
        );
        drop(outbox);
        // Acked records are gone, but the chain continues: seq is never reused.
        let mut outbox = Outbox::open(&path).unwrap();
        let (l3, _) = outbox.append("s1", seal_as("c")).unwrap();
        assert_eq!(l3.seq, 3);
        assert_eq!(l3.prev.as_deref(), Some(chain_hash(b"wire-b-2").as_str()));
    }

    #[test]
    fn oldest_is_fifo_and_reject_moves_to_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        for id in ["a", "b", "c"] {
            outbox.append("s1", seal_as(id)).unwrap();
        }
        let ids: Vec<_> = outbox
            .oldest(2)
            .unwrap()
            .into_iter()
            .map(|p| p.record_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(outbox.reject("b", "schema unknown").unwrap());
        let stats = outbox.stats().unwrap();
        assert_eq!(stats.depth, 2);
        assert_eq!(stats.bytes, 2 * (8 + 100));
        assert_eq!(stats.dead_letters, 1);
        assert_eq!(
            outbox.blobs("b").unwrap().len(),
            1,
            "a dead letter keeps its blobs"
        );
        let ids: Vec<_> = outbox
            .oldest(10)
            .unwrap()
            .into_iter()
            .map(|p| p.record_id)
            .collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn failed_seal_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        assert!(outbox.append("s1", |_| Err("no key".to_string())).is_err());
        let (link, _) = outbox.append("s1", seal_as("a")).unwrap();
        assert_eq!(
            link.seq, 1,
            "a failed seal must not consume a sequence number"
        );
        assert_eq!(outbox.stats().unwrap().depth, 1);
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;
    use crate::record::SealedBlob;

    fn seal(id: &str, blob: usize) -> impl FnOnce(&ChainLink) -> Result<Sealed, String> + '_ {
        move |_| {
            Ok(Sealed {
                record_id: id.to_string(),
                wire: vec![b'w'; 100],
                blobs: vec![SealedBlob {
                    blob_id: format!("{id}-b"),
                    wire: vec![b'b'; blob],
                }],
            })
        }
    }

    #[test]
    fn without_room_for_the_reserve_captures_are_refused_as_disk_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        o.append("s", seal("a", 10)).unwrap();
        // A reserve that cannot be written (its directory is missing) stands for a full disk.
        let nowhere = dir.path().join("nowhere");
        assert!(!o.set_reserve(reserve::Reserve::beside(&nowhere.join("o.sqlite"), 4096)));
        let e = o.append("s", seal("b", 10)).unwrap_err();
        assert!(
            matches!(&e, OutboxError::Full { detail, .. } if detail.starts_with("disk full")),
            "{e}"
        );
        let tx = o.conn.transaction().unwrap();
        assert_eq!(
            Outbox::count_held(&tx).unwrap().0,
            1,
            "nothing half-written"
        );
        drop(tx);
        // Room again: the reserve is written and captures resume, the chain unbroken.
        std::fs::create_dir(&nowhere).unwrap();
        let (link, _) = o.append("s", seal("c", 10)).unwrap();
        assert_eq!(link.seq, 2);
        assert!(nowhere.join(reserve::FILE_NAME).is_file());
    }

    #[test]
    fn opening_an_existing_outbox_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        {
            let mut o = Outbox::open(&path).unwrap();
            o.append("s", seal("a", 10)).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let o = Outbox::open(&path).unwrap();
        let wal = std::fs::metadata(dir.path().join("o.sqlite-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(wal, 0, "no WAL frames written by opening");
        drop(o);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn limits_refuse_new_records_and_keep_held_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        o.set_limits(Limits {
            max_records: 2,
            max_bytes: 2000,
        });
        o.append("s", seal("a", 500)).unwrap();
        let e = o.append("s", seal("b", 2000)).unwrap_err();
        assert!(
            matches!(&e, OutboxError::Full { detail, .. } if detail.contains("outbox.max_bytes")),
            "{e}"
        );
        o.append("s", seal("b", 500)).unwrap();
        // A dead letter still counts: it is on the disk.
        o.reject("a", "no").unwrap();
        let e = o.append("s", seal("c", 10)).unwrap_err();
        assert!(
            e.to_string()
                .contains("2 records held, limit 2 (outbox.max_records)"),
            "{e}"
        );
        assert_eq!(o.stats().unwrap().depth, 1);
        assert!(o.acknowledge("b").unwrap());
        let (link, _) = o.append("s", seal("c", 10)).unwrap();
        assert_eq!(link.seq, 3, "a refused record used no sequence number");
    }

    #[test]
    fn files_from_before_the_wire_hash_column_open_and_send() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let mut o = Outbox::open(&path).unwrap();
        o.append("s", seal("a", 10)).unwrap();
        // As the previous version left it: no sha256 columns.
        o.conn
            .execute_batch(
                "ALTER TABLE blobs DROP COLUMN sha256; ALTER TABLE session_blobs DROP COLUMN sha256;",
            )
            .unwrap();
        drop(o);
        let mut o = Outbox::open(&path).unwrap();
        let old = o.blob_for_sending("a-b").unwrap().unwrap();
        assert_eq!((old.wire.len(), old.sha256), (10, None), "hashed when sent");
        o.append("s", seal("b", 10)).unwrap();
        let new = o.blob_for_sending("b-b").unwrap().unwrap();
        assert_eq!(new.sha256, Some(chain_hash(&new.wire)));
    }

    #[test]
    fn progress_survives_and_leaves_with_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let mut o = Outbox::open(&path).unwrap();
        o.append("s", seal("a", 1000)).unwrap();
        let applied = o
            .set_progress(&[
                ("a-b".into(), 300),
                ("a-b".into(), 600),
                ("zz".into(), 5),
                ("a-b".into(), 9999),
            ])
            .unwrap();
        assert_eq!(
            applied, 2,
            "unknown blobs and offsets past the end are ignored"
        );
        drop(o);
        let mut o = Outbox::open(&path).unwrap();
        let blob = o.blob_for_sending("a-b").unwrap().unwrap();
        assert_eq!(blob.resume_at, 600);
        assert_eq!(blob.sha256, Some(chain_hash(&blob.wire)));
        assert!(o.acknowledge("a").unwrap());
        assert_eq!(o.progress("a-b").unwrap(), 0);
    }

    #[test]
    fn dead_letters_export_and_retry() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
        o.append("s", seal("a", 10)).unwrap();
        o.append("s", seal("b", 10)).unwrap();
        assert!(o.reject("a", "bad case").unwrap());
        let dead = o.dead_letters().unwrap();
        assert_eq!((dead.len(), dead[0].reason.as_str()), (1, "bad case"));
        let files = o.export_dead_letters(&dir.path().join("x"), None).unwrap();
        assert_eq!(files, [dir.path().join("x/records/a.bin")]);
        assert_eq!(
            std::fs::read(dir.path().join("x/blobs/a-b.bin")).unwrap(),
            vec![b'b'; 10]
        );
        assert!(dir.path().join("x/rejected/a.json").is_file());
        assert!(
            o.export_dead_letters(&dir.path().join("x"), None).is_err(),
            "never overwrites"
        );
        assert!(o.retry("a").unwrap());
        assert!(!o.retry("a").unwrap());
        let order: Vec<_> = o
            .oldest(10)
            .unwrap()
            .into_iter()
            .map(|p| p.record_id)
            .collect();
        assert_eq!(
            order,
            ["b", "a"],
            "a retried record goes to the end of the queue"
        );
        assert_eq!(o.blobs("a").unwrap().len(), 1, "with its blobs");
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_a_new_one_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        std::fs::write(&path, b"garbage, not a database".repeat(300)).unwrap();
        let (mut o, q) = open_or_quarantine(&path).unwrap();
        let q = q.expect("reported");
        assert!(q.moved_to.to_string_lossy().contains(".damaged-"), "{q:?}");
        assert!(std::fs::read(&q.moved_to).unwrap().starts_with(b"garbage"));
        o.append("s", seal("a", 1)).unwrap();
        drop(o);
        let (_, q) = open_or_quarantine(&path).unwrap();
        assert!(q.is_none(), "a sound file is left alone");

        // Damage inside a real database: the chain head is salvaged when readable.
        let path2 = dir.path().join("p.sqlite");
        let mut o = Outbox::open(&path2).unwrap();
        for id in ["a", "b", "c"] {
            o.append("s", seal(id, 50_000)).unwrap();
        }
        o.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        drop(o);
        let mut bytes = std::fs::read(&path2).unwrap();
        let len = bytes.len();
        for b in &mut bytes[len / 2..len / 2 + 4096] {
            *b = 0xA5;
        }
        std::fs::write(&path2, bytes).unwrap();
        let (mut o, q) = open_or_quarantine(&path2).unwrap();
        let q = q.expect("damage found by quick_check");
        assert_eq!(q.chains_salvaged, 1, "{q:?}");
        let (link, _) = o.append("s", seal("d", 1)).unwrap();
        assert_eq!(link.seq, 4, "the sequence continues");
    }
}
