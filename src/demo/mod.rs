//! `countersign demo`: the whole chain on one machine, no hardware, no setup. An embedded broker
//! on a loopback port, the simulated ID card reader on a pseudo-terminal, the real station
//! (reading through the real serial driver, sealing, committing to a real outbox, publishing),
//! and a small case system that verifies and acknowledges each record.

mod broker;
mod case_system;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::watch;

use crate::config;
use crate::events::{self, Event};
use crate::outbox::Outbox;
use crate::record::{self, keys};
use crate::station;

const STATION: &str = "demo-counter";

pub async fn run(cards: u32, out: &Path) -> anyhow::Result<()> {
    if cards == 0 {
        bail!("--cards must be at least 1");
    }
    let records_dir = out.join("records");
    let keys_dir = out.join("keys");
    prepare_out_dir(&records_dir, &keys_dir)?;

    // Private key, outbox and pty link live in a scratch directory removed at the end.
    let work = tempfile::Builder::new()
        .prefix("countersign-demo-")
        .tempdir()?;
    let (private_key, public_key, kid) = keys::generate(&work.path().join("keys"))?;
    std::fs::copy(&public_key, keys_dir.join(keys::PUBLIC_KEY_FILE))
        .context("cannot copy the public key to the output directory")?;

    let broker = broker::start()?;
    let link = work.path().join("idcard");
    let sim_stop = Arc::new(AtomicBool::new(false));
    let sim = {
        let options = ga467::sim::PtySimOptions {
            link: link.clone(),
            baud: 115200,
            present: Duration::from_millis(1200),
            absent: Duration::from_millis(800),
            cards: ga467::sim::fake_resident_cards(),
        };
        let stop = sim_stop.clone();
        tokio::task::spawn_blocking(move || ga467::sim::run_pty(options, stop))
    };

    let state_dir = work.path().join("state");
    let config_text = demo_config(broker.port, &private_key, &state_dir, &link);
    let config = config::parse(&config_text, Path::new("<demo>"))?;
    let key = keys::load_private(&private_key)?;
    println!(
        "countersign demo: broker 127.0.0.1:{}, simulated ID card reader on a pseudo-terminal, station {STATION} (key {kid})",
        broker.port
    );

    let events = events::bus();
    let mut event_rx = events.subscribe();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let station = tokio::spawn(station::run(config, key, events.clone(), shutdown_rx));

    let accepted: case_system::AcceptedLog = Arc::default();
    let (verifying_key, _) = keys::load_public(&public_key)?;
    let consumer = tokio::spawn(
        case_system::CaseSystem {
            port: broker.port,
            key: verifying_key,
            kid: kid.clone(),
            records_dir: records_dir.clone(),
            accepted: accepted.clone(),
        }
        .run(),
    );

    let deadline = Duration::from_secs(30 + 5 * u64::from(cards));
    let outcome = tokio::time::timeout(deadline, async {
        let mut read_at: std::collections::HashMap<String, Instant> = Default::default();
        let mut delivered = 0u32;
        while delivered < cards {
            match event_rx.recv().await {
                Ok(Event::RecordCommitted {
                    record_id,
                    card_read_at,
                    ..
                }) => {
                    read_at.insert(record_id, card_read_at);
                }
                Ok(Event::RecordDelivered { record_id }) => {
                    let latency = read_at
                        .get(&record_id)
                        .map(|t| t.elapsed().as_millis().to_string())
                        .unwrap_or_else(|| "?".into());
                    let info = accepted.lock().ok().and_then(|l| l.get(&record_id).cloned());
                    let Some(info) = info else {
                        bail!("record {record_id} was acknowledged but the case system has no trace of it");
                    };
                    delivered += 1;
                    println!(
                        "[{delivered}/{cards}] record {record_id}  seq {}  id {}  signature verified (EdDSA)  card-to-ack {latency} ms",
                        info.seq, info.masked_number
                    );
                }
                Ok(Event::RecordRejected { record_id, reason }) => {
                    bail!("the case system rejected record {record_id}: {reason}");
                }
                Ok(Event::CaptureRefused { reason }) => bail!("capture refused: {reason}"),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("station events ended: {e}"),
            }
        }
        Ok(())
    })
    .await;

    let _ = shutdown_tx.send(true);
    let station_result = station.await;
    consumer.abort();
    sim_stop.store(true, Ordering::Relaxed);
    let _ = sim.await;

    match outcome {
        Ok(result) => result?,
        Err(_) => bail!(
            "timed out after {}s before {cards} records were delivered (run with RUST_LOG=info for details)",
            deadline.as_secs()
        ),
    }
    station_result.context("station task failed")??;

    let stats = Outbox::open(&state_dir.join("outbox.sqlite"))?.stats()?;
    if stats.depth != 0 {
        bail!(
            "{} record(s) still in the outbox after their acks",
            stats.depth
        );
    }
    println!(
        "{cards} record(s) delivered, verified and acknowledged; outbox empty.\nWire copies: {}/*.{}  station public key: {}",
        records_dir.display(),
        record::WIRE_EXT,
        keys_dir.join(keys::PUBLIC_KEY_FILE).display()
    );
    Ok(())
}

/// The demo runs the real configuration parser on a generated file.
fn demo_config(port: u16, key: &Path, state: &Path, link: &Path) -> String {
    let s = |p: &Path| toml_string(&p.display().to_string());
    format!(
        r#"[station]
id = "{STATION}"
signing_key = {key}
state_dir = {state}

[mqtt]
host = "127.0.0.1"
port = {port}
keep_alive_secs = 10
ack_timeout_secs = 10
reconnect_max_secs = 2

[id_readers.desk]
port = {link}
baud = 115200
poll_interval_ms = 200
"#,
        key = s(key),
        state = s(state),
        link = s(link),
    )
}

fn toml_string(s: &str) -> String {
    // A TOML basic string is JSON-compatible for the characters a path can hold.
    serde_json::to_string(s).unwrap_or_default()
}

/// Creates the output directories and removes what an earlier demo run left there (its records
/// no longer verify against this run's new key).
fn prepare_out_dir(records: &Path, keys_dir: &Path) -> anyhow::Result<()> {
    for dir in [records, keys_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for entry in std::fs::read_dir(records)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == record::WIRE_EXT) {
            std::fs::remove_file(&path)?;
        }
    }
    let old_key = keys_dir.join(keys::PUBLIC_KEY_FILE);
    if old_key.exists() {
        std::fs::remove_file(old_key)?;
    }
    Ok(())
}
