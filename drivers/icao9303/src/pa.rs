//! Passive authentication (Doc 9303-11 §5.1): data group hashes against EF.SOD's security
//! object (always), the document signer's CMS signature, and its chain to a configured CSCA.
//! Each is its own check, so "no CSCA configured" (unknown) never reads as "forged" (fail).
//!
//! Signatures: RSA PKCS#1 v1.5, RSASSA-PSS (MGF1 with the same hash), ECDSA on P-256, P-384,
//! brainpoolP256r1 and brainpoolP384r1 (named, or as explicit domain parameters recognised by
//! their base point), each with SHA-1/224/256/384/512. Other curves (brainpoolP512r1, P-521)
//! give `unknown`, with the reason.

use std::path::Path;

use der::{Decode as _, Encode as _};
use x509_cert::Certificate;

use crate::sod::{self, AlgorithmId, HashAlg, SignerId, Sod, oid};
use crate::{ecsig, security_infos, tlv};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Could not be decided (no CSCA configured, an algorithm not supported).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaCheck {
    /// `sod_hashes`, `sod_signature`, `csca_chain`.
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: Option<String>,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> PaCheck {
    PaCheck {
        name,
        verdict,
        detail: Some(detail.into()),
    }
}

/// Trusted country signing CA certificates.
#[derive(Debug, Clone, Default)]
pub struct CscaStore {
    certs: Vec<Certificate>,
}

impl CscaStore {
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Adds the certificates of a file: PEM certificates, one DER certificate, or an ICAO CSCA
    /// master list (CMS SignedData; its own signature is not checked, the file is trusted as
    /// configured).
    pub fn add_file(&mut self, path: &Path) -> Result<usize, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.add_bytes(&bytes)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn add_bytes(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let before = self.certs.len();
        if bytes.starts_with(b"-----BEGIN") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            let certs = Certificate::load_pem_chain(bytes)
                .map_err(|e| format!("not a PEM certificate list: {e}"))?;
            self.certs.extend(certs);
        } else if let Ok(signed) = sod::parse_signed_data("master list", bytes) {
            if signed.content_type != oid::CSCA_MASTER_LIST {
                return Err(format!(
                    "CMS content {} is not an ICAO CSCA master list",
                    oid::dotted(&signed.content_type)
                ));
            }
            let (list, _) =
                tlv::parse_one(&signed.content).map_err(|e| format!("master list: {e}"))?;
            let items = tlv::parse_all(list.value).map_err(|e| format!("master list: {e}"))?;
            let set = items
                .iter()
                .find(|t| t.tag == 0x31)
                .ok_or("master list: certificate set missing")?;
            for cert in tlv::parse_all(set.value).map_err(|e| format!("master list: {e}"))? {
                let c = Certificate::from_der(cert.raw).map_err(|e| {
                    format!("master list certificate at offset {}: {e}", cert.offset)
                })?;
                self.certs.push(c);
            }
        } else {
            let c = Certificate::from_der(bytes)
                .map_err(|e| format!("neither PEM, a DER certificate nor a master list: {e}"))?;
            self.certs.push(c);
        }
        Ok(self.certs.len() - before)
    }
}

/// A subject or issuer as text (`CN=...,C=...`), for details.
fn name_text(name: &x509_cert::name::Name) -> String {
    name.to_string()
}

/// The whole of passive authentication for what was read. `files` are the data groups as read
/// (raw bytes, tag and length included). `store` is None when no CSCA is configured.
pub fn verify(sod_bytes: &[u8], files: &[(u8, &[u8])], store: Option<&CscaStore>) -> Vec<PaCheck> {
    let sod = match sod::parse_sod(sod_bytes) {
        Ok(sod) => sod,
        Err(e) => {
            return vec![
                check(
                    "sod_hashes",
                    Verdict::Fail,
                    format!("EF.SOD cannot be parsed: {e}"),
                ),
                check("sod_signature", Verdict::Fail, "EF.SOD cannot be parsed"),
                check("csca_chain", Verdict::Unknown, "EF.SOD cannot be parsed"),
            ];
        }
    };
    let mut checks = vec![hashes(&sod, files)];
    let (signature, signer) = signature(&sod);
    checks.push(signature);
    checks.push(chain(signer.as_ref(), store));
    checks
}

fn hashes(sod: &Sod, files: &[(u8, &[u8])]) -> PaCheck {
    let alg = sod.hash_algorithm;
    let mut matched = Vec::new();
    let mut failed = Vec::new();
    for (dg, bytes) in files {
        match sod.dg_hashes.iter().find(|(n, _)| n == dg) {
            Some((_, expected)) if alg.digest(bytes) == *expected => {
                matched.push(format!("DG{dg}"))
            }
            Some(_) => failed.push(format!("DG{dg} does not match its hash in EF.SOD")),
            None => failed.push(format!("DG{dg} has no hash in EF.SOD")),
        }
    }
    if failed.is_empty() {
        check(
            "sod_hashes",
            Verdict::Pass,
            format!("{} match ({})", matched.join(", "), alg.name()),
        )
    } else {
        check("sod_hashes", Verdict::Fail, failed.join("; "))
    }
}

