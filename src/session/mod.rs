//! Case sessions: one case at the counter gathers several identities and pages, then is sealed
//! into ONE record (or cancelled, sending nothing).
//!
//! A session is opened by the case system's `open_session` command, by the local control socket
//! (`countersign session open`, for mobile kits), or implicitly by a card read when
//! `session.auto_open` is set. Every capture while it is open is committed to the session at once
//! (durable: a restart resumes the session), with its blobs already encrypted to the case system
//! and its identity sealed with the station's local data key. Closing seals the record and absorbs
//! the session's blobs in one transaction; cancelling deletes what it captured and leaves an audit
//! event without personal data. These functions block (SQLite, crypto); the station runs them on
//! a blocking thread, one at a time.

pub mod store;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::devices::Capture;
use crate::outbox::{Outbox, OutboxError, SessionAdded};
use crate::record::{CaseRef, DeviceInfo, EvidenceRef, Identity};
use crate::station::Crypto;
use crate::station::seal::{self, Committed, PreparedContents};
use store::{DataKey, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encrypt evidence: {0}")]
    Seal(String),
    #[error("a stored session item is unreadable: {0}")]
    Corrupt(String),
}

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenedBy {
    Command,
    Local,
    Auto,
}

/// What the case system (or the clerk) said about the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub case_ref: Option<String>,
    pub operator: Option<String>,
    pub purpose: Option<String>,
    pub opened_by: OpenedBy,
}

/// One capture held by a session (sealed at rest with the data key).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    captured_at_ms: i64,
    device: DeviceInfo,
    identity: Option<Identity>,
    /// Evidence already encrypted to the case system; `identity: Some(0)` means this item's.
    evidence: Vec<EvidenceRef>,
}

/// The open session as the station tracks it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    pub id: String,
    pub meta: SessionMeta,
    pub opened_ms: i64,
    pub touched_ms: i64,
    pub identities: u32,
    pub pages: u32,
}

impl OpenSession {
    pub fn idle_for(&self, now_ms: i64) -> Duration {
        Duration::from_millis((now_ms - self.touched_ms).max(0) as u64)
    }
}

/// What adding a capture did.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub identity: bool,
    /// Page number within the session for each page blob added (1-based), with its label.
    pub pages: Vec<(u32, Option<String>)>,
    /// Nothing was added: the capture's intake key was committed before (the hot-folder file
    /// was left behind by a crash or an unwritable `done/`), as this record or `session:<id>`.
    pub already_committed: Option<String>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

pub fn open(
    outbox: &mut Outbox,
    key: &DataKey,
    meta: SessionMeta,
) -> Result<OpenSession, SessionError> {
    let id = uuid::Uuid::now_v7().to_string();
    let sealed = key.seal(&serde_json::to_vec(&meta).unwrap_or_default())?;
    outbox.session_open(&id, &sealed)?;
    let now = now_ms();
    Ok(OpenSession {
        id,
        meta,
        opened_ms: now,
        touched_ms: now,
        identities: 0,
        pages: 0,
    })
}

fn is_page(role: &str) -> bool {
    role == "page"
}

/// Commits a capture to the open session. `intake` tags it with a hot-folder key; a key
/// committed before adds nothing (see [`Added::already_committed`]).
pub fn add(
    outbox: &mut Outbox,
    key: &DataKey,
    session: &OpenSession,
    station: &str,
    crypto: &Crypto,
    capture: Capture,
    intake: Option<&str>,
) -> Result<Added, SessionError> {
    let has_identity = capture.identity.is_some();
    let evidence = capture
        .evidence
        .into_iter()
        .map(|mut e| {
            if has_identity && e.identity.is_none() && e.label.is_none() {
                e.identity = Some(0);
            }
            e
        })
        .collect();
    let (evidence, blobs) = seal::seal_evidence(evidence, station, crypto)
        .map_err(|e| SessionError::Seal(e.to_string()))?;
    let mut page = session.pages;
    let pages = evidence
        .iter()
        .filter(|e| is_page(&e.role))
        .map(|e| {
            page += 1;
            (page, e.label.clone())
        })
        .collect();
    let item = Item {
        captured_at_ms: capture
            .captured_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        device: capture.device,
        identity: capture.identity,
        evidence,
    };
    let sealed = key.seal(&serde_json::to_vec(&item).unwrap_or_default())?;
    match outbox.session_add(&session.id, &sealed, &blobs, intake)? {
        SessionAdded::Added(_) => Ok(Added {
            identity: has_identity,
            pages,
            already_committed: None,
        }),
        SessionAdded::AlreadyCommitted(record_id) => Ok(Added {
            identity: false,
            pages: Vec::new(),
            already_committed: Some(record_id),
        }),
    }
}

