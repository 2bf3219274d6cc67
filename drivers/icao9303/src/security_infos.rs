//! SecurityInfos (Doc 9303-11 §9.2): EF.CardAccess (what access control the chip offers) and
//! DG14 (chip authentication keys). A `SET OF SEQUENCE { protocol OID, requiredData,
//! optionalData }`; entries countersign does not use are kept by OID, never an error. The
//! parser is total: every error names the entry and the byte offset.

use crate::cipher::Cipher;
use crate::ec::Curve;
use crate::sod::oid::{self, dotted};
use crate::tlv::{self, Tlv};

/// `id-PACE` (0.4.0.127.0.7.2.2.4) as DER content bytes.
pub const ID_PACE: [u8; 8] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x04];
/// `id-CA` (0.4.0.127.0.7.2.2.3).
pub const ID_CA: [u8; 8] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x03];
/// `id-PK-ECDH` (0.4.0.127.0.7.2.2.1.2): a chip authentication public key.
pub const ID_PK_ECDH: [u8; 9] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x01, 0x02];

/// `id-PK-DH` (0.4.0.127.0.7.2.2.1.1): a DH chip authentication public key (kept in `other`).
pub const ID_PK_DH: [u8; 9] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x01, 0x01];

/// `id-AA` (2.23.136.1.1.5): ActiveAuthenticationInfo, the signature algorithm of ECDSA Active
/// Authentication (Doc 9303-11 §9.2.8).
pub const ID_AA: [u8; 6] = [0x67, 0x81, 0x08, 0x01, 0x01, 0x05];

/// brainpoolP256r1 and brainpoolP384r1 (RFC 5639) as named-curve OIDs.
pub const BRAINPOOL_P256R1: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07];
pub const BRAINPOOL_P384R1: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0B];

/// Named curves documents use that countersign does not implement, for messages.
const OTHER_CURVES: &[(&[u8], &str)] = &[
    (
        &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0D],
        "brainpoolP512r1",
    ),
    (
        &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x09],
        "brainpoolP320r1",
    ),
    (
        &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x05],
        "brainpoolP224r1",
    ),
    (
        &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x03],
        "brainpoolP192r1",
    ),
    (&[0x2B, 0x81, 0x04, 0x00, 0x23], "P-521"),
    (&[0x2B, 0x81, 0x04, 0x00, 0x21], "P-224"),
    (&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x01], "P-192"),
];

/// Key agreement of a PACE or CA protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAgreement {
    Dh,
    Ecdh,
}

/// PACE's mapping (§4.4.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    Generic,
    Integrated,
    ChipAuthentication,
}

/// A PACE protocol OID decoded: `id-PACE-{DH|ECDH}-{GM|IM|CAM}-{cipher}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceProtocol {
    pub agreement: KeyAgreement,
    pub mapping: Mapping,
    pub cipher: Cipher,
}

impl PaceProtocol {
    /// From OID content bytes; `None` for anything that is not a PACE protocol.
    pub fn from_oid(oid: &[u8]) -> Option<PaceProtocol> {
        let (&[family, cipher], prefix) = (oid.get(8..)?, oid.get(..8)?) else {
            return None;
        };
        if prefix != ID_PACE {
            return None;
        }
        let (agreement, mapping) = match family {
            1 => (KeyAgreement::Dh, Mapping::Generic),
            2 => (KeyAgreement::Ecdh, Mapping::Generic),
            3 => (KeyAgreement::Dh, Mapping::Integrated),
            4 => (KeyAgreement::Ecdh, Mapping::Integrated),
            6 => (KeyAgreement::Ecdh, Mapping::ChipAuthentication),
            _ => return None,
        };
        Some(PaceProtocol {
            agreement,
            mapping,
            cipher: Cipher::from_arc(cipher)?,
        })
    }

    pub fn oid(self) -> Vec<u8> {
        let family = match (self.agreement, self.mapping) {
            (KeyAgreement::Dh, Mapping::Generic) => 1,
            (KeyAgreement::Ecdh, Mapping::Generic) => 2,
            (KeyAgreement::Dh, Mapping::Integrated) => 3,
            (KeyAgreement::Ecdh, Mapping::Integrated) => 4,
            (_, Mapping::ChipAuthentication) => 6,
        };
        let mut oid = ID_PACE.to_vec();
        oid.extend_from_slice(&[family, self.cipher.arc()]);
        oid
    }

