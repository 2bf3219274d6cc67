//! Benchmarks, side by side in one run on loopback against a real Mosquitto (ignored by default;
//! see docs/performance.md):
//!     cargo test --release --test e2e uplink_bench -- --ignored --nocapture --test-threads=1

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign::outbox::{self, Outbox, SharedOutbox};
use countersign::record::{ChainLink, Sealed, SealedBlob};
use countersign::uplink::{self, UplinkOptions};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{Notify, watch};

use crate::harness_mqtt::*;

const STATION: &str = "bench";

/// Base64url-like ASCII (what a JWE wire form looks like), no newlines.
fn ascii(seed: u64, len: usize) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    page_bytes(seed, len)
        .into_iter()
        .map(|b| A[(b & 63) as usize])
        .collect()
}

fn append(outbox: &mut Outbox, i: u64, record: usize, blob: Option<usize>) {
    outbox
        .append(STATION, |link: &ChainLink| {
            Ok(Sealed {
                record_id: format!("r{i:06}-{}", link.seq),
                wire: ascii(i, record),
                blobs: blob
                    .map(|n| SealedBlob {
                        blob_id: format!("b{i:06}"),
                        wire: ascii(i + 1_000_000, n),
                    })
                    .into_iter()
                    .collect(),
            })
        })
        .unwrap();
}

/// A case system that acks every record as soon as it arrives, and counts bytes.
async fn acker(port: u16, bytes: Arc<Mutex<u64>>) -> AsyncClient {
    acker_signing(port, bytes, None).await
}

/// As [`acker`]; with a key, every answer is a signed receipt bound to the record's bytes.
async fn acker_signing(
    port: u16,
    bytes: Arc<Mutex<u64>>,
    key: Option<countersign::record::keys::StationKey>,
) -> AsyncClient {
    let answers = match key {
        Some(key) => Answers::Sign(Box::new(key)),
        None => Answers::Unsigned,
    };
    acker_answering(port, bytes, answers).await
}

/// How a test case system answers.
enum Answers {
    /// The JSON answers of stations before receipts.
    Unsigned,
    /// Receipts signed as each record arrives.
    Sign(Box<countersign::record::keys::StationKey>),
    /// Answers prepared before the run, by record id (the station's cost alone is measured).
    Prepared(std::collections::HashMap<String, String>),
}

/// Answers for every record of `outbox`, unsigned or signed with `key`, made before a run.
fn prepared_answers(
    outbox: &Outbox,
    key: Option<&countersign::record::keys::StationKey>,
) -> std::collections::HashMap<String, String> {
    let all = outbox.oldest(usize::MAX >> 1).unwrap();
    all.into_iter()
        .map(|p| {
            let answer = answer_for(key, &p.record_id, &p.wire);
            (p.record_id, answer)
        })
        .collect()
}

