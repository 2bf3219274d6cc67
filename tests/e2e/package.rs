//! The Debian package as an administrator gets it: its contents, an install with dpkg into a
//! scratch root (maintainer scripts included: sysusers creates the user there), the installed
//! binary checking the installed default configuration, and the installed unit through
//! `systemd-analyze verify` and `systemd-analyze security` (exposure at most 2.0).
//!
//! The package is built by `scripts/test` (`scripts/package --dev`: the debug build these tests
//! run, so CI builds nothing twice).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{bin, is_root};

/// The highest `systemd-analyze security` exposure accepted, in its 0-100 scale (2.0 shown).
const MAX_EXPOSURE: u32 = 20;

fn deb() -> PathBuf {
    let target = Path::new(bin()).parent().and_then(Path::parent).unwrap();
    let dir = target.join("debian");
    let version = env!("CARGO_PKG_VERSION");
    std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("countersign_{version}-")) && n.ends_with(".deb"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no countersign_{version}-*.deb in {}: run ./scripts/test (it builds the package with scripts/package --dev)",
                dir.display()
            )
        })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn package_contents() {
    let deb = deb();
    let list = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for path in [
        "./usr/bin/countersign",
        "./usr/lib/systemd/system/countersign.service",
        "./usr/lib/udev/rules.d/70-countersign.rules",
        "./usr/lib/sysusers.d/countersign.conf",
        "./usr/lib/tmpfiles.d/countersign.conf",
        "./usr/lib/modules-load.d/countersign.conf",
        "./usr/share/polkit-1/rules.d/60-countersign-pcscd.rules",
        "./var/lib/polkit-1/localauthority/10-vendor.d/60-countersign-pcscd.pkla",
        "./etc/countersign/countersign.toml",
        "./etc/countersign/conf.d/README",
        "./usr/share/doc/countersign/admin-guide.md",
        "./usr/share/doc/countersign/examples/window-counter.toml",
        "./usr/share/doc/countersign/examples/mobile-kit.toml",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(path)),
            "{path} missing from the package:\n{list}"
        );
    }
    let control = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb)));
    for field in ["Package: countersign", "Section: admin", "Depends: libc6"] {
        assert!(control.contains(field), "{field}:\n{control}");
    }
    let postinst = text(&run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("postinst")));
    for step in [
        "systemd-sysusers",
        "systemd-tmpfiles --create",
        "udevadm control --reload",
    ] {
        assert!(
            postinst.contains(step),
            "postinst lacks {step}:\n{postinst}"
        );
    }
    let size = std::fs::metadata(&deb).unwrap().len();
    eprintln!("package: {} ({} KiB)", deb.display(), size / 1024);
}

#[test]
fn package_installs_into_a_scratch_root_and_checks_its_own_config() {
    let deb = deb();
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", root.display())).args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ]);
        if !is_root() {
            cmd.arg("--force-not-root");
        }
        cmd.args(args);
        cmd
    };
    run(dpkg(&["--install"]).arg(&deb));

    // Maintainer scripts ran: the service user exists in the scratch root (sysusers), with its
    // device groups; the configuration is a conffile.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("countersign:x:"), "{passwd}");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("dialout:") && l.ends_with("countersign")),
        "{group}"
    );
    // The control socket's own group, apart from the hot-folder writers'.
    assert!(
        group.lines().any(|l| l.starts_with("countersign-control:")),
        "{group}"
    );
    let conffiles =
        std::fs::read_to_string(root.join("var/lib/dpkg/info/countersign.conffiles")).unwrap();
    assert!(
        conffiles.contains("/etc/countersign/countersign.toml"),
        "{conffiles}"
    );

    // The installed binary accepts the installed default configuration...
    let installed = root.join("usr/bin/countersign");
    let config = root.join("etc/countersign/countersign.toml");
    run(Command::new(&installed)
        .args(["check-config", "--no-environment", "--config"])
        .arg(&config));
    // ...and, once keys exist (a drop-in points at them, as a site would), the full check.
    let keys = scratch.path().join("keys");
    run(Command::new(&installed)
        .args(["keygen", "--out"])
        .arg(&keys));
    run(Command::new(&installed)
        .args(["keygen", "--recipient", "--out"])
        .arg(&keys));
    std::fs::write(
        root.join("etc/countersign/conf.d/50-test.toml"),
        format!(
            "[station]\nsigning_key = \"{}\"\nstate_dir = \"{}\"\n\n[crypto]\nrecipient_key = \"{}\"\n",
            keys.join("station.jwk").display(),
            scratch.path().join("state").display(),
            keys.join("case-system.pub.jwk").display()
        ),
    )
    .unwrap();
    // The full check looks at the machine: the package's groups (sysusers wrote them into the
    // scratch root's /etc/group) and its hot folder (tmpfiles makes /var/lib/countersign/scans
    // on a real install). It runs in a private mount namespace where the scratch root's
    // /etc/group and /var/lib stand in for the host's; that needs root.
    if is_root() {
        std::fs::create_dir_all(root.join("var/lib/countersign/scans")).unwrap();
        let out = run(Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"mount --bind "$1/etc/group" /etc/group && mount --bind "$1/var/lib" /var/lib && exec "$1/usr/bin/countersign" check-config --config "$1/etc/countersign/countersign.toml""#,
            )
            .arg("sh")
            .arg(&root));
        let report = text(&out);
        assert!(report.contains("2 file(s), keys ok"), "{report}");
    } else {
        eprintln!("package: the full check-config is skipped (needs root for a mount namespace)");
    }
    for example in ["window-counter.toml", "mobile-kit.toml"] {
        run(Command::new(&installed)
            .args(["check-config", "--no-environment", "--config"])
            .arg(
                root.join("usr/share/doc/countersign/examples")
                    .join(example),
            ));
    }

    // The installed unit: systemd-analyze verify against the scratch root (with the host's
    // standard units for the targets it orders against) must pass without a single warning.
    let units = root.join("usr/lib/systemd/system");
    run(Command::new("cp")
        .arg("-an")
        .arg("/lib/systemd/system/.")
        .arg(&units));
    let out = run(Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .args(["verify", "countersign.service"]));
    let warnings = text(&out);
    assert!(
        !warnings.contains("countersign"),
        "systemd-analyze verify warns:\n{warnings}"
    );
    let unit = units.join("countersign.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(format!("--threshold={MAX_EXPOSURE}"))
        .arg(&unit)
        .output()
        .unwrap();
    let report = text(&out);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .to_string();
    eprintln!("{overall}");
    assert!(
        out.status.success(),
        "exposure above {}.{}:\n{report}",
        MAX_EXPOSURE / 10,
        MAX_EXPOSURE % 10
    );

    // Removal and purge: the conffile goes with the purge.
    run(&mut dpkg(&["--purge", "countersign"]));
    assert!(!installed.exists());
    assert!(!config.exists());
}
