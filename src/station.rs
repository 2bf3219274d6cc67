//! The station: the supervisor of one counter. It starts a supervisor per configured device and
//! the uplink, turns each card read into a sealed record committed to the outbox, and stops
//! everything cleanly on shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info};

use crate::config::Config;
use crate::devices::{self, CardCapture, DeviceEvent};
use crate::events::{Event, EventBus, emit};
use crate::outbox::{self, Outbox, SharedOutbox};
use crate::record::{
    self, Evidence, EvidenceRef, Record, RecordKind, Sealed, SealedBlob, keys::StationKey,
};
use crate::uplink::{self, UplinkOptions};

/// Runs the station until `shutdown` turns true.
pub async fn run(
    config: Config,
    key: StationKey,
    events: EventBus,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let outbox_path = config.station.outbox_path();
    let outbox: SharedOutbox = Arc::new(Mutex::new(
        Outbox::open(&outbox_path).context("cannot open the outbox")?,
    ));
    let stats = outbox::run(&outbox, |o| o.stats()).await?;
    info!(
        station = %config.station.id,
        outbox = %outbox_path.display(),
        pending = stats.depth,
        dead_letters = stats.dead_letters,
        "station starting"
    );

    let new_records = Arc::new(Notify::new());
    let uplink = tokio::spawn(uplink::run(
        uplink_options(&config)?,
        outbox.clone(),
        new_records.clone(),
        events.clone(),
        shutdown.clone(),
    ));

    let stop_devices = Arc::new(AtomicBool::new(false));
    let (device_tx, mut device_rx) = mpsc::channel::<DeviceEvent>(16);
    let mut device_threads = Vec::new();
    for (name, reader) in &config.id_readers {
        device_threads.push(devices::id_reader::spawn(
            name.to_string(),
            reader.clone(),
            device_tx.clone(),
            events.clone(),
            stop_devices.clone(),
        )?);
    }
    drop(device_tx);

    let sealer = Sealer {
        station: config.station.id.to_string(),
        key: Arc::new(key),
        outbox: outbox.clone(),
        events: events.clone(),
        new_records,
    };
    let mut shutdown_rx = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown_rx.changed() => break,
            event = device_rx.recv() => match event {
                Some(DeviceEvent::IdCard(capture)) => sealer.commit_card(*capture).await,
                None => {
                    // No devices configured (or all supervisors ended): keep delivering.
                    let _ = shutdown_rx.changed().await;
                    break;
                }
            },
        }
    }

    info!("station stopping");
    stop_devices.store(true, Ordering::Relaxed);
    for thread in device_threads {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    let _ = uplink.await;
    Ok(())
}

fn uplink_options(config: &Config) -> anyhow::Result<UplinkOptions> {
    let credentials = match (&config.mqtt.username, &config.mqtt.password_file) {
        (Some(user), Some(file)) => {
            let password = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read mqtt.password_file {}", file.display()))?;
            Some((
                user.clone(),
                password.trim_end_matches(['\r', '\n']).to_string(),
            ))
        }
        (Some(user), None) => Some((user.clone(), String::new())),
        _ => None,
    };
    Ok(UplinkOptions {
        station: config.station.id.to_string(),
        client_id: config.client_id(),
        host: config.mqtt.host.clone(),
        port: config.mqtt.port,
        credentials,
        keep_alive: config.mqtt.keep_alive_secs.secs(),
        connect_timeout: config.mqtt.connect_timeout_secs.secs(),
        max_packet_bytes: config.mqtt.max_packet_bytes.get() as u32,
        window: config.mqtt.inflight_records.get() as usize,
        ack_timeout: config.mqtt.ack_timeout_secs.secs(),
        reconnect_max: config.mqtt.reconnect_max_secs.secs(),
    })
}

/// Builds, signs and commits records.
struct Sealer {
    station: String,
    key: Arc<StationKey>,
    outbox: SharedOutbox,
    events: EventBus,
    new_records: Arc<Notify>,
}

fn rfc3339(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    // Millisecond precision, UTC; formatting a valid timestamp cannot fail.
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

fn sha256_ref(bytes: &[u8]) -> String {
    record::chain_hash(bytes)
}

impl Sealer {
    async fn commit_card(&self, capture: CardCapture) {
        let record_id = uuid::Uuid::now_v7().to_string();
        let station = self.station.clone();
        let key = self.key.clone();
        let CardCapture {
            read_at,
            read_instant,
            device,
            identity,
            evidence,
            masked_number,
        } = capture;
        // Blob ids are assigned here, once: the manifest and the outbox rows share them.
        let blobs: Vec<(String, Evidence)> = evidence
            .into_iter()
            .map(|e| (uuid::Uuid::now_v7().to_string(), e))
            .collect();
        let id = record_id.clone();
        let committed = outbox::run(&self.outbox, move |o| {
            o.append(&station, |link| {
                let evidence = blobs
                    .iter()
                    .map(|(blob_id, e)| EvidenceRef {
                        blob_id: blob_id.clone(),
                        role: e.role.clone(),
                        media_type: e.media_type.clone(),
                        size: e.bytes.len() as u64,
                        sha256: sha256_ref(&e.bytes),
                        identity: e.identity.or(Some(0)),
                        label: e.label.clone(),
                    })
                    .collect();
                let record = Record {
                    schema: record::SCHEMA.into(),
                    record_id: id.clone(),
                    kind: RecordKind::Capture,
                    station: station.clone(),
                    station_kid: key.kid.clone(),
                    seq: link.seq,
                    prev: link.prev.clone(),
                    captured_at: rfc3339(read_at),
                    sealed_at: rfc3339(SystemTime::now()),
                    recipient_kid: None,
                    case: None,
                    devices: vec![device],
                    identities: vec![identity],
                    evidence,
                    checkpoint: None,
                };
                Ok(Sealed {
                    record_id: id.clone(),
                    wire: record::seal(&record, &key),
                    blobs: blobs
                        .iter()
                        .map(|(blob_id, e)| SealedBlob {
                            blob_id: blob_id.clone(),
                            wire: e.bytes.clone(),
                        })
                        .collect(),
                })
            })
        })
        .await;
        match committed {
            Ok((link, record_id)) => {
                info!(%record_id, seq = link.seq, id_number = %masked_number, "record committed");
                emit(
                    &self.events,
                    Event::RecordCommitted {
                        record_id,
                        seq: link.seq,
                        masked_number,
                        card_read_at: read_instant,
                    },
                );
                self.new_records.notify_one();
            }
            Err(e) => {
                error!(error = %e, "capture refused: the record could not be committed");
                emit(
                    &self.events,
                    Event::CaptureRefused {
                        reason: e.to_string(),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_764_237_600_123_456_789);
        assert_eq!(rfc3339(t), "2025-11-27T10:00:00.123Z");
    }
}
