//! The reader against the emulator in process: every document kind, passive authentication,
//! and each fault the clerk must be told about.

use std::sync::OnceLock;

use super::*;
use crate::access::AccessError;
use crate::ca::ChipAuthentication;
use crate::lds::{self, ImageFormat, LdsFile};
use crate::mrz::{MrzFormat, MrzKey};
use crate::pa::{self, CscaStore, Verdict};
use crate::read::{ReadError, ReadOptions, Transceiver, TransmitError, read_document};
use crate::sim::pki;

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate("UT"))
}

fn store(pki: &TestPki) -> CscaStore {
    let mut store = CscaStore::default();
    assert_eq!(store.add_bytes(pki.csca_pem().as_bytes()).unwrap(), 1);
    store
}

fn verdicts(checks: &[pa::PaCheck]) -> Vec<(&'static str, Verdict)> {
    checks.iter().map(|c| (c.name, c.verdict)).collect()
}

fn read_doc(
    spec: &DocumentSpec,
    options: ChipOptions,
) -> (TestDocument, Result<crate::DocumentRead, ReadError>) {
    let doc = TestDocument::generate(spec, pki());
    let mut chip = Chip::new(doc.clone(), options);
    let result = read_document(&mut chip, &doc.key, &ReadOptions::default());
    (doc, result)
}

fn pa_of(read: &crate::DocumentRead, store: Option<&CscaStore>) -> Vec<pa::PaCheck> {
    let files: Vec<(u8, &[u8])> = read
        .data_groups
        .iter()
        .map(|(n, b)| (*n, b.as_slice()))
        .collect();
    pa::verify(&read.sod, &files, store)
}

#[test]
fn every_document_kind_reads_and_passes_passive_authentication() {
    let store = store(pki());
    for (name, kind) in DocumentKind::ALL {
        let (doc, result) = read_doc(&DocumentSpec::new(kind), ChipOptions::default());
        let read = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read.access.as_str(), "BAC");
        assert_eq!(read.sm_cipher, "3DES");
        assert!(!read.pace_offered);
        let groups: Vec<u8> = read.data_groups.iter().map(|(n, _)| *n).collect();
        assert_eq!(groups, [14, 1, 2, 11, 12], "{name}");
        assert_eq!(
            read.chip_authentication,
            ChipAuthentication::Passed("ECDH P-256 AES-128".into()),
            "{name}"
        );
        let mrz = lds::parse_dg1(read.dg(1).unwrap()).unwrap();
        assert_eq!(mrz.key().unwrap(), doc.key, "{name}");
        let face = &lds::parse_dg2(read.dg(2).unwrap()).unwrap()[0];
        let jpeg = crate::face::to_jpeg(face).unwrap();
        assert_eq!(ImageFormat::sniff(&jpeg), Some(ImageFormat::Jpeg));
        let expected_format = match kind {
            DocumentKind::PassportJp2 => ImageFormat::Jp2,
            DocumentKind::PassportJ2k => ImageFormat::J2k,
            _ => ImageFormat::Jpeg,
        };
        assert_eq!(face.format, expected_format, "{name}");
        if kind == DocumentKind::ExitEntryPermit {
            assert_eq!(mrz.format, MrzFormat::ChinaExitEntry);
            assert_eq!(mrz.document_code, "CS");
            let dg11 = lds::parse_dg11(read.dg(11).unwrap()).unwrap();
            assert_eq!(dg11.full_name.as_deref(), Some("测试<<乙"));
        } else {
            assert_eq!(mrz.format, MrzFormat::Td3);
        }
        assert_eq!(
            verdicts(&pa_of(&read, Some(&store))),
            [
                ("sod_hashes", Verdict::Pass),
                ("sod_signature", Verdict::Pass),
                ("csca_chain", Verdict::Pass)
            ],
            "{name}: {:?}",
            pa_of(&read, Some(&store))
        );
    }
}

