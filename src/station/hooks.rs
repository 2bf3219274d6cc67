//! What the service layer (`crate::service`) hands the station: reloaded configuration, the
//! moment the station is running, and a heartbeat for the watchdog. `station::run` uses none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::config::Config;
use crate::outbox::{Limits, SharedOutbox};

#[derive(Default)]
pub struct Hooks {
    /// The configuration after each reload; the station applies its live settings
    /// (`records.checkpoint_*`, `outbox.max_*`) from it. Restart-only settings in it are the
    /// running ones (the service layer keeps them back).
    pub reload: Option<watch::Receiver<Arc<Config>>>,
    /// Told once the uplink and every device supervisor are running (devices may still be
    /// missing), with the outbox, for status lines and metrics.
    pub started: Option<oneshot::Sender<SharedOutbox>>,
    /// Stamped on every turn of the station's main loop.
    pub heartbeat: Option<Arc<Heartbeat>>,
}

impl Hooks {
    pub(super) fn beat(&self) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }

    /// The next reloaded configuration; never resolves without a reload channel.
    pub(super) async fn next_reload(&mut self) -> Arc<Config> {
        if let Some(rx) = self.reload.as_mut()
            && rx.changed().await.is_ok()
        {
            return rx.borrow_and_update().clone();
        }
        std::future::pending().await
    }
}

pub(super) fn limits(config: &Config) -> Limits {
    Limits {
        max_bytes: config.outbox.max_bytes.get(),
        max_records: config.outbox.max_records.get(),
    }
}

/// When the station's main loop last turned. It turns at least every 5 s (the checkpoint tick)
/// and on every capture, so a stale heartbeat means the loop is stuck.
#[derive(Debug)]
pub struct Heartbeat {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat (since creation when there was none).
    pub fn age(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}
