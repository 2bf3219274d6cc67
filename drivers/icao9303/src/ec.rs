//! The elliptic curves of PACE and chip authentication, by their standardized domain parameter
//! ids (Doc 9303-11 §9.5.1, Table 6): NIST P-256/P-384 and brainpoolP256r1/P384r1 (RustCrypto's
//! `p256`, `p384`, `bp256`, `bp384`). Points travel as SEC1 uncompressed octet strings and
//! scalars as big-endian bytes, so the protocol code is the same on every curve. Every point
//! from a card is decoded with its curve equation checked; the identity is refused.
//!
//! brainpoolP512r1 (id 17) is not supported: no RustCrypto crate implements it (`bp512` does not
//! exist); the curve and its documents are rare.

use elliptic_curve::group::{Curve as _, Group};
use elliptic_curve::sec1::{FromSec1Point, ModulusSize, ToSec1Point};
use elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PrimeField};
use elliptic_curve::{ProjectivePoint, Scalar};

/// A curve documents use for PACE or chip authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    NistP256,
    BrainpoolP256r1,
    NistP384,
    BrainpoolP384r1,
}

/// Why a curve operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcError {
    #[error("{what} is not a point on {curve} ({len} bytes)")]
    NotOnCurve {
        what: &'static str,
        curve: &'static str,
        len: usize,
    },
    #[error("{what} is the point at infinity")]
    Identity { what: &'static str },
    #[error("{what} is not a scalar of {curve} ({len} bytes)")]
    BadScalar {
        what: &'static str,
        curve: &'static str,
        len: usize,
    },
}

impl Curve {
    pub const ALL: [Curve; 4] = [
        Curve::NistP256,
        Curve::BrainpoolP256r1,
        Curve::NistP384,
        Curve::BrainpoolP384r1,
    ];

    /// The standardized domain parameter id (PACEInfo's `parameterId`).
    pub fn from_parameter_id(id: u32) -> Option<Curve> {
        Some(match id {
            12 => Curve::NistP256,
            13 => Curve::BrainpoolP256r1,
            15 => Curve::NistP384,
            16 => Curve::BrainpoolP384r1,
            _ => return None,
        })
    }

    pub fn parameter_id(self) -> u8 {
        match self {
            Curve::NistP256 => 12,
            Curve::BrainpoolP256r1 => 13,
            Curve::NistP384 => 15,
            Curve::BrainpoolP384r1 => 16,
        }
    }

    /// The name used in records and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Curve::NistP256 => "P-256",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
            Curve::NistP384 => "P-384",
            Curve::BrainpoolP384r1 => "brainpoolP384r1",
        }
    }

    pub fn from_name(name: &str) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| {
            c.name().eq_ignore_ascii_case(name)
                || (name.eq_ignore_ascii_case("secp256r1") && *c == Curve::NistP256)
                || (name.eq_ignore_ascii_case("secp384r1") && *c == Curve::NistP384)
        })
    }

    /// Bytes of a field element (and of the shared secret `x`).
    pub fn field_len(self) -> usize {
        match self {
            Curve::NistP256 | Curve::BrainpoolP256r1 => 32,
            Curve::NistP384 | Curve::BrainpoolP384r1 => 48,
        }
    }

    /// The curve's base point, SEC1 uncompressed.
    pub fn generator(self) -> Vec<u8> {
        dispatch!(self, generator())
    }

    /// A fresh private key (a non-zero scalar), big-endian.
    pub fn random_scalar(self) -> Vec<u8> {
        dispatch!(self, random_scalar())
    }

    /// `k · P`, refusing a `P` off the curve and an identity result.
    pub fn mul(self, k: &[u8], p: &[u8], what: &'static str) -> Result<Vec<u8>, EcError> {
        dispatch!(self, mul(k, p, what, self.name()))
    }

    /// `k · G + H` for a point `H` (PACE generic mapping: `G' = s · G + H`).
    pub fn mul_base_add(self, k: &[u8], h: &[u8], what: &'static str) -> Result<Vec<u8>, EcError> {
        dispatch!(self, mul_base_add(k, h, what, self.name()))
    }

    /// Checks that `p` is a point of this curve other than the identity.
    pub fn check_point(self, p: &[u8], what: &'static str) -> Result<(), EcError> {
        dispatch!(self, check_point(p, what, self.name()))
    }

    /// `a · b⁻¹ mod n` (PACE-CAM's `CA_IC = SK_Map,IC · SK_IC⁻¹`).
    pub fn div_scalar(self, a: &[u8], b: &[u8]) -> Result<Vec<u8>, EcError> {
        dispatch!(self, div_scalar(a, b, self.name()))
    }

    /// The x coordinate of an uncompressed point (the ECDH shared secret).
    pub fn x_of(self, point: &[u8]) -> Vec<u8> {
        let n = self.field_len();
        point.get(1..1 + n).map(<[u8]>::to_vec).unwrap_or_default()
    }
}

