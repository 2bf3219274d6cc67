//! Keys as JWK files: the station's signing key (Ed25519 by default, P-256 for ES256, SM2 for the
//! GM profile) and the case system's encryption key (X25519, or SM2 for the GM profile). Every key
//! is named by its RFC 7638 thumbprint (`kid`). Private key files are created with mode 0600,
//! never overwritten, and read through `secret_file` (no symbolic link, owner and mode checked on
//! the opened file); the private part is wiped from memory when its holder is dropped.
//!
//! SM2 keys use `kty: "EC"`, `crv: "SM2"` with 32-byte `x`, `y` (and `d`): no JOSE registry entry
//! exists for SM2; this is the form most implementations that support it use.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::secret_file::{self, SecretFileError};

use super::jose::{b64url, b64url_decode};

/// Station key file names written by `keygen`.
pub const PRIVATE_KEY_FILE: &str = "station.jwk";
pub const PUBLIC_KEY_FILE: &str = "station.pub.jwk";
/// Case-system (recipient) key file names written by `keygen --recipient`.
pub const RECIPIENT_PRIVATE_FILE: &str = "case-system.jwk";
pub const RECIPIENT_PUBLIC_FILE: &str = "case-system.pub.jwk";

/// GB/T 35276 default SM2 user id for signatures.
pub const SM2_USER_ID: &str = "1234567812345678";

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
    #[error("{path} already exists; refusing to overwrite a key (move it away first)")]
    Exists { path: PathBuf },
    /// A private key file that is not private (mode, owner, symbolic link), or unreadable.
    #[error("private key {0}")]
    Secret(#[from] SecretFileError),
    #[error("{path} is not a usable key: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// What a key is for, and on which curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Station signing key, JWS `EdDSA` (default).
    Ed25519,
    /// Station signing key, JWS `ES256` (for keys held in hardware tokens).
    P256,
    /// Station signing key, JWS `SM2` (SM3withSM2, GM profile).
    Sm2Sign,
    /// Case-system encryption key, JWE `ECDH-ES+A256KW`.
    X25519,
    /// Case-system encryption key, JWE `SM2` key transport (GM profile).
    Sm2Encrypt,
}

/// A JWK as we write and read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<SecretText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// The private part `d` of a JWK (base64url text): wiped when dropped, never printed.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: String) -> SecretText {
        SecretText(text)
    }
}

impl std::ops::Deref for SecretText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

fn fixed<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    b64url_decode(text)
        .map_err(|e| format!("{what}: {e}"))?
        .try_into()
        .map_err(|_| format!("{what} is not {N} bytes"))
}

impl Jwk {
    /// RFC 7638 thumbprint of the public part: the key's `kid`.
    pub fn thumbprint(&self) -> String {
        // Required members in lexicographic order, no whitespace (serde_json sorts a Map's keys).
        let mut members = serde_json::Map::new();
        members.insert("crv".into(), self.crv.clone().into());
        members.insert("kty".into(), self.kty.clone().into());
        members.insert("x".into(), self.x.clone().into());
        if self.kty == "EC" {
            members.insert("y".into(), self.y.clone().unwrap_or_default().into());
        }
        let canonical = serde_json::Value::Object(members).to_string();
        b64url(&Sha256::digest(canonical.as_bytes()))
    }

    pub fn key_type(&self) -> Result<KeyType, String> {
        match (self.kty.as_str(), self.crv.as_str()) {
            ("OKP", "Ed25519") => Ok(KeyType::Ed25519),
            ("OKP", "X25519") => Ok(KeyType::X25519),
            ("EC", "P-256") => Ok(KeyType::P256),
            ("EC", "SM2") if self.use_.as_deref() == Some("enc") => Ok(KeyType::Sm2Encrypt),
            ("EC", "SM2") => Ok(KeyType::Sm2Sign),
            (kty, crv) => Err(format!("unsupported key kty {kty:?} crv {crv:?}")),
        }
    }

