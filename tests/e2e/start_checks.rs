//! Start-up refusals an administrator can act on (issue 13, defects 9 and 10): every secret file
//! that is not private (mode, symbolic link, owner), and every file or directory the daemon needs
//! that is missing or unusable, stops `check-config` and `run` with exit 78 (which the unit does
//! not restart) naming the configuration key and the file, before anything starts. And the
//! running daemon is not dumpable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::harness_mqtt::*;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Adds `extra` under `[mqtt]` and `tail` at the end of the station's configuration.
fn configure(setup: &StationSetup, mqtt_extra: &str, tail: &str) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let text = text.replace(
        "reconnect_max_secs = 1\n",
        &format!("reconnect_max_secs = 1\n{mqtt_extra}\n"),
    );
    std::fs::write(&setup.config, format!("{text}\n{tail}\n")).unwrap();
}

/// `check-config` and `run` (each wrapped by `wrap`, e.g. in a mount namespace) both exit 78,
/// `run` within 2 s, and both name every `needle`.
fn refused(case: &str, setup: &StationSetup, needles: &[&str], wrap: &[&str]) {
    for sub in ["check-config", "run"] {
        let mut cmd = Command::new(wrap.first().copied().unwrap_or(bin()));
        if !wrap.is_empty() {
            cmd.args(&wrap[1..]).arg(bin());
        }
        cmd.args([sub, "--config"])
            .arg(&setup.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(2) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{case}: `{sub}` still running after 2 s (it should refuse to start)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(
            status.code(),
            Some(78),
            "{case}: `{sub}` exit status; stderr:\n{err}"
        );
        for needle in needles {
            assert!(
                err.contains(needle),
                "{case}: `{sub}` does not name {needle:?}:\n{err}"
            );
        }
    }
}

fn station(dir: &Path) -> StationSetup {
    setup_station(dir, free_port(), &dir.join("no-reader"))
}

#[test]
fn secret_files_that_are_not_private_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();

    // The station key behind a symbolic link (even to a private file).
    let s = station(&dir.path().join("link"));
    let key = s.dir.join("keys/station.jwk");
    let real = s.dir.join("keys/real.jwk");
    std::fs::rename(&key, &real).unwrap();
    std::os::unix::fs::symlink(&real, &key).unwrap();
    refused(
        "symlinked station key",
        &s,
        &["station.signing_key", "station.jwk", "symbolic link"],
        &[],
    );

    // The session data key readable by others.
    let s = station(&dir.path().join("session"));
    let state = s.dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("session.key"), [7u8; 32]).unwrap();
    chmod(&state.join("session.key"), 0o644);
    refused("session key 0644", &s, &["session.key", "chmod 600"], &[]);

    // The MQTT password file readable by others.
    let s = station(&dir.path().join("password"));
    let pw = s.dir.join("mqtt-password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    chmod(&pw, 0o644);
    configure(
        &s,
        &format!("username = \"w\"\npassword_file = \"{}\"", pw.display()),
        "",
    );
    refused(
        "password file 0644",
        &s,
        &["mqtt.password_file", "mqtt-password", "chmod 600"],
        &[],
    );

    // The TLS client key readable by others.
    let s = station(&dir.path().join("tls"));
    let pki = TestPki::generate(&s.dir.join("pki"));
    chmod(&pki.client_key, 0o644);
    configure(&s, "", &pki.tls_table());
    refused(
        "TLS client key 0644",
        &s,
        &["mqtt.tls.client_key_file", "client.key", "chmod 600"],
        &[],
    );

    // A station key owned by another user (mode 0600 is not enough).
    if is_root() {
        let s = station(&dir.path().join("owner"));
        std::os::unix::fs::chown(s.dir.join("keys/station.jwk"), Some(65534), None).unwrap();
        refused(
            "station key owned by nobody",
            &s,
            &["station.signing_key", "station.jwk", "owned by uid 65534"],
            &[],
        );
    } else {
        eprintln!("skipped the other-owner case: chown to another user needs root");
    }
}

