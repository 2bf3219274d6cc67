//! The daemon as systemd runs it: sd_notify READY/STATUS/WATCHDOG/RELOADING/STOPPING over a real
//! `$NOTIFY_SOCKET`, SIGHUP reloads (live settings applied, restart-only ones reported and kept,
//! an invalid file refused), SIGTERM, the metrics endpoint; `check-config --print` with conf.d
//! drop-ins; `devices` on a machine without devices.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::harness_mqtt::TestPki;

/// The daemon's notifications, as systemd would receive them.
struct NotifySocket {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(path: &std::path::Path) -> NotifySocket {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            socket,
            seen: Vec::new(),
        }
    }

    /// Waits for a datagram containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str, timeout: Duration, daemon: &Proc) -> String {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                self.seen.push(msg.clone());
                if msg.contains(needle) {
                    return msg;
                }
            }
        }
        panic!(
            "no notification with {needle:?} in {timeout:?}; got {:?}\ndaemon: {}",
            self.seen,
            daemon.stderr()
        );
    }
}

fn signal(daemon: &Proc, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn notifies_systemd_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // No broker and no reader: READY must not wait for either.
    let setup = setup_station(dir.path(), free_port(), &dir.path().join("no-reader"));
    let metrics = free_port();
    setup.append_config(&format!("[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n"));
    let mut notify = NotifySocket::bind(&dir.path().join("notify.sock"));
    let mut daemon = Proc::spawn(
        "daemon",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("NOTIFY_SOCKET", dir.path().join("notify.sock"))
            .env("WATCHDOG_USEC", "1000000")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null()),
    );

    let ready = notify.wait_for("READY=1", Duration::from_secs(20), &daemon);
    assert!(ready.contains("STATUS="), "{ready}");
    assert!(ready.contains("reader desk"), "{ready}");
    assert!(ready.contains("outbox 0"), "{ready}");
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5), &daemon);

    let (status, body) = http_get(metrics, "/metrics").expect("metrics endpoint");
    assert_eq!(status, 200, "{body}");
    for line in [
        "countersign_build_info{version=",
        "countersign_ready 1",
        "countersign_cards_read_total 0",
        "countersign_outbox_records 0",
        "countersign_device_up{kind=\"reader\",device=\"desk\"} 0",
        "countersign_uplink_up 0",
        "countersign_reloads_total{result=\"applied\"} 0",
    ] {
        assert!(body.contains(line), "{line} missing from:\n{body}");
    }
    assert_eq!(http_get(metrics, "/live").unwrap().0, 200);
    assert_eq!(http_get(metrics, "/ready").unwrap().0, 200);
    assert_eq!(http_get(metrics, "/nothing").unwrap().0, 404);

    // A reload with live and restart-only changes: live ones apply (the endpoint moves to
    // another port), the broker port is reported and left.
    let original = std::fs::read_to_string(&setup.config).unwrap();
    let moved = free_port();
    let changed = original
        .replace(
            &format!("listen = \"127.0.0.1:{metrics}\""),
            &format!("listen = \"127.0.0.1:{moved}\""),
        )
        .replace("keep_alive_secs = 5", "keep_alive_secs = 6")
        + "\n[records]\ncheckpoint_every = 7\n\n[log]\nlevel = \"debug\"\n";
    std::fs::write(&setup.config, &changed).unwrap();
    signal(&daemon, "-HUP");
    notify.wait_for("RELOADING=1", Duration::from_secs(10), &daemon);
    let after = notify.wait_for("READY=1", Duration::from_secs(10), &daemon);
    assert!(
        after.contains("restart needed for: mqtt.keep_alive_secs"),
        "{after}"
    );
    wait_until(
        Duration::from_secs(10),
        "the endpoint on the new port",
        || http_get(moved, "/live").is_some_and(|(s, _)| s == 200),
    );
    assert!(http_get(metrics, "/live").is_none(), "old port closed");
    let (_, body) = http_get(moved, "/metrics").unwrap();
    assert!(
        body.contains("countersign_reloads_total{result=\"applied\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("countersign_restart_pending_settings 1"),
        "{body}"
    );
    let log = daemon.stderr();
    assert!(
        log.contains("reload: applied key=records.checkpoint_every"),
        "{log}"
    );
    assert!(log.contains("needs a restart"), "{log}");
    assert!(
        log.contains("DEBUG log level applied"),
        "log.level = debug applied live: {log}"
    );

    // An invalid file is refused; the daemon keeps running with what it has.
    std::fs::write(
        &setup.config,
        changed.replace("checkpoint_every = 7", "checkpoint_every = 0"),
    )
    .unwrap();
    signal(&daemon, "-HUP");
    let refused = notify.wait_for("reload refused", Duration::from_secs(10), &daemon);
    assert!(refused.contains("checkpoint_every"), "{refused}");
    assert!(
        refused.contains(&format!("{}:", setup.config.display())),
        "names the file: {refused}"
    );
    let (_, body) = http_get(moved, "/metrics").unwrap();
    assert!(
        body.contains("countersign_reloads_total{result=\"refused\"} 1"),
        "{body}"
    );
    assert!(daemon.child.try_wait().unwrap().is_none(), "still running");

    signal(&daemon, "-TERM");
    notify.wait_for("STOPPING=1", Duration::from_secs(10), &daemon);
    let status = daemon
        .wait_exit(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}: {}", daemon.stderr());
}

