//! A damaged outbox file is detected at start (it cannot be opened as a database, or SQLite's
//! `quick_check` finds damage), moved aside with its WAL under a `.damaged-<unix ms>` suffix,
//! and replaced by a new, empty outbox. The damaged file is never deleted: an administrator can
//! inspect it or salvage records from it. The chain heads are salvaged when they can still be
//! read, so sequence numbers continue instead of restarting at 1.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use super::{Outbox, OutboxError, now_ms};

/// What was moved aside and what could be carried over.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// Where the damaged file now is.
    pub moved_to: PathBuf,
    /// Why it was judged damaged.
    pub reason: String,
    /// Stations whose chain head was carried over into the new outbox.
    pub chains_salvaged: usize,
}

fn is_corruption(e: &OutboxError) -> Option<String> {
    let OutboxError::Sqlite { source, .. } = e else {
        return None;
    };
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Some(source.to_string()),
        _ => None,
    }
}

/// Opens the outbox; if the file is damaged, moves it aside and opens a new one.
pub fn open_or_quarantine(path: &Path) -> Result<(Outbox, Option<Quarantined>), OutboxError> {
    let reason = match Outbox::open(path) {
        Ok(outbox) => match outbox.quick_check() {
            Ok(None) => return Ok((outbox, None)),
            Ok(Some(problem)) => problem,
            Err(e) => match is_corruption(&e) {
                Some(reason) => reason,
                None => return Err(e),
            },
        },
        Err(e) => match is_corruption(&e) {
            Some(reason) => reason,
            None => return Err(e),
        },
    };
    let moved_to = quarantine(path)?;
    let chains = salvage_chains(&moved_to);
    let outbox = Outbox::open(path)?;
    for (station, seq, head) in &chains {
        outbox
            .conn
            .execute(
                "INSERT OR IGNORE INTO chain (station, seq, head) VALUES (?1, ?2, ?3)",
                params![station, seq, head],
            )
            .map_err(|e| outbox.err(e))?;
    }
    Ok((
        outbox,
        Some(Quarantined {
            moved_to,
            reason,
            chains_salvaged: chains.len(),
        }),
    ))
}

impl Outbox {
    /// SQLite's `quick_check`: None when the file is sound, else the first problems found.
    pub fn quick_check(&self) -> Result<Option<String>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check(5)")
            .map_err(|e| self.err(e))?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        if lines.len() == 1 && lines[0] == "ok" {
            Ok(None)
        } else {
            Ok(Some(format!("quick_check: {}", lines.join("; "))))
        }
    }
}

/// Renames the database and its WAL and shared-memory files aside; returns the new main path.
fn quarantine(path: &Path) -> Result<PathBuf, OutboxError> {
    let suffix = format!(".damaged-{}", now_ms());
    let with = |p: &Path, extra: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(extra);
        PathBuf::from(s)
    };
    let moved_to = with(path, &suffix);
    for extra in ["", "-wal", "-shm"] {
        let from = with(path, extra);
        if from.exists() {
            let to = with(&moved_to, extra);
            std::fs::rename(&from, &to).map_err(|source| OutboxError::Io {
                path: path.to_path_buf(),
                what: format!("cannot move the damaged file {} aside", from.display()),
                source,
            })?;
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(moved_to)
}

/// Best effort: the chain heads still readable in the damaged file.
fn salvage_chains(damaged: &Path) -> Vec<(String, i64, String)> {
    let Ok(conn) = Connection::open_with_flags(damaged, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT station, seq, head FROM chain") else {
        return Vec::new();
    };
    let Ok(rows) = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))) else {
        return Vec::new();
    };
    rows.filter_map(Result::ok).collect()
}
