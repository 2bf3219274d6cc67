//! `countersign demo --scenario marriage`: a marriage registration at one counter, driven by the
//! case system. It opens a session, both parties lay their cards on the reader (a resident ID card
//! and a 2023 foreign permanent residence card), the camera captures four labelled pages on
//! command, and closing the session seals ONE record: both identities, all photos and pages, the
//! case reference. The demo case system verifies it and prints its summary.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ga467::sim::{Action, Scenario, Step};
use serde_json::json;

use super::commander::Commander;
use super::{Running, STATION, broker, prepare_out_dir, toml_string};
use crate::config::Profile;
use crate::events::Event;
use crate::outbox::Outbox;
use crate::record;
use crate::record::keys::{self, KeyType};

const CASE_REF: &str = "MR-DEMO-0001";
const PAGES: [&str; 4] = [
    "household_register",
    "household_register",
    "marriage_photo",
    "application_form",
];

pub async fn run(out: &Path, profile: Profile) -> anyhow::Result<()> {
    prepare_out_dir(out)?;
    let work = tempfile::Builder::new()
        .prefix("countersign-demo-")
        .tempdir()?;
    let (station_type, recipient_type) = match profile {
        Profile::Standard => (KeyType::Ed25519, KeyType::X25519),
        Profile::Gm => (KeyType::Sm2Sign, KeyType::Sm2Encrypt),
    };
    let (private_key, public_key, _) = keys::generate(&work.path().join("keys"), station_type)?;
    std::fs::copy(&public_key, out.join("keys").join(keys::PUBLIC_KEY_FILE))?;
    let (recipient_private, recipient_public, _) =
        keys::generate(&out.join("keys"), recipient_type)?;
    // The case system signs its commands and receipts with its own key; the station trusts it
    // (`[commands] trusted_keys`, which `[acks]` falls back to).
    let (command_key, command_public) = super::case_signing_key(work.path(), out, station_type)?;

    let broker = broker::start()?;
    let link = work.path().join("idcard");
    let frames = work.path().join("camera");
    write_pages(&frames)?;
    let state_dir = work.path().join("state");
    let s = |p: &Path| toml_string(&p.display().to_string());
    let profile_name = if profile == Profile::Gm {
        "gm"
    } else {
        "standard"
    };
    let config_text = format!(
        r#"[station]
id = "{STATION}"
signing_key = {key}
state_dir = {state}
location = "Demo civil affairs office, window 1"

[crypto]
profile = "{profile_name}"
recipient_key = {recipient}

[session]
outside_session = "ignore"

[commands]
trusted_keys = [{trusted}]

[mqtt]
host = "127.0.0.1"
port = {port}
keep_alive_secs = 10
ack_timeout_secs = 10
reconnect_max_secs = 2

[id_readers.desk]
port = {link}
poll_interval_ms = 200

[cameras.desk-camera]
replay = {frames}
replay_fps = 20
replay_hold_frames = 12
replay_loop = true
settle_ms = 0
"#,
        key = s(&private_key),
        state = s(&state_dir),
        recipient = s(&recipient_public),
        trusted = s(&command_public),
        port = broker.port,
        link = s(&link),
        frames = s(&frames),
    );
    let mut running = Running::start(
        &config_text,
        "<demo marriage>",
        broker.port,
        &public_key,
        &recipient_private,
        &command_key,
        out,
    )?;
    println!(
        "countersign demo, marriage registration: broker 127.0.0.1:{}, card reader simulator, replayed document camera, station {STATION}",
        broker.port
    );
    let accepted = running.accepted.clone();
    let sim_stop = Arc::new(AtomicBool::new(false));

    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        let mut case = Commander::connect(broker.port, STATION, keys::load_private(&command_key)?)
            .await?;
        // The station answers once it is up and subscribed.
        let mut tries = 0;
        while let Err(e) = case.send_within("ping", json!({}), Duration::from_millis(700)).await {
            tries += 1;
            if tries > 20 {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let opened = case
            .send(
                "open_session",
                json!({"case_ref": CASE_REF, "operator": "clerk-07", "purpose": "marriage_registration"}),
            )
            .await?;
        println!("open_session      -> session {}", opened["session_id"].as_str().unwrap_or("?"));

        // Both parties lay their ID cards on the reader, one after the other.
        let sim = {
            let (link, stop) = (link.clone(), sim_stop.clone());
            tokio::task::spawn_blocking(move || ga467::sim::run_scenario(&link, two_cards(), stop))
        };
        let mut cards = 0;
        while cards < 2 {
            match running.events.recv().await {
                Ok(Event::CardRead {
                    card_type,
                    masked_number,
                    ..
                }) => {
                    cards += 1;
                    println!("card read         -> {card_type} {masked_number}");
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("station events ended: {e}"),
            }
        }
        for label in PAGES {
            let result = case
                .send("capture", json!({"source": "desk-camera", "label": label}))
                .await?;
            println!("capture {label:<18} -> {} page(s)", result["pages"]);
            // The next page is laid on the desk.
            tokio::time::sleep(Duration::from_millis(650)).await;
        }
        let closed = case.send("close_session", json!({})).await?;
        let record_id = closed["record_id"].as_str().unwrap_or_default().to_string();
        println!(
            "close_session     -> record {record_id}, {} identities, {} pages",
            closed["identities"], closed["pages"]
        );
        loop {
            match running.events.recv().await {
                Ok(Event::RecordDelivered { record_id: id }) if id == record_id => break,
                Ok(Event::RecordRejected { record_id: id, reason }) if id == record_id => {
                    bail!("the case system rejected the record: {reason}")
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("station events ended: {e}"),
            }
        }
        sim_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = sim.await;
        let info = accepted
            .lock()
            .ok()
            .and_then(|l| l.get(&record_id).cloned())
            .context("the case system has no trace of the record")?;
        println!("sealed record {record_id} (seq {}), decrypted and signature verified ({}):", info.seq, info.algorithms);
        println!("  case          {}", info.case_ref.as_deref().unwrap_or("-"));
        for identity in &info.identities {
            println!("  identity      {identity}");
        }
        println!("  pages         {}", info.labels.join(", "));
        println!("  blobs         {} (photos and pages, each hash-checked against the signed manifest)", info.blobs);
        if info.identities.len() != 2 || info.labels.len() != PAGES.len() {
            bail!("the sealed record does not hold both identities and all four pages");
        }
        Ok(())
    })
    .await;

    let station_result = running.stop().await;
    sim_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    match outcome {
        Ok(result) => result?,
        Err(_) => bail!("the marriage scenario did not finish in 120 s (run with RUST_LOG=info)"),
    }
    station_result?;
    let stats = Outbox::open(&state_dir.join("outbox.sqlite"))?.stats()?;
    if stats.depth != 0 {
        bail!("{} record(s) still in the outbox", stats.depth);
    }
    println!(
        "one record delivered and acknowledged; outbox empty. Check it: countersign verify --station-key {} --decrypt-key {} {}",
        out.join("keys").join(keys::PUBLIC_KEY_FILE).display(),
        recipient_private.display(),
        out.display()
    );
    let _ = record::WIRE_EXT;
    Ok(())
}

/// The resident card, then the 2023 foreign permanent residence card.
fn two_cards() -> Scenario {
    let cards = ga467::sim::fake_cards_all_types();
    let step = |ms: u64, action: Action| Step {
        at: Duration::from_millis(ms),
        action,
    };
    Scenario {
        baud: 115200,
        protocol: Default::default(),
        steps: vec![
            step(500, Action::Place(Box::new(cards[0].clone()))),
            step(1400, Action::Remove),
            step(2000, Action::Place(Box::new(cards[4].clone()))),
            step(2900, Action::Remove),
        ],
        cycle: None,
    }
}

/// Four synthetic pages, as the camera sends them (MJPEG without Huffman tables).
fn write_pages(dir: &Path) -> anyhow::Result<()> {
    use crate::imaging::testgen::{SceneOptions, scene};
    std::fs::create_dir_all(dir)?;
    for i in 0..PAGES.len() {
        let options = SceneOptions {
            width: 1600,
            height: 1200,
            blur: Some(0.0),
            light: Some(1.0),
            jpeg_quality: Some(85),
            ..SceneOptions::default()
        };
        let bytes = camera::frame::strip_huffman_tables(&scene(200 + i as u64, &options).jpeg);
        let path = dir.join(format!("{i:03}.jpg"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
