//! End to end over a real pseudo-terminal: `run_pty` on one side, `SerialTransport` + `Reader` on
//! the other, exactly as the daemon and `countersign demo` use them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ga467::reader::PROBE_BAUDS;
use ga467::sim::{
    Action, FAKE_SAM_ID, Protocol, PtySimOptions, Scenario, SimError, Step, fake_resident_cards,
    run_pty, run_scenario,
};
use ga467::{
    Command, ParsedText, PollOutcome, Reader, ReaderError, ReaderOptions, SerialTransport,
};

const BAUD: u32 = 115_200;

fn unique_link(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ga467-{tag}-{}-{n}", std::process::id()))
}

/// A running simulator; stopped (and joined) on drop so a failing test does not leak it.
struct RunningSim {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<(), SimError>>>,
}

impl RunningSim {
    fn start(link: &Path, present: Duration, absent: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let opts = PtySimOptions {
            link: link.to_owned(),
            baud: BAUD,
            present,
            absent,
            cards: fake_resident_cards(),
        };
        let flag = Arc::clone(&stop);
        let handle = Some(thread::spawn(move || run_pty(opts, flag)));
        Self { stop, handle }
    }

    fn stop(mut self) -> Result<(), SimError> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("running");
        handle.join().expect("sim thread panicked")
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn open_reader(link: &Path) -> Reader<SerialTransport> {
    let path = link.to_str().expect("utf-8 temp path");
    let transport = SerialTransport::open(path, BAUD).expect("open pty slave via link");
    Reader::new(
        transport,
        ReaderOptions {
            baud: BAUD,
            ..ReaderOptions::default()
        },
    )
}

#[test]
fn reads_the_first_card_over_a_pty_with_paced_replies() {
    let link = unique_link("read");
    let sim = RunningSim::start(&link, Duration::from_secs(6), Duration::from_millis(300));
    wait_for("the symlink", Duration::from_secs(5), || {
        link.symlink_metadata().is_ok()
    });

    let mut reader = open_reader(&link);
    reader.sam_status().expect("SAM status");
    assert_eq!(reader.sam_id().expect("SAM ID"), FAKE_SAM_ID);

    // The schedule starts with the antenna empty, then places 测试甲.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut empty_polls = 0;
    let card = loop {
        assert!(Instant::now() < deadline, "no card within 10 s");
        match reader.poll().expect("poll") {
            PollOutcome::Card(card) => break card,
            PollOutcome::NoCard => empty_polls += 1,
            PollOutcome::StillPresent => panic!("nothing was reported yet"),
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert!(empty_polls > 0, "the schedule starts absent");
    let ParsedText::Resident(text) = &card.parsed else {
        panic!("not a resident card: {:?}", card.parsed);
    };
    assert_eq!(text.name, "测试甲");
    assert_eq!(card.photo_wlt.len(), 1024);
    assert_eq!(reader.poll().expect("poll"), PollOutcome::StillPresent);

    // Pacing: 1295 bytes at 115200 baud take ~112 ms on the wire.
    assert_eq!(reader.transact(&Command::FindCard).expect("find").sw3, 0x9F);
    assert_eq!(
        reader.transact(&Command::SelectCard).expect("select").sw3,
        0x90
    );
    let started = Instant::now();
    let read = reader.transact(&Command::ReadTextPhoto).expect("read");
    let took = started.elapsed();
    assert_eq!((read.sw3, read.data.len()), (0x90, 4 + 256 + 1024));
    assert!(
        took >= Duration::from_millis(100),
        "30 01 took only {took:?}"
    );
    assert!(took < Duration::from_secs(2), "30 01 took {took:?}");

    // A daemon restart: close and re-open. The simulator holds no slave handle, so TIOCEXCL from
    // the first open does not linger, and it keeps serving the new client.
    drop(reader);
    let mut reader = open_reader(&link);
    reader.sam_status().expect("SAM status after re-open");
    drop(reader);

    sim.stop().expect("sim exits cleanly");
    assert!(link.symlink_metadata().is_err(), "symlink removed on exit");
}

#[test]
fn refuses_to_replace_a_regular_file() {
    let link = unique_link("occupied");
    std::fs::write(&link, b"not a tty").expect("write temp file");
    let err = run_pty(
        PtySimOptions {
            link: link.clone(),
            baud: BAUD,
            present: Duration::from_secs(1),
            absent: Duration::from_secs(1),
            cards: Vec::new(),
        },
        Arc::new(AtomicBool::new(false)),
    )
    .expect_err("a regular file is in the way");
    assert!(matches!(err, SimError::LinkOccupied { .. }), "{err}");
    assert_eq!(std::fs::read(&link).expect("still there"), b"not a tty");
    std::fs::remove_file(&link).expect("cleanup");
}

#[test]
fn replaces_a_stale_symlink() {
    let link = unique_link("stale");
    let stale = Path::new("/nonexistent/ga467-stale-target");
    std::os::unix::fs::symlink(stale, &link).expect("make stale symlink");
    let sim = RunningSim::start(&link, Duration::from_secs(1), Duration::from_secs(1));
    wait_for("the new symlink", Duration::from_secs(5), || {
        std::fs::read_link(&link).is_ok_and(|t| t != stale)
    });
    let mut reader = open_reader(&link);
    reader.sam_status().expect("SAM status");
    drop(reader);
    sim.stop().expect("sim exits cleanly");
    assert!(link.symlink_metadata().is_err(), "symlink removed on exit");
}

/// A scenario-driven simulator on its own thread.
fn start_scenario(link: &Path, scenario: Scenario) -> RunningSim {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let link = link.to_owned();
    let handle = Some(thread::spawn(move || run_scenario(&link, scenario, flag)));
    RunningSim { stop, handle }
}

fn step(ms: u64, action: Action) -> Step {
    Step {
        at: Duration::from_millis(ms),
        action,
    }
}

#[test]
fn the_host_finds_the_readers_rate_by_probing() {
    let link = unique_link("probe");
    let card = fake_resident_cards().remove(1);
    let sim = start_scenario(
        &link,
        Scenario {
            baud: 19_200,
            protocol: Protocol::Ga467,
            steps: vec![step(0, Action::Place(Box::new(card)))],
            cycle: None,
        },
    );
    wait_for("the symlink", Duration::from_secs(5), || {
        link.symlink_metadata().is_ok()
    });
    // At 115200 the simulated UART gives only noise.
    let mut reader = open_reader(&link);
    assert!(reader.sam_status().is_err(), "wrong rate must not answer");
    let rate = reader.probe_baud(&PROBE_BAUDS).expect("probe");
    assert_eq!(rate, 19_200);
    reader.start().expect("start at the probed rate");
    match reader.poll().expect("poll") {
        PollOutcome::Card(card) => assert_eq!(card.parsed.name(), "测试乙"),
        other => panic!("expected the card, got {other:?}"),
    }
    drop(reader);
    sim.stop().expect("sim exits cleanly");
}

#[test]
fn unplug_fails_the_port_and_replug_serves_again_at_the_same_link() {
    let link = unique_link("replug");
    let sim = start_scenario(
        &link,
        Scenario {
            baud: BAUD,
            protocol: Protocol::Ga467,
            steps: vec![step(800, Action::Unplug), step(1600, Action::Replug)],
            cycle: None,
        },
    );
    wait_for("the symlink", Duration::from_secs(5), || {
        link.symlink_metadata().is_ok()
    });
    let mut reader = open_reader(&link);
    reader.start().expect("start");
    // Poll until the unplug: the port fails with an I/O error, not a timeout loop.
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        assert!(Instant::now() < deadline, "unplug never noticed");
        match reader.poll() {
            Ok(_) => thread::sleep(Duration::from_millis(50)),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ReaderError::Io { .. }), "{err}");
    drop(reader);
    wait_for("the link to go", Duration::from_secs(3), || {
        link.symlink_metadata().is_err()
    });
    wait_for("the link to come back", Duration::from_secs(5), || {
        link.symlink_metadata().is_ok()
    });
    // A new pty pair (the kernel may reuse the number).
    let mut reader = open_reader(&link);
    reader.start().expect("start after replug");
    drop(reader);
    sim.stop().expect("sim exits cleanly");
}
