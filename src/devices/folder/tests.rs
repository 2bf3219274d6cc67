use std::path::PathBuf;

use super::*;

/// Content that makes `capture` panic under `cfg(test)` (see the hook there).
pub(super) const CRASHING_PAGE: &[u8] = b"TEST: CRASH THE PIPELINE";

struct Running {
    _dir: tempfile::TempDir,
    inbox: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Keys of the captures committed, in order.
    committed: std::sync::mpsc::Receiver<(String, Vec<u8>)>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn inbox() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    (dir, inbox)
}

/// The supervisor on `inbox`, with a station that commits everything.
fn run(dir: tempfile::TempDir, inbox: PathBuf) -> Running {
    let config: FolderConfig = toml::from_str(&format!(
        "path = {:?}\nsettle_ms = 0\npoll_interval_ms = 50\nprocess = false\n",
        inbox.display().to_string()
    ))
    .unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = spawn(
        "scan".into(),
        config,
        None,
        tx,
        crate::events::bus(),
        stop.clone(),
    )
    .unwrap();
    let (committed_tx, committed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Some(event) = rx.blocking_recv() {
            if let DeviceEvent::Intake(capture, intake) = event {
                let bytes = capture.evidence[0].bytes.clone();
                let _ = committed_tx.send((intake.key.clone(), bytes));
                let _ = intake.outcome.send(IntakeOutcome::Committed("r-1".into()));
            }
        }
    });
    Running {
        _dir: dir,
        inbox,
        stop,
        thread: Some(thread),
        committed,
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reason(inbox: &Path, name: &str) -> String {
    std::fs::read_to_string(inbox.join("failed").join(format!("{name}.reason.txt"))).unwrap()
}

#[test]
fn a_file_that_crashes_the_pipeline_goes_to_failed_and_the_folder_goes_on() {
    let (dir, inbox) = inbox();
    let running = run(dir, inbox);
    let inbox = running.inbox.clone();
    std::fs::write(inbox.join("a-crash.jpg"), CRASHING_PAGE).unwrap();
    wait_for("the crashing file in failed/", || {
        inbox.join("failed/a-crash.jpg.reason.txt").is_file()
    });
    let why = reason(&inbox, "a-crash.jpg");
    assert!(
        why.starts_with("processing crashed: test: the pipeline crashed"),
        "{why}"
    );
    wait_for("the marker cleared", || {
        !inbox.join(folder::PROCESSING_MARKER).exists()
    });
    std::fs::write(inbox.join("b.jpg"), b"a page").unwrap();
    let (_, bytes) = running
        .committed
        .recv_timeout(Duration::from_secs(10))
        .expect("the next file is taken");
    assert_eq!(bytes, b"a page");
    wait_for("b.jpg in done/", || inbox.join("done/b.jpg").is_file());
}

/// The driver's view of `inbox`, as the supervisor opens it (settled at once).
fn hot_folder(inbox: &std::path::Path) -> HotFolder {
    HotFolder::open(
        inbox,
        &inbox.join("done"),
        &inbox.join("failed"),
        Options {
            settle: Duration::ZERO,
            max_file_bytes: 1000,
            extensions: vec!["jpg".into()],
        },
    )
    .unwrap()
}

#[test]
fn a_file_in_the_pipeline_when_the_daemon_died_three_times_goes_to_failed_at_the_next_start() {
    let (dir, inbox) = inbox();
    std::fs::write(inbox.join("p.jpg"), b"a page that killed the process").unwrap();
    std::fs::write(inbox.join("q.jpg"), b"another page").unwrap();
    // The previous runs noted p.jpg as being processed and died, three times in a row.
    for _ in 0..folder::DEATHS_BEFORE_FAILED {
        let mut probe = hot_folder(&inbox);
        probe.scan(Instant::now()).unwrap();
        let file = probe.read(&inbox.join("p.jpg")).unwrap();
        probe.begin_processing(&file.key("scan")).unwrap();
        drop(probe);
    }

    let running = run(dir, inbox.clone());
    let (_, bytes) = running
        .committed
        .recv_timeout(Duration::from_secs(10))
        .expect("the other file is taken");
    assert_eq!(bytes, b"another page");
    wait_for("p.jpg in failed/", || {
        inbox.join("failed/p.jpg.reason.txt").is_file()
    });
    assert_eq!(reason(&inbox, "p.jpg").trim(), CRASHED_BEFORE);
    assert!(
        running.committed.try_recv().is_err(),
        "p.jpg was not processed again"
    );
    wait_for("the marker cleared", || {
        !inbox.join(folder::PROCESSING_MARKER).exists()
    });
}

#[test]
fn a_settled_file_swapped_for_a_fifo_goes_to_failed_without_blocking() {
    let (dir, inbox) = inbox();
    std::fs::write(inbox.join("p.jpg"), b"page").unwrap();
    let mut hot = hot_folder(&inbox);
    let found = hot.scan(Instant::now()).unwrap();
    std::fs::remove_file(inbox.join("p.jpg")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(inbox.join("p.jpg"))
            .status()
            .unwrap()
            .success()
    );
    let (tx, _rx) = mpsc::channel(1);
    let supervisor = Supervisor {
        name: "scan".into(),
        config: toml::from_str(&format!("path = {:?}\n", inbox.display().to_string())).unwrap(),
        imaging: None,
        tx,
        events: crate::events::bus(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    for f in found {
        assert!(matches!(supervisor.take(&mut hot, f), Taken::Done));
    }
    let why = reason(&inbox, "p.jpg");
    assert!(why.contains("FIFO"), "{why}");
    drop(dir);
}
