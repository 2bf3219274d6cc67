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
        sm2_only: false,
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

/// A compact JWS with a header of our choosing (the signing helpers only emit ours).
fn jws_with_header(header: Value, payload: Value) -> String {
    use ed25519_dalek::Signer as _;
    let SigningKey::Ed25519(k) = case_key(1).signing else {
        unreachable!()
    };
    let input = format!(
        "{}.{}",
        crate::record::jose::b64url(&serde_json::to_vec(&header).unwrap()),
        crate::record::jose::b64url(&serde_json::to_vec(&payload).unwrap())
    );
    let sig = k.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", crate::record::jose::b64url(&sig))
}

#[test]
fn an_extreme_iat_is_stale_not_a_panic_or_a_wrap() {
    let v = verifier();
    for iat in [i64::MIN, i64::MIN + 1, i64::MAX, -1, 0] {
        assert_eq!(
            code(v.check(open("c1", iat).as_bytes(), 1000)),
            "stale",
            "{iat}"
        );
    }
    // The station's own clock at the extremes does not wrap either.
    assert_eq!(code(v.check(open("c1", 0).as_bytes(), i64::MAX)), "stale");
    assert_eq!(
        code(v.check(open("c1", i64::MAX).as_bytes(), i64::MIN)),
        "stale"
    );
    let mut plain = verifier();
    plain.trust_broker_acls = true;
    let min = format!(
        r#"{{"id":"c1","iat":{},"station":"w1","command":"ping"}}"#,
        i64::MIN
    );
    assert_eq!(code(plain.check(min.as_bytes(), 1000)), "stale");
}

#[test]
fn a_crit_header_is_refused() {
    let kid = case_key(1).kid;
    let payload = serde_json::json!({"id": "c1", "iat": 1000, "station": "w1", "command": "ping"});
    let plain = jws_with_header(
        serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": COMMAND_TYP}),
        payload.clone(),
    );
    assert!(verifier().check(plain.as_bytes(), 1000).is_ok());
    for crit in [
        serde_json::json!(["exp"]),
        serde_json::json!(["b64"]),
        serde_json::json!([]),
        serde_json::json!("x"),
    ] {
        let jws = jws_with_header(
            serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": COMMAND_TYP, "crit": crit,
                               "exp": 1, "b64": true}),
            payload.clone(),
        );
        let (_, rejection) = verifier().check(jws.as_bytes(), 1000).unwrap_err();
        assert_eq!(rejection.code, "malformed", "{crit}");
        assert!(rejection.detail.contains("crit"), "{}", rejection.detail);
    }
}

#[test]
fn broker_acl_mode_takes_json_with_dots_as_json() {
    let mut v = verifier();
    v.trust_broker_acls = true;
    let dotted = br#"{"id":"c9","iat":1000,"station":"w1","command":"open_session","args":{"case_ref":"2026.12.06"}}"#;
    let command = v.check(dotted, 1000).unwrap();
    assert_eq!(
        command.kind,
        CommandKind::OpenSession {
            case_ref: "2026.12.06".into(),
            operator: None,
            purpose: None
        }
    );
    // Leading whitespace is still JSON; a JWS still goes through the signature check.
    let spaced = b" \n{\"id\":\"c.9\",\"iat\":1000,\"station\":\"w1\",\"command\":\"ping\"}";
    assert_eq!(v.check(spaced, 1000).unwrap().kind, CommandKind::Ping);
    assert_eq!(v.check(open("c1", 1000).as_bytes(), 1000).unwrap().id, "c1");
    // Without broker trust, JSON with dots is still unsigned, not a malformed JWS.
    assert_eq!(code(verifier().check(dotted, 1000)), "unsigned");
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn command_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("open_session".to_string()),
            Just("capture".to_string()),
            Just("close_session".to_string()),
            Just("cancel_session".to_string()),
            Just("read_document".to_string()),
            Just("status".to_string()),
            Just("ping".to_string()),
            ".{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512),
                              now in any::<i64>(), trust in any::<bool>()) {
            let mut v = verifier();
            v.trust_broker_acls = trust;
            let _ = v.check(&bytes, now);
        }

        #[test]
        fn on_arbitrary_dotted_text(parts in prop::collection::vec("[A-Za-z0-9_-]{0,40}", 0..6),
                                    now in any::<i64>()) {
            let _ = verifier().check(parts.join(".").as_bytes(), now);
        }

        #[test]
        fn on_arbitrary_envelopes(id in ".{0,80}", iat in any::<i64>(), now in any::<i64>(),
                                  station in prop_oneof![Just("w1".to_string()), ".{0,8}"],
                                  command in command_name(), args in json_value(),
                                  signed in any::<bool>()) {
            let envelope = serde_json::json!({
                "id": id, "iat": iat, "station": station, "command": command, "args": args,
            });
            let mut v = verifier();
            if signed {
                let jws = sign(&case_key(1), &station, &id, iat, &command, args);
                let _ = v.check(jws.as_bytes(), now);
            } else {
                v.trust_broker_acls = true;
                let _ = v.check(&serde_json::to_vec(&envelope).unwrap(), now);
            }
        }
    }
}

