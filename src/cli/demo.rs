use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::{demo, logging};

pub fn run(cards: u32, out: &Path) -> anyhow::Result<ExitCode> {
    // The demo prints its own lines; logs only say something when it goes wrong. The embedded
    // broker logs our own readiness probe as an error, so it stays quiet unless RUST_LOG says.
    logging::init("warn,rumqttd=off");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(demo::run(cards, out))?;
    Ok(ExitCode::SUCCESS)
}