fn answer_for(
    key: Option<&countersign::record::keys::StationKey>,
    id: &str,
    wire: &[u8],
) -> String {
    match key {
        None => format!(r#"{{"record_id":"{id}","status":"stored"}}"#),
        Some(key) => countersign::receipts::sign(
            key,
            &countersign::receipts::Claim {
                station: STATION,
                record_id: id,
                outcome: &countersign::receipts::Outcome::Stored,
                sha256: &countersign::receipts::sha256_ref(wire),
                iat: countersign::commands::now_secs(),
            },
        ),
    }
}

async fn acker_answering(port: u16, bytes: Arc<Mutex<u64>>, answers: Answers) -> AsyncClient {
    static ACKERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = ACKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut o = MqttOptions::new(format!("bench-acker-{n}"), "127.0.0.1", port);
    o.set_max_packet_size(Some(16 * 1024 * 1024));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    o.set_network_options(network);
    let (client, mut ev) = AsyncClient::new(o, 100_000);
    let c = client.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ =
                        c.try_subscribe(format!("countersign/v1/{STATION}/#"), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    *bytes.lock().unwrap() += p.payload.len() as u64;
                    if p.topic.ends_with(b"/records") {
                        let id = p
                            .properties
                            .as_ref()
                            .and_then(|pr| pr.correlation_data.clone())
                            .unwrap_or_default();
                        let id = String::from_utf8_lossy(&id);
                        let ack = match &answers {
                            Answers::Unsigned => answer_for(None, &id, &p.payload),
                            Answers::Sign(key) => answer_for(Some(key), &id, &p.payload),
                            Answers::Prepared(ready) => {
                                ready.get(id.as_ref()).cloned().unwrap_or_default()
                            }
                        };
                        let _ = c.try_publish(
                            format!("countersign/v1/{STATION}/acks"),
                            QoS::AtLeastOnce,
                            false,
                            ack,
                        );
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
    client
}

/// Runs the uplink until the outbox is empty; returns the time it took.
async fn drain(
    outbox: SharedOutbox,
    port: u16,
    chunk: usize,
    produce: Option<(u64, usize)>,
) -> Duration {
    drain_with(outbox, port, chunk, produce, None).await
}

/// As [`drain`], the station taking only receipts signed by `trusted` when given.
async fn drain_with(
    outbox: SharedOutbox,
    port: u16,
    chunk: usize,
    produce: Option<(u64, usize)>,
    trusted: Option<&countersign::record::keys::StationKey>,
) -> Duration {
    let mut opts = UplinkOptions::loopback(STATION, port);
    if let Some(key) = trusted {
        let mut keys = countersign::record::keys::Keyring::default();
        keys.insert(key.kid.clone(), key.verifying_key());
        opts.answers = Arc::new(countersign::receipts::Policy {
            station: STATION.into(),
            keys,
            kids: vec![key.kid.clone()],
            accept_unsigned: false,
            unsigned_because: None,
            sm2_only: false,
            max_age_secs: 86_400,
        });
    }
    opts.chunk_bytes = chunk;
    // mosquitto_pub keeps up to 20 QoS 1 messages in flight; the same here unless told otherwise.
    opts.inflight_messages = std::env::var("COUNTERSIGN_BENCH_INFLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    opts.max_packet_bytes = 16 * 1024 * 1024;
    let notify = Arc::new(Notify::new());
    let events = countersign::events::bus();
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(uplink::run(
        opts,
        outbox.clone(),
        notify.clone(),
        events.clone(),
        events.subscribe(),
        stop_rx,
    ));
    if let Some((n, size)) = produce {
        let ob = outbox.clone();
        let nt = notify.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..n {
                append(&mut ob.lock().unwrap(), i, size, None);
                nt.notify_one();
            }
        })
        .await
        .unwrap();
    }
    loop {
        let empty = outbox::run(&outbox, |o| o.oldest(1))
            .await
            .unwrap()
            .is_empty();
        if empty {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = task.await;
    took
}

/// mosquitto_pub -l: one QoS 1 message per line, the same bytes in the same sizes.
fn mosquitto_pub(port: u16, lines: &[Vec<u8>]) -> Duration {
    let started = Instant::now();
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-l",
        ])
        .args(["-t", &format!("countersign/v1/{STATION}/blobs/x")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        for l in lines {
            stdin.write_all(l).unwrap();
            stdin.write_all(b"\n").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());
    started.elapsed()
}

#[test]
#[ignore]
fn bench_durable_records_per_second() {
    const N: u64 = 1000;
    const SIZE: usize = 2048;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let rt = tokio::runtime::Runtime::new().unwrap();

    // 1. SQLite alone: one 2 KB row per transaction, WAL + synchronous=FULL.
    let raw = {
        let conn = rusqlite::Connection::open(dir.path().join("raw.sqlite")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, wire BLOB)")
            .unwrap();
        let started = Instant::now();
        for i in 0..N {
            conn.execute("INSERT INTO t (wire) VALUES (?1)", [ascii(i, SIZE)])
                .unwrap();
        }
        started.elapsed()
    };
    // 1b. The outbox alone: append with the chain link and capacity check, fsync per commit.
    let appended = {
        let mut o = Outbox::open(&dir.path().join("append.sqlite")).unwrap();
        let started = Instant::now();
        for i in 0..N {
            append(&mut o, i, SIZE, None);
        }
        started.elapsed()
    };
    // 1c. The uplink alone: drain those records (publish, ack, delete).
    let drained = rt.block_on(async {
        let bytes = Arc::new(Mutex::new(0));
        let _acker = acker(broker.port, bytes).await;
        let outbox: SharedOutbox = Arc::new(Mutex::new(
            Outbox::open(&dir.path().join("append.sqlite")).unwrap(),
        ));
        drain(outbox, broker.port, 65536, None).await
    });
    // 2. mosquitto_pub alone: 2 KB messages at QoS 1, nothing on disk.
    let lines: Vec<Vec<u8>> = (0..N).map(|i| ascii(i, SIZE)).collect();
    let pubbed = mosquitto_pub(broker.port, &lines);
    // 3. countersign: append (fsync per commit) while the uplink publishes, the case system
    //    acks, and the record leaves the outbox (another fsync).
    let ours = rt.block_on(async {
        let bytes = Arc::new(Mutex::new(0));
        let _acker = acker(broker.port, bytes).await;
        let outbox: SharedOutbox = Arc::new(Mutex::new(
            Outbox::open(&dir.path().join("o.sqlite")).unwrap(),
        ));
        drain(outbox, broker.port, 65536, Some((N, SIZE))).await
    });
    let rate = |d: Duration| N as f64 / d.as_secs_f64();
    println!("durable records, {N} x {SIZE} B, loopback:");
    println!(
        "  SQLite insert+commit (WAL, FULL)          {:>8.0} records/s",
        rate(raw)
    );
    println!(
        "  countersign outbox append alone           {:>8.0} records/s",
        rate(appended)
    );
    println!(
        "  countersign uplink drain alone (prefilled) {:>7.0} records/s",
        rate(drained)
    );
    println!(
        "  mosquitto_pub -q 1 (no disk)              {:>8.0} records/s",
        rate(pubbed)
    );
    println!(
        "  countersign commit+publish+ack+delete     {:>8.0} records/s",
        rate(ours)
    );
    println!(
        "  ratio countersign / SQLite commit: {:.2}; countersign / mosquitto_pub: {:.2}",
        rate(ours) / rate(raw),
        rate(ours) / rate(pubbed)
    );
}

#[test]
#[ignore]
fn bench_blob_drain_vs_mosquitto_pub() {
    const RECORDS: u64 = 200;
    const BLOB: usize = 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut outbox = Outbox::open(&dir.path().join("o.sqlite")).unwrap();
    for i in 0..RECORDS {
        append(&mut outbox, i, 2048, Some(BLOB));
    }
    drop(outbox);
    let total_mb = (RECORDS as usize * BLOB) as f64 / 1e6;

    let (ours, pubbed) = rt.block_on(async {
        let bytes = Arc::new(Mutex::new(0));
        let _acker = acker(broker.port, bytes.clone()).await;
        let outbox: SharedOutbox = Arc::new(Mutex::new(
            Outbox::open(&dir.path().join("o.sqlite")).unwrap(),
        ));
        let ours = drain(outbox, broker.port, CHUNK, None).await;
        // The same bytes in the same chunk sizes, with the same subscriber taking them.
        let mut lines = Vec::new();
        for i in 0..RECORDS {
            let blob = ascii(i + 1_000_000, BLOB);
            lines.extend(blob.chunks(CHUNK).map(|c| c.to_vec()));
        }
        let port = broker.port;
        let pubbed = tokio::task::spawn_blocking(move || mosquitto_pub(port, &lines))
            .await
            .unwrap();
        (ours, pubbed)
    });
    let mbps = |d: Duration| total_mb / d.as_secs_f64();
    println!("drain of {RECORDS} records x 1 MiB blob in {CHUNK} B chunks, QoS 1, loopback:");
    println!(
        "  mosquitto_pub -l -q 1        {:>7.1} MB/s ({:?})",
        mbps(pubbed),
        pubbed
    );
    println!(
        "  countersign uplink           {:>7.1} MB/s ({:?}, incl. reads, records, acks, deletes)",
        mbps(ours),
        ours
    );
    println!(
        "  ratio countersign / mosquitto_pub: {:.2}",
        mbps(ours) / mbps(pubbed)
    );
}

/// Drain throughput with signed receipts against unsigned answers (issue 14: within 5%), the
/// same prefilled outbox each time, the runs interleaved (each round starting with another kind)
/// so that the machine's moods hit all alike.
#[test]
#[ignore]
fn bench_drain_signed_receipts_vs_unsigned_answers() {
    use countersign::record::keys::{KeyType, load_private};
    const N: u64 = 1000;
    const SIZE: usize = 2048;
    const ROUNDS: usize = 11;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let base = dir.path().join("base.sqlite");
    {
        let mut o = Outbox::open(&base).unwrap();
        for i in 0..N {
            append(&mut o, i, SIZE, None);
        }
    }
    let key_of = |name: &str, key_type| {
        let (private, _, _) =
            countersign::record::keys::generate(&dir.path().join(name), key_type).unwrap();
        load_private(&private).unwrap()
    };
    let kinds = [
        ("unsigned JSON", None),
        ("EdDSA receipts", Some(key_of("ed", KeyType::Ed25519))),
        ("ES256 receipts", Some(key_of("p256", KeyType::P256))),
        ("SM2 receipts", Some(key_of("sm2", KeyType::Sm2Sign))),
    ];
    // The case system's answers are made before the runs: what is measured is the station's
    // cost (verifying each receipt, comparing its hash, keeping it), not the signing, which on
    // this machine would compete with the station for the same two cores.
    let ready: Vec<_> = {
        let o = Outbox::open(&base).unwrap();
        kinds
            .iter()
            .map(|(_, key)| prepared_answers(&o, key.as_ref()))
            .collect()
    };
    // What checking one answer costs the station by itself (signature, claims, freshness).
    for ((name, key), answers) in kinds.iter().zip(&ready) {
        let mut policy = countersign::receipts::Policy::trusting_broker(STATION);
        if let Some(key) = key {
            policy.keys.insert(key.kid.clone(), key.verifying_key());
        }
        let now = countersign::commands::now_secs();
        let started = Instant::now();
        for answer in answers.values() {
            policy.check(answer.as_bytes(), now).unwrap();
        }
        println!(
            "  checking one answer, {name}: {:.1} µs",
            started.elapsed().as_secs_f64() * 1e6 / answers.len() as f64
        );
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    for round in 0..ROUNDS {
        // Each round starts with another kind: the first run of a round was seen to be slower.
        for j in 0..kinds.len() {
            let k = (j + round) % kinds.len();
            let key = &kinds[k].1;
            let file = dir.path().join(format!("run-{round}-{k}.sqlite"));
            std::fs::copy(&base, &file).unwrap();
            let answers = Answers::Prepared(ready[k].clone());
            // A runtime per run: its case system goes with it, so each run has exactly one.
            let rt = tokio::runtime::Runtime::new().unwrap();
            let took = rt.block_on(async {
                let bytes = Arc::new(Mutex::new(0));
                let _acker = acker_answering(broker.port, bytes, answers).await;
                let outbox: SharedOutbox = Arc::new(Mutex::new(Outbox::open(&file).unwrap()));
                drain_with(outbox, broker.port, 65536, None, key.as_ref()).await
            });
            rt.shutdown_timeout(Duration::from_secs(1));
            times[k].push(took);
        }
    }
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let rate = |d: Duration| N as f64 / d.as_secs_f64();
    println!(
        "drain of {N} prefilled records x {SIZE} B, answers by kind, median of {ROUNDS} interleaved runs:"
    );
    let unsigned = rate(median(&times[0]));
    for (k, (name, _)) in kinds.iter().enumerate() {
        let r = rate(median(&times[k]));
        println!(
            "  {name:<16} {r:>7.0} records/s  (ratio to unsigned {:.3}; runs {:?})",
            r / unsigned,
            times[k].iter().map(|d| d.as_millis()).collect::<Vec<_>>()
        );
    }
}

/// Many publishers answering every record at once (several case-system consumers, duplicates,
/// forgers): bursts of answers larger than the MQTT client's request channel. Every one must
/// still be acked to the broker, or delivery stalls until the ack timeout and beyond (it did: 30
/// acks dropped in one burst, then no answer reached the station for 60 s).
#[test]
fn many_answerers_at_once_never_stall_delivery() {
    use countersign::record::keys::{KeyType, load_private};
    const N: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerSetup::default());
    let (private, _, _) =
        countersign::record::keys::generate(&dir.path().join("case"), KeyType::Ed25519).unwrap();
    let key = || load_private(&private).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let file = dir.path().join("o.sqlite");
    {
        let mut o = Outbox::open(&file).unwrap();
        for i in 0..N {
            append(&mut o, i, 512, None);
        }
    }
    let took = rt.block_on(async {
        let mut ackers = Vec::new();
        for i in 0..12 {
            // Half sign with the trusted key, half send unsigned JSON (refused, still acked).
            let signing = (i % 2 == 0).then(key);
            ackers.push(acker_signing(broker.port, Arc::new(Mutex::new(0)), signing).await);
        }
        let outbox: SharedOutbox = Arc::new(Mutex::new(Outbox::open(&file).unwrap()));
        tokio::time::timeout(
            Duration::from_secs(45),
            drain_with(outbox, broker.port, 65536, None, Some(&key())),
        )
        .await
    });
    let took = took.expect("delivery stalled: the outbox did not drain within 45 s");
    // The ack timeout is 60 s: a drain that waited for it would show here.
    assert!(took < Duration::from_secs(20), "drained in {took:?}");
}
