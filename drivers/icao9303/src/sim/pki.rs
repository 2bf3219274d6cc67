//! A test PKI made at run time: a CSCA (ECDSA P-384, self-signed) and a document signer
//! (ECDSA P-256) it issues, and EF.SOD signed by that signer. Certificates are built with the
//! project's DER writer; x509-cert parses them back in the tests. Never use these for anything
//! but tests and demos.

use p256::ecdsa::signature::Signer as _;

use crate::crypto;
use crate::sod::{self, HashAlg, oid};
use crate::tlv::encode;

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_C: &[u8] = &[0x55, 0x04, 0x06];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];

/// The CSCA and document signer of a test country.
#[derive(Clone)]
pub struct TestPki {
    csca_key: p384::ecdsa::SigningKey,
    dsc_key: p256::ecdsa::SigningKey,
    csca_name: Vec<u8>,
    /// DER certificates.
    pub csca_cert: Vec<u8>,
    pub dsc_cert: Vec<u8>,
    dsc_serial: Vec<u8>,
}

/// `C=<country>, CN=<cn>` as a DER Name.
pub fn name(country: &str, cn: &str) -> Vec<u8> {
    let rdn = |oid: &[u8], tag: u32, value: &str| {
        encode(
            0x31,
            &encode(
                0x30,
                &[encode(0x06, oid), encode(tag, value.as_bytes())].concat(),
            ),
        )
    };
    encode(
        0x30,
        &[rdn(OID_C, 0x13, country), rdn(OID_CN, 0x0C, cn)].concat(),
    )
}

fn ec_spki(curve: &[u8], point: &[u8]) -> Vec<u8> {
    let mut bits = vec![0];
    bits.extend_from_slice(point);
    encode(
        0x30,
        &[
            encode(
                0x30,
                &[encode(0x06, oid::EC_PUBLIC_KEY), encode(0x06, curve)].concat(),
            ),
            encode(0x03, &bits),
        ]
        .concat(),
    )
}

/// A random positive 64-bit serial number.
pub fn serial() -> Vec<u8> {
    let mut s: [u8; 8] = crypto::random();
    s[0] &= 0x7F;
    s[0] |= 0x01;
    s.to_vec()
}

fn p256_key() -> p256::ecdsa::SigningKey {
    loop {
        if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&crypto::random::<32>()) {
            return k;
        }
    }
}

fn p384_key() -> p384::ecdsa::SigningKey {
    loop {
        if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&crypto::random::<48>()) {
            return k;
        }
    }
}

/// A certificate signed by `issuer_key` (ECDSA with SHA-384 on P-384).
fn certificate(
    serial: &[u8],
    issuer: &[u8],
    subject: &[u8],
    spki: &[u8],
    ca: bool,
    issuer_key: &p384::ecdsa::SigningKey,
) -> Vec<u8> {
    let sig_alg = sod::build::algorithm(oid::ECDSA_SHA384, false);
    certificate_with(
        serial,
        issuer,
        subject,
        spki,
        ca,
        &sig_alg,
        &|tbs: &[u8]| {
            let sig: p384::ecdsa::Signature = issuer_key.sign(tbs);
            sig.to_der().as_bytes().to_vec()
        },
    )
}

/// A certificate whose TBS bytes `sign` signs with the algorithm `sig_alg` (DER
/// AlgorithmIdentifier): tests of other signature schemes.
pub fn certificate_with(
    serial: &[u8],
    issuer: &[u8],
    subject: &[u8],
    spki: &[u8],
    ca: bool,
    sig_alg: &[u8],
    sign: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let validity = encode(
        0x30,
        &[
            encode(0x17, b"250101000000Z"),
            encode(0x17, b"491231235959Z"),
        ]
        .concat(),
    );
    let extensions = if ca {
        let basic = encode(
            0x30,
            &[
                encode(0x06, OID_BASIC_CONSTRAINTS),
                encode(0x01, &[0xFF]),
                encode(
                    0x04,
                    &encode(0x30, &[encode(0x01, &[0xFF]), encode(0x02, &[0])].concat()),
                ),
            ]
            .concat(),
        );
        // keyCertSign | cRLSign.
        let usage = encode(
            0x30,
            &[
                encode(0x06, OID_KEY_USAGE),
                encode(0x01, &[0xFF]),
                encode(0x04, &encode(0x03, &[1, 0x06])),
            ]
            .concat(),
        );
        encode(0xA3, &encode(0x30, &[basic, usage].concat()))
    } else {
        // digitalSignature.
        let usage = encode(
            0x30,
            &[
                encode(0x06, OID_KEY_USAGE),
                encode(0x01, &[0xFF]),
                encode(0x04, &encode(0x03, &[7, 0x80])),
            ]
            .concat(),
        );
        encode(0xA3, &encode(0x30, &usage))
    };
    let tbs = encode(
        0x30,
        &[
            encode(0xA0, &encode(0x02, &[2])),
            encode(0x02, serial),
            sig_alg.to_vec(),
            issuer.to_vec(),
            validity,
            subject.to_vec(),
            spki.to_vec(),
            extensions,
        ]
        .concat(),
    );
    let mut bits = vec![0];
    bits.extend_from_slice(&sign(&tbs));
    encode(0x30, &[tbs, sig_alg.to_vec(), encode(0x03, &bits)].concat())
}

