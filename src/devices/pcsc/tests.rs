//! The mapping of chip reads into records, against the emulator in process.

use icao9303::pa::CscaStore;
use icao9303::sim::{Chip, ChipOptions, DocumentKind, DocumentSpec, TestDocument, TestPki};
use icao9303::{ReadOptions, read_document};

use super::*;

fn today() -> CivilDate {
    CivilDate::new(2026, 11, 27).unwrap()
}

fn device() -> DeviceInfo {
    DeviceInfo {
        kind: "pcsc".into(),
        name: "counter".into(),
        sam_id: None,
        detail: None,
    }
}

fn capture(spec: &DocumentSpec, pki: &TestPki, store: Option<&CscaStore>) -> Capture {
    let doc = TestDocument::generate(spec, pki);
    let mut chip = Chip::new(doc.clone(), ChipOptions::default());
    let read = read_document(&mut chip, &doc.key, &ReadOptions::default()).unwrap();
    capture_of(&read, &doc.key, &device(), store, today())
}

fn results(identity: &Identity) -> Vec<(&str, CheckResult)> {
    identity
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.result))
        .collect()
}

#[test]
fn passport_and_permit_map_every_field_check_and_blob() {
    let pki = TestPki::generate("UT");
    let mut store = CscaStore::default();
    store.add_bytes(pki.csca_pem().as_bytes()).unwrap();

    let c = capture(
        &DocumentSpec {
            active_auth: Some(icao9303::sim::AaKeyKind::Rsa1024),
            ..DocumentSpec::new(DocumentKind::PassportJ2k)
        },
        &pki,
        Some(&store),
    );
    let id = c.identity.as_ref().unwrap();
    assert_eq!(id.document, "passport");
    assert_eq!(id.access_protocol.as_deref(), Some("BAC"));
    assert_eq!(id.id_number.as_deref(), Some("E12345678"));
    assert_eq!(id.name_en.as_deref(), Some("TESTPERSON, ANNA MARIA"));
    assert_eq!(id.name, None, "no Chinese name on this passport");
    assert_eq!(id.birth_date.as_deref(), Some("1985-03-15"));
    assert_eq!(id.valid_until.as_deref(), Some("2033-01-01"));
    assert_eq!(id.valid_from.as_deref(), Some("2023-01-02"));
    assert_eq!(id.issuer.as_deref(), Some("UTOPIA PASSPORT OFFICE"));
    assert_eq!(id.place_of_birth.as_deref(), Some("UTOPIA CITY"));
    assert_eq!(id.sex.as_ref().unwrap().label.as_deref(), Some("女"));
    assert_eq!(id.mrz.as_ref().unwrap().format, "TD3");
    for (name, result) in results(id) {
        assert_eq!(result, CheckResult::Pass, "{name}: {:?}", id.checks);
    }
    assert!(results(id).contains(&("face_conversion", CheckResult::Pass)));
    assert!(results(id).contains(&("csca_chain", CheckResult::Pass)));
    let roles: Vec<(&str, &str)> = c
        .evidence
        .iter()
        .map(|e| (e.role.as_str(), e.media_type.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            ("face_photo", "image/jpeg"),
            ("face_photo_original", "image/j2c"),
            ("sod", "application/octet-stream"),
            ("dg1", "application/octet-stream"),
            ("dg2", "application/octet-stream"),
            ("dg11", "application/octet-stream"),
            ("dg12", "application/octet-stream"),
            ("dg14", "application/octet-stream"),
            ("dg15", "application/octet-stream"),
        ]
    );
    assert_eq!(c.summary, "passport E12****78");
    let ca = id
        .checks
        .iter()
        .find(|c| c.name == "chip_authentication")
        .unwrap();
    assert_eq!(ca.detail.as_deref(), Some("passed: ECDH P-256 AES-128"));

    let c = capture(
        &DocumentSpec::new(DocumentKind::ExitEntryPermit),
        &pki,
        None,
    );
    let id = c.identity.as_ref().unwrap();
    assert_eq!(id.document, "exit_entry_permit");
    assert_eq!(id.name.as_deref(), Some("测试乙"));
    assert_eq!(id.id_number.as_deref(), Some("C01234567"));
    assert_eq!(id.birth_date.as_deref(), Some("1990-01-01"));
    assert_eq!(id.valid_until.as_deref(), Some("2030-01-01"));
    assert_eq!(id.mrz.as_ref().unwrap().format, "CS/CD");
    assert!(results(id).contains(&("csca_chain", CheckResult::Unknown)));
    assert!(
        !results(id).iter().any(|(_, r)| *r == CheckResult::Fail),
        "{:?}",
        id.checks
    );
}