/// The document signer certificate named by the SignerInfo.
fn signer_certificate(sod: &Sod, sid: &SignerId) -> Result<Certificate, String> {
    let mut first_error = None;
    for der in &sod.signed.certificates {
        match Certificate::from_der(der) {
            Ok(c) => {
                let tbs = c.tbs_certificate();
                let matches = match sid {
                    SignerId::IssuerSerial { issuer, serial } => {
                        tbs.issuer().to_der().ok().as_deref() == Some(issuer.as_slice())
                            && tbs.serial_number().as_bytes() == serial.as_slice()
                    }
                    // Without extension parsing, a lone certificate is taken as the signer.
                    SignerId::SubjectKeyId(_) => sod.signed.certificates.len() == 1,
                };
                if matches {
                    return Ok(c);
                }
            }
            Err(e) => {
                first_error
                    .get_or_insert_with(|| format!("a certificate in EF.SOD does not parse: {e}"));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "EF.SOD holds no certificate matching its signer".into()))
}

fn signature(sod: &Sod) -> (PaCheck, Option<Certificate>) {
    let Some(signer) = sod.signed.signers.first() else {
        return (
            check("sod_signature", Verdict::Fail, "EF.SOD has no signer"),
            None,
        );
    };
    let dsc = match signer_certificate(sod, &signer.sid) {
        Ok(c) => c,
        Err(e) => return (check("sod_signature", Verdict::Fail, e), None),
    };
    let digest_alg = HashAlg::from_oid(&signer.digest_algorithm.oid);
    let signed_bytes = match (&signer.signed_attrs, &signer.message_digest, digest_alg) {
        (Some(attrs), Some(md), Some(alg)) => {
            if alg.digest(&sod.signed.content) != *md {
                return (
                    check(
                        "sod_signature",
                        Verdict::Fail,
                        "the signed messageDigest is not the hash of the security object",
                    ),
                    Some(dsc),
                );
            }
            attrs.clone()
        }
        (Some(_), None, _) => {
            return (
                check(
                    "sod_signature",
                    Verdict::Fail,
                    "signed attributes without messageDigest",
                ),
                Some(dsc),
            );
        }
        (Some(_), _, None) => {
            return (
                check(
                    "sod_signature",
                    Verdict::Unknown,
                    format!(
                        "digest algorithm {} not supported",
                        oid::dotted(&signer.digest_algorithm.oid)
                    ),
                ),
                Some(dsc),
            );
        }
        (None, _, _) => sod.signed.content.clone(),
    };
    let spki = dsc.tbs_certificate().subject_public_key_info();
    let subject = name_text(dsc.tbs_certificate().subject());
    let result = verify_signature(
        spki,
        &signer.signature_algorithm,
        digest_alg,
        &signed_bytes,
        &signer.signature,
    );
    let c = match result {
        Ok(alg) => check(
            "sod_signature",
            Verdict::Pass,
            format!("{alg} by document signer {subject}"),
        ),
        Err(VerifyError::Invalid(why)) => check(
            "sod_signature",
            Verdict::Fail,
            format!("{why} (document signer {subject})"),
        ),
        Err(VerifyError::Unsupported(why)) => check("sod_signature", Verdict::Unknown, why),
    };
    (c, Some(dsc))
}

fn chain(dsc: Option<&Certificate>, store: Option<&CscaStore>) -> PaCheck {
    let Some(dsc) = dsc else {
        return check(
            "csca_chain",
            Verdict::Unknown,
            "no document signer certificate",
        );
    };
    let Some(store) = store.filter(|s| !s.is_empty()) else {
        return check("csca_chain", Verdict::Unknown, "no CSCA store configured");
    };
    let tbs = dsc.tbs_certificate();
    let subject = name_text(tbs.subject());
    let issuer = tbs.issuer().to_der().unwrap_or_default();
    let Some((tbs_raw, sig_alg, sig)) = certificate_parts(dsc) else {
        return check(
            "csca_chain",
            Verdict::Fail,
            "the document signer certificate is malformed",
        );
    };
    let mut unsupported = None;
    let mut candidates = 0;
    for csca in &store.certs {
        if csca
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
            != issuer
        {
            continue;
        }
        candidates += 1;
        match verify_signature(
            csca.tbs_certificate().subject_public_key_info(),
            &sig_alg,
            None,
            &tbs_raw,
            &sig,
        ) {
            Ok(_) => {
                return check(
                    "csca_chain",
                    Verdict::Pass,
                    format!(
                        "document signer {subject} issued by CSCA {}",
                        name_text(csca.tbs_certificate().subject())
                    ),
                );
            }
            Err(VerifyError::Unsupported(why)) => unsupported = Some(why),
            Err(VerifyError::Invalid(_)) => {}
        }
    }
    match unsupported {
        Some(why) => check("csca_chain", Verdict::Unknown, why),
        None => check(
            "csca_chain",
            Verdict::Fail,
            format!(
                "document signer {subject} does not chain to any of the {} configured CSCA certificates ({candidates} with its issuer's name)",
                store.len()
            ),
        ),
    }
}

/// TBS bytes as encoded, signature algorithm and signature of a certificate.
fn certificate_parts(cert: &Certificate) -> Option<(Vec<u8>, AlgorithmId, Vec<u8>)> {
    let der = cert.to_der().ok()?;
    let (outer, _) = tlv::parse_one(&der).ok()?;
    let items = tlv::parse_all(outer.value).ok()?;
    let alg_items = tlv::parse_all(items.get(1)?.value).ok()?;
    let alg = AlgorithmId {
        oid: alg_items.first()?.value.to_vec(),
        params: alg_items
            .get(1)
            .filter(|p| p.tag != 0x05)
            .map(|p| p.raw.to_vec()),
    };
    let sig = items.get(2)?.value.split_first()?.1.to_vec();
    Some((items.first()?.raw.to_vec(), alg, sig))
}

enum VerifyError {
    Invalid(String),
    Unsupported(String),
}

enum Scheme {
    Pkcs1(HashAlg),
    Pss(HashAlg, usize),
    Ecdsa(HashAlg),
}

fn scheme(alg: &AlgorithmId, digest: Option<HashAlg>) -> Result<Scheme, VerifyError> {
    let need_digest = || {
        digest.ok_or_else(|| {
            VerifyError::Unsupported("signature algorithm needs a digest algorithm".into())
        })
    };
    Ok(match alg.oid.as_slice() {
        oid::RSA_ENCRYPTION => Scheme::Pkcs1(need_digest()?),
        oid::SHA1_WITH_RSA => Scheme::Pkcs1(HashAlg::Sha1),
        oid::SHA224_WITH_RSA => Scheme::Pkcs1(HashAlg::Sha224),
        oid::SHA256_WITH_RSA => Scheme::Pkcs1(HashAlg::Sha256),
        oid::SHA384_WITH_RSA => Scheme::Pkcs1(HashAlg::Sha384),
        oid::SHA512_WITH_RSA => Scheme::Pkcs1(HashAlg::Sha512),
        oid::RSASSA_PSS => pss_params(alg.params.as_deref())?,
        oid::EC_PUBLIC_KEY => Scheme::Ecdsa(need_digest()?),
        oid::ECDSA_SHA1 => Scheme::Ecdsa(HashAlg::Sha1),
        oid::ECDSA_SHA224 => Scheme::Ecdsa(HashAlg::Sha224),
        oid::ECDSA_SHA256 => Scheme::Ecdsa(HashAlg::Sha256),
        oid::ECDSA_SHA384 => Scheme::Ecdsa(HashAlg::Sha384),
        oid::ECDSA_SHA512 => Scheme::Ecdsa(HashAlg::Sha512),
        other => {
            return Err(VerifyError::Unsupported(format!(
                "signature algorithm {} not supported",
                oid::dotted(other)
            )));
        }
    })
}

/// RSASSA-PSS-params: `[0]` hash (default SHA-1), `[1]` MGF1 (assumed with the same hash),
/// `[2]` salt length (default 20).
fn pss_params(params: Option<&[u8]>) -> Result<Scheme, VerifyError> {
    let bad = |what: &str| VerifyError::Invalid(format!("RSASSA-PSS parameters: {what}"));
    let mut hash = HashAlg::Sha1;
    let mut salt = 20usize;
    if let Some(params) = params {
        let (seq, _) = tlv::parse_one(params).map_err(|e| bad(&e.to_string()))?;
        for item in tlv::parse_all(seq.value).map_err(|e| bad(&e.to_string()))? {
            match item.tag {
                0xA0 => {
                    let (alg, _) = tlv::parse_one(item.value).map_err(|e| bad(&e.to_string()))?;
                    let (o, _) = tlv::parse_one(alg.value).map_err(|e| bad(&e.to_string()))?;
                    hash = HashAlg::from_oid(o.value).ok_or_else(|| {
                        VerifyError::Unsupported(format!(
                            "RSASSA-PSS hash {} not supported",
                            oid::dotted(o.value)
                        ))
                    })?;
                }
                0xA2 => {
                    let (n, _) = tlv::parse_one(item.value).map_err(|e| bad(&e.to_string()))?;
                    if n.value.is_empty() || n.value.len() > 2 {
                        return Err(bad("salt length out of range"));
                    }
                    salt = n
                        .value
                        .iter()
                        .fold(0usize, |a, b| (a << 8) | usize::from(*b));
                }
                _ => {}
            }
        }
    }
    Ok(Scheme::Pss(hash, salt))
}

/// Verifies `signature` over `message` with the key in `spki`; on success, the algorithm's name.
fn verify_signature(
    spki: &x509_cert::spki::SubjectPublicKeyInfoOwned,
    alg: &AlgorithmId,
    digest: Option<HashAlg>,
    message: &[u8],
    signature: &[u8],
) -> Result<String, VerifyError> {
    let scheme = scheme(alg, digest)?;
    let key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| VerifyError::Invalid("public key bit string is not whole bytes".into()))?;
    let key_oid = spki.algorithm.oid.as_bytes();
    match scheme {
        Scheme::Pkcs1(hash) | Scheme::Pss(hash, _) => {
            if key_oid != oid::RSA_ENCRYPTION && key_oid != oid::RSASSA_PSS {
                return Err(VerifyError::Invalid(
                    "an RSA signature but not an RSA key".into(),
                ));
            }
            use rsa::pkcs1::DecodeRsaPublicKey;
            let key = rsa::PublicKey::from_pkcs1_der(key_bits)
                .map_err(|e| VerifyError::Invalid(format!("RSA public key: {e}")))?;
            let hashed = hash.digest(message);
            let (name, result) = match scheme {
                Scheme::Pss(_, salt) => {
                    ("RSASSA-PSS", rsa_pss(&key, hash, salt, &hashed, signature))
                }
                _ => ("RSA PKCS#1 v1.5", rsa_pkcs1(&key, hash, &hashed, signature)),
            };
            result
                .map(|()| format!("{name} with {}", hash.name()))
                .map_err(|_| VerifyError::Invalid(format!("the {name} signature does not verify")))
        }
        Scheme::Ecdsa(hash) => {
            if key_oid != oid::EC_PUBLIC_KEY {
                return Err(VerifyError::Invalid(
                    "an ECDSA signature but not an EC key".into(),
                ));
            }
            // Named curves and explicit parameters (recognised by their base point), as DG14's
            // and DG15's keys.
            let params = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.to_der().ok())
                .unwrap_or_default();
            let parsed = tlv::parse_one(&params).ok().map(|(t, _)| t);
            let (curve, words) = security_infos::ec_curve(parsed.as_ref());
            let curve = curve.ok_or_else(|| {
                VerifyError::Unsupported(format!(
                    "ECDSA on {words} is not supported (P-256, P-384, brainpoolP256r1 and brainpoolP384r1 are)"
                ))
            })?;
            let hashed = hash.digest(message);
            match ecsig::verify(curve, key_bits, &hashed, signature, ecsig::Encoding::Der) {
                Ok(()) => Ok(format!("ECDSA on {words} with {}", hash.name())),
                Err(ecsig::EcSigError::Invalid(_)) => Err(VerifyError::Invalid(
                    "the ECDSA signature does not verify".into(),
                )),
                Err(e) => Err(VerifyError::Invalid(e.to_string())),
            }
        }
    }
}

fn rsa_pkcs1(key: &rsa::PublicKey, hash: HashAlg, hashed: &[u8], sig: &[u8]) -> rsa::Result<()> {
    use rsa::Pkcs1v15Sign;
    let scheme = match hash {
        HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha224 => Pkcs1v15Sign::new::<sha2::Sha224>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
    };
    key.verify(scheme, hashed, sig)
}

fn rsa_pss(
    key: &rsa::PublicKey,
    hash: HashAlg,
    salt: usize,
    hashed: &[u8],
    sig: &[u8],
) -> rsa::Result<()> {
    use rsa::Pss;
    match hash {
        HashAlg::Sha1 => key.verify(Pss::<sha1::Sha1>::new_with_salt(salt), hashed, sig),
        HashAlg::Sha224 => key.verify(Pss::<sha2::Sha224>::new_with_salt(salt), hashed, sig),
        HashAlg::Sha256 => key.verify(Pss::<sha2::Sha256>::new_with_salt(salt), hashed, sig),
        HashAlg::Sha384 => key.verify(Pss::<sha2::Sha384>::new_with_salt(salt), hashed, sig),
        HashAlg::Sha512 => key.verify(Pss::<sha2::Sha512>::new_with_salt(salt), hashed, sig),
    }
}