#[test]
fn check_config_prints_the_effective_config_with_dropins() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup_station(dir.path(), 1883, &dir.path().join("tty"));
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    // The hot folder must exist and be writable (check-config checks it).
    let scans = dir.path().join("scans");
    std::fs::create_dir(&scans).unwrap();
    // A broker off loopback needs [mqtt.tls] (its CA file must exist: check-config reads it).
    let pki = TestPki::generate(&dir.path().join("pki"));
    std::fs::write(
        dir.path().join("conf.d/50-site.toml"),
        format!(
            "[mqtt]\nhost = \"broker.example\"\n\n[mqtt.tls]\nca_file = \"{}\"\n\n\
             [folders.scans]\npath = \"{}\"\n",
            pki.ca.display(),
            scans.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config", "--print", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("conf.d/50-site.toml"), "{stdout}");
    assert!(stdout.contains("host = \"broker.example\""), "{stdout}");
    assert!(stdout.contains("[folders.scans]"), "{stdout}");
    assert!(
        stdout.contains("settle_ms = 2000"),
        "defaults shown: {stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys ok"));

    // The same device in two files: the error names the drop-in, line and column.
    std::fs::write(
        dir.path().join("conf.d/60-dup.toml"),
        "\n[id_readers.desk]\nport = \"/dev/x\"\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conf.d/60-dup.toml:2:13: key `id_readers.desk`"),
        "{err}"
    );

    // Keys are part of the check: a missing station key is exit 78 too.
    std::fs::remove_file(dir.path().join("conf.d/60-dup.toml")).unwrap();
    std::fs::remove_file(dir.path().join("keys/station.jwk")).unwrap();
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin())
        .args(["check-config", "--no-environment", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn devices_lists_what_is_there_and_marks_configured_devices() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let setup = setup_station(dir.path(), 1883, &link);
    let run = || {
        let out = Command::new(bin())
            .args(["devices", "--config"])
            .arg(&setup.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = run();
    for section in [
        "Serial ports",
        "USB ID card readers",
        "PC/SC readers",
        "Video devices",
        "SANE scanners",
        "Configured devices",
    ] {
        assert!(text.contains(section), "{section}: {text}");
    }
    let line = |text: &str| {
        text.lines()
            .find(|l| l.contains("id_readers.desk.port"))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert!(line(&text).ends_with("MISSING"), "{text}");

    // A simulated reader on a pseudo-terminal: the configured port is found.
    let _sim = start_sim(&link, 1000, 1000);
    let text = run();
    assert!(line(&text).ends_with("found"), "{text}");

    // Without a configuration it still lists the machine's devices.
    let out = Command::new(bin())
        .args(["devices", "--config", "/nonexistent/countersign.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("listing devices only"));
}