#[test]
fn passive_authentication_failures_are_named() {
    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.tamper_dg = Some(2);
    let (_, result) = read_doc(&spec, ChipOptions::default());
    let read = result.unwrap();
    let checks = pa_of(&read, Some(&store(pki())));
    assert_eq!(checks[0].verdict, Verdict::Fail);
    assert!(
        checks[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("DG2 does not match"),
        "{checks:?}"
    );
    assert_eq!(
        checks[1].verdict,
        Verdict::Pass,
        "the signature over the hashes still holds"
    );

    // Another country's CSCA: signature fine, chain fails; no CSCA: unknown, not fail.
    let (_, result) = read_doc(
        &DocumentSpec::new(DocumentKind::PassportJpeg),
        ChipOptions::default(),
    );
    let read = result.unwrap();
    let other = store(&TestPki::generate("XX"));
    let checks = pa_of(&read, Some(&other));
    assert_eq!(checks[2].verdict, Verdict::Fail, "{checks:?}");
    assert!(
        checks[2]
            .detail
            .as_deref()
            .unwrap()
            .contains("does not chain"),
        "{checks:?}"
    );
    let checks = pa_of(&read, None);
    assert_eq!(checks[2].verdict, Verdict::Unknown);
    assert_eq!(
        checks[2].detail.as_deref(),
        Some("no CSCA store configured")
    );

    // A master list works as a store.
    let mut ml = CscaStore::default();
    assert_eq!(ml.add_bytes(&pki().master_list()).unwrap(), 1);
    assert_eq!(pa_of(&read, Some(&ml))[2].verdict, Verdict::Pass);
    assert!(CscaStore::default().add_bytes(b"junk").is_err());

    // A broken SOD fails the hashes and the signature, and says why.
    let checks = pa::verify(&[0x77, 0x01, 0x00], &[(1, &[0x61, 0x00][..])], None);
    assert_eq!(
        verdicts(&checks)[..2],
        [
            ("sod_hashes", Verdict::Fail),
            ("sod_signature", Verdict::Fail)
        ]
    );
}

#[test]
fn wrong_mrz_pace_only_and_removal_are_told_apart() {
    let doc = TestDocument::generate(&DocumentSpec::new(DocumentKind::PassportJpeg), pki());
    let mut chip = Chip::new(doc, ChipOptions::default());
    let wrong = MrzKey::new("E12345678", "850316", "330101").unwrap();
    let e = read_document(&mut chip, &wrong, &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, ReadError::Access(AccessError::WrongKey { sw: 0x6300 })),
        "{e}"
    );

    let (_, result) = read_doc(
        &DocumentSpec::new(DocumentKind::PassportJpeg),
        ChipOptions {
            remove_after_apdus: Some(30),
            ..Default::default()
        },
    );
    let e = result.unwrap_err();
    assert!(matches!(e, ReadError::CardRemoved { .. }), "{e}");
    assert!(e.to_string().contains("removed"), "{e}");

    struct BankCard;
    impl Transceiver for BankCard {
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransmitError> {
            Ok(vec![0x6A, 0x82])
        }
    }
    let e = read_document(&mut BankCard, &wrong, &ReadOptions::default()).unwrap_err();
    assert_eq!(e, ReadError::NotAnEmrtd { sw: 0x6A82 });
}

#[test]
fn length_errors_fall_back_and_large_files_use_odd_ins() {
    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.face_bytes = 40_000;
    let (doc, result) = read_doc(
        &spec,
        ChipOptions {
            max_le: Some(0xA0),
            ..Default::default()
        },
    );
    let read = result.unwrap();
    let dg2 = read.dg(2).unwrap();
    assert!(dg2.len() > 40_000);
    assert_eq!(dg2, doc.file(LdsFile::Dg(2).fid()).unwrap());
    assert_eq!(pa_of(&read, None)[0].verdict, Verdict::Pass);
    let (_, apdus, bytes, _) = read.stats.files.iter().find(|f| f.0 == "DG2").unwrap();
    // SELECT, the 8-byte head, one refused 0xDF block, then 0xA0 blocks.
    assert_eq!(*apdus as usize, 3 + (bytes - 8).div_ceil(0xA0));
    // A file announcing more than MAX_FILE is refused, not read without end.
    let mut doc = TestDocument::generate(&DocumentSpec::new(DocumentKind::PassportJpeg), pki());
    doc.set_file(
        LdsFile::Dg(2).fid(),
        vec![0x75, 0x83, 0x10, 0x00, 0x00, 0, 0, 0],
    );
    let key = doc.key.clone();
    let e = read_document(
        &mut Chip::new(doc, ChipOptions::default()),
        &key,
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("more than the 524288 accepted"),
        "{e}"
    );
}

