//! Active Authentication (Doc 9303-11 §6.1): the chip proves it holds the private key of DG15's
//! public key by signing a challenge (INTERNAL AUTHENTICATE, under secure messaging).
//!
//! - RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message recovery. The chip
//!   signs `M = M1 ‖ M2`, `M2` the 8-byte challenge; the representative recovered with the public
//!   key is `6A ‖ M1 ‖ H(M) ‖ T`, the trailer `T` `BC` for SHA-1 (implicit) or `hh CC` naming
//!   the hash (ISO/IEC 10118 identifiers: SHA-1 `33`, SHA-256 `34`, SHA-512 `35`, SHA-384 `36`,
//!   SHA-224 `38`). ISO/IEC 9796-2 lets the signer send `min(J, n − J)`; both are accepted.
//! - ECDSA: the plain `r ‖ s` signature (BSI TR-03111) over the challenge, with the hash named
//!   by DG14's ActiveAuthenticationInfo.
//!
//! The challenge can be bound to the station's hash chain ([`Binding`], [`challenge`]): the
//! chip's signature then proves it answered after the bound record was sealed. The chip side
//! for the emulator is [`chip`].

pub mod chip;
#[cfg(test)]
mod tests;

use sha2::Digest as _;

use crate::apdu::Command;
use crate::ec::Curve;
use crate::ecsig;
use crate::security_infos;
use crate::sod::{HashAlg, oid};
use crate::tlv;

/// The AA public key of DG15.
#[derive(Debug, Clone)]
pub enum AaPublicKey {
    Rsa(rsa::PublicKey),
    Ec { curve: Curve, point: Vec<u8> },
}

/// Why an answer or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AaError {
    /// DG15 or the answer is not what the standard says (no secret involved).
    #[error("{0}")]
    Malformed(String),
    /// The answer does not verify under DG15's key: the chip does not hold the private key.
    #[error("{0}")]
    Invalid(String),
    /// A key or algorithm countersign does not implement.
    #[error("{0}")]
    Unsupported(String),
}

fn malformed(what: impl Into<String>) -> AaError {
    AaError::Malformed(what.into())
}

impl AaPublicKey {
    /// `RSA-2048`, `ECDSA P-256`.
    pub fn describe(&self) -> String {
        use rsa::traits::PublicKeyParts as _;
        match self {
            AaPublicKey::Rsa(key) => format!("RSA-{}", key.n().as_ref().bit_width()),
            AaPublicKey::Ec { curve, .. } => format!("ECDSA {}", curve.name()),
        }
    }
}

/// DG15 (`6F { SubjectPublicKeyInfo }`): an RSA key (rsaEncryption) or an EC key (named curve or
/// explicit parameters of a supported curve).
pub fn parse_dg15(bytes: &[u8]) -> Result<AaPublicKey, AaError> {
    let dg15 = tlv::expect(bytes, 0x6F).map_err(|e| malformed(format!("DG15: {e}")))?;
    let spki = tlv::expect(dg15.value, 0x30)
        .map_err(|e| malformed(format!("DG15's SubjectPublicKeyInfo: {e}")))?;
    let fields = tlv::parse_all(spki.value)
        .map_err(|e| malformed(format!("DG15's SubjectPublicKeyInfo: {e}")))?;
    let (Some(alg), Some(bits)) = (fields.first(), fields.get(1)) else {
        return Err(malformed(
            "DG15's SubjectPublicKeyInfo lacks algorithm or key",
        ));
    };
    let alg_fields =
        tlv::parse_all(alg.value).map_err(|e| malformed(format!("DG15's key algorithm: {e}")))?;
    let key_oid = alg_fields
        .first()
        .filter(|o| o.tag == 0x06)
        .ok_or_else(|| malformed("DG15's key algorithm has no OID"))?;
    if key_oid.value == oid::RSA_ENCRYPTION {
        let key_bytes = match bits.value.split_first() {
            Some((0, k)) if bits.tag == 0x03 => k,
            _ => return Err(malformed("DG15's RSA key is not a whole-byte BIT STRING")),
        };
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        let key = rsa::PublicKey::from_pkcs1_der(key_bytes)
            .map_err(|e| malformed(format!("DG15's RSA key: {e}")))?;
        return Ok(AaPublicKey::Rsa(key));
    }
    if key_oid.value != oid::EC_PUBLIC_KEY {
        return Err(AaError::Unsupported(format!(
            "DG15 holds a key of algorithm {}, neither RSA nor EC",
            oid::dotted(key_oid.value)
        )));
    }
    let (curve, words, point) = security_infos::ec_public_key(&spki, 0)
        .map_err(|e| malformed(format!("DG15's EC key: {e}")))?;
    match curve {
        Some(curve) => {
            curve
                .check_point(&point, "DG15's public key")
                .map_err(|e| malformed(e.to_string()))?;
            Ok(AaPublicKey::Ec { curve, point })
        }
        None => Err(AaError::Unsupported(format!(
            "DG15's EC key is on {words}, which countersign does not implement"
        ))),
    }
}

