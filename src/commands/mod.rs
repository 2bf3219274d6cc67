//! Commands from the case system: parsing, authentication and the response format.
//!
//! A command arrives on `countersign/v1/<station>/commands` (MQTT 5 request/response: the
//! publisher sets a response topic and correlation data) as a compact JWS signed by a case-system
//! key listed in `[commands] trusted_keys`, `typ: "vnd.countersign.command+jws"`, whose payload is
//!
//! ```json
//! {"id": "<unique, ≤ 64 chars>", "iat": 1764237600, "station": "window-03",
//!  "command": "open_session", "args": {"case_ref": "...", "operator": "...", "purpose": "..."}}
//! ```
//!
//! It is rejected, with a counter, when it is not a JWS (`unsigned`), signed by an unknown key or
//! not verifying (`bad_signature`), not for this station (`wrong_station`), older or newer than
//! the allowed skew (`stale`), an id already seen within the replay window (`replayed`),
//! malformed (`malformed`), or an unknown command (`unknown_command`). Only a command known to be
//! the case system's, fresh and new gets a response (exactly one, with the reason when refused);
//! the others are logged, rate-limited, never answered (the desk decides, `station::desk`).

pub mod replay;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::jose::JoseError;
use crate::record::jws;
use crate::record::keys::Keyring;

/// The JWS `typ` of a command.
pub const COMMAND_TYP: &str = "vnd.countersign.command+jws";

/// A verified, fresh, first-seen command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub id: String,
    pub iat: i64,
    pub kind: CommandKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandKind {
    OpenSession {
        case_ref: String,
        operator: Option<String>,
        purpose: Option<String>,
    },
    Capture {
        source: String,
        label: String,
        mode: Option<String>,
    },
    CloseSession,
    CancelSession {
        reason: Option<String>,
    },
    /// Read a travel document on a PC/SC reader with the MRZ the case system supplies (and the
    /// CAN, PACE's other password, when it has one).
    ReadDocument {
        reader: Option<String>,
        mrz: String,
        can: Option<String>,
    },
    Status,
    Ping,
}

/// Why a command was refused; the `code` goes into the response and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub detail: String,
}

impl Rejection {
    fn new(code: &'static str, detail: impl Into<String>) -> Rejection {
        Rejection {
            code,
            detail: detail.into(),
        }
    }
}

/// The one response every command gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The command's id, when it could be read.
    pub id: Option<String>,
    pub status: ResponseStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// `unsigned`, `bad_signature`, `wrong_station`, `stale`, `replayed`, `malformed`,
    /// `unknown_command`, or a refusal by the station (`no_session`, `session_open`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseStatus {
    Accepted,
    Rejected,
}

impl Response {
    pub fn accepted(id: &str, result: Value) -> Response {
        Response {
            id: Some(id.to_string()),
            status: ResponseStatus::Accepted,
            result: Some(result),
            reason: None,
            detail: None,
        }
    }

