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
    /// A GA 467 ID card reader on a pseudo-terminal, with fake resident cards placed and removed
    /// on a timer.
    Ga467 {
        /// Symlink to create, pointing at the pseudo-terminal (give this path to the daemon).
        #[arg(long)]
        link: PathBuf,
        /// The speed the simulated reader paces its replies at.
        #[arg(long, default_value_t = 115200)]
        baud: u32,
        /// How long each card lies on the reader.
        #[arg(long, default_value_t = 1500)]
        present_ms: u64,
        /// How long the reader stays empty between cards.
        #[arg(long, default_value_t = 1500)]
        absent_ms: u64,
    },
}

pub fn run(command: SimCommand) -> anyhow::Result<ExitCode> {
    logging::init("info");
    match command {
        SimCommand::Ga467 {
            link,
            baud,
            present_ms,
            absent_ms,
        } => {
            let options = ga467::sim::PtySimOptions {
                link,
                baud,
                present: Duration::from_millis(present_ms),
                absent: Duration::from_millis(absent_ms),
                cards: ga467::sim::fake_resident_cards(),
            };
            let stop = Arc::new(AtomicBool::new(false));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let result = runtime.block_on(async {
                let sim_stop = stop.clone();
                let mut sim =
                    tokio::task::spawn_blocking(move || ga467::sim::run_pty(options, sim_stop));
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
    }
}
