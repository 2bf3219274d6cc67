//! Reading secret files (the station's signing key, the session data key, the TLS client key,
//! the MQTT password) so that what is checked is what is read: the file is opened without
//! following a symbolic link and without blocking (a FIFO cannot hang the start), then the
//! OPENED descriptor's type, owner and mode are checked (no window between a check on the path
//! and the read), then at most [`MAX_BYTES`] are read into memory that is wiped when dropped.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// No secret file countersign reads is larger (a JWK, a PEM key, a password).
pub const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is a symbolic link; a secret file must be the file itself (point the configuration at the target, or copy it there with mode 600)"
    )]
    Symlink { path: PathBuf },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "{path} has mode {mode:04o}: group or others could read the secret. Run: chmod 600 {path}"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "{path} is owned by uid {owner}, neither this service's user (uid {euid}) nor root. Run: chown {euid} {path}"
    )]
    WrongOwner {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error("{path} is larger than {max} bytes: not a secret file countersign reads")]
    TooLarge { path: PathBuf, max: u64 },
}

impl SecretFileError {
    /// The file was not there (callers that create a missing secret, e.g. the session key).
    pub fn is_not_found(&self) -> bool {
        matches!(self, SecretFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Opens `path` as a secret file and checks the descriptor: a regular file, owned by the
/// effective user or root, with no group or other permission bits.
pub fn open(path: &Path) -> Result<File, SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            // O_NOFOLLOW on a symbolic link: ELOOP.
            if e.raw_os_error() == Some(libc::ELOOP) {
                SecretFileError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                io(e)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(SecretFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let euid = crate::os::effective_uid();
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(SecretFileError::WrongOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(file)
}

/// Reads a whole secret file (checked as [`open`] does) into memory wiped on drop.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    let file = open(path)?;
    // Reserved up front so the buffer never moves (a reallocation would leave an unwiped copy).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_BYTES as usize + 1));
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SecretFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(SecretFileError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_BYTES,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn secret(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, b"s3cret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret(dir.path(), 0o600);
        assert_eq!(read(&path).unwrap().as_slice(), b"s3cret");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read(&path).unwrap().as_slice(), b"s3cret");
    }

    #[test]
    fn group_or_other_bits_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o601] {
            let path = secret(dir.path(), mode);
            let e = read(&path).unwrap_err();
            assert!(
                matches!(e, SecretFileError::TooOpen { .. }),
                "{mode:o}: {e}"
            );
            let text = e.to_string();
            assert!(
                text.contains("chmod 600") && text.contains("secret"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_symlink_is_refused_even_to_a_good_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = secret(dir.path(), 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = read(&link).unwrap_err();
        assert!(matches!(e, SecretFileError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("link"), "{e}");
    }

    #[test]
    fn a_fifo_a_directory_and_a_device_are_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            read(&fifo).unwrap_err(),
            SecretFileError::NotAFile { .. }
        ));
        assert!(matches!(
            read(dir.path()).unwrap_err(),
            SecretFileError::NotAFile { .. } | SecretFileError::TooOpen { .. }
        ));
        assert!(read(Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn a_large_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; MAX_BYTES as usize + 1]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read(&path).unwrap_err(),
            SecretFileError::TooLarge { .. }
        ));
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        if crate::os::effective_uid() != 0 {
            eprintln!("skipped: chown to another user needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = secret(dir.path(), 0o600);
        // 65534: nobody.
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = read(&path).unwrap_err();
        assert!(
            matches!(e, SecretFileError::WrongOwner { owner: 65534, .. }),
            "{e}"
        );
    }
}
