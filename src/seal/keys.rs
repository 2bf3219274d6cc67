//! The station's keys, loaded and checked against the configured profile at start.

use crate::config::{Config, Profile};
use crate::record::keys::{self, KeyError, Recipient, RecipientPublic, SigningKey, StationKey};

/// What the station signs with and encrypts to.
#[derive(Clone)]
pub struct Crypto {
    pub key: std::sync::Arc<StationKey>,
    pub recipient: Recipient,
}

/// Loads the station key and the case system's key, refusing a key that does not fit the
/// profile (a GM deployment must never fall back to international algorithms, or the reverse).
pub fn load(config: &Config) -> Result<Crypto, String> {
    let describe = |e: KeyError| e.to_string();
    let key_path = with_credentials_dir(
        &config.station.signing_key,
        std::env::var_os("CREDENTIALS_DIRECTORY").as_deref(),
    )?;
    let key = keys::load_private(&key_path)
        .map_err(|e| format!("station.signing_key: {}", describe(e)))?;
    let recipient = keys::load_recipient(&config.crypto.recipient_key)
        .map_err(|e| format!("crypto.recipient_key: {}", describe(e)))?;
    check_profile(config.crypto.profile, &key, &recipient)?;
    Ok(Crypto {
        key: std::sync::Arc::new(key),
        recipient,
    })
}

/// `${CREDENTIALS_DIRECTORY}` at the start of a key path is the directory systemd gives the
/// service for `LoadCredential=` / `LoadCredentialEncrypted=` (the key then lives encrypted, e.g.
/// sealed to the TPM, and appears decrypted, mode 0400, only to this service while it runs).
fn with_credentials_dir(
    path: &std::path::Path,
    credentials: Option<&std::ffi::OsStr>,
) -> Result<std::path::PathBuf, String> {
    const VAR: &str = "${CREDENTIALS_DIRECTORY}";
    let text = path.to_string_lossy();
    let Some(rest) = text.strip_prefix(VAR) else {
        return Ok(path.to_path_buf());
    };
    let dir = credentials.ok_or_else(|| {
        format!(
            "station.signing_key uses {VAR}, but CREDENTIALS_DIRECTORY is not set: load the key with LoadCredential= or LoadCredentialEncrypted= in the unit"
        )
    })?;
    Ok(std::path::Path::new(dir).join(rest.trim_start_matches('/')))
}

pub fn check_profile(
    profile: Profile,
    key: &StationKey,
    recipient: &Recipient,
) -> Result<(), String> {
    let signing_ok = match profile {
        Profile::Standard => matches!(key.signing, SigningKey::Ed25519(_) | SigningKey::P256(_)),
        Profile::Gm => matches!(key.signing, SigningKey::Sm2(_)),
    };
    let recipient_ok = match profile {
        Profile::Standard => matches!(recipient.key, RecipientPublic::X25519(_)),
        Profile::Gm => matches!(recipient.key, RecipientPublic::Sm2(_)),
    };
    match (signing_ok, recipient_ok) {
        (true, true) => Ok(()),
        (false, _) => Err(format!(
            "station.signing_key is not a {profile:?} profile key (standard: Ed25519 or P-256; gm: SM2); create one with `countersign keygen --alg ...`"
        )),
        (_, false) => Err(format!(
            "crypto.recipient_key is not a {profile:?} profile key (standard: X25519; gm: SM2)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::path::Path;

    #[test]
    fn credentials_directory_is_expanded_only_at_the_start() {
        let dir = Some(OsStr::new("/run/credentials/countersign.service"));
        assert_eq!(
            with_credentials_dir(Path::new("${CREDENTIALS_DIRECTORY}/station.jwk"), dir).unwrap(),
            Path::new("/run/credentials/countersign.service/station.jwk")
        );
        assert_eq!(
            with_credentials_dir(Path::new("/etc/k/station.jwk"), dir).unwrap(),
            Path::new("/etc/k/station.jwk")
        );
        let err = with_credentials_dir(Path::new("${CREDENTIALS_DIRECTORY}/k"), None).unwrap_err();
        assert!(err.contains("LoadCredential"), "{err}");
    }
}