#[test]
fn tampering_pace_and_expiry_are_reported_never_hidden() {
    let pki = TestPki::generate("UT");
    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.tamper_dg = Some(11);
    spec.pace_offered = true;
    let mut doc = TestDocument::generate(&spec, &pki);
    // PACE offered only with a mapping countersign does not implement: BAC, and the record says
    // why.
    doc.card_access = Some(icao9303::security_infos::build::set(&[
        icao9303::security_infos::build::pace_info(
            icao9303::security_infos::PaceProtocol {
                agreement: icao9303::security_infos::KeyAgreement::Ecdh,
                mapping: icao9303::security_infos::Mapping::Integrated,
                cipher: icao9303::cipher::Cipher::Aes128,
            },
            icao9303::ec::Curve::NistP256,
        ),
    ]));
    let mut chip = Chip::new(doc.clone(), ChipOptions::default());
    let read = read_document(&mut chip, &doc.key, &ReadOptions::default()).unwrap();
    let later = CivilDate::new(2040, 1, 1).unwrap();
    let c = capture_of(&read, &doc.key, &device(), None, later);
    let id = c.identity.as_ref().unwrap();
    let find = |n: &str| id.checks.iter().find(|c| c.name == n).unwrap();
    assert_eq!(find("sod_hashes").result, CheckResult::Fail);
    assert!(
        find("sod_hashes")
            .detail
            .as_deref()
            .unwrap()
            .contains("DG11")
    );
    assert_eq!(find("pace_offered").result, CheckResult::Unknown);
    assert!(
        find("pace_offered")
            .detail
            .as_deref()
            .unwrap()
            .contains("ECDH-IM AES-128 on P-256"),
        "{:?}",
        find("pace_offered")
    );
    assert_eq!(id.access_protocol.as_deref(), Some("BAC"));
    // A PACE-only document: access protocol PACE, and a `pace` check with what was used.
    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.pace_only = true;
    spec.pace_curve = icao9303::ec::Curve::BrainpoolP256r1;
    let doc = TestDocument::generate(&spec, &pki);
    let mut chip = Chip::new(doc.clone(), ChipOptions::default());
    let read = read_document(&mut chip, &doc.key, &ReadOptions::default()).unwrap();
    let c = capture_of(&read, &doc.key, &device(), None, later);
    let id = c.identity.as_ref().unwrap();
    assert_eq!(id.access_protocol.as_deref(), Some("PACE"));
    let pace = id.checks.iter().find(|c| c.name == "pace").unwrap();
    assert_eq!(pace.result, CheckResult::Pass);
    assert_eq!(
        pace.detail.as_deref(),
        Some("ECDH-GM brainpoolP256r1 AES-128, MRZ password")
    );
    assert!(!id.checks.iter().any(|c| c.name == "pace_offered"));
    assert_eq!(find("not_expired").result, CheckResult::Fail);
    assert_eq!(
        find("csca_chain").detail.as_deref(),
        Some("no CSCA store configured")
    );
}

