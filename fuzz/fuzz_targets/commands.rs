//! Case-system commands and control-socket requests: `commands::Verifier::check` on any message
//! (signed or, with `trust_broker_acls`, plain JSON), with any station clock, and
//! `commands::parse_kind` on any request line as the control socket reads it
//! (`{"command": ..., "args": ...}`). Besides raw bytes, the fuzzer's payloads are validly
//! signed with the trusted test key, so the envelope, freshness and argument checks run on them.
#![no_main]

#[path = "common/keys.rs"]
mod keys;

use std::sync::OnceLock;

use countersign::commands::{self, COMMAND_TYP, Verifier};
use libfuzzer_sys::fuzz_target;

static FIXTURE: OnceLock<keys::Fixture> = OnceLock::new();

/// A control-socket request line, as the socket parses it before `parse_kind`.
fn control_request(line: &[u8]) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    if let Ok(serde_json::Value::Object(request)) = serde_json::from_str(text) {
        let command = request
            .get("command")
            .and_then(|c| c.as_str())
            .unwrap_or_default();
        let args = request.get("args").cloned().unwrap_or_default();
        let _ = commands::parse_kind(command, &args);
    }
}

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(keys::Fixture::new);
    if data.len() < 9 {
        return;
    }
    let (head, rest) = data.split_at(9);
    let mode = head[0];
    // The station's clock: anything an i64 holds (a broken RTC, a hostile NTP).
    let mut now = [0u8; 8];
    now.copy_from_slice(&head[1..9]);
    let now = i64::from_le_bytes(now);
    let verifier = Verifier {
        station: "window-01".into(),
        keys: f.keyring.clone(),
        trust_broker_acls: mode & 1 == 1,
        max_skew_secs: 300,
        // The GM profile's rule (SM2 keys only) is exercised too: it must refuse, never panic.
        sm2_only: mode & 8 == 8,
    };
    match (mode >> 1) % 3 {
        0 => {
            let _ = verifier.check(rest, now);
            control_request(rest);
        }
        1 => {
            let (header, payload) = keys::split(rest);
            let header = f.header_with_kid(header, Some(COMMAND_TYP));
            let _ = verifier.check(&f.sign_raw(&header, payload), now);
        }
        _ => {
            // A well-formed envelope around the fuzzer's iat, command and args.
            if rest.len() < 8 {
                return;
            }
            let (iat, rest) = rest.split_at(8);
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(iat);
            // Near the station's clock or anywhere (overflow: issue 13, defect 6).
            let iat = match mode >> 7 {
                0 => now.wrapping_add(i64::from(i16::from_le_bytes([bytes[0], bytes[1]]))),
                _ => i64::from_le_bytes(bytes),
            };
            let (command, args) = keys::split(rest);
            let args: serde_json::Value = serde_json::from_slice(args).unwrap_or_default();
            let payload = serde_json::json!({
                "id": "c-1", "iat": iat, "station": "window-01",
                "command": String::from_utf8_lossy(command), "args": args,
            });
            let payload = serde_json::to_vec(&payload).unwrap_or_default();
            let header = f.header_with_kid(b"{}", Some(COMMAND_TYP));
            for result in [
                verifier.check(&f.sign_raw(&header, &payload), now),
                verifier.check(&payload, now),
            ] {
                // Freshness, computed without overflow: an accepted command is within the skew.
                if let Ok(command) = result {
                    let skew = (i128::from(now) - i128::from(command.iat)).abs();
                    assert!(skew <= 300, "accepted iat {} at now {now}", command.iat);
                }
            }
        }
    }
});
