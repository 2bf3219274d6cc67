//! The uplink: delivers the outbox over MQTT 5 and applies the case system's acks.
//!
//! rumqttc keeps nothing on disk and silently drops un-acked publishes when it reconnects with a
//! clean session, and a PUBACK only means the broker took the message. So the outbox is the
//! truth: on every CONNACK we publish again everything not yet acknowledged by the case system,
//! in order, within a bounded window; a record leaves the outbox only on the case system's ack.
//!
//! Two tasks, so that nothing ever blocks the MQTT event loop: `poll_loop` only drives the
//! connection (with jittered backoff) and forwards what arrives; `Uplink::run` owns the delivery
//! state and talks to the client with non-blocking `try_*` calls.

pub mod ack;
pub mod topics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, warn};

use crate::events::{Event, EventBus, emit};
use crate::outbox::{self, SharedOutbox};
use ack::{Ack, AckStatus};
pub use topics::Topics;

/// Connection and delivery settings (from `[mqtt]` in the config).
#[derive(Debug, Clone)]
pub struct UplinkOptions {
    pub station: String,
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
    pub keep_alive: Duration,
    pub connect_timeout: Duration,
    pub max_packet_bytes: u32,
    /// Records published and not yet acknowledged by the case system, at most.
    pub window: usize,
    pub ack_timeout: Duration,
    pub reconnect_max: Duration,
}

/// What the poll task forwards to the delivery task.
#[derive(Debug)]
enum Link {
    Connected,
    Disconnected(String),
    Message(Publish),
}

/// Runs the uplink until `shutdown` turns true. `new_records` is notified after each commit.
pub async fn run(
    opts: UplinkOptions,
    outbox: SharedOutbox,
    new_records: Arc<Notify>,
    events: EventBus,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut mqtt = MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
    mqtt.set_keep_alive(opts.keep_alive)
        .set_connection_timeout(opts.connect_timeout.as_secs().max(1))
        .set_max_packet_size(Some(opts.max_packet_bytes))
        .set_clean_start(true)
        // The case system's acks are acknowledged to the broker only after the outbox commit.
        .set_manual_acks(true);
    if let Some((user, password)) = &opts.credentials {
        mqtt.set_credentials(user.clone(), password.clone());
    }
    // Room for one window of publishes plus acks and a subscribe; try_publish never blocks.
    let (client, eventloop) = AsyncClient::new(mqtt, opts.window * 2 + 16);
    let (link_tx, link_rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll_loop(
        eventloop,
        link_tx,
        opts.reconnect_max,
        shutdown.clone(),
    ));
    let mut uplink = Uplink {
        topics: Topics::for_station(&opts.station),
        opts,
        client,
        outbox,
        events,
        connected: false,
        in_flight: HashMap::new(),
    };
    uplink.deliver(link_rx, new_records, &mut shutdown).await;
    // Best effort: tell the broker we leave on purpose.
    let _ = uplink.client.try_disconnect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    poller.abort();
}

struct Uplink {
    opts: UplinkOptions,
    topics: Topics,
    client: AsyncClient,
    outbox: SharedOutbox,
    events: EventBus,
    connected: bool,
    /// Published and waiting for the case system's ack: record id → when it was published.
    in_flight: HashMap<String, Instant>,
}

