use super::*;
use crate::record::keys::{Jwk, SigningKey, StationKey};

fn ed_key(seed: u8) -> StationKey {
    let signing = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
    StationKey {
        kid: Jwk::public_of_signing(&signing).thumbprint(),
        signing,
    }
}

fn sm2_key(seed: u8) -> StationKey {
    let signing = SigningKey::Sm2(Box::new(
        sm2::dsa::SigningKey::from_slice("1234567812345678", &[seed; 32]).unwrap(),
    ));
    StationKey {
        kid: Jwk::public_of_signing(&signing).thumbprint(),
        signing,
    }
}

fn policy_with(keys: &[&StationKey]) -> Policy {
    let mut ring = Keyring::default();
    for key in keys {
        ring.insert(key.kid.clone(), key.verifying_key());
    }
    Policy {
        station: "w1".into(),
        keys: ring,
        kids: Vec::new(),
        accept_unsigned: false,
        unsigned_because: None,
        sm2_only: false,
        max_age_secs: 86400,
    }
}

const H: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn stored(key: &StationKey, station: &str, iat: i64) -> String {
    sign(
        key,
        &Claim {
            station,
            record_id: "r1",
            outcome: &Outcome::Stored,
            sha256: H,
            iat,
        },
    )
}

fn code(r: Result<Answer, Refusal>) -> &'static str {
    r.unwrap_err().code
}

#[test]
fn a_signed_receipt_reads_back_with_its_signer_and_hash() {
    let key = ed_key(1);
    let p = policy_with(&[&key]);
    let jws = stored(&key, "w1", 1000);
    let a = p.check(jws.as_bytes(), 1010).unwrap();
    assert_eq!(a.record_id, "r1");
    assert_eq!(a.outcome, Outcome::Stored);
    assert_eq!(a.bound_to.as_deref(), Some(H));
    let s = a.signed.unwrap();
    assert_eq!(
        (s.kid.as_str(), s.alg.as_str(), s.iat),
        (key.kid.as_str(), "EdDSA", 1000)
    );
    assert_eq!(s.jws, jws);
    let progress = sign(
        &key,
        &Claim {
            station: "w1",
            record_id: "r1",
            outcome: &Outcome::Progress {
                blob_id: "b1".into(),
                next_offset: 65536,
            },
            sha256: H,
            iat: 1000,
        },
    );
    let a = p.check(progress.as_bytes(), 1000).unwrap();
    assert_eq!(
        a.outcome,
        Outcome::Progress {
            blob_id: "b1".into(),
            next_offset: 65536
        }
    );
}

