//! EF.SOD (Doc 9303-10 §4.6.2): a CMS SignedData (RFC 5652) whose content is the
//! LDSSecurityObject, the list of data group hashes. Parsed with the project's TLV reader so the
//! exact bytes the signature covers are kept (a re-encoding would change non-canonical SODs);
//! ICAO CSCA master lists share the same envelope.

use crate::tlv::{self, Tlv};

/// Object identifiers, as DER content bytes (what follows `06 len`).
pub mod oid {
    pub const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
    pub const LDS_SECURITY_OBJECT: &[u8] = &[0x67, 0x81, 0x08, 0x01, 0x01, 0x01];
    pub const CSCA_MASTER_LIST: &[u8] = &[0x67, 0x81, 0x08, 0x01, 0x01, 0x02];
    pub const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
    pub const MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
    pub const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
    pub const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    pub const SHA1_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05];
    pub const RSASSA_PSS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
    pub const SHA256_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
    pub const SHA384_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C];
    pub const SHA512_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D];
    pub const SHA224_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0E];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    pub const ECDSA_SHA1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x01];
    pub const ECDSA_SHA224: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x01];
    pub const ECDSA_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
    pub const ECDSA_SHA512: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04];
    pub const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    pub const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];

    /// Dotted form for messages (`1.2.840.113549.1.1.10`).
    pub fn dotted(bytes: &[u8]) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut value: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            value = (value << 7) | u64::from(b & 0x7F);
            if b & 0x80 == 0 {
                if parts.is_empty() {
                    let (first, second) = match value {
                        0..=39 => (0, value),
                        40..=79 => (1, value - 40),
                        _ => (2, value - 80),
                    };
                    parts.push(first.to_string());
                    parts.push(second.to_string());
                } else {
                    parts.push(value.to_string());
                }
                value = 0;
            } else if i == bytes.len() - 1 || value > u64::MAX >> 8 {
                parts.push("?".into());
                break;
            }
        }
        parts.join(".")
    }
}

/// A digest algorithm of the SOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// From [`Self::name`] (`SHA-256`).
    pub fn from_name(name: &str) -> Option<HashAlg> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }

    pub fn from_oid(oid: &[u8]) -> Option<HashAlg> {
        Some(match oid {
            oid::SHA1 => HashAlg::Sha1,
            oid::SHA224 => HashAlg::Sha224,
            oid::SHA256 => HashAlg::Sha256,
            oid::SHA384 => HashAlg::Sha384,
            oid::SHA512 => HashAlg::Sha512,
            _ => return None,
        })
    }

    pub fn oid(self) -> &'static [u8] {
        match self {
            HashAlg::Sha1 => oid::SHA1,
            HashAlg::Sha224 => oid::SHA224,
            HashAlg::Sha256 => oid::SHA256,
            HashAlg::Sha384 => oid::SHA384,
            HashAlg::Sha512 => oid::SHA512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha224 => "SHA-224",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// An AlgorithmIdentifier: OID content bytes and the raw parameters (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmId {
    pub oid: Vec<u8>,
    pub params: Option<Vec<u8>>,
}

/// How the SignerInfo names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    /// Issuer Name (DER) and serial number (INTEGER content bytes).
    IssuerSerial {
        issuer: Vec<u8>,
        serial: Vec<u8>,
    },
    SubjectKeyId(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    pub sid: SignerId,
    pub digest_algorithm: AlgorithmId,
    /// The signed attributes re-tagged as the SET (`31`) the signature covers (RFC 5652 §5.4).
    pub signed_attrs: Option<Vec<u8>>,
    /// The `messageDigest` attribute.
    pub message_digest: Option<Vec<u8>>,
    pub signature_algorithm: AlgorithmId,
    pub signature: Vec<u8>,
}

/// A parsed SignedData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedData {
    pub content_type: Vec<u8>,
    /// The eContent octets (for an SOD: the DER LDSSecurityObject).
    pub content: Vec<u8>,
    /// Certificates in `certificates`, DER each.
    pub certificates: Vec<Vec<u8>>,
    pub signers: Vec<SignerInfo>,
}

