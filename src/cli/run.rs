use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::sync::watch;
use tracing::info;

use crate::config::{self, EX_CONFIG};
use crate::{events, logging, station};

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    logging::init("info");
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign: invalid configuration: {e}");
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let crypto = match station::crypto::load(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign: {e}");
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutdown requested");
            let _ = shutdown_tx.send(true);
        });
        station::run(config, crypto, events::bus(), shutdown_rx).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
