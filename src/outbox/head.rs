//! The station's chain head read on its own read-only connection, for a device thread that needs
//! it at read time (Active Authentication's challenge is bound to it) without going through the
//! station's shared outbox. WAL readers never wait for the writer; a read sees the last commit.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

/// `(seq, sha256:<hex>)` of the station's last sealed record; `None` before its first.
pub fn chain_head(path: &Path, station: &str) -> Result<Option<(u64, String)>, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    conn.query_row(
        "SELECT seq, head FROM chain WHERE station = ?1",
        [station],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
    )
    .optional()
    .map_err(|e| format!("{}: chain head: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outbox;
    use crate::record::{Sealed, chain_hash};

    #[test]
    fn the_head_follows_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let mut outbox = Outbox::open(&path).unwrap();
        assert_eq!(chain_head(&path, "s1").unwrap(), None);
        for (i, wire) in [b"wire-1", b"wire-2"].iter().enumerate() {
            outbox
                .append("s1", |_| {
                    Ok(Sealed {
                        record_id: format!("r{i}"),
                        wire: wire.to_vec(),
                        blobs: Vec::new(),
                    })
                })
                .unwrap();
            assert_eq!(
                chain_head(&path, "s1").unwrap(),
                Some((i as u64 + 1, chain_hash(*wire)))
            );
        }
        assert_eq!(chain_head(&path, "other").unwrap(), None);
        assert!(chain_head(&dir.path().join("missing.db"), "s1").is_err());
    }
}
