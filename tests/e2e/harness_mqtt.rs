//! Harness additions for the uplink tests: a Mosquitto that can be stopped and started again on
//! the same port (TLS listener with rcgen certificates, password file, message size limit), a
//! station fed by a hot folder, and the reference consumer from `examples/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Certificates generated at test time: a CA, the broker's certificate for 127.0.0.1 and
/// localhost, and a client certificate (mutual TLS).
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here (a broker the station must not trust).
    pub other_ca: PathBuf,
}

impl TestPki {
    /// The station's `[mqtt.tls]` table for this PKI (CA, client certificate and key).
    pub fn tls_table(&self) -> String {
        format!(
            "[mqtt.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            self.ca.display(),
            self.client_cert.display(),
            self.client_key.display()
        )
    }

    pub fn generate(dir: &Path) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        std::fs::create_dir_all(dir).unwrap();
        let ca_params = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.distinguished_name.push(DnType::CommonName, name);
            p
        };
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params("countersign test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |names: Vec<String>, cn: &str, purpose: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![purpose];
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "broker",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_pem, client_key) = leaf(vec![], STATION, ExtendedKeyUsagePurpose::ClientAuth);
        let other_key = KeyPair::generate().unwrap();
        let other = ca_params("someone else").self_signed(&other_key).unwrap();
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        TestPki {
            ca: write("ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", server_pem),
            server_key: write("server.key", server_key),
            client_cert: write("client.pem", client_pem),
            client_key: {
                // A secret file: the daemon refuses one that group or others can read.
                let p = write("client.key", client_key);
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .unwrap();
                p
            },
            other_ca: write("other-ca.pem", other.pem()),
        }
    }
}

/// How a test broker is set up.
#[derive(Default)]
pub struct BrokerSetup<'a> {
    pub message_size_limit: Option<u64>,
    /// TLS listener; `require_client_cert` makes it mutual TLS.
    pub tls: Option<(&'a TestPki, bool)>,
    /// Only this user/password may connect.
    pub password: Option<(&'a str, &'a str)>,
}

/// A real Mosquitto (no persistence: a restart forgets everything) that can be stopped and
/// started again on the same port.
pub struct Broker {
    pub port: u16,
    conf: PathBuf,
    proc: Option<Proc>,
    pub restarts: u32,
}

impl Broker {
    pub fn start(dir: &Path, setup: BrokerSetup<'_>) -> Broker {
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
        );
        if let Some(limit) = setup.message_size_limit {
            conf.push_str(&format!("message_size_limit {limit}\n"));
        }
        if let Some((pki, require)) = setup.tls {
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require}\n",
                pki.ca.display(),
                pki.server_cert.display(),
                pki.server_key.display()
            ));
        }
        match setup.password {
            Some((user, password)) => {
                let file = dir.join(format!("passwd-{port}"));
                std::fs::write(&file, "").unwrap();
                let status = Command::new("mosquitto_passwd")
                    .args(["-b"])
                    .arg(&file)
                    .args([user, password])
                    .stdout(Stdio::null())
                    .status()
                    .expect("mosquitto_passwd (package mosquitto)");
                assert!(status.success());
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        let path = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(&path, conf).unwrap();
        let mut broker = Broker {
            port,
            conf: path,
            proc: None,
            restarts: 0,
        };
        broker.up();
        broker
    }

    /// Starts it again (after [`Broker::down`]).
    pub fn up(&mut self) {
        if self.proc.is_some() {
            return;
        }
        let proc = Proc::spawn(
            "mosquitto",
            Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null()),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start: {}",
                proc.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(proc);
    }

    /// SIGKILL: everything the broker held in memory is gone.
    pub fn down(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
            self.restarts += 1;
        }
    }

    pub fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.stderr()).unwrap_or_default()
    }
}

/// Replaces the reader section of a [`setup_station`] config with `tail`, adds `mqtt_extra`
/// lines to `[mqtt]` and sets `ack_timeout_secs`.
pub fn rewrite_config(setup: &StationSetup, mqtt_extra: &str, ack_timeout: u64, tail: &str) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let head = text.split("[id_readers.desk]").next().unwrap().to_string();
    let mut lines: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with("ack_timeout_secs") {
            lines.push(format!("ack_timeout_secs = {ack_timeout}"));
        } else {
            lines.push(line.to_string());
        }
        if line == "[mqtt]" && !mqtt_extra.is_empty() {
            lines.push(mqtt_extra.trim().to_string());
        }
    }
    std::fs::write(&setup.config, format!("{}\n{tail}\n", lines.join("\n"))).unwrap();
}

/// A station fed only by a hot folder at `<dir>/inbox`.
pub struct FolderStation {
    pub setup: StationSetup,
    pub inbox: PathBuf,
}

pub fn folder_station(
    dir: &Path,
    broker_port: u16,
    mqtt_extra: &str,
    extra: &str,
) -> FolderStation {
    let setup = setup_station(dir, broker_port, &dir.join("no-reader"));
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    rewrite_config(
        &setup,
        mqtt_extra,
        4,
        &format!(
            "[folders.scanner]\npath = \"{}\"\nsettle_ms = 200\npoll_interval_ms = 50\nmax_file_bytes = 67108864\n\n{extra}",
            inbox.display()
        ),
    );
    FolderStation { setup, inbox }
}

