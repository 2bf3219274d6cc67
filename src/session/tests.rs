use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::record::keys::{
    DecryptKeys, Jwk, Keyring, Recipient, RecipientSecret, SigningKey, StationKey,
};
use crate::record::{self, Evidence};

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    outbox: Outbox,
    key: DataKey,
    crypto: Crypto,
    keyring: Keyring,
    decrypt: DecryptKeys,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.sqlite");
    let signing = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]));
    let public = Jwk::public_of_signing(&signing);
    let mut keyring = Keyring::default();
    keyring.insert(public.thumbprint(), public.verifying_key().unwrap());
    let secret = RecipientSecret::X25519(x25519_dalek::StaticSecret::from([3u8; 32]));
    let recipient = Recipient {
        key: secret.public(),
        kid: Jwk::public_of_recipient(&secret.public()).thumbprint(),
    };
    let mut decrypt = DecryptKeys::default();
    decrypt.insert(recipient.kid.clone(), secret);
    Fixture {
        outbox: Outbox::open(&path).unwrap(),
        path,
        _dir: dir,
        key: DataKey::for_tests(9),
        crypto: Crypto {
            key: Arc::new(StationKey {
                kid: public.thumbprint(),
                signing,
            }),
            recipient,
        },
        keyring,
        decrypt,
    }
}

fn device(kind: &str, name: &str) -> DeviceInfo {
    DeviceInfo {
        kind: kind.into(),
        name: name.into(),
        sam_id: None,
        detail: None,
    }
}

fn card(number: &str) -> Capture {
    Capture {
        captured_at: SystemTime::now(),
        instant: Instant::now(),
        device: device("ga467", "desk"),
        identity: Some(Identity {
            document: "resident".into(),
            device: "desk".into(),
            id_number: Some(number.into()),
            ..Default::default()
        }),
        evidence: vec![Evidence {
            role: "face_photo_wlt".into(),
            media_type: "application/octet-stream".into(),
            bytes: vec![1; 1024],
            identity: None,
            label: None,
        }],
        summary: "resident".into(),
        warnings: Vec::new(),
    }
}

fn page(label: &str, fill: u8) -> Capture {
    Capture {
        captured_at: SystemTime::now(),
        instant: Instant::now(),
        device: device("camera", "doc"),
        identity: None,
        evidence: vec![Evidence {
            role: "page".into(),
            media_type: "image/jpeg".into(),
            bytes: vec![fill; 5000],
            identity: None,
            label: Some(label.into()),
        }],
        summary: "page".into(),
        warnings: Vec::new(),
    }
}

fn meta() -> SessionMeta {
    SessionMeta {
        case_ref: Some("MR-2026-0042".into()),
        operator: Some("op7".into()),
        purpose: Some("marriage_registration".into()),
        opened_by: OpenedBy::Command,
    }
}

#[test]
fn a_session_seals_into_one_record_with_everything() {
    let mut f = fixture();
    let session = open(&mut f.outbox, &f.key, meta()).unwrap();
    let a = add(
        &mut f.outbox,
        &f.key,
        &session,
        "w1",
        &f.crypto,
        card("11010519491231002X"),
        None,
    )
    .unwrap();
    assert!(a.identity);
    let b = add(
        &mut f.outbox,
        &f.key,
        &session,
        "w1",
        &f.crypto,
        card("110101199003070011"),
        None,
    )
    .unwrap();
    assert!(b.identity);
    let mut s = session.clone();
    s.pages = 0;
    let p1 = add(
        &mut f.outbox,
        &f.key,
        &s,
        "w1",
        &f.crypto,
        page("household_register", 7),
        None,
    )
    .unwrap();
    assert_eq!(p1.pages, [(1, Some("household_register".to_string()))]);
    assert_eq!(
        f.outbox.stats().unwrap().depth,
        0,
        "nothing is sent while the session is open"
    );
    let committed = close(
        &mut f.outbox,
        &f.key,
        &session,
        "w1",
        Some("Dongcheng office".into()),
        &f.crypto,
    )
    .unwrap()
    .unwrap();
    let pending = f.outbox.oldest(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].record_id, committed.record_id);
    let opened = record::open(&pending[0].wire, &f.keyring, &f.decrypt)
        .unwrap()
        .record;
    assert_eq!(opened.identities.len(), 2);
    assert_eq!(opened.devices.len(), 2, "devices listed once each");
    assert_eq!(opened.location.as_deref(), Some("Dongcheng office"));
    let case = opened.case.unwrap();
    assert_eq!(case.case_ref.as_deref(), Some("MR-2026-0042"));
    assert_eq!(case.session_id.as_deref(), Some(session.id.as_str()));
    let roles: Vec<(&str, Option<usize>)> = opened
        .evidence
        .iter()
        .map(|e| (e.role.as_str(), e.identity))
        .collect();
    assert_eq!(
        roles,
        [
            ("face_photo_wlt", Some(0)),
            ("face_photo_wlt", Some(1)),
            ("page", None)
        ]
    );
    // The record's blobs are the session's, in manifest order, and match their hashes.
    let blobs = f.outbox.blobs(&committed.record_id).unwrap();
    assert_eq!(blobs.len(), 3);
    for ((blob_id, wire), e) in blobs.iter().zip(&opened.evidence) {
        assert_eq!(blob_id, &e.blob_id);
        let plain = record::open_blob(wire, &f.decrypt).unwrap();
        assert_eq!(record::chain_hash(&plain), e.sha256);
    }
    assert!(f.outbox.sessions().unwrap().is_empty());
}

