//! Running as a Linux service: systemd notifications (READY, STATUS, WATCHDOG, STOPPING),
//! signals (SIGTERM/SIGINT stop, SIGHUP reloads the configuration), the status that STATUS lines
//! and metrics are built from, and the optional metrics endpoint. The station knows none of
//! this: it gets a reload channel, a heartbeat and a "started" signal (`station::Hooks`), and
//! everything else is read from the event bus and the outbox.

pub mod notify;
pub mod preflight;
pub mod reload;
pub mod signals;
pub mod state;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::logging::LogHandle;
use crate::station::{self, Crypto, Heartbeat, Hooks};
use crate::{events, metrics};

use signals::Signal;
use state::State;

/// How often the status line and the outbox figures are refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Runs the daemon until SIGTERM or SIGINT: the station, status, watchdog, reload, metrics.
pub async fn run(
    path: PathBuf,
    config: Config,
    crypto: Crypto,
    log: LogHandle,
) -> anyhow::Result<()> {
    let mut signals = signals::Signals::install()?;
    let events = events::bus();
    let state = Arc::new(State::new(&config));
    tokio::spawn(state::follow(events.subscribe(), state.clone()));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let heartbeat = Arc::new(Heartbeat::default());
    let (started_tx, started_rx) = oneshot::channel();
    let hooks = Hooks {
        reload: Some(config_rx.clone()),
        started: Some(started_tx),
        heartbeat: Some(heartbeat.clone()),
    };
    let mut station = tokio::spawn(station::run_with(
        config,
        crypto,
        events.clone(),
        shutdown_rx,
        hooks,
    ));
    tokio::spawn(metrics::serve(
        config_rx.clone(),
        state.clone(),
        heartbeat.clone(),
    ));

    let outbox = tokio::select! {
        started = started_rx => match started {
            Ok(outbox) => outbox,
            // The station ended before it ran: its error says why.
            Err(_) => return station.await?,
        },
        result = &mut station => return result?,
    };
    state.set_outbox(Some(outbox.clone()));
    state.refresh_outbox().await;
    state.set_ready();
    let line = state.status_line();
    info!(status = %line, "ready");
    notify::ready(&line);
    tokio::spawn(watchdog::run(heartbeat.clone(), state.clone()));
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    let mut last_status = line;

    let running = loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Stop => {
                    info!("stopping: no new captures; the current one is committed first");
                    notify::stopping("stopping: finishing the current capture");
                    let _ = shutdown_tx.send(true);
                    break station.await;
                }
                Signal::Reload => {
                    notify::reloading();
                    let running = config_rx.borrow().clone();
                    match reload::reload(&path, &running) {
                        Ok(outcome) => {
                            outcome.log();
                            state.reloaded(&outcome);
                            log.set_level(outcome.config.log.level);
                            let _ = config_tx.send(Arc::new(outcome.config));
                        }
                        Err(e) => {
                            error!(error = %e, "reload refused: the new configuration is invalid; running with the previous one");
                            state.reload_refused(e.to_string());
                        }
                    }
                    last_status = state.status_line();
                    notify::ready(&last_status);
                }
            },
            _ = status_tick.tick() => {
                state.refresh_outbox().await;
                let line = state.status_line();
                if line != last_status {
                    notify::status(&line);
                    last_status = line;
                }
            }
            result = &mut station => break result,
        }
    };
    match running {
        Ok(Ok(())) => {
            info!("stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(e) => {
            warn!(error = %e, "the station task failed");
            Err(e.into())
        }
    }
}
