use std::process::Command;

use crate::harness::*;

/// `countersign demo` delivers the records it promises, and what it wrote verifies with joserfc.
#[test]
fn demo_delivers_and_its_records_verify_with_joserfc() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo-out");
    let out = Command::new(bin())
        .args(["demo", "--cards", "2", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("signature verified").count(), 2, "{stdout}");
    assert!(stdout.contains("outbox empty"), "{stdout}");

    let verify = Command::new(python())
        .arg(peer_script("verify_records.py"))
        .arg(out_dir.join("records"))
        .arg(out_dir.join("keys/station.pub.jwk"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{report}"
    );
}
