//! A real pcscd with vsmartcard's vpcd driver per test, isolated: its own mount namespace (a
//! private `/run/pcscd`, so its socket is reached as `/proc/<pid>/root/run/pcscd/pcscd.comm`
//! through `PCSCLITE_CSOCK_NAME`) and its own network namespace (vpcd's ports are private, so
//! tests run in parallel and never touch a system pcscd). The card emulator
//! (`countersign sim icao9303`) joins that network namespace with nsenter. Needs root, or
//! unprivileged user namespaces; `scripts/test` installs pcscd, vsmartcard-vpcd and iproute2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::*;

/// vpcd's first slot, "Virtual PCD 00 00" (the second, 00 01, is the port + 1).
pub const READER: &str = "Virtual PCD 00 00";
pub const READER_2: &str = "Virtual PCD 00 01";
const VPCD_PORT: u16 = 35963;

pub struct Pcscd {
    pub proc: Proc,
    /// Slots with an emulator (one per slot and pcscd: see `emulator_on`).
    used: std::cell::Cell<[bool; 2]>,
    /// pcscd's pid (in the namespaces).
    pub pid: u32,
    pub socket: PathBuf,
    pub dir: PathBuf,
}

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: run ./scripts/test, which installs pcscd, vsmartcard-vpcd and iproute2"
    );
}

impl Pcscd {
    pub fn start(dir: &Path) -> Pcscd {
        let conf = dir.join("reader.conf.d");
        std::fs::create_dir_all(&conf).unwrap();
        assert!(
            Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists(),
            "vsmartcard-vpcd is not installed: run ./scripts/test"
        );
        std::fs::write(
            conf.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:{VPCD_PORT}\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID {VPCD_PORT}\n"
            ),
        )
        .unwrap();
        let pid_file = dir.join("pcscd.pid");
        let script = format!(
            "{ip} link set lo up && mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && echo $$ > '{pid}' && exec {pcscd} -f -c '{conf}'",
            ip = program("ip").display(),
            pid = pid_file.display(),
            pcscd = program("pcscd").display(),
            conf = conf.display(),
        );
        let mut unshare = Command::new(program("unshare"));
        // As root: new mount and network namespaces. Otherwise a user namespace maps us to root.
        if !is_root() {
            unshare.arg("-r");
        }
        unshare.args(["-mn", "--fork", "--kill-child", "sh", "-c", &script]);
        let proc = Proc::spawn("pcscd", unshare.stdout(Stdio::null()));
        let mut pid = 0;
        wait_until(Duration::from_secs(10), "pcscd to start", || {
            pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            pid != 0
        });
        let socket = PathBuf::from(format!("/proc/{pid}/root/run/pcscd/pcscd.comm"));
        let started = std::time::Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pcscd's socket never appeared\n{}",
                proc.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Pcscd {
            proc,
            used: std::cell::Cell::new([false; 2]),
            pid,
            socket,
            dir: dir.to_path_buf(),
        }
    }

    /// `countersign` with this pcscd as its PC/SC service.
    pub fn countersign(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.env("PCSCLITE_CSOCK_NAME", &self.socket);
        cmd
    }

    /// Starts the emulator with `args` on slot 0 (`Virtual PCD 00 00`); see `emulator_on`.
    pub fn emulator(&self, args: &[&str]) -> Emulator {
        self.emulator_on(0, args)
    }

    /// Starts the emulator with `args` on vpcd's slot 0 or 1 (`Virtual PCD 00 0<slot>`) inside
    /// pcscd's network namespace; returns it once it has said `ready` (with the document's MRZ).
    pub fn emulator_on(&self, slot: usize, args: &[&str]) -> Emulator {
        // vpcd notices a departed card only lazily (its next presence poll or exchange fails,
        // and pcscd then reports the slot as empty for seconds): one emulator per slot.
        let mut used = self.used.get();
        assert!(
            !used[slot],
            "one emulator per slot and pcscd; start another Pcscd"
        );
        used[slot] = true;
        self.used.set(used);
        let mut cmd = Command::new(program("nsenter"));
        cmd.args(["-t", &self.pid.to_string(), "-n", "--"])
            .arg(bin())
            .args([
                "sim",
                "icao9303",
                "--vpcd",
                &format!("127.0.0.1:{}", VPCD_PORT + slot as u16),
            ])
            .args(args)
            .stdout(Stdio::piped());
        let mut proc = Proc::spawn("emulator", &mut cmd);
        let stdout = proc.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("emulator not ready: {}", proc.stderr()));
        assert_eq!(ready["event"], "ready", "{ready}");
        Emulator {
            proc,
            ready,
            lines: rx,
        }
    }

    /// `countersign read-document` on the emulator's reader: (exit code, JSON or null, stderr).
    pub fn read_document(&self, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
        let out = self
            .countersign()
            .args(["read-document", "--reader", READER, "--wait", "15"])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        (
            out.status.code(),
            serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A CSCA certificate that no emulated document chains to.
    pub fn foreign_csca(&self) -> PathBuf {
        let path = self.dir.join("foreign-csca.pem");
        let status = Command::new(bin())
            .args(["sim", "icao9303", "--csca-only", "--csca-out"])
            .arg(&path)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        path
    }
}

pub struct Emulator {
    pub proc: Proc,
    /// The `ready` line: `mrz`, `document_number`, `birth_date`, `expiry_date`, `dg2_bytes`.
    pub ready: serde_json::Value,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Emulator {
    /// `--doc-number N --birth B --expiry E` of the emulated document.
    pub fn key_args(&self) -> Vec<String> {
        let r = &self.ready;
        vec![
            "--doc-number".into(),
            r["document_number"].as_str().unwrap().into(),
            "--birth".into(),
            r["birth_date"].as_str().unwrap().into(),
            "--expiry".into(),
            r["expiry_date"].as_str().unwrap().into(),
        ]
    }

    /// The `end` line, once the emulator leaves the reader.
    pub fn end(&self, timeout: Duration) -> Option<serde_json::Value> {
        self.lines.recv_timeout(timeout).ok()
    }
}
