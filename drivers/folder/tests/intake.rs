//! The hot folder's promises under the ways other software really writes files: partial writes
//! (slow writers, pauses), renames into and inside the folder, a burst of 100 files, unreadable
//! files. Real files and directories; the clock is passed in, the file system is real.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use folder::{Found, HotFolder, Options};

fn options(settle_ms: u64) -> Options {
    Options {
        settle: Duration::from_millis(settle_ms),
        max_file_bytes: 10 * 1024 * 1024,
        extensions: vec!["jpg".into(), "png".into(), "pdf".into()],
    }
}

fn open(dir: &Path, settle_ms: u64) -> HotFolder {
    HotFolder::open(
        dir,
        &dir.join("done"),
        &dir.join("failed"),
        options(settle_ms),
    )
    .unwrap()
}

fn names(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter_map(|f| match f {
            Found::Complete(p) => Some(p.file_name().unwrap().to_string_lossy().into_owned()),
            Found::Unacceptable(..) => None,
        })
        .collect()
}

/// Takes every complete file as the supervisor does: read, then move to done/.
fn take_all(hot: &mut HotFolder, now: Instant) -> Vec<(String, Vec<u8>)> {
    let mut taken = Vec::new();
    for f in hot.scan(now).unwrap() {
        if let Found::Complete(path) = f
            && let Ok(file) = hot.read(&path)
        {
            hot.finish(&path, None).unwrap();
            taken.push((file.name, file.bytes));
        }
    }
    taken
}

#[test]
fn a_slow_writer_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = open(dir.path(), 300);
    let path = dir.path().join("scan.jpg");
    let mut writer = std::fs::File::create(&path).unwrap();
    let t0 = Instant::now();
    let mut content = Vec::new();
    // Ten chunks, each written 200 ms apart (less than the settle time).
    for i in 0..10u8 {
        let chunk = vec![i; 1000];
        writer.write_all(&chunk).unwrap();
        writer.flush().unwrap();
        content.extend_from_slice(&chunk);
        // Modification times may be coarse: the size alone must keep the file waiting.
        let now = t0 + Duration::from_millis(200 * u64::from(i));
        assert!(
            take_all(&mut hot, now).is_empty(),
            "taken while growing at chunk {i}"
        );
    }
    drop(writer);
    let now = t0 + Duration::from_millis(2000);
    assert!(
        take_all(&mut hot, now).is_empty(),
        "first look after the last write"
    );
    let taken = take_all(&mut hot, now + Duration::from_millis(300));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].1, content, "the whole file, once");
}

#[test]
fn a_writer_that_pauses_longer_than_the_settle_time_is_still_waited_for_while_the_file_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = open(dir.path(), 100);
    let path = dir.path().join("scan.jpg");
    let mut writer = std::fs::File::create(&path).unwrap();
    writer.write_all(b"first half").unwrap();
    let t0 = Instant::now();
    hot.scan(t0).unwrap();
    // Settled by size and time, but another process (here: this one) still has it open for
    // writing: not complete.
    let found = hot.scan(t0 + Duration::from_secs(5)).unwrap();
    assert!(names(&found).is_empty(), "taken while open for writing");
    writer.write_all(b", second half").unwrap();
    drop(writer);
    hot.scan(t0 + Duration::from_secs(6)).unwrap();
    let taken = take_all(&mut hot, t0 + Duration::from_secs(7));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].1, b"first half, second half");
}

