//! A full disk (issue 13, defect 11): the state directory is a small tmpfs in a private mount
//! namespace, filled to the last byte while records are pending. The daemon must still start,
//! deliver what it holds to the real broker and the reference case system, refuse a new capture
//! with an event saying "disk full" (the file stays in the hot folder), and take it once space
//! is freed. Needs root (mount namespaces); skipped with the reason otherwise.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;
use crate::harness_mqtt::*;

/// A private mount namespace with a tmpfs of `size` on `dir`, held open by a sleeping process.
struct SmallDisk {
    holder: Proc,
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let holder = Proc::spawn(
            "mount namespace",
            Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o size={size},mode=0700 tmpfs \"$0\" && echo mounted >&2 && exec sleep 600"
                ))
                .arg(dir)
                .stdout(Stdio::null()),
        );
        let mut holder = holder;
        for _ in 0..100 {
            if holder.stderr().contains("mounted") {
                return Some(SmallDisk {
                    holder,
                    dir: dir.to_path_buf(),
                });
            }
            if let Ok(Some(_)) = holder.child.try_wait() {
                eprintln!(
                    "skipped: cannot mount a tmpfs in a private mount namespace: {}",
                    holder.stderr()
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `path` (under the mounted directory) as seen from outside the namespace.
    fn view(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap();
        Path::new("/proc")
            .join(self.holder.child.id().to_string())
            .join("root")
            .join(relative)
    }

    /// The daemon, run inside the namespace.
    fn daemon(&self, setup: &StationSetup) -> Proc {
        Proc::spawn(
            "daemon",
            Command::new("nsenter")
                .args(["-t", &self.holder.child.id().to_string(), "-m", "--"])
                .arg(bin())
                .args(["run", "--config"])
                .arg(&setup.config)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null()),
        )
    }

    /// Pending records as `countersign outbox status` reports them inside the namespace (SQLite
    /// resolves `/proc/<pid>/root` to `/`, so the file cannot be opened from outside).
    fn pending(&self, setup: &StationSetup) -> Option<u64> {
        let out = Command::new("nsenter")
            .args(["-t", &self.holder.child.id().to_string(), "-m", "--"])
            .arg(bin())
            .args(["outbox", "status", "--config"])
            .arg(&setup.config)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("pending records: "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Writes a filler file until the file system refuses (ENOSPC); returns its size.
    fn fill(&self) -> u64 {
        let path = self.view(&self.dir.join("filler"));
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                    break;
                }
            }
        }
        // The last partial page too.
        while let Ok(n) = file.write(&chunk[..1]) {
            if n == 0 {
                break;
            }
            written += 1;
        }
        written
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count()
}

#[test]
fn a_full_disk_still_starts_delivers_refuses_captures_and_recovers() {
    if !is_root() {
        eprintln!("skipped: a tmpfs in a private mount namespace needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let state = station.setup.dir.join("state");
    let Some(disk) = SmallDisk::mount(&state, "24m") else {
        return;
    };

    // Three records pending (no case system yet), then a clean stop.
    let mut daemon = disk.daemon(&station.setup);
    for i in 0..3 {
        drop_page(&station.inbox, &format!("p{i}.jpg"), &page_bytes(i, 10_000));
    }
    wait_until(Duration::from_secs(30), "three records pending", || {
        disk.pending(&station.setup) == Some(3)
    });
    daemon.sigterm();
    assert!(
        daemon.wait_exit(Duration::from_secs(15)).is_some(),
        "{}",
        daemon.stderr()
    );

    // The disk is full to the last byte.
    let filled = disk.fill();
    eprintln!("filler: {filled} bytes");

    // Live events (the case system's view of refusals).
    let events_file = dir.path().join("events.txt");
    let _events = Proc::spawn(
        "events",
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-t", &format!("countersign/v1/{STATION}/events")])
            .stdout(std::fs::File::create(&events_file).unwrap()),
    );

    let mut daemon = disk.daemon(&station.setup);
    wait_until(
        Duration::from_secs(20),
        "the daemon running on a full disk",
        || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "the daemon did not start on a full disk ({status}):\n{}",
                    daemon.stderr()
                );
            }
            strip_ansi(&daemon.stderr()).contains("station starting")
        },
    );

    // It delivers what it holds.
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    wait_until(
        Duration::from_secs(60),
        "the three pending records stored",
        || consumer.stored().len() == 3,
    );
    wait_until(
        Duration::from_secs(20),
        "acks applied on the full disk",
        || disk.pending(&station.setup) == Some(0),
    );

    // A new capture is refused with a clear reason; the file stays in the hot folder.
    drop_page(&station.inbox, "late.jpg", &page_bytes(9, 10_000));
    wait_until(
        Duration::from_secs(30),
        "the refusal naming the full disk",
        || {
            let log = strip_ansi(&daemon.stderr());
            log.contains("capture refused") && log.contains("disk full")
        },
    );
    wait_until(
        Duration::from_secs(10),
        "the refusal as a live event",
        || {
            std::fs::read_to_string(&events_file)
                .unwrap_or_default()
                .contains("disk full")
        },
    );
    assert_eq!(
        files_in(&station.inbox),
        1,
        "the refused page stays in the hot folder"
    );
    assert_eq!(consumer.stored().len(), 3);

    // Space returns: the page is taken and delivered.
    std::fs::remove_file(disk.view(&state.join("filler"))).unwrap();
    wait_until(Duration::from_secs(60), "the late page delivered", || {
        consumer.stored().len() == 4
    });
    assert_eq!(files_in(&station.inbox), 0);
    let log = strip_ansi(&daemon.stderr());
    assert!(!log.contains("panicked"), "{log}");
}