    fn ec_point(&self) -> Result<Vec<u8>, String> {
        let x: [u8; 32] = fixed(&self.x, "x")?;
        let y: [u8; 32] = fixed(self.y.as_deref().ok_or("EC key without y")?, "y")?;
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Ok(point)
    }

    fn secret(&self) -> Result<Zeroizing<[u8; 32]>, String> {
        let d = self.d.as_deref().ok_or("no private part \"d\"")?;
        let bytes = Zeroizing::new(b64url_decode(d).map_err(|e| format!("d (private part): {e}"))?);
        let mut out = Zeroizing::new([0u8; 32]);
        if bytes.len() != out.len() {
            return Err("d (private part) is not 32 bytes".into());
        }
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, String> {
        match self.key_type()? {
            KeyType::Ed25519 => {
                let x: [u8; 32] = fixed(&self.x, "x")?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map(VerifyingKey::Ed25519)
                    .map_err(|e| format!("x is not a valid Ed25519 point: {e}"))
            }
            KeyType::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.ec_point()?)
                .map(VerifyingKey::P256)
                .map_err(|e| format!("not a valid P-256 point: {e}")),
            KeyType::Sm2Sign | KeyType::Sm2Encrypt => {
                sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_USER_ID, &self.ec_point()?)
                    .map(|k| VerifyingKey::Sm2(Box::new(k)))
                    .map_err(|e| format!("not a valid SM2 point: {e}"))
            }
            KeyType::X25519 => Err("an X25519 key encrypts; it cannot verify signatures".into()),
        }
    }

    pub fn signing_key(&self) -> Result<SigningKey, String> {
        let d = self.secret()?;
        let key = match self.key_type()? {
            KeyType::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&d)),
            KeyType::P256 => SigningKey::P256(
                p256::ecdsa::SigningKey::from_slice(&*d).map_err(|e| format!("bad d: {e}"))?,
            ),
            KeyType::Sm2Sign => SigningKey::Sm2(Box::new(
                sm2::dsa::SigningKey::from_slice(SM2_USER_ID, &*d)
                    .map_err(|e| format!("bad d: {e}"))?,
            )),
            other => return Err(format!("a {other:?} key cannot sign")),
        };
        // The public part in the file must belong to the private part.
        if Jwk::public_of_signing(&key).x != self.x {
            return Err("the public part does not belong to the private part d".into());
        }
        Ok(key)
    }

    pub fn recipient_public(&self) -> Result<RecipientPublic, String> {
        match self.key_type()? {
            KeyType::X25519 => Ok(RecipientPublic::X25519(x25519_dalek::PublicKey::from(
                fixed::<32>(&self.x, "x")?,
            ))),
            KeyType::Sm2Encrypt | KeyType::Sm2Sign => {
                sm2::PublicKey::from_sec1_bytes(&self.ec_point()?)
                    .map(RecipientPublic::Sm2)
                    .map_err(|e| format!("not a valid SM2 point: {e}"))
            }
            other => Err(format!(
                "a {other:?} key cannot be an encryption recipient (use X25519 or SM2)"
            )),
        }
    }

    pub fn recipient_secret(&self) -> Result<RecipientSecret, String> {
        let d = self.secret()?;
        let secret = match self.key_type()? {
            KeyType::X25519 => RecipientSecret::X25519(x25519_dalek::StaticSecret::from(*d)),
            KeyType::Sm2Encrypt | KeyType::Sm2Sign => RecipientSecret::Sm2(
                sm2::SecretKey::from_slice(&*d).map_err(|e| format!("bad d: {e}"))?,
            ),
            other => return Err(format!("a {other:?} key cannot decrypt")),
        };
        if Jwk::public_of_recipient(&secret.public()).x != self.x {
            return Err("the public part does not belong to the private part d".into());
        }
        Ok(secret)
    }

    fn with_kid(mut self, alg: &str, use_: &str) -> Jwk {
        self.kid = Some(self.thumbprint());
        self.alg = Some(alg.into());
        self.use_ = Some(use_.into());
        self
    }

    fn ec(crv: &str, sec1_uncompressed: &[u8]) -> Jwk {
        let coords = sec1_uncompressed.get(1..).unwrap_or_default();
        let (x, y) = coords.split_at(coords.len() / 2);
        Jwk {
            kty: "EC".into(),
            crv: crv.into(),
            x: b64url(x),
            y: Some(b64url(y)),
            ..Jwk::default()
        }
    }

    pub fn public_of_signing(key: &SigningKey) -> Jwk {
        match key {
            SigningKey::Ed25519(k) => Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: b64url(k.verifying_key().as_bytes()),
                ..Jwk::default()
            }
            .with_kid("EdDSA", "sig"),
            SigningKey::P256(k) => {
                Jwk::ec("P-256", k.verifying_key().to_sec1_point(false).as_bytes())
                    .with_kid("ES256", "sig")
            }
            SigningKey::Sm2(k) => {
                Jwk::ec("SM2", &k.verifying_key().to_sec1_bytes()).with_kid("SM2", "sig")
            }
        }
    }

    pub fn private_of_signing(key: &SigningKey) -> Jwk {
        let d = match key {
            SigningKey::Ed25519(k) => b64url(k.as_bytes()),
            SigningKey::P256(k) => b64url(&k.to_bytes()),
            SigningKey::Sm2(k) => b64url(&k.to_bytes()),
        };
        Jwk {
            d: Some(SecretText::new(d)),
            ..Jwk::public_of_signing(key)
        }
    }

    pub fn public_of_recipient(key: &RecipientPublic) -> Jwk {
        match key {
            RecipientPublic::X25519(k) => Jwk {
                kty: "OKP".into(),
                crv: "X25519".into(),
                x: b64url(k.as_bytes()),
                ..Jwk::default()
            }
            .with_kid("ECDH-ES+A256KW", "enc"),
            RecipientPublic::Sm2(k) => Jwk::ec("SM2", &k.to_sec1_bytes()).with_kid("SM2", "enc"),
        }
    }

    pub fn private_of_recipient(key: &RecipientSecret) -> Jwk {
        let d = match key {
            RecipientSecret::X25519(k) => b64url(k.as_bytes()),
            RecipientSecret::Sm2(k) => b64url(&k.to_bytes()),
        };
        Jwk {
            d: Some(SecretText::new(d)),
            ..Jwk::public_of_recipient(&key.public())
        }
    }
}

