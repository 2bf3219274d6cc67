use super::*;

fn options(settle_ms: u64) -> Options {
    Options {
        settle: Duration::from_millis(settle_ms),
        max_file_bytes: 1000,
        extensions: vec!["jpg".into(), "pdf".into()],
    }
}

fn folder(dir: &Path, settle_ms: u64) -> HotFolder {
    HotFolder::open(
        dir,
        &dir.join("done"),
        &dir.join("failed"),
        options(settle_ms),
    )
    .unwrap()
}

fn complete(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter_map(|f| match f {
            Found::Complete(p) => Some(p.file_name().unwrap().to_string_lossy().into_owned()),
            Found::Unacceptable(..) => None,
        })
        .collect()
}

#[test]
fn a_file_is_taken_only_after_it_settles_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = folder(dir.path(), 500);
    let t0 = Instant::now();
    std::fs::write(dir.path().join("p1.jpg"), b"abc").unwrap();
    assert!(complete(&hot.scan(t0).unwrap()).is_empty(), "just appeared");
    // Still growing: the clock starts again.
    std::fs::write(dir.path().join("p1.jpg"), b"abcdef").unwrap();
    assert!(complete(&hot.scan(t0 + Duration::from_millis(400)).unwrap()).is_empty());
    assert!(complete(&hot.scan(t0 + Duration::from_millis(800)).unwrap()).is_empty());
    let found = hot.scan(t0 + Duration::from_millis(1000)).unwrap();
    assert_eq!(complete(&found), ["p1.jpg"]);
    let file = hot.read(&dir.path().join("p1.jpg")).unwrap();
    assert_eq!(file.bytes, b"abcdef");
    assert_eq!(file.media_type, "image/jpeg");
    assert_eq!(
        file.sha256,
        "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
    );
    assert_eq!(
        file.key("scan"),
        intake_key("scan", "p1.jpg", 6, &file.sha256)
    );
    let moved = hot.finish(&file.path, None).unwrap();
    assert_eq!(moved, dir.path().join("done/p1.jpg"));
    assert!(
        complete(&hot.scan(t0 + Duration::from_secs(5)).unwrap()).is_empty(),
        "never read twice"
    );
}

#[test]
fn files_being_written_are_left_alone_and_others_fail_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = folder(dir.path(), 0);
    for name in [".p.jpg", "p.jpg.tmp", "p.part", "p.jpg~"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    std::fs::write(dir.path().join("big.pdf"), vec![0u8; 1001]).unwrap();
    let found = hot.scan(Instant::now()).unwrap();
    assert!(complete(&found).is_empty());
    let mut failed = Vec::new();
    for f in found {
        if let Found::Unacceptable(path, reason) = f {
            hot.finish(&path, Some(&reason)).unwrap();
            failed.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    failed.sort();
    assert_eq!(failed, ["big.pdf", "notes.txt"]);
    let note = std::fs::read_to_string(dir.path().join("failed/notes.txt.reason.txt")).unwrap();
    assert!(note.contains("\"txt\""), "{note}");
    assert!(dir.path().join("p.part").exists(), "left alone");
}

#[test]
fn a_deferred_file_waits_and_names_never_collide_in_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = folder(dir.path(), 0);
    let t0 = Instant::now();
    let path = dir.path().join("a.jpg");
    std::fs::write(&path, b"1").unwrap();
    assert_eq!(complete(&hot.scan(t0).unwrap()), ["a.jpg"]);
    hot.defer(&path, Duration::from_secs(5), t0);
    assert!(complete(&hot.scan(t0 + Duration::from_secs(1)).unwrap()).is_empty());
    assert_eq!(
        complete(&hot.scan(t0 + Duration::from_secs(6)).unwrap()),
        ["a.jpg"]
    );
    hot.finish(&path, None).unwrap();
    std::fs::write(&path, b"2").unwrap();
    hot.scan(t0 + Duration::from_secs(7)).unwrap();
    assert_eq!(
        hot.finish(&path, None).unwrap(),
        dir.path().join("done/a-1.jpg")
    );
    assert_eq!(std::fs::read(dir.path().join("done/a.jpg")).unwrap(), b"1");
}

/// Scans until `name` is complete (settle 0) and returns its path.
fn settled(hot: &mut HotFolder, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, b"page").unwrap();
    assert_eq!(complete(&hot.scan(Instant::now()).unwrap()), [name]);
    path
}

