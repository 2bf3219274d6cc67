//! `[session]` (case sessions) and `[commands]` (who may drive the counter over MQTT).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutAction {
    /// Seal what the session captured into its record (nothing captured is lost).
    #[default]
    Close,
    /// Discard it (nothing is sent; an audit event says so).
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutsideSession {
    /// A capture with no session open becomes a record of its own.
    #[default]
    Record,
    /// It is dropped with an event (counters where only the case system decides what is kept).
    Ignore,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A card read with no session open opens one (counters without a case system integration).
    #[serde(default)]
    pub auto_open: bool,
    /// A session idle this long (no capture, no command) times out.
    #[serde(default = "default_timeout")]
    pub timeout_secs: Bounded<5, 86_400>,
    #[serde(default)]
    pub timeout_action: TimeoutAction,
    #[serde(default)]
    pub outside_session: OutsideSession,
    /// The local control socket for `countersign session ...` (mobile kits, offline counters).
    /// Default: `<state_dir>/control.sock`.
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
    /// The control socket's group: its members may drive sessions and read documents from this
    /// machine. Not set: the service's own group (whose members may also write into hot folders).
    #[serde(default)]
    pub control_socket_group: Option<String>,
    /// A control connection that sends no complete request line for this long is closed
    /// (a request being worked on does not count).
    #[serde(default = "default_control_idle")]
    pub control_idle_timeout_secs: Bounded<1, 3600>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            auto_open: false,
            timeout_secs: default_timeout(),
            timeout_action: TimeoutAction::default(),
            outside_session: OutsideSession::default(),
            control_socket: None,
            control_socket_group: None,
            control_idle_timeout_secs: default_control_idle(),
        }
    }
}

fn default_control_idle() -> Bounded<1, 3600> {
    Bounded(30)
}

fn default_timeout() -> Bounded<5, 86_400> {
    Bounded(1800)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// Case-system public keys (JWK) whose signatures on commands are accepted. Empty: MQTT
    /// commands are refused (unless `trust_broker_acls`).
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// Accept unsigned JSON commands and trust the broker's ACLs to say who may publish them.
    /// Off by default: signatures protect against anyone who can publish on the broker.
    #[serde(default)]
    pub trust_broker_acls: bool,
    /// How far a command's `iat` may be from the station's clock, seconds.
    #[serde(default = "default_skew")]
    pub max_skew_secs: Bounded<5, 3600>,
    /// Topic prefixes of the case system's own under which a command may ask for its response
    /// (MQTT 5 response topic). Empty (default): only `countersign/v1/<station>/responses...`;
    /// any other requested topic is answered on the default responses topic.
    #[serde(default)]
    pub response_topic_prefixes: Vec<String>,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            trusted_keys: Vec::new(),
            trust_broker_acls: false,
            max_skew_secs: default_skew(),
            response_topic_prefixes: Vec::new(),
        }
    }
}

fn default_skew() -> Bounded<5, 3600> {
    Bounded(120)
}

/// `[acks]`: how the case system's answers (receipts) are trusted and how long they are kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcksConfig {
    /// Case-system public keys (JWK) whose signed receipts are accepted. Empty: the keys of
    /// `[commands] trusted_keys` (one case system, one keyring, in most offices). A separate list
    /// lets an office keep the key that may delete evidence from the station (its ingest
    /// service's) apart from the one that drives the counter.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// Accept the unsigned JSON answers of earlier versions, trusting the broker's ACLs to say who
    /// may publish them. Unset: off for a new station, on for one upgraded from a version before
    /// signed receipts (so it keeps working; it says so at start), and on when
    /// `[commands] trust_broker_acls` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_unsigned: Option<bool>,
    /// How old a receipt may be, seconds: the broker keeps answers queued while a kit is offline.
    #[serde(default = "default_max_age")]
    pub max_age_secs: Bounded<60, 31_536_000>,
    /// Receipts kept after their record left, at most...
    #[serde(default = "default_keep_receipts")]
    pub keep_receipts: Bounded<0, 10_000_000>,
    /// ...and for this many days.
    #[serde(default = "default_keep_days")]
    pub keep_receipts_days: Bounded<1, 36_500>,
}

impl Default for AcksConfig {
    fn default() -> Self {
        AcksConfig {
            trusted_keys: Vec::new(),
            accept_unsigned: None,
            max_age_secs: default_max_age(),
            keep_receipts: default_keep_receipts(),
            keep_receipts_days: default_keep_days(),
        }
    }
}

impl AcksConfig {
    /// The receipt keys: `[acks] trusted_keys`, or else `[commands] trusted_keys`.
    pub fn keys<'a>(&'a self, commands: &'a CommandsConfig) -> &'a [PathBuf] {
        if self.trusted_keys.is_empty() {
            &commands.trusted_keys
        } else {
            &self.trusted_keys
        }
    }

    /// What `check-config` says about answers: a line, and whether it is a warning. Whether the
    /// station was upgraded from a version before receipts is known only to its outbox, which
    /// `check-config` does not open (it may run as another user); the daemon's start line says.
    pub fn check_line(&self, commands: &CommandsConfig) -> (String, bool) {
        let keys = self.keys(commands).len();
        let unsigned = match self.accept_unsigned {
            Some(explicit) => explicit,
            None => commands.trust_broker_acls,
        };
        if unsigned {
            let why = if self.accept_unsigned.is_some() {
                "acks.accept_unsigned = true"
            } else {
                "commands.trust_broker_acls = true and acks.accept_unsigned is not set"
            };
            return (
                format!(
                    "{why}: unsigned answers are accepted, so anyone who can publish on this \
                     station's acks topic can take records out of its outbox ({keys} receipt \
                     key(s) configured)"
                ),
                true,
            );
        }
        if keys == 0 {
            return (
                "acks.trusted_keys and commands.trusted_keys are empty: the case system's signed \
                 answers cannot be checked, so no record leaves the outbox (a station upgraded \
                 from a version before receipts still takes unsigned answers until \
                 acks.accept_unsigned = false; its start line says so)"
                    .into(),
                true,
            );
        }
        let from = if self.trusted_keys.is_empty() {
            "commands.trusted_keys"
        } else {
            "acks.trusted_keys"
        };
        let unsigned_note = if self.accept_unsigned == Some(false) {
            "unsigned answers refused"
        } else {
            "unsigned answers refused (unless the station was upgraded from a version before \
             receipts: set acks.accept_unsigned = false to be sure)"
        };
        (
            format!("answers: receipts signed by {keys} key(s) of {from}; {unsigned_note}"),
            false,
        )
    }
}

fn default_max_age() -> Bounded<60, 31_536_000> {
    Bounded(7 * 86_400)
}
fn default_keep_receipts() -> Bounded<0, 10_000_000> {
    Bounded(100_000)
}
fn default_keep_days() -> Bounded<1, 36_500> {
    Bounded(365)
}
