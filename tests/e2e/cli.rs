use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::*;

fn countersign(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

#[test]
fn check_config_accepts_the_documented_example() {
    // The reference file and the ready examples (a broker off loopback, over TLS).
    for example in [
        "config/countersign.toml",
        "config/examples/window-counter.toml",
        "config/examples/mobile-kit.toml",
    ] {
        let path = format!("{}/{example}", env!("CARGO_MANIFEST_DIR"));
        // The examples name keys that do not exist here: check the file only.
        let out = countersign(&["check-config", "--no-environment", "--config", &path]);
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The reference file names no case-system key yet: it says that no record can leave.
        let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning")).collect();
        if example == "config/countersign.toml" {
            assert!(
                warnings.len() == 1 && warnings[0].contains("no record leaves the outbox"),
                "{example}: {stdout}"
            );
        } else {
            assert!(warnings.is_empty(), "{example}: {stdout}");
            assert!(
                stdout.contains("answers: receipts signed by 1 key(s) of acks.trusted_keys; unsigned answers refused"),
                "{example}: {stdout}"
            );
        }
    }
}

#[test]
fn check_config_exits_78_naming_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[station]\nid = \"w1\"\nsigning_key = \"/k\"\n\n[mqtt]\nport = 1883\nkeepalive = 3\n",
    )
    .unwrap();
    let out = countersign(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:7:1: key `mqtt.keepalive`", path.display());
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("keepalive"), "{err}");

    let out = countersign(&["check-config", "--config", "/nonexistent/countersign.toml"]);
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn keygen_refuses_to_overwrite_and_run_refuses_a_readable_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = countersign(&["keygen", "--out", keys.to_str().unwrap()]);
    assert!(out.status.success());
    let private = keys.join("station.jwk");
    let before = std::fs::read(&private).unwrap();
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = countersign(&["keygen", "--out", keys.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&private).unwrap(), before, "key untouched");

    let setup = setup_station(
        dir.path().join("s").as_path(),
        free_port(),
        &dir.path().join("tty"),
    );
    std::fs::set_permissions(
        setup.dir.join("keys/station.jwk"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = countersign(&["run", "--config", setup.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}
