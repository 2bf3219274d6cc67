//! The systemd watchdog: `WATCHDOG=1` at half of `WATCHDOG_USEC`, only while the station's main
//! loop turns (its heartbeat is fresh). A loop stuck on a hung disk or a deadlock stops the
//! pings, and systemd restarts the service (`WatchdogSec=` in the unit).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::notify;
use super::state::State;
use crate::station::Heartbeat;

/// The main loop turns at least every 5 s; older than this, it is stuck.
pub const STALE_AFTER: Duration = Duration::from_secs(20);

pub fn healthy(heartbeat: &Heartbeat) -> bool {
    heartbeat.age() < STALE_AFTER
}

pub async fn run(heartbeat: Arc<Heartbeat>, state: Arc<State>) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (timeout / 2).max(Duration::from_millis(100));
    info!(timeout_ms = timeout.as_millis() as u64, "watchdog enabled");
    let mut tick = tokio::time::interval(period);
    let mut stalled = false;
    loop {
        tick.tick().await;
        if healthy(&heartbeat) {
            if stalled {
                info!("main loop turning again; watchdog pings resumed");
                stalled = false;
            }
            notify::watchdog();
        } else if !stalled {
            stalled = true;
            warn!(
                stalled_ms = heartbeat.age().as_millis() as u64,
                "main loop stalled: watchdog pings stopped (systemd restarts the service if it does not recover)"
            );
            state.set_stalled(true);
        }
        if !stalled {
            state.set_stalled(false);
        }
    }
}
