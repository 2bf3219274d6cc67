//! `[mqtt]`: the broker connection and delivery settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// Blobs are sent in chunks of this many bytes of their wire form. 64 KiB fits every broker
    /// (AWS IoT's 128 KB is the tightest) with room for the topic and properties.
    #[serde(default = "default_chunk")]
    pub chunk_bytes: Bounded<1024, 67108864>,
    /// MQTT publishes (chunks, records) handed to the connection and not yet PUBACKed, at most.
    /// RAM is about this times `chunk_bytes`.
    #[serde(default = "default_inflight_messages")]
    pub inflight_messages: Bounded<1, 1000>,
    /// A connection that cannot write for this long (beyond the keep-alive) is dropped and made
    /// again. Size it for the link: a chunk must get through in this time.
    #[serde(default = "default_flush_timeout")]
    pub flush_timeout_secs: Bounded<1, 3600>,
    /// Plain TCP to a broker that is not on loopback. Records are encrypted either way, but the
    /// MQTT password, the case system's commands and the answers are not: without `[mqtt.tls]`
    /// a remote broker is refused unless this says the network is trusted (a LAN or VPN).
    #[serde(default)]
    pub allow_plain_tcp: bool,
    /// TLS to the broker (`[mqtt.tls]`); absent means plain TCP (loopback, or `allow_plain_tcp`).
    #[serde(default)]
    pub tls: Option<MqttTlsConfig>,
}

/// `[mqtt.tls]`: server authentication by CA, optional client certificate (mutual TLS).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTlsConfig {
    /// PEM file with the CA certificate(s) that signed the broker's certificate (required).
    pub ca_file: PathBuf,
    /// PEM client certificate chain, for brokers that authenticate stations by certificate.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (PKCS#8, SEC1 or PKCS#1), mode 0600.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
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
            chunk_bytes: default_chunk(),
            inflight_messages: default_inflight_messages(),
            flush_timeout_secs: default_flush_timeout(),
            allow_plain_tcp: false,
            tls: None,
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
fn default_chunk() -> Bounded<1024, 67108864> {
    Bounded(64 * 1024)
}
fn default_inflight_messages() -> Bounded<1, 1000> {
    Bounded(16)
}
fn default_flush_timeout() -> Bounded<1, 3600> {
    Bounded(30)
}

/// Whether `host` is this machine by its text alone: `localhost`, `localhost.` or a loopback IP
/// literal (IPv6 with or without brackets, IPv4-mapped included). A name that merely resolves to
/// loopback does not count: the configuration is checked without DNS, and a name's answer can
/// change after the check.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    literal
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

impl MqttConfig {
    /// Plain TCP to a broker that is not on loopback: refused, or warned about when
    /// `allow_plain_tcp` is set.
    pub fn plain_tcp_off_loopback(&self) -> bool {
        self.tls.is_none() && !is_loopback_host(&self.host)
    }

    /// What `check-config` and `run` say when plain TCP to a remote broker was allowed.
    pub fn plain_tcp_warning(&self) -> Option<String> {
        (self.allow_plain_tcp && self.plain_tcp_off_loopback()).then(|| {
            format!(
                "mqtt.allow_plain_tcp: plain TCP to {:?}, which is not on loopback: records \
                 travel encrypted, but the case system's commands and answers and the MQTT \
                 password travel in clear; use [mqtt.tls] unless the network is a trusted LAN or VPN",
                self.host
            )
        })
    }
}

/// Room for the topic, MQTT 5 properties and fixed header of a chunk message.
pub const CHUNK_OVERHEAD: u64 = 2048;

