//! `countersign inspect ga467 FILE`: decodes a captured GA 467 byte stream (raw binary, or hex
//! text with any whitespace) and prints one JSON object per frame, bad frame or run of garbage.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use ga467::card::CivilDate;
use ga467::inspect::{Content, Item, Payload, hex_text, inspect};
use ga467::reader::AppendedAddress;
use serde_json::{Value, json};

use crate::devices::id_reader::identity_of;

/// Exit status for input that is not a capture (sysexits.h EX_DATAERR).
const EX_DATAERR: u8 = 65;

#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Decode a GA 467 serial capture (both directions, e.g. from a serial sniffer): one JSON
    /// object per line for each frame (offset, direction, command, SW3 and its meaning, and for
    /// read replies the parsed card with its checks), each bad frame (offset, reason) and each
    /// run of garbage bytes.
    Ga467 {
        /// The capture: raw bytes, or hex text (whitespace anywhere is ignored).
        file: PathBuf,
    },
}

pub fn run(command: InspectCommand) -> anyhow::Result<ExitCode> {
    let InspectCommand::Ga467 { file } = command;
    let raw = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let bytes = match hex_text(&raw) {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => {
            eprintln!("countersign inspect: {}: {e}", file.display());
            return Ok(ExitCode::from(EX_DATAERR));
        }
        None => raw,
    };
    let mut out = std::io::stdout().lock();
    for item in inspect(&bytes) {
        writeln!(out, "{}", describe(&item))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// First 32 bytes in hex, with the total when longer.
fn hex_prefix(bytes: &[u8]) -> String {
    let mut s = hex(bytes.get(..32).unwrap_or(bytes));
    if bytes.len() > 32 {
        s.push_str(" …");
    }
    s
}

fn describe(item: &Item) -> Value {
    match item {
        Item::Garbage { offset, bytes } => json!({
            "offset": offset,
            "kind": "garbage",
            "length": bytes.len(),
            "bytes": hex_prefix(bytes),
        }),
        Item::BadFrame {
            offset,
            len,
            reason,
        } => json!({
            "offset": offset,
            "kind": "bad_frame",
            "length": len,
            "reason": reason,
        }),
        Item::Frame {
            offset,
            len,
            direction,
            content,
        } => {
            let mut v = json!({
                "offset": offset,
                "kind": "frame",
                "direction": direction.as_str(),
                "length": len,
            });
            match content {
                Content::Command { command, cmd_para } => {
                    v["command"] = json!(command.map_or("unknown", |c| c.key()));
                    v["command_text"] = json!(command.map_or_else(
                        || format!("unknown command ({:02X} {:02X})", cmd_para.0, cmd_para.1),
                        |c| c.to_string()
                    ));
                }
                Content::Response {
                    sw,
                    data_len,
                    in_reply_to,
                    payload,
                } => {
                    v["command"] = json!(in_reply_to.map_or("unknown", |c| c.key()));
                    v["sw1"] = json!(format!("{:02X}", sw[0]));
                    v["sw2"] = json!(format!("{:02X}", sw[1]));
                    v["sw3"] = json!(format!("{:02X}", sw[2]));
                    v["status"] = json!(ga467::status::describe(sw[2]));
                    v["data_length"] = json!(data_len);
                    describe_payload(&mut v, payload);
                }
            }
            v
        }
    }
}

fn describe_payload(v: &mut Value, payload: &Payload) {
    match payload {
        Payload::None => {}
        Payload::SamId(id) => {
            v["sam_id"] = json!(id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        Payload::AppendedAddress(a) => {
            v["appended_address"] = match a {
                AppendedAddress::Present(text) => json!(text),
                AppendedAddress::Absent | AppendedAddress::NotRequested => Value::Null,
                AppendedAddress::Unreadable(why) => json!({ "error": why }),
            };
        }
        Payload::Card(card) => match card.as_ref() {
            Ok(card) => {
                let identity = identity_of(card, "capture", CivilDate::today_in_china());
                v["card"] = serde_json::to_value(identity).unwrap_or_default();
                v["photo_wlt_length"] = json!(card.photo_wlt.len());
                v["fingerprint_length"] = json!(card.fingerprint.as_ref().map_or(0, Vec::len));
            }
            Err(why) => v["card_error"] = json!(why),
        },
    }
}
