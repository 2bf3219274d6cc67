//! The hot folder: a file the station committed but did not move (a crash between the two) is
//! recognised by its intake key and not captured twice; files it cannot take go to failed/ with
//! the reason.

use std::time::Duration;

use crate::harness::*;
use crate::harness_mqtt::*;

#[test]
fn a_file_committed_before_a_crash_is_not_captured_twice() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let daemon = start_daemon(&station.setup);
    let page = page_bytes(1, 30_000);
    drop_page(&station.inbox, "a.jpg", &page);
    drop_page(&station.inbox, "notes.txt", b"not a page");
    wait_until(Duration::from_secs(30), "the page stored", || {
        consumer.stored().len() == 1
    });
    assert!(station.inbox.join("done/a.jpg").is_file());
    let reason =
        std::fs::read_to_string(station.inbox.join("failed/notes.txt.reason.txt")).unwrap();
    assert!(reason.contains("txt"), "{reason}");

    // As if the daemon had died after the commit and before the move: the same file is back.
    drop_page(&station.inbox, "a.jpg", &page);
    wait_until(Duration::from_secs(30), "the file moved again", || {
        station.inbox.join("done/a-1.jpg").is_file()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        consumer.stored().len(),
        1,
        "no second record:\n{}",
        daemon.stderr()
    );
    assert_eq!(outbox_stats(&station.setup.outbox).depth, 0);

    // The same name with other content is a new page.
    drop_page(&station.inbox, "a.jpg", &page_bytes(2, 30_000));
    wait_until(Duration::from_secs(30), "the new page stored", || {
        consumer.stored().len() == 2
    });
}

