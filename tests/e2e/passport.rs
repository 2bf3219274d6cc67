//! Travel documents end to end through a real pcscd with vsmartcard's vpcd driver and the
//! project's card emulator: `countersign read-document` for each document kind and each fault a
//! clerk must be told about, the read time of a 20 KB DG2, and the daemon turning a document
//! read at the counter into a verified record.

use std::process::Stdio;
use std::time::Duration;

use countersign::record::CheckResult;
use serde_json::Value;

use crate::harness::*;
use crate::harness_idcard::{committed_records, plain, wait_for_records};
use crate::harness_pcsc::*;

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {doc}"))
}

fn roles(doc: &Value) -> Vec<(String, String)> {
    doc["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["role"].as_str().unwrap().into(),
                e["media_type"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Every check passes; Active Authentication may be `not_offered` (documents without DG15).
fn all_pass(doc: &Value) {
    for c in doc["checks"].as_array().unwrap() {
        if c["name"] == "active_authentication"
            && c["detail"].as_str().unwrap().starts_with("not_offered: ")
        {
            continue;
        }
        assert_eq!(c["result"], "pass", "{c} in {doc}");
    }
}

/// Reads the emulated `document` with its own MRZ and the emulator's CSCA.
fn read_ok(document: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let csca = dir.path().join("csca.pem");
    let csca_arg = csca.to_str().unwrap();
    let mut args = vec!["--document", document, "--csca-out", csca_arg];
    args.extend_from_slice(extra);
    let emulator = pcscd.emulator(&args);
    let key = emulator.key_args();
    let mut read_args: Vec<&str> = key.iter().map(String::as_str).collect();
    read_args.extend(["--csca", csca_arg]);
    let (code, doc, stderr) = pcscd.read_document(&read_args);
    assert_eq!(
        code,
        Some(0),
        "{stderr}\n--- emulator ---\n{}",
        emulator.proc.stderr()
    );
    doc
}

/// A station without ID card readers whose `[pcsc]` trusts `csca_files`, takes MRZs from
/// `inbox`, and watches two readers: `counter` (vpcd slot 0) and `window` (slot 1).
fn pcsc_station(
    dir: &std::path::Path,
    csca_files: &[&std::path::Path],
    inbox: &std::path::Path,
) -> StationSetup {
    let setup = setup_station(dir, free_port(), &dir.join("no-idcard"));
    let config = std::fs::read_to_string(&setup.config).unwrap();
    let start = config.find("[id_readers.desk]").unwrap();
    let mut config = config[..start].to_string();
    let files: Vec<String> = csca_files
        .iter()
        .map(|f| format!("\"{}\"", f.display()))
        .collect();
    config.push_str(&format!(
        "[pcsc]\ncsca_files = [{}]\nmrz_inbox = \"{}\"\n\n\
         [pcsc.readers.counter]\nmatch = \"{READER}\"\n\n[pcsc.readers.window]\nmatch = \"{READER_2}\"\n",
        files.join(", "),
        inbox.display()
    ));
    std::fs::write(&setup.config, config).unwrap();
    setup
}

/// The emulated document's MRZ into the inbox for `reader`, written aside and renamed into place.
fn send_mrz(inbox: &std::path::Path, reader: &str, emulator: &Emulator) {
    let tmp = inbox.join(format!("{reader}.tmp"));
    std::fs::write(&tmp, emulator.ready["mrz"].as_str().unwrap()).unwrap();
    std::fs::rename(&tmp, inbox.join(format!("{reader}.mrz"))).unwrap();
}

#[test]
fn td3_passport_with_jpeg_face() {
    let doc = read_ok("passport-jpeg", &[]);
    assert_eq!(doc["document"], "passport");
    assert_eq!(doc["access_protocol"], "BAC");
    assert_eq!(doc["read"]["secure_messaging"], "3DES");
    assert_eq!(doc["mrz"]["format"], "TD3");
    assert_eq!(doc["id_number"], "E12345678");
    assert_eq!(doc["name_en"], "TESTPERSON, ANNA MARIA");
    assert_eq!(doc["birth_date"], "1985-03-15");
    assert_eq!(doc["devices"][0]["kind"], "pcsc");
    all_pass(&doc);
    // The emulator's chip authentication (P-256, AES-128) after BAC.
    assert_eq!(
        check(&doc, "chip_authentication")["detail"],
        "passed: ECDH P-256 AES-128"
    );
    assert_eq!(doc["read"]["chip_authentication"], "passed");
    for name in [
        "sod_hashes",
        "sod_signature",
        "csca_chain",
        "mrz_matches_access_key",
    ] {
        assert_eq!(check(&doc, name)["result"], "pass");
    }
    let roles = roles(&doc);
    assert_eq!(roles[0], ("face_photo".into(), "image/jpeg".into()));
    assert_eq!(
        roles[1],
        ("face_photo_original".into(), "image/jpeg".into())
    );
}

#[test]
fn td3_passport_with_jpeg2000_face() {
    let dir = tempfile::tempdir().unwrap();
    let doc = read_ok("passport-jp2", &[]);
    all_pass(&doc);
    assert_eq!(check(&doc, "face_conversion")["result"], "pass");
    let roles = roles(&doc);
    assert_eq!(roles[0], ("face_photo".into(), "image/jpeg".into()));
    assert_eq!(roles[1], ("face_photo_original".into(), "image/jp2".into()));
    // A raw codestream (as Chinese passports store it) converts too; --out writes the files.
    let pcscd = Pcscd::start(&dir.path().join("j2k"));
    let emulator = pcscd.emulator(&["--document", "passport-j2k"]);
    let out = dir.path().join("evidence");
    let key = emulator.key_args();
    let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
    args.extend(["--out", out.to_str().unwrap()]);
    let (code, doc, stderr) = pcscd.read_document(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(check(&doc, "face_conversion")["result"], "pass");
    assert_eq!(
        check(&doc, "csca_chain")["result"],
        "unknown",
        "no CSCA given"
    );
    let jpeg = std::fs::read(out.join("face_photo.jpg")).unwrap();
    assert_eq!(&jpeg[..3], [0xFF, 0xD8, 0xFF]);
    let j2c = std::fs::read(out.join("face_photo_original.j2c")).unwrap();
    assert_eq!(&j2c[..4], [0xFF, 0x4F, 0xFF, 0x51]);
}

#[test]
fn exit_entry_permit_3x30() {
    let doc = read_ok("exit-entry-permit", &[]);
    assert_eq!(doc["document"], "exit_entry_permit");
    assert_eq!(doc["mrz"]["format"], "CS/CD");
    assert_eq!(doc["mrz"]["document_code"], "CS");
    assert_eq!(doc["id_number"], "C01234567");
    assert_eq!(doc["name"], "测试乙");
    assert_eq!(doc["birth_date"], "1990-01-01");
    assert_eq!(doc["valid_until"], "2030-01-01");
    assert_eq!(doc["issuer"], "公安部出入境管理局");
    all_pass(&doc);
}

#[test]
fn wrong_mrz_and_card_pulled_mid_read_are_reported() {
    let dir = tempfile::tempdir().unwrap();

    let pcscd = Pcscd::start(&dir.path().join("wrong-mrz"));
    let emulator = pcscd.emulator(&[]);
    let (code, _, stderr) = pcscd.read_document(&[
        "--doc-number",
        "E12345678",
        "--birth",
        "850316",
        "--expiry",
        "330101",
    ]);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains("authentication failed") && stderr.contains("check the MRZ"),
        "{stderr}"
    );
    // The same card with the right MRZ reads.
    let key = emulator.key_args();
    let (code, _, stderr) =
        pcscd.read_document(&key.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{stderr}");

    let pcscd = Pcscd::start(&dir.path().join("pulled"));
    let emulator = pcscd.emulator(&["--remove-after-apdus", "20"]);
    let key = emulator.key_args();
    let (code, _, stderr) =
        pcscd.read_document(&key.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(6), "{stderr}");
    assert!(
        stderr.contains("during the read") && stderr.contains("put it back"),
        "{stderr}"
    );
    let end = emulator.end(Duration::from_secs(5)).unwrap();
    assert_eq!(end["end"], "removed", "{end}");
    assert_eq!(end["apdus"], 21, "{end}");

    // A bank card or staff badge: not a travel document (exit 7); no such reader: exit 4.
    let _badge = pcscd.emulator_on(1, &["--not-a-document"]);
    let out = pcscd
        .countersign()
        .args(["read-document", "--reader", READER_2, "--wait", "15"])
        .args(&key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("not an eMRTD"), "{stderr}");
    let out = pcscd
        .countersign()
        .args(["read-document", "--reader", "ACR1252"])
        .args(&key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no reader matches") && stderr.contains(READER),
        "{stderr}"
    );
}

#[test]
fn tampered_group_and_foreign_csca_fail_passive_authentication_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(&dir.path().join("tampered"));
    let csca = dir.path().join("csca.pem");
    let emulator = pcscd.emulator(&["--tamper-dg", "2", "--csca-out", csca.to_str().unwrap()]);
    let key = emulator.key_args();
    let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
    args.extend(["--csca", csca.to_str().unwrap()]);
    let (code, doc, stderr) = pcscd.read_document(&args);
    assert_eq!(
        code,
        Some(0),
        "a failed check is reported, the document kept: {stderr}"
    );
    let hashes = check(&doc, "sod_hashes");
    assert_eq!(hashes["result"], "fail");
    assert!(
        hashes["detail"]
            .as_str()
            .unwrap()
            .contains("DG2 does not match"),
        "{hashes}"
    );
    assert_eq!(check(&doc, "sod_signature")["result"], "pass");

    let pcscd = Pcscd::start(&dir.path().join("foreign"));
    let foreign = pcscd.foreign_csca();
    let emulator = pcscd.emulator(&[]);
    let key = emulator.key_args();
    let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
    args.extend(["--csca", foreign.to_str().unwrap()]);
    let (code, doc, stderr) = pcscd.read_document(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let chain = check(&doc, "csca_chain");
    assert_eq!(chain["result"], "fail", "{chain}");
    assert!(
        chain["detail"].as_str().unwrap().contains("does not chain"),
        "{chain}"
    );
    assert_eq!(check(&doc, "sod_hashes")["result"], "pass");
}

/// Chip authentication through pcscd and vpcd: passes after BAC (brainpoolP256r1, 3DES with
/// MSE:Set KAT) and after PACE (P-256, AES-128); a cloned chip fails it, with a warning on stderr,
/// and the document is still read (the chip opened again) with every other check passing; a
/// document without DG14 says `not_offered`, and `--no-chip-auth` says `skipped`.
#[test]
fn chip_authentication_passes_and_a_cloned_chip_fails_with_a_warning() {
    for (extra, detail) in [
        (
            &["--ca-curve", "brainpoolP256r1", "--ca-cipher", "3DES"][..],
            "passed: ECDH brainpoolP256r1 3DES",
        ),
        (
            &["--pace-only", "--pace-curve", "brainpoolP256r1"][..],
            "passed: ECDH P-256 AES-128",
        ),
    ] {
        let doc = read_ok("passport-jpeg", extra);
        assert_eq!(
            check(&doc, "chip_authentication")["detail"],
            detail,
            "{doc}"
        );
        all_pass(&doc);
        assert!(roles(&doc).contains(&("dg14".into(), "application/octet-stream".into())));
    }

    for (extra, protocol) in [
        (&["--cloned-chip"][..], "BAC"),
        (
            &["--cloned-chip", "--pace-only", "--ca-cipher", "AES-256"][..],
            "PACE",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pcscd = Pcscd::start(dir.path());
        let csca = dir.path().join("csca.pem");
        let mut args = vec!["--csca-out", csca.to_str().unwrap()];
        args.extend_from_slice(extra);
        let emulator = pcscd.emulator(&args);
        assert_eq!(emulator.ready["cloned_chip"], true);
        let key = emulator.key_args();
        let mut read_args: Vec<&str> = key.iter().map(String::as_str).collect();
        read_args.extend(["--csca", csca.to_str().unwrap()]);
        let (code, doc, stderr) = pcscd.read_document(&read_args);
        assert_eq!(code, Some(0), "the clone is read and reported: {stderr}");
        assert_eq!(doc["access_protocol"], protocol);
        let ca = check(&doc, "chip_authentication");
        assert_eq!(ca["result"], "fail", "{ca}");
        assert!(
            ca["detail"].as_str().unwrap().starts_with(
                "failed: the chip does not hold the private key of its DG14 public key (possible clone)"
            ),
            "{ca}"
        );
        assert_eq!(doc["read"]["chip_authentication"], "failed");
        assert!(
            stderr.contains("WARNING: chip authentication failed")
                && stderr.contains("possible clone"),
            "{stderr}"
        );
        // Everything else was read and verifies: the files are the genuine document's.
        for c in doc["checks"].as_array().unwrap() {
            if c["name"] != "chip_authentication" && c["name"] != "active_authentication" {
                assert_eq!(c["result"], "pass", "{c}");
            }
        }
        assert_eq!(doc["id_number"], "E12345678");
        let roles = roles(&doc);
        for role in ["face_photo", "dg1", "dg2", "dg11", "dg12", "dg14"] {
            assert!(roles.iter().any(|(r, _)| r == role), "{role}: {roles:?}");
        }
    }

    let doc = read_ok("exit-entry-permit", &["--no-chip-auth"]);
    let ca = check(&doc, "chip_authentication");
    assert_eq!(ca["result"], "unknown");
    assert_eq!(
        ca["detail"],
        "not_offered: the chip has no DG14 (neither EF.COM nor EF.SOD lists it)"
    );

    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let emulator = pcscd.emulator(&[]);
    let key = emulator.key_args();
    let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
    args.push("--no-chip-auth");
    let (code, doc, stderr) = pcscd.read_document(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        check(&doc, "chip_authentication")["detail"],
        "skipped: chip authentication was turned off for this read (the chip has DG14)"
    );
    assert_eq!(doc["read"]["chip_authentication_apdus"], 0);
    assert!(!roles(&doc).iter().any(|(r, _)| r == "dg14"));
}

/// PACE-only documents (BAC refused with 6A88) on brainpoolP256r1 and NIST P-256 read through
/// pcscd and vpcd with PACE: the output names the protocol and its parameters, passive
/// authentication passes; the CAN opens the chip too.
#[test]
fn pace_only_documents_on_both_curves_read_with_pace() {
    for (curve, cipher, document) in [
        ("brainpoolP256r1", "AES-128", "passport-jpeg"),
        ("P-256", "AES-256", "exit-entry-permit"),
    ] {
        let doc = read_ok(
            document,
            &[
                "--pace-only",
                "--pace-curve",
                curve,
                "--pace-cipher",
                cipher,
            ],
        );
        assert_eq!(doc["access_protocol"], "PACE", "{doc}");
        assert_eq!(doc["read"]["secure_messaging"], cipher);
        assert_eq!(
            doc["read"]["pace"],
            format!("ECDH-GM {curve} {cipher}").as_str()
        );
        assert_eq!(
            check(&doc, "pace")["detail"],
            format!("ECDH-GM {curve} {cipher}, MRZ password").as_str()
        );
        all_pass(&doc);
    }
    // The card access number instead of the MRZ (3DES secure messaging after PACE).
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let emulator = pcscd.emulator(&[
        "--pace-only",
        "--pace-curve",
        "brainpoolP256r1",
        "--pace-cipher",
        "3DES",
        "--can",
        "480173",
    ]);
    assert_eq!(emulator.ready["can"], "480173");
    let key = emulator.key_args();
    let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
    args.extend(["--can", "480173"]);
    let (code, doc, stderr) = pcscd.read_document(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(doc["access_protocol"], "PACE");
    assert_eq!(doc["read"]["secure_messaging"], "3DES");
    assert_eq!(
        check(&doc, "pace")["detail"],
        "ECDH-GM brainpoolP256r1 3DES, CAN password"
    );
}

/// A wrong MRZ or CAN on a PACE-only chip is refused cleanly (exit 5, what to check), and the
/// same chip then reads with the right one.
#[test]
fn wrong_pace_passwords_are_rejected_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let emulator = pcscd.emulator(&["--pace-only", "--pace-curve", "brainpoolP256r1"]);
    let (code, doc, stderr) = pcscd.read_document(&[
        "--doc-number",
        "E12345678",
        "--birth",
        "850316",
        "--expiry",
        "330101",
    ]);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(doc.is_null());
    assert!(
        stderr.contains("authentication failed (status 6300)") && stderr.contains("check the MRZ"),
        "{stderr}"
    );
    let key = emulator.key_args();
    let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
    args.extend(["--can", "654321"]);
    let (code, _, stderr) = pcscd.read_document(&args);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("the CAN does not match"), "{stderr}");
    let (code, _, stderr) = pcscd.read_document(&["--can", "12345"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, doc, stderr) =
        pcscd.read_document(&key.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(doc["access_protocol"], "PACE");
}

/// OpenPACE (Debian's libeac: BSI TR-03110 in C, OpenSC's PACE library) as an independent
/// terminal: `drivers/icao9303/tests/peers/openpace_terminal.c` moves APDUs through pcscd and
/// lets OpenPACE run every PACE step and its own secure messaging against the emulator, on
/// brainpoolP256r1, P-256 and brainpoolP384r1, with the MRZ and the CAN, AES and 3DES.
#[test]
fn openpace_runs_pace_against_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = root.join("drivers/icao9303/tests/peers/openpace_terminal.c");
    let flags = std::process::Command::new("pkg-config")
        .args(["--cflags", "--libs", "libeac", "libpcsclite"])
        .output()
        .expect("pkg-config");
    assert!(
        flags.status.success(),
        "OpenPACE's development files are missing: run ./scripts/test, which installs libeac-dev ({})",
        String::from_utf8_lossy(&flags.stderr)
    );
    let exe = dir.path().join("openpace_terminal");
    let cc = std::process::Command::new("cc")
        .args(["-Wall", "-O1", "-o"])
        .arg(&exe)
        .arg(&source)
        .args(String::from_utf8_lossy(&flags.stdout).split_whitespace())
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    for (curve, cipher, password) in [
        ("brainpoolP256r1", "AES-128", "mrz"),
        ("P-256", "AES-256", "can"),
        ("brainpoolP384r1", "3DES", "mrz"),
    ] {
        let pcscd = Pcscd::start(&dir.path().join(curve));
        let emulator = pcscd.emulator(&[
            "--pace-only",
            "--pace-curve",
            curve,
            "--pace-cipher",
            cipher,
            "--can",
            "802417",
        ]);
        let r = &emulator.ready;
        let secret = if password == "mrz" {
            icao9303::MrzKey::new(
                r["document_number"].as_str().unwrap(),
                r["birth_date"].as_str().unwrap(),
                r["expiry_date"].as_str().unwrap(),
            )
            .unwrap()
            .mrz_information()
        } else {
            "802417".into()
        };
        let out = std::process::Command::new(&exe)
            .env("PCSCLITE_CSOCK_NAME", &pcscd.socket)
            .args([READER, password, &secret])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{curve} {cipher} {password}: {stdout}{stderr}\n--- emulator ---\n{}",
            emulator.proc.stderr()
        );
        // EF.COM's first bytes, read under OpenPACE's secure messaging: tag 60, LDS 1.7.
        let last = stdout.lines().last().unwrap_or_default();
        assert!(last.starts_with("OK id-PACE-ECDH-GM-"), "{stdout}");
        assert!(last.contains(" 60"), "{stdout}");
        eprintln!("OpenPACE against the emulator, {curve} {cipher} {password}: {last}");
        // A wrong password: OpenPACE's token is refused by the chip.
        let out = std::process::Command::new(&exe)
            .env("PCSCLITE_CSOCK_NAME", &pcscd.socket)
            .args([READER, "can", "000000"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("(tokens) answered 6300"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Read time of a 20 KB DG2 through pcscd and vpcd (docs/performance.md, "Travel documents").
#[test]
fn read_time_of_a_20_kb_dg2() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let mut runs = Vec::new();
    let emulator = pcscd.emulator(&["--face-bytes", "20000"]);
    let dg2 = emulator.ready["dg2_bytes"].as_u64().unwrap();
    assert!(dg2 >= 20_000, "{dg2}");
    let key = emulator.key_args();
    for _ in 0..5 {
        let (code, doc, stderr) =
            pcscd.read_document(&key.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, Some(0), "{stderr}");
        runs.push((
            doc["read"]["ms"].as_u64().unwrap(),
            doc["read"]["apdus"].as_u64().unwrap(),
            dg2,
        ));
    }
    runs.sort();
    let (ms, apdus, dg2) = runs[runs.len() / 2];
    eprintln!(
        "travel document read through pcscd+vpcd: DG2 {dg2} bytes, whole read {apdus} APDUs, median {ms} ms (runs: {:?})",
        runs.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    // BAC (2) + EF.CardAccess and SELECT (2) + per file SELECT + head + 0xDF blocks.
    assert!((100..=130).contains(&apdus), "{apdus}");
    assert!(ms < 5_000, "{ms} ms");

    // The same card with chip authentication skipped, alternating, and CA's own share.
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..5 {
        for skip in [false, true] {
            let mut args: Vec<&str> = key.iter().map(String::as_str).collect();
            if skip {
                args.push("--no-chip-auth");
            }
            let (code, doc, stderr) = pcscd.read_document(&args);
            assert_eq!(code, Some(0), "{stderr}");
            let read = &doc["read"];
            let run = (
                read["ms"].as_u64().unwrap(),
                read["apdus"].as_u64().unwrap(),
                read["chip_authentication_ms"].as_u64().unwrap(),
                read["chip_authentication_apdus"].as_u64().unwrap(),
            );
            if skip { &mut without } else { &mut with }.push(run);
        }
    }
    with.sort();
    without.sort();
    let (ca_ms, ca_apdus) = (with[2].0, with[2].1);
    let mut ca_only: Vec<u64> = with.iter().map(|r| r.2).collect();
    ca_only.sort();
    eprintln!(
        "chip authentication (P-256, AES-128, after BAC) through pcscd+vpcd: whole read {ca_apdus} APDUs, median {ca_ms} ms; skipped: {} APDUs, median {} ms; CA's part {} APDUs, median {} ms",
        without[2].1, without[2].0, with[2].3, ca_only[2]
    );
    // DG14 (SELECT, head, one block), MSE:Set AT, GENERAL AUTHENTICATE, SELECT and READ BINARY
    // under the new keys.
    assert!(with.iter().all(|r| r.3 == 7), "{with:?}");
    assert!(without.iter().all(|r| r.3 == 0), "{without:?}");
    assert_eq!(ca_apdus, without[2].1 + 7);

    // The same document PACE-only on each curve: PACE's 5 APDUs instead of BAC's 2, and the
    // time of the access step alone.
    for curve in ["brainpoolP256r1", "P-256"] {
        let pcscd = Pcscd::start(&dir.path().join(curve));
        let emulator = pcscd.emulator(&[
            "--face-bytes",
            "20000",
            "--pace-only",
            "--pace-curve",
            curve,
        ]);
        let key = emulator.key_args();
        let mut runs = Vec::new();
        for _ in 0..5 {
            let (code, doc, stderr) =
                pcscd.read_document(&key.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(code, Some(0), "{stderr}");
            assert_eq!(doc["access_protocol"], "PACE");
            let read = &doc["read"];
            runs.push((
                read["ms"].as_u64().unwrap(),
                read["apdus"].as_u64().unwrap(),
                read["access_ms"].as_u64().unwrap(),
                read["access_apdus"].as_u64().unwrap(),
            ));
        }
        runs.sort();
        let (pace_ms, pace_apdus, access_ms, access_apdus) = runs[runs.len() / 2];
        eprintln!(
            "PACE ({curve}, AES-128) read through pcscd+vpcd: whole read {pace_apdus} APDUs, median {pace_ms} ms; access step {access_apdus} APDUs, {access_ms} ms (runs: {:?})",
            runs.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>()
        );
        // 3 APDUs more than BAC; EF.SOD's length (its signature's DER) moves a block boundary
        // now and then.
        assert!(
            (apdus + 2..=apdus + 4).contains(&pace_apdus),
            "{pace_apdus} vs {apdus}"
        );
        assert_eq!(
            access_apdus, 7,
            "EF.CardAccess, Set AT, 4 GENERAL AUTHENTICATE, SELECT"
        );
        assert!(pace_ms < 5_000, "{pace_ms} ms");
    }
}

/// The daemon watches two readers at once, reads each document presented once its MRZ arrives
/// (from the inbox, one file per reader), and seals each into a record that opens, verifies and
/// satisfies the documented JSON Schema.
#[test]
fn travel_documents_read_at_the_counter_become_records() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let csca = dir.path().join("csca.pem");
    let csca_2 = dir.path().join("csca-2.pem");
    let inbox = dir.path().join("mrz");
    std::fs::create_dir_all(&inbox).unwrap();
    let setup = pcsc_station(dir.path(), &[&csca, &csca_2], &inbox);
    // Both CSCA files exist before the daemon loads them.
    // The permit's chip is a clone: its record says so, and the clerk is told.
    let permit = pcscd.emulator(&[
        "--document",
        "exit-entry-permit",
        "--csca-out",
        csca.to_str().unwrap(),
        "--cloned-chip",
        "--ca-cipher",
        "3DES",
    ]);
    let passport = pcscd.emulator_on(
        1,
        &[
            "--document",
            "passport-jp2",
            "--csca-out",
            csca_2.to_str().unwrap(),
            "--pace-only",
            "--pace-curve",
            "brainpoolP256r1",
        ],
    );
    let daemon = Proc::spawn(
        "daemon",
        pcscd
            .countersign()
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null()),
    );
    // The cards are on the readers; nothing is read until their MRZs arrive.
    std::thread::sleep(Duration::from_millis(800));
    assert!(committed_records(&setup).is_empty());
    for (reader, emulator) in [("counter", &permit), ("window", &passport)] {
        send_mrz(&inbox, reader, emulator);
    }
    let mut records = wait_for_records(&setup, 2, Duration::from_secs(30), &daemon);
    records.sort_by(|a, b| a.devices[0].name.cmp(&b.devices[0].name));
    let documents: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r.devices[0].name.as_str(),
                r.identities[0].document.as_str(),
            )
        })
        .collect();
    assert_eq!(
        documents,
        [("counter", "exit_entry_permit"), ("window", "passport")]
    );
    // The permit has BAC only; the passport is PACE-only: each record says how it was read.
    for (record, protocol) in records.iter().zip(["BAC", "PACE"]) {
        assert_eq!(record.devices[0].kind, "pcsc");
        let id = &record.identities[0];
        assert_eq!(id.access_protocol.as_deref(), Some(protocol));
        let pace = id.checks.iter().find(|c| c.name == "pace");
        assert_eq!(
            pace.and_then(|c| c.detail.as_deref()),
            (protocol == "PACE").then_some("ECDH-GM brainpoolP256r1 AES-128, MRZ password")
        );
        let ca = id
            .checks
            .iter()
            .find(|c| c.name == "chip_authentication")
            .unwrap();
        if protocol == "BAC" {
            assert_eq!(ca.result, CheckResult::Fail, "{ca:?}");
            assert!(
                ca.detail.as_deref().unwrap().contains("possible clone"),
                "{ca:?}"
            );
        } else {
            assert_eq!(
                ca.detail.as_deref(),
                Some("passed: ECDH P-256 AES-128"),
                "{ca:?}"
            );
        }
        for c in id
            .checks
            .iter()
            .filter(|c| c.name != "chip_authentication" && c.name != "active_authentication")
        {
            assert_eq!(c.result, CheckResult::Pass, "{c:?}");
        }
        let roles: Vec<&str> = record.evidence.iter().map(|e| e.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "face_photo",
                "face_photo_original",
                "sod",
                "dg1",
                "dg2",
                "dg11",
                "dg12",
                "dg14"
            ]
        );
        assert!(record.evidence.iter().all(|e| e.identity == Some(0)));
    }
    assert_eq!(records[1].evidence[1].media_type, "image/jp2");
    assert!(
        std::fs::read_dir(&inbox).unwrap().next().is_none(),
        "the MRZ files are taken"
    );

    // The records satisfy the published schema.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (i, record) in records.iter().enumerate() {
        let json = dir.path().join(format!("record-{i}.json"));
        std::fs::write(&json, serde_json::to_vec(record).unwrap()).unwrap();
        let out = std::process::Command::new(python())
            .arg("-c")
            .arg("import json, sys, jsonschema\njsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))")
            .arg(root.join("docs/record.schema.json"))
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = plain(&daemon.stderr());
    assert!(
        !log.contains("C01234567") && !log.contains("E12345678"),
        "logs mask document numbers:\n{log}"
    );
    assert!(log.contains("travel document read"), "{log}");
    assert!(
        log.contains(r#"failed_checks=["chip_authentication"]"#),
        "the clone's failed check is logged (and sent to the clerk's screen): {log}"
    );
}

/// One read of an emulated document: (read-document's JSON, its stderr, the APDUs the chip
/// received: GET RESPONSE pieces included, which the reader's own count leaves out).
fn read_counting(emulator_args: &[&str], read_args: &[&str]) -> (Value, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let csca = dir.path().join("csca.pem");
    let mut args = vec!["--csca-out", csca.to_str().unwrap()];
    args.extend_from_slice(emulator_args);
    let mut emulator = pcscd.emulator(&args);
    let key = emulator.key_args();
    let mut all: Vec<&str> = key.iter().map(String::as_str).collect();
    all.extend(["--csca", csca.to_str().unwrap()]);
    all.extend_from_slice(read_args);
    let (code, doc, stderr) = pcscd.read_document(&all);
    assert_eq!(
        code,
        Some(0),
        "{stderr}\n--- emulator ---\n{}",
        emulator.proc.stderr()
    );
    emulator.proc.sigterm();
    let end = emulator
        .end(Duration::from_secs(10))
        .expect("the emulator's end line");
    (doc, stderr, end["apdus"].as_u64().unwrap())
}

fn aa_detail(doc: &Value) -> &str {
    check(doc, "active_authentication")["detail"]
        .as_str()
        .unwrap()
}

/// The Chinese-passport profile (BAC, RSA-2048 Active Authentication, no DG14, a chip strict
/// about Le without extended length) through pcscd and vpcd: Active Authentication passes, its
/// 283-byte answer fetched with one GET RESPONSE, every other check passes (chip authentication
/// `not_offered`), the whole read under 2 s; the independent verifier (Python `cryptography`)
/// accepts the recorded exchange and refuses it altered. With extended length on both sides the
/// answer comes in one piece.
#[test]
fn the_chinese_passport_profile_passes_active_authentication() {
    let (doc, stderr, chip_apdus) = read_counting(&["--profile", "china-passport"], &[]);
    assert_eq!(doc["access_protocol"], "BAC");
    assert_eq!(
        aa_detail(&doc),
        "passed: RSA-2048 ISO/IEC 9796-2 scheme 1 SHA-1, random challenge",
        "{stderr}"
    );
    assert!(
        check(&doc, "chip_authentication")["detail"]
            .as_str()
            .unwrap()
            .starts_with("not_offered: ")
    );
    for c in doc["checks"].as_array().unwrap() {
        if c["name"] != "chip_authentication" {
            assert_eq!(c["result"], "pass", "{c}");
        }
    }
    assert!(roles(&doc).iter().any(|(r, _)| r == "dg15"));
    assert_eq!(doc["read"]["active_authentication"], "passed");
    assert_eq!(doc["read"]["active_authentication_apdus"], 5);
    assert_eq!(chip_apdus, doc["read"]["apdus"].as_u64().unwrap() + 1);
    let ms = doc["read"]["ms"].as_u64().unwrap();
    assert!(ms < 2_000, "the Chinese-passport read took {ms} ms");

    // The independent verifier checks the exchange as recorded, and refuses it altered.
    let dir = tempfile::tempdir().unwrap();
    let exchange = &doc["active_authentication"];
    assert_eq!(exchange["challenge_source"], "random");
    let ok = dir.path().join("aa.json");
    std::fs::write(&ok, exchange.to_string()).unwrap();
    let peer = |file: &std::path::Path| {
        std::process::Command::new(python())
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/aa_verify.py"))
            .arg(file)
            .output()
            .unwrap()
    };
    let out = peer(&ok);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ok    exchange 0: RSA-2048 ISO/IEC 9796-2 scheme 1 sha1; random challenge"),
        "{text}"
    );
    let mut altered = exchange.clone();
    altered["challenge"] = "0000000000000000".into();
    let bad = dir.path().join("altered.json");
    std::fs::write(&bad, altered.to_string()).unwrap();
    let out = peer(&bad);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Extended length: reader and chip both take it, the answer comes whole.
    let (doc, stderr, chip_apdus) = read_counting(
        &[
            "--document",
            "passport-j2k",
            "--no-chip-auth",
            "--active-auth",
            "RSA-2048",
            "--strict-le",
        ],
        &["--extended-length"],
    );
    assert!(aa_detail(&doc).starts_with("passed: RSA-2048"), "{stderr}");
    assert_eq!(chip_apdus, doc["read"]["apdus"].as_u64().unwrap());
}

/// An Active Authentication clone fails with a warning and is still read; a clone bringing its
/// own DG15 and a genuine chip under a broken EF.SOD signature are `not_trusted`; the Hong Kong
/// profile (PACE, ECDSA P-256) passes.
#[test]
fn active_authentication_clones_untrusted_keys_and_the_hong_kong_profile() {
    let (doc, stderr, _) = read_counting(&["--profile", "china-passport", "--aa-cloned"], &[]);
    let aa = check(&doc, "active_authentication");
    assert_eq!(aa["result"], "fail", "{aa}");
    assert!(
        aa_detail(&doc).starts_with(
            "failed: the chip does not hold the private key of its DG15 public key (possible clone)"
        ),
        "{aa}"
    );
    assert!(
        stderr.contains("WARNING: Active Authentication failed")
            && stderr.contains("possible clone"),
        "{stderr}"
    );
    assert_eq!(doc["id_number"], "E12345678");
    for role in ["face_photo", "dg1", "dg2", "dg11", "dg12", "dg15"] {
        assert!(roles(&doc).iter().any(|(r, _)| r == role), "{role}");
    }

    for fault in ["--aa-own-dg15", "--break-sod-signature"] {
        let (doc, stderr, _) = read_counting(&["--profile", "china-passport", fault], &[]);
        let aa = check(&doc, "active_authentication");
        assert_eq!(aa["result"], "fail", "{fault}: {aa}");
        assert!(
            aa_detail(&doc).starts_with("not_trusted: EF.SOD's signature does not verify")
                && aa_detail(&doc).contains("the answer verifies under DG15's key"),
            "{fault}: {aa}"
        );
        assert_eq!(check(&doc, "sod_signature")["result"], "fail", "{fault}");
        assert!(
            stderr.contains("WARNING: Active Authentication not_trusted"),
            "{stderr}"
        );
    }

    let (doc, stderr, _) = read_counting(&["--profile", "hong-kong"], &[]);
    assert_eq!(doc["access_protocol"], "PACE");
    assert_eq!(
        aa_detail(&doc),
        "passed: ECDSA P-256 SHA-256, random challenge",
        "{stderr}"
    );
    assert_eq!(doc["active_authentication"]["ecdsa_hash"], "SHA-256");
    assert!(roles(&doc).iter().any(|(r, _)| r == "dg14"));
}

/// The daemon binds each Active Authentication challenge to the station's chain: a Chinese
/// passport read first (no record yet), then a Hong Kong passport whose challenge is bound to the
/// first record. `countersign verify` re-checks both offline from the records alone and finds the
/// bound record in the set; the independent verifier re-derives both challenges and checks both
/// signatures; a record's exchange altered fails `verify`.
#[test]
fn the_daemon_binds_active_authentication_to_the_chain_and_verify_rechecks_it() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start(dir.path());
    let csca = dir.path().join("csca.pem");
    let inbox = dir.path().join("mrz");
    std::fs::create_dir_all(&inbox).unwrap();
    let setup = pcsc_station(dir.path(), &[&csca], &inbox);
    let china = pcscd.emulator(&[
        "--profile",
        "china-passport",
        "--csca-out",
        csca.to_str().unwrap(),
    ]);
    let hong_kong = pcscd.emulator_on(1, &["--profile", "hong-kong"]);
    let daemon = Proc::spawn(
        "daemon",
        pcscd
            .countersign()
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null()),
    );
    send_mrz(&inbox, "counter", &china);
    wait_for_records(&setup, 1, Duration::from_secs(30), &daemon);
    send_mrz(&inbox, "window", &hong_kong);
    let records = wait_for_records(&setup, 2, Duration::from_secs(30), &daemon);
    let exchanges: Vec<_> = records
        .iter()
        .map(|r| r.identities[0].active_authentication.clone().unwrap())
        .collect();
    assert_eq!(exchanges[0].challenge_source, "chain");
    assert_eq!(
        exchanges[0].bound_seq, None,
        "the station had no record yet"
    );
    assert_eq!(exchanges[1].bound_seq, Some(records[0].seq));
    assert_eq!(exchanges[1].bound_record, records[1].prev);
    assert_eq!(
        exchanges[1].station.as_deref(),
        Some(records[1].station.as_str())
    );
    for r in &records {
        let aa = r.identities[0]
            .checks
            .iter()
            .find(|c| c.name == "active_authentication")
            .unwrap();
        assert_eq!(aa.result, CheckResult::Pass, "{aa:?}");
    }

    // The wire forms, as a case system archives them, for `countersign verify`.
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(archive.join("records")).unwrap();
    std::fs::create_dir_all(archive.join("blobs")).unwrap();
    let outbox = countersign::outbox::Outbox::open(&setup.outbox).unwrap();
    let pending = outbox.oldest(100).unwrap();
    for p in &pending {
        std::fs::write(
            archive.join(format!("records/{}.jwe", p.record_id)),
            &p.wire,
        )
        .unwrap();
        for (blob_id, wire) in outbox.blobs(&p.record_id).unwrap() {
            std::fs::write(archive.join(format!("blobs/{blob_id}.jwe")), wire).unwrap();
        }
    }
    let verify = |path: &std::path::Path| {
        let out = std::process::Command::new(bin())
            .args(["verify", "--station-key"])
            .arg(&setup.public_key)
            .arg("--decrypt-key")
            .arg(&setup.decrypt_key)
            .arg(path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = verify(&archive);
    assert!(ok, "{text}");
    let aa_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("aa    ")).collect();
    assert_eq!(aa_lines.len(), 2, "{text}");
    assert!(
        aa_lines[0].contains("RSA-2048 ISO/IEC 9796-2 scheme 1 SHA-1")
            && aa_lines[0].contains("before its first record"),
        "{text}"
    );
    assert!(
        aa_lines[1].contains("ECDSA P-256 SHA-256")
            && aa_lines[1].contains(&format!(
                "challenge bound to record {}, which is in this set",
                records[0].seq
            )),
        "{text}"
    );

    // The independent verifier on the decrypted records, which satisfy the published schema.
    let json = dir.path().join("records.json");
    std::fs::write(&json, serde_json::to_vec(&records).unwrap()).unwrap();
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/record.schema.json");
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg("import json, sys, jsonschema\nfor r in json.load(open(sys.argv[2])): jsonschema.validate(r, json.load(open(sys.argv[1])))")
        .arg(&schema)
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(python())
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/aa_verify.py"))
        .arg(&json)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 exchange(s) checked: 0 failed"), "{text}");
    assert!(
        text.contains("ECDSA secp256r1 SHA-256; challenge derived from record"),
        "{text}"
    );

    // A record whose exchange does not verify is reported by `verify`: the same station signs a
    // record carrying the first exchange with the second's signature.
    let mut forged = records[0].clone();
    let mut aa = exchanges[0].clone();
    aa.signature = exchanges[1].signature.clone();
    forged.identities[0].active_authentication = Some(aa);
    forged.record_id = "forged".into();
    let keys = setup.public_key.parent().unwrap();
    let station_key = countersign::record::keys::load_private(&keys.join("station.jwk")).unwrap();
    let recipient = countersign::record::keys::load_recipient(
        &setup
            .decrypt_key
            .parent()
            .unwrap()
            .join("case-system.pub.jwk"),
    )
    .unwrap();
    let wire = countersign::record::seal(&forged, &station_key, &recipient).unwrap();
    let lone = dir.path().join("forged");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::write(lone.join("forged.jwe"), wire).unwrap();
    let (ok, text) = verify(&lone);
    assert!(
        !ok && text.contains("FAIL  active authentication") && text.contains("does not verify"),
        "{text}"
    );
}

/// PACE-CAM through pcscd and vpcd: the chip is authenticated during PACE (the
/// chip_authentication check names it, nothing more is sent for it); a CAM clone fails with the
/// warning and is still read.
#[test]
fn pace_cam_passes_and_a_cam_clone_fails() {
    let (doc, stderr, _) = read_counting(
        &[
            "--pace-cam",
            "--pace-curve",
            "brainpoolP256r1",
            "--ca-curve",
            "brainpoolP256r1",
        ],
        &[],
    );
    assert_eq!(doc["access_protocol"], "PACE", "{stderr}");
    assert_eq!(
        check(&doc, "pace")["detail"],
        "ECDH-CAM brainpoolP256r1 AES-128, MRZ password"
    );
    assert_eq!(
        check(&doc, "chip_authentication")["detail"],
        "passed: PACE-CAM on brainpoolP256r1 (chip authentication mapping)"
    );
    all_pass(&doc);
    assert_eq!(doc["read"]["chip_authentication_apdus"], 3, "DG14 only");

    let (doc, stderr, _) = read_counting(&["--pace-cam", "--cloned-chip"], &[]);
    let ca = check(&doc, "chip_authentication");
    assert_eq!(ca["result"], "fail", "{ca}");
    assert!(
        ca["detail"].as_str().unwrap().starts_with(
            "failed: the chip does not hold the private key of its DG14 public key (possible clone): PACE-CAM on P-256"
        ),
        "{ca}"
    );
    assert!(
        stderr.contains("WARNING: chip authentication failed"),
        "{stderr}"
    );
    assert_eq!(doc["id_number"], "E12345678");
}

/// What Active Authentication costs, through pcscd and vpcd: the Chinese-passport profile, and a
/// Chinese-like document with a 20 KB DG2 (BAC, RSA-2048 AA, a chip strict about Le), each read
/// alternately with and without Active Authentication (`--no-active-auth`) on the same card.
/// Prints the medians and AA's own share (DG15's read, INTERNAL AUTHENTICATE and its GET
/// RESPONSE, the RSA check); the whole read stays under 2 s. `COUNTERSIGN_AA_ROUNDS` (default 5)
/// sets the number of pairs (`docs/performance.md` has 21 with the release binary through
/// `COUNTERSIGN_TEST_BIN`).
#[test]
fn active_authentication_cost_through_pcscd() {
    let rounds: usize = std::env::var("COUNTERSIGN_AA_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        (
            "china-passport profile",
            &["--profile", "china-passport"][..],
        ),
        (
            "BAC, RSA-2048 AA, strict Le, DG2 20 KB",
            &[
                "--face-bytes",
                "20000",
                "--no-chip-auth",
                "--active-auth",
                "RSA-2048",
                "--strict-le",
                "--no-extended-length",
            ][..],
        ),
    ] {
        let pcscd = Pcscd::start(&dir.path().join(name.replace([' ', ','], "-")));
        let emulator = pcscd.emulator(args);
        let key = emulator.key_args();
        let (mut with, mut without, mut aa_ms, mut whole) = (vec![], vec![], vec![], vec![]);
        let (mut apdus_with, mut apdus_without) = (0, 0);
        for _ in 0..rounds {
            for skip in [false, true] {
                let mut read_args: Vec<&str> = key.iter().map(String::as_str).collect();
                if skip {
                    read_args.push("--no-active-auth");
                }
                let started = std::time::Instant::now();
                let (code, doc, stderr) = pcscd.read_document(&read_args);
                let elapsed = started.elapsed().as_millis() as u64;
                assert_eq!(code, Some(0), "{stderr}");
                let read = &doc["read"];
                let ms = read["ms"].as_u64().unwrap();
                if skip {
                    assert_eq!(read["active_authentication"], "skipped");
                    without.push(ms);
                    apdus_without = read["apdus"].as_u64().unwrap();
                } else {
                    assert_eq!(read["active_authentication"], "passed", "{doc}");
                    with.push(ms);
                    whole.push(elapsed);
                    aa_ms.push(read["active_authentication_ms"].as_u64().unwrap());
                    apdus_with = read["apdus"].as_u64().unwrap();
                }
            }
        }
        let (with_ms, without_ms, aa_part, whole_ms) =
            (median(with), median(without), median(aa_ms), median(whole));
        eprintln!(
            "active authentication through pcscd+vpcd, {name}: read {apdus_with} APDUs, median {with_ms} ms with AA (its part {aa_part} ms); {apdus_without} APDUs, median {without_ms} ms without; the whole command {whole_ms} ms ({rounds} pairs)"
        );
        // DG15 (SELECT, head, two blocks) and INTERNAL AUTHENTICATE (GET RESPONSE is the
        // reader's, below the count).
        assert_eq!(apdus_with, apdus_without + 5);
        assert!(whole_ms < 2_000, "the whole read took {whole_ms} ms");
    }
}
