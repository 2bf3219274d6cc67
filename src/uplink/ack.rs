//! The case system's messages on `countersign/v1/<station>/acks`:
//! `{"record_id": "...", "status": "stored"}`,
//! `{"record_id": "...", "status": "rejected", "reason": "..."}`, or blob transfer progress
//! `{"record_id": "...", "blob_id": "...", "status": "progress", "next_offset": N}` (the case system
//! holds the first N bytes of the blob's wire form; an interrupted transfer resumes there).
//! Broker bytes are untrusted: anything else is refused with a message saying what is wrong.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub record_id: String,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    /// Stored and verified by the case system: the record may leave the outbox.
    Stored,
    /// Refused for good (bad signature, unknown station...): the record goes to dead letters.
    Rejected,
}

/// Blob transfer progress reported by the case system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub record_id: String,
    pub blob_id: String,
    pub next_offset: u64,
}

/// Any message on the acks topic.
#[derive(Debug, Clone, PartialEq)]
pub enum AckMessage {
    Record(Ack),
    Progress(Progress),
}

#[derive(Deserialize)]
struct RawProgress {
    record_id: String,
    blob_id: String,
    next_offset: u64,
}

fn id_ok(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("malformed ack: {what} must be 1 to 64 characters"));
    }
    Ok(())
}

impl AckMessage {
    pub fn parse(payload: &[u8]) -> Result<AckMessage, String> {
        let value: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| format!("malformed ack: {e}"))?;
        if value.get("status").and_then(|s| s.as_str()) == Some("progress") {
            let raw: RawProgress =
                serde_json::from_value(value).map_err(|e| format!("malformed progress: {e}"))?;
            id_ok("record_id", &raw.record_id)?;
            id_ok("blob_id", &raw.blob_id)?;
            return Ok(AckMessage::Progress(Progress {
                record_id: raw.record_id,
                blob_id: raw.blob_id,
                next_offset: raw.next_offset,
            }));
        }
        Ack::parse(payload).map(AckMessage::Record)
    }
}

impl Ack {
    pub fn parse(payload: &[u8]) -> Result<Ack, String> {
        let ack: Ack =
            serde_json::from_slice(payload).map_err(|e| format!("malformed ack: {e}"))?;
        id_ok("record_id", &ack.record_id)?;
        Ok(ack)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stored_and_rejected_and_refuses_garbage() {
        let a = Ack::parse(br#"{"record_id":"r1","status":"stored"}"#).unwrap();
        assert_eq!(a.status, AckStatus::Stored);
        let a =
            Ack::parse(br#"{"record_id":"r1","status":"rejected","reason":"bad sig"}"#).unwrap();
        assert_eq!(a.reason.as_deref(), Some("bad sig"));
        for bad in [
            &b""[..],
            b"{}",
            b"[1]",
            br#"{"record_id":"","status":"stored"}"#,
            br#"{"record_id":"r","status":"maybe"}"#,
            b"\xff",
        ] {
            assert!(Ack::parse(bad).is_err());
        }
        let round = Ack {
            record_id: "x".into(),
            status: AckStatus::Stored,
            reason: None,
        };
        assert_eq!(Ack::parse(&round.to_bytes()).unwrap(), round);
    }

    #[test]
    fn progress_is_told_apart_and_checked() {
        let m = AckMessage::parse(
            br#"{"record_id":"r","blob_id":"b","status":"progress","next_offset":65536}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            AckMessage::Progress(Progress {
                record_id: "r".into(),
                blob_id: "b".into(),
                next_offset: 65536
            })
        );
        assert!(matches!(
            AckMessage::parse(br#"{"record_id":"r","status":"stored"}"#),
            Ok(AckMessage::Record(_))
        ));
        for bad in [
            &br#"{"record_id":"r","status":"progress","next_offset":1}"#[..],
            br#"{"record_id":"r","blob_id":"b","status":"progress","next_offset":-1}"#,
            br#"{"record_id":"r","blob_id":"","status":"progress","next_offset":1}"#,
            br#"{"record_id":"r","blob_id":"b","status":"progress","next_offset":"1"}"#,
            b"\x00\xff",
        ] {
            assert!(
                AckMessage::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
