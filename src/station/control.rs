//! The local control socket: the clerk's (or a mobile kit's) way to drive sessions without a case
//! system: `countersign session open|close|cancel|status`. One JSON request per line,
//! `{"command": "open_session", "args": {...}}`, one JSON response per line (the same responses
//! as MQTT commands). Access is the socket file's: mode 0660, owned by the service user and group.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use super::desk::LocalRequest;
use crate::commands::{Rejection, Response};

#[derive(Deserialize)]
struct Request {
    command: String,
    #[serde(default)]
    args: Value,
}

/// Binds the socket (replacing a stale one) and serves until shutdown.
pub(super) fn listen(
    path: &Path,
    requests: mpsc::Sender<LocalRequest>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by a killed daemon: nobody answers on it, so it can go.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let path = path.to_path_buf();
    Ok(tokio::spawn(serve(listener, path, requests, shutdown)))
}

async fn serve(
    listener: UnixListener,
    path: PathBuf,
    requests: mpsc::Sender<LocalRequest>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(session(stream, requests.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            },
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn session(stream: UnixStream, requests: mpsc::Sender<LocalRequest>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.len() > 64 * 1024 {
            break;
        }
        let response = match serde_json::from_str::<Request>(&line) {
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
        };
        let mut bytes = response.to_bytes();
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            break;
        }
    }
    debug!("control connection closed");
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
