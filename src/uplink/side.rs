//! The uplink's side channels: commands from the case system in, responses and live events out.
//! Records and blobs stay on their own path (the outbox); these messages are not durable: a
//! response or event that cannot go out while the link is down is dropped (the case system times
//! out and asks again; events describe the moment), never queued behind records.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::events::Event;

/// A command message as it arrived.
#[derive(Debug)]
pub struct InboundCommand {
    pub payload: Vec<u8>,
    pub response_topic: Option<String>,
    pub correlation: Option<Bytes>,
}

/// A message for the case system.
#[derive(Debug)]
pub struct Outbound {
    /// None: the station's default responses topic.
    pub topic: Option<String>,
    pub payload: Vec<u8>,
    pub correlation: Option<Bytes>,
    /// MQTT 5 message expiry: responses and events are useless once stale.
    pub expiry_secs: u32,
}

impl Outbound {
    pub fn properties(&self) -> PublishProperties {
        PublishProperties {
            content_type: Some("application/json".into()),
            correlation_data: self.correlation.clone(),
            message_expiry_interval: Some(self.expiry_secs),
            ..Default::default()
        }
    }

    pub const QOS: QoS = QoS::AtLeastOnce;
}

/// Both ends the station holds.
pub struct Channels {
    pub commands: mpsc::Sender<InboundCommand>,
    pub outbound: mpsc::UnboundedReceiver<Outbound>,
}

/// The live-event form of a station event, or None for events the clerk's screen does not need.
/// Personal data never appears: card events carry the type and the masked number only.
pub fn feed(event: &Event) -> Option<Value> {
    let value = match event {
        Event::CardRead {
            reader,
            card_type,
            masked_number,
            failed_checks,
        } => json!({"event": "card_read", "device": reader, "card_type": card_type,
                    "masked_number": masked_number, "failed_checks": failed_checks}),
        Event::PageCaptured {
            device,
            label,
            page,
            warnings,
        } => json!({"event": "page_captured", "device": device, "label": label, "page": page,
                    "warnings": warnings}),
        Event::QualityProblem { device, reason } => {
            json!({"event": "quality_problem", "device": device, "reason": reason})
        }
        Event::ReaderReady { reader } => {
            json!({"event": "device_connected", "device": reader})
        }
        Event::ReaderUnavailable { reader, reason } => {
            json!({"event": "device_disconnected", "device": reader, "reason": reason})
        }
        Event::FolderReady { folder } => json!({"event": "device_connected", "device": folder}),
        Event::FolderUnavailable { folder, reason } => {
            json!({"event": "device_disconnected", "device": folder, "reason": reason})
        }
        Event::CaptureDeviceReady { kind, name } => {
            json!({"event": "device_connected", "device": name, "kind": kind})
        }
        Event::CaptureDeviceUnavailable { kind, name, reason } => {
            json!({"event": "device_disconnected", "device": name, "kind": kind, "reason": reason})
        }
        Event::OutboxFull { detail } => json!({"event": "outbox_full", "detail": detail}),
        Event::CaptureRefused { reason } => json!({"event": "capture_refused", "reason": reason}),
        Event::SessionOpened {
            session_id,
            case_ref,
            opened_by,
        } => json!({"event": "session_opened", "session_id": session_id, "case_ref": case_ref,
                    "opened_by": opened_by}),
        Event::SessionClosed {
            session_id,
            record_id,
            identities,
            pages,
        } => json!({"event": "session_closed", "session_id": session_id, "record_id": record_id,
                    "identities": identities, "pages": pages}),
        Event::SessionCancelled {
            session_id,
            reason,
            items,
        } => json!({"event": "session_cancelled", "session_id": session_id, "reason": reason,
                    "items": items}),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clerk's screen learns which checks failed (a cloned chip's `chip_authentication`),
    /// by name only.
    #[test]
    fn card_read_names_the_failed_checks() {
        let event = Event::CardRead {
            reader: "counter".into(),
            card_type: "passport".into(),
            masked_number: "E12****78".into(),
            failed_checks: vec!["chip_authentication".into()],
        };
        assert_eq!(
            feed(&event),
            Some(
                json!({"event": "card_read", "device": "counter", "card_type": "passport",
                        "masked_number": "E12****78", "failed_checks": ["chip_authentication"]})
            )
        );
    }
}
