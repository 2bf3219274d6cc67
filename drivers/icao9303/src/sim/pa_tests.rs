//! Every signature of passive authentication, with a CSCA and document signer made at test time
//! for each: ECDSA on brainpoolP256r1/P384r1 and on P-256 with explicit domain parameters in the
//! certificates, ECDSA with SHA-224, RSASSA-PSS with every hash, RSA PKCS#1 v1.5 with SHA-224.
//! Each passes signature and chain, and fails with one signature byte changed.

use ecdsa::signature::hazmat::PrehashSigner as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPublicKey as _};

use super::*;
use crate::crypto::tests::h;
use crate::lds;
use crate::pa::{self, CscaStore, Verdict};
use crate::sod::{HashAlg, build, oid};
use crate::tlv::encode;

/// OpenSSL's `ecparam -param_enc explicit -outform DER` of each curve (the standard constants).
const EXPLICIT_P256: &str = "3081f7020101302c06072a8648ce3d0101022100ffffffff00000001000000000000000000000000ffffffffffffffffffffffff305b0420ffffffff00000001000000000000000000000000fffffffffffffffffffffffc04205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551020101";
const EXPLICIT_BP256: &str = "3081e0020101302c06072a8648ce3d0101022100a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377304404207d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9042026dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b60441048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997022100a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7020101";

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A key of some scheme: its SubjectPublicKeyInfo, its signature algorithm and a signer.
struct Signer {
    spki: Vec<u8>,
    sign: SignFn,
    alg: Vec<u8>,
}

fn ec_spki(params: Vec<u8>, point: &[u8]) -> Vec<u8> {
    let mut bits = vec![0];
    bits.extend_from_slice(point);
    encode(
        0x30,
        &[
            encode(0x30, &[encode(0x06, oid::EC_PUBLIC_KEY), params].concat()),
            encode(0x03, &bits),
        ]
        .concat(),
    )
}

macro_rules! ec_signer {
    ($curve:ty, $len:expr, $params:expr, $hash:expr, $alg:expr) => {{
        let key = loop {
            if let Ok(k) = ecdsa::SigningKey::<$curve>::from_slice(&crate::crypto::random::<$len>())
            {
                break k;
            }
        };
        let point = key.verifying_key().to_sec1_point(false);
        let hash: HashAlg = $hash;
        Signer {
            spki: ec_spki($params, point.as_bytes()),
            alg: build::algorithm($alg, false),
            sign: Box::new(move |m: &[u8]| {
                let sig: ecdsa::Signature<$curve> = key.sign_prehash(&hash.digest(m)).unwrap();
                sig.to_der().as_bytes().to_vec()
            }),
        }
    }};
}

fn rsa_spki(key: &rsa::PrivateKey) -> Vec<u8> {
    let mut bits = vec![0];
    bits.extend_from_slice(key.to_public_key().to_pkcs1_der().unwrap().as_bytes());
    encode(
        0x30,
        &[
            build::algorithm(oid::RSA_ENCRYPTION, true),
            encode(0x03, &bits),
        ]
        .concat(),
    )
}

