mod icao9303;
mod scenario;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::logging;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// A GA 467 ID card reader on a pseudo-terminal. Without --scenario, fake resident cards are
    /// placed and removed on a timer; with it, the scenario file (docs/ga467-simulator.md)
    /// decides: cards of any type, placement and removal times, SAM errors, noise, truncated or
    /// corrupted frames, slow replies, unplug/replug, the reader's line rate and protocol.
    Ga467 {
        /// Symlink to create, pointing at the pseudo-terminal (give this path to the daemon).
        #[arg(long)]
        link: PathBuf,
        /// The simulated reader's line rate: replies are paced at it, and a host at another rate
        /// gets line noise. Default: 115200, or the scenario's `baud`.
        #[arg(long)]
        baud: Option<u32>,
        /// How long each card lies on the reader (timer mode).
        #[arg(long, default_value_t = 1500, conflicts_with = "scenario")]
        present_ms: u64,
        /// How long the reader stays empty between cards (timer mode).
        #[arg(long, default_value_t = 1500, conflicts_with = "scenario")]
        absent_ms: u64,
        /// A scenario file (TOML) instead of the timer.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// An ICAO 9303 travel document (ePassport, exit-entry permit) presented to pcscd through
    /// vsmartcard's vpcd: connects to vpcd (the card is inserted), answers as the chip
    /// (BAC, secure messaging, the files), and leaves (removed). Format in
    /// docs/icao9303-emulator.md.
    Icao9303(icao9303::Icao9303Args),
}

pub fn run(command: SimCommand) -> anyhow::Result<ExitCode> {
    logging::init("info");
    let (link, baud, present_ms, absent_ms, scenario) = match command {
        SimCommand::Ga467 {
            link,
            baud,
            present_ms,
            absent_ms,
            scenario,
        } => (link, baud, present_ms, absent_ms, scenario),
        SimCommand::Icao9303(args) => return icao9303::run(args),
    };
    let mut scenario = match scenario {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the scenario {}", path.display()))?;
            scenario::parse(&text)
                .map_err(|e| anyhow::anyhow!("scenario {}: {e}", path.display()))?
        }
        None => ga467::sim::Scenario::from_timer(&ga467::sim::PtySimOptions {
            link: link.clone(),
            baud: 115_200,
            present: Duration::from_millis(present_ms),
            absent: Duration::from_millis(absent_ms),
            cards: ga467::sim::fake_resident_cards(),
        }),
    };
    if let Some(baud) = baud {
        scenario.baud = baud;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let sim_stop = stop.clone();
        let mut sim = tokio::task::spawn_blocking(move || {
            ga467::sim::run_scenario(&link, scenario, sim_stop)
        });
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            done = &mut sim => return done?.map_err(anyhow::Error::from),
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        stop.store(true, Ordering::Relaxed);
        sim.await?.map_err(anyhow::Error::from)
    });
    result?;
    Ok(ExitCode::SUCCESS)
}
