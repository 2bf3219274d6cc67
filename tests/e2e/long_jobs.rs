//! Long device jobs never stall the station (issue 13, defect 1). A feeder batch of 60 pages
//! (SANE's `test` backend through the real `scanimage`) is more than the 16-slot device channel
//! holds: the station loop used to await the scanner's answer while the scanner waited for the
//! loop to take its pages, a deadlock that stopped commands, session timeouts and the watchdog.
//! Here the batch runs through the control socket and through a signed MQTT command while a card
//! is read and the hot folder takes files: every page reaches the session record, `session
//! status` answers within a second throughout, and the watchdog never misses. SIGTERM in the
//! middle of a slow batch ends the daemon within 10 s with the pages scanned so far committed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::harness_capture::*;
use crate::harness_idcard::*;
use crate::harness_mqtt::*;

const PAGES: u64 = 60;

/// One control-socket request with a deadline for the answer.
fn control(socket: &Path, command: &str, args: Value, timeout: Duration) -> Result<Value, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    writeln!(stream, "{}", json!({"command": command, "args": args}))
        .map_err(|e| format!("send: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("{command}: no answer within {timeout:?}: {e}"))?;
    serde_json::from_str(&line).map_err(|e| format!("{command}: {e}: {line:?}"))
}

/// Asks `status` every 100 ms until stopped; keeps the slowest answer (or the first failure).
struct StatusProbe {
    stop: Arc<AtomicBool>,
    worst: Arc<Mutex<(Duration, Option<String>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusProbe {
    fn start(socket: PathBuf) -> StatusProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(Mutex::new((Duration::ZERO, None)));
        let (stop2, worst2) = (stop.clone(), worst.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let answer = control(&socket, "status", json!({}), Duration::from_secs(10));
                let took = asked.elapsed();
                let mut worst = worst2.lock().unwrap();
                worst.0 = worst.0.max(took);
                match answer {
                    Ok(v) if v["status"] == "accepted" => {}
                    Ok(v) => worst.1 = worst.1.take().or(Some(v.to_string())),
                    Err(e) => worst.1 = worst.1.take().or(Some(e)),
                }
                drop(worst);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        StatusProbe {
            stop,
            worst,
            thread: Some(thread),
        }
    }

    /// The slowest answer seen, and the first failure if any.
    fn finish(mut self) -> (Duration, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.worst.lock().unwrap().clone()
    }
}

/// `status` never failed and never took a second during the batch.
fn answered_within_a_second(slowest: Duration, failure: Option<String>) {
    assert!(
        failure.is_none(),
        "status failed during the batch: {failure:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "status took {slowest:?} during the batch"
    );
}

/// systemd's side of sd_notify: the times of the daemon's WATCHDOG=1 pings.
struct Watchdog {
    pings: Arc<Mutex<Vec<Instant>>>,
}

impl Watchdog {
    fn listen(path: &Path) -> Watchdog {
        let socket = UnixDatagram::bind(path).unwrap();
        let pings = Arc::new(Mutex::new(Vec::new()));
        let seen = pings.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                    seen.lock().unwrap().push(Instant::now());
                }
            }
        });
        Watchdog { pings }
    }

    /// The longest time without a ping between `from` and now.
    fn longest_gap_since(&self, from: Instant) -> Duration {
        let pings = self.pings.lock().unwrap();
        let mut last = from;
        let mut gap = Duration::ZERO;
        for &t in pings.iter().filter(|&&t| t >= from) {
            gap = gap.max(t - last);
            last = t;
        }
        gap.max(last.elapsed())
    }
}

fn open_session(socket: &Path, case_ref: &str, daemon: &Proc) {
    let opened = control(
        socket,
        "open_session",
        json!({"case_ref": case_ref}),
        Duration::from_secs(10),
    );
    accepted(&opened.unwrap(), daemon);
}

fn accepted(response: &Value, daemon: &Proc) -> Value {
    assert_eq!(
        response["status"],
        "accepted",
        "{response}\n{}",
        daemon.stderr()
    );
    response["result"].clone()
}