/// RSA document signers and CSCAs: PKCS#1 v1.5 and RSASSA-PSS (with parameters), SOD signature
/// and chain; a changed signature byte fails.
#[test]
fn rsa_pkcs1_and_pss_signatures_verify_and_chain() {
    use crate::sod::{HashAlg, build, oid};
    use crate::tlv::encode;
    use rsa::pkcs1::EncodeRsaPublicKey;

    let mut rng = getrandom::SysRng;
    let csca_key = rsa::PrivateKey::new(&mut rng, 2048).unwrap();
    let dsc_key = rsa::PrivateKey::new(&mut rng, 2048).unwrap();
    let spki = |k: &rsa::PrivateKey| {
        let mut bits = vec![0];
        bits.extend_from_slice(k.to_public_key().to_pkcs1_der().unwrap().as_bytes());
        encode(
            0x30,
            &[
                build::algorithm(oid::RSA_ENCRYPTION, true),
                encode(0x03, &bits),
            ]
            .concat(),
        )
    };
    let sha256 = build::algorithm(oid::SHA256, true);
    let mgf1 = encode(
        0x30,
        &[
            encode(
                0x06,
                &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08],
            ),
            sha256.clone(),
        ]
        .concat(),
    );
    let pss_alg = encode(
        0x30,
        &[
            encode(0x06, oid::RSASSA_PSS),
            encode(
                0x30,
                &[
                    encode(0xA0, &sha256),
                    encode(0xA1, &mgf1),
                    encode(0xA2, &encode(0x02, &[32])),
                ]
                .concat(),
            ),
        ]
        .concat(),
    );
    for pss in [false, true] {
        let sig_alg = if pss {
            pss_alg.clone()
        } else {
            build::algorithm(oid::SHA256_WITH_RSA, true)
        };
        let sign = |key: &rsa::PrivateKey, message: &[u8]| -> Vec<u8> {
            let hashed = HashAlg::Sha256.digest(message);
            let mut rng = getrandom::SysRng;
            if pss {
                key.sign_with_rng(&mut rng, rsa::Pss::<sha2::Sha256>::new(), &hashed)
                    .unwrap()
            } else {
                key.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hashed)
                    .unwrap()
            }
        };
        let csca_name = pki::name("RS", "RSA test CSCA");
        let csca = pki::certificate_with(
            &pki::serial(),
            &csca_name,
            &csca_name,
            &spki(&csca_key),
            true,
            &sig_alg,
            &|tbs| sign(&csca_key, tbs),
        );
        let dsc_serial = pki::serial();
        let dsc = pki::certificate_with(
            &dsc_serial,
            &csca_name,
            &pki::name("RS", "RSA test signer"),
            &spki(&dsc_key),
            false,
            &sig_alg,
            &|tbs| sign(&csca_key, tbs),
        );
        let dg1 = lds::build::dg1(&doc_mrz());
        let content =
            build::lds_security_object(HashAlg::Sha256, &[(1, HashAlg::Sha256.digest(&dg1))]);
        let attrs =
            build::signed_attrs(oid::LDS_SECURITY_OBJECT, &HashAlg::Sha256.digest(&content));
        let make_sod = |signature: &[u8]| {
            encode(
                0x77,
                &build::signed_data(
                    oid::LDS_SECURITY_OBJECT,
                    &content,
                    HashAlg::Sha256,
                    &dsc,
                    &csca_name,
                    &dsc_serial,
                    &attrs,
                    &sig_alg,
                    signature,
                ),
            )
        };
        let mut signature = sign(&dsc_key, &attrs);
        let mut store = CscaStore::default();
        store.add_bytes(&csca).unwrap();
        let checks = pa::verify(&make_sod(&signature), &[(1, &dg1)], Some(&store));
        assert_eq!(
            verdicts(&checks),
            [
                ("sod_hashes", Verdict::Pass),
                ("sod_signature", Verdict::Pass),
                ("csca_chain", Verdict::Pass)
            ],
            "pss {pss}: {checks:?}"
        );
        let expected = if pss {
            "RSASSA-PSS with SHA-256"
        } else {
            "RSA PKCS#1 v1.5 with SHA-256"
        };
        assert!(
            checks[1].detail.as_deref().unwrap().starts_with(expected),
            "{checks:?}"
        );
        signature[10] ^= 1;
        let checks = pa::verify(&make_sod(&signature), &[(1, &dg1)], Some(&store));
        assert_eq!(checks[1].verdict, Verdict::Fail, "{checks:?}");
    }
}

