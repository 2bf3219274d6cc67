//! ECDSA verification on the curves travel documents use, for passive authentication (DER
//! signatures in EF.SOD and certificates) and Active Authentication (plain `r‖s`, BSI TR-03111
//! §5.2.1): NIST P-256/P-384 and brainpoolP256r1/P384r1 (RustCrypto's `ecdsa` through `p256`,
//! `p384`, `bp256`, `bp384`). The digest is computed by the caller (the hash comes from the
//! signature algorithm, or DG14's ActiveAuthenticationInfo).
//!
//! brainpoolP512r1 is not supported: no RustCrypto crate implements it (see [`crate::ec`]).

use ecdsa::signature::hazmat::PrehashVerifier as _;

use crate::ec::Curve;

/// How the signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `SEQUENCE { r INTEGER, s INTEGER }` (CMS, X.509).
    Der,
    /// `r ‖ s`, each the curve's field size (TR-03111 plain format).
    Plain,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcSigError {
    #[error("the public key is not a point on {0}")]
    BadKey(&'static str),
    #[error("the signature is not a {encoding} ECDSA signature on {curve} ({len} bytes)")]
    BadSignature {
        encoding: &'static str,
        curve: &'static str,
        len: usize,
    },
    #[error("the ECDSA signature on {0} does not verify")]
    Invalid(&'static str),
}

macro_rules! verify_on {
    ($curve:ty, $name:expr, $point:expr, $digest:expr, $sig:expr, $enc:expr) => {{
        let key = ecdsa::VerifyingKey::<$curve>::from_sec1_bytes($point)
            .map_err(|_| EcSigError::BadKey($name))?;
        let bad = || EcSigError::BadSignature {
            encoding: match $enc {
                Encoding::Der => "DER",
                Encoding::Plain => "plain",
            },
            curve: $name,
            len: $sig.len(),
        };
        let sig = match $enc {
            Encoding::Der => ecdsa::Signature::<$curve>::from_der($sig).map_err(|_| bad())?,
            Encoding::Plain => ecdsa::Signature::<$curve>::from_slice($sig).map_err(|_| bad())?,
        };
        key.verify_prehash($digest, &sig)
            .map_err(|_| EcSigError::Invalid($name))
    }};
}

/// Verifies `signature` over the message whose hash is `digest`, by the SEC1 point `point`.
pub fn verify(
    curve: Curve,
    point: &[u8],
    digest: &[u8],
    signature: &[u8],
    encoding: Encoding,
) -> Result<(), EcSigError> {
    let name = curve.name();
    match curve {
        Curve::NistP256 => verify_on!(p256::NistP256, name, point, digest, signature, encoding),
        Curve::NistP384 => verify_on!(p384::NistP384, name, point, digest, signature, encoding),
        Curve::BrainpoolP256r1 => {
            verify_on!(
                bp256::BrainpoolP256r1,
                name,
                point,
                digest,
                signature,
                encoding
            )
        }
        Curve::BrainpoolP384r1 => {
            verify_on!(
                bp384::BrainpoolP384r1,
                name,
                point,
                digest,
                signature,
                encoding
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecdsa::signature::hazmat::PrehashSigner as _;

    #[test]
    fn each_curve_verifies_its_own_signatures_and_refuses_others() {
        let digest = crate::sod::HashAlg::Sha256.digest(b"countersign");
        macro_rules! case {
            ($curve:ty, $c:expr, $len:expr) => {{
                let key = loop {
                    if let Ok(k) =
                        ecdsa::SigningKey::<$curve>::from_slice(&crate::crypto::random::<$len>())
                    {
                        break k;
                    }
                };
                let sig: ecdsa::Signature<$curve> = key.sign_prehash(&digest).unwrap();
                let point = key.verifying_key().to_sec1_point(false);
                let point = point.as_bytes();
                assert_eq!(
                    verify($c, point, &digest, &sig.to_bytes(), Encoding::Plain),
                    Ok(())
                );
                let der = sig.to_der();
                assert_eq!(
                    verify($c, point, &digest, der.as_bytes(), Encoding::Der),
                    Ok(())
                );
                let mut other = digest.clone();
                other[0] ^= 1;
                assert_eq!(
                    verify($c, point, &other, &sig.to_bytes(), Encoding::Plain),
                    Err(EcSigError::Invalid($c.name()))
                );
                assert!(matches!(
                    verify($c, point, &digest, &sig.to_bytes()[1..], Encoding::Plain),
                    Err(EcSigError::BadSignature { .. })
                ));
                assert!(matches!(
                    verify($c, &point[1..], &digest, &sig.to_bytes(), Encoding::Plain),
                    Err(EcSigError::BadKey(_))
                ));
            }};
        }
        case!(p256::NistP256, Curve::NistP256, 32);
        case!(p384::NistP384, Curve::NistP384, 48);
        case!(bp256::BrainpoolP256r1, Curve::BrainpoolP256r1, 32);
        case!(bp384::BrainpoolP384r1, Curve::BrainpoolP384r1, 48);
    }
}