impl super::model::Config {
    /// Cross-key checks of `[mqtt]`; returns the dotted key and the message.
    pub(super) fn validate_uplink(&self) -> Result<(), (String, String)> {
        let mqtt = &self.mqtt;
        let needed = mqtt.chunk_bytes.get() + CHUNK_OVERHEAD;
        if needed > mqtt.max_packet_bytes.get() {
            return Err((
                "mqtt.chunk_bytes".into(),
                format!(
                    "a chunk of {} bytes needs mqtt.max_packet_bytes of at least {needed}",
                    mqtt.chunk_bytes.get()
                ),
            ));
        }
        if mqtt.plain_tcp_off_loopback() && !mqtt.allow_plain_tcp {
            return Err((
                "mqtt.host".into(),
                format!(
                    "{:?} is not on loopback and there is no [mqtt.tls]: the MQTT password, the \
                     case system's commands and the answers would cross the network in clear. \
                     Add [mqtt.tls] with ca_file (the CA that signed the broker's certificate), \
                     or, for a broker on a trusted LAN or VPN, set mqtt.allow_plain_tcp = true \
                     (a name that resolves to loopback counts as remote: the check does no DNS)",
                    mqtt.host
                ),
            ));
        }
        if let Some(tls) = &mqtt.tls
            && tls.client_key_file.is_some() != tls.client_cert_file.is_some()
        {
            let key = if tls.client_key_file.is_some() {
                "mqtt.tls.client_key_file"
            } else {
                "mqtt.tls.client_cert_file"
            };
            return Err((
                key.into(),
                "mutual TLS needs both client_cert_file and client_key_file".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const BASE: &str =
        "[station]\nid = \"w1\"\nsigning_key = \"/k\"\n\n[crypto]\nrecipient_key = \"/r\"\n\n";

    fn err(extra: &str) -> crate::config::ConfigError {
        crate::config::parse(&format!("{BASE}{extra}"), Path::new("t.toml")).unwrap_err()
    }

    #[test]
    fn uplink_keys_are_checked_together_and_located() {
        let ok = crate::config::parse(
            &format!("{BASE}[mqtt]\nchunk_bytes = 32768\n\n[mqtt.tls]\nca_file = \"/ca.pem\"\n\n[outbox]\nmax_records = 10\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(ok.mqtt.chunk_bytes.get(), 32768);
        assert_eq!(ok.outbox.max_records.get(), 10);
        let e = err("[mqtt]\nmax_packet_bytes = 65536\nchunk_bytes = 65536\n");
        assert_eq!(e.key.as_deref(), Some("mqtt.chunk_bytes"), "{e}");
        assert!(e.message.contains("67584"), "{e}");
        let e = err("[mqtt.tls]\nca_file = \"/ca\"\nclient_key_file = \"/k\"\n");
        assert_eq!(e.key.as_deref(), Some("mqtt.tls.client_key_file"), "{e}");
        let e = err("[outbox]\nmax_bytes = 10\n");
        assert_eq!(e.key.as_deref(), Some("outbox.max_bytes"), "{e}");
        let e = err("[folders.scan]\npath = \"/s\"\nextensions = [\".jpg\"]\n");
        assert_eq!(e.key.as_deref(), Some("folders.scan.extensions"), "{e}");
        let e = err("[folders.scan]\nsettle = 3\n");
        assert!(e.message.contains("settle"), "{e}");
    }

    #[test]
    fn loopback_is_decided_from_the_text_alone() {
        for (host, loopback) in [
            ("localhost", true),
            ("LocalHost", true),
            ("localhost.", true),
            ("127.0.0.1", true),
            ("127.10.20.30", true),
            ("::1", true),
            ("[::1]", true),
            ("0:0:0:0:0:0:0:1", true),
            ("::ffff:127.0.0.1", true),
            ("[::ffff:127.0.0.1]", true),
            ("[127.0.0.1]", true),
            // Names that may well resolve to loopback: no DNS at config parse.
            ("localhost.localdomain", false),
            ("ip6-localhost", false),
            ("foo.localhost", false),
            ("broker.local", false),
            // Not literals Rust parses (inet_aton would): refused rather than guessed.
            ("127.1", false),
            ("2130706433", false),
            ("::1%lo", false),
            ("[::1", false),
            ("0.0.0.0", false),
            ("::", false),
            ("10.0.0.5", false),
            ("128.0.0.1", false),
            ("::2", false),
            ("::ffff:10.0.0.1", false),
            (" 127.0.0.1", false),
        ] {
            assert_eq!(super::is_loopback_host(host), loopback, "{host:?}");
        }
    }

    #[test]
    fn plain_tcp_off_loopback_needs_tls_or_the_explicit_setting() {
        let parse =
            |extra: &str| crate::config::parse(&format!("{BASE}{extra}"), Path::new("t.toml"));
        // Loopback (and the default host) without TLS: fine.
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            let c = parse(&format!("[mqtt]\nhost = \"{host}\"\n")).unwrap();
            assert!(!c.mqtt.plain_tcp_off_loopback(), "{host}");
        }
        assert!(!parse("").unwrap().mqtt.allow_plain_tcp);

        // A remote broker without TLS: refused, located at mqtt.host, saying what to do.
        let e = err("[mqtt]\nport = 1883\nhost = \"broker.lan\"\n");
        assert_eq!(e.key.as_deref(), Some("mqtt.host"), "{e}");
        assert_eq!((e.line, e.column), (Some(10), Some(1)), "{e}");
        for needle in [
            "broker.lan",
            "[mqtt.tls]",
            "ca_file",
            "mqtt.allow_plain_tcp = true",
        ] {
            assert!(e.message.contains(needle), "{needle}: {e}");
        }
        let e = err("[mqtt]\nhost = \"localhost.localdomain\"\nallow_plain_tcp = false\n");
        assert_eq!(e.key.as_deref(), Some("mqtt.host"), "{e}");

        // With TLS, or with the explicit setting: accepted.
        let c = parse("[mqtt]\nhost = \"broker.lan\"\n[mqtt.tls]\nca_file = \"/ca\"\n").unwrap();
        assert!(!c.mqtt.plain_tcp_off_loopback());
        let c = parse("[mqtt]\nhost = \"10.0.0.5\"\nallow_plain_tcp = true\n").unwrap();
        assert!(c.mqtt.allow_plain_tcp && c.mqtt.plain_tcp_off_loopback());
        let warning = c.mqtt.plain_tcp_warning().unwrap();
        assert!(
            warning.contains("10.0.0.5") && warning.contains("password"),
            "{warning}"
        );
        // Allowed but on loopback: nothing to warn about.
        let c = parse("[mqtt]\nallow_plain_tcp = true\n").unwrap();
        assert_eq!(c.mqtt.plain_tcp_warning(), None);
    }
}
