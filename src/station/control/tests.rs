use std::time::Instant;

use tokio::io::AsyncReadExt as _;

use super::*;

/// A socket served with `options`, answering every request `pong` after `work`.
struct Served {
    _dir: tempfile::TempDir,
    path: PathBuf,
    _stop: watch::Sender<bool>,
}

fn serve_with(options: Options, work: Duration) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let (tx, mut rx) = mpsc::channel::<LocalRequest>(8);
    let (stop, shutdown) = watch::channel(false);
    listen(&path, options, tx, shutdown).unwrap();
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            tokio::spawn(async move {
                tokio::time::sleep(work).await;
                let _ = request.reply.send(Response::accepted(
                    "local",
                    serde_json::json!({"pong": true}),
                ));
            });
        }
    });
    Served {
        _dir: dir,
        path,
        _stop: stop,
    }
}

fn options() -> Options {
    Options {
        group: None,
        idle_timeout: Duration::from_secs(30),
        max_line_bytes: MAX_LINE_BYTES,
        max_connections: MAX_CONNECTIONS,
    }
}

async fn ask(stream: &mut UnixStream) -> Value {
    stream
        .write_all(b"{\"command\":\"status\"}\n")
        .await
        .unwrap();
    reply(stream).await
}

async fn reply(stream: &mut UnixStream) -> Value {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte).await.unwrap() {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => bytes.push(byte[0]),
        }
    }
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Reads until the daemon closes the connection (or `limit` passes): true when it closed.
async fn closed_within(stream: &mut UnixStream, limit: Duration) -> bool {
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn reading_a_line_keeps_at_most_the_limit_plus_one() {
    let endless = vec![b'x'; 10 * 1024 * 1024];
    let mut reader = &endless[..];
    let mut line = Vec::new();
    let got = read_line(&mut reader, &mut line, MAX_LINE_BYTES)
        .await
        .unwrap();
    assert_eq!(got, Line::TooLong);
    assert_eq!(line.len(), MAX_LINE_BYTES + 1);
    assert!(
        line.capacity() < 2 * (MAX_LINE_BYTES + 1),
        "{}",
        line.capacity()
    );
    let mut reader = &b"{\"a\":1}\nrest"[..];
    assert_eq!(
        read_line(&mut reader, &mut line, 16).await.unwrap(),
        Line::Complete
    );
    assert_eq!(line, b"{\"a\":1}");
    assert_eq!(
        read_line(&mut reader, &mut line, 16).await.unwrap(),
        Line::Complete
    );
    assert_eq!(line, b"rest");
    assert_eq!(
        read_line(&mut reader, &mut line, 16).await.unwrap(),
        Line::Closed
    );
}

#[tokio::test]
async fn ten_megabytes_without_a_newline_are_cut_off_and_the_socket_still_answers() {
    let served = serve_with(options(), Duration::ZERO);
    let mut flood = UnixStream::connect(&served.path).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    // The daemon closes after 64 KiB: the writes start failing well before 10 MB.
    while sent < 10 * 1024 * 1024 {
        if flood.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let refusal = reply(&mut flood).await;
    assert_eq!(refusal["reason"], "malformed", "{refusal}");
    assert!(closed_within(&mut flood, Duration::from_secs(5)).await);
    let mut client = UnixStream::connect(&served.path).await.unwrap();
    assert_eq!(ask(&mut client).await["status"], "accepted");
}

#[tokio::test]
async fn an_idle_client_is_disconnected_but_a_long_request_is_not_idleness() {
    let mut opts = options();
    opts.idle_timeout = Duration::from_millis(300);
    let served = serve_with(opts, Duration::from_millis(900));
    let mut idle = UnixStream::connect(&served.path).await.unwrap();
    // Half a line, then nothing: slow-loris is idleness too.
    idle.write_all(b"{\"command\":").await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(3)).await);
    // A request that takes three idle timeouts to answer is answered.
    let mut working = UnixStream::connect(&served.path).await.unwrap();
    assert_eq!(ask(&mut working).await["status"], "accepted");
}

#[tokio::test]
async fn the_seventeenth_connection_is_busy_and_slots_come_back() {
    let served = serve_with(options(), Duration::ZERO);
    let mut open = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut c = UnixStream::connect(&served.path).await.unwrap();
        assert_eq!(ask(&mut c).await["status"], "accepted");
        open.push(c);
    }
    let mut extra = UnixStream::connect(&served.path).await.unwrap();
    let busy = reply(&mut extra).await;
    assert_eq!(busy["reason"], "busy", "{busy}");
    assert!(closed_within(&mut extra, Duration::from_secs(2)).await);
    drop(open);
    // The sessions notice the closed connections and give their slots back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = UnixStream::connect(&served.path).await.unwrap();
        if ask(&mut c).await["status"] == "accepted" {
            break;
        }
        assert!(Instant::now() < deadline, "slots never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn groups_are_found_in_the_group_table() {
    let table = "root:x:0:\ncountersign:x:998:\ncountersign-control:x:997:clerk\nbad\n";
    assert_eq!(gid_in(table, "countersign-control"), Some(997));
    assert_eq!(gid_in(table, "countersign"), Some(998));
    assert_eq!(gid_in(table, "counter"), None);
    assert_eq!(gid_in(table, "bad"), None);
}

#[tokio::test]
async fn the_socket_belongs_to_the_configured_group_and_a_missing_group_is_an_error() {
    // A group other than ours that we may give a file to (root: any; others: a supplementary
    // group of ours).
    let table = std::fs::read_to_string("/etc/group").unwrap();
    let own = std::fs::metadata(std::env::temp_dir()).unwrap().gid();
    let ours: Vec<u32> = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let root = is_root();
    if let Some((name, gid)) = table.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let gid: u32 = f.get(2)?.parse().ok()?;
        let may = if root { gid != 0 } else { ours.contains(&gid) };
        (gid != own && may).then(|| (f[0].to_string(), gid))
    }) {
        let mut opts = options();
        opts.group = Some(name.clone());
        let served = serve_with(opts, Duration::ZERO);
        let meta = std::fs::metadata(&served.path).unwrap();
        assert_eq!(meta.gid(), gid, "{name}");
        assert_eq!(meta.mode() & 0o777, 0o660);
    }

    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let (_stop, shutdown) = watch::channel(false);
    let mut opts = options();
    opts.group = Some("no-such-group-countersign".into());
    let err = listen(&dir.path().join("c.sock"), opts, tx, shutdown)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("session.control_socket_group") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!dir.path().join("c.sock").exists());
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