#[test]
fn mrz_text_and_three_fields_are_accepted() {
    let key = backend_free_parse("E12345678 850315 330101").unwrap();
    assert_eq!(key.birth_date, "850315");
    let key = backend_free_parse("P<UTOTESTPERSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<\nE123456784UTO8503155F3301014<<<<<<<<<<<<<<<0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(key.document_number, "E12345678");
    assert!(backend_free_parse("nonsense").is_err());
}

fn backend_free_parse(text: &str) -> Result<MrzKey, String> {
    parse_mrz_text(text)
}

/// Chip authentication in the record: a clone fails the check (the document is kept, the other
/// checks pass); a document without DG14 and a DG14 that fails passive authentication say so.
#[test]
fn chip_authentication_check_fails_for_a_clone_and_names_why_it_did_not_run() {
    let pki = TestPki::generate("UT");
    let mut store = CscaStore::default();
    store.add_bytes(pki.csca_pem().as_bytes()).unwrap();
    let find = |c: &Capture| -> Check {
        let id = c.identity.as_ref().unwrap();
        id.checks
            .iter()
            .find(|c| c.name == "chip_authentication")
            .cloned()
            .unwrap()
    };
    let mut spec = DocumentSpec::new(DocumentKind::ExitEntryPermit);
    spec.cloned_chip = true;
    spec.ca_cipher = icao9303::cipher::Cipher::Tdes;
    spec.ca_curve = icao9303::ec::Curve::BrainpoolP256r1;
    let c = capture(&spec, &pki, Some(&store));
    let ca = find(&c);
    assert_eq!(ca.result, CheckResult::Fail);
    assert!(
        ca.detail.as_deref().unwrap().starts_with(
            "failed: the chip does not hold the private key of its DG14 public key (possible clone): ECDH brainpoolP256r1 3DES"
        ),
        "{ca:?}"
    );
    let id = c.identity.as_ref().unwrap();
    let failed: Vec<&str> = results(id)
        .into_iter()
        .filter(|(n, r)| *r != CheckResult::Pass && *n != "active_authentication")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed, ["chip_authentication"], "{:?}", id.checks);
    assert_eq!(id.id_number.as_deref(), Some("C01234567"));

    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.chip_auth = false;
    let ca = find(&capture(&spec, &pki, None));
    assert_eq!(ca.result, CheckResult::Unknown);
    assert_eq!(
        ca.detail.as_deref(),
        Some("not_offered: the chip has no DG14 (neither EF.COM nor EF.SOD lists it)")
    );

    let mut spec = DocumentSpec::new(DocumentKind::PassportJpeg);
    spec.tamper_dg = Some(14);
    let c = capture(&spec, &pki, None);
    let ca = find(&c);
    assert_eq!(ca.result, CheckResult::Fail);
    assert!(
        ca.detail
            .as_deref()
            .unwrap()
            .starts_with("not_trusted: DG14 failed passive authentication"),
        "{ca:?}"
    );
}

/// Refusals (`args.mrz: ...`) reach the log and the case system: they name the field and the
/// rule, never what was typed.
#[test]
fn mrz_errors_name_the_field_and_rule_never_the_value() {
    let td3_bad_birth = "P<UTOTESTPERSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<\nE123456784UTO8513155F3301014<<<<<<<<<<<<<<<0";
    let td3_bad_char = "P<UTOTESTPERSÖN<<ANNA<MARIA<<<<<<<<<<<<<<<<<\nE123456784UTO8503155F3301014<<<<<<<<<<<<<<<0";
    for (text, secrets) in [
        ("E12345678 851315 330101", &["851315"][..]),
        ("E12345678 850315 331399", &["331399"][..]),
        ("E12345678 1985-13-15 330101", &["1985-13-15", "1985"][..]),
        (td3_bad_birth, &["851315", "8513155"][..]),
        (td3_bad_char, &["Ö", "TESTPERS"][..]),
        ("张三 850315 330101 x", &["张", "850315"][..]),
    ] {
        let e = parse_mrz_text(text).unwrap_err();
        for secret in secrets {
            assert!(!e.contains(secret), "{secret:?} in {e:?}");
        }
    }
    let e = parse_mrz_text("E12345678 851315 330101").unwrap_err();
    assert!(e.starts_with("birth date"), "{e}");
}

