use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::record::keys::{self, KeyType};

/// Key algorithms `keygen` can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Alg {
    /// Station signing key, EdDSA (default for the standard profile).
    Ed25519,
    /// Station signing key, ES256 (when the deployment wants NIST P-256).
    P256,
    /// SM2: a station signing key, or with --recipient a case-system key (GM profile).
    Sm2,
    /// Case-system encryption key (standard profile; implied by --recipient).
    X25519,
}

pub fn run(dir: &Path, alg: Option<Alg>, recipient: bool) -> anyhow::Result<ExitCode> {
    let key_type = match (alg, recipient) {
        (None | Some(Alg::Ed25519), false) => KeyType::Ed25519,
        (Some(Alg::P256), false) => KeyType::P256,
        (Some(Alg::Sm2), false) => KeyType::Sm2Sign,
        (None | Some(Alg::X25519), true) => KeyType::X25519,
        (Some(Alg::Sm2), true) => KeyType::Sm2Encrypt,
        (Some(Alg::X25519), false) => {
            anyhow::bail!("an X25519 key encrypts: use --recipient for a case-system key")
        }
        (Some(alg), true) => {
            anyhow::bail!("a case-system key is X25519 or SM2, not {alg:?}")
        }
    };
    let (private, public, kid) = keys::generate(dir, key_type)?;
    if recipient {
        println!(
            "private key: {} (mode 0600; for the case system only, never on a station)",
            private.display()
        );
        println!(
            "public key:  {} (set crypto.recipient_key to it on each station)",
            public.display()
        );
    } else {
        println!(
            "private key: {} (mode 0600; keep it on this station)",
            private.display()
        );
        println!(
            "public key:  {} (give it to the case system)",
            public.display()
        );
    }
    println!("kid:         {kid}");
    Ok(ExitCode::SUCCESS)
}