/// Seals the session into one record (all identities, the manifest of all evidence, the case
/// references) and commits it, absorbing the session. An empty session is cancelled instead
/// (nothing to send); the result then is None.
pub fn close(
    outbox: &mut Outbox,
    key: &DataKey,
    session: &OpenSession,
    station: &str,
    location: Option<String>,
    crypto: &Crypto,
) -> Result<Option<Committed>, SessionError> {
    let items = outbox
        .session_items(&session.id)?
        .iter()
        .map(|sealed| {
            let plain = key.open(sealed)?;
            serde_json::from_slice::<Item>(&plain).map_err(|e| SessionError::Corrupt(e.to_string()))
        })
        .collect::<Result<Vec<Item>, SessionError>>()?;
    if items.is_empty() {
        outbox.session_cancel(&session.id)?;
        return Ok(None);
    }
    let mut contents = PreparedContents {
        captured_at: ms_to_time(items[0].captured_at_ms),
        case: Some(CaseRef {
            case_ref: session.meta.case_ref.clone(),
            operator: session.meta.operator.clone(),
            purpose: session.meta.purpose.clone(),
            session_id: Some(session.id.clone()),
        }),
        location,
        devices: Vec::new(),
        identities: Vec::new(),
        evidence: Vec::new(),
    };
    for item in items {
        if !contents
            .devices
            .iter()
            .any(|d| d.kind == item.device.kind && d.name == item.device.name)
        {
            contents.devices.push(item.device);
        }
        let identity_index = item.identity.map(|identity| {
            contents.identities.push(identity);
            contents.identities.len() - 1
        });
        for mut e in item.evidence {
            e.identity = match (e.identity, identity_index) {
                (Some(0), Some(index)) => Some(index),
                _ => None,
            };
            contents.evidence.push(e);
        }
    }
    outbox.absorb_session_on_next_append(&session.id);
    let committed = seal::commit_prepared(outbox, station, crypto, contents, Vec::new())?;
    Ok(Some(committed))
}

/// Deletes the session and what it captured; returns how many items it held.
pub fn cancel(outbox: &mut Outbox, session: &OpenSession) -> Result<u32, SessionError> {
    Ok(outbox.session_cancel(&session.id)?)
}

/// The session left open by a previous run, if any (the latest, when several were left).
pub fn resume(outbox: &mut Outbox, key: &DataKey) -> Result<Option<OpenSession>, SessionError> {
    let Some(stored) = outbox.sessions()?.pop() else {
        return Ok(None);
    };
    let meta: SessionMeta = serde_json::from_slice(&key.open(&stored.meta)?)
        .map_err(|e| SessionError::Corrupt(e.to_string()))?;
    let mut session = OpenSession {
        id: stored.session_id,
        meta,
        opened_ms: stored.opened_ms,
        touched_ms: stored.touched_ms,
        identities: 0,
        pages: 0,
    };
    for sealed in outbox.session_items(&session.id)? {
        let item: Item = serde_json::from_slice(&key.open(&sealed)?)
            .map_err(|e| SessionError::Corrupt(e.to_string()))?;
        session.identities += u32::from(item.identity.is_some());
        session.pages += item.evidence.iter().filter(|e| is_page(&e.role)).count() as u32;
    }
    Ok(Some(session))
}

#[cfg(test)]
mod tests;