/// RSASSA-PSS with `hash` for the hash and MGF1, salt the hash's length.
fn pss_signer(key: rsa::PrivateKey, hash: HashAlg) -> Signer {
    let hash_alg = build::algorithm(hash.oid(), true);
    let mgf1 = encode(
        0x30,
        &[
            encode(
                0x06,
                &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08],
            ),
            hash_alg.clone(),
        ]
        .concat(),
    );
    let salt = hash.digest(b"").len();
    let alg = encode(
        0x30,
        &[
            encode(0x06, oid::RSASSA_PSS),
            encode(
                0x30,
                &[
                    encode(0xA0, &hash_alg),
                    encode(0xA1, &mgf1),
                    encode(0xA2, &encode(0x02, &[salt as u8])),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    Signer {
        spki: rsa_spki(&key),
        alg,
        sign: Box::new(move |m: &[u8]| {
            let hashed = hash.digest(m);
            let mut rng = getrandom::SysRng;
            match hash {
                HashAlg::Sha1 => {
                    key.sign_with_rng(&mut rng, rsa::Pss::<sha1::Sha1>::new(), &hashed)
                }
                HashAlg::Sha224 => {
                    key.sign_with_rng(&mut rng, rsa::Pss::<sha2::Sha224>::new(), &hashed)
                }
                HashAlg::Sha256 => {
                    key.sign_with_rng(&mut rng, rsa::Pss::<sha2::Sha256>::new(), &hashed)
                }
                HashAlg::Sha384 => {
                    key.sign_with_rng(&mut rng, rsa::Pss::<sha2::Sha384>::new(), &hashed)
                }
                HashAlg::Sha512 => {
                    key.sign_with_rng(&mut rng, rsa::Pss::<sha2::Sha512>::new(), &hashed)
                }
            }
            .unwrap()
        }),
    }
}

/// A CSCA and a document signer of the same scheme, EF.SOD over DG1 signed by the signer:
/// signature and chain checks, then the same with one byte of the SOD signature changed.
fn checks_of(make: &dyn Fn() -> Signer, digest: HashAlg) -> (Vec<pa::PaCheck>, Vec<pa::PaCheck>) {
    let (csca, dsc) = (make(), make());
    let csca_name = pki::name("TS", "signature test CSCA");
    let csca_cert = pki::certificate_with(
        &pki::serial(),
        &csca_name,
        &csca_name,
        &csca.spki,
        true,
        &csca.alg,
        &|tbs| (csca.sign)(tbs),
    );
    let dsc_serial = pki::serial();
    let dsc_cert = pki::certificate_with(
        &dsc_serial,
        &csca_name,
        &pki::name("TS", "signature test signer"),
        &dsc.spki,
        false,
        &csca.alg,
        &|tbs| (csca.sign)(tbs),
    );
    let dg1 = lds::build::dg1(
        &TestDocument::generate(
            &DocumentSpec::new(DocumentKind::PassportJpeg),
            &TestPki::generate("TS"),
        )
        .mrz,
    );
    let content = build::lds_security_object(digest, &[(1, digest.digest(&dg1))]);
    let attrs = build::signed_attrs(oid::LDS_SECURITY_OBJECT, &digest.digest(&content));
    let sod = |signature: &[u8]| {
        encode(
            0x77,
            &build::signed_data(
                oid::LDS_SECURITY_OBJECT,
                &content,
                digest,
                &dsc_cert,
                &csca_name,
                &dsc_serial,
                &attrs,
                &dsc.alg,
                signature,
            ),
        )
    };
    let mut store = CscaStore::default();
    store.add_bytes(&csca_cert).unwrap();
    let mut signature = (dsc.sign)(&attrs);
    let good = pa::verify(&sod(&signature), &[(1, &dg1)], Some(&store));
    let at = signature.len() - 5;
    signature[at] ^= 1;
    let bad = pa::verify(&sod(&signature), &[(1, &dg1)], Some(&store));
    (good, bad)
}

fn assert_verifies(what: &str, make: &dyn Fn() -> Signer, digest: HashAlg, detail: &str) {
    let (good, bad) = checks_of(make, digest);
    let verdicts: Vec<_> = good.iter().map(|c| (c.name, c.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("sod_hashes", Verdict::Pass),
            ("sod_signature", Verdict::Pass),
            ("csca_chain", Verdict::Pass)
        ],
        "{what}: {good:?}"
    );
    assert!(
        good[1].detail.as_deref().unwrap().starts_with(detail),
        "{what}: {good:?}"
    );
    assert_eq!(bad[1].verdict, Verdict::Fail, "{what}: {bad:?}");
}

#[test]
fn ecdsa_on_brainpool_and_explicit_parameters_and_with_sha224() {
    let named = |o: &[u8]| encode(0x06, o);
    use crate::security_infos::{BRAINPOOL_P256R1, BRAINPOOL_P384R1};
    assert_verifies(
        "brainpoolP256r1",
        &|| {
            ec_signer!(
                bp256::BrainpoolP256r1,
                32,
                named(BRAINPOOL_P256R1),
                HashAlg::Sha256,
                oid::ECDSA_SHA256
            )
        },
        HashAlg::Sha256,
        "ECDSA on brainpoolP256r1 with SHA-256",
    );
    assert_verifies(
        "brainpoolP384r1",
        &|| {
            ec_signer!(
                bp384::BrainpoolP384r1,
                48,
                named(BRAINPOOL_P384R1),
                HashAlg::Sha384,
                oid::ECDSA_SHA384
            )
        },
        HashAlg::Sha384,
        "ECDSA on brainpoolP384r1 with SHA-384",
    );
    assert_verifies(
        "P-256, explicit parameters",
        &|| {
            ec_signer!(
                p256::NistP256,
                32,
                h(EXPLICIT_P256),
                HashAlg::Sha256,
                oid::ECDSA_SHA256
            )
        },
        HashAlg::Sha256,
        "ECDSA on P-256 (explicit parameters) with SHA-256",
    );
    assert_verifies(
        "brainpoolP256r1, explicit parameters",
        &|| {
            ec_signer!(
                bp256::BrainpoolP256r1,
                32,
                h(EXPLICIT_BP256),
                HashAlg::Sha256,
                oid::ECDSA_SHA256
            )
        },
        HashAlg::Sha256,
        "ECDSA on brainpoolP256r1 (explicit parameters) with SHA-256",
    );
    assert_verifies(
        "P-256 with SHA-224",
        &|| {
            ec_signer!(
                p256::NistP256,
                32,
                named(oid::P256),
                HashAlg::Sha224,
                oid::ECDSA_SHA224
            )
        },
        HashAlg::Sha224,
        "ECDSA on P-256 with SHA-224",
    );
    // brainpoolP512r1 is named but not implemented: unknown, never fail.
    let p512 = [0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0D];
    let (good, _) = checks_of(
        &|| {
            ec_signer!(
                p256::NistP256,
                32,
                named(&p512),
                HashAlg::Sha256,
                oid::ECDSA_SHA256
            )
        },
        HashAlg::Sha256,
    );
    assert_eq!(good[1].verdict, Verdict::Unknown, "{good:?}");
    assert!(
        good[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("brainpoolP512r1"),
        "{good:?}"
    );
}

#[test]
fn rsa_pss_with_every_hash_and_pkcs1_with_sha224() {
    let key =
        || rsa::PrivateKey::from_pkcs1_der(include_bytes!("fixtures/aa-rsa2048.der")).unwrap();
    for hash in [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ] {
        assert_verifies(
            hash.name(),
            &|| pss_signer(key(), hash),
            hash,
            &format!("RSASSA-PSS with {}", hash.name()),
        );
    }
    assert_verifies(
        "PKCS#1 v1.5 SHA-224",
        &|| {
            let k = key();
            Signer {
                spki: rsa_spki(&k),
                alg: build::algorithm(oid::SHA224_WITH_RSA, true),
                sign: Box::new(move |m: &[u8]| {
                    k.sign_with_rng(
                        &mut getrandom::SysRng,
                        rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
                        &HashAlg::Sha224.digest(m),
                    )
                    .unwrap()
                }),
            }
        },
        HashAlg::Sha224,
        "RSA PKCS#1 v1.5 with SHA-224",
    );
}
