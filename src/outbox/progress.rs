//! Blob transfer progress and intake keys.
//!
//! Progress: the case system reports how many leading bytes of a blob's wire form it holds; a
//! transfer interrupted by a disconnect, a broker restart or a crash resumes there. Progress is
//! an optimisation, never a promise: losing an update only means sending a few chunks again, and
//! the case system may report a smaller number (it lost a partial transfer) to get them again.
//!
//! Intake keys name where a capture came from (a hot-folder file by a hash of its name, size and
//! content: `folder::intake_key`), committed in the same transaction as its record, so a file
//! picked up just before a crash is recognised after the restart instead of being captured twice.
//! File names are often a citizen's name or ID number, so no key carries one; keys stored in
//! plaintext by earlier versions (`folder:<folder>:<name>:<size>:<sha256>`) are rewritten to the
//! hashed form when the outbox is opened.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Outbox, OutboxError, now_ms};

/// How long intake keys are remembered (a file left behind by a crash is recognised within it).
const INTAKE_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// What a batch of progress reports did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressApplied {
    pub applied: usize,
    /// Reports bound to another blob's bytes: refused.
    pub wrong_hash: usize,
}

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
        let reports: Vec<_> = reports
            .iter()
            .map(|(blob, offset)| (blob.clone(), *offset, None))
            .collect();
        Ok(self.set_progress_checked(&reports)?.applied)
    }

    /// Stores progress reports bound to blob hashes (`(blob_id, next_offset, sha256:<hex> of the
    /// blob's wire form)`; None for an unsigned report): a report whose hash is not the blob's
    /// changes nothing and is counted in `wrong_hash`.
    pub fn set_progress_checked(
        &mut self,
        reports: &[(String, u64, Option<String>)],
    ) -> Result<ProgressApplied, OutboxError> {
        self.with_relaxed_sync(|o| o.set_progress_inner(reports))
    }

    fn set_progress_inner(
        &mut self,
        reports: &[(String, u64, Option<String>)],
    ) -> Result<ProgressApplied, OutboxError> {
        let path = self.path.clone();
        let sqlite = |source| OutboxError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let mut done = ProgressApplied::default();
        for (blob_id, offset, bound) in reports {
            if let Some(bound) = bound {
                let kept: Option<Option<String>> = tx
                    .query_row(
                        "SELECT sha256 FROM blobs WHERE blob_id = ?1",
                        [blob_id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sqlite)?;
                let actual = match kept {
                    None => continue,
                    Some(Some(hash)) => hash,
                    // Files from before the hash was kept: hash the bytes.
                    Some(None) => {
                        let wire: Vec<u8> = tx
                            .query_row(
                                "SELECT wire FROM blobs WHERE blob_id = ?1",
                                [blob_id],
                                |r| r.get(0),
                            )
                            .map_err(sqlite)?;
                        crate::receipts::sha256_ref(&wire)
                    }
                };
                if actual != *bound {
                    done.wrong_hash += 1;
                    continue;
                }
            }
            done.applied += tx
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
        Ok(done)
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

/// Rewrites intake keys of earlier versions, which held the file name in plaintext, to the hashed
/// form (the same key the driver computes now, so such a file is still recognised). Reads only
/// when there are none. The old bytes are overwritten (`secure_delete`) and the WAL checkpointed,
/// so the names do not stay in free pages of the database file or in the WAL.
pub(super) fn hash_legacy_intake_keys(conn: &Connection) -> rusqlite::Result<usize> {
    // Hashed keys have two colons (`folder:<folder>:<hex>`); plaintext ones at least four.
    let legacy: Vec<String> = conn
        .prepare("SELECT key FROM intake WHERE key LIKE 'folder:%:%:%:%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if legacy.is_empty() {
        return Ok(0);
    }
    conn.pragma_update(None, "secure_delete", true)?;
    let rewritten = rewrite_keys(conn, &legacy);
    conn.pragma_update(None, "secure_delete", false)?;
    let rewritten = rewritten?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(rewritten)
}

fn rewrite_keys(conn: &Connection, legacy: &[String]) -> rusqlite::Result<usize> {
    let tx = conn.unchecked_transaction()?;
    for old in legacy {
        match hashed_form(old) {
            Some(new) => {
                // Both forms present (cannot happen in practice): keep the hashed one.
                let moved = tx.execute(
                    "UPDATE OR IGNORE intake SET key = ?2 WHERE key = ?1",
                    params![old, new],
                )?;
                if moved == 0 {
                    tx.execute("DELETE FROM intake WHERE key = ?1", [old])?;
                }
            }
            // Not a key this version could have written: it names nothing it can recognise.
            None => {
                tx.execute("DELETE FROM intake WHERE key = ?1", [old])?;
            }
        }
    }
    tx.commit()?;
    Ok(legacy.len())
}

/// `folder:<folder>:<name>:<size>:<sha256>` → the hashed key. Folder names have no colon (config
/// names are letters, digits, `-`, `_`, `.`); file names may, so size and hash are split from
/// the right.
fn hashed_form(old: &str) -> Option<String> {
    let (folder, rest) = old.strip_prefix("folder:")?.split_once(':')?;
    let mut parts = rest.rsplitn(3, ':');
    let sha256 = parts.next()?;
    let size: u64 = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(folder::intake_key(folder, name, size, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_intake_keys_of_earlier_versions_are_hashed_and_still_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.sqlite");
        let name = "张三_110101199003070011.jpg";
        let sha = "ab".repeat(32);
        {
            let outbox = Outbox::open(&path).unwrap();
            outbox
                .conn
                .execute(
                    "INSERT INTO intake (key, record_id, created_ms) VALUES (?1, 'r-1', ?2)",
                    params![format!("folder:scan:{name}:1234:{sha}"), now_ms()],
                )
                .unwrap();
        }
        let outbox = Outbox::open(&path).unwrap();
        let key = folder::intake_key("scan", name, 1234, &sha);
        assert_eq!(outbox.intake_record(&key).unwrap().as_deref(), Some("r-1"));
        drop(outbox);
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        for needle in ["张三".as_bytes(), b"110101199003070011"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} found at rest",
                String::from_utf8_lossy(needle)
            );
        }
        // A key with a colon in the file name is split from the right.
        assert_eq!(
            hashed_form(&format!("folder:scan:a:b.jpg:5:{sha}")),
            Some(folder::intake_key("scan", "a:b.jpg", 5, &sha))
        );
        assert_eq!(hashed_form("folder:scan:x:notanumber:zz"), None);
    }
}