impl TestPki {
    /// A fresh CSCA and document signer for `country` (alpha-2 in the names).
    pub fn generate(country: &str) -> TestPki {
        let csca_key = p384_key();
        let dsc_key = p256_key();
        let csca_name = name(country, &format!("countersign test CSCA {country}"));
        let dsc_name = name(
            country,
            &format!("countersign test document signer {country}"),
        );
        let csca_point = csca_key.verifying_key().to_sec1_point(false);
        let dsc_point = dsc_key.verifying_key().to_sec1_point(false);
        let csca_cert = certificate(
            &serial(),
            &csca_name,
            &csca_name,
            &ec_spki(oid::P384, csca_point.as_bytes()),
            true,
            &csca_key,
        );
        let dsc_serial = serial();
        let dsc_cert = certificate(
            &dsc_serial,
            &csca_name,
            &dsc_name,
            &ec_spki(oid::P256, dsc_point.as_bytes()),
            false,
            &csca_key,
        );
        TestPki {
            csca_key,
            dsc_key,
            csca_name,
            csca_cert,
            dsc_cert,
            dsc_serial,
        }
    }

    /// The CSCA certificate as PEM (what `--csca` and `csca_files` take).
    pub fn csca_pem(&self) -> String {
        pem("CERTIFICATE", &self.csca_cert)
    }

    /// EF.SOD (with its `77` wrapper) over the data groups, signed by the document signer
    /// (ECDSA with SHA-256, signed attributes).
    pub fn sign_sod(&self, hash: HashAlg, data_groups: &[(u8, &[u8])]) -> Vec<u8> {
        let hashes: Vec<(u8, Vec<u8>)> = data_groups
            .iter()
            .map(|(n, b)| (*n, hash.digest(b)))
            .collect();
        let content = sod::build::lds_security_object(hash, &hashes);
        let attrs = sod::build::signed_attrs(oid::LDS_SECURITY_OBJECT, &hash.digest(&content));
        let sig: p256::ecdsa::Signature = self.dsc_key.sign(&attrs);
        let signed = sod::build::signed_data(
            oid::LDS_SECURITY_OBJECT,
            &content,
            hash,
            &self.dsc_cert,
            &self.csca_name,
            &self.dsc_serial,
            &attrs,
            &sod::build::algorithm(oid::ECDSA_SHA256, false),
            sig.to_der().as_bytes(),
        );
        encode(0x77, &signed)
    }

    /// An ICAO CSCA master list holding this CSCA, signed by the CSCA itself (tests of the
    /// master list format; its signature is not checked by the reader).
    pub fn master_list(&self) -> Vec<u8> {
        let content = encode(
            0x30,
            &[encode(0x02, &[0]), encode(0x31, &self.csca_cert)].concat(),
        );
        let hash = HashAlg::Sha256;
        let attrs = sod::build::signed_attrs(oid::CSCA_MASTER_LIST, &hash.digest(&content));
        let sig: p384::ecdsa::Signature = self.csca_key.sign(&attrs);
        sod::build::signed_data(
            oid::CSCA_MASTER_LIST,
            &content,
            hash,
            &self.csca_cert,
            &self.csca_name,
            &[1],
            &attrs,
            &sod::build::algorithm(oid::ECDSA_SHA384, false),
            sig.to_der().as_bytes(),
        )
    }
}

/// PEM armour, 64 columns.
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
