use std::path::Path;
use std::process::Command;

use crate::harness::*;

fn verify(out_dir: &Path, target: &Path) -> std::process::Output {
    Command::new(bin())
        .arg("verify")
        .arg("--station-key")
        .arg(out_dir.join("keys/station.pub.jwk"))
        .arg("--decrypt-key")
        .arg(out_dir.join("keys/case-system.jwk"))
        .arg(target)
        .output()
        .unwrap()
}

/// `countersign demo` delivers the records it promises; what it wrote is decrypted and verified
/// by joserfc, passes `countersign verify`, and a tampered copy fails it.
#[test]
fn demo_records_decrypt_with_joserfc_and_pass_countersign_verify() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo-out");
    let out = Command::new(bin())
        .args(["demo", "--cards", "3", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three card records and the replayed camera's two page records.
    assert_eq!(stdout.matches("signature verified").count(), 5, "{stdout}");
    assert_eq!(stdout.matches("[page ").count(), 2, "{stdout}");
    assert!(stdout.contains("outbox empty"), "{stdout}");
    assert!(out_dir.join("keys/case-system.jwk").is_file());

    let python_check = Command::new(python())
        .arg(peer_script("verify_records.py"))
        .arg(out_dir.join("records"))
        .arg(out_dir.join("keys/station.pub.jwk"))
        .arg(out_dir.join("keys/case-system.jwk"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&python_check.stdout);
    assert!(
        python_check.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&python_check.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        5,
        "{report}"
    );

    let ok = verify(&out_dir, &out_dir);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        5,
        "{text}"
    );

    // Flip one byte of one record: verify must fail and say which record.
    let mut records: Vec<_> = std::fs::read_dir(out_dir.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    records.sort();
    let mut bytes = std::fs::read(&records[1]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&records[1], bytes).unwrap();
    let bad = verify(&out_dir, &out_dir);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    let stem = records[1]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains(&stem)),
        "{text}"
    );
}

/// `countersign demo --scenario marriage` seals one record with both parties and four pages,
/// and `countersign verify` accepts what it wrote.
#[test]
fn demo_marriage_scenario_seals_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("marriage");
    let out = Command::new(bin())
        .args(["demo", "--scenario", "marriage", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 identities, 4 pages"), "{stdout}");
    assert!(stdout.contains("foreign_permanent_2023"), "{stdout}");
    let ok = verify(&out_dir, &out_dir);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        1,
        "{text}"
    );
}