    /// `ECDH-GM AES-128`.
    pub fn name(self) -> String {
        let a = match self.agreement {
            KeyAgreement::Dh => "DH",
            KeyAgreement::Ecdh => "ECDH",
        };
        let m = match self.mapping {
            Mapping::Generic => "GM",
            Mapping::Integrated => "IM",
            Mapping::ChipAuthentication => "CAM",
        };
        format!("{a}-{m} {}", self.cipher.name())
    }
}

/// A PACEInfo: protocol, version (2) and the standardized domain parameters' id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceInfo {
    /// The protocol OID as DER content bytes (sent back in MSE:Set AT).
    pub oid: Vec<u8>,
    /// The decoded protocol; `None` for an OID under id-PACE countersign does not know.
    pub protocol: Option<PaceProtocol>,
    pub version: u32,
    pub parameter_id: Option<u32>,
}

/// A ChipAuthenticationInfo (`id-CA-{DH|ECDH}-{cipher}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    pub oid: Vec<u8>,
    pub agreement: KeyAgreement,
    pub cipher: Cipher,
    pub version: u32,
    pub key_id: Option<u32>,
}

/// A ChipAuthenticationPublicKeyInfo for ECDH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPublicKey {
    /// `None` when the key's domain parameters are not a supported curve.
    pub curve: Option<Curve>,
    /// The domain parameters in words, for messages: the curve's name, or what else they are
    /// (`brainpoolP512r1`, `named curve 1.2.3.4`, `explicit domain parameters of no supported
    /// curve`).
    pub parameters: String,
    /// The chip's static public point, SEC1 uncompressed.
    pub point: Vec<u8>,
    pub key_id: Option<u32>,
}

/// The SecurityInfos of EF.CardAccess or DG14.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityInfos {
    pub pace: Vec<PaceInfo>,
    pub chip_authentication: Vec<CaInfo>,
    pub ca_public_keys: Vec<CaPublicKey>,
    /// ActiveAuthenticationInfo's `signatureAlgorithm` (DG14), an OID's content bytes: the
    /// hash of ECDSA Active Authentication.
    pub aa_signature_algorithm: Option<Vec<u8>>,
    /// OIDs (dotted) of entries not used here (terminal authentication, PACE domain
    /// parameter infos, DH keys...).
    pub other: Vec<String>,
}

/// Why SecurityInfos could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SecurityInfos: {what} at offset {offset}")]
pub struct SecurityInfosError {
    pub what: String,
    pub offset: usize,
}

fn fail<T>(what: impl Into<String>, offset: usize) -> Result<T, SecurityInfosError> {
    Err(SecurityInfosError {
        what: what.into(),
        offset,
    })
}

fn tlv_err(e: tlv::TlvError, base: usize) -> SecurityInfosError {
    SecurityInfosError {
        what: e.what.into(),
        offset: base + e.offset,
    }
}

