//! `[crypto]` and `[records]`: how records are signed and encrypted, and chain checkpoints.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// EdDSA (or ES256) signatures, ECDH-ES+A256KW with X25519 and A256GCM encryption.
    #[default]
    Standard,
    /// China's commercial cryptography: SM2-with-SM3 signatures, SM2 key transport, SM4-GCM.
    Gm,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoConfig {
    /// `standard` or `gm`. The station key and the case-system key must be of the profile's
    /// types (Ed25519 or P-256 and X25519 for standard; SM2 for gm).
    #[serde(default)]
    pub profile: Profile,
    /// The case system's public key (JWK). Records and blobs are encrypted to it; only the case
    /// system can read them. Changing it affects new records only: queued records stay encrypted
    /// to the key they were sealed with.
    pub recipient_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Seal a signed checkpoint (chain head and count) after this many records.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: Bounded<1, 1_000_000>,
    /// ...or after this many seconds with at least one record since the last checkpoint.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: Bounded<10, 604_800>,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval_secs: default_checkpoint_interval(),
        }
    }
}

fn default_checkpoint_every() -> Bounded<1, 1_000_000> {
    Bounded(100)
}
fn default_checkpoint_interval() -> Bounded<10, 604_800> {
    Bounded(3600)
}
