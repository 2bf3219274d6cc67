//! Active Authentication through the emulator in process: the Chinese and Hong Kong profiles, a
//! chip strict about Le (the RSA-2048 answer under secure messaging comes in `61xx` pieces),
//! extended length, clones, verdicts in the right order, every listed data group accounted for;
//! PACE-CAM and its clone.

use std::sync::OnceLock;

use super::*;
use crate::aa::{self, ActiveAuthentication, Binding};
use crate::ca::ChipAuthentication;
use crate::read::{ReadOptions, read_document};
use crate::security_infos;

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate("CN"))
}

fn read_doc(spec: &DocumentSpec, chip: ChipOptions, options: &ReadOptions) -> crate::DocumentRead {
    read_counting(spec, chip, options).0
}

/// The read and the APDUs the chip received (GET RESPONSEs included, which the reader's own
/// count, one per command, leaves out).
fn read_counting(
    spec: &DocumentSpec,
    chip: ChipOptions,
    options: &ReadOptions,
) -> (crate::DocumentRead, u32) {
    let doc = TestDocument::generate(spec, pki());
    let mut chip = Chip::new(doc.clone(), chip);
    let read = read_document(&mut chip, &doc.key, options).unwrap_or_else(|e| panic!("{e}"));
    (read, chip.apdus)
}

fn strict() -> ChipOptions {
    ChipOptions {
        strict_le: true,
        no_extended_length: true,
        ..ChipOptions::default()
    }
}

fn binding() -> Binding {
    Binding {
        station: "counter-01".into(),
        bound: Some((7, "sha256:1d2c".into())),
        read_at: "2026-03-01T08:00:00.000Z".into(),
    }
}

/// The Chinese-passport profile on a chip strict about Le and without extended length: BAC, no
/// DG14, RSA-2048 Active Authentication passes with the challenge bound as asked, the answer
/// fetched with GET RESPONSE; the exchange recorded verifies again from DG15 alone.
#[test]
fn the_chinese_passport_profile_passes_with_a_bound_challenge() {
    let options = ReadOptions {
        aa_binding: Some(binding()),
        ..ReadOptions::default()
    };
    let (read, chip_apdus) = read_counting(&DocumentSpec::chinese_passport(), strict(), &options);
    assert_eq!(read.access, crate::AccessProtocol::Bac);
    assert_eq!(read.chip_authentication.status(), "not_offered");
    assert_eq!(
        read.active_authentication,
        ActiveAuthentication::Passed(
            "RSA-2048 ISO/IEC 9796-2 scheme 1 SHA-1, challenge bound to record 7 of station counter-01"
                .into()
        )
    );
    let exchange = read.aa_exchange.as_ref().unwrap();
    assert_eq!(exchange.challenge, aa::challenge(&binding()));
    assert_eq!(exchange.signature.len(), 256);
    let key = aa::parse_dg15(read.dg(15).unwrap()).unwrap();
    assert!(aa::verify_response(&key, &exchange.challenge, &exchange.signature, None).is_ok());
    // DG15 (SELECT, head, two blocks) and INTERNAL AUTHENTICATE, whose answer (283 bytes under
    // secure messaging) needed one GET RESPONSE: the only one of the read.
    assert_eq!(read.stats.aa_apdus, 5, "{:?}", read.stats);
    assert_eq!(chip_apdus, read.stats.apdus + 1);
    let groups: Vec<u8> = read.data_groups.iter().map(|(n, _)| *n).collect();
    assert_eq!(groups, [15, 1, 2, 11, 12]);
    assert!(read.not_read.is_empty(), "{:?}", read.not_read);

    // With extended length on both sides the answer comes in one piece.
    let extended = ReadOptions {
        extended_length: true,
        ..ReadOptions::default()
    };
    let chip = ChipOptions {
        strict_le: true,
        ..ChipOptions::default()
    };
    let (read, chip_apdus) = read_counting(&DocumentSpec::chinese_passport(), chip, &extended);
    assert_eq!(read.active_authentication.status(), "passed");
    assert_eq!(chip_apdus, read.stats.apdus);
}

/// RSA-1024 with SHA-256's two-byte trailer, and the Hong Kong profile (PACE, ECDSA P-256, the
/// hash from DG14's ActiveAuthenticationInfo).
#[test]
fn rsa_1024_and_the_hong_kong_profile_pass() {
    let spec = DocumentSpec {
        active_auth: Some(AaKeyKind::Rsa1024),
        aa_hash: crate::sod::HashAlg::Sha256,
        ..DocumentSpec::chinese_passport()
    };
    let read = read_doc(&spec, strict(), &ReadOptions::default());
    assert_eq!(
        read.active_authentication,
        ActiveAuthentication::Passed(
            "RSA-1024 ISO/IEC 9796-2 scheme 1 SHA-256, random challenge".into()
        )
    );

    let read = read_doc(
        &DocumentSpec::hong_kong_passport(),
        strict(),
        &ReadOptions::default(),
    );
    assert_eq!(read.access, crate::AccessProtocol::Pace);
    assert_eq!(
        read.active_authentication,
        ActiveAuthentication::Passed("ECDSA P-256 SHA-256, random challenge".into())
    );
    let infos = security_infos::parse(read.dg(14).unwrap()).unwrap();
    assert_eq!(
        infos.aa_signature_algorithm,
        Some(aa::ecdsa_plain_oid(crate::sod::HashAlg::Sha256))
    );
    assert_eq!(read.chip_authentication.status(), "not_offered");
}

