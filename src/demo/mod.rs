//! `countersign demo`: the whole chain on one machine, no hardware, no setup. An embedded broker
//! on a loopback port, the simulated ID card reader on a pseudo-terminal, the real station
//! (reading through the real serial driver, sealing, committing to a real outbox, publishing),
//! a document camera replaying synthetic pages through the real camera supervisor (auto-capture,
//! the imaging pipeline), and a small case system that verifies and acknowledges each record.

mod broker;
mod case_system;
mod commander;
mod marriage;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::watch;

use crate::config;
use crate::config::Profile;
use crate::events::{self, Event};
use crate::outbox::Outbox;
use crate::record;
use crate::record::keys::{self, DecryptKeys, KeyType, Keyring};
use crate::station;

pub(crate) const STATION: &str = "demo-counter";

/// The station and the demo case system, running side by side.
struct Running {
    events: tokio::sync::broadcast::Receiver<Event>,
    shutdown: watch::Sender<bool>,
    station: tokio::task::JoinHandle<anyhow::Result<()>>,
    consumer: tokio::task::JoinHandle<()>,
    accepted: case_system::AcceptedLog,
}

impl Running {
    /// Starts the station on `config_text` (named `source` in errors) and a case system that
    /// verifies with `station_public`, decrypts with `recipient_private` and signs its receipts
    /// with `case_sign`, storing what it accepts under `out`.
    fn start(
        config_text: &str,
        source: &str,
        port: u16,
        station_public: &Path,
        recipient_private: &Path,
        case_sign: &Path,
        out: &Path,
    ) -> anyhow::Result<Running> {
        let config = config::parse(config_text, Path::new(source))?;
        let crypto = station::crypto::load(&config).map_err(anyhow::Error::msg)?;
        let bus = events::bus();
        let events = bus.subscribe();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let station = tokio::spawn(station::run(config, crypto, bus, shutdown_rx));
        let accepted: case_system::AcceptedLog = Arc::default();
        let consumer = tokio::spawn(
            case_system::CaseSystem {
                port,
                keyring: Keyring::load(&[station_public.to_path_buf()])?,
                decrypt: DecryptKeys::load(&[recipient_private.to_path_buf()])?,
                sign_key: keys::load_private(case_sign)?,
                out_dir: out.to_path_buf(),
                accepted: accepted.clone(),
            }
            .run(),
        );
        Ok(Running {
            events,
            shutdown,
            station,
            consumer,
            accepted,
        })
    }

    /// Stops both; the station's own outcome.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let result = self.station.await;
        self.consumer.abort();
        result.context("station task failed")?
    }
}
/// Pages the demo camera captures (each laid on the empty desk, then taken away).
const PAGES: u32 = 2;

/// `--scenario marriage`: one case, two parties, four pages, one record (see `marriage`).
pub async fn run_marriage(out: &Path, profile: Profile) -> anyhow::Result<()> {
    marriage::run(out, profile).await
}

