//! [`UplinkOptions`] from the configuration: `[mqtt]`, its TLS files and the password file.

use zeroize::Zeroizing;

use super::UplinkOptions;
use super::tls::{TlsFiles, client_config};
use crate::config::Config;

pub fn options_from_config(config: &Config) -> anyhow::Result<UplinkOptions> {
    let mqtt = &config.mqtt;
    let credentials = match (&mqtt.username, &mqtt.password_file) {
        (Some(user), Some(file)) => {
            let password =
                read_password(file).map_err(|e| anyhow::anyhow!("mqtt.password_file: {e}"))?;
            Some((user.clone(), password))
        }
        (Some(user), None) => Some((user.clone(), Password::default())),
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
        // The outbox may still say this station was upgraded (see `station::run_with`).
        answers: std::sync::Arc::new(crate::receipts::Policy::from_config(config, false)?),
    })
}

/// The broker password: wiped when dropped, never printed (`UplinkOptions` is `Debug`). rumqttc
/// keeps its own copy in its connect packet for reconnects; that copy is not wiped.
#[derive(Clone, Default)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Reads the password file as a secret file (no symbolic link, owner and mode checked on the
/// opened file); one line, its line ending dropped.
pub fn read_password(file: &std::path::Path) -> Result<Password, String> {
    let bytes = crate::secret_file::read(file).map_err(|e| e.to_string())?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{} is not UTF-8 text", file.display()))?;
    Ok(Password(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_string(),
    )))
}