/// The hash of ECDSA Active Authentication from ActiveAuthenticationInfo's signatureAlgorithm:
/// `ecdsa-plain-SHA*` (BSI TR-03111, 0.4.0.127.0.7.1.1.4.1.x) or X9.62 `ecdsa-with-SHA*`.
pub fn ecdsa_hash(signature_algorithm: &[u8]) -> Option<HashAlg> {
    const PLAIN: [u8; 9] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x01, 0x01, 0x04, 0x01];
    if let Some((arc, _)) = signature_algorithm
        .strip_prefix(&PLAIN[..])
        .and_then(|rest| rest.split_first())
        && signature_algorithm.len() == PLAIN.len() + 1
    {
        return match arc {
            1 => Some(HashAlg::Sha1),
            2 => Some(HashAlg::Sha224),
            3 => Some(HashAlg::Sha256),
            4 => Some(HashAlg::Sha384),
            5 => Some(HashAlg::Sha512),
            _ => None,
        };
    }
    Some(match signature_algorithm {
        oid::ECDSA_SHA1 => HashAlg::Sha1,
        oid::ECDSA_SHA224 => HashAlg::Sha224,
        oid::ECDSA_SHA256 => HashAlg::Sha256,
        oid::ECDSA_SHA384 => HashAlg::Sha384,
        oid::ECDSA_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

/// `ecdsa-plain-SHA*` for the emulator's ActiveAuthenticationInfo.
pub fn ecdsa_plain_oid(hash: HashAlg) -> Vec<u8> {
    let arc = match hash {
        HashAlg::Sha1 => 1,
        HashAlg::Sha224 => 2,
        HashAlg::Sha256 => 3,
        HashAlg::Sha384 => 4,
        HashAlg::Sha512 => 5,
    };
    vec![0x04, 0x00, 0x7F, 0x00, 0x07, 0x01, 0x01, 0x04, 0x01, arc]
}

/// INTERNAL AUTHENTICATE with the 8-byte challenge; the whole answer is wanted (Le `00`).
pub fn internal_authenticate(challenge: &[u8; 8]) -> Command {
    Command::new(0x00, 0x88, 0x00, 0x00)
        .with_data(challenge.to_vec())
        .with_le(256)
}

/// ISO/IEC 10118-3 hash identifiers of the two-byte trailer `hh CC`.
fn trailer_hash(id: u8) -> Option<HashAlg> {
    Some(match id {
        0x33 => HashAlg::Sha1,
        0x34 => HashAlg::Sha256,
        0x35 => HashAlg::Sha512,
        0x36 => HashAlg::Sha384,
        0x38 => HashAlg::Sha224,
        _ => return None,
    })
}

/// The identifier of `hash` in the two-byte trailer (the emulator's SHA-2 signatures).
pub fn trailer_id(hash: HashAlg) -> u8 {
    match hash {
        HashAlg::Sha1 => 0x33,
        HashAlg::Sha256 => 0x34,
        HashAlg::Sha512 => 0x35,
        HashAlg::Sha384 => 0x36,
        HashAlg::Sha224 => 0x38,
    }
}

/// Verifies the chip's answer to `challenge`. `ecdsa_hash` is DG14's choice (ECDSA keys only).
/// On success, what was verified (`RSA-2048 ISO/IEC 9796-2 scheme 1 SHA-1`).
pub fn verify_response(
    key: &AaPublicKey,
    challenge: &[u8],
    signature: &[u8],
    ecdsa_hash: Option<HashAlg>,
) -> Result<String, AaError> {
    match key {
        AaPublicKey::Rsa(rsa_key) => {
            let hash = iso9796_2_verify(rsa_key, challenge, signature)?;
            Ok(format!(
                "{} ISO/IEC 9796-2 scheme 1 {}",
                key.describe(),
                hash.name()
            ))
        }
        AaPublicKey::Ec { curve, point } => {
            let hash = ecdsa_hash.ok_or_else(|| {
                AaError::Unsupported(
                    "an ECDSA key in DG15 but no ActiveAuthenticationInfo in DG14 naming the hash"
                        .into(),
                )
            })?;
            ecsig::verify(
                *curve,
                point,
                &hash.digest(challenge),
                signature,
                ecsig::Encoding::Plain,
            )
            .map_err(|e| match e {
                ecsig::EcSigError::Invalid(_) => AaError::Invalid(e.to_string()),
                other => malformed(other.to_string()),
            })?;
            Ok(format!("{} {}", key.describe(), hash.name()))
        }
    }
}

/// ISO/IEC 9796-2 scheme 1 with `m2` the non-recoverable part: the message representative
/// recovered, its header, trailer and hash checked. Returns the hash the trailer named.
fn iso9796_2_verify(key: &rsa::PublicKey, m2: &[u8], signature: &[u8]) -> Result<HashAlg, AaError> {
    use rsa::traits::PublicKeyParts as _;
    let n = key.n().as_ref();
    let k = n.bit_width().div_ceil(8) as usize;
    if signature.is_empty() || signature.len() > k {
        return Err(malformed(format!(
            "the answer is {} bytes; an RSA-{} signature has at most {k}",
            signature.len(),
            n.bit_width()
        )));
    }
    let s = rsa::BoxedUint::from_be_slice(signature, n.bits_precision())
        .map_err(|_| malformed("the answer is not an RSA signature"))?;
    if s >= *n {
        return Err(malformed("the answer is not below the modulus"));
    }
    let j = rsa::hazmat::rsa_encrypt(key, &s)
        .map_err(|e| malformed(format!("RSA public operation: {e}")))?;
    let representative = |v: &rsa::BoxedUint| {
        let bytes = v.to_be_bytes();
        bytes[bytes.len().saturating_sub(k)..].to_vec()
    };
    let mut f = representative(&j);
    if f.last().is_some_and(|b| b & 0x0F != 0x0C) {
        f = representative(&n.wrapping_sub(&j));
    }
    check_representative(&f, m2)
}

/// The checks of a recovered ISO/IEC 9796-2 scheme 1 representative `f` (partial recovery, `m2`
/// the non-recoverable part): header, trailer, padding, and the hash of `M1 ‖ m2`.
pub fn check_representative(f: &[u8], m2: &[u8]) -> Result<HashAlg, AaError> {
    let invalid = |why: &str| {
        AaError::Invalid(format!(
            "the signature does not verify under DG15's key: {why}"
        ))
    };
    if f.len() < 3 || f[0] & 0xC0 != 0x40 {
        return Err(invalid(
            "the recovered representative has no ISO/IEC 9796-2 header",
        ));
    }
    let (hash, trailer) = match f[f.len() - 1] {
        0xBC => (HashAlg::Sha1, 1),
        0xCC => match (trailer_hash(f[f.len() - 2]), f[f.len() - 2]) {
            (Some(hash), _) => (hash, 2),
            // RIPEMD-160, RIPEMD-128, Whirlpool: real hashes countersign does not implement.
            (None, id @ (0x31 | 0x32 | 0x37)) => {
                return Err(AaError::Unsupported(format!(
                    "the signature's trailer names hash {id:02X}, which countersign does not implement"
                )));
            }
            // Anything else is no hash at all: what another key's signature recovers to.
            (None, _) => return Err(invalid("the trailer names no hash")),
        },
        _ => {
            return Err(invalid(
                "the recovered representative has no ISO/IEC 9796-2 trailer",
            ));
        }
    };
    let h_len = hash.digest(b"").len();
    // Padding nibbles `B` end with a nibble `A`; M1 starts after it.
    let start = f
        .iter()
        .position(|b| b & 0x0F == 0x0A)
        .map(|i| i + 1)
        .ok_or_else(|| invalid("no end of padding in the representative"))?;
    let h_at = f
        .len()
        .checked_sub(trailer + h_len)
        .filter(|at| *at > start)
        .ok_or_else(|| invalid("the representative is too short for its hash"))?;
    let m1 = &f[start..h_at];
    if f[0] & 0x20 == 0 {
        return Err(invalid(
            "total message recovery, but the challenge must be the non-recoverable part",
        ));
    }
    let expected = hash.digest(&[m1, m2].concat());
    if !crate::crypto::ct_eq(&expected, &f[h_at..h_at + h_len]) {
        return Err(invalid(&format!(
            "its {} hash is not that of the challenge",
            hash.name()
        )));
    }
    Ok(hash)
}

/// What the challenge of a read is bound to: the station's previous sealed record at read time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The station id.
    pub station: String,
    /// The last record the station had sealed when the read began (`seq`, `sha256:<hex>` of its
    /// wire bytes), or `None` for a station with no record yet.
    pub bound: Option<(u64, String)>,
    /// The read's start, RFC 3339 UTC with milliseconds (the station's clock).
    pub read_at: String,
}

/// Domain separation of the challenge derivation (version 1).
pub const CHALLENGE_CONTEXT: &[u8] = b"countersign active authentication challenge v1";

/// The challenge: the first 8 bytes of SHA-256 over the context and the binding's fields, each
/// as a 4-byte big-endian length then its bytes: context, station id, the bound record's
/// sequence number in decimal (empty when none), its `sha256:<hex>` (empty when none), the read
/// time (`docs/record-format.md`).
pub fn challenge(binding: &Binding) -> [u8; 8] {
    let (seq, hash) = match &binding.bound {
        Some((seq, hash)) => (seq.to_string(), hash.as_str()),
        None => (String::new(), ""),
    };
    let mut sha = sha2::Sha256::new();
    for field in [
        CHALLENGE_CONTEXT,
        binding.station.as_bytes(),
        seq.as_bytes(),
        hash.as_bytes(),
        binding.read_at.as_bytes(),
    ] {
        sha.update((field.len() as u32).to_be_bytes());
        sha.update(field);
    }
    let digest = sha.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Active Authentication as run within a read, as the record reports it.
pub type ActiveAuthentication = crate::verdict::Authenticity;

/// The exchange as it happened, for the record: a verifier redoes [`verify_response`] from it
/// and DG15 alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AaExchange {
    /// The binding the challenge was derived from; `None`: a random challenge.
    pub binding: Option<Binding>,
    pub challenge: [u8; 8],
    /// The chip's answer as received (after secure messaging).
    pub signature: Vec<u8>,
    /// DG14's hash for ECDSA keys.
    pub ecdsa_hash: Option<HashAlg>,
}
