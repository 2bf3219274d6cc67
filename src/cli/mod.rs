//! The command line: one module per subcommand. Errors are reported here, once, in plain words.

mod check_config;
mod demo;
mod keygen;
mod run;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "countersign",
    version,
    about = "Service-counter evidence daemon: ID cards to signed records over MQTT 5"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file (exit 78 when invalid).
    CheckConfig {
        #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
        config: PathBuf,
    },
    /// Create the station signing key (Ed25519 JWK, mode 0600) and its public JWK in DIR.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a device simulator.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Run the whole chain on this machine: broker, simulated reader, daemon, case system.
    Demo {
        /// Stop after this many delivered records.
        #[arg(long, default_value_t = 3)]
        cards: u32,
        /// Where to write the records as sent and the station's public key.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run::run(&config),
        Command::CheckConfig { config } => check_config::run(&config),
        Command::Keygen { out } => keygen::run(&out),
        Command::Sim(sim) => sim::run(sim),
        Command::Demo { cards, out } => demo::run(cards, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("countersign: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
