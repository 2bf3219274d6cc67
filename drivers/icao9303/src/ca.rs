//! Chip authentication, version 1 (Doc 9303-11 §6.2, BSI TR-03110 part 3 §3.3 and §B.1), ECDH
//! only: the terminal side, and the chip side in [`chip`] for the emulator. A chip that answers
//! under session keys derived from its DG14 public key holds the private key, which a copy of the
//! chip's files (a clone) does not; DG14 itself is trusted through passive authentication (its
//! hash in EF.SOD) before its key is used.
//!
//! The exchange, under the secure messaging access control opened: 3DES
//! (`id-CA-ECDH-3DES-CBC-CBC`): MSE:Set KAT (`22 41 A6`, `91` the terminal's ephemeral public
//! key, `84` the key id when there is one). AES (`id-CA-ECDH-AES-CBC-CMAC-128/192/256`): MSE:Set
//! AT (`22 41 A4`, `80` the protocol OID, `84` the key id) then GENERAL AUTHENTICATE (`86 00 00`,
//! `7C { 80 ephemeral key }`). Both answers still come under the old keys; then both sides take
//! `K = x(SK_eph · PK_chip)`, `KSenc/KSmac = KDF(K, 1/2)` with the negotiated cipher (the KDF of
//! [`Cipher::kdf`], as PACE) and restart secure messaging with SSC = 0 (§9.8.6.3). Nothing in
//! the answer proves anything: only the chip's next answer under the new keys does (the reader
//! checks one, [`crate::read`]).

pub mod chip;

use crate::apdu::{self, Command, Response};
use crate::cipher::Cipher;
use crate::crypto::KeyUse;
use crate::ec::Curve;
use crate::pace::dynamic_data;
use crate::security_infos::{ID_CA, ID_PK_DH, KeyAgreement, SecurityInfos};
use crate::sm::SecureMessaging;
use crate::sod::oid::dotted;
use crate::tlv;

/// The chip authentication to run, chosen from DG14.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaParams {
    pub cipher: Cipher,
    pub curve: Curve,
    /// `id-CA-ECDH-<cipher>` as offered (or as inferred).
    pub oid: Vec<u8>,
    /// Sent as `84` when present.
    pub key_id: Option<u32>,
    /// The chip's static public key from DG14, SEC1 uncompressed (not yet checked on the curve).
    pub chip_key: Vec<u8>,
    /// DG14 has the public key but no ChipAuthenticationInfo (older passports): 3DES, version 1,
    /// as TR-03110 lets the terminal assume.
    pub inferred: bool,
}

impl CaParams {
    /// For the record: `ECDH P-256 AES-128`, with `key 195` and `(no ChipAuthenticationInfo;
    /// 3DES assumed)` when they apply.
    pub fn describe(&self) -> String {
        let mut text = format!("ECDH {} {}", self.curve.name(), self.cipher.name());
        if let Some(id) = self.key_id {
            text.push_str(&format!(", key {id}"));
        }
        if self.inferred {
            text.push_str(" (DG14 has no ChipAuthenticationInfo; 3DES assumed)");
        }
        text
    }

    /// The protocol OID for ECDH with `cipher`.
    pub fn oid_for(cipher: Cipher) -> Vec<u8> {
        let mut oid = ID_CA.to_vec();
        oid.extend_from_slice(&[2, cipher.arc()]);
        oid
    }
}

/// What DG14 offers, as far as this reader is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaOffer {
    /// No chip authentication key in DG14: why, in words.
    None(String),
    Supported(CaParams),
    /// Chip authentication offered only in ways not implemented (DH, version 2, other curves):
    /// what was offered, in words.
    Unsupported(String),
}

/// Picks the chip authentication to run from DG14's SecurityInfos: ECDH, version 1, with its
/// public key (by keyId when the info has one) on a supported curve; AES before 3DES, then the
/// order of DG14. Without any ChipAuthenticationInfo, an ECDH key means 3DES (TR-03110).
pub fn choose(infos: &SecurityInfos) -> CaOffer {
    let dh_keys = infos.other.iter().any(|o| *o == dotted(&ID_PK_DH));
    if infos.chip_authentication.is_empty() {
        let Some(key) = infos.ca_public_keys.first() else {
            return if dh_keys {
                CaOffer::Unsupported("chip authentication with a DH key".into())
            } else {
                CaOffer::None(
                    "DG14 holds no chip authentication key (no ChipAuthenticationInfo or \
                     ChipAuthenticationPublicKeyInfo)"
                        .into(),
                )
            };
        };
        return match key.curve {
            Some(curve) => CaOffer::Supported(CaParams {
                cipher: Cipher::Tdes,
                curve,
                oid: CaParams::oid_for(Cipher::Tdes),
                key_id: key.key_id.filter(|_| infos.ca_public_keys.len() > 1),
                chip_key: key.point.clone(),
                inferred: true,
            }),
            None => CaOffer::Unsupported(format!(
                "chip authentication (ECDH, 3DES assumed) on {}",
                key.parameters
            )),
        };
    }
    let mut usable = Vec::new();
    let mut reasons = Vec::new();
    for info in &infos.chip_authentication {
        let what = match info.agreement {
            KeyAgreement::Dh => format!("DH {}", info.cipher.name()),
            KeyAgreement::Ecdh => format!("ECDH {}", info.cipher.name()),
        };
        if info.agreement == KeyAgreement::Dh {
            reasons.push(format!("chip authentication with {what}"));
            continue;
        }
        if info.version != 1 {
            reasons.push(format!(
                "chip authentication version {} ({what}), which needs terminal authentication",
                info.version
            ));
            continue;
        }
        let key = infos
            .ca_public_keys
            .iter()
            .find(|k| info.key_id.is_none() || k.key_id == info.key_id);
        let Some(key) = key else {
            reasons.push(match info.key_id {
                Some(id) => format!("chip authentication ({what}) without its public key {id}"),
                None => format!("chip authentication ({what}) without an ECDH public key"),
            });
            continue;
        };
        let Some(curve) = key.curve else {
            reasons.push(format!(
                "chip authentication ({what}) on {}",
                key.parameters
            ));
            continue;
        };
        let key_id = info
            .key_id
            .or(key.key_id.filter(|_| infos.ca_public_keys.len() > 1));
        usable.push(CaParams {
            cipher: info.cipher,
            curve,
            oid: info.oid.clone(),
            key_id,
            chip_key: key.point.clone(),
            inferred: false,
        });
    }
    match usable
        .into_iter()
        .min_by_key(|p| u8::from(p.cipher == Cipher::Tdes))
    {
        Some(p) => CaOffer::Supported(p),
        None => CaOffer::Unsupported(reasons.join(", ")),
    }
}

