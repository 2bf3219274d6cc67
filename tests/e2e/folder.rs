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