/// The Chinese-passport profile read with its challenge bound to a real outbox's chain head: the
/// record carries the inputs, DG15 and the answer, and the re-check passes from them alone; any
/// changed input, a signature of another challenge, or a changed DG15 fails it.
#[test]
fn active_authentication_is_bound_to_the_chain_and_rechecks_from_the_record() {
    use crate::record::{Sealed, chain_hash};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let mut outbox = crate::outbox::Outbox::open(&path).unwrap();
    let chain = ChainHead {
        station: "counter-01".into(),
        outbox: Some(path.clone()),
    };
    let first = chain.binding(std::time::SystemTime::now()).unwrap();
    assert_eq!(first.bound, None, "no record yet");
    outbox
        .append("counter-01", |_| {
            Ok(Sealed {
                record_id: "r1".into(),
                wire: b"wire-1".to_vec(),
                blobs: Vec::new(),
            })
        })
        .unwrap();
    let binding = chain.binding(std::time::SystemTime::now()).unwrap();
    assert_eq!(binding.bound, Some((1, chain_hash(b"wire-1"))));

    let pki = TestPki::generate("CN");
    let doc = TestDocument::generate(&DocumentSpec::chinese_passport(), &pki);
    let mut chip = Chip::new(doc.clone(), ChipOptions::default());
    let options = ReadOptions {
        aa_binding: Some(binding.clone()),
        ..ReadOptions::default()
    };
    let read = read_document(&mut chip, &doc.key, &options).unwrap();
    let c = capture_of(&read, &doc.key, &device(), None, today());
    let id = c.identity.as_ref().unwrap();
    let check = id
        .checks
        .iter()
        .find(|c| c.name == "active_authentication")
        .unwrap();
    assert_eq!(check.result, CheckResult::Pass, "{check:?}");
    assert!(
        check
            .detail
            .as_deref()
            .unwrap()
            .ends_with("challenge bound to record 1 of station counter-01"),
        "{check:?}"
    );
    let r = id.active_authentication.clone().unwrap();
    assert_eq!(r.challenge_source, "chain");
    assert_eq!(r.bound_seq, Some(1));
    assert_eq!(
        r.bound_record.as_deref(),
        Some(chain_hash(b"wire-1").as_str())
    );
    assert_eq!(r.read_at.as_deref(), Some(binding.read_at.as_str()));
    assert_eq!(
        aa::recheck(&r).as_deref(),
        Ok("RSA-2048 ISO/IEC 9796-2 scheme 1 SHA-1")
    );
    assert!(c.evidence.iter().any(|e| e.role == "dg15"));

    let mut changed = r.clone();
    changed.read_at = Some("2026-01-01T00:00:00.000Z".into());
    assert!(
        aa::recheck(&changed)
            .unwrap_err()
            .contains("not the one its recorded inputs derive")
    );
    let mut changed = r.clone();
    changed.bound_seq = Some(2);
    assert!(aa::recheck(&changed).is_err());
    let mut changed = r.clone();
    changed.challenge_source = "random".into();
    changed.challenge = "0000000000000000".into();
    assert!(
        aa::recheck(&changed)
            .unwrap_err()
            .contains("does not verify")
    );
    let mut changed = r.clone();
    let other = TestDocument::generate(
        &DocumentSpec {
            active_auth: Some(icao9303::sim::AaKeyKind::Rsa1024),
            ..DocumentSpec::chinese_passport()
        },
        &pki,
    );
    use base64::Engine as _;
    changed.dg15 = base64::engine::general_purpose::STANDARD.encode(other.file(0x010F).unwrap());
    assert!(aa::recheck(&changed).is_err());

    let data_groups = id
        .checks
        .iter()
        .find(|c| c.name == "sod_data_groups")
        .unwrap();
    assert_eq!(data_groups.result, CheckResult::Pass, "{data_groups:?}");
}
