//! What a reload (SIGHUP, `systemctl reload countersign`) may change while the daemon runs.
//!
//! [`SETTINGS`] is the one place that marks every setting reloadable ([`Apply::Live`]) or
//! restart-only ([`Apply::Restart`]), with the reason; `config/countersign.toml` and the admin
//! guide document the same table. A key that no entry covers is restart-only.
//!
//! A reload builds the new configuration on the side, [`diff`]s it against the running one, and
//! [`apply_live`] takes over only the live changes: the running configuration keeps every
//! restart-only value until the next restart, and the daemon reports those changes.

use std::collections::BTreeMap;

use super::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Applied on reload, without dropping a capture, a session or a delivery.
    Live,
    /// Takes effect on the next restart; a reload reports it and leaves it.
    Restart,
}

/// A setting (or a group of them: `*` stands for one key, e.g. a device name; a prefix covers
/// everything under it). The longest matching pattern decides.
#[derive(Debug)]
pub struct Setting {
    pub pattern: &'static str,
    pub apply: Apply,
    pub why: &'static str,
}

const fn live(pattern: &'static str, why: &'static str) -> Setting {
    Setting {
        pattern,
        apply: Apply::Live,
        why,
    }
}

const fn restart(pattern: &'static str, why: &'static str) -> Setting {
    Setting {
        pattern,
        apply: Apply::Restart,
        why,
    }
}

pub const SETTINGS: &[Setting] = &[
    restart(
        "station",
        "the station id names the MQTT topics and every record, the signing key signs the chain, \
         state_dir holds the outbox",
    ),
    restart(
        "crypto",
        "keys and the profile are loaded and checked once, before the daemon reports ready",
    ),
    live(
        "records.checkpoint_every",
        "read by the checkpoint schedule at every record",
    ),
    live(
        "records.checkpoint_interval_secs",
        "read by the checkpoint schedule at every tick",
    ),
    restart(
        "mqtt",
        "the broker connection is built at start; changing it means reconnecting, which would \
         interrupt deliveries in flight",
    ),
    live(
        "outbox.max_bytes",
        "checked when a capture is committed; lowering it never drops what is held",
    ),
    live(
        "outbox.max_records",
        "checked when a capture is committed; lowering it never drops what is held",
    ),
    restart(
        "id_readers",
        "a reader's supervisor takes its settings when it opens the reader; restarting it on a \
         reload would read a card lying on the reader a second time",
    ),
    restart(
        "folders",
        "a hot folder's supervisor takes its settings when it starts",
    ),
    restart(
        "cameras",
        "a camera's supervisor opens the device with its settings; reopening it on a reload \
         would drop the settled stream and the auto-capture state",
    ),
    restart(
        "scanners",
        "a scanner's supervisor takes its settings when it starts",
    ),
    restart(
        "pcsc",
        "the PC/SC supervisor takes its readers, CSCA list and MRZ inbox when it starts, and \
         holds MRZs waiting for their card",
    ),
    restart(
        "imaging",
        "the capture supervisors take the imaging options when they start",
    ),
    restart(
        "session",
        "the desk takes its session rules when it starts; a change must not alter a session \
         already open",
    ),
    restart(
        "commands",
        "the keys allowed to drive the counter are loaded once, at start",
    ),
    restart(
        "acks",
        "the keys whose receipts may take records out of the outbox are loaded once, at start",
    ),
    live("log.level", "the log filter is swapped in place"),
    live(
        "metrics.listen",
        "the endpoint is rebound; scrapes in progress finish on the old socket",
    ),
];

/// The entry that decides for a dotted key.
pub fn setting_for(key: &str) -> Option<&'static Setting> {
    let parts: Vec<&str> = key.split('.').collect();
    SETTINGS
        .iter()
        .filter(|s| {
            let pattern: Vec<&str> = s.pattern.split('.').collect();
            pattern.len() <= parts.len()
                && pattern.iter().zip(&parts).all(|(p, k)| *p == "*" || p == k)
        })
        .max_by_key(|s| s.pattern.split('.').count())
}

/// One changed setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted key, e.g. `id_readers.desk.poll_interval_ms`.
    pub key: String,
    pub apply: Apply,
    pub why: &'static str,
}

/// Every setting that differs between `old` and `new` (added, removed or changed).
pub fn diff(old: &Config, new: &Config) -> Result<Vec<Change>, String> {
    let (old, new) = (flat(old)?, flat(new)?);
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let (apply, why) = setting_for(k)
                .map_or((Apply::Restart, "not marked reloadable"), |s| {
                    (s.apply, s.why)
                });
            Change {
                key: k.clone(),
                apply,
                why,
            }
        })
        .collect())
}

