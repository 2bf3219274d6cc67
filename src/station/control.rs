//! The local control socket: the clerk's (or a mobile kit's) way to drive sessions without a case
//! system: `countersign session open|close|cancel|status`. One JSON request per line,
//! `{"command": "open_session", "args": {...}}`, one JSON response per line (the same responses
//! as MQTT commands).
//!
//! Access is the socket file's: mode 0660, owned by the service user and by
//! `[session] control_socket_group` (the control group, not the hot-folder writers' group: a
//! scanner's software must not be able to cancel sessions or read documents). Every connection's
//! peer (pid, uid, gid) is logged. Whoever connects is still held to bounds: a request line is
//! read at most 64 KiB at a time (one endless line cannot exhaust memory), a client that sends no
//! complete line for `control_idle_timeout_secs` is disconnected (a request being worked on, such
//! as a long `capture`, is not idleness), and at most 16 connections are served at once (the
//! 17th is answered `busy` and closed).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::desk::LocalRequest;
use crate::commands::{Rejection, Response};
use crate::config::SessionConfig;

/// The longest request line, bytes (without its newline).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Connections served at once; one more is answered `busy` and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// How the socket is served.
#[derive(Debug, Clone)]
pub(super) struct Options {
    /// The group the socket belongs to (None: the service's own group).
    pub group: Option<String>,
    pub idle_timeout: Duration,
    pub max_line_bytes: usize,
    pub max_connections: usize,
}

impl Options {
    pub fn of(session: &SessionConfig) -> Options {
        Options {
            group: session.control_socket_group.clone(),
            idle_timeout: session.control_idle_timeout_secs.secs(),
            max_line_bytes: MAX_LINE_BYTES,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

#[derive(Deserialize)]
struct Request {
    command: String,
    #[serde(default)]
    args: Value,
}

/// Binds the socket (replacing a stale one), gives it its group and serves until shutdown.
pub(super) fn listen(
    path: &Path,
    options: Options,
    requests: mpsc::Sender<LocalRequest>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // Before touching the file system: a missing group is a configuration error.
    let gid = match &options.group {
        Some(group) => Some(group_id(group)?),
        None => None,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by a killed daemon: nobody answers on it, so it can go.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let (Some(gid), Some(group)) = (gid, &options.group) {
        give_to_group(path, group, gid)?;
    }
    let path = path.to_path_buf();
    Ok(tokio::spawn(serve(
        listener, path, options, requests, shutdown,
    )))
}

/// The numeric id of a group in `/etc/group` (where systemd-sysusers and groupadd put it); the
/// error names `session.control_socket_group` (for `check-config` too).
pub fn group_id(group: &str) -> anyhow::Result<u32> {
    let table = std::fs::read_to_string("/etc/group").map_err(|e| {
        anyhow::anyhow!("session.control_socket_group: cannot read /etc/group: {e}")
    })?;
    gid_in(&table, group).ok_or_else(|| {
        anyhow::anyhow!(
            "session.control_socket_group: group {group:?} does not exist (the package creates \
             countersign-control with systemd-sysusers; or groupadd it)"
        )
    })
}

fn gid_in(table: &str, group: &str) -> Option<u32> {
    table.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let gid = fields.nth(1)?;
        (name == group).then(|| gid.parse().ok()).flatten()
    })
}

/// Sets the socket's group, unless it already has it (a setgid directory, as the package's
/// `/run/countersign`, gives it without a chown, which the unit's syscall filter refuses).
fn give_to_group(path: &Path, group: &str, gid: u32) -> anyhow::Result<()> {
    if std::fs::metadata(path)?.gid() == gid {
        return Ok(());
    }
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
        anyhow::anyhow!(
            "session.control_socket_group: cannot give {} to group {group:?} ({gid}): {e}; put \
             the socket in a directory that is setgid to that group (the package's \
             /run/countersign), or make the service user a member of it",
            path.display()
        )
    })
}

