//! The station's local data key: seals what an open session holds at rest (identities, page
//! metadata) until the session is sealed into a record. Blobs are encrypted to the case system at
//! capture and need no local key. The key is 32 random bytes in `<state_dir>/session.key` (mode
//! 0600), created on first use; losing it loses only sessions that were open at the time. It is
//! read as a secret file (no symbolic link, owner and mode checked on the opened file), and the
//! key bytes and the cipher's key schedule are wiped from memory when dropped.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("session key {path} is not 32 bytes")]
    BadKey { path: PathBuf },
    #[error("session key {0}")]
    Secret(#[from] crate::secret_file::SecretFileError),
    #[error("a stored session item does not open with this station's session key")]
    Unseal,
    #[error("no randomness: {0}")]
    Random(String),
}

/// The cipher's key schedule is wiped on drop (aes-gcm's `zeroize` feature).
pub struct DataKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// Loads `<state_dir>/session.key`, creating it (0600) when missing.
    pub fn load_or_create(state_dir: &Path) -> Result<DataKey, StoreError> {
        let path = state_dir.join("session.key");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let bytes = match crate::secret_file::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                std::fs::create_dir_all(state_dir).map_err(io)?;
                let mut key = Zeroizing::new(vec![0u8; 32]);
                getrandom::fill(&mut key).map_err(|e| StoreError::Random(e.to_string()))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(&key).map_err(io)?;
                file.sync_all().map_err(io)?;
                key
            }
            Err(e) => return Err(e.into()),
        };
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| StoreError::BadKey { path })?;
        Ok(DataKey { cipher })
    }

    #[cfg(test)]
    pub fn for_tests(seed: u8) -> DataKey {
        DataKey {
            cipher: Aes256Gcm::new_from_slice(&[seed; 32]).unwrap_or_else(|_| unreachable!()),
        }
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt((&nonce).into(), plaintext)
            .map_err(|_| StoreError::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (nonce, body) = sealed.split_at_checked(12).ok_or(StoreError::Unseal)?;
        let nonce: &[u8; 12] = nonce.try_into().map_err(|_| StoreError::Unseal)?;
        self.cipher
            .decrypt(nonce.into(), body)
            .map_err(|_| StoreError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn key_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = DataKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("session.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = a.seal(b"identity").unwrap();
        let b = DataKey::load_or_create(dir.path()).unwrap();
        assert_eq!(b.open(&sealed).unwrap(), b"identity");
        assert!(DataKey::for_tests(1).open(&sealed).is_err());
        assert!(b.open(&sealed[..5]).is_err());
    }

    #[test]
    fn a_session_key_others_can_read_or_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        DataKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join("session.key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = DataKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("session.key") && e.contains("chmod 600"), "{e}");

        let other = tempfile::tempdir().unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&path, other.path().join("session.key")).unwrap();
        let e = DataKey::load_or_create(other.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
