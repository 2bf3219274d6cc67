//! The station: the supervisor of one counter. It starts a supervisor per configured device and
//! the uplink, turns each card read into a sealed record committed to the outbox, and stops
//! everything cleanly on shutdown.

pub mod seal;

pub use seal::{Committed, RecordContents};

use anyhow::Context as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info};

use crate::config::Config;
use crate::devices::{self, Capture, DeviceEvent};
use crate::events::{Event, EventBus, emit};
use crate::outbox::{self, Outbox, SharedOutbox};
use crate::record::keys::StationKey;
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
                Some(DeviceEvent::Captured(capture)) => sealer.commit(*capture).await,
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

/// Commits captures from the async side (the outbox work runs on a blocking thread).
struct Sealer {
    station: String,
    key: Arc<StationKey>,
    outbox: SharedOutbox,
    events: EventBus,
    new_records: Arc<Notify>,
}

impl Sealer {
    async fn commit(&self, capture: Capture) {
        let station = self.station.clone();
        let key = self.key.clone();
        let summary = capture.summary.clone();
        let instant = capture.instant;
        let committed = outbox::run(&self.outbox, move |o| {
            seal::commit(o, &station, &key, RecordContents::from_capture(capture))
        })
        .await;
        match committed {
            Ok(c) => {
                info!(record_id = %c.record_id, seq = c.seq, %summary, "record committed");
                emit(
                    &self.events,
                    Event::RecordCommitted {
                        record_id: c.record_id,
                        seq: c.seq,
                        masked_number: summary,
                        card_read_at: instant,
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