/// A parsed EF.SOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sod {
    pub signed: SignedData,
    pub hash_algorithm: HashAlg,
    /// (DG number, hash) as listed.
    pub dg_hashes: Vec<(u8, Vec<u8>)>,
}

/// What is wrong with a SignedData, and where (a path of ASN.1 element names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {at}: {what}")]
pub struct SodError {
    pub file: &'static str,
    pub at: &'static str,
    pub what: String,
}

struct Ctx {
    file: &'static str,
}

impl Ctx {
    fn err(&self, at: &'static str, what: impl Into<String>) -> SodError {
        SodError {
            file: self.file,
            at,
            what: what.into(),
        }
    }

    fn one<'a>(&self, at: &'static str, bytes: &'a [u8], tag: u32) -> Result<Tlv<'a>, SodError> {
        let (t, _) = tlv::parse_one(bytes).map_err(|e| self.err(at, e.to_string()))?;
        if t.tag != tag {
            return Err(self.err(
                at,
                format!("tag {:02X} where {tag:02X} was expected", t.tag),
            ));
        }
        Ok(t)
    }

    fn all<'a>(&self, at: &'static str, bytes: &'a [u8]) -> Result<Vec<Tlv<'a>>, SodError> {
        tlv::parse_all(bytes).map_err(|e| self.err(at, e.to_string()))
    }

    fn seq<'a>(&self, at: &'static str, t: &Tlv<'a>, min: usize) -> Result<Vec<Tlv<'a>>, SodError> {
        if t.tag != 0x30 {
            return Err(self.err(
                at,
                format!("tag {:02X} where a SEQUENCE was expected", t.tag),
            ));
        }
        let items = self.all(at, t.value)?;
        if items.len() < min {
            return Err(self.err(
                at,
                format!("{} elements, expected at least {min}", items.len()),
            ));
        }
        Ok(items)
    }

    fn algorithm(&self, at: &'static str, t: &Tlv) -> Result<AlgorithmId, SodError> {
        let items = self.seq(at, t, 1)?;
        if items[0].tag != 0x06 {
            return Err(self.err(at, "algorithm is not an OBJECT IDENTIFIER"));
        }
        Ok(AlgorithmId {
            oid: items[0].value.to_vec(),
            params: items
                .get(1)
                .filter(|p| p.tag != 0x05)
                .map(|p| p.raw.to_vec()),
        })
    }
}

/// Parses a CMS ContentInfo holding SignedData (`file` names it in errors).
pub fn parse_signed_data(file: &'static str, der: &[u8]) -> Result<SignedData, SodError> {
    let c = Ctx { file };
    let content_info = c.one("ContentInfo", der, 0x30)?;
    let ci = c.seq("ContentInfo", &content_info, 2)?;
    if ci[0].tag != 0x06 || ci[0].value != oid::SIGNED_DATA {
        return Err(c.err("ContentInfo", "content type is not signedData"));
    }
    if ci[1].tag != 0xA0 {
        return Err(c.err("ContentInfo", "content [0] missing"));
    }
    let sd_tlv = c.one("SignedData", ci[1].value, 0x30)?;
    let sd = c.seq("SignedData", &sd_tlv, 4)?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos.
    let encap = c.seq("encapContentInfo", &sd[2], 1)?;
    if encap[0].tag != 0x06 {
        return Err(c.err(
            "encapContentInfo",
            "eContentType is not an OBJECT IDENTIFIER",
        ));
    }
    let content = match encap.get(1) {
        Some(e) if e.tag == 0xA0 => {
            let octets = c.one("eContent", e.value, 0x04)?;
            octets.value.to_vec()
        }
        Some(_) => return Err(c.err("encapContentInfo", "eContent is not [0]")),
        None => return Err(c.err("encapContentInfo", "eContent missing (detached content)")),
    };
    let mut certificates = Vec::new();
    let mut signer_set = None;
    for item in &sd[3..] {
        match item.tag {
            0xA0 => {
                for cert in c.all("certificates", item.value)? {
                    if cert.tag == 0x30 {
                        certificates.push(cert.raw.to_vec());
                    }
                }
            }
            0xA1 => {}
            0x31 => signer_set = Some(item.value),
            other => {
                return Err(c.err(
                    "SignedData",
                    format!("unexpected element with tag {other:02X}"),
                ));
            }
        }
    }
    let signer_set = signer_set.ok_or_else(|| c.err("SignedData", "signerInfos missing"))?;
    let mut signers = Vec::new();
    for si in c.all("signerInfos", signer_set)? {
        signers.push(parse_signer(&c, &si)?);
    }
    Ok(SignedData {
        content_type: encap[0].value.to_vec(),
        content,
        certificates,
        signers,
    })
}

