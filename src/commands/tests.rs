use super::*;
use crate::record::keys::{Jwk, SigningKey, StationKey};

fn case_key(seed: u8) -> StationKey {
    let signing = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
    StationKey {
        kid: Jwk::public_of_signing(&signing).thumbprint(),
        signing,
    }
}

fn verifier() -> Verifier {
    let key = case_key(1);
    let mut keys = Keyring::default();
    keys.insert(key.kid.clone(), key.verifying_key());
    Verifier {
        station: "w1".into(),
        keys,
        trust_broker_acls: false,
        max_skew_secs: 120,
    }
}

fn open(id: &str, iat: i64) -> String {
    sign(
        &case_key(1),
        "w1",
        id,
        iat,
        "open_session",
        serde_json::json!({"case_ref": "C-1", "operator": "op7"}),
    )
}

#[test]
fn a_signed_fresh_command_parses() {
    let c = verifier().check(open("c1", 1000).as_bytes(), 1010).unwrap();
    assert_eq!(c.id, "c1");
    assert_eq!(
        c.kind,
        CommandKind::OpenSession {
            case_ref: "C-1".into(),
            operator: Some("op7".into()),
            purpose: None
        }
    );
}

fn code(r: Result<Command, (Option<String>, Rejection)>) -> &'static str {
    r.unwrap_err().1.code
}

#[test]
fn every_bad_command_gets_its_reason() {
    let v = verifier();
    let unsigned = br#"{"id":"c1","iat":1000,"station":"w1","command":"ping"}"#;
    assert_eq!(code(v.check(unsigned, 1000)), "unsigned");
    let wrong_key = sign(&case_key(2), "w1", "c1", 1000, "ping", Value::Null);
    assert_eq!(code(v.check(wrong_key.as_bytes(), 1000)), "bad_signature");
    let mut tampered = open("c1", 1000).into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(code(v.check(&tampered, 1000)), "bad_signature");
    assert_eq!(code(v.check(open("c1", 1000).as_bytes(), 1200)), "stale");
    assert_eq!(code(v.check(open("c1", 1300).as_bytes(), 1000)), "stale");
    let other = sign(&case_key(1), "w2", "c1", 1000, "ping", Value::Null);
    assert_eq!(code(v.check(other.as_bytes(), 1000)), "wrong_station");
    let unknown = sign(&case_key(1), "w1", "c1", 1000, "reboot", Value::Null);
    assert_eq!(code(v.check(unknown.as_bytes(), 1000)), "unknown_command");
    let no_label = sign(
        &case_key(1),
        "w1",
        "c1",
        1000,
        "capture",
        serde_json::json!({"source": "cam"}),
    );
    assert_eq!(code(v.check(no_label.as_bytes(), 1000)), "malformed");
    assert_eq!(code(v.check(b"{not json", 1000)), "unsigned");
    let header = crate::record::jose::b64url(br#"{"alg":"EdDSA","kid":"x","typ":"t"}"#);
    let garbage = format!("{header}.e30.AAAA");
    assert!(v.check(garbage.as_bytes(), 1000).is_err());
}

#[test]
fn broker_acl_mode_accepts_plain_json_but_still_checks_it() {
    let mut v = verifier();
    v.trust_broker_acls = true;
    let plain = br#"{"id":"c9","iat":1000,"station":"w1","command":"ping","args":{}}"#;
    assert_eq!(v.check(plain, 1000).unwrap().kind, CommandKind::Ping);
    let stale = br#"{"id":"c9","iat":1,"station":"w1","command":"ping"}"#;
    assert_eq!(code(v.check(stale, 1000)), "stale");
    assert_eq!(code(v.check(b"[1,2]", 1000)), "malformed");
}

#[test]
fn replays_are_caught_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.sqlite");
    let outbox = Outbox::open(&path).unwrap();
    assert!(replay::first_sighting(&outbox, "c1", 1000, 1000, 120).unwrap());
    assert!(!replay::first_sighting(&outbox, "c1", 1000, 1001, 120).unwrap());
    drop(outbox);
    let outbox = Outbox::open(&path).unwrap();
    assert!(!replay::first_sighting(&outbox, "c1", 1000, 1002, 120).unwrap());
    // Long after, the id is pruned (and the command would be stale anyway).
    assert!(replay::first_sighting(&outbox, "c1", 1000, 5000, 120).unwrap());
}

use crate::outbox::Outbox;