/// A station signing key.
pub enum SigningKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Sm2(Box<sm2::dsa::SigningKey>),
}

/// A station's public key, for verifying.
#[derive(Clone)]
pub enum VerifyingKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Sm2(Box<sm2::dsa::VerifyingKey>),
}

/// The case system's public key, for encrypting.
#[derive(Clone)]
pub enum RecipientPublic {
    X25519(x25519_dalek::PublicKey),
    Sm2(sm2::PublicKey),
}

/// The case system's private key, for decrypting (tools, tests and the demo case system).
pub enum RecipientSecret {
    X25519(x25519_dalek::StaticSecret),
    Sm2(sm2::SecretKey),
}

impl RecipientSecret {
    pub fn public(&self) -> RecipientPublic {
        match self {
            RecipientSecret::X25519(s) => RecipientPublic::X25519(x25519_dalek::PublicKey::from(s)),
            RecipientSecret::Sm2(s) => RecipientPublic::Sm2(s.public_key()),
        }
    }
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
        Jwk::public_of_signing(&self.signing)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        match &self.signing {
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
            SigningKey::P256(k) => VerifyingKey::P256(*k.verifying_key()),
            SigningKey::Sm2(k) => VerifyingKey::Sm2(Box::new(k.verifying_key().clone())),
        }
    }
}

/// The case system's public key the station encrypts to, and its `kid`.
#[derive(Clone)]
pub struct Recipient {
    pub key: RecipientPublic,
    pub kid: String,
}