fn sm2_key(seed: u8) -> StationKey {
    let signing = SigningKey::Sm2(Box::new(
        sm2::dsa::SigningKey::from_slice(crate::record::keys::SM2_USER_ID, &[seed; 32]).unwrap(),
    ));
    StationKey {
        kid: Jwk::public_of_signing(&signing).thumbprint(),
        signing,
    }
}

#[test]
fn the_gm_profile_takes_only_sm2_commands() {
    let sm2 = sm2_key(3);
    let mut v = verifier();
    v.keys.insert(sm2.kid.clone(), sm2.verifying_key());
    v.sm2_only = true;
    let signed = sign(&sm2, "w1", "c1", 1000, "ping", Value::Null);
    assert_eq!(
        v.check(signed.as_bytes(), 1000).unwrap().kind,
        CommandKind::Ping
    );
    // An Ed25519 key that slipped into the ring is still refused under gm.
    let (_, rejection) = v.check(open("c1", 1000).as_bytes(), 1000).unwrap_err();
    assert_eq!(rejection.code, "bad_signature");
    assert!(rejection.detail.contains("SM2"), "{}", rejection.detail);
}

#[test]
fn the_gm_profile_refuses_a_non_sm2_trusted_key_at_load() {
    use crate::record::keys::{KeyType, generate};
    let dir = tempfile::tempdir().unwrap();
    let (_, ed_public, _) = generate(&dir.path().join("ed"), KeyType::Ed25519).unwrap();
    let (_, sm2_public, _) = generate(&dir.path().join("sm2"), KeyType::Sm2Sign).unwrap();
    assert!(load_trusted_keys(std::slice::from_ref(&sm2_public), true).is_ok());
    assert!(load_trusted_keys(&[ed_public.clone(), sm2_public.clone()], false).is_ok());
    let Err(err) = load_trusted_keys(&[sm2_public, ed_public.clone()], true) else {
        panic!("an Ed25519 command key was accepted under gm");
    };
    let err = err.to_string();
    assert!(err.contains("commands.trusted_keys"), "{err}");
    assert!(err.contains(&ed_public.display().to_string()), "{err}");
    assert!(err.contains("SM2"), "{err}");
}

/// A malformed envelope is refused naming the field and the rule: serde's own message would
/// quote the value (`invalid type: string "19850315"`).
#[test]
fn malformed_details_never_quote_values() {
    let mut v = verifier();
    v.trust_broker_acls = true;
    for (payload, secret) in [
        (
            r#"{"id":"c1","iat":"19850315","station":"w1","command":"ping"}"#,
            "19850315",
        ),
        (
            r#"{"id":110101199003070011,"iat":1000,"station":"w1","command":"ping"}"#,
            "110101199003070011",
        ),
        (
            r#"{"id":"c1","iat":1000,"station":["测试甲"],"command":"ping"}"#,
            "测试甲",
        ),
        (
            r#"{"id":"c1","iat":1000,"station":"w1","command":"ping","zhang":1}"#,
            "zhang",
        ),
        (
            r#"{"id":"c1","iat":10.5,"station":"w1","command":"ping"}"#,
            "10.5",
        ),
    ] {
        let (_, rejection) = v.check(payload.as_bytes(), 1000).unwrap_err();
        assert_eq!(rejection.code, "malformed");
        assert!(
            !rejection.detail.contains(secret),
            "{secret} in {}",
            rejection.detail
        );
    }
}