/// A hot folder `inbox` beside a secret file (`station.jwk`) the writers must never get at.
fn beside_a_secret() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("station.jwk");
    std::fs::write(&secret, b"SIGNING KEY").unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    (dir, secret, inbox)
}

/// Runs `f` on another thread; None when it does not return within 5 s (a hang).
fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5)).ok()
}

#[test]
fn a_settled_file_swapped_for_a_symlink_to_a_secret_is_not_read() {
    let (_dir, secret, inbox) = beside_a_secret();
    let mut hot = folder(&inbox, 0);
    // The page looks just like the key (size and modification time), so a check of size and
    // time after the read cannot tell them apart.
    let path = inbox.join("p1.jpg");
    std::fs::write(&path, b"PAGE BYTES!").unwrap();
    let mtime = std::fs::metadata(&secret).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(complete(&hot.scan(Instant::now()).unwrap()), ["p1.jpg"]);
    // Between the settle check and the read: the page becomes a symlink to the key.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&secret, &path).unwrap();
    let read = hot.read(&path);
    assert!(
        read.as_ref()
            .is_err_and(|e| e.to_string().contains("symbolic link")),
        "{:?}",
        read.map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
    );
}

#[test]
fn a_settled_file_swapped_for_a_fifo_does_not_hang_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = folder(dir.path(), 0);
    let path = settled(&mut hot, dir.path(), "p1.jpg");
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let read = within_5s(move || {
        hot.read(&path)
            .map(|f| f.bytes.len())
            .map_err(|e| e.to_string())
    })
    .expect("the read returns (a FIFO with no writer must not block it)");
    assert!(
        read.as_ref()
            .is_err_and(|e| e.contains("not a regular file")),
        "{read:?}"
    );
}

#[test]
fn a_file_growing_past_the_limit_between_scan_and_read_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = folder(dir.path(), 0);
    let path = settled(&mut hot, dir.path(), "p1.jpg");
    std::fs::write(&path, vec![7u8; 5000]).unwrap();
    let read = hot.read(&path);
    assert!(
        read.as_ref()
            .is_err_and(|e| e.to_string().contains("max_file_bytes")),
        "{:?}",
        read.map(|f| f.bytes.len())
    );
}

#[test]
fn hostile_swaps_go_to_failed_and_the_next_file_is_still_taken() {
    let (_dir, secret, inbox) = beside_a_secret();
    let mut hot = folder(&inbox, 0);
    for (name, swap) in [
        ("zero.jpg", "/dev/zero"),
        ("key.jpg", secret.to_str().unwrap()),
    ] {
        let path = settled(&mut hot, &inbox, name);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(swap, &path).unwrap();
        let Err(Unread::Unacceptable(reason)) = hot.read(&path) else {
            panic!("{name} was read");
        };
        // The link itself moves (rename does not follow it); nothing is read through it.
        let moved = hot.finish(&path, Some(&reason)).unwrap();
        assert!(moved.symlink_metadata().unwrap().file_type().is_symlink());
        let note = std::fs::read_to_string(format!("{}.reason.txt", moved.display())).unwrap();
        assert!(note.contains("symbolic link"), "{note}");
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"SIGNING KEY", "untouched");
    let path = settled(&mut hot, &inbox, "next.jpg");
    assert_eq!(hot.read(&path).unwrap().bytes, b"page");
}

#[test]
fn a_settled_file_replaced_by_another_file_settles_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = folder(dir.path(), 0);
    let path = settled(&mut hot, dir.path(), "p1.jpg");
    // Same size, same content, another inode (renamed over it): not the file that settled.
    let other = dir.path().join(".other");
    std::fs::write(&other, b"page").unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert!(matches!(hot.read(&path), Err(Unread::Retry(r)) if r.contains("replaced")));
    let t = Instant::now();
    hot.scan(t).unwrap();
    assert_eq!(complete(&hot.scan(t).unwrap()), ["p1.jpg"]);
    assert_eq!(hot.read(&path).unwrap().bytes, b"page");
}

