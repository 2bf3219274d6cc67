//! Room kept for a full disk. The daemon holds a reserve file beside the outbox (`outbox.reserve`,
//! [`RESERVE_BYTES`] of zeros, written while there is room). When the disk fills up (the outbox
//! or anything else on it), the reserve is released: SQLite then has room to open the file (its
//! WAL index and WAL), to apply the case system's acks (which free space) and to record delivery
//! attempts, so the backlog drains. While the reserve cannot be held again, new captures are
//! refused (`OutboxError::Full`, "disk full"): a capture must never spend the room the drain
//! needs. Captures resume on their own once the reserve fits again.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Enough for SQLite to open, checkpoint, and apply a burst of acks on a full disk.
pub const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

pub const FILE_NAME: &str = "outbox.reserve";

#[derive(Debug)]
pub struct Reserve {
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    /// The reserve beside the outbox at `outbox_path`.
    pub fn beside(outbox_path: &Path, bytes: u64) -> Reserve {
        let dir = outbox_path.parent().unwrap_or(Path::new("."));
        Reserve {
            path: dir.join(FILE_NAME),
            bytes,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reserve file is there at its full size.
    pub fn held(&self) -> bool {
        std::fs::symlink_metadata(&self.path)
            .map(|m| m.is_file() && m.len() >= self.bytes)
            .unwrap_or(false)
    }

    /// Writes the reserve when it is not held and the disk has room for it twice over (so that
    /// a nearly full disk does not take it back and lose it again at every capture); on failure
    /// nothing is left behind.
    pub fn ensure(&self) -> std::io::Result<()> {
        if self.held() {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let free = crate::os::free_bytes(dir)?;
        if free < self.bytes.saturating_mul(2) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "{free} bytes free, the {} byte reserve needs twice that",
                    self.bytes
                ),
            ));
        }
        let result = self.write();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        result
    }

    fn write(&self) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)?;
        // Real zeros, not a sparse file: the blocks must be taken now to be given back later.
        let chunk = [0u8; 64 * 1024];
        let mut left = self.bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    }

    /// Deletes the reserve; true when it was there (room was given back).
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_written_released_and_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::beside(&dir.path().join("outbox.sqlite"), 100_000);
        assert!(!reserve.held());
        reserve.ensure().unwrap();
        assert!(reserve.held());
        assert_eq!(std::fs::metadata(reserve.path()).unwrap().len(), 100_000);
        assert!(reserve.release());
        assert!(!reserve.held() && !reserve.release());
        reserve.ensure().unwrap();
        assert!(reserve.held());
    }
}
