//! The station signing key as a JWK file (RFC 8037 OKP / Ed25519), its RFC 7638 thumbprint as
//! `kid`, and the rules for keeping it: created with mode 0600, never overwritten, refused when
//! other users can read it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::jose::{b64url, b64url_decode};

pub const PRIVATE_KEY_FILE: &str = "station.jwk";
pub const PUBLIC_KEY_FILE: &str = "station.pub.jwk";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite a station key (move it away first)")]
    Exists { path: PathBuf },
    #[error(
        "private key {path} has mode {mode:04o}; other users could read it. Run: chmod 600 {path}"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} is not a usable Ed25519 JWK: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// A JWK as we write and read it. Only OKP/Ed25519 for now; ES256 and SM2 keys come with the
/// record format work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    pub fn public_from(key: &VerifyingKey) -> Jwk {
        let x = b64url(key.as_bytes());
        let kid = thumbprint_okp("Ed25519", &x);
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            d: None,
            kid: Some(kid),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    pub fn private_from(key: &SigningKey) -> Jwk {
        Jwk {
            d: Some(b64url(key.as_bytes())),
            ..Jwk::public_from(&key.verifying_key())
        }
    }

    /// RFC 7638 thumbprint of the public part; this is the key's `kid`.
    pub fn thumbprint(&self) -> String {
        thumbprint_okp(&self.crv, &self.x)
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, String> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(format!(
                "expected kty OKP and crv Ed25519, found kty {:?} crv {:?}",
                self.kty, self.crv
            ));
        }
        let x: [u8; 32] = b64url_decode(&self.x)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "x is not 32 bytes".to_string())?;
        VerifyingKey::from_bytes(&x).map_err(|e| format!("x is not a valid Ed25519 point: {e}"))
    }
}

/// RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
fn thumbprint_okp(crv: &str, x: &str) -> String {
    let canonical = serde_json::json!({ "crv": crv, "kty": "OKP", "x": x }).to_string();
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// A loaded station key: the signing key and its `kid`.
pub struct StationKey {
    pub signing: SigningKey,
    pub kid: String,
}

impl std::fmt::Debug for StationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl StationKey {
    pub fn public_jwk(&self) -> Jwk {
        Jwk::public_from(&self.signing.verifying_key())
    }
}

/// Creates `station.jwk` (0600) and `station.pub.jwk` in `dir`. Refuses to overwrite either.
pub fn generate(dir: &Path) -> Result<(PathBuf, PathBuf, String), KeyError> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    for path in [&private_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    let signing = SigningKey::from_bytes(&secret);
    let private = Jwk::private_from(&signing);
    let kid = private.kid.clone().unwrap_or_default();
    write_new(&private_path, &private, 0o600)?;
    write_new(
        &public_path,
        &Jwk::public_from(&signing.verifying_key()),
        0o644,
    )?;
    Ok((private_path, public_path, kid))
}

fn write_new(path: &Path, jwk: &Jwk, mode: u32) -> Result<(), KeyError> {
    let err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_string_pretty(jwk).unwrap_or_default();
    text.push('\n');
    // create_new: never overwrite, even if the file appeared after our check.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                err(source)
            }
        })?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(())
}

/// Loads the private station key, refusing files that group or others can read.
pub fn load_private(path: &Path) -> Result<StationKey, KeyError> {
    let meta = fs::metadata(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let jwk = read_jwk(path)?;
    let invalid = |reason: String| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let public = jwk.verifying_key().map_err(invalid)?;
    let d: [u8; 32] = b64url_decode(
        jwk.d
            .as_deref()
            .ok_or_else(|| invalid("no private part \"d\"".into()))?,
    )
    .map_err(|e| invalid(e.to_string()))?
    .try_into()
    .map_err(|_| invalid("d is not 32 bytes".into()))?;
    let signing = SigningKey::from_bytes(&d);
    if signing.verifying_key() != public {
        return Err(invalid("the public part x does not belong to d".into()));
    }
    Ok(StationKey {
        kid: jwk.thumbprint(),
        signing,
    })
}

/// Loads a public JWK (as written by `keygen`, or handed to a case system).
pub fn load_public(path: &Path) -> Result<(VerifyingKey, String), KeyError> {
    let jwk = read_jwk(path)?;
    let key = jwk.verifying_key().map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok((key, jwk.thumbprint()))
}

fn read_jwk(path: &Path) -> Result<Jwk, KeyError> {
    let text = fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| KeyError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8037_a3_thumbprint() {
        // RFC 8037 A.3: the thumbprint of the A.2 public key.
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
            d: None,
            kid: None,
            alg: None,
            use_: None,
        };
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn keygen_writes_0600_refuses_overwrite_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public, kid) = generate(dir.path()).unwrap();
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(generate(dir.path()), Err(KeyError::Exists { .. })));
        let key = load_private(&private).unwrap();
        assert_eq!(key.kid, kid);
        let (vk, pub_kid) = load_public(&public).unwrap();
        assert_eq!(vk, key.signing.verifying_key());
        assert_eq!(pub_kid, kid);
        let public_text = fs::read_to_string(&public).unwrap();
        assert!(
            !public_text.contains("\"d\""),
            "public JWK must not carry d"
        );
    }

    #[test]
    fn readable_private_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _, _) = generate(dir.path()).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_private(&private).unwrap_err();
        assert!(
            matches!(err, KeyError::TooOpen { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }
}
