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
use super::scenario::{Action, Scenario, Timeline};
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

/// Serves the simulated reader on a new pty until `stop` is set, then removes the symlink. Cards
/// are placed and removed on the timer in `opts`.
pub fn run_pty(opts: PtySimOptions, stop: Arc<AtomicBool>) -> Result<(), SimError> {
    let scenario = Scenario::from_timer(&opts);
    run_scenario(&opts.link, scenario, stop)
}

/// A plugged-in simulated device: the pty master and the published link.
struct Plugged {
    master: TTYPort,
    _link: LinkGuard,
}

impl Plugged {
    fn plug(link: &Path, baud: u32) -> Result<Self, SimError> {
        let (mut master, slave) = TTYPort::pair().map_err(SimError::Pty)?;
        let slave_path = slave.name().ok_or(SimError::NoSlaveName)?;
        drop(slave);
        master.set_timeout(TICK).map_err(SimError::Pty)?;
        let guard = LinkGuard::create(link, &slave_path)?;
        info!(link = %link.display(), slave = %slave_path, baud, "simulated GA 467 reader ready");
        Ok(Self {
            master,
            _link: guard,
        })
    }
}

/// Serves the simulated reader at `link` following `scenario` until `stop` is set or an
/// [`Action::Exit`] step, then removes the symlink.
pub fn run_scenario(
    link: &Path,
    scenario: Scenario,
    stop: Arc<AtomicBool>,
) -> Result<(), SimError> {
    let mut plugged = Some(Plugged::plug(link, scenario.baud)?);
    let mut sim = Simulator::new();
    sim.set_protocol(scenario.protocol);
    let mut timeline = Timeline::new(&scenario);
    let started = Instant::now();
    let mut client = false;
    let mut junk = 0x1234_5678u32;
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        for action in timeline.due(started.elapsed()) {
            match action {
                Action::Place(card) => {
                    let number = mask_id_number(&card.number().unwrap_or_default());
                    info!(%number, "sim: card placed");
                    sim.set_card(Some(*card));
                }
                Action::Remove => {
                    info!("sim: card removed");
                    sim.set_card(None);
                }
                Action::Unplug => {
                    info!("sim: reader unplugged");
                    plugged = None;
                    client = false;
                    sim.reset_link();
                }
                Action::Replug => {
                    if plugged.is_none() {
                        plugged = Some(Plugged::plug(link, scenario.baud)?);
                    }
                }
                Action::Fault(fault) => {
                    info!(?fault, "sim: fault armed");
                    sim.inject(fault);
                }
                Action::Noise(bytes) => sim.set_reply_prefix(bytes),
                Action::Exit => {
                    info!("simulated reader: scenario ends");
                    return Ok(());
                }
            }
        }
        let Some(port) = plugged.as_mut() else {
            thread::sleep(TICK);
            continue;
        };
        match port.master.read(&mut buf) {
            Ok(n) if n > 0 => {
                client = true;
                let input = buf.get(..n).unwrap_or_default();
                // The pty master sees the termios of the slave: the rate the host set.
                let host_baud = port.master.baud_rate().unwrap_or(scenario.baud);
                let result = if host_baud == scenario.baud {
                    serve(&mut port.master, &mut sim, input, scenario.baud, &stop)
                } else {
                    // What a UART at the wrong rate delivers: garbage both ways.
                    debug!(
                        host_baud,
                        "sim: host at the wrong rate, answering with line noise"
                    );
                    let noise: Vec<u8> = (0..n * 2)
                        .map(|_| {
                            junk = junk.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            (junk >> 24) as u8 & 0xF7
                        })
                        .collect();
                    write_paced(&mut port.master, &noise, scenario.baud, &stop)
                };
                if let Err(e) = result {
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

/// Feeds host bytes to the engine and sends its replies, each after its delay, paced.
fn serve(
    port: &mut TTYPort,
    sim: &mut Simulator,
    input: &[u8],
    baud: u32,
    stop: &AtomicBool,
) -> io::Result<()> {
    for reply in sim.feed_replies(input) {
        let until = Instant::now() + reply.delay;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
        }
        write_paced(port, &reply.bytes, baud, stop)?;
    }
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
