//! `countersign run`: the daemon. Configuration and keys are checked before anything starts
//! (exit 78 when they are wrong, which the unit does not restart); the rest is `service::run`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{self, EX_CONFIG};
use crate::{logging, service, station};

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    // Before any secret is read: no core dump (the unit also sets LimitCORE=0) and no ptrace or
    // /proc/<pid>/mem reads by other processes of the service user.
    crate::os::forbid_core_dumps()
        .context("cannot mark the process not dumpable (prctl PR_SET_DUMPABLE)")?;
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign: invalid configuration: {e}");
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let log = logging::init_daemon(config.log.level, config.station.id.as_str());
    let crypto = match station::crypto::load(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign: {e}");
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(service::run(path.to_path_buf(), config, crypto, log))?;
    Ok(ExitCode::SUCCESS)
}