/// The stored session record with `record_id`.
fn stored_record(consumer: &RefConsumer, record_id: &str, daemon: &Proc) -> Value {
    let mut found = None;
    wait_until(Duration::from_secs(120), "the session's record", || {
        found = consumer
            .stored()
            .into_iter()
            .find(|r| r["record_id"] == record_id);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("{}", daemon.stderr()))
}

fn labelled_pages(record: &Value, label: &str) -> usize {
    record["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "page" && e["label"] == label)
        .count()
}

#[test]
fn a_sixty_page_feeder_batch_leaves_the_station_answering() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let link = link_in(dir.path());
    let _sim = start_sim(&link, 3000, 3000);
    let sane = sane_config_dir(dir.path());
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let setup = capture_station(
        dir.path(),
        broker.port,
        &format!(
            "[id_readers.desk]\nport = \"{}\"\nbaud = 115200\npoll_interval_ms = 100\n\n\
             [folders.inbox]\npath = \"{}\"\nsettle_ms = 200\npoll_interval_ms = 50\n\n{}",
            link.display(),
            inbox.display(),
            scanner_table(
                "feeder",
                &sane,
                &format!(
                    "feeder = true\nsource = \"Flatbed\"\nmax_pages = {PAGES}\n\
                     options = [\"--mode=Color\", \"--test-picture=Grid\"]"
                ),
            )
        ),
    );
    trust_case_system_commands(&setup, "");
    let consumer = RefConsumer::start(broker.port, &setup, &dir.path().join("case"), None);
    let watchdog = Watchdog::listen(&dir.path().join("notify.sock"));
    let daemon = Proc::spawn(
        "daemon",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&setup.config)
            .env("RUST_LOG", "info")
            .env("NOTIFY_SOCKET", dir.path().join("notify.sock"))
            .env("WATCHDOG_USEC", "2000000")
            .stdout(Stdio::null()),
    );
    let socket = setup.dir.join("state/control.sock");
    wait_until(Duration::from_secs(20), "the control socket", || {
        control(&socket, "status", json!({}), Duration::from_secs(5)).is_ok()
    });

    // Through the control socket, while cards are read and files arrive.
    let started = Instant::now();
    open_session(&socket, "BATCH-LOCAL", &daemon);
    let probe = StatusProbe::start(socket.clone());
    let dropper = {
        let inbox = inbox.clone();
        std::thread::spawn(move || {
            for i in 0..3 {
                std::thread::sleep(Duration::from_millis(300));
                drop_page(&inbox, &format!("scan-{i}.jpg"), &page_frame(i, false));
            }
        })
    };
    let batch = control(
        &socket,
        "capture",
        json!({"source": "feeder", "label": "batch-local"}),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.stderr()));
    assert_eq!(accepted(&batch, &daemon)["pages"], PAGES, "{batch}");
    dropper.join().unwrap();
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(last["identities"].as_u64() >= Some(1) && last["pages"].as_u64() >= Some(PAGES + 3)) {
        assert!(
            Instant::now() < deadline,
            "no card and files in the session: {last}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
        let s = control(&socket, "status", json!({}), Duration::from_secs(5)).unwrap();
        last = s["result"]["session"].clone();
    }
    let (slowest, failure) = probe.finish();
    let closed = accepted(
        &control(&socket, "close_session", json!({}), Duration::from_secs(60)).unwrap(),
        &daemon,
    );
    let record = stored_record(&consumer, closed["record_id"].as_str().unwrap(), &daemon);
    assert_eq!(labelled_pages(&record, "batch-local"), PAGES as usize);
    assert!(!record["identities"].as_array().unwrap().is_empty());
    answered_within_a_second(slowest, failure);

    // Through a signed MQTT command: the response comes when the batch ends.
    let probe = StatusProbe::start(socket.clone());
    let opened = send_command(
        broker.port,
        dir.path(),
        "open_session",
        json!({"case_ref": "BATCH-MQTT"}),
        &["--timeout", "20"],
    );
    accepted(&opened, &daemon);
    let batch = send_command(
        broker.port,
        dir.path(),
        "capture",
        json!({"source": "feeder", "label": "batch-mqtt"}),
        &["--timeout", "240"],
    );
    assert_eq!(accepted(&batch, &daemon)["pages"], PAGES, "{batch}");
    let (slowest, failure) = probe.finish();
    let closed = send_command(
        broker.port,
        dir.path(),
        "close_session",
        json!({}),
        &["--timeout", "60"],
    );
    let closed = accepted(&closed, &daemon);
    let record = stored_record(&consumer, closed["record_id"].as_str().unwrap(), &daemon);
    assert_eq!(labelled_pages(&record, "batch-mqtt"), PAGES as usize);
    answered_within_a_second(slowest, failure);

    let gap = watchdog.longest_gap_since(started);
    assert!(
        gap < Duration::from_secs(2),
        "the watchdog went {gap:?} without a ping (WATCHDOG_USEC = 2 s)"
    );
    assert!(
        !daemon.stderr().contains("main loop stalled"),
        "{}",
        daemon.stderr()
    );
}