#[test]
fn renames_into_and_inside_the_folder_are_taken_once_under_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir_in(dir.path().parent().unwrap()).unwrap();
    let mut hot = open(dir.path(), 200);
    let t0 = Instant::now();
    // Written elsewhere on the same file system, renamed in.
    std::fs::write(outside.path().join("a.jpg"), b"page a").unwrap();
    std::fs::rename(outside.path().join("a.jpg"), dir.path().join("a.jpg")).unwrap();
    // Written under a temporary name inside the folder, renamed to its final name.
    std::fs::write(dir.path().join("b.jpg.part"), b"page b").unwrap();
    assert!(take_all(&mut hot, t0).is_empty());
    std::fs::rename(dir.path().join("b.jpg.part"), dir.path().join("b.jpg")).unwrap();
    // Renamed from one accepted name to another while settling: only the final name.
    std::fs::write(dir.path().join("c.jpg"), b"page c").unwrap();
    hot.scan(t0 + Duration::from_millis(100)).unwrap();
    std::fs::rename(dir.path().join("c.jpg"), dir.path().join("c2.jpg")).unwrap();
    let mut taken: Vec<String> = Vec::new();
    for ms in [150, 300, 450, 600, 5000] {
        taken.extend(
            take_all(&mut hot, t0 + Duration::from_millis(ms))
                .into_iter()
                .map(|(n, _)| n),
        );
    }
    taken.sort();
    assert_eq!(taken, ["a.jpg", "b.jpg", "c2.jpg"]);
    let done: BTreeSet<String> = std::fs::read_dir(dir.path().join("done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(done, ["a.jpg", "b.jpg", "c2.jpg"].map(String::from).into());
}

#[test]
fn a_burst_of_100_files_is_taken_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = open(dir.path(), 50);
    let t0 = Instant::now();
    for i in 0..100 {
        std::fs::write(dir.path().join(format!("p{i:03}.jpg")), format!("page {i}")).unwrap();
    }
    let mut taken = Vec::new();
    for step in 0..10 {
        taken.extend(take_all(&mut hot, t0 + Duration::from_millis(60 * step)));
    }
    assert_eq!(taken.len(), 100);
    let distinct: BTreeSet<_> = taken.iter().map(|(n, b)| (n.clone(), b.clone())).collect();
    assert_eq!(distinct.len(), 100, "never read twice");
    for (name, bytes) in &taken {
        let i: usize = name[1..4].parse().unwrap();
        assert_eq!(bytes, format!("page {i}").as_bytes());
    }
    // In name order (scanners number their pages).
    let order: Vec<&String> = taken.iter().map(|(n, _)| n).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(
        std::fs::read_dir(dir.path().join("done")).unwrap().count(),
        100
    );
}

#[test]
fn fifos_directories_and_dangling_links_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = open(dir.path(), 0);
    let fifo = dir.path().join("pipe.jpg");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir(dir.path().join("folder.jpg")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", dir.path().join("link.jpg")).unwrap();
    // Opening the FIFO would block the intake thread forever: it must never be read.
    let found = hot.scan(Instant::now()).unwrap();
    assert!(found.is_empty(), "{found:?}");
}

/// Runs `test` as `nobody` when this process is root (root reads any file, so permission bits
/// could not make a file unreadable), in a directory `nobody` may use.
fn as_unprivileged(test: &str) -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    if std::env::var_os("FOLDER_TEST_CHILD").is_some() || !root {
        return None;
    }
    let status = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env("FOLDER_TEST_CHILD", "1")
        .status()
        .expect("setpriv (util-linux) runs the unreadable-file test as nobody");
    assert!(status.success(), "{test} failed as nobody");
    Some(PathBuf::new())
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn an_unreadable_file_is_retried_then_moved_to_failed_with_the_reason() {
    if as_unprivileged("an_unreadable_file_is_retried_then_moved_to_failed_with_the_reason")
        .is_some()
    {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut hot = open(dir.path(), 0);
    let path = dir.path().join("locked.jpg");
    std::fs::write(&path, b"page").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let t0 = Instant::now();
    let mut failures = Vec::new();
    for attempt in 0..20u64 {
        let now = t0 + Duration::from_secs(10 * attempt);
        for f in hot.scan(now).unwrap() {
            match f {
                Found::Complete(p) => {
                    let err = hot.read(&p).unwrap_err();
                    failures.push(err.to_string());
                }
                Found::Unacceptable(p, reason) => {
                    hot.finish(&p, Some(&reason)).unwrap();
                    failures.push(format!("moved: {reason}"));
                }
            }
        }
    }
    let last = failures.last().unwrap();
    assert!(
        last.starts_with("moved: ") && last.contains("ermission denied"),
        "{failures:?}"
    );
    assert!(failures.len() >= 3 && failures.len() <= 5, "{failures:?}");
    assert!(!path.exists());
    let note = std::fs::read_to_string(dir.path().join("failed/locked.jpg.reason.txt")).unwrap();
    assert!(note.contains("cannot read"), "{note}");
}
