//! A minimal case system for the demo: receives records, verifies each signature with the
//! station's public key (the same code `countersign verify` will run), keeps the wire bytes, and
//! acknowledges. The end-to-end tests use an independent Python consumer instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tracing::warn;

use crate::record;
use crate::uplink::ack::{Ack, AckStatus};
use crate::uplink::topics::{self, PREFIX};

/// What the case system learnt about a record it accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub masked_number: String,
    pub seq: u64,
}

pub type AcceptedLog = Arc<Mutex<HashMap<String, Accepted>>>;

pub struct CaseSystem {
    pub port: u16,
    pub key: VerifyingKey,
    pub kid: String,
    pub records_dir: PathBuf,
    pub accepted: AcceptedLog,
}

impl CaseSystem {
    pub async fn run(self) {
        let mut options = MqttOptions::new("demo-case-system", "127.0.0.1", self.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(Some(16 * 1024 * 1024));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let filter = format!("{PREFIX}/+/records");
                    if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                        warn!(error = %e, "case system cannot subscribe");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let topic = String::from_utf8_lossy(&publish.topic).to_string();
                    let Some(station) = topics::station_of(&topic) else {
                        continue;
                    };
                    // The record id in the properties lets us name a record we cannot open.
                    let claimed_id = publish
                        .properties
                        .as_ref()
                        .and_then(|p| p.correlation_data.as_ref())
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|| "unknown".into());
                    let ack = self.accept(station, &claimed_id, &publish.payload);
                    let ack_topic = format!("{PREFIX}/{station}/acks");
                    if let Err(e) = client
                        .publish(ack_topic, QoS::AtLeastOnce, false, ack.to_bytes())
                        .await
                    {
                        warn!(error = %e, "case system cannot publish an ack");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "case system connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Verifies and stores one record; the returned ack says stored or rejected.
    fn accept(&self, station: &str, claimed_id: &str, wire: &[u8]) -> Ack {
        let rejected = |record_id: String, reason: String| Ack {
            record_id,
            status: AckStatus::Rejected,
            reason: Some(reason),
        };
        let record = match record::open(wire, &self.key, &self.kid) {
            Ok(r) => r,
            Err(e) => return rejected(claimed_id.to_string(), e.to_string()),
        };
        if record.station != station {
            return rejected(
                record.record_id,
                "record station differs from its topic".into(),
            );
        }
        let file = self
            .records_dir
            .join(format!("{}.{}", record.record_id, record::WIRE_EXT));
        if let Err(e) = write_atomically(&file, wire) {
            return rejected(record.record_id, format!("cannot store: {e}"));
        }
        let masked = record
            .identities
            .first()
            .and_then(|i| i.id_number.as_deref())
            .map(ga467::card::mask_id_number)
            .unwrap_or_default();
        if let Ok(mut log) = self.accepted.lock() {
            log.insert(
                record.record_id.clone(),
                Accepted {
                    masked_number: masked,
                    seq: record.seq,
                },
            );
        }
        Ack {
            record_id: record.record_id,
            status: AckStatus::Stored,
            reason: None,
        }
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