fn parse_signer(c: &Ctx, t: &Tlv) -> Result<SignerInfo, SodError> {
    let items = c.seq("SignerInfo", t, 5)?;
    let sid = match items[1].tag {
        0x30 => {
            let is = c.seq("SignerInfo.sid", &items[1], 2)?;
            SignerId::IssuerSerial {
                issuer: is[0].raw.to_vec(),
                serial: is[1].value.to_vec(),
            }
        }
        0x80 => SignerId::SubjectKeyId(items[1].value.to_vec()),
        _ => {
            return Err(c.err(
                "SignerInfo.sid",
                "neither issuerAndSerialNumber nor subjectKeyIdentifier",
            ));
        }
    };
    let digest_algorithm = c.algorithm("SignerInfo.digestAlgorithm", &items[2])?;
    let mut next = 3;
    let mut signed_attrs = None;
    let mut message_digest = None;
    if items[3].tag == 0xA0 {
        // The signature covers the attributes' DER with the SET OF tag, not the [0] IMPLICIT.
        let mut set = items[3].raw.to_vec();
        set[0] = 0x31;
        for attr in c.all("signedAttrs", items[3].value)? {
            let a = c.seq("signedAttrs.Attribute", &attr, 2)?;
            if a[0].tag == 0x06 && a[0].value == oid::MESSAGE_DIGEST {
                let values = c.all("messageDigest", a[1].value)?;
                match values.first() {
                    Some(v) if v.tag == 0x04 => message_digest = Some(v.value.to_vec()),
                    _ => return Err(c.err("messageDigest", "value is not an OCTET STRING")),
                }
            }
        }
        signed_attrs = Some(set);
        next = 4;
    }
    let signature_algorithm = c.algorithm(
        "SignerInfo.signatureAlgorithm",
        items
            .get(next)
            .ok_or_else(|| c.err("SignerInfo", "signatureAlgorithm missing"))?,
    )?;
    let signature = items
        .get(next + 1)
        .filter(|s| s.tag == 0x04)
        .ok_or_else(|| c.err("SignerInfo", "signature OCTET STRING missing"))?
        .value
        .to_vec();
    Ok(SignerInfo {
        sid,
        digest_algorithm,
        signed_attrs,
        message_digest,
        signature_algorithm,
        signature,
    })
}

/// Parses EF.SOD as read from the chip (with its `77` wrapper).
pub fn parse_sod(bytes: &[u8]) -> Result<Sod, SodError> {
    let c = Ctx { file: "EF.SOD" };
    let outer = c.one("77", bytes, 0x77)?;
    let signed = parse_signed_data("EF.SOD", outer.value)?;
    if signed.content_type != oid::LDS_SECURITY_OBJECT {
        return Err(c.err(
            "encapContentInfo",
            format!(
                "content type {} is not the LDS security object",
                oid::dotted(&signed.content_type)
            ),
        ));
    }
    let so_tlv = c.one("LDSSecurityObject", &signed.content, 0x30)?;
    let so = c.seq("LDSSecurityObject", &so_tlv, 3)?;
    let alg = c.algorithm("LDSSecurityObject.hashAlgorithm", &so[1])?;
    let hash_algorithm = HashAlg::from_oid(&alg.oid).ok_or_else(|| {
        c.err(
            "LDSSecurityObject.hashAlgorithm",
            format!("unknown hash {}", oid::dotted(&alg.oid)),
        )
    })?;
    let mut dg_hashes = Vec::new();
    for entry in c.seq("dataGroupHashValues", &so[2], 0)? {
        let e = c.seq("DataGroupHash", &entry, 2)?;
        let number = match (e[0].tag, e[0].value) {
            (0x02, [n]) if (1..=16).contains(n) => *n,
            _ => return Err(c.err("DataGroupHash", "data group number is not 1..16")),
        };
        if e[1].tag != 0x04 {
            return Err(c.err("DataGroupHash", "hash is not an OCTET STRING"));
        }
        dg_hashes.push((number, e[1].value.to_vec()));
    }
    Ok(Sod {
        signed,
        hash_algorithm,
        dg_hashes,
    })
}

