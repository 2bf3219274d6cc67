//! Record interop in the other direction: records made by independent Python libraries (joserfc;
//! gmssl + cryptography for the GM profile) pass `countersign verify`, and tampering with them is
//! caught with the right reason.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::*;

fn make(profile: &str, out: &Path, n: u32) {
    let made = Command::new(python())
        .arg(peer_script("make_records.py"))
        .arg(profile)
        .arg(out)
        .arg(n.to_string())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

fn verify(out: &Path) -> (Output, String) {
    let result = Command::new(bin())
        .arg("verify")
        .arg("--station-key")
        .arg(out.join("keys/station.pub.jwk"))
        .arg("--decrypt-key")
        .arg(out.join("keys/case-system.jwk"))
        .arg(out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&result.stdout).to_string();
    (result, text)
}

fn records_in(out: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(out.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn python_made_records_verify_and_tampering_is_named() {
    for profile in ["standard", "gm"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(profile);
        make(profile, &out, 5);
        let (result, text) = verify(&out);
        assert!(result.status.success(), "{profile}: {text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("ok ")).count(),
            5,
            "{text}"
        );

        // Drop the third record: a gap, reported on the fourth.
        let files = records_in(&out);
        let third = std::fs::read(&files[2]).unwrap();
        std::fs::remove_file(&files[2]).unwrap();
        let (result, text) = verify(&out);
        assert_eq!(result.status.code(), Some(1), "{text}");
        assert!(text.contains("FAIL  gap"), "{profile}: {text}");
        std::fs::write(&files[2], &third).unwrap();

        // Replay the second record under another (later) name: a duplicate.
        let replay = out.join("records/ffffffff-ffff-7fff-bfff-ffffffffffff.jwe");
        std::fs::copy(&files[1], &replay).unwrap();
        let (_, text) = verify(&out);
        assert!(text.contains("FAIL  duplicate"), "{profile}: {text}");
        std::fs::remove_file(&replay).unwrap();

        // Swap two records' files: each name now holds the other record.
        let (a, b) = (
            std::fs::read(&files[0]).unwrap(),
            std::fs::read(&files[1]).unwrap(),
        );
        std::fs::write(&files[0], &b).unwrap();
        std::fs::write(&files[1], &a).unwrap();
        let (_, text) = verify(&out);
        assert!(
            text.contains("FAIL  file name mismatch"),
            "{profile}: {text}"
        );
        assert!(text.contains("FAIL  reordered"), "{profile}: {text}");
        std::fs::write(&files[0], &a).unwrap();
        std::fs::write(&files[1], &b).unwrap();

        // Flip a byte in a blob: an altered blob.
        let blob = std::fs::read_dir(out.join("blobs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&blob).unwrap();
        let at = bytes.len() - 40;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        std::fs::write(&blob, bytes).unwrap();
        let (_, text) = verify(&out);
        assert!(text.contains("FAIL  altered blob"), "{profile}: {text}");
    }
}

/// The GM demo's records open with gmssl (SM2 key transport, SM3withSM2) and cryptography
/// (SM4-GCM): the GM envelope is interoperable, not only self-consistent.
#[test]
fn gm_records_from_the_daemon_open_with_gmssl() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gm");
    let demo = Command::new(bin())
        .args(["demo", "--gm", "--cards", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let check = Command::new(python())
        .arg(peer_script("gm_check.py"))
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Two card records and the demo camera's two page records.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        4,
        "{text}"
    );
    let (result, text) = verify(&out);
    assert!(result.status.success(), "{text}");
}

/// The documented examples satisfy the documented JSON Schema (real records are checked against
/// it in the demo test).
#[test]
fn documented_examples_match_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = Command::new(python())
        .arg("-c")
        .arg(
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             for path in sys.argv[2:]:\n\
             \tjsonschema.validate(json.load(open(path)), schema)",
        )
        .arg(root.join("docs/record.schema.json"))
        .arg(root.join("docs/examples/capture-resident.json"))
        .arg(root.join("docs/examples/checkpoint.json"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