/// A clone (DG15 copied, not its key) fails and the read completes; a clone that brings its own
/// DG15 answers correctly but EF.SOD's signature fails: not trusted; so is a genuine answer under
/// a broken EF.SOD signature, and chip authentication's verdict follows the same rule.
#[test]
fn clones_fail_and_untrusted_keys_are_not_trusted() {
    for kind in [AaKeyKind::Rsa2048, AaKeyKind::EcdsaP256] {
        let spec = DocumentSpec {
            active_auth: Some(kind),
            aa_cloned: true,
            ..DocumentSpec::hong_kong_passport()
        };
        let read = read_doc(&spec, strict(), &ReadOptions::default());
        let ActiveAuthentication::Failed(why) = &read.active_authentication else {
            panic!("{:?}", read.active_authentication)
        };
        assert!(
            why.starts_with(
                "the chip does not hold the private key of its DG15 public key (possible clone)"
            ),
            "{why}"
        );
        assert!(read.dg(1).is_some() && read.dg(2).is_some());
        assert!(read.aa_exchange.is_some());
    }

    let own = DocumentSpec {
        aa_own_dg15: true,
        ..DocumentSpec::chinese_passport()
    };
    let read = read_doc(&own, strict(), &ReadOptions::default());
    let ActiveAuthentication::NotTrusted(why) = &read.active_authentication else {
        panic!("{:?}", read.active_authentication)
    };
    assert!(
        why.starts_with("EF.SOD's signature does not verify")
            && why.contains("the answer verifies under DG15's key"),
        "{why}"
    );

    let broken = DocumentSpec {
        break_sod_signature: true,
        chip_auth: true,
        ..DocumentSpec::chinese_passport()
    };
    let read = read_doc(&broken, strict(), &ReadOptions::default());
    assert_eq!(read.active_authentication.status(), "not_trusted");
    let ChipAuthentication::NotTrusted(why) = &read.chip_authentication else {
        panic!("{:?}", read.chip_authentication)
    };
    assert!(
        why.starts_with("EF.SOD's signature does not verify")
            && why.ends_with("DG14's key was not used"),
        "{why}"
    );
}

/// Turned off: nothing is sent and DG15 is reported as not read, with the reason.
#[test]
fn active_authentication_turned_off_is_skipped_and_dg15_accounted_for() {
    let off = ReadOptions {
        active_authentication: false,
        ..ReadOptions::default()
    };
    let read = read_doc(&DocumentSpec::chinese_passport(), strict(), &off);
    assert_eq!(read.active_authentication.status(), "skipped");
    assert_eq!(read.stats.aa_apdus, 0);
    assert!(read.dg(15).is_none());
    assert_eq!(
        read.not_read,
        [(
            15,
            "Active Authentication was turned off for this read".to_string()
        )]
    );
    assert!(read.aa_exchange.is_none());
}

/// PACE-CAM: the chip is authenticated during PACE (no separate chip authentication), checked
/// against DG14's key once DG14 is read; a clone (DG14 copied, not its key) fails, and the read
/// completes under PACE's keys.
#[test]
fn pace_cam_passes_and_a_cam_clone_fails() {
    for curve in [
        crate::ec::Curve::NistP256,
        crate::ec::Curve::BrainpoolP256r1,
    ] {
        let spec = DocumentSpec {
            pace_cam: true,
            pace_curve: curve,
            ca_curve: curve,
            ..DocumentSpec::new(DocumentKind::PassportJpeg)
        };
        let read = read_doc(&spec, ChipOptions::default(), &ReadOptions::default());
        assert_eq!(read.access, crate::AccessProtocol::Pace);
        assert_eq!(
            read.pace.as_ref().map(|(p, _)| p.as_str()),
            Some(format!("ECDH-CAM {} AES-128", curve.name()).as_str())
        );
        assert_eq!(
            read.chip_authentication,
            ChipAuthentication::Passed(format!(
                "PACE-CAM on {} (chip authentication mapping)",
                curve.name()
            ))
        );
        // DG14 only: nothing sent for chip authentication.
        assert_eq!(read.stats.ca_apdus, 3);

        let clone = DocumentSpec {
            cloned_chip: true,
            ..spec
        };
        let read = read_doc(&clone, ChipOptions::default(), &ReadOptions::default());
        let ChipAuthentication::Failed(why) = &read.chip_authentication else {
            panic!("{:?}", read.chip_authentication)
        };
        assert!(
            why.starts_with(
                "the chip does not hold the private key of its DG14 public key (possible clone): PACE-CAM"
            ),
            "{why}"
        );
        assert!(read.dg(1).is_some() && read.dg(2).is_some() && read.dg(11).is_some());
    }
}
