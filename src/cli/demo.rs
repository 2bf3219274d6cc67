use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Profile;
use crate::{demo, logging};

pub fn run(
    cards: u32,
    out: &Path,
    gm: bool,
    scenario: Option<Scenario>,
) -> anyhow::Result<ExitCode> {
    // The demo prints its own lines; logs only say something when it goes wrong. The embedded
    // broker logs our own readiness probe as an error, so it stays quiet unless RUST_LOG says.
    // The simulated reader is stopped once its cards are read; the reader's retry warnings
    // after that are expected and not shown.
    logging::init("warn,rumqttd=off,countersign::devices::id_reader=error");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let profile = if gm { Profile::Gm } else { Profile::Standard };
    match scenario {
        None => runtime.block_on(demo::run(cards, out, profile))?,
        Some(Scenario::Marriage) => runtime.block_on(demo::run_marriage(out, profile))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Demo scenarios beyond the default card-and-page run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A marriage registration driven by the case system: two cards of different types and
    /// four labelled pages sealed into one record.
    Marriage,
}
