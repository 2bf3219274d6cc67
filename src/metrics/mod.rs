//! The optional Prometheus endpoint on loopback (`[metrics] listen = "127.0.0.1:9464"`):
//! `GET /metrics` (text format 0.0.4), `GET /live` (the main loop turns), `GET /ready` (the
//! daemon reported READY and its loop turns).
//!
//! A small HTTP/1.1 responder on tokio rather than hyper or axum: three fixed GET paths on
//! loopback need no router, keep-alive or body parsing, and this keeps ~15 crates out of the
//! build (and out of cross builds). Requests are bounded (8 KiB head, 5 s to send it, 16 at
//! once) and every answer closes the connection.

mod render;

pub use render::render;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::service::state::State;
use crate::service::watchdog;
use crate::station::Heartbeat;

const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 16;

/// Serves the endpoint while `[metrics] listen` is set; follows reloads (on, off, another port).
pub async fn serve(
    mut config: watch::Receiver<Arc<Config>>,
    state: Arc<State>,
    heartbeat: Arc<Heartbeat>,
) {
    let mut current: Option<SocketAddr> = None;
    let mut server: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let wanted = config.borrow_and_update().metrics.listen;
        if wanted != current {
            if let Some(old) = server.take() {
                old.abort();
                info!("metrics endpoint closed");
            }
            if let Some(addr) = wanted {
                match TcpListener::bind(addr).await {
                    Ok(listener) => {
                        info!(%addr, "metrics endpoint listening");
                        server = Some(tokio::spawn(accept(
                            listener,
                            state.clone(),
                            heartbeat.clone(),
                        )));
                    }
                    Err(e) => {
                        warn!(%addr, error = %e, "cannot listen for metrics; the endpoint is off")
                    }
                }
            }
            current = wanted;
        }
        if config.changed().await.is_err() {
            return;
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>, heartbeat: Arc<Heartbeat>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: too many at once
        };
        let (state, heartbeat) = (state.clone(), heartbeat.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &state, &heartbeat).await {
                debug!(error = %e, "metrics: connection failed");
            }
            drop(permit);
        });
    }
}

/// The status code, content type and body for a request line.
pub fn respond(
    request_line: &str,
    state: &State,
    heartbeat: &Heartbeat,
) -> (u16, &'static str, String) {
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return (405, "text/plain", "only GET\n".into());
    }
    let path = target.split('?').next().unwrap_or("");
    let live = watchdog::healthy(heartbeat);
    match path {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            render(&state.snapshot(), heartbeat.age()),
        ),
        "/live" if live => (200, "text/plain", "live\n".into()),
        "/live" => (503, "text/plain", "main loop stalled\n".into()),
        "/ready" => {
            let snapshot = state.snapshot();
            if snapshot.ready && live {
                (
                    200,
                    "text/plain",
                    format!("ready: {}\n", snapshot.status_line()),
                )
            } else {
                (503, "text/plain", "not ready\n".into())
            }
        }
        _ => (
            404,
            "text/plain",
            "not found: try /metrics, /live, /ready\n".into(),
        ),
    }
}

async fn answer(
    mut stream: TcpStream,
    state: &State,
    heartbeat: &Heartbeat,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(false);
            }
        }
    })
    .await;
    let (status, content_type, body) = match complete {
        Ok(Ok(true)) => {
            let text = String::from_utf8_lossy(&head);
            let line = text.lines().next().unwrap_or("");
            respond(line, state, heartbeat)
        }
        Ok(Ok(false)) | Err(_) => (400, "text/plain", "bad request\n".into()),
        Ok(Err(e)) => return Err(e),
    };
    let head_only = head.starts_with(b"HEAD ");
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