pub async fn run(cards: u32, out: &Path, profile: Profile) -> anyhow::Result<()> {
    if cards == 0 {
        bail!("--cards must be at least 1");
    }
    let records_dir = out.join("records");
    let keys_dir = out.join("keys");
    prepare_out_dir(out)?;

    // The station's private key, outbox and pty link live in a scratch directory removed at the
    // end. The case system's key pair is the demo case system's own: it goes to the output, so
    // that the records can be decrypted and checked afterwards.
    let work = tempfile::Builder::new()
        .prefix("countersign-demo-")
        .tempdir()?;
    let (station_type, recipient_type) = match profile {
        Profile::Standard => (KeyType::Ed25519, KeyType::X25519),
        Profile::Gm => (KeyType::Sm2Sign, KeyType::Sm2Encrypt),
    };
    let (private_key, public_key, kid) = keys::generate(&work.path().join("keys"), station_type)?;
    std::fs::copy(&public_key, keys_dir.join(keys::PUBLIC_KEY_FILE))
        .context("cannot copy the public key to the output directory")?;
    let (recipient_private, recipient_public, _) = keys::generate(&keys_dir, recipient_type)?;
    let (case_sign, case_sign_public) = case_signing_key(work.path(), out, station_type)?;

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
    let frames = work.path().join("camera");
    write_camera_frames(&frames)?;
    let config_text = demo_config(
        broker.port,
        DemoKeys {
            station: &private_key,
            recipient: &recipient_public,
            case_sign: &case_sign_public,
        },
        profile,
        &state_dir,
        &link,
        &frames,
    );
    let mut running = Running::start(
        &config_text,
        "<demo>",
        broker.port,
        &public_key,
        &recipient_private,
        &case_sign,
        out,
    )?;
    println!(
        "countersign demo: broker 127.0.0.1:{}, simulated ID card reader on a pseudo-terminal, replayed document camera, station {STATION} (key {kid})",
        broker.port
    );
    let accepted = running.accepted.clone();

    let deadline = Duration::from_secs(40 + 5 * u64::from(cards));
    let outcome = tokio::time::timeout(deadline, async {
        let mut read_at: std::collections::HashMap<String, Instant> = Default::default();
        let mut delivered = 0u32;
        let mut read = 0u32;
        let mut pages = 0u32;
        // Committed records not acknowledged yet: the demo ends with none (an empty outbox).
        let mut pending = std::collections::HashSet::new();
        while delivered < cards || pages < PAGES || !pending.is_empty() {
            match running.events.recv().await {
                Ok(Event::CardRead { .. }) => {
                    read += 1;
                    if read == cards {
                        // The last card is still on the antenna: stop the desk now, before the
                        // timer lays another card that would be read and delivered unprinted.
                        // (Waiting for the last delivery raced with the next placement on a
                        // loaded machine.)
                        sim_stop.store(true, Ordering::Relaxed);
                    }
                }
                Ok(Event::RecordCommitted {
                    record_id,
                    card_read_at,
                    ..
                }) => {
                    pending.insert(record_id.clone());
                    read_at.insert(record_id, card_read_at);
                }
                Ok(Event::RecordDelivered { record_id }) => {
                    pending.remove(&record_id);
                    let latency = read_at
                        .get(&record_id)
                        .map(|t| t.elapsed().as_millis().to_string())
                        .unwrap_or_else(|| "?".into());
                    let info = accepted.lock().ok().and_then(|l| l.get(&record_id).cloned());
                    let Some(info) = info else {
                        bail!("record {record_id} was acknowledged but the case system has no trace of it");
                    };
                    if info.pages > 0 && pages < PAGES {
                        pages += 1;
                        println!(
                            "[page {pages}/{PAGES}] record {record_id}  seq {}  {} blobs (page, page_original) hash-checked, decrypted, signature verified ({})  capture-to-ack {latency} ms",
                            info.seq, info.blobs, info.algorithms
                        );
                        continue;
                    }
                    if info.masked_number.is_empty() || delivered == cards {
                        continue;
                    }
                    delivered += 1;
                    println!(
                        "[{delivered}/{cards}] record {record_id}  seq {}  id {}  decrypted, signature verified ({})  card-to-ack {latency} ms",
                        info.seq, info.masked_number, info.algorithms
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

    let station_result = running.stop().await;
    sim_stop.store(true, Ordering::Relaxed);
    let _ = sim.await;

    match outcome {
        Ok(result) => result?,
        Err(_) => bail!(
            "timed out after {}s before {cards} card records and {PAGES} page records were delivered (run with RUST_LOG=info for details)",
            deadline.as_secs()
        ),
    }
    station_result?;

    let stats = Outbox::open(&state_dir.join("outbox.sqlite"))?.stats()?;
    if stats.depth != 0 {
        bail!(
            "{} record(s) still in the outbox after their acks",
            stats.depth
        );
    }
    println!(
        "{cards} card record(s) and {PAGES} page record(s) delivered, decrypted, verified and acknowledged; outbox empty.\n\
         Wire copies: {}/*.{ext} (blobs in {}), station public key {}, case-system key {}.\n\
         Check them: countersign verify --station-key {} --decrypt-key {} {}",
        records_dir.display(),
        out.join("blobs").display(),
        keys_dir.join(keys::PUBLIC_KEY_FILE).display(),
        recipient_private.display(),
        keys_dir.join(keys::PUBLIC_KEY_FILE).display(),
        recipient_private.display(),
        out.display(),
        ext = record::WIRE_EXT,
    );
    Ok(())
}

/// The demo runs the real configuration parser on a generated file.
/// The demo case system's signing key (receipts, and commands in the marriage scenario): the
/// private half stays in the scratch directory, the public half goes to `out/keys` as
/// `case-system-sign.pub.jwk`, to check the receipts afterwards (`countersign verify`).
fn case_signing_key(
    work: &Path,
    out: &Path,
    key_type: KeyType,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (private, public, _) = keys::generate(&work.join("case-sign"), key_type)?;
    std::fs::copy(&public, out.join("keys").join(CASE_SIGN_PUBLIC))
        .context("cannot copy the case system's public key to the output directory")?;
    Ok((private, public))
}

/// The demo case system's public signing key, in the output's `keys/`.
pub const CASE_SIGN_PUBLIC: &str = "case-system-sign.pub.jwk";

/// The key files a demo station's configuration names.
struct DemoKeys<'a> {
    station: &'a Path,
    recipient: &'a Path,
    case_sign: &'a Path,
}

fn demo_config(
    port: u16,
    keys: DemoKeys<'_>,
    profile: Profile,
    state: &Path,
    link: &Path,
    frames: &Path,
) -> String {
    let s = |p: &Path| toml_string(&p.display().to_string());
    let profile = match profile {
        Profile::Standard => "standard",
        Profile::Gm => "gm",
    };
    format!(
        r#"[station]
id = "{STATION}"
signing_key = {key}
state_dir = {state}

[crypto]
profile = "{profile}"
recipient_key = {recipient}

[acks]
trusted_keys = [{case_sign}]

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

[cameras.desk-camera]
replay = {frames}
replay_fps = 20
replay_hold_frames = 10
settle_ms = 0
auto_capture = true
analysis_interval_ms = 40
still_frames = 3
"#,
        key = s(keys.station),
        recipient = s(keys.recipient),
        case_sign = s(keys.case_sign),
        state = s(state),
        link = s(link),
        frames = s(frames),
    )
}

/// The demo camera's recording: the empty desk, a page laid on it, the desk again, another page
/// (synthetic pages from the imaging module's generator, as a UVC camera sends them: MJPEG
/// without Huffman tables). Each file is shown for half a second.
fn write_camera_frames(dir: &Path) -> anyhow::Result<()> {
    use crate::imaging::testgen::{SceneOptions, scene};
    std::fs::create_dir_all(dir)?;
    let frame = |seed: u64, empty: bool| {
        let options = SceneOptions {
            width: 1600,
            height: 1200,
            empty,
            blur: Some(0.0),
            light: Some(1.0),
            jpeg_quality: Some(85),
            ..SceneOptions::default()
        };
        camera::frame::strip_huffman_tables(&scene(seed, &options).jpeg)
    };
    let desk = frame(1, true);
    let mut files = vec![desk.clone()];
    for page in 0..PAGES {
        files.push(frame(100 + u64::from(page), false));
        files.push(desk.clone());
    }
    for (i, bytes) in files.iter().enumerate() {
        let path = dir.join(format!("{i:03}.jpg"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub(crate) fn toml_string(s: &str) -> String {
    // A TOML basic string is JSON-compatible for the characters a path can hold.
    serde_json::to_string(s).unwrap_or_default()
}

/// Creates the output directories and removes what an earlier demo run left there (its records
/// no longer verify against this run's new keys).
pub(crate) fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    for sub in ["records", "blobs", "keys"] {
        let dir = out.join(sub);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let ours = path
                .extension()
                .is_some_and(|e| e == record::WIRE_EXT || e == "jwk");
            if ours && path.is_file() {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}
