//! A minimal case system for the demo: receives records, verifies each signature with the
//! station's public key (the same code `countersign verify` will run), keeps the wire bytes, and
//! acknowledges with a receipt signed by its own key (`receipts`). The end-to-end tests use an independent Python consumer instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tracing::warn;

use crate::receipts::{self, Claim, Outcome};
use crate::record::keys::{DecryptKeys, Keyring, StationKey};
use crate::record::{self, chain_hash};
use crate::uplink::topics::{self, PREFIX};

/// What the case system learnt about a record it accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub masked_number: String,
    /// The record's `page` blobs (a camera capture), checked like every blob.
    pub pages: usize,
    pub blobs: usize,
    pub seq: u64,
    pub algorithms: String,
    /// Each identity as `<document> <masked number>` (no personal data).
    pub identities: Vec<String>,
    /// The label of each page, in manifest order.
    pub labels: Vec<String>,
    pub case_ref: Option<String>,
}

pub type AcceptedLog = Arc<Mutex<HashMap<String, Accepted>>>;

pub struct CaseSystem {
    pub port: u16,
    pub keyring: Keyring,
    pub decrypt: DecryptKeys,
    /// Signs the receipts (the station trusts its public half in `[acks]` or `[commands]`).
    pub sign_key: StationKey,
    pub out_dir: PathBuf,
    pub accepted: AcceptedLog,
}

