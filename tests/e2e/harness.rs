//! Shared end-to-end harness: real peers started per test on free loopback ports.
//! - Mosquitto (the real broker), with a generated config;
//! - the GA 467 simulator on a pseudo-terminal (`countersign sim ga467`);
//! - the daemon (`countersign run`), the binary under test;
//! - an independent Python case system (paho-mqtt + joserfc + jwcrypto).
//!
//! Every child is killed when its guard drops, so a failing test leaves nothing running.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const STATION: &str = "it-counter";

/// The daemon under test: this build's, or the one `COUNTERSIGN_TEST_BIN` names (to show that a
/// new test fails on an older build).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("COUNTERSIGN_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_countersign").to_string())
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_program(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Python with the test peers' packages: `$COUNTERSIGN_TEST_PYTHON`, else `.venv/bin/python`
/// (created by `scripts/test`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("COUNTERSIGN_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: run ./scripts/test, which installs mosquitto and the Python test peers",
        venv.display()
    );
    venv
}

pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// A child process killed on drop; stderr is collected for failure messages.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            name: name.into(),
            child,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) {
        send_sigterm(self.child.id());
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

fn send_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on 127.0.0.1:{port} after {timeout:?}");
}

/// A real Mosquitto on a free loopback port, without persistence (a restart loses everything).
pub struct Mosquitto {
    pub port: u16,
    pub proc: Proc,
    conf: PathBuf,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        let port = free_port();
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )
        .unwrap();
        Self::start_with(port, conf)
    }

    fn start_with(port: u16, conf: PathBuf) -> Mosquitto {
        let program = find_program("mosquitto", &["/usr/sbin", "/usr/local/sbin"])
            .expect("mosquitto is not installed: run ./scripts/test, which installs it");
        let proc = Proc::spawn(
            "mosquitto",
            Command::new(program)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null()),
        );
        wait_for_port(port, Duration::from_secs(10));
        Mosquitto { port, proc, conf }
    }

    /// Stops the broker (SIGKILL) and starts a fresh one on the same port: everything the broker
    /// held in memory is gone.
    pub fn restart(self) -> Mosquitto {
        let Mosquitto {
            port,
            mut proc,
            conf,
        } = self;
        proc.kill9();
        Self::start_with(port, conf)
    }
}