fn doc_mrz() -> String {
    TestDocument::generate(&DocumentSpec::new(DocumentKind::PassportJpeg), pki()).mrz
}

/// PACE-only documents on every curve and cipher read with PACE and pass passive
/// authentication; a chip offering PACE and BAC is read with PACE too.
#[test]
fn pace_only_documents_read_with_pace_on_every_curve_and_cipher() {
    use crate::cipher::Cipher;
    use crate::ec::Curve;
    let store = store(pki());
    for curve in Curve::ALL {
        for cipher in [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256] {
            let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
            spec.pace_only = true;
            spec.pace_curve = curve;
            spec.pace_cipher = cipher;
            let (_, result) = read_doc(&spec, ChipOptions::default());
            let read = result.unwrap_or_else(|e| panic!("{curve:?} {cipher:?}: {e}"));
            assert_eq!(read.access.as_str(), "PACE");
            assert_eq!(read.sm_cipher, cipher.name());
            assert!(read.pace_offered);
            let (described, password) = read.pace.clone().unwrap();
            assert_eq!(
                described,
                format!("ECDH-GM {} {}", curve.name(), cipher.name())
            );
            assert_eq!(password, "MRZ");
            assert_eq!(
                verdicts(&pa_of(&read, Some(&store))),
                [
                    ("sod_hashes", Verdict::Pass),
                    ("sod_signature", Verdict::Pass),
                    ("csca_chain", Verdict::Pass)
                ]
            );
        }
    }
    let mut spec = DocumentSpec::new(DocumentKind::ExitEntryPermit);
    spec.pace_offered = true;
    spec.pace_curve = Curve::BrainpoolP256r1;
    let (_, result) = read_doc(&spec, ChipOptions::default());
    let read = result.unwrap();
    assert_eq!(read.access.as_str(), "PACE");
    assert_eq!(read.pace_not_used, None);
    // PACE costs 5 APDUs where BAC costs 2; the SELECT is the same.
    let (_, bac) = read_doc(
        &DocumentSpec::new(DocumentKind::ExitEntryPermit),
        ChipOptions::default(),
    );
    assert_eq!(read.stats.access_apdus, bac.unwrap().stats.access_apdus + 3);
}