#[test]
fn the_intake_key_is_deterministic_and_carries_no_name() {
    let name = "张三_110101199003070011.jpg";
    let key = intake_key("scan", name, 6, "ab");
    assert_eq!(key, intake_key("scan", name, 6, "ab"));
    assert!(key.starts_with("folder:scan:"), "{key}");
    assert!(!key.contains("张三") && !key.contains("110101"), "{key}");
    assert_ne!(key, intake_key("scan", name, 7, "ab"));
    assert_ne!(key, intake_key("scan", "other.jpg", 6, "ab"));
    assert_ne!(key, intake_key("scan", name, 6, "ac"));
}

/// Runs that die while a file is processed (`begin` without `end`, then a new `open`).
fn die_on(dir: &Path, key: &str, times: u32) {
    for _ in 0..times {
        let mut hot = folder(dir, 0);
        hot.begin_processing(key).unwrap();
        drop(hot);
    }
}

#[test]
fn a_file_three_runs_in_a_row_died_on_is_known_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // One or two deaths prove nothing (a SIGKILL, a power cut).
    die_on(dir.path(), "folder:scan:aaaa", 2);
    assert!(!folder(dir.path(), 0).crashed_while_processing("folder:scan:aaaa"));
    // Processed to the end once: the count starts again.
    let mut hot = folder(dir.path(), 0);
    hot.begin_processing("folder:scan:aaaa").unwrap();
    hot.end_processing().unwrap();
    drop(hot);
    die_on(dir.path(), "folder:scan:aaaa", 2);
    assert!(!folder(dir.path(), 0).crashed_while_processing("folder:scan:aaaa"));
    die_on(dir.path(), "folder:scan:aaaa", 1);
    let mut hot = folder(dir.path(), 0);
    assert!(hot.crashed_while_processing("folder:scan:aaaa"));
    assert!(!hot.crashed_while_processing("folder:scan:bbbb"));
    // Another file processed meanwhile keeps the crashed one's count in the marker.
    hot.begin_processing("folder:scan:bbbb").unwrap();
    hot.end_processing().unwrap();
    assert!(folder(dir.path(), 0).crashed_while_processing("folder:scan:aaaa"));
    let path = settled(&mut hot, dir.path(), "p1.jpg");
    let dest = hot
        .fail_crashed(&path, "folder:scan:aaaa", "processing crashed: test")
        .unwrap();
    assert_eq!(dest, dir.path().join("failed/p1.jpg"));
    assert!(!hot.crashed_while_processing("folder:scan:aaaa"));
    assert!(
        !dir.path().join(PROCESSING_MARKER).exists(),
        "nothing pending"
    );
    assert!(!folder(dir.path(), 0).crashed_while_processing("folder:scan:aaaa"));
}

#[test]
fn a_symlink_planted_as_the_reason_file_is_not_written_through() {
    let (dir, secret, inbox) = beside_a_secret();
    let mut hot = folder(&inbox, 0);
    std::os::unix::fs::symlink(&secret, inbox.join("failed/x.txt.reason.txt")).unwrap();
    // A dangling link where the file would go in done/ is not written through either.
    let elsewhere = dir.path().join("elsewhere.jpg");
    std::os::unix::fs::symlink(&elsewhere, inbox.join("done/y.jpg")).unwrap();
    std::fs::write(inbox.join("x.txt"), b"x").unwrap();
    std::fs::write(inbox.join("y.jpg"), b"y").unwrap();
    hot.scan(Instant::now()).unwrap();
    let _ = hot.finish(&inbox.join("x.txt"), Some("extension \"txt\" is not taken"));
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        b"SIGNING KEY",
        "the key is intact"
    );
    assert_eq!(
        hot.finish(&inbox.join("y.jpg"), None).unwrap(),
        inbox.join("done/y-1.jpg")
    );
    assert!(!elsewhere.exists());
}