/// Drops a page into the inbox the way scanner software should: written under a temporary name,
/// then renamed into place.
pub fn drop_page(inbox: &Path, name: &str, bytes: &[u8]) {
    let tmp = inbox.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, inbox.join(name)).unwrap();
}

/// Deterministic page content of `len` bytes (distinct per `seed`).
pub fn page_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The case system's private key written by the record-format harness, when records are
/// encrypted.
pub fn decrypt_key(setup: &StationSetup) -> Option<PathBuf> {
    let p = setup.dir.join("case-system/case-system.jwk");
    p.is_file().then_some(p)
}

/// The reference consumer from `examples/`, as an integrator would run it.
pub struct RefConsumer {
    pub proc: Proc,
    pub events: mpsc::Receiver<serde_json::Value>,
    pub out: PathBuf,
}

impl RefConsumer {
    pub fn start(
        port: u16,
        setup: &StationSetup,
        out: &Path,
        tls: Option<&TestPki>,
    ) -> RefConsumer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/case_system_consumer.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--station",
                STATION,
                "--station-key",
            ])
            .arg(&setup.public_key)
            .arg("--out")
            .arg(out)
            .arg("--sign-key")
            .arg(&setup.case_sign)
            .stdout(Stdio::piped());
        if let Some(key) = decrypt_key(setup) {
            cmd.arg("--decrypt-key").arg(key);
        }
        if let Some(pki) = tls {
            cmd.arg("--tls-ca").arg(&pki.ca);
            cmd.arg("--tls-cert").arg(&pki.client_cert);
            cmd.arg("--tls-key").arg(&pki.client_key);
        }
        let mut proc = Proc::spawn("reference consumer", &mut cmd);
        let stdout = proc.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let consumer = RefConsumer {
            proc,
            events: rx,
            out: out.to_path_buf(),
        };
        let first = consumer
            .events
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("consumer did not subscribe: {}", consumer.proc.stderr()));
        assert_eq!(first["event"], "subscribed", "{first}");
        consumer
    }

    /// The stored records' JSON files, by seq.
    pub fn stored(&self) -> Vec<serde_json::Value> {
        let dir = self.out.join(STATION);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "chain.json")
        });
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    pub fn blob(&self, blob_id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.out.join(STATION).join("blobs").join(blob_id)).ok()
    }
}

/// Pending records, dead letters and bytes, read from the outbox file.
pub fn outbox_stats(path: &Path) -> countersign::outbox::Stats {
    countersign::outbox::Outbox::open(path)
        .and_then(|o| o.stats())
        .unwrap()
}

/// Log text without terminal colour codes.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The daemon with another log filter (e.g. `countersign=debug`).
pub fn start_daemon_logging(setup: &StationSetup, filter: &str) -> Proc {
    Proc::spawn(
        "daemon",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("RUST_LOG", filter)
            .stdout(Stdio::null()),
    )
}

/// Trusts the case system's signing key (`<dir>/case-sign/station.jwk`, made by `setup_station`) and its
/// public half for MQTT commands; `extra` config follows the `[commands]` table.
pub fn trust_case_system_commands(setup: &StationSetup, extra: &str) {
    setup.append_config(&format!(
        "[commands]\ntrusted_keys = [\"{}\"]\n\n{extra}\n",
        setup.case_sign.with_file_name("station.pub.jwk").display()
    ));
}

/// A command signed with `<dir>/case-sign/station.jwk`, sent by the Python case-system peer
/// (`extra`: its options, e.g. `--timeout 240`); the response, or `{"timeout": true}`.
pub fn send_command(
    port: u16,
    dir: &Path,
    command: &str,
    args: serde_json::Value,
    extra: &[&str],
) -> serde_json::Value {
    let out = Command::new(python())
        .arg(peer_script("commander.py"))
        .args(["--port", &port.to_string(), "--station", STATION, "--key"])
        .arg(dir.join("case-sign/station.jwk"))
        .args(extra)
        .arg(command)
        .arg(args.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The pending records (id, exact wire bytes), oldest first, read beside the daemon.
pub fn pending_records(setup: &StationSetup) -> Vec<(String, Vec<u8>)> {
    let outbox = countersign::outbox::Outbox::open(&setup.outbox).unwrap();
    outbox
        .oldest(1000)
        .unwrap()
        .into_iter()
        .map(|p| (p.record_id, p.wire))
        .collect()
}

/// A receipt signed with `key` (a private JWK file) by countersign's own code; the interop
/// tests sign with the Python peers instead.
pub fn receipt(
    key: &Path,
    station: &str,
    record_id: &str,
    outcome: &countersign::receipts::Outcome,
    sha256: &str,
    iat: i64,
) -> String {
    let key = countersign::record::keys::load_private(key).unwrap();
    countersign::receipts::sign(
        &key,
        &countersign::receipts::Claim {
            station,
            record_id,
            outcome,
            sha256,
            iat,
        },
    )
}

/// Publishes one answer on the station's acks topic as another client would (QoS 1).
pub fn publish_answer(port: u16, payload: &str) {
    let sent = Command::new("mosquitto_pub")
        .args([
            "-p",
            &port.to_string(),
            "-h",
            "127.0.0.1",
            "-q",
            "1",
            "-V",
            "mqttv5",
        ])
        .args([
            "-t",
            &format!("countersign/v1/{STATION}/acks"),
            "-m",
            payload,
        ])
        .status()
        .unwrap();
    assert!(sent.success(), "mosquitto_pub");
}