#[test]
fn wrong_mrz_can_and_unsupported_pace_are_reported() {
    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.pace_only = true;
    spec.pace_curve = crate::ec::Curve::BrainpoolP256r1;
    let doc = TestDocument::generate(&spec, pki());
    // A wrong MRZ under PACE: the chip refuses the token (6300), the clerk checks the MRZ.
    let wrong = MrzKey::new("E12345678", "850316", "330101").unwrap();
    let e = read_document(
        &mut Chip::new(doc.clone(), ChipOptions::default()),
        &wrong,
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, ReadError::Access(AccessError::WrongKey { sw: 0x6300 })),
        "{e}"
    );
    assert!(e.to_string().contains("check the MRZ"), "{e}");
    // The CAN opens the chip (even with a wrong MRZ); a wrong CAN is said to be the CAN.
    let with_can = |can: &str| ReadOptions {
        can: Some(can.into()),
        ..Default::default()
    };
    let read = read_document(
        &mut Chip::new(doc.clone(), ChipOptions::default()),
        &wrong,
        &with_can("123456"),
    )
    .unwrap();
    assert_eq!(read.pace.unwrap().1, "CAN");
    let e = read_document(
        &mut Chip::new(doc.clone(), ChipOptions::default()),
        &doc.key,
        &with_can("123457"),
    )
    .unwrap_err();
    assert!(
        matches!(e, ReadError::Access(AccessError::WrongCan { sw: 0x6300 })),
        "{e}"
    );
    // BAC against the PACE-only chip: GET CHALLENGE answers, EXTERNAL AUTHENTICATE is refused
    // with 6A88, as German passports do; the reader names it PACE-only.
    let mut chip = Chip::new(doc.clone(), ChipOptions::default());
    let select =
        crate::apdu::Command::new(0, 0xA4, 0x04, 0x0C).with_data(crate::read::AID.to_vec());
    assert_eq!(chip.transmit(&select.encode()).unwrap(), [0x90, 0x00]);
    let mut transmit = |cmd: &crate::apdu::Command| {
        crate::apdu::Response::parse(&chip.transmit(&cmd.encode()).unwrap()).map_err(|_| ())
    };
    let e = crate::access::bac(
        &mut transmit,
        &doc.key,
        crate::access::BacTerminal::random(),
        None,
    )
    .unwrap()
    .unwrap_err();
    assert!(matches!(e, AccessError::PaceOnly { sw: 0x6A88, .. }), "{e}");

    // PACE offered only with the integrated mapping: BAC is used and the record says why; a
    // PACE-only chip with it is reported as such, naming what it offers.
    let im = crate::security_infos::build::set(&[crate::security_infos::build::pace_info(
        crate::security_infos::PaceProtocol {
            agreement: crate::security_infos::KeyAgreement::Ecdh,
            mapping: crate::security_infos::Mapping::Integrated,
            cipher: crate::cipher::Cipher::Aes256,
        },
        crate::ec::Curve::BrainpoolP384r1,
    )]);
    let mut offered = TestDocument::generate(&DocumentSpec::new(DocumentKind::PassportJpeg), pki());
    offered.card_access = Some(im.clone());
    let key = offered.key.clone();
    let read = read_document(
        &mut Chip::new(offered, ChipOptions::default()),
        &key,
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(read.access.as_str(), "BAC");
    assert!(read.pace_offered);
    assert_eq!(
        read.pace_not_used.as_deref(),
        Some(
            "the chip offers PACE only as ECDH-IM AES-256 on brainpoolP384r1, which countersign does not implement; read with BAC"
        )
    );
    let mut only = doc;
    only.card_access = Some(im);
    let e = read_document(
        &mut Chip::new(only, ChipOptions::default()),
        &key,
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ReadError::Access(AccessError::PaceOnly { offered, .. }) if offered.contains("ECDH-IM AES-256 on brainpoolP384r1")),
        "{e}"
    );
}

fn read_with(spec: &DocumentSpec, options: &ReadOptions) -> (TestDocument, crate::DocumentRead) {
    let doc = TestDocument::generate(spec, pki());
    let mut chip = Chip::new(doc.clone(), ChipOptions::default());
    let read = read_document(&mut chip, &doc.key, options).unwrap_or_else(|e| panic!("{e}"));
    (doc, read)
}