/// `countersign session <args>` against the daemon's control socket.
fn local(setup: &StationSetup, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(bin())
        .arg("session")
        .arg("--config")
        .arg(&setup.config)
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn open_session(setup: &StationSetup) {
    wait_until(Duration::from_secs(20), "the control socket", || {
        local(setup, &["status"])["status"] == "accepted"
    });
    let opened = local(setup, &["open", "--case-ref", "HF-1"]);
    assert_eq!(opened["status"], "accepted", "{opened}");
}

fn session_pages(setup: &StationSetup) -> Option<u64> {
    local(setup, &["status"])["result"]["session"]["pages"].as_u64()
}

/// The page blobs of the stored session record.
fn session_record_pages(consumer: &RefConsumer) -> Vec<String> {
    let stored = consumer.stored();
    let record = stored
        .iter()
        .find(|r| r["case"]["session_id"].is_string())
        .expect("the session record");
    record["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "page")
        .map(|e| e["sha256"].as_str().unwrap().to_string())
        .collect()
}

/// done/ cannot be written (a file where the directory should be: root ignores permission
/// bits, not that) while a session is open: the file stays, is tried again and again, and the
/// session holds it once. Before the fix every retry added it again.
#[test]
fn with_a_session_open_a_file_that_cannot_move_to_done_is_added_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    // done/ outside the watched directory, so the file in its place is not itself a candidate.
    let done = dir.path().join("done");
    let station = folder_station(
        dir.path(),
        broker.port,
        "",
        &format!("done_dir = {:?}", done.display().to_string()),
    );
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let daemon = start_daemon(&station.setup);
    let inbox = &station.inbox;
    wait_until(Duration::from_secs(30), "the folder open", || done.is_dir());
    open_session(&station.setup);
    std::fs::rename(&done, dir.path().join("done.away")).unwrap();
    std::fs::write(&done, b"not a directory").unwrap();
    drop_page(inbox, "a.jpg", &page_bytes(11, 20_000));
    // Committed, the move fails, tried again (every 5 s): three times.
    wait_until(Duration::from_secs(40), "three failed moves", || {
        daemon
            .stderr()
            .matches("cannot move a committed file to done/")
            .count()
            >= 3
    });
    assert!(inbox.join("a.jpg").is_file(), "the file stays");
    assert_eq!(
        session_pages(&station.setup),
        Some(1),
        "{}",
        daemon.stderr()
    );
    // done/ is back: the file moves, still one page.
    std::fs::remove_file(&done).unwrap();
    std::fs::rename(dir.path().join("done.away"), &done).unwrap();
    wait_until(Duration::from_secs(20), "the file in done/", || {
        done.join("a.jpg").is_file()
    });
    assert_eq!(session_pages(&station.setup), Some(1));
    close_with_one_page(&station.setup, &consumer);
}

/// Closes the session: its record reaches the case system with exactly one page.
fn close_with_one_page(setup: &StationSetup, consumer: &RefConsumer) {
    assert_eq!(local(setup, &["close"])["status"], "accepted");
    wait_until(Duration::from_secs(30), "the session record", || {
        consumer.stored().len() == 1
    });
    assert_eq!(session_record_pages(consumer).len(), 1);
}

/// The daemon dies after the commit and before the move (kill -9; the file put back where it
/// was, as the move never happened) and starts again with the session resumed: still one page.
#[test]
fn a_file_left_by_a_crash_is_not_added_again_to_the_resumed_session() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let mut daemon = start_daemon(&station.setup);
    let inbox = &station.inbox;
    open_session(&station.setup);
    let page = page_bytes(12, 20_000);
    drop_page(inbox, "a.jpg", &page);
    wait_until(Duration::from_secs(30), "the page in done/", || {
        inbox.join("done/a.jpg").is_file()
    });
    assert_eq!(session_pages(&station.setup), Some(1));
    daemon.kill9();
    std::fs::rename(inbox.join("done/a.jpg"), inbox.join("a.jpg")).unwrap();
    let daemon = start_daemon(&station.setup);
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !inbox.join("done/a.jpg").is_file() {
        assert!(
            std::time::Instant::now() < until,
            "the file was not moved again\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        session_pages(&station.setup),
        Some(1),
        "resumed with one page\n{}",
        daemon.stderr()
    );
    close_with_one_page(&station.setup, &consumer);
}

/// Hot-folder file names are often a citizen's name and ID number. Files named so, taken as a
/// record of their own, into a session, and refused: neither the name nor the number is in the
/// outbox database (file and WAL) or the info-level log. Before the fix the intake keys held the
/// file names in plaintext for 30 days.
#[test]
fn file_names_of_citizens_stay_out_of_the_outbox_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let station = folder_station(dir.path(), broker.port, "", "");
    let consumer = RefConsumer::start(broker.port, &station.setup, &dir.path().join("case"), None);
    let mut daemon = start_daemon(&station.setup);
    let inbox = &station.inbox;
    let personal = [
        "张三",
        "110101199003070011",
        "李四",
        "11010519491231002X",
        "王五",
        "110101200001011234",
    ];
    drop_page(
        inbox,
        "张三_110101199003070011.jpg",
        &page_bytes(21, 20_000),
    );
    wait_until(Duration::from_secs(30), "the record stored", || {
        consumer.stored().len() == 1
    });
    open_session(&station.setup);
    drop_page(
        inbox,
        "李四_11010519491231002X.pdf",
        &page_bytes(22, 20_000),
    );
    drop_page(inbox, "王五_110101200001011234.txt", b"not a page");
    wait_until(Duration::from_secs(30), "the page in the session", || {
        session_pages(&station.setup) == Some(1)
    });
    wait_until(
        Duration::from_secs(30),
        "the refused file in failed/",
        || {
            inbox
                .join("failed/王五_110101200001011234.txt.reason.txt")
                .is_file()
        },
    );
    let state = station.setup.outbox.parent().unwrap();
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(state).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            at_rest.extend(std::fs::read(&path).unwrap());
        }
    }
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(20));
    let log = daemon.stderr();
    assert!(log.contains("page taken from the hot folder"), "{log}");
    for needle in personal {
        assert!(
            !at_rest
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{needle} found in the outbox"
        );
        assert!(!log.contains(needle), "{needle} found in the log:\n{log}");
    }
}
