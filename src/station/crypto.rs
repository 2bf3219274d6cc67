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
    let key = keys::load_private(&config.station.signing_key)
        .map_err(|e| format!("station.signing_key: {}", describe(e)))?;
    let recipient = keys::load_recipient(&config.crypto.recipient_key)
        .map_err(|e| format!("crypto.recipient_key: {}", describe(e)))?;
    check_profile(config.crypto.profile, &key, &recipient)?;
    Ok(Crypto {
        key: std::sync::Arc::new(key),
        recipient,
    })
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
