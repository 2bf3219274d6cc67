//! SIGHUP: build the new configuration on the side (files and drop-ins, fully validated), keep
//! the old one if it is invalid, and take over only the settings `config::reload::SETTINGS`
//! marks live. Restart-only changes are reported (log and STATUS) and left for the next start.

use std::path::Path;

use tracing::{info, warn};

use crate::config::reload::{self, Apply, Change};
use crate::config::{self, Config};

pub struct Outcome {
    /// The configuration to run with: the running one with the live changes applied.
    pub config: Config,
    pub live: Vec<Change>,
    pub restart: Vec<Change>,
}

/// Reads and validates the configuration at `path` and works out what to apply. An error (the
/// new configuration does not validate) leaves everything as it runs.
pub fn reload(path: &Path, running: &Config) -> Result<Outcome, String> {
    let new = config::load(path).map_err(|e| e.to_string())?;
    let changes = reload::diff(running, &new)?;
    let config = reload::apply_live(running, &new)?;
    let (live, restart) = changes.into_iter().partition(|c| c.apply == Apply::Live);
    Ok(Outcome {
        config,
        live,
        restart,
    })
}

impl Outcome {
    pub fn log(&self) {
        for c in &self.live {
            info!(key = %c.key, "reload: applied");
        }
        for c in &self.restart {
            warn!(key = %c.key, why = c.why, "reload: this change needs a restart (systemctl restart countersign); left unchanged");
        }
        info!(
            applied = self.live.len(),
            need_restart = self.restart.len(),
            "configuration reloaded"
        );
    }

    /// The keys that wait for a restart, for the status line.
    pub fn restart_keys(&self) -> Vec<String> {
        self.restart.iter().map(|c| c.key.clone()).collect()
    }
}