/// A fixed ephemeral key (tests reproducing recorded sessions); random when `None`.
#[derive(Debug, Clone, Default)]
pub struct CaTerminal {
    pub sk_eph: Option<Vec<u8>>,
}

/// Why chip authentication did not get as far as new session keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    #[error("the chip refused {step} with status {sw:04X} ({})", apdu::sw_text(*sw))]
    Refused { step: &'static str, sw: u16 },
    #[error("the chip's answer to {step} is malformed: {detail}")]
    Malformed { step: &'static str, detail: String },
    #[error("the DG14 public key is unusable: {0}")]
    Key(String),
}

/// A keyId as the `84` data object carries it: the integer's minimal big-endian bytes.
pub fn key_reference(id: u32) -> Vec<u8> {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    tlv::encode(0x84, &bytes[skip..])
}

/// Runs the exchange through `transmit` (which applies the current secure messaging) and
/// returns the secure messaging of the new keys, SSC 0. The caller must prove it with a command
/// the chip answers under it before trusting anything.
pub fn authenticate<E>(
    transmit: &mut dyn FnMut(&Command) -> Result<Response, E>,
    params: &CaParams,
    terminal: &CaTerminal,
) -> Result<Result<SecureMessaging, CaError>, E> {
    let (curve, cipher) = (params.curve, params.cipher);
    let sk = terminal
        .sk_eph
        .clone()
        .unwrap_or_else(|| curve.random_scalar());
    // The shared secret first: a DG14 key off the curve is refused before anything is sent.
    let shared = match curve.mul(&sk, &params.chip_key, "the DG14 public key") {
        Ok(p) => curve.x_of(&p),
        Err(e) => return Ok(Err(CaError::Key(e.to_string()))),
    };
    let pk = match curve.mul(&sk, &curve.generator(), "G") {
        Ok(p) => p,
        Err(e) => return Ok(Err(CaError::Key(e.to_string()))),
    };
    let key_ref = params.key_id.map(key_reference).unwrap_or_default();
    if cipher == Cipher::Tdes {
        let mut data = tlv::encode(0x91, &pk);
        data.extend_from_slice(&key_ref);
        let resp = transmit(&Command::new(0x00, 0x22, 0x41, 0xA6).with_data(data))?;
        if !resp.is_ok() {
            return Ok(Err(CaError::Refused {
                step: "MSE:Set KAT",
                sw: resp.sw,
            }));
        }
    } else {
        let mut data = tlv::encode(0x80, &params.oid);
        data.extend_from_slice(&key_ref);
        let resp = transmit(&Command::new(0x00, 0x22, 0x41, 0xA4).with_data(data))?;
        if !resp.is_ok() {
            return Ok(Err(CaError::Refused {
                step: "MSE:Set AT (chip authentication)",
                sw: resp.sw,
            }));
        }
        let step = "GENERAL AUTHENTICATE (chip authentication)";
        let resp = transmit(
            &Command::new(0x00, 0x86, 0x00, 0x00)
                .with_data(dynamic_data(0x80, &pk))
                .with_le(256),
        )?;
        if !resp.is_ok() {
            return Ok(Err(CaError::Refused { step, sw: resp.sw }));
        }
        // §6.2.4.2: the dynamic authentication data of the answer is empty (`7C 00`); chips
        // also answer with no data at all.
        if !resp.data.is_empty()
            && let Err(e) = tlv::expect(&resp.data, 0x7C)
        {
            return Ok(Err(CaError::Malformed {
                step,
                detail: format!("not 7C dynamic data: {e}"),
            }));
        }
    }
    let ks_enc = cipher.kdf(&shared, KeyUse::Enc);
    let ks_mac = cipher.kdf(&shared, KeyUse::Mac);
    Ok(Ok(SecureMessaging::new(
        cipher.sm(&ks_enc, &ks_mac),
        &vec![0; cipher.block_size()],
    )))
}

/// The outcome of chip authentication (or PACE-CAM) for a read, as the record reports it.
pub type ChipAuthentication = crate::verdict::Authenticity;

#[cfg(test)]
mod tests;