impl CaseSystem {
    pub async fn run(self) {
        let mut options = MqttOptions::new("demo-case-system", "127.0.0.1", self.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(Some(16 * 1024 * 1024));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
        let mut assemblies: HashMap<String, Assembly> = HashMap::new();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for filter in [format!("{PREFIX}/+/blobs/+"), format!("{PREFIX}/+/records")] {
                        if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                            warn!(error = %e, "case system cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let topic = String::from_utf8_lossy(&publish.topic).to_string();
                    let Some(station) = topics::station_of(&topic) else {
                        continue;
                    };
                    if let Some(blob_id) = topic.rsplit_once("/blobs/").map(|(_, id)| id) {
                        let props = publish
                            .properties
                            .as_ref()
                            .map(|p| p.user_properties.as_slice())
                            .unwrap_or_default();
                        if let Err(e) = assemblies
                            .entry(blob_id.to_string())
                            .or_default()
                            .add(props, &publish.payload)
                        {
                            warn!(%blob_id, error = %e, "case system dropped a bad chunk");
                        }
                        if let Some(whole) = assemblies.get(blob_id).and_then(Assembly::complete) {
                            blobs.insert(blob_id.to_string(), whole);
                            assemblies.remove(blob_id);
                        }
                        continue;
                    }
                    // The record id in the properties lets us name a record we cannot open.
                    let claimed_id = publish
                        .properties
                        .as_ref()
                        .and_then(|p| p.correlation_data.as_ref())
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|| "unknown".into());
                    let Some((record_id, outcome)) =
                        self.accept(station, &claimed_id, &publish.payload, &mut blobs)
                    else {
                        continue;
                    };
                    let receipt = receipts::sign(
                        &self.sign_key,
                        &Claim {
                            station,
                            record_id: &record_id,
                            outcome: &outcome,
                            sha256: &receipts::sha256_ref(&publish.payload),
                            iat: crate::commands::now_secs(),
                        },
                    );
                    let ack_topic = format!("{PREFIX}/{station}/acks");
                    if let Err(e) = client
                        .publish(ack_topic, QoS::AtLeastOnce, false, receipt)
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

    /// Decrypts, verifies and stores one record with its blobs. The ack says stored or rejected;
    /// None means "not yet" (a blob has not arrived; the station will send it all again).
    fn accept(
        &self,
        station: &str,
        claimed_id: &str,
        wire: &[u8],
        blobs: &mut HashMap<String, Vec<u8>>,
    ) -> Option<(String, Outcome)> {
        let rejected =
            |record_id: String, reason: String| Some((record_id, Outcome::Rejected { reason }));
        let opened = match record::open(wire, &self.keyring, &self.decrypt) {
            Ok(o) => o,
            Err(e) => return rejected(claimed_id.to_string(), e.to_string()),
        };
        let record = &opened.record;
        if record.station != station {
            return rejected(
                record.record_id.clone(),
                "record station differs from its topic".into(),
            );
        }
        for evidence in &record.evidence {
            let blob_wire = blobs.get(&evidence.blob_id)?;
            match record::open_blob(blob_wire, &self.decrypt) {
                Ok(plain) if chain_hash(&plain) == evidence.sha256 => {}
                _ => {
                    return rejected(
                        record.record_id.clone(),
                        format!("blob {} does not match the manifest", evidence.blob_id),
                    );
                }
            }
        }
        let stored = self.store(&record.record_id, wire, &record.evidence, blobs);
        if let Err(e) = stored {
            return rejected(record.record_id.clone(), format!("cannot store: {e}"));
        }
        let masked = record
            .identities
            .first()
            .and_then(|i| i.id_number.as_deref())
            .map(ga467::card::mask_id_number)
            .unwrap_or_default();
        let algorithms = format!(
            "{} + {}",
            header_alg(&opened.jws),
            if record::jose::is_jwe(wire) {
                "encrypted"
            } else {
                "plain"
            }
        );
        if let Ok(mut log) = self.accepted.lock() {
            log.insert(
                record.record_id.clone(),
                Accepted {
                    masked_number: masked,
                    pages: record.evidence.iter().filter(|e| e.role == "page").count(),
                    blobs: record.evidence.len(),
                    seq: record.seq,
                    algorithms,
                    identities: record
                        .identities
                        .iter()
                        .map(|i| {
                            let masked = i
                                .id_number
                                .as_deref()
                                .map(ga467::card::mask_id_number)
                                .unwrap_or_default();
                            format!("{} {masked}", i.document)
                        })
                        .collect(),
                    labels: record
                        .evidence
                        .iter()
                        .filter(|e| e.role == "page")
                        .map(|e| e.label.clone().unwrap_or_else(|| "-".into()))
                        .collect(),
                    case_ref: record.case.as_ref().and_then(|c| c.case_ref.clone()),
                },
            );
        }
        Some((record.record_id.clone(), Outcome::Stored))
    }

    fn store(
        &self,
        record_id: &str,
        wire: &[u8],
        evidence: &[record::EvidenceRef],
        blobs: &mut HashMap<String, Vec<u8>>,
    ) -> std::io::Result<()> {
        let ext = record::WIRE_EXT;
        for e in evidence {
            if let Some(blob) = blobs.remove(&e.blob_id) {
                let path = self
                    .out_dir
                    .join("blobs")
                    .join(format!("{}.{ext}", e.blob_id));
                write_atomically(&path, &blob)?;
            }
        }
        let path = self
            .out_dir
            .join("records")
            .join(format!("{record_id}.{ext}"));
        write_atomically(&path, wire)
    }
}

/// A blob arriving in chunks (docs/uplink-protocol.md): each chunk says its offset, the total
/// size and the whole blob's SHA-256; chunks may repeat after a reconnect.
#[derive(Default)]
struct Assembly {
    size: usize,
    sha256: String,
    bytes: Vec<u8>,
    have: Vec<bool>,
}

impl Assembly {
    fn add(&mut self, props: &[(String, String)], payload: &[u8]) -> Result<(), String> {
        let prop = |name: &str| {
            props
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or(format!("chunk without {name}"))
        };
        let offset: usize = prop("offset")?.parse().map_err(|_| "bad offset")?;
        let size: usize = prop("size")?.parse().map_err(|_| "bad size")?;
        // A demo keeps whole blobs in memory; cap what a stranger could make it allocate.
        if size > 64 * 1024 * 1024 || offset.saturating_add(payload.len()) > size {
            return Err(format!(
                "chunk {offset}+{} outside a {size}-byte blob",
                payload.len()
            ));
        }
        if self.have.is_empty() {
            self.size = size;
            self.sha256 = prop("sha256")?.to_string();
            self.bytes = vec![0; size];
            self.have = vec![false; size];
        } else if size != self.size {
            return Err("chunks disagree on the size".into());
        }
        self.bytes[offset..offset + payload.len()].copy_from_slice(payload);
        self.have[offset..offset + payload.len()].fill(true);
        Ok(())
    }

    /// The whole blob once every byte arrived and it hashes to what the chunks announced.
    fn complete(&self) -> Option<Vec<u8>> {
        let whole = !self.have.is_empty() && self.have.iter().all(|h| *h)
            || (self.size == 0 && !self.sha256.is_empty());
        (whole && chain_hash(&self.bytes) == self.sha256).then(|| self.bytes.clone())
    }
}

/// The JWS `alg` of a verified compact JWS (for the demo's line).
fn header_alg(jws: &[u8]) -> String {
    let head = jws.split(|b| *b == b'.').next().unwrap_or_default();
    record::jose::b64url_decode(&String::from_utf8_lossy(head))
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h["alg"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