/// The configuration to run with after a reload: `running` with the live changes of `new`.
pub fn apply_live(running: &Config, new: &Config) -> Result<Config, String> {
    let changes = diff(running, new)?;
    let mut value = toml::Value::try_from(running).map_err(|e| e.to_string())?;
    let new_value = toml::Value::try_from(new).map_err(|e| e.to_string())?;
    for change in changes.iter().filter(|c| c.apply == Apply::Live) {
        let parts: Vec<&str> = change.key.split('.').collect();
        set(&mut value, &parts, get(&new_value, &parts).cloned());
    }
    value.try_into().map_err(|e: toml::de::Error| e.to_string())
}

fn flat(config: &Config) -> Result<BTreeMap<String, toml::Value>, String> {
    let value = toml::Value::try_from(config).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    flatten(String::new(), value, &mut out);
    Ok(out)
}

fn flatten(prefix: String, value: toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(key, v, out);
            }
        }
        leaf => {
            out.insert(prefix, leaf);
        }
    }
}

fn get<'v>(value: &'v toml::Value, parts: &[&str]) -> Option<&'v toml::Value> {
    parts.iter().try_fold(value, |v, p| v.get(*p))
}

fn set(value: &mut toml::Value, parts: &[&str], new: Option<toml::Value>) {
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut current = value;
    for p in parents {
        let Some(table) = current.as_table_mut() else {
            return;
        };
        current = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    if let Some(table) = current.as_table_mut() {
        match new {
            Some(v) => {
                table.insert(last.to_string(), v);
            }
            None => {
                table.remove(*last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = "[station]\nid = \"w1\"\nsigning_key = \"/k\"\n\n[crypto]\nrecipient_key = \"/r\"\n\n[id_readers.desk]\nport = \"/dev/x\"\n";

    fn config(extra: &str) -> Config {
        crate::config::parse(&format!("{BASE}{extra}"), Path::new("t.toml")).unwrap()
    }

    #[test]
    fn every_key_of_a_full_config_is_marked() {
        let full = config(
            "poll_interval_ms = 300\n[folders.s]\npath = \"/s\"\n[pcsc.readers.r]\nmatch = \"x\"\n\
             [mqtt.tls]\nca_file = \"/ca\"\n[metrics]\nlisten = \"127.0.0.1:9464\"\n",
        );
        for key in flat(&full).unwrap().keys() {
            assert!(setting_for(key).is_some(), "{key} is not in SETTINGS");
        }
    }

    #[test]
    fn live_changes_apply_and_restart_changes_are_kept_back() {
        let old = config("");
        let new = config(
            "poll_interval_ms = 300\n[records]\ncheckpoint_every = 7\n[outbox]\nmax_records = 5\n\
             [log]\nlevel = \"debug\"\n[metrics]\nlisten = \"127.0.0.1:9464\"\n[mqtt]\nport = 8883\n",
        );
        let changes = diff(&old, &new).unwrap();
        let keys = |apply| {
            changes
                .iter()
                .filter(|c| c.apply == apply)
                .map(|c| c.key.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(Apply::Live),
            [
                "log.level",
                "metrics.listen",
                "outbox.max_records",
                "records.checkpoint_every"
            ]
        );
        assert_eq!(
            keys(Apply::Restart),
            ["id_readers.desk.poll_interval_ms", "mqtt.port"]
        );
        let running = apply_live(&old, &new).unwrap();
        assert_eq!(running.records.checkpoint_every.get(), 7);
        assert_eq!(running.outbox.max_records.get(), 5);
        assert_eq!(running.log.level, super::super::LogLevel::Debug);
        assert_eq!(
            running.metrics.listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(running.mqtt.port, 1883, "restart-only: kept");
        let desk = running.id_readers.values().next().unwrap();
        assert_eq!(desk.poll_interval_ms.get(), 500, "restart-only: kept");
        // Switching the endpoint off again is a live change too (a removed key).
        let off = apply_live(&running, &old).unwrap();
        assert_eq!(off.metrics.listen, None);
        assert!(diff(&off, &old).unwrap().is_empty());
    }

    #[test]
    fn adding_a_device_is_restart_only() {
        let changes = diff(
            &config(""),
            &config("[id_readers.side]\nport = \"/dev/y\"\n"),
        )
        .unwrap();
        assert!(!changes.is_empty());
        assert!(
            changes.iter().all(|c| c.apply == Apply::Restart),
            "{changes:?}"
        );
    }
}