/// Builders (the emulator's EF.SOD and test master lists).
pub mod build {
    use super::{HashAlg, oid};
    use crate::tlv::encode;

    pub fn algorithm(oid: &[u8], null_params: bool) -> Vec<u8> {
        let mut body = encode(0x06, oid);
        if null_params {
            body.extend(encode(0x05, &[]));
        }
        encode(0x30, &body)
    }

    /// The DER LDSSecurityObject (version 0).
    pub fn lds_security_object(hash: HashAlg, dg_hashes: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let entries: Vec<u8> = dg_hashes
            .iter()
            .flat_map(|(n, h)| encode(0x30, &[encode(0x02, &[*n]), encode(0x04, h)].concat()))
            .collect();
        encode(
            0x30,
            &[
                encode(0x02, &[0]),
                algorithm(hash.oid(), true),
                encode(0x30, &entries),
            ]
            .concat(),
        )
    }

    /// The signed attributes as the SET the signature covers (content type, message digest).
    pub fn signed_attrs(content_type: &[u8], digest: &[u8]) -> Vec<u8> {
        let ct = encode(
            0x30,
            &[
                encode(0x06, oid::CONTENT_TYPE),
                encode(0x31, &encode(0x06, content_type)),
            ]
            .concat(),
        );
        let md = encode(
            0x30,
            &[
                encode(0x06, oid::MESSAGE_DIGEST),
                encode(0x31, &encode(0x04, digest)),
            ]
            .concat(),
        );
        encode(0x31, &[ct, md].concat())
    }

    /// ContentInfo(SignedData) with one signer identified by issuer and serial.
    #[allow(clippy::too_many_arguments)]
    pub fn signed_data(
        content_type: &[u8],
        content: &[u8],
        hash: HashAlg,
        certificate: &[u8],
        issuer: &[u8],
        serial: &[u8],
        attrs_set: &[u8],
        signature_algorithm: &[u8],
        signature: &[u8],
    ) -> Vec<u8> {
        let mut attrs_implicit = attrs_set.to_vec();
        attrs_implicit[0] = 0xA0;
        let signer = encode(
            0x30,
            &[
                encode(0x02, &[1]),
                encode(0x30, &[issuer.to_vec(), encode(0x02, serial)].concat()),
                algorithm(hash.oid(), true),
                attrs_implicit,
                signature_algorithm.to_vec(),
                encode(0x04, signature),
            ]
            .concat(),
        );
        let sd = encode(
            0x30,
            &[
                encode(0x02, &[3]),
                encode(0x31, &algorithm(hash.oid(), true)),
                encode(
                    0x30,
                    &[
                        encode(0x06, content_type),
                        encode(0xA0, &encode(0x04, content)),
                    ]
                    .concat(),
                ),
                encode(0xA0, certificate),
                encode(0x31, &signer),
            ]
            .concat(),
        );
        encode(
            0x30,
            &[encode(0x06, oid::SIGNED_DATA), encode(0xA0, &sd)].concat(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_oids() {
        assert_eq!(oid::dotted(oid::RSASSA_PSS), "1.2.840.113549.1.1.10");
        assert_eq!(oid::dotted(oid::LDS_SECURITY_OBJECT), "2.23.136.1.1.1");
        assert_eq!(oid::dotted(oid::SHA1), "1.3.14.3.2.26");
        assert_eq!(oid::dotted(&[0x88]), "?");
    }

    #[test]
    fn garbage_is_an_error_naming_the_element() {
        let e = parse_sod(&[0x77, 0x03, 0x30, 0x01, 0x06]).unwrap_err();
        assert!(e.to_string().starts_with("EF.SOD: ContentInfo"), "{e}");
        let e = parse_sod(&[0x60, 0x00]).unwrap_err();
        assert!(e.to_string().contains("77"), "{e}");
    }
}
