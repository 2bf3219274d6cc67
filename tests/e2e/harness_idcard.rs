//! Helpers for the ID card reader tests: the simulator driven by a scenario file, the daemon's
//! reader configuration, records read back (decrypted and verified) from the outbox, and the
//! daemon's CPU time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use countersign::record::keys::{DecryptKeys, Keyring};
use countersign::record::{self, Record};

use crate::harness::*;

/// Starts `countersign sim ga467 --scenario` with `scenario` (TOML) at `link`; waits for the link.
pub fn start_scenario_sim(link: &Path, scenario: &str) -> Proc {
    let file = link.with_extension("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let proc = Proc::spawn(
        "sim",
        Command::new(bin())
            .args(["sim", "ga467", "--link"])
            .arg(link)
            .arg("--scenario")
            .arg(&file)
            .stdout(Stdio::null()),
    );
    wait_until(Duration::from_secs(10), "the simulator's link", || {
        link.symlink_metadata().is_ok()
    });
    proc
}

/// A station whose broker is not running (records stay in the outbox, where the tests read
/// them), with `extra` lines added to `[id_readers.desk]` and `baud` replaced.
pub fn reader_station(dir: &Path, link: &Path, baud: &str, extra: &str) -> StationSetup {
    let setup = setup_station(dir, free_port(), link);
    let config = std::fs::read_to_string(&setup.config).unwrap();
    let config = config.replace("baud = 115200", &format!("baud = {baud}"));
    let config = config.replace(
        "poll_interval_ms = 100\n",
        &format!("poll_interval_ms = 100\n{extra}\n"),
    );
    std::fs::write(&setup.config, config).unwrap();
    setup
}

/// Every record in the outbox, oldest first, decrypted and verified with the station's keys.
pub fn committed_records(setup: &StationSetup) -> Vec<Record> {
    let Ok(outbox) = countersign::outbox::Outbox::open(&setup.outbox) else {
        return Vec::new();
    };
    let keyring = Keyring::load(std::slice::from_ref(&setup.public_key)).unwrap();
    let decrypt = DecryptKeys::load(std::slice::from_ref(&setup.decrypt_key)).unwrap();
    outbox
        .oldest(10_000)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            record::open(&p.wire, &keyring, &decrypt)
                .unwrap_or_else(|e| panic!("record {} does not open: {e}", p.record_id))
                .record
        })
        .filter(|r| !r.identities.is_empty())
        .collect()
}

/// Waits until the outbox holds at least `n` card records; the daemon's log on failure.
pub fn wait_for_records(
    setup: &StationSetup,
    n: usize,
    timeout: Duration,
    daemon: &Proc,
) -> Vec<Record> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = committed_records(setup);
        if records.len() >= n {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} card records after {timeout:?}\n--- daemon ---\n{}",
            records.len(),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ID numbers of the records, in order.
pub fn numbers(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.identities[0].id_number.clone().unwrap_or_default())
        .collect()
}

/// The n-th built-in fake card's ID number.
pub fn fake_number(n: usize) -> String {
    let card = &ga467::sim::fake_cards_all_types()[n];
    card.number().unwrap()
}

/// User plus system CPU time of a process so far (from /proc/PID/stat).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = clock_ticks();
    Duration::from_millis(ticks * 1000 / per_second)
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Runs `countersign` with `args`; (exit code, stdout, stderr).
pub fn countersign(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A link path in `dir`.
pub fn link_in(dir: &Path) -> PathBuf {
    dir.join("idcard")
}

/// A log without ANSI colour sequences, so `key=value` can be searched for.
pub fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
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
