//! [`UplinkOptions`] from the configuration: `[mqtt]`, its TLS files and the password file.

use anyhow::Context as _;

use super::UplinkOptions;
use super::tls::{TlsFiles, client_config};
use crate::config::Config;

pub fn options_from_config(config: &Config) -> anyhow::Result<UplinkOptions> {
    let mqtt = &config.mqtt;
    let credentials = match (&mqtt.username, &mqtt.password_file) {
        (Some(user), Some(file)) => {
            let password = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read mqtt.password_file {}", file.display()))?;
            Some((
                user.clone(),
                password.trim_end_matches(['\r', '\n']).to_string(),
            ))
        }
        (Some(user), None) => Some((user.clone(), String::new())),
        _ => None,
    };
    let tls = match &mqtt.tls {
        Some(t) => Some(
            client_config(&TlsFiles {
                ca: &t.ca_file,
                client: t
                    .client_cert_file
                    .as_deref()
                    .zip(t.client_key_file.as_deref()),
            })
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    Ok(UplinkOptions {
        station: config.station.id.to_string(),
        client_id: config.client_id(),
        host: mqtt.host.clone(),
        port: mqtt.port,
        credentials,
        tls,
        keep_alive: mqtt.keep_alive_secs.secs(),
        connect_timeout: mqtt.connect_timeout_secs.secs(),
        max_packet_bytes: mqtt.max_packet_bytes.get().min(u64::from(u32::MAX)) as u32,
        window: mqtt.inflight_records.get() as usize,
        inflight_messages: mqtt.inflight_messages.get() as usize,
        chunk_bytes: mqtt.chunk_bytes.get() as usize,
        flush_timeout: mqtt.flush_timeout_secs.secs(),
        ack_timeout: mqtt.ack_timeout_secs.secs(),
        reconnect_max: mqtt.reconnect_max_secs.secs(),
        response_topic_prefixes: config.commands.response_topic_prefixes.clone(),
    })
}
