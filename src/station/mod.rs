//! The station: the supervisor of one counter. It starts a supervisor per configured device and
//! the uplink, turns each card read into a sealed record committed to the outbox, and stops
//! everything cleanly on shutdown.

pub mod control;
pub mod crypto;
mod desk;
mod hooks;
mod intake;
mod jobs;
pub mod seal;

pub use crypto::Crypto;
pub use desk::{CaptureHandle, CaptureRequest};
pub use hooks::{Heartbeat, Hooks};
pub use seal::{Committed, RecordContents};

use anyhow::Context as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info};

use crate::config::Config;
use crate::devices::{self, Capture, DeviceEvent};
use crate::events::{Event, EventBus, emit};
use crate::outbox::{self, OutboxError, SharedOutbox};
use crate::uplink;

/// Runs the station until `shutdown` turns true.
pub async fn run(
    config: Config,
    crypto: Crypto,
    events: EventBus,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_with(config, crypto, events, shutdown, Hooks::default()).await
}

/// As [`run`], with the service layer's [`Hooks`] (reload, started, heartbeat).
pub async fn run_with(
    config: Config,
    crypto: Crypto,
    events: EventBus,
    shutdown: watch::Receiver<bool>,
    mut hooks: Hooks,
) -> anyhow::Result<()> {
    let outbox_path = config.station.outbox_path();
    let outbox: SharedOutbox = Arc::new(Mutex::new(outbox::open_for_station(&config, &events)?));
    let stats = outbox::run(&outbox, |o| o.stats()).await?;
    info!(
        station = %config.station.id,
        outbox = %outbox_path.display(),
        pending = stats.depth,
        dead_letters = stats.dead_letters,
        "station starting"
    );

    let new_records = Arc::new(Notify::new());
    // Commands in, responses and live events out (see uplink::side).
    let (commands_tx, mut commands_rx) = mpsc::channel(32);
    let (outbound_tx, outbound_rx) = mpsc::unbounded_channel();
    let mut uplink_options = uplink::options_from_config(&config)?;
    if outbox::run(&outbox, |o| o.upgraded_before_receipts()).await? {
        uplink_options.answers = Arc::new(crate::receipts::Policy::from_config(&config, true)?);
    }
    uplink_options.answers.log_start();
    let uplink = tokio::spawn(uplink::run_with(
        uplink_options,
        outbox.clone(),
        new_records.clone(),
        events.clone(),
        events.subscribe(),
        Some(uplink::side::Channels {
            commands: commands_tx,
            outbound: outbound_rx,
        }),
        shutdown.clone(),
    ));
    let verifier = command_verifier(&config)?;
    let data_key = Arc::new(
        crate::session::store::DataKey::load_or_create(&config.station.state_dir)
            .context("cannot load the session key")?,
    );
    let (local_tx, mut local_rx) = mpsc::channel(8);
    let control_socket = config.station.control_socket(&config.session);
    let _control = control::listen(
        &control_socket,
        control::Options::of(&config.session),
        local_tx,
        shutdown.clone(),
    )
    .with_context(|| {
        format!(
            "cannot listen on the control socket {}",
            control_socket.display()
        )
    })?;
    let mut capture_sources = std::collections::BTreeMap::new();

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
    let imaging = config.imaging.options();
    for (name, folder) in &config.folders {
        device_threads.push(devices::folder::spawn(
            name.to_string(),
            folder.clone(),
            folder.process.then_some(imaging),
            device_tx.clone(),
            events.clone(),
            stop_devices.clone(),
        )?);
    }
    for (name, camera) in &config.cameras {
        let (handle, requests) = mpsc::channel(4);
        capture_sources.insert(name.to_string(), handle);
        device_threads.push(devices::camera::spawn(
            name.to_string(),
            camera.clone(),
            imaging,
            device_tx.clone(),
            requests,
            events.clone(),
            stop_devices.clone(),
        )?);
    }
    for (name, scanner) in &config.scanners {
        let (handle, requests) = mpsc::channel(4);
        capture_sources.insert(name.to_string(), handle);
        device_threads.push(devices::scanner::spawn(
            name.to_string(),
            scanner.clone(),
            imaging,
            device_tx.clone(),
            requests,
            events.clone(),
            stop_devices.clone(),
        )?);
    }
    #[cfg(feature = "pcsc")]
    if let Some(pcsc) = config.pcsc.as_ref().filter(|p| !p.readers.is_empty()) {
        device_threads.push(devices::pcsc::spawn(
            pcsc.clone(),
            devices::pcsc::ChainHead {
                station: config.station.id.to_string(),
                outbox: Some(outbox_path.clone()),
            },
            device_tx.clone(),
            events.clone(),
            stop_devices.clone(),
        )?);
    }
    #[cfg(not(feature = "pcsc"))]
    if config.pcsc.is_some() {
        tracing::warn!("[pcsc] is configured but this build has no PC/SC support; ignored");
    }
    drop(device_tx);

    let sealer = Sealer {
        station: config.station.id.to_string(),
        location: config.station.location.clone(),
        crypto,
        outbox: outbox.clone(),
        events: events.clone(),
        new_records,
    };
    let checkpointer = sealer.clone();
    // Device jobs (capture requests, document reads) run beside this loop and report back here.
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel();
    let mut desk = desk::Desk::new(
        &config,
        sealer,
        data_key,
        verifier,
        outbound_tx,
        capture_sources,
        jobs_tx,
    );
    desk.resume().await;
    let mut checkpoints = CheckpointSchedule::new(
        config.records.checkpoint_every.get(),
        config.records.checkpoint_interval_secs.secs(),
    );
    let mut checkpoint_tick = tokio::time::interval(std::time::Duration::from_secs(5));
    checkpoint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown_rx = shutdown.clone();
    if let Some(started) = hooks.started.take() {
        let _ = started.send(outbox.clone());
    }
    loop {
        hooks.beat();
        tokio::select! {
            _ = shutdown_rx.changed() => break,
            new = hooks.next_reload() => {
                checkpoints.every = new.records.checkpoint_every.get();
                checkpoints.interval = new.records.checkpoint_interval_secs.secs();
                let limits = hooks::limits(&new);
                outbox::run(&outbox, move |o| o.set_limits(limits)).await;
                info!("reloaded: checkpoint schedule and outbox limits applied");
            }
            _ = checkpoint_tick.tick() => {
                if desk.on_tick().await {
                    checkpoints.recorded();
                }
                if checkpoints.due() && checkpointer.checkpoint().await {
                    checkpoints.sealed();
                }
            }
            Some(command) = commands_rx.recv() => {
                if desk.on_command(command).await {
                    checkpoints.recorded();
                }
            }
            Some(request) = local_rx.recv() => {
                if desk.on_local(request).await {
                    checkpoints.recorded();
                }
            }
            Some(done) = jobs_rx.recv() => {
                if desk.on_job(done).await {
                    checkpoints.recorded();
                }
            }
            event = device_rx.recv() => match event {
                Some(event) => {
                    let committed = match event {
                        DeviceEvent::Captured(capture) => desk.on_capture(*capture, None).await,
                        DeviceEvent::Intake(capture, intake) => {
                            desk.on_capture(*capture, Some(intake)).await
                        }
                    };
                    if committed {
                        checkpoints.recorded();
                        if checkpoints.due() && checkpointer.checkpoint().await {
                            checkpoints.sealed();
                        }
                    }
                }
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
    // No new captures from here; what the supervisors already read (the card being read, the
    // file being taken, the pages of a feeder batch scanned so far) is committed before they end,
    // so nothing read is lost or left waiting. Jobs that end meanwhile are answered.
    loop {
        hooks.beat();
        tokio::select! {
            event = device_rx.recv() => match event {
                Some(DeviceEvent::Captured(capture)) => {
                    desk.on_capture(*capture, None).await;
                }
                Some(DeviceEvent::Intake(capture, intake)) => {
                    desk.on_capture(*capture, Some(intake)).await;
                }
                None => break,
            },
            Some(done) = jobs_rx.recv() => {
                desk.on_job(done).await;
            }
        }
    }
    for thread in device_threads {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    // A job still out (a document read) gets a few seconds to end and be answered.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while desk.jobs_in_flight() > 0 {
        match tokio::time::timeout_at(deadline, jobs_rx.recv()).await {
            Ok(Some(done)) => {
                desk.on_job(done).await;
            }
            _ => break,
        }
    }
    let _ = uplink.await;
    Ok(())
}

/// When to seal a checkpoint: after `every` records, or after `interval` with at least one record
/// since the last one. Counted from the daemon's start (a restart counts afresh).
struct CheckpointSchedule {
    every: u64,
    interval: std::time::Duration,
    since: u64,
    last: std::time::Instant,
}

impl CheckpointSchedule {
    fn new(every: u64, interval: std::time::Duration) -> Self {
        CheckpointSchedule {
            every,
            interval,
            since: 0,
            last: std::time::Instant::now(),
        }
    }
    fn recorded(&mut self) {
        self.since += 1;
    }
    fn due(&self) -> bool {
        self.since >= self.every || (self.since > 0 && self.last.elapsed() >= self.interval)
    }
    fn sealed(&mut self) {
        self.since = 0;
        self.last = std::time::Instant::now();
    }
}

/// Trusted case-system keys for commands over MQTT; None when the station takes none.
fn command_verifier(config: &Config) -> anyhow::Result<Option<crate::commands::Verifier>> {
    crate::commands::Verifier::from_config(config)
}

/// Commits captures from the async side (the outbox work runs on a blocking thread).
#[derive(Clone)]
struct Sealer {
    station: String,
    location: Option<String>,
    crypto: Crypto,
    outbox: SharedOutbox,
    events: EventBus,
    new_records: Arc<Notify>,
}

impl Sealer {
    /// Seals and commits one capture; true when it is durable.
    async fn commit(&self, capture: Capture) -> bool {
        let station = self.station.clone();
        let crypto = self.crypto.clone();
        let summary = capture.summary.clone();
        let instant = capture.instant;
        let location = self.location.clone();
        let committed = outbox::run(&self.outbox, move |o| {
            let mut contents = RecordContents::from_capture(capture);
            contents.location = location;
            seal::commit(o, &station, &crypto, contents)
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
                true
            }
            Err(OutboxError::Full { detail, .. }) => {
                error!(%detail, "capture refused: the outbox is full; everything held is kept");
                emit(&self.events, Event::OutboxFull { detail });
                false
            }
            Err(e) => {
                error!(error = %e, "capture refused: the record could not be committed");
                emit(
                    &self.events,
                    Event::CaptureRefused {
                        reason: e.to_string(),
                    },
                );
                false
            }
        }
    }

    /// Seals a checkpoint record; true when it is durable.
    async fn checkpoint(&self) -> bool {
        let station = self.station.clone();
        let crypto = self.crypto.clone();
        match outbox::run(&self.outbox, move |o| {
            seal::checkpoint(o, &station, &crypto)
        })
        .await
        {
            Ok(c) => {
                info!(record_id = %c.record_id, seq = c.seq, "checkpoint committed");
                self.new_records.notify_one();
                true
            }
            Err(e) => {
                error!(error = %e, "checkpoint could not be committed");
                false
            }
        }
    }
}