#[test]
fn sessions_survive_a_restart_and_cancel_leaves_nothing() {
    let mut f = fixture();
    let session = open(&mut f.outbox, &f.key, meta()).unwrap();
    add(
        &mut f.outbox,
        &f.key,
        &session,
        "w1",
        &f.crypto,
        card("11010519491231002X"),
        None,
    )
    .unwrap();
    add(
        &mut f.outbox,
        &f.key,
        &session,
        "w1",
        &f.crypto,
        page("form", 1),
        None,
    )
    .unwrap();
    let held = f.outbox.stats().unwrap();
    drop(f.outbox);
    let mut outbox = Outbox::open(&f.path).unwrap();
    let resumed = resume(&mut outbox, &f.key).unwrap().unwrap();
    assert_eq!(resumed.id, session.id);
    assert_eq!(resumed.meta, session.meta);
    assert_eq!((resumed.identities, resumed.pages), (1, 1));
    assert_eq!(cancel(&mut outbox, &resumed).unwrap(), 2);
    assert!(resume(&mut outbox, &f.key).unwrap().is_none());
    assert_eq!(outbox.stats().unwrap().depth, 0);
    let _ = held;
}

#[test]
fn an_empty_session_closes_to_nothing() {
    let mut f = fixture();
    let session = open(&mut f.outbox, &f.key, meta()).unwrap();
    assert!(
        close(&mut f.outbox, &f.key, &session, "w1", None, &f.crypto)
            .unwrap()
            .is_none()
    );
    assert!(f.outbox.sessions().unwrap().is_empty());
    assert_eq!(f.outbox.stats().unwrap().depth, 0);
}

#[test]
fn the_identity_is_not_in_clear_at_rest() {
    let mut f = fixture();
    let session = open(&mut f.outbox, &f.key, meta()).unwrap();
    add(
        &mut f.outbox,
        &f.key,
        &session,
        "w1",
        &f.crypto,
        card("11010519491231002X"),
        None,
    )
    .unwrap();
    drop(f.outbox);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(f.path.parent().unwrap()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let needle = b"11010519491231002X";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    let case = b"MR-2026-0042";
    assert!(!bytes.windows(case.len()).any(|w| w == case));
}

/// A hot-folder file is one item, in a session or not: the same intake key added again (the
/// file still there after a crash between commit and move, or done/ not writable) is recognised.
#[test]
fn the_same_intake_key_is_added_to_a_session_once() {
    let mut f = fixture();
    let session = open(&mut f.outbox, &f.key, meta()).unwrap();
    let key = "folder:scan:0123";
    let add_page = |f: &mut Fixture| {
        add(
            &mut f.outbox,
            &f.key,
            &session,
            "w1",
            &f.crypto,
            page("scan", 7),
            Some(key),
        )
        .unwrap()
    };
    let first = add_page(&mut f);
    assert_eq!(first.pages.len(), 1);
    let again = add_page(&mut f);
    assert_eq!(
        f.outbox.session_items(&session.id).unwrap().len(),
        1,
        "the file is in the session once"
    );
    assert_eq!(
        again.already_committed.as_deref(),
        Some(format!("session:{}", session.id).as_str())
    );
    assert!(again.pages.is_empty());
    // The session became a record; the file is still there when the next session is open.
    close(&mut f.outbox, &f.key, &session, "w1", None, &f.crypto)
        .unwrap()
        .unwrap();
    let next = open(&mut f.outbox, &f.key, meta()).unwrap();
    let later = add(
        &mut f.outbox,
        &f.key,
        &next,
        "w1",
        &f.crypto,
        page("scan", 7),
        Some(key),
    )
    .unwrap();
    assert!(later.already_committed.is_some());
    assert!(f.outbox.session_items(&next.id).unwrap().is_empty());
}
