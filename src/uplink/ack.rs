//! The case system's acknowledgement message on `countersign/v1/<station>/acks`:
//! `{"record_id": "...", "status": "stored"}` or
//! `{"record_id": "...", "status": "rejected", "reason": "..."}`.

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

impl Ack {
    pub fn parse(payload: &[u8]) -> Result<Ack, String> {
        let ack: Ack =
            serde_json::from_slice(payload).map_err(|e| format!("malformed ack: {e}"))?;
        if ack.record_id.is_empty() || ack.record_id.len() > 64 {
            return Err("malformed ack: record_id must be 1 to 64 characters".into());
        }
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
}
