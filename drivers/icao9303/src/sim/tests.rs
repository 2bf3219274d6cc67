//! The reader against the emulator in process: every document kind, passive authentication,
//! and each fault the clerk must be told about.

use std::sync::OnceLock;

use super::*;
use crate::access::AccessError;
use crate::lds::{self, ImageFormat, LdsFile};
use crate::mrz::{MrzFormat, MrzKey};
use crate::pa::{self, CscaStore, Verdict};
use crate::read::{ReadError, ReadOptions, Transceiver, TransmitError, read_document};

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
        assert_eq!(groups, [1, 2, 11, 12], "{name}");
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

    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.pace_only = true;
    let (_, result) = read_doc(&spec, ChipOptions::default());
    let e = result.unwrap_err();
    assert!(
        matches!(e, ReadError::Access(AccessError::PaceOnly { .. })),
        "{e}"
    );

    spec.pace_only = false;
    spec.pace_offered = true;
    let (_, result) = read_doc(&spec, ChipOptions::default());
    assert!(
        result.unwrap().pace_offered,
        "PACE offered, BAC used: recorded"
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
}