/// A non-negative INTEGER of at most 4 bytes.
fn integer(o: &Tlv, base: usize, what: &str) -> Result<u32, SecurityInfosError> {
    if o.tag != 0x02 {
        return fail(format!("{what} is not an INTEGER"), base + o.offset);
    }
    let v = o.value;
    let v = match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    if v.is_empty() || v.len() > 4 || v[0] & 0x80 != 0 && o.value.len() == v.len() {
        return fail(
            format!("{what} is not a small non-negative INTEGER"),
            base + o.offset,
        );
    }
    Ok(v.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
}

/// Parses EF.CardAccess (`31 …`) or DG14 (`6E { 31 … }`).
pub fn parse(bytes: &[u8]) -> Result<SecurityInfos, SecurityInfosError> {
    let (outer, rest) = tlv::parse_one(bytes).map_err(|e| tlv_err(e, 0))?;
    if !rest.is_empty() {
        return fail("bytes after the SecurityInfos", outer.raw.len());
    }
    let (set, base) = match outer.tag {
        0x31 => (outer, 0),
        0x6E => {
            let hl = outer.raw.len() - outer.value.len();
            let set = tlv::expect(outer.value, 0x31).map_err(|e| tlv_err(e, hl))?;
            (set, hl)
        }
        tag => return fail(format!("tag {tag:02X} where a SET (31) was expected"), 0),
    };
    let base = base + set.raw.len() - set.value.len();
    let mut infos = SecurityInfos::default();
    for entry in tlv::parse_all(set.value).map_err(|e| tlv_err(e, base))? {
        let at = base + entry.offset;
        if entry.tag != 0x30 {
            return fail("a SecurityInfo that is not a SEQUENCE", at);
        }
        let inner_base = at + entry.raw.len() - entry.value.len();
        let fields = tlv::parse_all(entry.value).map_err(|e| tlv_err(e, inner_base))?;
        let Some(protocol) = fields.first().filter(|f| f.tag == 0x06) else {
            return fail("a SecurityInfo without its protocol OID", at);
        };
        let oid = protocol.value;
        let Some(required) = fields.get(1) else {
            return fail(format!("{} without its required data", dotted(oid)), at);
        };
        let optional = fields.get(2);
        if oid.starts_with(&ID_PACE) && oid.len() == 10 {
            infos.pace.push(PaceInfo {
                oid: oid.to_vec(),
                protocol: PaceProtocol::from_oid(oid),
                version: integer(required, inner_base, "PACEInfo version")?,
                parameter_id: optional
                    .map(|o| integer(o, inner_base, "PACEInfo parameterId"))
                    .transpose()?,
            });
        } else if oid.starts_with(&ID_CA) && oid.len() == 10 {
            let agreement = match oid[8] {
                1 => KeyAgreement::Dh,
                2 => KeyAgreement::Ecdh,
                _ => {
                    infos.other.push(dotted(oid));
                    continue;
                }
            };
            let Some(cipher) = Cipher::from_arc(oid[9]) else {
                infos.other.push(dotted(oid));
                continue;
            };
            infos.chip_authentication.push(CaInfo {
                oid: oid.to_vec(),
                agreement,
                cipher,
                version: integer(required, inner_base, "ChipAuthenticationInfo version")?,
                key_id: optional
                    .map(|o| integer(o, inner_base, "ChipAuthenticationInfo keyId"))
                    .transpose()?,
            });
        } else if oid == ID_PK_ECDH {
            let (curve, parameters, point) = ec_public_key(required, inner_base)?;
            infos.ca_public_keys.push(CaPublicKey {
                curve,
                parameters,
                point,
                key_id: optional
                    .map(|o| integer(o, inner_base, "ChipAuthenticationPublicKeyInfo keyId"))
                    .transpose()?,
            });
        } else if oid == ID_AA {
            integer(required, inner_base, "ActiveAuthenticationInfo version")?;
            match optional {
                Some(alg) if alg.tag == 0x06 => {
                    infos.aa_signature_algorithm = Some(alg.value.to_vec());
                }
                _ => {
                    return fail(
                        "ActiveAuthenticationInfo without its signatureAlgorithm OID",
                        at,
                    );
                }
            }
        } else {
            infos.other.push(dotted(oid));
        }
    }
    Ok(infos)
}

/// The curve of EC domain parameters (a named curve, or explicit parameters recognised by their
/// base point) and the parameters in words for messages.
///
/// Explicit ECParameters { version, fieldID, curve, base, order, cofactor }: the base point
/// names the curve. Prime, coefficients and order are not compared: the key is then used on
/// that named curve only, after its point is checked to lie on it, so parameters that merely
/// share the base point cannot make the reader compute on another curve.
pub fn ec_curve(params: Option<&Tlv>) -> (Option<Curve>, String) {
    let curve = match params {
        Some(p) if p.tag == 0x06 => match p.value {
            v if v == oid::P256 => Some(Curve::NistP256),
            v if v == oid::P384 => Some(Curve::NistP384),
            v if v == BRAINPOOL_P256R1 => Some(Curve::BrainpoolP256r1),
            v if v == BRAINPOOL_P384R1 => Some(Curve::BrainpoolP384r1),
            _ => None,
        },
        Some(p) if p.tag == 0x30 => tlv::parse_all(p.value)
            .ok()
            .and_then(|f| f.get(3).filter(|b| b.tag == 0x04).map(|b| b.value.to_vec()))
            .and_then(|g| Curve::ALL.into_iter().find(|c| c.generator() == g)),
        _ => None,
    };
    let words = match (curve, params) {
        (Some(c), Some(p)) if p.tag == 0x30 => format!("{} (explicit parameters)", c.name()),
        (Some(c), _) => c.name().to_string(),
        (None, Some(p)) if p.tag == 0x06 => OTHER_CURVES
            .iter()
            .find(|(o, _)| *o == p.value)
            .map_or_else(
                || format!("named curve {}", dotted(p.value)),
                |(_, n)| (*n).into(),
            ),
        (None, Some(p)) if p.tag == 0x30 => {
            "explicit domain parameters of no supported curve".into()
        }
        (None, _) => "no domain parameters".into(),
    };
    (curve, words)
}

/// A SubjectPublicKeyInfo of `id-ecPublicKey`: the curve (named, or explicit parameters
/// recognised by their base point), the parameters in words, and the point.
pub fn ec_public_key(
    spki: &Tlv,
    base: usize,
) -> Result<(Option<Curve>, String, Vec<u8>), SecurityInfosError> {
    let at = base + spki.offset;
    let inner = at + spki.raw.len() - spki.value.len();
    if spki.tag != 0x30 {
        return fail("a chip authentication key that is not a SEQUENCE", at);
    }
    let fields = tlv::parse_all(spki.value).map_err(|e| tlv_err(e, inner))?;
    let (Some(alg), Some(bits)) = (fields.first(), fields.get(1)) else {
        return fail("a chip authentication key without algorithm and key", at);
    };
    if alg.tag != 0x30 || bits.tag != 0x03 {
        return fail("a malformed SubjectPublicKeyInfo", at);
    }
    let alg_fields = tlv::parse_all(alg.value).map_err(|e| tlv_err(e, inner))?;
    match alg_fields.first() {
        Some(o) if o.tag == 0x06 && o.value == oid::EC_PUBLIC_KEY => {}
        _ => return fail("a chip authentication key that is not id-ecPublicKey", at),
    }
    let (curve, parameters) = ec_curve(alg_fields.get(1));
    let parameters = match curve {
        Some(c) => c.name().to_string(),
        None => parameters,
    };
    let point = match bits.value.split_first() {
        Some((0, point)) => point.to_vec(),
        _ => return fail("a public key BIT STRING with unused bits", at),
    };
    Ok((curve, parameters, point))
}

/// Builders for the emulator and tests.
pub mod build {
    use super::*;

    fn integer(n: u32) -> Vec<u8> {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
        let mut v = bytes[skip..].to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        tlv::encode(0x02, &v)
    }

    /// A PACEInfo (version 2).
    pub fn pace_info(protocol: PaceProtocol, curve: Curve) -> Vec<u8> {
        tlv::encode(
            0x30,
            &[
                tlv::encode(0x06, &protocol.oid()),
                integer(2),
                integer(u32::from(curve.parameter_id())),
            ]
            .concat(),
        )
    }

    /// A ChipAuthenticationInfo (ECDH, version 1) and its public key with a named curve.
    pub fn chip_authentication(cipher: Cipher, curve: Curve, point: &[u8]) -> Vec<Vec<u8>> {
        chip_authentication_with_key_id(cipher, curve, point, None)
    }

    /// The same, with a keyId in both entries when given.
    pub fn chip_authentication_with_key_id(
        cipher: Cipher,
        curve: Curve,
        point: &[u8],
        key_id: Option<u32>,
    ) -> Vec<Vec<u8>> {
        let key_id = key_id.map(integer).unwrap_or_default();
        let mut ca_oid = ID_CA.to_vec();
        ca_oid.extend_from_slice(&[2, cipher.arc()]);
        let spki = ec_spki(curve, point);
        vec![
            tlv::encode(
                0x30,
                &[tlv::encode(0x06, &ca_oid), integer(1), key_id.clone()].concat(),
            ),
            tlv::encode(
                0x30,
                &[tlv::encode(0x06, &ID_PK_ECDH), spki, key_id].concat(),
            ),
        ]
    }

    /// The named-curve OID of a supported curve.
    pub fn curve_oid(curve: Curve) -> &'static [u8] {
        match curve {
            Curve::NistP256 => oid::P256,
            Curve::NistP384 => oid::P384,
            Curve::BrainpoolP256r1 => BRAINPOOL_P256R1,
            Curve::BrainpoolP384r1 => BRAINPOOL_P384R1,
        }
    }

    /// A SubjectPublicKeyInfo of `id-ecPublicKey` on a named curve.
    pub fn ec_spki(curve: Curve, point: &[u8]) -> Vec<u8> {
        let mut bits = vec![0];
        bits.extend_from_slice(point);
        tlv::encode(
            0x30,
            &[
                tlv::encode(
                    0x30,
                    &[
                        tlv::encode(0x06, oid::EC_PUBLIC_KEY),
                        tlv::encode(0x06, curve_oid(curve)),
                    ]
                    .concat(),
                ),
                tlv::encode(0x03, &bits),
            ]
            .concat(),
        )
    }

    /// An ActiveAuthenticationInfo (version 1) naming the ECDSA signature algorithm.
    pub fn active_authentication_info(signature_algorithm: &[u8]) -> Vec<u8> {
        tlv::encode(
            0x30,
            &[
                tlv::encode(0x06, &ID_AA),
                integer(1),
                tlv::encode(0x06, signature_algorithm),
            ]
            .concat(),
        )
    }

    /// The SET of SecurityInfos (EF.CardAccess's content; DG14 wraps it in `6E`).
    pub fn set(infos: &[Vec<u8>]) -> Vec<u8> {
        tlv::encode(0x31, &infos.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::h;

    #[test]
    fn card_access_of_the_icao_example_and_of_real_chips() {
        // Doc 9303-11 Appendix G.1: ECDH-GM AES-128 on brainpoolP256r1.
        let infos = parse(&h("31143012060A04007F0007020204020202010202010D")).unwrap();
        assert_eq!(infos.pace.len(), 1);
        let pace = &infos.pace[0];
        assert_eq!(pace.oid, h("04007F00070202040202"));
        assert_eq!(pace.version, 2);
        assert_eq!(pace.parameter_id, Some(13));
        let protocol = pace.protocol.unwrap();
        assert_eq!(protocol.name(), "ECDH-GM AES-128");
        assert_eq!(protocol.oid(), pace.oid);
        // A German ID card (gmrtd's PACE tests): GM and CAM offered.
        let infos = parse(&h(
            "31283012060A04007F0007020204020202010202010D3012060A04007F0007020204060202010202010D",
        ))
        .unwrap();
        let mappings: Vec<Mapping> = infos
            .pace
            .iter()
            .map(|p| p.protocol.unwrap().mapping)
            .collect();
        assert_eq!(mappings, [Mapping::Generic, Mapping::ChipAuthentication]);
        // The builder writes what the parser reads.
        let built = build::set(&[build::pace_info(protocol, Curve::BrainpoolP256r1)]);
        assert_eq!(built, h("31143012060A04007F0007020204020202010202010D"));
    }

    #[test]
    fn unknown_entries_are_kept_and_malformed_ones_are_located() {
        // Terminal authentication (0.4.0.127.0.7.2.2.2) beside a PACEInfo without parameterId.
        let infos = parse(&h(
            "3120300D060804007F0007020202020102300F060A04007F00070202040202020102",
        ))
        .unwrap();
        assert_eq!(infos.other, ["0.4.0.127.0.7.2.2.2"]);
        assert_eq!(infos.pace[0].parameter_id, None);
        let e = parse(&h("3103020101")).unwrap_err();
        assert!(e.to_string().contains("not a SEQUENCE"), "{e}");
        let e = parse(&h("31053003060100")).unwrap_err();
        assert!(e.to_string().contains("required data"), "{e}");
        let e = parse(&h("3111300F060A04007F00070202040202040102")).unwrap_err();
        assert_eq!(e.offset, 2 + 2 + 12, "{e}");
        assert!(e.to_string().contains("version is not an INTEGER"), "{e}");
        assert!(parse(&h("30")).is_err());
        assert!(parse(&[]).is_err());
        assert!(parse(&h("3100 00")).is_err());
        // An unknown PACE OID is kept with no protocol.
        let infos = parse(&h("31143012060A04007F0007020204090202010202010D")).unwrap();
        assert_eq!(infos.pace[0].protocol, None);
    }

    #[test]
    fn dg14_chip_authentication_keys() {
        for curve in Curve::ALL {
            let point = curve.generator();
            let set = build::set(&build::chip_authentication(Cipher::Aes128, curve, &point));
            let dg14 = tlv::encode(0x6E, &set);
            let infos = parse(&dg14).unwrap();
            assert_eq!(infos.chip_authentication.len(), 1);
            assert_eq!(infos.chip_authentication[0].cipher, Cipher::Aes128);
            assert_eq!(infos.chip_authentication[0].agreement, KeyAgreement::Ecdh);
            assert_eq!(infos.ca_public_keys[0].curve, Some(curve));
            assert_eq!(infos.ca_public_keys[0].point, point);
        }
    }
}