impl Uplink {
    async fn deliver(
        &mut self,
        mut link_rx: mpsc::UnboundedReceiver<Link>,
        new_records: Arc<Notify>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                link = link_rx.recv() => match link {
                    Some(Link::Connected) => self.on_connected().await,
                    Some(Link::Disconnected(reason)) => self.on_disconnected(reason),
                    Some(Link::Message(publish)) => self.on_message(publish).await,
                    None => return,
                },
                _ = new_records.notified() => self.fill_window().await,
                _ = tick.tick() => self.expire_acks().await,
            }
        }
    }

    async fn on_connected(&mut self) {
        info!(broker = %format!("{}:{}", self.opts.host, self.opts.port), "uplink connected");
        self.connected = true;
        // A clean session lost whatever was in flight: everything unacked is published again.
        self.in_flight.clear();
        if let Err(e) = self
            .client
            .try_subscribe(self.topics.acks.clone(), QoS::AtLeastOnce)
        {
            warn!(error = %e, "cannot queue the acks subscription");
        }
        emit(&self.events, Event::UplinkConnected);
        self.fill_window().await;
    }

    fn on_disconnected(&mut self, reason: String) {
        if self.connected {
            warn!(%reason, "uplink disconnected; records stay in the outbox");
            emit(&self.events, Event::UplinkDisconnected { reason });
        }
        self.connected = false;
        self.in_flight.clear();
    }

    async fn on_message(&mut self, publish: Publish) {
        if publish.topic.as_ref() == self.topics.acks.as_bytes() {
            match Ack::parse(&publish.payload) {
                Ok(ack) => self.apply_ack(ack).await,
                Err(e) => warn!(error = %e, "ignoring a malformed ack"),
            }
        } else {
            debug!(topic = %String::from_utf8_lossy(&publish.topic), "ignoring a message");
        }
        // Only now, with the outbox committed, does the broker learn we have the ack.
        if let Err(e) = self.client.try_ack(&publish) {
            warn!(error = %e, "cannot queue the MQTT ack");
        }
    }

    async fn apply_ack(&mut self, ack: Ack) {
        let id = ack.record_id.clone();
        let result = match ack.status {
            AckStatus::Stored => {
                let id = id.clone();
                outbox::run(&self.outbox, move |o| o.acknowledge(&id)).await
            }
            AckStatus::Rejected => {
                let id = id.clone();
                let reason = ack
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                outbox::run(&self.outbox, move |o| o.reject(&id, &reason)).await
            }
        };
        self.in_flight.remove(&id);
        match (result, ack.status) {
            (Ok(true), AckStatus::Stored) => {
                info!(record_id = %id, "record delivered and acknowledged");
                emit(&self.events, Event::RecordDelivered { record_id: id });
            }
            (Ok(true), AckStatus::Rejected) => {
                let reason = ack.reason.unwrap_or_default();
                warn!(record_id = %id, %reason, "case system rejected the record; kept in dead letters");
                emit(
                    &self.events,
                    Event::RecordRejected {
                        record_id: id,
                        reason,
                    },
                );
            }
            (Ok(false), _) => debug!(record_id = %id, "ack for a record no longer in the outbox"),
            (Err(e), _) => {
                warn!(record_id = %id, error = %e, "cannot apply the ack; the record will be sent again")
            }
        }
        self.fill_window().await;
    }

    /// Publishes the oldest unacknowledged records until the window is full.
    async fn fill_window(&mut self) {
        if !self.connected || self.in_flight.len() >= self.opts.window {
            return;
        }
        let window = self.opts.window;
        let pending = match outbox::run(&self.outbox, move |o| o.oldest(window)).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                return;
            }
        };
        for record in pending {
            if self.in_flight.len() >= window {
                break;
            }
            if self.in_flight.contains_key(&record.record_id) {
                continue;
            }
            // Blobs first, so the case system holds them when the record (which binds them by
            // hash) arrives. Interim: one message per blob; chunking comes with the uplink work.
            let id = record.record_id.clone();
            let blobs = match outbox::run(&self.outbox, move |o| o.blobs(&id)).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "cannot read a record's blobs");
                    break;
                }
            };
            let mut queued = Ok(());
            for (blob_id, wire) in blobs {
                let properties = PublishProperties {
                    content_type: Some("application/octet-stream".into()),
                    user_properties: vec![
                        ("record_id".into(), record.record_id.clone()),
                        ("blob_id".into(), blob_id.clone()),
                    ],
                    ..Default::default()
                };
                queued = self.client.try_publish_with_properties(
                    self.topics.blob(&blob_id),
                    QoS::AtLeastOnce,
                    false,
                    wire,
                    properties,
                );
                if queued.is_err() {
                    break;
                }
            }
            let properties = PublishProperties {
                content_type: Some("application/jose".into()),
                response_topic: Some(self.topics.acks.clone()),
                correlation_data: Some(record.record_id.clone().into_bytes().into()),
                user_properties: vec![
                    ("record_id".into(), record.record_id.clone()),
                    ("seq".into(), record.seq.to_string()),
                ],
                ..Default::default()
            };
            let sent = match queued {
                Ok(()) => self.client.try_publish_with_properties(
                    self.topics.records.clone(),
                    QoS::AtLeastOnce,
                    false,
                    record.wire,
                    properties,
                ),
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => {
                    debug!(record_id = %record.record_id, seq = record.seq, "record published");
                    self.in_flight
                        .insert(record.record_id.clone(), Instant::now());
                    let id = record.record_id;
                    if let Err(e) = outbox::run(&self.outbox, move |o| o.mark_attempt(&id)).await {
                        warn!(error = %e, "cannot note the delivery attempt");
                    }
                }
                // The request queue is full: the next tick tries again.
                Err(e) => {
                    debug!(error = %e, "publish queue full; retrying shortly");
                    break;
                }
            }
        }
    }

    /// Records without an ack in time are taken out of the window and published again.
    async fn expire_acks(&mut self) {
        let timeout = self.opts.ack_timeout;
        let before = self.in_flight.len();
        self.in_flight.retain(|_, sent| sent.elapsed() < timeout);
        if self.in_flight.len() < before {
            info!(
                count = before - self.in_flight.len(),
                "no ack in time; publishing again"
            );
        }
        self.fill_window().await;
    }
}

/// Drives the MQTT connection. Never blocks on anything but the network; forwards events.
async fn poll_loop(
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<Link>,
    reconnect_max: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(250);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let polled = tokio::select! {
            _ = shutdown.changed() => return,
            polled = eventloop.poll() => polled,
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
                None
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
        assert_eq!(topics::station_of(&t.records), Some("window-03"));
        assert_eq!(topics::station_of("other/v1/x/records"), None);
    }
}
