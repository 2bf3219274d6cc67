//! The uplink: delivers the outbox over MQTT 5 and applies the case system's acks.
//!
//! rumqttc keeps nothing on disk and silently drops un-acked publishes when it reconnects with a
//! clean session, and a PUBACK only means the broker took the message. So the outbox is the
//! truth: on every CONNACK we publish again everything not yet acknowledged by the case system,
//! in order, within a bounded window; a record leaves the outbox only on the case system's ack.
//! Blobs go first, in chunks (`chunk`), resuming where the case system said it got to.
//!
//! Two tasks, so that nothing ever blocks the MQTT event loop: `poll_loop` only drives the
//! connection (with jittered backoff and a stall timeout) and forwards what arrives;
//! `delivery::Delivery` owns the delivery state and talks to the client with non-blocking
//! `try_*` calls, keeping at most `inflight_messages` publishes un-PUBACKed.

pub mod chunk;
mod delivery;
mod options;
pub mod presence;
pub mod response_topic;
pub mod side;
pub mod tls;
pub mod topics;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties, Packet, Publish};
use rumqttc::v5::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tracing::{debug, warn};

use crate::events::{Event, EventBus};
use crate::outbox::SharedOutbox;
pub use options::{Password, options_from_config};
pub use topics::Topics;

/// Connection and delivery settings (from `[mqtt]` in the config).
#[derive(Debug, Clone)]
pub struct UplinkOptions {
    pub station: String,
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, options::Password)>,
    /// TLS client configuration (CA, optional client certificate); None for plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub keep_alive: Duration,
    pub connect_timeout: Duration,
    pub max_packet_bytes: u32,
    /// Records published and not yet acknowledged by the case system, at most.
    pub window: usize,
    /// MQTT publishes handed to the connection and not yet PUBACKed, at most.
    pub inflight_messages: usize,
    pub chunk_bytes: usize,
    /// A connection that makes no progress for keep-alive + this long is dropped.
    pub flush_timeout: Duration,
    pub ack_timeout: Duration,
    pub reconnect_max: Duration,
    /// `[commands] response_topic_prefixes`: where else than this station's responses topic a
    /// command may ask for its response.
    pub response_topic_prefixes: Vec<String>,
    /// How the case system's answers are trusted (`[acks]`).
    pub answers: Arc<crate::receipts::Policy>,
}

impl UplinkOptions {
    /// Defaults for tests and tools: plain TCP to `127.0.0.1:port`, unsigned answers accepted.
    pub fn loopback(station: &str, port: u16) -> UplinkOptions {
        UplinkOptions {
            station: station.into(),
            client_id: format!("countersign-{station}"),
            host: "127.0.0.1".into(),
            port,
            credentials: None,
            tls: None,
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            max_packet_bytes: 1024 * 1024,
            window: 16,
            inflight_messages: 16,
            chunk_bytes: 64 * 1024,
            flush_timeout: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(60),
            reconnect_max: Duration::from_secs(30),
            response_topic_prefixes: Vec::new(),
            answers: Arc::new(crate::receipts::Policy::trusting_broker(station)),
        }
    }
}

/// What the poll task forwards to the delivery task.
#[derive(Debug)]
enum Link {
    Connected,
    Disconnected(String),
    Message(Publish),
    /// The broker took one of our QoS 1 publishes (flow control only: ids are reused).
    PubAck,
}

/// How many QoS 1 messages the broker may send the station before it has acked them (MQTT 5
/// Receive Maximum; rumqttc sends none, which means 65535). Anyone who can publish on the acks or
/// commands topic can send a burst: the broker holds what is beyond this, not the station.
const RECEIVE_MAXIMUM: u16 = 64;