/// Chip authentication after BAC and after PACE, 3DES and AES-128, P-256 and brainpoolP256r1:
/// passes on a genuine chip; a clone (DG14 and EF.SOD copied, the private key not) fails, and
/// the read still completes, opened again with the same access protocol, every group read and
/// passive authentication intact.
#[test]
fn chip_authentication_passes_and_a_clone_fails_after_bac_and_pace() {
    use crate::cipher::Cipher;
    use crate::ec::Curve;
    let store = store(pki());
    for curve in [Curve::NistP256, Curve::BrainpoolP256r1] {
        for cipher in [Cipher::Tdes, Cipher::Aes128] {
            for pace in [false, true] {
                for cloned in [false, true] {
                    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
                    spec.ca_curve = curve;
                    spec.ca_cipher = cipher;
                    spec.pace_only = pace;
                    spec.pace_curve = Curve::BrainpoolP256r1;
                    spec.cloned_chip = cloned;
                    let what = format!("{curve:?} {cipher:?} pace {pace} cloned {cloned}");
                    let (_, read) = read_with(&spec, &ReadOptions::default());
                    let described = format!("ECDH {} {}", curve.name(), cipher.name());
                    if cloned {
                        let ChipAuthentication::Failed(why) = &read.chip_authentication else {
                            panic!("{what}: {:?}", read.chip_authentication)
                        };
                        assert!(
                            why.starts_with(
                                "the chip does not hold the private key of its DG14 public key (possible clone)"
                            ) && why.contains(&described),
                            "{what}: {why}"
                        );
                    } else {
                        assert_eq!(
                            read.chip_authentication,
                            ChipAuthentication::Passed(described),
                            "{what}"
                        );
                    }
                    assert_eq!(read.access.as_str(), if pace { "PACE" } else { "BAC" });
                    let groups: Vec<u8> = read.data_groups.iter().map(|(n, _)| *n).collect();
                    assert_eq!(groups, [14, 1, 2, 11, 12], "{what}");
                    assert_eq!(
                        verdicts(&pa_of(&read, Some(&store))),
                        [
                            ("sod_hashes", Verdict::Pass),
                            ("sod_signature", Verdict::Pass),
                            ("csca_chain", Verdict::Pass)
                        ],
                        "{what}"
                    );
                    // DG14's SELECT, head and one block; MSE:Set KAT, or MSE:Set AT and GENERAL
                    // AUTHENTICATE; the proof's SELECT and READ BINARY (a clone's first command
                    // fails, and access runs again: SELECT and BAC's 2, or PACE's 5 and SELECT).
                    let exchange = if cipher == Cipher::Tdes { 1 } else { 2 };
                    let after = match (cloned, pace) {
                        (false, _) => 2,
                        (true, false) => 1 + 3,
                        (true, true) => 1 + 6,
                    };
                    assert_eq!(read.stats.ca_apdus, 3 + exchange + after, "{what}");
                }
            }
        }
    }
}