macro_rules! dispatch {
    ($curve:expr, $f:ident($($arg:expr),*)) => {
        match $curve {
            Curve::NistP256 => $f::<p256::NistP256>($($arg),*),
            Curve::BrainpoolP256r1 => $f::<bp256::BrainpoolP256r1>($($arg),*),
            Curve::NistP384 => $f::<p384::NistP384>($($arg),*),
            Curve::BrainpoolP384r1 => $f::<bp384::BrainpoolP384r1>($($arg),*),
        }
    };
}
use dispatch;

fn encode<C: CurveArithmetic>(p: &ProjectivePoint<C>) -> Vec<u8>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    p.to_affine().to_sec1_point(false).as_bytes().to_vec()
}

fn decode<C: CurveArithmetic>(
    bytes: &[u8],
    what: &'static str,
    curve: &'static str,
) -> Result<ProjectivePoint<C>, EcError>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    // Uncompressed only, as Doc 9303-11 §9.4.5 encodes public points.
    if bytes.first() != Some(&0x04) {
        return Err(EcError::NotOnCurve {
            what,
            curve,
            len: bytes.len(),
        });
    }
    let affine = AffinePoint::<C>::from_sec1_bytes(bytes).map_err(|_| EcError::NotOnCurve {
        what,
        curve,
        len: bytes.len(),
    })?;
    let point = ProjectivePoint::<C>::from(affine);
    if bool::from(point.is_identity()) {
        return Err(EcError::Identity { what });
    }
    Ok(point)
}

/// A scalar from big-endian bytes of at most the field length (shorter ones are left-padded);
/// values at or above the order are refused.
fn scalar<C: CurveArithmetic>(
    k: &[u8],
    what: &'static str,
    curve: &'static str,
) -> Result<Scalar<C>, EcError>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let mut repr = FieldBytes::<C>::default();
    let n = repr.len();
    let bad = || EcError::BadScalar {
        what,
        curve,
        len: k.len(),
    };
    // Leading zero bytes beyond the field length are harmless (DER-style encodings).
    let skip = k.len().saturating_sub(n);
    if k[..skip].iter().any(|b| *b != 0) {
        return Err(bad());
    }
    let k = &k[skip..];
    repr[n - k.len()..].copy_from_slice(k);
    Option::from(Scalar::<C>::from_repr(repr)).ok_or_else(bad)
}

fn div_scalar<C: CurveArithmetic>(
    a: &[u8],
    b: &[u8],
    curve: &'static str,
) -> Result<Vec<u8>, EcError>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let a = scalar::<C>(a, "dividend", curve)?;
    let b = scalar::<C>(b, "divisor", curve)?;
    let inverse =
        Option::<Scalar<C>>::from(elliptic_curve::Field::invert(&b)).ok_or(EcError::BadScalar {
            what: "divisor",
            curve,
            len: 0,
        })?;
    Ok((a * inverse).to_repr().to_vec())
}

fn generator<C: CurveArithmetic>() -> Vec<u8>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    encode::<C>(&ProjectivePoint::<C>::generator())
}