async fn serve(
    listener: UnixListener,
    path: PathBuf,
    options: Options,
    requests: mpsc::Sender<LocalRequest>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    log_peer(&stream);
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            tokio::spawn(session(stream, requests.clone(), options.clone(), slot));
                        }
                        Err(_) => {
                            tokio::spawn(refuse_busy(stream, options.max_connections));
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Who connected: the kernel's word (SO_PEERCRED), not the client's.
fn log_peer(stream: &UnixStream) {
    match stream.peer_cred() {
        Ok(peer) => info!(
            pid = peer.pid(),
            uid = peer.uid(),
            gid = peer.gid(),
            "control socket connection"
        ),
        Err(e) => warn!(error = %e, "control socket connection; its peer is unknown"),
    }
}

async fn refuse_busy(mut stream: UnixStream, max: usize) {
    warn!(
        max,
        "control socket: too many connections; one refused as busy"
    );
    let busy = Response::rejected(
        None,
        &Rejection {
            code: "busy",
            detail: format!("{max} control connections are open; try again"),
        },
    );
    let mut bytes = busy.to_bytes();
    bytes.push(b'\n');
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&bytes)).await;
}

/// What reading one request line gave.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line (without its newline) is in the buffer.
    Complete,
    /// The client sent more than the limit without a newline.
    TooLong,
    /// The client closed its side.
    Closed,
}

/// Reads one line, keeping at most `max + 1` bytes of it: memory stays bounded whatever the
/// client sends.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    line.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.take(limit).read_until(b'\n', line).await?;
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Line::Complete);
    }
    Ok(if line.len() > max {
        Line::TooLong
    } else if n == 0 {
        Line::Closed
    } else {
        // The last line, without a newline, then the end.
        Line::Complete
    })
}

async fn session(
    stream: UnixStream,
    requests: mpsc::Sender<LocalRequest>,
    options: Options,
    _slot: OwnedSemaphorePermit,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        // Idle means waiting for a line; the time spent on a request below does not count.
        let read = tokio::time::timeout(
            options.idle_timeout,
            read_line(&mut reader, &mut line, options.max_line_bytes),
        )
        .await;
        let response = match read {
            Err(_) => {
                debug!(timeout = ?options.idle_timeout, "control connection idle; closed");
                break;
            }
            Ok(Err(_) | Ok(Line::Closed)) => break,
            Ok(Ok(Line::TooLong)) => {
                let too_long = Response::rejected(
                    None,
                    &Rejection {
                        code: "malformed",
                        detail: format!(
                            "a request line is at most {} bytes; connection closed",
                            options.max_line_bytes
                        ),
                    },
                );
                let _ = write_response(&mut write, &too_long).await;
                warn!(
                    max = options.max_line_bytes,
                    "control socket: request line too long; connection closed"
                );
                break;
            }
            Ok(Ok(Line::Complete)) => answer(&line, &requests).await,
        };
        if write_response(&mut write, &response).await.is_err() {
            break;
        }
    }
    debug!("control connection closed");
}

async fn answer(line: &[u8], requests: &mpsc::Sender<LocalRequest>) -> Response {
    match serde_json::from_slice::<Request>(line) {
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            let local = LocalRequest {
                command: request.command,
                args: request.args,
                reply,
            };
            match requests.send(local).await {
                Ok(()) => answer.await.unwrap_or_else(|_| stopping()),
                Err(_) => stopping(),
            }
        }
        Err(e) => Response::rejected(
            None,
            &Rejection {
                code: "malformed",
                detail: crate::commands::json_refusal(
                    &e,
                    "the request",
                    &["command"],
                    "{\"command\": string, \"args\": object}",
                ),
            },
        ),
    }
}

async fn write_response(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> std::io::Result<()> {
    let mut bytes = response.to_bytes();
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

fn stopping() -> Response {
    Response::rejected(
        None,
        &Rejection {
            code: "stopping",
            detail: "the daemon is stopping".into(),
        },
    )
}

/// The client side, for the CLI: sends one request, returns the response.
pub fn request(path: &Path, command: &str, args: Value) -> std::io::Result<Response> {
    use std::io::{BufRead as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    let mut line = serde_json::to_vec(&serde_json::json!({"command": command, "args": args}))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = std::io::BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests;