fn mqtt_options(opts: &UplinkOptions, topics: &Topics) -> MqttOptions {
    let mut mqtt = MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
    let offline = presence::Presence::default().offline("connection lost");
    mqtt.set_keep_alive(opts.keep_alive)
        .set_connection_timeout(opts.connect_timeout.as_secs().max(1))
        .set_max_packet_size(Some(opts.max_packet_bytes))
        .set_outgoing_inflight_upper_limit(opts.inflight_messages.clamp(1, 65535) as u16)
        .set_clean_start(true)
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        // The case system's acks are acknowledged to the broker only after the outbox commit.
        .set_manual_acks(true)
        .set_last_will(LastWill::new(
            topics.status.clone(),
            offline,
            QoS::AtLeastOnce,
            true,
            Some(LastWillProperties {
                delay_interval: None,
                payload_format_indicator: None,
                message_expiry_interval: None,
                content_type: Some("application/json".into()),
                response_topic: None,
                correlation_data: None,
                user_properties: Vec::new(),
            }),
        ));
    // Acks and records are small: without TCP_NODELAY, Nagle's algorithm holds them back behind
    // unacknowledged segments (measured: records/s fell to a tenth on loopback).
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(opts.connect_timeout.as_secs().max(1));
    mqtt.set_network_options(network);
    if let Some((user, password)) = &opts.credentials {
        mqtt.set_credentials(user.clone(), password.expose());
    }
    if let Some(tls) = &opts.tls {
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    mqtt
}

/// Runs the uplink until `shutdown` turns true. `new_records` is notified after each commit;
/// `events` feeds the presence message (subscribe before devices start, so nothing is missed).
pub async fn run(
    opts: UplinkOptions,
    outbox: SharedOutbox,
    new_records: Arc<Notify>,
    events: EventBus,
    station_events: broadcast::Receiver<Event>,
    shutdown: watch::Receiver<bool>,
) {
    run_with(
        opts,
        outbox,
        new_records,
        events,
        station_events,
        None,
        shutdown,
    )
    .await
}

/// As [`run`], with the side channels: commands in, responses and live events out.
pub async fn run_with(
    opts: UplinkOptions,
    outbox: SharedOutbox,
    new_records: Arc<Notify>,
    events: EventBus,
    station_events: broadcast::Receiver<Event>,
    channels: Option<side::Channels>,
    mut shutdown: watch::Receiver<bool>,
) {
    let topics = Topics::for_station(&opts.station);
    // Room for the publish window, the acks of every message the broker may have outstanding
    // (RECEIVE_MAXIMUM), subscribe and presence: try_* never blocks, and acks that still find
    // it full wait in the delivery's queue (never dropped).
    let capacity = opts.inflight_messages + opts.window * 2 + RECEIVE_MAXIMUM as usize + 64;
    let (client, eventloop) = AsyncClient::new(mqtt_options(&opts, &topics), capacity);
    let (link_tx, link_rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll_loop(
        eventloop,
        link_tx,
        opts.reconnect_max,
        opts.keep_alive + opts.flush_timeout,
        shutdown.clone(),
    ));
    let mut delivery = delivery::Delivery::new(opts, topics, client, outbox, events, channels);
    delivery
        .run(link_rx, new_records, station_events, &mut shutdown)
        .await;
    // The poll task sends what the delivery task queued on its way out (offline, DISCONNECT).
    let _ = tokio::time::timeout(Duration::from_secs(4), poller).await;
}

/// Drives the MQTT connection. Never blocks on anything but the network; forwards events.
/// A poll that makes no progress for `stall` (a write that cannot get through) drops the
/// connection: rumqttc's v5 event loop bounds the connect but not later flushes.
async fn poll_loop(
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<Link>,
    reconnect_max: Duration,
    stall: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(250);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let polled = tokio::select! {
            _ = shutdown.changed() => {
                // Keep driving the connection briefly so the offline status and DISCONNECT
                // queued by the delivery task get out.
                let _ = tokio::time::timeout(Duration::from_secs(3), async {
                    loop {
                        match eventloop.poll().await {
                            Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                                let _ = tx.send(Link::PubAck);
                            }
                            Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                })
                .await;
                return;
            }
            polled = tokio::time::timeout(stall, eventloop.poll()) => polled,
        };
        let polled = match polled {
            Ok(polled) => polled,
            Err(_) => {
                eventloop.clean();
                let _ = tx.send(Link::Disconnected(format!(
                    "no progress on the connection for {stall:?}"
                )));
                continue;
            }
        };
        let link = match polled {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                backoff = FIRST_BACKOFF;
                Some(Link::Connected)
            }
            Ok(MqttEvent::Incoming(Packet::Publish(publish))) => Some(Link::Message(publish)),
            Ok(MqttEvent::Incoming(Packet::PubAck(puback))) => {
                // Packet ids are reused by rumqttc, so a PUBACK is flow control only; a failure
                // code just means the record stays unacked and is sent again later.
                if puback.reason as u8 >= 0x80 {
                    warn!(reason = ?puback.reason, "broker refused a publish");
                }
                Some(Link::PubAck)
            }
            Ok(MqttEvent::Incoming(Packet::Disconnect(d))) => {
                warn!(reason = ?d.reason_code, "broker sent DISCONNECT");
                None
            }
            Ok(_) => None,
            Err(e) => {
                let _ = tx.send(Link::Disconnected(e.to_string()));
                debug!(error = %e, ?backoff, "MQTT connection failed; retrying");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(jitter(backoff)) => {}
                }
                backoff = (backoff * 2).min(reconnect_max);
                None
            }
        };
        if let Some(link) = link
            && tx.send(link).is_err()
        {
            return;
        }
    }
}

/// 50–100 % of `base`, so that a room of counters does not reconnect in lockstep.
fn jitter(base: Duration) -> Duration {
    let mut bytes = [0u8; 2];
    let r = match getrandom::fill(&mut bytes) {
        Ok(()) => u16::from_le_bytes(bytes),
        Err(_) => u16::MAX / 2,
    };
    let fraction = 0.5 + 0.5 * (f64::from(r) / f64::from(u16::MAX));
    base.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(2));
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
                "{d:?}"
            );
        }
    }

    #[test]
    fn topics_are_per_station_and_parse_back() {
        let t = Topics::for_station("window-03");
        assert_eq!(t.records, "countersign/v1/window-03/records");
        assert_eq!(t.acks, "countersign/v1/window-03/acks");
        assert_eq!(t.status, "countersign/v1/window-03/status");
        assert_eq!(t.blob("b1"), "countersign/v1/window-03/blobs/b1");
        assert_eq!(topics::station_of(&t.records), Some("window-03"));
        assert_eq!(topics::station_of("other/v1/x/records"), None);
    }
}