#[test]
fn every_bad_answer_gets_its_reason() {
    let key = ed_key(1);
    let p = policy_with(&[&key]);
    assert_eq!(
        code(p.check(br#"{"record_id":"r1","status":"stored"}"#, 1000)),
        "unsigned"
    );
    assert_eq!(
        code(p.check(stored(&ed_key(2), "w1", 1000).as_bytes(), 1000)),
        "bad_signature"
    );
    assert_eq!(
        code(p.check(stored(&key, "w2", 1000).as_bytes(), 1000)),
        "wrong_station"
    );
    assert_eq!(
        code(p.check(stored(&key, "w1", 1000).as_bytes(), 1000 + 86401)),
        "stale"
    );
    assert_eq!(
        code(p.check(stored(&key, "w1", 1000 + 86401).as_bytes(), 1000)),
        "stale"
    );
    assert!(
        p.check(stored(&key, "w1", 1000 + 86400).as_bytes(), 1000)
            .is_ok()
    );
    assert_eq!(
        code(p.check(stored(&key, "w1", i64::MIN).as_bytes(), i64::MAX)),
        "stale"
    );
    assert_eq!(
        code(p.check(stored(&key, "w1", i64::MAX).as_bytes(), i64::MIN)),
        "stale"
    );
    // A flipped payload byte breaks the signature.
    let jws = stored(&key, "w1", 1000);
    let mut parts: Vec<String> = jws.split('.').map(String::from).collect();
    parts[1] = crate::record::jose::b64url(
        br#"{"station":"w1","record_id":"r2","status":"stored","record_sha256":"x","iat":1000}"#,
    );
    assert_eq!(
        code(p.check(parts.join(".").as_bytes(), 1000)),
        "bad_signature"
    );
    for bad in [&b""[..], b"a.b", b"\xff\xfe", b"...."] {
        let c = code(p.check(bad, 1000));
        assert!(c == "malformed" || c == "bad_signature", "{c}");
    }
}

/// Signs arbitrary claims with the right typ, to reach the checks behind the signature.
fn signed_json(key: &StationKey, typ: &str, payload: &serde_json::Value) -> String {
    jws::sign(
        &jws::Header {
            alg: String::new(),
            kid: Some(key.kid.clone()),
            typ: Some(typ.into()),
        },
        &serde_json::to_vec(payload).unwrap(),
        &key.signing,
    )
}

#[test]
fn signed_but_malformed_claims_are_refused_by_name() {
    let key = ed_key(1);
    let p = policy_with(&[&key]);
    let base = serde_json::json!({"station":"w1","record_id":"r1","status":"stored","record_sha256":H,"iat":1000});
    let with = |k: &str, v: serde_json::Value| {
        let mut o = base.clone();
        o[k] = v;
        o
    };
    let mut without_hash = base.clone();
    without_hash
        .as_object_mut()
        .unwrap()
        .remove("record_sha256");
    let cases = [
        (with("record_sha256", "sha256:ABC".into()), "record_sha256"),
        (
            with("record_sha256", H.to_uppercase().into()),
            "record_sha256",
        ),
        (without_hash, "record_sha256 is required"),
        (with("status", "maybe".into()), "status"),
        (with("record_id", "".into()), "record_id"),
        (with("record_id", "x".repeat(65).into()), "record_id"),
        (with("extra", 1.into()), "unknown field"),
        (with("iat", "1000".into()), "wrong type"),
        (with("status", "progress".into()), "blob_id"),
    ];
    for (claims, needle) in cases {
        let r = p.check(signed_json(&key, ACK_TYP, &claims).as_bytes(), 1000);
        let e = r.unwrap_err();
        assert_eq!(e.code, "malformed", "{claims}");
        assert!(e.detail.contains(needle), "{claims}: {}", e.detail);
    }
    // A command is not a receipt, even from the same key.
    let e = p
        .check(
            signed_json(&key, crate::commands::COMMAND_TYP, &base).as_bytes(),
            1000,
        )
        .unwrap_err();
    assert!(e.detail.contains("typ"), "{}", e.detail);
    // Long reasons are cut, on a character boundary.
    let long = with("status", "rejected".into());
    let mut long = long;
    long["reason"] = "签".repeat(200).into();
    let a = p
        .check(signed_json(&key, ACK_TYP, &long).as_bytes(), 1000)
        .unwrap();
    let Outcome::Rejected { reason } = a.outcome else {
        panic!()
    };
    assert!(reason.len() <= 256 && reason.starts_with('签'));
}

#[test]
fn unsigned_answers_only_when_allowed() {
    let mut p = policy_with(&[]);
    p.accept_unsigned = true;
    let a = p
        .check(
            br#"{"record_id":"r1","status":"rejected","reason":"bad"}"#,
            0,
        )
        .unwrap();
    assert_eq!(
        a.outcome,
        Outcome::Rejected {
            reason: "bad".into()
        }
    );
    assert!(a.signed.is_none() && a.bound_to.is_none());
    let a = p
        .check(
            br#"{"record_id":"r","blob_id":"b","status":"progress","next_offset":7}"#,
            0,
        )
        .unwrap();
    assert_eq!(
        a.outcome,
        Outcome::Progress {
            blob_id: "b".into(),
            next_offset: 7
        }
    );
    for bad in [
        &br#"{"record_id":"r","status":"progress","next_offset":1}"#[..],
        br#"{"record_id":"r","blob_id":"b","status":"progress","next_offset":-1}"#,
        br#"{"record_id":"","status":"stored"}"#,
        br#"{"record_id":"r","status":"maybe"}"#,
        b"{",
    ] {
        assert_eq!(
            code(p.check(bad, 0)),
            "malformed",
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_gm_profile_takes_sm2_receipts_only() {
    let (ed, sm) = (ed_key(1), sm2_key(7));
    let mut p = policy_with(&[&ed, &sm]);
    p.sm2_only = true;
    let a = p.check(stored(&sm, "w1", 1000).as_bytes(), 1000).unwrap();
    assert_eq!(a.signed.unwrap().alg, "SM2");
    assert_eq!(
        code(p.check(stored(&ed, "w1", 1000).as_bytes(), 1000)),
        "bad_signature"
    );
}

#[test]
fn sha256_ref_is_the_receipt_form() {
    assert_eq!(
        sha256_ref(b"abc"),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
