//! Logging. Commands log to stderr. The daemon logs to journald with structured fields when
//! systemd connected its stderr to the journal (`JOURNAL_STREAM`), to stderr otherwise; its
//! level comes from `[log] level` (reloadable) unless `RUST_LOG` is set.
//! Personal data never appears at info level or above; drivers mask ID numbers and names.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogLevel;

/// Installs the global subscriber for a command. `default_level` applies when `RUST_LOG` is
/// not set.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Where the daemon's log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journald,
    Stderr,
}

/// Changes the daemon's level on reload.
pub struct LogHandle {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
    from_env: bool,
    pub sink: Sink,
}

impl LogHandle {
    /// Applies `[log] level` (ignored while `RUST_LOG` decides).
    pub fn set_level(&self, level: LogLevel) {
        if self.from_env {
            return;
        }
        if let Some(handle) = &self.filter
            && handle.reload(EnvFilter::new(level.as_str())).is_ok()
        {
            tracing::debug!(level = level.as_str(), "log level applied");
        }
    }
}

/// Installs the daemon's subscriber: journald when stderr is the journal, else stderr. Every
/// journal entry carries `STATION=<id>` and the event's own fields (`READER=`, `FOLDER=`,
/// `RECORD_ID=`, `DEVICE=`...), so `journalctl -u countersign RECORD_ID=...` finds a record.
pub fn init_daemon(level: LogLevel, station: &str) -> LogHandle {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = if from_env {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.as_str()))
    } else {
        EnvFilter::new(level.as_str())
    };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    if connected_to_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        let journald = journald
            .with_field_prefix(None)
            .with_syslog_identifier("countersign".into())
            .with_custom_fields([("STATION", station)]);
        let installed = registry.with(journald).try_init().is_ok();
        return LogHandle {
            filter: installed.then_some(handle),
            from_env,
            sink: Sink::Journald,
        };
    }
    let installed = registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .try_init()
        .is_ok();
    LogHandle {
        filter: installed.then_some(handle),
        from_env,
        sink: Sink::Stderr,
    }
}

/// True when stderr is the journal stream systemd set up for this service: `JOURNAL_STREAM`
/// holds `<device>:<inode>` of that stream and matches stderr (systemd.exec(5)). A stderr
/// redirected elsewhere (a child's pipe, a file) keeps plain text.
pub fn connected_to_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stderr_dev_ino() else {
        return false;
    };
    journal_stream_matches(&stream.to_string_lossy(), dev, ino)
}

fn stderr_dev_ino() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

fn journal_stream_matches(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(journal_stream_matches("8:1234", 8, 1234));
        assert!(!journal_stream_matches("8:1235", 8, 1234));
        assert!(!journal_stream_matches("8", 8, 1234));
        assert!(!journal_stream_matches("x:y", 8, 1234));
        assert!(!journal_stream_matches("", 8, 1234));
    }
}

/// At most `burst` log lines per `window` for one kind of message a peer can cause at will (a
/// refused command, a refused response topic): the journal stays readable and cannot be flooded.
#[derive(Debug, Clone)]
pub struct RateLimitedLog {
    burst: u32,
    window: std::time::Duration,
    started: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl Default for RateLimitedLog {
    /// One line a minute.
    fn default() -> Self {
        RateLimitedLog::new(1, std::time::Duration::from_secs(60))
    }
}

impl RateLimitedLog {
    pub fn new(burst: u32, window: std::time::Duration) -> Self {
        RateLimitedLog {
            burst,
            window,
            started: None,
            logged: 0,
            suppressed: 0,
        }
    }

    /// `Some(lines left out since the last one logged)` when this one may be logged.
    pub fn allow(&mut self) -> Option<u64> {
        self.allow_at(std::time::Instant::now())
    }

    pub fn allow_at(&mut self, now: std::time::Instant) -> Option<u64> {
        if self
            .started
            .is_none_or(|started| now.duration_since(started) >= self.window)
        {
            self.started = Some(now);
            self.logged = 0;
        }
        if self.logged < self.burst {
            self.logged += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod rate_limit_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_is_logged_then_counted_until_the_window_ends() {
        let mut log = RateLimitedLog::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(log.allow_at(t0), Some(0));
        assert_eq!(log.allow_at(t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.allow_at(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(log.allow_at(t0 + Duration::from_secs(61)), Some(1000));
    }

    #[test]
    fn by_default_one_line_a_minute() {
        let mut log = RateLimitedLog::default();
        let t0 = Instant::now();
        assert_eq!(log.allow_at(t0), Some(0));
        for s in 1..60 {
            assert_eq!(log.allow_at(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(log.allow_at(t0 + Duration::from_secs(60)), Some(59));
    }
}
