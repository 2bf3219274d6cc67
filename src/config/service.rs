//! `[log]` and `[metrics]`: how the daemon reports on itself.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The least severe level logged. `RUST_LOG`, when set, overrides it.
    #[serde(default)]
    pub level: LogLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    /// Debug and trace may show device replies: only while diagnosing.
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `[metrics]`: the Prometheus endpoint (off unless `listen` is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A loopback address and port, e.g. `127.0.0.1:9464`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        match self.listen {
            Some(addr) if !addr.ip().is_loopback() => Err((
                "metrics.listen".into(),
                format!(
                    "{addr} is not a loopback address: the endpoint is for this machine only (127.0.0.1 or [::1])"
                ),
            )),
            _ => Ok(()),
        }
    }
}
