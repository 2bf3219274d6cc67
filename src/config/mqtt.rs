//! `[mqtt]`: the broker connection and delivery settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Defaults to `countersign-<station id>`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (kept out of the config, which is world-readable).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: Bounded<5, 3600>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: Bounded<1, 300>,
    /// Largest MQTT packet we send or accept; must hold a whole record.
    #[serde(default = "default_max_packet")]
    pub max_packet_bytes: Bounded<16384, 268435455>,
    /// Records published and not yet acknowledged by the case system, at most.
    #[serde(default = "default_inflight")]
    pub inflight_records: Bounded<1, 1000>,
    /// A record not acknowledged within this time is published again.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_secs: Bounded<1, 86400>,
    /// Upper bound of the jittered reconnect backoff.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_secs: Bounded<1, 3600>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: default_host(),
            port: default_port(),
            client_id: None,
            username: None,
            password_file: None,
            keep_alive_secs: default_keep_alive(),
            connect_timeout_secs: default_connect_timeout(),
            max_packet_bytes: default_max_packet(),
            inflight_records: default_inflight(),
            ack_timeout_secs: default_ack_timeout(),
            reconnect_max_secs: default_reconnect_max(),
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_keep_alive() -> Bounded<5, 3600> {
    Bounded(30)
}
fn default_connect_timeout() -> Bounded<1, 300> {
    Bounded(30)
}
fn default_max_packet() -> Bounded<16384, 268435455> {
    Bounded(1024 * 1024)
}
fn default_inflight() -> Bounded<1, 1000> {
    Bounded(16)
}
fn default_ack_timeout() -> Bounded<1, 86400> {
    Bounded(60)
}
fn default_reconnect_max() -> Bounded<1, 3600> {
    Bounded(30)
}