#[test]
fn sigterm_in_the_middle_of_a_feeder_batch_keeps_the_pages_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let sane = sane_config_dir(dir.path());
    // About half a second a page: the batch would take half a minute.
    let setup = capture_station(
        dir.path(),
        free_port(),
        &scanner_table(
            "feeder",
            &sane,
            &format!(
                "feeder = true\nsource = \"Flatbed\"\nmax_pages = {PAGES}\n\
                 options = [\"--mode=Color\", \"--test-picture=Grid\", \"--read-limit=yes\", \
                 \"--read-limit-size=4096\", \"--read-delay=yes\", \"--read-delay-duration=100000\"]"
            ),
        ),
    );
    let mut daemon = start_daemon(&setup);
    let socket = setup.dir.join("state/control.sock");
    wait_until(Duration::from_secs(20), "the control socket", || {
        control(&socket, "status", json!({}), Duration::from_secs(5)).is_ok()
    });
    let session_pages = |socket: &Path| -> Option<u64> {
        let s = control(socket, "status", json!({}), Duration::from_secs(5)).ok()?;
        s["result"]["session"]["pages"].as_u64()
    };
    open_session(&socket, "TERM", &daemon);
    let batch = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            control(
                &socket,
                "capture",
                json!({"source": "feeder", "label": "interrupted"}),
                Duration::from_secs(120),
            )
        })
    };
    wait_until(
        Duration::from_secs(60),
        "three pages in the session",
        || session_pages(&socket) >= Some(3),
    );
    // The session is not sealed under a batch that is still scanning into it.
    let close = control(&socket, "close_session", json!({}), Duration::from_secs(5)).unwrap();
    assert_eq!(close["reason"], "busy", "{close}");
    daemon.sigterm();
    let asked = Instant::now();
    let status = daemon.wait_exit(Duration::from_secs(10));
    let took = asked.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM in a batch: {status:?} after {took:?}\n{}",
        daemon.stderr()
    );
    // The command is answered (or its connection closed) when the daemon stops.
    let answer = batch.join().unwrap();
    if let Ok(answer) = &answer {
        assert_eq!(answer["status"], "rejected", "{answer}");
    }
    let log = daemon.stderr();
    let scanned = log.matches("page scanned").count() as u64;
    assert!(
        (3..PAGES).contains(&scanned),
        "{scanned} pages scanned\n{log}"
    );

    // Every page scanned before the stop is in the session, which the next start resumes.
    let daemon = start_daemon(&setup);
    wait_until(Duration::from_secs(20), "the control socket", || {
        control(&socket, "status", json!({}), Duration::from_secs(5)).is_ok()
    });
    assert_eq!(
        session_pages(&socket),
        Some(scanned),
        "pages scanned before SIGTERM: {scanned}\n{}",
        daemon.stderr()
    );
}
