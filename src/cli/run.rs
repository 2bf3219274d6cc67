//! `countersign run`: the daemon. Configuration, keys and every file and directory it needs are
//! checked before anything starts (`service::preflight`; exit 78 when they are wrong, which the
//! unit does not restart); the rest is `service::run`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{self, EX_CONFIG};
use crate::{logging, service};

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
    if let Some(warning) = config.mqtt.plain_tcp_warning() {
        tracing::warn!("{warning}");
    }
    // Keys, password, TLS files, trusted keys, hot folders: a problem here is not fixed by a
    // restart, so it is exit 78 before the station starts, never exit 1 from inside it.
    let crypto = match service::preflight::check(&config) {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                eprintln!("countersign: {p}");
            }
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(service::run(path.to_path_buf(), config, crypto, log))?;
    Ok(ExitCode::SUCCESS)
}