/// Every outcome but passed and failed: no DG14, DG14 altered (not trusted), turned off, a
/// curve countersign does not implement, a chip refusing the protocol its DG14 offers, a key id.
#[test]
fn chip_authentication_not_offered_not_trusted_skipped_and_not_supported() {
    let spec = |f: &dyn Fn(&mut DocumentSpec)| {
        let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
        f(&mut spec);
        spec
    };
    let (_, read) = read_with(&spec(&|s| s.chip_auth = false), &ReadOptions::default());
    assert_eq!(
        read.chip_authentication,
        ChipAuthentication::NotOffered(
            "the chip has no DG14 (neither EF.COM nor EF.SOD lists it)".into()
        )
    );
    assert_eq!(read.stats.ca_apdus, 0);
    let groups: Vec<u8> = read.data_groups.iter().map(|(n, _)| *n).collect();
    assert_eq!(groups, [1, 2, 11, 12]);

    // DG14 altered after signing: its key is not used, the read goes on.
    let (_, read) = read_with(&spec(&|s| s.tamper_dg = Some(14)), &ReadOptions::default());
    let ChipAuthentication::NotTrusted(why) = &read.chip_authentication else {
        panic!("{:?}", read.chip_authentication)
    };
    assert!(
        why.contains("DG14 does not match its hash in EF.SOD"),
        "{why}"
    );
    assert_eq!(read.stats.ca_apdus, 3, "DG14 read, nothing sent for CA");
    assert_eq!(pa_of(&read, None)[0].verdict, Verdict::Fail);

    // Turned off: DG14 is not read.
    let off = ReadOptions {
        chip_authentication: false,
        ..Default::default()
    };
    let (_, read) = read_with(&spec(&|_| {}), &off);
    assert_eq!(read.chip_authentication.status(), "skipped");
    assert_eq!(
        read.chip_authentication.detail(),
        "chip authentication was turned off for this read (the chip has DG14)"
    );
    assert!(read.dg(14).is_none());
    assert_eq!(read.stats.ca_apdus, 0);

    // A key id is sent and matched.
    let (_, read) = read_with(&spec(&|s| s.ca_key_id = Some(7)), &ReadOptions::default());
    assert_eq!(
        read.chip_authentication,
        ChipAuthentication::Passed("ECDH P-256 AES-128, key 7".into())
    );

    // The chip does not do the chip authentication its DG14 offers: it refuses MSE:Set AT
    // under the old keys, and the read goes on with them.
    let mut doc = TestDocument::generate(&spec(&|_| {}), pki());
    doc.chip_auth = None;
    let key = doc.key.clone();
    let read = read_document(
        &mut Chip::new(doc, ChipOptions::default()),
        &key,
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        read.chip_authentication,
        ChipAuthentication::Failed(
            "ECDH P-256 AES-128: the chip refused MSE:Set AT (chip authentication) with status 6A88 (referenced data not found)"
                .into()
        )
    );
    assert_eq!(read.data_groups.len(), 5);

    // DG14 (signed) on brainpoolP512r1, which countersign does not have.
    let mut doc = TestDocument::generate(&spec(&|_| {}), pki());
    let g = crate::ec::Curve::NistP256.generator();
    let spki = crate::tlv::encode(
        0x30,
        &[
            crate::tlv::encode(
                0x30,
                &[
                    crate::tlv::encode(0x06, crate::sod::oid::EC_PUBLIC_KEY),
                    crate::tlv::encode(
                        0x06,
                        &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0D],
                    ),
                ]
                .concat(),
            ),
            crate::tlv::encode(0x03, &[&[0][..], &g[..]].concat()),
        ]
        .concat(),
    );
    let infos = crate::security_infos::build::set(&[
        crate::tlv::encode(
            0x30,
            &[
                crate::tlv::encode(
                    0x06,
                    &crate::ca::CaParams::oid_for(crate::cipher::Cipher::Aes256),
                ),
                crate::tlv::encode(0x02, &[1]),
            ]
            .concat(),
        ),
        crate::tlv::encode(
            0x30,
            &[
                crate::tlv::encode(0x06, &crate::security_infos::ID_PK_ECDH),
                spki,
            ]
            .concat(),
        ),
    ]);
    doc.set_file(LdsFile::Dg(14).fid(), lds::build::dg14(&infos));
    let groups: Vec<(u8, Vec<u8>)> = [1u8, 2, 11, 12, 14]
        .iter()
        .map(|n| (*n, doc.file(LdsFile::Dg(*n).fid()).unwrap().to_vec()))
        .collect();
    let refs: Vec<(u8, &[u8])> = groups.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    doc.set_file(
        LdsFile::Sod.fid(),
        pki().sign_sod(crate::sod::HashAlg::Sha256, &refs),
    );
    let read = read_document(
        &mut Chip::new(doc, ChipOptions::default()),
        &key,
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        read.chip_authentication,
        ChipAuthentication::NotSupported(
            "DG14 offers only chip authentication (ECDH AES-256) on brainpoolP512r1, which countersign does not implement"
                .into()
        )
    );
    assert_eq!(pa_of(&read, None)[0].verdict, Verdict::Pass);
}

/// A clone whose chip cannot be opened again after chip authentication failed: the read stops,
/// and the error names the failure first.
#[test]
fn a_clone_that_cannot_be_reopened_stops_the_read_naming_the_failure() {
    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.cloned_chip = true;
    let doc = TestDocument::generate(&spec, pki());
    // BAC answers once: the second EXTERNAL AUTHENTICATE is refused.
    struct OnceBac {
        chip: Chip,
        bac: u32,
    }
    impl Transceiver for OnceBac {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransmitError> {
            if apdu.get(..2) == Some(&[0x00, 0x82]) {
                self.bac += 1;
                if self.bac > 1 {
                    return Ok(vec![0x69, 0x85]);
                }
            }
            self.chip.transmit(apdu)
        }
    }
    let key = doc.key.clone();
    let mut card = OnceBac {
        chip: Chip::new(doc, ChipOptions::default()),
        bac: 0,
    };
    let e = read_document(&mut card, &key, &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&e, ReadError::Reopen { failure, .. } if failure.contains("possible clone")),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("chip authentication failed: the chip does not hold the private key"),
        "{e}"
    );
    assert!(e.to_string().contains("could not be opened again"), "{e}");
}
