//! The chip side of Active Authentication for the emulator: INTERNAL AUTHENTICATE answered with
//! an ISO/IEC 9796-2 scheme 1 RSA signature (SHA-1 with trailer `BC`, or a SHA-2 hash with the
//! two-byte trailer) or a plain ECDSA signature on P-256. A clone signs with a key of its own.

use ecdsa::signature::hazmat::PrehashSigner as _;

use crate::apdu::{self, Command};
use crate::sod::HashAlg;

/// The private key in the chip.
#[derive(Clone)]
pub enum AaPrivateKey {
    /// RSA, and the hash of the signature (SHA-1: trailer `BC`; others `hh CC`).
    Rsa(Box<rsa::PrivateKey>, HashAlg),
    /// ECDSA P-256, and the hash DG14 names.
    P256(p256::ecdsa::SigningKey, HashAlg),
}

impl AaPrivateKey {
    /// A fresh P-256 key.
    pub fn random_p256(hash: HashAlg) -> AaPrivateKey {
        loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&crate::crypto::random::<32>()) {
                return AaPrivateKey::P256(k, hash);
            }
        }
    }

    /// DG15's SubjectPublicKeyInfo (DER).
    pub fn public_spki(&self) -> Vec<u8> {
        match self {
            AaPrivateKey::Rsa(key, _) => {
                use rsa::pkcs1::EncodeRsaPublicKey as _;
                let pkcs1 = key
                    .to_public_key()
                    .to_pkcs1_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default();
                let mut bits = vec![0];
                bits.extend_from_slice(&pkcs1);
                crate::tlv::encode(
                    0x30,
                    &[
                        crate::sod::build::algorithm(crate::sod::oid::RSA_ENCRYPTION, true),
                        crate::tlv::encode(0x03, &bits),
                    ]
                    .concat(),
                )
            }
            AaPrivateKey::P256(key, _) => crate::security_infos::build::ec_spki(
                crate::ec::Curve::NistP256,
                key.verifying_key().to_sec1_point(false).as_bytes(),
            ),
        }
    }

    /// The signature over `challenge`.
    pub fn sign(&self, challenge: &[u8]) -> Option<Vec<u8>> {
        match self {
            AaPrivateKey::Rsa(key, hash) => iso9796_2_sign(key, *hash, challenge),
            AaPrivateKey::P256(key, hash) => {
                let sig: p256::ecdsa::Signature = key.sign_prehash(&hash.digest(challenge)).ok()?;
                Some(sig.to_bytes().to_vec())
            }
        }
    }
}

/// ISO/IEC 9796-2 scheme 1, partial recovery: `6A ‖ M1 ‖ H(M1 ‖ challenge) ‖ trailer`, M1
/// random bytes filling the modulus, raised to the private exponent.
fn iso9796_2_sign(key: &rsa::PrivateKey, hash: HashAlg, challenge: &[u8]) -> Option<Vec<u8>> {
    use rsa::traits::PublicKeyParts as _;
    let n = key.n().as_ref();
    let k = n.bit_width().div_ceil(8) as usize;
    let trailer: Vec<u8> = match hash {
        HashAlg::Sha1 => vec![0xBC],
        other => vec![super::trailer_id(other), 0xCC],
    };
    let h_len = hash.digest(b"").len();
    let m1_len = k.checked_sub(1 + h_len + trailer.len())?;
    let m1: Vec<u8> = (0..m1_len)
        .map(|_| crate::crypto::random::<1>()[0])
        .collect();
    let mut f = vec![0x6A];
    f.extend_from_slice(&m1);
    f.extend_from_slice(&hash.digest(&[m1.as_slice(), challenge].concat()));
    f.extend_from_slice(&trailer);
    let m = rsa::BoxedUint::from_be_slice(&f, n.bits_precision()).ok()?;
    let s = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut getrandom::SysRng), &m).ok()?;
    let bytes = s.to_be_bytes();
    Some(bytes[bytes.len().saturating_sub(k)..].to_vec())
}

/// INTERNAL AUTHENTICATE: 8 bytes of challenge, the signature back.
pub fn internal_authenticate(key: &AaPrivateKey, cmd: &Command) -> Result<Vec<u8>, u16> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(apdu::SW_WRONG_P1P2);
    }
    if cmd.data.len() != 8 {
        return Err(apdu::SW_WRONG_LENGTH);
    }
    key.sign(&cmd.data).ok_or(apdu::SW_CONDITIONS)
}
