//! systemd notifications (`sd_notify(3)` over `$NOTIFY_SOCKET`; nothing happens without it).
//! Failures are logged at debug only: a service manager that stopped listening is not a reason
//! to stop serving the counter.

use sd_notify::NotifyState;
use tracing::debug;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// `READY=1` with a status line (also after a reload).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(&one_line(status))]);
}

pub fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the configuration"),
    ]);
}

pub fn stopping(status: &str) {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status(&one_line(status)),
    ]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// STATUS= is one line; newlines would end the assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