fn random_scalar<C: CurveArithmetic>() -> Vec<u8>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    loop {
        let mut repr = FieldBytes::<C>::default();
        getrandom::fill(&mut repr).expect("the operating system's random generator failed");
        if let Some(s) = Option::<Scalar<C>>::from(Scalar::<C>::from_repr(repr))
            && !bool::from(elliptic_curve::Field::is_zero(&s))
        {
            return s.to_repr().to_vec();
        }
    }
}

fn mul<C: CurveArithmetic>(
    k: &[u8],
    p: &[u8],
    what: &'static str,
    curve: &'static str,
) -> Result<Vec<u8>, EcError>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let k = scalar::<C>(k, "private key", curve)?;
    let p = decode::<C>(p, what, curve)?;
    let r = p * k;
    if bool::from(r.is_identity()) {
        return Err(EcError::Identity {
            what: "the product",
        });
    }
    Ok(encode::<C>(&r))
}

fn mul_base_add<C: CurveArithmetic>(
    k: &[u8],
    h: &[u8],
    what: &'static str,
    curve: &'static str,
) -> Result<Vec<u8>, EcError>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    let k = scalar::<C>(k, "nonce", curve)?;
    let h = decode::<C>(h, what, curve)?;
    let r = ProjectivePoint::<C>::generator() * k + h;
    if bool::from(r.is_identity()) {
        return Err(EcError::Identity {
            what: "the mapped generator",
        });
    }
    Ok(encode::<C>(&r))
}

fn check_point<C: CurveArithmetic>(
    p: &[u8],
    what: &'static str,
    curve: &'static str,
) -> Result<(), EcError>
where
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    decode::<C>(p, what, curve).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::h;

    #[test]
    fn points_off_the_curve_and_the_identity_are_refused() {
        for curve in Curve::ALL {
            let g = curve.generator();
            assert_eq!(g.len(), 1 + 2 * curve.field_len());
            curve.check_point(&g, "G").unwrap();
            let mut off = g.clone();
            off[5] ^= 1;
            assert!(matches!(
                curve.check_point(&off, "PK"),
                Err(EcError::NotOnCurve { what: "PK", .. })
            ));
            assert!(curve.check_point(&[0x00], "PK").is_err());
            assert!(curve.check_point(&[], "PK").is_err());
            assert!(curve.check_point(&g[..g.len() - 1], "PK").is_err());
            // Compressed points are not what Doc 9303 sends.
            assert!(
                curve
                    .check_point(&[&[0x02][..], &g[1..33]].concat(), "PK")
                    .is_err()
            );
            // k = n - 1 times G is -G; G + (-G) is the identity.
            let k = curve.random_scalar();
            let p = curve.mul(&k, &g, "G").unwrap();
            assert_eq!(p.len(), g.len());
            assert!(curve.mul(&[0; 1], &g, "G").is_err(), "zero scalar");
            assert!(curve.mul(&[0xFF; 80], &g, "G").is_err(), "too long");
        }
    }

    #[test]
    fn generic_mapping_on_brainpool_p256_matches_the_icao_worked_example() {
        // Doc 9303-11 Appendix G.1: H = SK_Map,IFD · PK_Map,IC, then G' = s · G + H.
        let c = Curve::BrainpoolP256r1;
        let sk_map_ifd = h("7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99");
        let pk_map_ic = h(
            "04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F57 30D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C54",
        );
        let hpoint = c.mul(&sk_map_ifd, &pk_map_ic, "PK_Map,IC").unwrap();
        assert_eq!(
            hpoint,
            h(
                "0460332EF2450B5D247EF6D3868397D398852ED6E8CAF6FFEEF6BF85CA57057FD5 0840CA7415BAF3E43BD414D35AA4608B93A2CAF3A4E3EA4E82C9C13D03EB7181"
            )
        );
        let s = h("3F00C4D39D153F2B2A214A078D899B22");
        assert_eq!(
            c.mul_base_add(&s, &hpoint, "H").unwrap(),
            h(
                "048CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2 8C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522"
            )
        );
    }
}
