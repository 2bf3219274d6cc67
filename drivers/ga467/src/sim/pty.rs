//! Runs the [`Simulator`] behind a pseudo-terminal so the daemon can open it like a real port.
//!
//! The slave side is published as a symlink and the simulator keeps only the master open: a slave
//! handle held here would keep the daemon's TIOCEXCL alive across daemon restarts. While no client
//! has the slave open, the master reports hang-up / EIO; that just means "wait for a client".

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::cards::FakeCard;
use super::engine::Simulator;
use crate::card::mask_id_number;
use crate::command::wire_time;

/// How long to wait between checks when idle or without a client.
const TICK: Duration = Duration::from_millis(20);
/// Bytes written per paced chunk.
const CHUNK: usize = 32;

/// Settings for [`run_pty`].
#[derive(Debug, Clone)]
pub struct PtySimOptions {
    /// Where to publish the slave device (a symlink; a stale symlink is replaced).
    pub link: PathBuf,
    /// Line rate to emulate: replies are paced at 10 bits per byte.
    pub baud: u32,
    /// How long each card stays on the antenna.
    pub present: Duration,
    /// How long the antenna stays empty between cards (the schedule starts empty).
    pub absent: Duration,
    /// Cards placed in turn, cycling. Empty: the antenna stays empty.
    pub cards: Vec<FakeCard>,
}

/// Why the pty simulator could not start.
#[derive(Debug, Error)]
pub enum SimError {
    /// `posix_openpt` and friends failed.
    #[error("cannot create a pseudo-terminal pair: {0}")]
    Pty(#[source] serialport::Error),
    /// The slave side came back without a path.
    #[error("pseudo-terminal slave has no device path")]
    NoSlaveName,
    /// Something other than a symlink sits at the link path.
    #[error("refusing to replace {}: it exists and is not a symlink", path.display())]
    LinkOccupied {
        /// The link path.
        path: PathBuf,
    },
    /// Creating or replacing the symlink failed.
    #[error("cannot create symlink {} -> {target}: {source}", path.display())]
    Link {
        /// The link path.
        path: PathBuf,
        /// The slave device.
        target: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Serves the simulated reader on a new pty until `stop` is set, then removes the symlink.
pub fn run_pty(opts: PtySimOptions, stop: Arc<AtomicBool>) -> Result<(), SimError> {
    let (mut master, slave) = TTYPort::pair().map_err(SimError::Pty)?;
    let slave_path = slave.name().ok_or(SimError::NoSlaveName)?;
    drop(slave);
    master.set_timeout(TICK).map_err(SimError::Pty)?;
    let _link = LinkGuard::create(&opts.link, &slave_path)?;
    info!(link = %opts.link.display(), slave = %slave_path, baud = opts.baud, "simulated GA 467 reader ready");

    let mut sim = Simulator::new();
    let mut schedule = Schedule::new(&opts, Instant::now());
    let mut client = false;
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        if let Some(change) = schedule.tick(Instant::now()) {
            let card = change.and_then(|i| opts.cards.get(i)).cloned();
            match &card {
                Some(c) => {
                    let number = mask_id_number(&c.number().unwrap_or_default());
                    info!(%number, "sim: card placed");
                }
                None => info!("sim: card removed"),
            }
            sim.set_card(card);
        }
        match master.read(&mut buf) {
            Ok(n) if n > 0 => {
                client = true;
                let reply = sim.feed(buf.get(..n).unwrap_or_default());
                if let Err(e) = write_paced(&mut master, &reply, opts.baud, &stop) {
                    debug!(error = %e, "sim: reply not delivered");
                    sim.reset_link();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            // Hang-up (no client has the slave open) or EOF: wait for a client without spinning.
            other => {
                if client {
                    info!("sim: client closed the port");
                    client = false;
                    sim.reset_link();
                }
                if let Err(e) = other {
                    debug!(error = %e, "sim: master read (no client?)");
                }
                thread::sleep(TICK);
            }
        }
    }
    info!("simulated reader stopping");
    Ok(())
}

/// Writes `bytes` in small chunks, each after its wire time at `baud`, like a real UART would.
fn write_paced(port: &mut TTYPort, bytes: &[u8], baud: u32, stop: &AtomicBool) -> io::Result<()> {
    for chunk in bytes.chunks(CHUNK) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        thread::sleep(wire_time(chunk.len(), baud));
        port.write_all(chunk)?;
    }
    Ok(())
}

/// Which card is on the antenna when: absent, card 0, absent, card 1, …
struct Schedule {
    present: Duration,
    absent: Duration,
    count: usize,
    next: usize,
    current: Option<usize>,
    since: Instant,
}

impl Schedule {
    fn new(opts: &PtySimOptions, now: Instant) -> Self {
        Self {
            present: opts.present,
            absent: opts.absent,
            count: opts.cards.len(),
            next: 0,
            current: None,
            since: now,
        }
    }

    /// `Some(new state)` when the antenna changes at `now`.
    fn tick(&mut self, now: Instant) -> Option<Option<usize>> {
        let elapsed = now.saturating_duration_since(self.since);
        match self.current {
            None if self.count > 0 && elapsed >= self.absent => {
                let index = self.next % self.count;
                self.next = index + 1;
                self.current = Some(index);
            }
            Some(_) if elapsed >= self.present => self.current = None,
            _ => return None,
        }
        self.since = now;
        Some(self.current)
    }
}

/// The published symlink; removed on drop if it still points at our slave.
struct LinkGuard {
    path: PathBuf,
    target: String,
}

impl LinkGuard {
    fn create(path: &Path, target: &str) -> Result<Self, SimError> {
        let link_err = |source| SimError::Link {
            path: path.to_owned(),
            target: target.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::remove_file(path).map_err(link_err)?;
            }
            Ok(_) => {
                return Err(SimError::LinkOccupied {
                    path: path.to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(link_err(e)),
        }
        std::os::unix::fs::symlink(target, path).map_err(link_err)?;
        Ok(Self {
            path: path.to_owned(),
            target: target.to_owned(),
        })
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let ours = std::fs::read_link(&self.path).is_ok_and(|t| t == Path::new(&self.target));
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            warn!(link = %self.path.display(), error = %e, "sim: cannot remove symlink");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_starts_absent_and_cycles() {
        let t0 = Instant::now();
        let opts = PtySimOptions {
            link: PathBuf::new(),
            baud: 115_200,
            present: Duration::from_millis(100),
            absent: Duration::from_millis(50),
            cards: super::super::fake_resident_cards()
                .into_iter()
                .take(2)
                .collect(),
        };
        let mut s = Schedule::new(&opts, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(s.tick(at(10)), None);
        assert_eq!(s.tick(at(50)), Some(Some(0)));
        assert_eq!(s.tick(at(100)), None);
        assert_eq!(s.tick(at(150)), Some(None));
        assert_eq!(s.tick(at(200)), Some(Some(1)));
        assert_eq!(s.tick(at(300)), Some(None));
        assert_eq!(s.tick(at(350)), Some(Some(0)));

        let empty = PtySimOptions {
            cards: Vec::new(),
            ..opts
        };
        let mut s = Schedule::new(&empty, t0);
        assert_eq!(s.tick(at(10_000)), None);
    }
}