#[test]
fn files_and_folders_the_daemon_needs_are_checked_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let missing = |name: &str| dir.path().join("nowhere").join(name);

    let s = station(&dir.path().join("pw"));
    configure(
        &s,
        &format!(
            "username = \"w\"\npassword_file = \"{}\"",
            missing("password").display()
        ),
        "",
    );
    refused(
        "missing password file",
        &s,
        &["mqtt.password_file", "nowhere/password"],
        &[],
    );

    for (key, field) in [
        ("mqtt.tls.ca_file", "ca"),
        ("mqtt.tls.client_cert_file", "cert"),
        ("mqtt.tls.client_key_file", "key"),
    ] {
        let s = station(&dir.path().join(format!("tls-{field}")));
        let pki = TestPki::generate(&s.dir.join("pki"));
        let path = |which: &str, good: &Path| {
            if which == field {
                missing(&format!("{which}.pem"))
            } else {
                good.to_path_buf()
            }
        };
        configure(
            &s,
            "",
            &format!(
                "[mqtt.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                path("ca", &pki.ca).display(),
                path("cert", &pki.client_cert).display(),
                path("key", &pki.client_key).display()
            ),
        );
        let file = format!("nowhere/{field}.pem");
        refused(&format!("missing TLS {field}"), &s, &[key, &file], &[]);
    }

    let s = station(&dir.path().join("group"));
    configure(
        &s,
        "",
        "[session]\ncontrol_socket_group = \"no-such-group-for-countersign\"\n",
    );
    refused(
        "control socket group that does not exist",
        &s,
        &[
            "session.control_socket_group",
            "no-such-group-for-countersign",
        ],
        &[],
    );

    let s = station(&dir.path().join("trusted"));
    let bad = s.dir.join("case-system-command.pub.jwk");
    std::fs::write(&bad, "{ not a key").unwrap();
    configure(
        &s,
        "",
        &format!("[commands]\ntrusted_keys = [\"{}\"]\n", bad.display()),
    );
    refused(
        "trusted key that does not parse",
        &s,
        &["commands.trusted_keys", "case-system-command.pub.jwk"],
        &[],
    );

    let s = station(&dir.path().join("state-file"));
    std::fs::write(s.dir.join("state"), "").unwrap();
    refused(
        "state directory is a file",
        &s,
        &["station.state_dir", "not a directory"],
        &[],
    );

    let folder = |s: &StationSetup, path: &Path| {
        configure(
            s,
            "",
            &format!("[folders.scans]\npath = \"{}\"\n", path.display()),
        );
    };
    let s = station(&dir.path().join("no-folder"));
    folder(&s, &missing("inbox"));
    refused(
        "hot folder missing",
        &s,
        &["folders.scans.path", "nowhere/inbox"],
        &[],
    );

    let s = station(&dir.path().join("file-folder"));
    let file = s.dir.join("inbox");
    std::fs::write(&file, "").unwrap();
    folder(&s, &file);
    refused(
        "hot folder is a file",
        &s,
        &["folders.scans.path", "not a directory"],
        &[],
    );

    let s = station(&dir.path().join("ro-folder"));
    let inbox = s.dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    folder(&s, &inbox);
    if is_root() {
        // Root may write anywhere the mount allows: a read-only bind mount in a private mount
        // namespace stands for a folder the service user cannot write.
        let probe = Command::new("unshare")
            .args(["-m", "--propagation", "private", "true"])
            .status();
        if probe.map(|s| s.success()).unwrap_or(false) {
            let wrap = [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount --bind -o ro \"$0\" \"$0\" && exec \"$@\"",
                inbox.to_str().unwrap(),
            ];
            refused(
                "hot folder not writable",
                &s,
                &["folders.scans.path", "not writable"],
                &wrap,
            );
        } else {
            eprintln!("skipped the read-only folder case: no mount namespace (unshare -m) here");
        }
    } else {
        chmod(&inbox, 0o555);
        refused(
            "hot folder not writable",
            &s,
            &["folders.scans.path", "not writable"],
            &[],
        );
    }
}

