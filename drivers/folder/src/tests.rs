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
        format!("folder:scan:p1.jpg:6:{}", file.sha256)
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