    pub fn rejected(id: Option<String>, rejection: &Rejection) -> Response {
        Response {
            id,
            status: ResponseStatus::Rejected,
            result: None,
            reason: Some(rejection.code.to_string()),
            detail: Some(rejection.detail.clone()),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// How commands are trusted.
pub struct Verifier {
    pub station: String,
    pub keys: Keyring,
    /// Accept unsigned JSON commands, trusting the broker's ACLs (off by default).
    pub trust_broker_acls: bool,
    /// How far `iat` may be from now, seconds.
    pub max_skew_secs: i64,
    /// The gm profile: only SM2 signatures (and SM2 keys in `keys`) are accepted.
    pub sm2_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    id: String,
    iat: i64,
    station: String,
    command: String,
    #[serde(default)]
    args: Value,
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Verifier {
    /// The verifier `[commands]` describes, or None when MQTT commands are off (no trusted keys
    /// and no broker trust).
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Option<Verifier>> {
        let commands = &config.commands;
        if commands.trusted_keys.is_empty() && !commands.trust_broker_acls {
            return Ok(None);
        }
        let sm2_only = config.crypto.profile == crate::config::Profile::Gm;
        Ok(Some(Verifier {
            station: config.station.id.to_string(),
            keys: load_trusted_keys(&commands.trusted_keys, sm2_only)?,
            trust_broker_acls: commands.trust_broker_acls,
            max_skew_secs: commands.max_skew_secs.get() as i64,
            sm2_only,
        }))
    }

    /// Authenticates and parses a command message. Replay protection is separate (it needs
    /// storage): see [`replay::ReplayGuard`]. Returns the command id with a rejection when the id
    /// could be read, so the response can name it.
    pub fn check(&self, payload: &[u8], now: i64) -> Result<Command, (Option<String>, Rejection)> {
        // JSON starts with `{`; a compact JWS never does (base64url). Counting dots would take
        // a JSON command with two dots in a value for a JWS.
        let is_json = payload.trim_ascii_start().first() == Some(&b'{');
        let json = if !is_json {
            let verified = jws::verify(payload, &self.keys).map_err(|e| {
                let code = match e {
                    JoseError::Malformed(_) => "malformed",
                    _ => "bad_signature",
                };
                (None, Rejection::new(code, e.to_string()))
            })?;
            if self.sm2_only && verified.header.alg != "SM2" {
                return Err((
                    None,
                    Rejection::new(
                        "bad_signature",
                        "the gm profile accepts only SM2-signed commands",
                    ),
                ));
            }
            if verified.header.typ.as_deref() != Some(COMMAND_TYP) {
                return Err((
                    None,
                    Rejection::new("malformed", format!("JWS typ must be {COMMAND_TYP}")),
                ));
            }
            verified.payload
        } else if self.trust_broker_acls {
            payload.to_vec()
        } else {
            return Err((
                None,
                Rejection::new(
                    "unsigned",
                    "commands must be a JWS signed by a trusted case-system key",
                ),
            ));
        };
        let envelope: Envelope = serde_json::from_slice(&json).map_err(|e| {
            let detail = json_refusal(&e, "the command", ENVELOPE_FIELDS, ENVELOPE_SHAPE);
            (None, Rejection::new("malformed", detail))
        })?;
        let id = Some(envelope.id.clone());
        if envelope.id.is_empty() || envelope.id.len() > 64 {
            return Err((
                None,
                Rejection::new("malformed", "id must be 1 to 64 characters"),
            ));
        }
        if envelope.station != self.station {
            return Err((
                id,
                Rejection::new(
                    "wrong_station",
                    format!("the command is for station {:?}", envelope.station),
                ),
            ));
        }
        // abs_diff cannot overflow: an `iat` of i64::MIN is stale, not wrapped into the window.
        if now.abs_diff(envelope.iat) > self.max_skew_secs.unsigned_abs() {
            return Err((
                id,
                Rejection::new(
                    "stale",
                    format!(
                        "issued at {} but the station's clock says {now} (allowed skew {} s)",
                        envelope.iat, self.max_skew_secs
                    ),
                ),
            ));
        }
        let kind = parse_kind(&envelope.command, &envelope.args).map_err(|r| (id.clone(), r))?;
        Ok(Command {
            id: envelope.id,
            iat: envelope.iat,
            kind,
        })
    }
}

const ENVELOPE_FIELDS: &[&str] = &["id", "iat", "station", "command", "args"];
const ENVELOPE_SHAPE: &str = "{\"id\": string, \"iat\": integer, \"station\": string, \"command\": string, \"args\": object}";

/// A refusal detail for JSON that did not parse: the rule and the position, never the value
/// (serde's own message quotes it: `invalid type: string "19850315"`). A missing field is named
/// when it is one of `fields` (ours, not the sender's).
pub fn json_refusal(e: &serde_json::Error, what: &str, fields: &[&str], shape: &str) -> String {
    use serde_json::error::Category;
    let message = e.to_string();
    let missing = fields
        .iter()
        .find(|f| message.starts_with(&format!("missing field `{f}`")));
    let rule = match (e.classify(), missing) {
        (_, Some(field)) => format!("has no {field:?}"),
        (Category::Syntax | Category::Eof, _) => "is not valid JSON".to_string(),
        (Category::Data, _) => "has an unknown field or a value of the wrong type".to_string(),
        (Category::Io, _) => "could not be read".to_string(),
    };
    format!(
        "{what} {rule} (line {}, column {}); expected {shape}",
        e.line(),
        e.column()
    )
}

/// Loads `[commands] trusted_keys`; under the gm profile every key must be SM2.
pub fn load_trusted_keys(paths: &[std::path::PathBuf], sm2_only: bool) -> anyhow::Result<Keyring> {
    Ok(load_keys(paths, sm2_only, "commands.trusted_keys")?.0)
}

/// Loads case-system public keys (the setting named in errors) and their ids; under the gm
/// profile every key must be SM2.
pub fn load_keys(
    paths: &[std::path::PathBuf],
    sm2_only: bool,
    setting: &str,
) -> anyhow::Result<(Keyring, Vec<String>)> {
    use crate::record::keys::VerifyingKey;
    let mut keys = Keyring::default();
    let mut kids = Vec::new();
    for path in paths {
        let (key, kid) = crate::record::keys::load_public(path)
            .map_err(|e| anyhow::anyhow!("{setting}: {e}"))?;
        let kind = match &key {
            VerifyingKey::Ed25519(_) => "an Ed25519",
            VerifyingKey::P256(_) => "a P-256",
            VerifyingKey::Sm2(_) => "an SM2",
        };
        if sm2_only && !matches!(key, VerifyingKey::Sm2(_)) {
            anyhow::bail!(
                "{setting}: {} is {kind} key, but [crypto] profile = \"gm\" accepts only SM2 case-system keys",
                path.display()
            );
        }
        kids.push(kid.clone());
        keys.insert(kid, key);
    }
    Ok((keys, kids))
}

fn text(args: &Value, name: &str) -> Result<Option<String>, Rejection> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 256 => Ok(Some(s.clone())),
        Some(_) => Err(Rejection::new(
            "malformed",
            format!("args.{name} must be a string of at most 256 bytes"),
        )),
    }
}

fn required(args: &Value, name: &str) -> Result<String, Rejection> {
    text(args, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::new("malformed", format!("args.{name} is required")))
}

/// Parses a command name and its arguments (shared with the local control socket).
pub fn parse_kind(command: &str, args: &Value) -> Result<CommandKind, Rejection> {
    if !(args.is_null() || args.is_object()) {
        return Err(Rejection::new("malformed", "args must be an object"));
    }
    Ok(match command {
        "open_session" => CommandKind::OpenSession {
            case_ref: required(args, "case_ref")?,
            operator: text(args, "operator")?,
            purpose: text(args, "purpose")?,
        },
        "capture" => CommandKind::Capture {
            source: required(args, "source")?,
            label: required(args, "label")?,
            mode: text(args, "mode")?,
        },
        "close_session" => CommandKind::CloseSession,
        "cancel_session" => CommandKind::CancelSession {
            reason: text(args, "reason")?,
        },
        "read_document" => CommandKind::ReadDocument {
            reader: text(args, "reader")?,
            mrz: required(args, "mrz")?,
            can: text(args, "can")?,
        },
        "status" => CommandKind::Status,
        "ping" => CommandKind::Ping,
        other => {
            return Err(Rejection::new(
                "unknown_command",
                // Not echoed: the name is the sender's text, and refusals reach the log.
                format!(
                    "not a command ({} bytes); the commands are open_session, capture, close_session, cancel_session, read_document, status, ping",
                    other.len()
                ),
            ));
        }
    })
}

/// Builds a signed command (for the demo's case system, tests and integrators' reference).
pub fn sign(
    key: &crate::record::keys::StationKey,
    station: &str,
    id: &str,
    iat: i64,
    command: &str,
    args: Value,
) -> String {
    let payload = serde_json::json!({
        "id": id, "iat": iat, "station": station, "command": command, "args": args,
    });
    jws::sign(
        &jws::Header {
            alg: String::new(),
            kid: Some(key.kid.clone()),
            typ: Some(COMMAND_TYP.into()),
        },
        &serde_json::to_vec(&payload).unwrap_or_default(),
        &key.signing,
    )
}

#[cfg(test)]
mod tests;