/// The station's configuration with `host` as the broker (a documentation address: nothing here
/// ever connects to it).
fn with_host(setup: &StationSetup, host: &str, mqtt_extra: &str, tail: &str) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let text = text.replace("host = \"127.0.0.1\"", &format!("host = \"{host}\""));
    std::fs::write(&setup.config, text).unwrap();
    configure(setup, mqtt_extra, tail);
}

/// `check-config` (never `run`: it would connect) on a configuration that is accepted: its
/// stdout.
fn accepted(case: &str, setup: &StationSetup) -> String {
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{case}: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn plain_tcp_to_a_broker_off_loopback_needs_tls_or_an_explicit_setting() {
    let dir = tempfile::tempdir().unwrap();

    // Refused by `check-config` and `run` alike, before anything starts, naming the key, where
    // it is and what to do.
    for host in ["192.0.2.10", "broker.example", "localhost.localdomain"] {
        let s = station(&dir.path().join(format!("refused-{host}")));
        with_host(&s, host, "", "");
        let config = s.config.display().to_string();
        let text = std::fs::read_to_string(&s.config).unwrap();
        let line = 1 + text.lines().position(|l| l.starts_with("host =")).unwrap();
        let at = format!("{config}:{line}:1: key `mqtt.host`");
        refused(
            &format!("plain TCP to {host}"),
            &s,
            &[
                &at,
                host,
                "[mqtt.tls]",
                "ca_file",
                "mqtt.allow_plain_tcp = true",
            ],
            &[],
        );
    }

    // Allowed explicitly: accepted, with a warning that says what travels in clear.
    let s = station(&dir.path().join("allowed"));
    with_host(&s, "192.0.2.10", "allow_plain_tcp = true", "");
    let out = accepted("allowed", &s);
    let warning = out
        .lines()
        .find(|l| l.starts_with("warning: mqtt.allow_plain_tcp"))
        .unwrap_or_else(|| panic!("no warning:\n{out}"));
    for needle in ["192.0.2.10", "commands", "password", "in clear"] {
        assert!(warning.contains(needle), "{needle}: {warning}");
    }

    // TLS, or a broker on loopback: no warning, even with the setting on.
    let s = station(&dir.path().join("tls"));
    let pki = TestPki::generate(&s.dir.join("pki"));
    with_host(
        &s,
        "broker.example",
        "allow_plain_tcp = true",
        &pki.tls_table(),
    );
    let out = accepted("TLS", &s);
    assert!(!out.contains("warning"), "{out}");
    let s = station(&dir.path().join("loopback"));
    with_host(&s, "localhost", "allow_plain_tcp = true", "");
    let out = accepted("loopback", &s);
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn the_running_daemon_is_not_dumpable() {
    let dir = tempfile::tempdir().unwrap();
    let s = station(dir.path());
    let root = is_root();
    // /proc/<pid> of a process that is not dumpable belongs to root. Run as root, the daemon is
    // started as `nobody` so that the difference shows.
    let mut cmd = if root {
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(["run", "--config"])
        .arg(&s.config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null());
    let daemon = Proc::spawn("daemon", &mut cmd);
    wait_until(Duration::from_secs(20), "the station running", || {
        daemon.stderr().contains("station starting")
    });
    let status = Path::new("/proc")
        .join(daemon.child.id().to_string())
        .join("status");
    let text = std::fs::read_to_string(&status).unwrap();
    let uid_line = text.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().nth(2) != Some("0"),
        "the daemon runs as another user than root: {uid_line}"
    );
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&status).unwrap());
    assert_eq!(
        owner,
        0,
        "{} belongs to uid {owner}: the daemon is dumpable ({uid_line})",
        status.display()
    );
}