/// The GA 467 simulator on a pty, reachable at `link`.
pub fn start_sim(link: &Path, present_ms: u64, absent_ms: u64) -> Proc {
    let proc = Proc::spawn(
        "sim",
        Command::new(bin())
            .args(["sim", "ga467", "--link"])
            .arg(link)
            .args([
                "--present-ms",
                &present_ms.to_string(),
                "--absent-ms",
                &absent_ms.to_string(),
            ])
            .stdout(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while link.symlink_metadata().is_err() {
        assert!(
            Instant::now() < deadline,
            "simulator link {} never appeared",
            link.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}

/// A station directory: key pair, config, state.
pub struct StationSetup {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub public_key: PathBuf,
    /// The case system's private key (records and blobs are encrypted to its public half).
    pub decrypt_key: PathBuf,
    /// The case system's signing key (receipts; commands when trusted): `<dir>/case-sign/`.
    pub case_sign: PathBuf,
    pub outbox: PathBuf,
}

/// `countersign keygen [extra] --out out`: a station key pair, or a recipient's with `--recipient`.
pub fn keygen(extra: &[&str], out: &Path) {
    let status = Command::new(bin())
        .arg("keygen")
        .args(extra)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "keygen {extra:?} failed");
}

pub fn setup_station(dir: &Path, broker_port: u16, reader_link: &Path) -> StationSetup {
    let keys = dir.join("keys");
    keygen(&[], &keys);
    let case_keys = dir.join("case-system");
    keygen(&["--recipient"], &case_keys);
    // The case system signs its answers; the station trusts that key for receipts only (tests
    // of commands add it to [commands] too: `trust_case_system_commands`).
    let case_sign = dir.join("case-sign");
    keygen(&[], &case_sign);
    let state = dir.join("state");
    let config = dir.join("countersign.toml");
    std::fs::write(
        &config,
        format!(
            r#"[station]
id = "{STATION}"
signing_key = "{key}"
state_dir = "{state}"

[crypto]
recipient_key = "{recipient}"

[acks]
trusted_keys = ["{case_sign_public}"]

[mqtt]
host = "127.0.0.1"
port = {broker_port}
keep_alive_secs = 5
# Short: a record published before the case system (re)subscribed is sent again soon.
ack_timeout_secs = 4
reconnect_max_secs = 1

[id_readers.desk]
port = "{link}"
baud = 115200
poll_interval_ms = 100
"#,
            key = keys.join("station.jwk").display(),
            recipient = case_keys.join("case-system.pub.jwk").display(),
            case_sign_public = case_sign.join("station.pub.jwk").display(),
            state = state.display(),
            link = reader_link.display(),
        ),
    )
    .unwrap();
    StationSetup {
        dir: dir.to_path_buf(),
        config,
        public_key: keys.join("station.pub.jwk"),
        decrypt_key: case_keys.join("case-system.jwk"),
        case_sign: case_sign.join("station.jwk"),
        outbox: state.join("outbox.sqlite"),
    }
}

pub fn start_daemon(setup: &StationSetup) -> Proc {
    Proc::spawn(
        "daemon",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null()),
    )
}

/// The Python case system; each received record arrives as a JSON value on `records`.
pub struct CaseSystem {
    pub proc: Proc,
    pub records: mpsc::Receiver<serde_json::Value>,
}

impl CaseSystem {
    /// Starts it for `setup`'s station, with its public key and the case-system private key.
    pub fn start(port: u16, setup: &StationSetup, out: Option<&Path>, ack: bool) -> CaseSystem {
        Self::start_signing(
            port,
            setup,
            &[&setup.public_key],
            &[&setup.decrypt_key],
            out,
            ack,
        )
    }

    /// As [`CaseSystem::start_with_keys`], signing its answers with `setup`'s case-system key.
    pub fn start_signing(
        port: u16,
        setup: &StationSetup,
        station_keys: &[&Path],
        decrypt_keys: &[&Path],
        out: Option<&Path>,
        ack: bool,
    ) -> CaseSystem {
        let sign = ["--sign-key".as_ref(), setup.case_sign.as_os_str()];
        Self::start_with_args(port, station_keys, decrypt_keys, out, ack, &sign)
    }

    /// Starts it with keyrings: every station key and case-system key it may meet (rotation).
    /// As [`CaseSystem::start`], its answers signed with jwcrypto instead of joserfc.
    pub fn start_jwcrypto(port: u16, setup: &StationSetup) -> CaseSystem {
        let sign = [
            "--sign-key".as_ref(),
            setup.case_sign.as_os_str(),
            "--signer".as_ref(),
            "jwcrypto".as_ref(),
        ];
        let (keys, decrypt) = ([setup.public_key.as_path()], [setup.decrypt_key.as_path()]);
        Self::start_with_args(port, &keys, &decrypt, None, true, &sign)
    }

    /// Unsigned answers (the format before receipts): only for stations that accept them.
    pub fn start_with_keys(
        port: u16,
        station_keys: &[&Path],
        decrypt_keys: &[&Path],
        out: Option<&Path>,
        ack: bool,
    ) -> CaseSystem {
        Self::start_with_args(port, station_keys, decrypt_keys, out, ack, &[])
    }

    fn start_with_args(
        port: u16,
        station_keys: &[&Path],
        decrypt_keys: &[&Path],
        out: Option<&Path>,
        ack: bool,
        extra: &[&std::ffi::OsStr],
    ) -> CaseSystem {
        let mut cmd = Command::new(python());
        cmd.arg(peer_script("case_system.py"))
            .args(["--port", &port.to_string(), "--station", STATION])
            .args(extra)
            .stdout(Stdio::piped());
        for key in station_keys {
            cmd.arg("--pubkey").arg(key);
        }
        for key in decrypt_keys {
            cmd.arg("--decrypt-key").arg(key);
        }
        if let Some(out) = out {
            cmd.arg("--out").arg(out);
        }
        if !ack {
            cmd.arg("--no-ack");
        }
        let mut proc = Proc::spawn("case system", &mut cmd);
        let stdout = proc.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let case = CaseSystem { proc, records: rx };
        // Wait until it is subscribed, so nothing published after this is missed.
        let first = case
            .records
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("case system did not subscribe: {}", case.proc.stderr()));
        assert_eq!(first["event"], "subscribed", "{first}");
        case
    }

    pub fn next_record(&self, timeout: Duration) -> Option<serde_json::Value> {
        self.records.recv_timeout(timeout).ok()
    }
}

/// Pending records and dead letters, read from the outbox file (WAL allows a reader beside the
/// daemon).
pub fn outbox_depth(path: &Path) -> (u64, u64) {
    let stats = countersign::outbox::Outbox::open(path)
        .and_then(|o| o.stats())
        .unwrap();
    (stats.depth, stats.dead_letters)
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

impl StationSetup {
    /// Appends TOML to the station's configuration (a table the generated file does not have).
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push('\n');
        config.push_str(text);
        std::fs::write(&self.config, config).unwrap();
    }

    /// Creates a new station key and a new case-system key under `tag` and points the
    /// configuration at them. Returns (new station public key, new case-system private key).
    pub fn rotate_keys(&self, tag: &str) -> (PathBuf, PathBuf) {
        self.rotate_keys_with(tag, "ed25519")
    }

    /// As `rotate_keys`, with the new station key of algorithm `alg` (`ed25519`, `p256`).
    pub fn rotate_keys_with(&self, tag: &str, alg: &str) -> (PathBuf, PathBuf) {
        let station_dir = self.dir.join(format!("keys-{tag}"));
        let case_dir = self.dir.join(format!("case-system-{tag}"));
        for (dir, extra) in [
            (&station_dir, vec!["--alg", alg]),
            (&case_dir, vec!["--recipient"]),
        ] {
            let mut cmd = Command::new(bin());
            cmd.arg("keygen").args(extra).arg("--out").arg(dir);
            assert!(cmd.stdout(Stdio::null()).status().unwrap().success());
        }
        let config = std::fs::read_to_string(&self.config).unwrap();
        let old_key = self.public_key.with_file_name("station.jwk");
        let old_recipient = self.decrypt_key.with_file_name("case-system.pub.jwk");
        let config = config
            .replace(
                &old_key.display().to_string(),
                &station_dir.join("station.jwk").display().to_string(),
            )
            .replace(
                &old_recipient.display().to_string(),
                &case_dir.join("case-system.pub.jwk").display().to_string(),
            );
        std::fs::write(&self.config, config).unwrap();
        (
            station_dir.join("station.pub.jwk"),
            case_dir.join("case-system.jwk"),
        )
    }
}

/// Whether the tests run as root (mount namespaces, chown to other users, scratch-root installs).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `GET path` on loopback: (status, body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