/// Station public keys by `kid`: verifiers accept every key a station has used (rotation).
#[derive(Clone, Default)]
pub struct Keyring {
    keys: HashMap<String, VerifyingKey>,
}

impl Keyring {
    pub fn insert(&mut self, kid: String, key: VerifyingKey) {
        self.keys.insert(kid, key);
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Loads public (or private) station JWK files.
    pub fn load(paths: &[PathBuf]) -> Result<Keyring, KeyError> {
        let mut ring = Keyring::default();
        for path in paths {
            let jwk = read_jwk(path)?;
            let key = jwk.verifying_key().map_err(|reason| KeyError::Invalid {
                path: path.clone(),
                reason,
            })?;
            ring.insert(jwk.thumbprint(), key);
        }
        Ok(ring)
    }
}

/// Case-system private keys by `kid` (several after a rotation).
#[derive(Default)]
pub struct DecryptKeys {
    keys: HashMap<String, RecipientSecret>,
}

impl DecryptKeys {
    pub fn insert(&mut self, kid: String, key: RecipientSecret) {
        self.keys.insert(kid, key);
    }

    pub fn get(&self, kid: &str) -> Option<&RecipientSecret> {
        self.keys.get(kid)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn load(paths: &[PathBuf]) -> Result<DecryptKeys, KeyError> {
        let mut keys = DecryptKeys::default();
        for path in paths {
            let (secret, kid) = load_recipient_secret(path)?;
            keys.insert(kid, secret);
        }
        Ok(keys)
    }
}

fn random32() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Creates a key pair of `key_type` in `dir` (station or case-system file names by type).
/// Refuses to overwrite. Returns (private path, public path, kid).
pub fn generate(dir: &Path, key_type: KeyType) -> Result<(PathBuf, PathBuf, String), KeyError> {
    let recipient = matches!(key_type, KeyType::X25519 | KeyType::Sm2Encrypt);
    let (private_name, public_name) = if recipient {
        (RECIPIENT_PRIVATE_FILE, RECIPIENT_PUBLIC_FILE)
    } else {
        (PRIVATE_KEY_FILE, PUBLIC_KEY_FILE)
    };
    let private_path = dir.join(private_name);
    let public_path = dir.join(public_name);
    for path in [&private_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| KeyError::Invalid {
        path: private_path.clone(),
        reason,
    };
    // SM2 and P-256 scalars must be in range; retry the (astronomically rare) bad draw.
    let (private, public) = loop {
        let d = random32()?;
        let pair = match key_type {
            KeyType::Ed25519 => {
                let k = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&d));
                Some((Jwk::private_of_signing(&k), Jwk::public_of_signing(&k)))
            }
            KeyType::P256 => p256::ecdsa::SigningKey::from_slice(&*d).ok().map(|k| {
                let k = SigningKey::P256(k);
                (Jwk::private_of_signing(&k), Jwk::public_of_signing(&k))
            }),
            KeyType::Sm2Sign => sm2::dsa::SigningKey::from_slice(SM2_USER_ID, &*d)
                .ok()
                .map(|k| {
                    let k = SigningKey::Sm2(Box::new(k));
                    (Jwk::private_of_signing(&k), Jwk::public_of_signing(&k))
                }),
            KeyType::X25519 => {
                let s = RecipientSecret::X25519(x25519_dalek::StaticSecret::from(*d));
                Some((
                    Jwk::private_of_recipient(&s),
                    Jwk::public_of_recipient(&s.public()),
                ))
            }
            KeyType::Sm2Encrypt => sm2::SecretKey::from_slice(&*d).ok().map(|k| {
                let s = RecipientSecret::Sm2(k);
                (
                    Jwk::private_of_recipient(&s),
                    Jwk::public_of_recipient(&s.public()),
                )
            }),
        };
        if let Some(pair) = pair {
            break pair;
        }
    };
    let kid = public.kid.clone().ok_or_else(|| invalid("no kid".into()))?;
    write_new(&private_path, &private, 0o600)?;
    write_new(&public_path, &public, 0o644)?;
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

/// Loads the private station key, refusing files that are not private (see `secret_file`).
pub fn load_private(path: &Path) -> Result<StationKey, KeyError> {
    let jwk = read_private_jwk(path)?;
    let signing = jwk.signing_key().map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(StationKey {
        kid: jwk.thumbprint(),
        signing,
    })
}

/// Loads a station public JWK (as written by `keygen`, or handed to a case system).
pub fn load_public(path: &Path) -> Result<(VerifyingKey, String), KeyError> {
    let jwk = read_jwk(path)?;
    let key = jwk.verifying_key().map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok((key, jwk.thumbprint()))
}

/// Loads the case system's public key (the station encrypts to it).
pub fn load_recipient(path: &Path) -> Result<Recipient, KeyError> {
    let jwk = read_jwk(path)?;
    let key = jwk.recipient_public().map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(Recipient {
        key,
        kid: jwk.thumbprint(),
    })
}

/// Loads a case-system private key (refusing readable files).
pub fn load_recipient_secret(path: &Path) -> Result<(RecipientSecret, String), KeyError> {
    let jwk = read_private_jwk(path)?;
    let secret = jwk.recipient_secret().map_err(|reason| KeyError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok((secret, jwk.thumbprint()))
}

/// A private JWK: read as a secret file, its bytes wiped after parsing.
fn read_private_jwk(path: &Path) -> Result<Jwk, KeyError> {
    let text = secret_file::read(path)?;
    serde_json::from_slice(&text).map_err(|e| KeyError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
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
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rfc8037_a3_thumbprint() {
        // RFC 8037 A.3: the thumbprint of the A.2 public key.
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
            ..Jwk::default()
        };
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc7638_ec_thumbprint_member_order() {
        // RFC 7638 §3.1 uses RSA; for EC the members are crv, kty, x, y (RFC 7638 §3.2).
        let jwk = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: "X".into(),
            y: Some("Y".into()),
            ..Jwk::default()
        };
        let expected = b64url(&Sha256::digest(
            br#"{"crv":"P-256","kty":"EC","x":"X","y":"Y"}"#,
        ));
        assert_eq!(jwk.thumbprint(), expected);
    }

    #[test]
    fn every_key_type_generates_refuses_overwrite_and_loads_back() {
        for key_type in [
            KeyType::Ed25519,
            KeyType::P256,
            KeyType::Sm2Sign,
            KeyType::X25519,
            KeyType::Sm2Encrypt,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (private, public, kid) = generate(dir.path(), key_type).unwrap();
            let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{key_type:?}");
            assert!(matches!(
                generate(dir.path(), key_type),
                Err(KeyError::Exists { .. })
            ));
            let public_text = fs::read_to_string(&public).unwrap();
            assert!(
                !public_text.contains("\"d\""),
                "public JWK must not carry d"
            );
            match key_type {
                KeyType::X25519 | KeyType::Sm2Encrypt => {
                    let (_, secret_kid) = load_recipient_secret(&private).unwrap();
                    assert_eq!(load_recipient(&public).unwrap().kid, kid);
                    assert_eq!(secret_kid, kid);
                }
                _ => {
                    let key = load_private(&private).unwrap();
                    assert_eq!(key.kid, kid);
                    assert_eq!(load_public(&public).unwrap().1, kid);
                }
            }
        }
    }

    #[test]
    fn readable_private_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _, _) = generate(dir.path(), KeyType::Ed25519).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_private(&private).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Secret(SecretFileError::TooOpen { mode: 0o644, .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn mismatched_public_part_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _, _) = generate(dir.path(), KeyType::Ed25519).unwrap();
        let mut jwk: Jwk = serde_json::from_slice(&fs::read(&private).unwrap()).unwrap();
        jwk.x = b64url(&[9u8; 32]);
        assert!(jwk.signing_key().is_err());
    }
}
