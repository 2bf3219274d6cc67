//! Everything the daemon needs from the machine, checked before anything starts, the same way
//! by `countersign check-config` and `countersign run`: the station's keys, the state directory
//! (writable, or creatable) and the session data key in it (when it exists), the MQTT password file and `[mqtt.tls]` files, `[commands] trusted_keys`,
//! the control socket's group, and the hot folders (there, directories, writable by this user). Each problem names its
//! configuration key. `run` exits 78 (EX_CONFIG) on any of them, which the unit does not restart
//! (`RestartPreventExitStatus=78`): a restart cannot fix a missing file.

use std::path::Path;

use crate::config::Config;
use crate::station::{self, Crypto};

/// The loaded keys when every check passes; otherwise every problem found, one line each.
pub fn check(config: &Config) -> Result<Crypto, Vec<String>> {
    let mut problems = Vec::new();
    let crypto = station::crypto::load(config)
        .map_err(|e| problems.push(e))
        .ok();
    // The outbox, the session key and the control socket live there.
    if let Err(e) = dir_or_creatable(&config.station.state_dir) {
        problems.push(format!("station.state_dir: {e}"));
    }
    if let Err(e) = session_key(&config.station.state_dir) {
        problems.push(e);
    }
    // The password file (a secret file) and the TLS files, loaded as the uplink will load them.
    if let Err(e) = crate::uplink::options_from_config(config) {
        problems.push(e.to_string());
    }
    for path in &config.commands.trusted_keys {
        if let Err(e) = crate::record::keys::Keyring::load(std::slice::from_ref(path)) {
            problems.push(format!("commands.trusted_keys: {e}"));
        }
    }
    if let Some(group) = &config.session.control_socket_group
        && let Err(e) = crate::station::control::group_id(group)
    {
        problems.push(e.to_string());
    }
    for (name, folder) in &config.folders {
        let key = |k: &str| format!("folders.{name}.{k}");
        if let Err(e) = writable_dir(&folder.path) {
            problems.push(format!("{}: {e}", key("path")));
        }
        for (k, dir) in [
            ("done_dir", folder.done_dir()),
            ("failed_dir", folder.failed_dir()),
        ] {
            if let Err(e) = dir_or_creatable(&dir) {
                problems.push(format!("{}: {e}", key(k)));
            }
        }
    }
    match crypto {
        Some(crypto) if problems.is_empty() => Ok(crypto),
        _ => Err(problems),
    }
}

/// An existing session key must be private (it is created on first start otherwise).
fn session_key(state_dir: &Path) -> Result<(), String> {
    let path = state_dir.join("session.key");
    match crate::secret_file::open(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(format!("station.state_dir: session key {e}")),
    }
}

/// `dir` exists, is a directory, and this user may create and move files in it.
fn writable_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => crate::os::may_write_dir(dir).map_err(|e| {
            format!(
                "{} is not writable by this service's user: {e}",
                dir.display()
            )
        }),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// `dir` is a writable directory, or it can be created (its nearest existing ancestor is one).
fn dir_or_creatable(dir: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(dir).is_ok() {
        return writable_dir(dir);
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        if a.as_os_str().is_empty() {
            break;
        }
        if std::fs::symlink_metadata(a).is_ok() {
            return writable_dir(a).map_err(|e| {
                format!(
                    "{} does not exist and cannot be created: {e}",
                    dir.display()
                )
            });
        }
        ancestor = a.parent();
    }
    Err(format!("{} cannot be created", dir.display()))
}
