//! The virtual-card side of vsmartcard's vpcd protocol: vpcd (the pcscd driver) listens, the
//! card connects. Every message both ways is a 2-byte big-endian length and a payload; a 1-byte
//! payload is control (`00` power off, `01` power on, `02` reset, `04` get ATR; only `04` is
//! answered), anything longer is a C-APDU answered by one R-APDU. Connecting inserts the card,
//! closing the socket removes it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::chip::{Chip, ChipReply};

/// A contactless-style ATR (PC/SC Part 3: `3B 8n 80 01` + historical bytes + TCK).
pub fn atr() -> Vec<u8> {
    let mut atr = vec![
        0x3B, 0x88, 0x80, 0x01, 0x00, 0x31, 0x80, 0x71, 0x00, 0x00, 0x00, 0x00,
    ];
    let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
    atr.push(tck);
    atr
}

/// How a session with vpcd ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpcdEnd {
    /// `stop` was set.
    Stopped,
    /// The chip asked to leave the field (fault injection): the socket was closed.
    Removed,
    /// vpcd closed the connection (pcscd stopped).
    Closed,
}

/// Connects to vpcd at `addr` (retrying until `connect_within` passes) and serves `chip` until
/// it is removed, vpcd goes away, `stop` is set, or `present_for` elapses.
pub fn serve(
    addr: SocketAddr,
    chip: &mut Chip,
    stop: &AtomicBool,
    connect_within: Duration,
    present_for: Option<Duration>,
) -> io::Result<VpcdEnd> {
    let deadline = Instant::now() + connect_within;
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot reach vpcd at {addr}: {e}"),
                ));
            }
            Err(_) if stop.load(Ordering::Relaxed) => return Ok(VpcdEnd::Stopped),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    info!(%addr, "card inserted (connected to vpcd)");
    let removal = present_for.map(|d| Instant::now() + d);
    loop {
        let Some(message) = read_message(&mut stream, stop, removal)? else {
            return Ok(if stop.load(Ordering::Relaxed) {
                VpcdEnd::Stopped
            } else if removal.is_some_and(|r| Instant::now() >= r) {
                VpcdEnd::Removed
            } else {
                VpcdEnd::Closed
            });
        };
        match message.as_slice() {
            [0x00] | [0x01] | [0x02] => {
                debug!(control = message[0], "vpcd control");
                chip.reset();
            }
            [0x04] => write_message(&mut stream, &atr())?,
            [other] => debug!(control = other, "unknown vpcd control ignored"),
            apdu => match chip.process(apdu) {
                ChipReply::Response(r) => write_message(&mut stream, &r)?,
                ChipReply::Removed => {
                    info!(apdus = chip.apdus, "card pulled from the reader (fault)");
                    return Ok(VpcdEnd::Removed);
                }
            },
        }
    }
}

/// One framed message; `None` when the peer closed, `stop` was set or `removal` passed.
fn read_message(
    stream: &mut TcpStream,
    stop: &AtomicBool,
    removal: Option<Instant>,
) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    // Acknowledge at once: vpcd sends the length and the payload as separate segments, and a
    // delayed ACK would hold the payload back by Nagle's algorithm (~40 ms per APDU).
    let _ = socket2::SockRef::from(&*stream).set_tcp_quickack(true);
    if !read_exact(stream, &mut len, stop, removal)? {
        return Ok(None);
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    if !read_exact(stream, &mut payload, stop, removal)? {
        return Ok(None);
    }
    Ok(Some(payload))
}

fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    stop: &AtomicBool,
    removal: Option<Instant>,
) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::Relaxed) || removal.is_some_and(|r| Instant::now() >= r) {
            return Ok(false);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                filled += n;
                let _ = socket2::SockRef::from(&*stream).set_tcp_quickack(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn write_message(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "vpcd message over 65535 bytes")
    })?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}
