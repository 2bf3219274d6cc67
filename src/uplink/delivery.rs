//! The delivery task: the window of records in flight, chunked blob transfer, the case system's
//! answers, presence. It owns all delivery state; the poll task only forwards [`Link`] events.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::chunk::BlobCursor;
use super::presence::{OutboxStatus, Presence};
use super::response_topic::ResponseTopics;
use super::side::{self, Channels, InboundCommand, Outbound};
use super::{Link, Topics, UplinkOptions};
use crate::events::{Event, EventBus, emit};
use crate::logging::RateLimitedLog;
use crate::outbox::{self, Answered, Settle, Settled, SharedOutbox};
use crate::receipts::{Answer, Outcome, Refusal};

/// A record in the window.
struct InFlight {
    record_id: String,
    seq: u64,
    wire: Vec<u8>,
    all_blobs: Vec<String>,
    /// Blobs not yet (re)sent in this attempt.
    to_send: VecDeque<String>,
    /// When the record message itself went out; None while its blobs are being sent.
    published: Option<Instant>,
}

impl InFlight {
    fn restart(&mut self) {
        self.to_send = self.all_blobs.iter().cloned().collect();
        self.published = None;
    }
}

pub(super) struct Delivery {
    opts: UplinkOptions,
    topics: Topics,
    client: AsyncClient,
    outbox: SharedOutbox,
    events: EventBus,
    connected: bool,
    window: VecDeque<InFlight>,
    /// The blob being sent (it belongs to the first unpublished record of the window).
    cursor: Option<BlobCursor>,
    /// Our QoS 1 publishes not yet PUBACKed on this connection.
    outstanding: usize,
    /// The outbox may hold records not in the window.
    maybe_more: bool,
    /// Progress reports not yet written to the outbox (blob id → next offset, the blob hash
    /// the report is bound to).
    progress: HashMap<String, (u64, Option<String>)>,
    /// Records published since the attempt counters were last written.
    attempts: Vec<String>,
    presence: Presence,
    presence_dirty: bool,
    /// The next blob, being read in the background.
    prefetch: Option<(String, JoinHandle<Loaded>)>,
    /// Commands in, responses and events out (None: records only).
    commands: Option<mpsc::Sender<InboundCommand>>,
    outbound: Option<mpsc::UnboundedReceiver<Outbound>>,
    /// Where responses may go (never where an unchecked response topic says).
    response_topics: ResponseTopics,
    /// Commands dropped because the station's queue was full, for a rate-limited log line.
    busy_drops: RateLimitedLog,
    /// Answers refused (forged, unsigned, replayed...), for a rate-limited log line.
    refused_answers: RateLimitedLog,
    /// MQTT acks of received messages (sent after their outbox commit) that the client's request
    /// channel had no room for yet. Never dropped while the connection lasts: a message the
    /// broker never sees acknowledged holds one of its in-flight slots for this connection for
    /// good, and enough of them stall delivery to the station (acks, commands) until a reconnect.
    pending_acks: VecDeque<Publish>,
    /// Pending acks that had to wait, for a rate-limited log line.
    acks_waiting: RateLimitedLog,
    /// Bursts of received messages whose answers are being checked, in the order they came.
    checking: VecDeque<JoinHandle<Checked>>,
    /// Counts connections: acks belong to the connection their message came on.
    generation: u64,
}

/// A burst of received messages and the check of each answer among them.
struct Checked {
    generation: u64,
    batch: Vec<Publish>,
    results: Vec<Result<Answer, Refusal>>,
}

#[cfg(test)]
mod props;

type Loaded = Result<Option<BlobCursor>, outbox::OutboxError>;

/// Reads a blob and the case system's progress on it, and prepares its cursor (blocking).
fn read_cursor(outbox: &SharedOutbox, record_id: String, blob_id: String, chunk: usize) -> Loaded {
    let found = {
        let guard = outbox.lock().unwrap_or_else(|p| p.into_inner());
        guard.blob_for_sending(&blob_id)?
    };
    Ok(found.map(|b| BlobCursor::new(record_id, blob_id, b.wire, b.resume_at, b.sha256, chunk)))
}

impl Delivery {
    pub(super) fn new(
        opts: UplinkOptions,
        topics: Topics,
        client: AsyncClient,
        outbox: SharedOutbox,
        events: EventBus,
        channels: Option<Channels>,
    ) -> Delivery {
        let (commands, outbound) = match channels {
            Some(c) => (Some(c.commands), Some(c.outbound)),
            None => (None, None),
        };
        Delivery {
            response_topics: ResponseTopics::new(&topics, &opts.response_topic_prefixes),
            busy_drops: RateLimitedLog::default(),
            refused_answers: RateLimitedLog::default(),
            pending_acks: VecDeque::new(),
            acks_waiting: RateLimitedLog::default(),
            checking: VecDeque::new(),
            generation: 0,
            commands,
            outbound,
            opts,
            topics,
            client,
            outbox,
            events,
            connected: false,
            window: VecDeque::new(),
            cursor: None,
            outstanding: 0,
            maybe_more: true,
            progress: HashMap::new(),
            attempts: Vec::new(),
            presence: Presence::default(),
            presence_dirty: true,
            prefetch: None,
        }
    }

    pub(super) async fn run(
        &mut self,
        mut link_rx: mpsc::UnboundedReceiver<Link>,
        new_records: Arc<Notify>,
        mut station_events: broadcast::Receiver<Event>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listening = true;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                link = link_rx.recv() => match link {
                    Some(Link::Connected) => self.on_connected().await,
                    Some(Link::Disconnected(reason)) => self.on_disconnected(reason),
                    Some(Link::PubAck) => {
                        self.outstanding = self.outstanding.saturating_sub(1);
                        self.flush_acks();
                        self.pump().await;
                    }
                    Some(Link::Message(first)) => {
                        // Take the burst that is already there: one outbox transaction for all.
                        let mut batch = vec![first];
                        while batch.len() < 256 {
                            match link_rx.try_recv() {
                                Ok(Link::Message(p)) => batch.push(p),
                                Ok(Link::PubAck) => {
                                    self.outstanding = self.outstanding.saturating_sub(1)
                                }
                                Ok(other) => {
                                    self.check_beside(std::mem::take(&mut batch));
                                    match other {
                                        Link::Connected => self.on_connected().await,
                                        Link::Disconnected(r) => self.on_disconnected(r),
                                        _ => {}
                                    }
                                }
                                Err(_) => break,
                            }
                        }
                        if !batch.is_empty() {
                            self.check_beside(batch);
                        }
                    }
                    None => return,
                },
                checked = next_checked(&mut self.checking), if !self.checking.is_empty() => {
                    self.checking.pop_front();
                    match checked {
                        Ok(checked) => self.on_checked(checked).await,
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    }
                }
                _ = new_records.notified() => {
                    self.maybe_more = true;
                    self.presence_dirty = true;
                    self.pump().await;
                }
                out = recv_outbound(&mut self.outbound) => match out {
                    Some(out) => self.send_response(out),
                    None => self.outbound = None,
                },
                event = station_events.recv(), if listening => match event {
                    Ok(event) => {
                        if self.presence.apply(&event) {
                            self.presence_dirty = true;
                        }
                        if self.commands.is_some()
                            && let Some(feed) = side::feed(&event)
                        {
                            self.send_outbound(Outbound {
                                topic: Some(self.topics.events.clone()),
                                payload: serde_json::to_vec(&feed).unwrap_or_default(),
                                correlation: None,
                                expiry_secs: 300,
                            });
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => listening = false,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        // Answers already received are applied before the end: else the case system would
        // have to answer them again after the restart.
        while let Some(handle) = self.checking.pop_front() {
            if let Ok(checked) = handle.await {
                self.on_checked(checked).await;
            }
        }
        self.save_progress().await;
        self.save_attempts().await;
        if self.connected {
            // A clean DISCONNECT discards the Will: say offline ourselves, first.
            let offline = self.presence.offline("shutdown");
            let _ = self.publish_status(offline);
            let _ = self.client.try_disconnect();
            info!("uplink stopped; status offline published");
        }
    }

    async fn on_connected(&mut self) {
        info!(broker = %format!("{}:{}", self.opts.host, self.opts.port), "uplink connected");
        self.connected = true;
        self.generation += 1;
        self.outstanding = 0;
        // Acks owed to the last connection mean nothing to this one (clean start).
        self.pending_acks.clear();
        // A clean session lost whatever was in flight: everything unacked is sent again, blobs
        // from where the case system said it got to.
        self.cursor = None;
        self.prefetch = None;
        self.save_progress().await;
        for record in &mut self.window {
            record.restart();
        }
        self.maybe_more = true;
        if let Err(e) = self
            .client
            .try_subscribe(self.topics.acks.clone(), QoS::AtLeastOnce)
        {
            warn!(error = %e, "cannot queue the acks subscription");
        }
        if self.commands.is_some()
            && let Err(e) = self
                .client
                .try_subscribe(self.topics.commands.clone(), QoS::AtLeastOnce)
        {
            warn!(error = %e, "cannot queue the commands subscription");
        }
        emit(&self.events, Event::UplinkConnected);
        self.presence_dirty = true;
        self.refresh_presence().await;
        self.pump().await;
    }

    fn on_disconnected(&mut self, reason: String) {
        if self.connected {
            warn!(%reason, "uplink disconnected; records stay in the outbox");
            emit(&self.events, Event::UplinkDisconnected { reason });
        }
        self.connected = false;
    }

    async fn on_tick(&mut self) {
        self.flush_acks();
        self.save_progress().await;
        self.save_attempts().await;
        let timeout = self.opts.ack_timeout;
        let mut expired = 0;
        for record in &mut self.window {
            if record.published.is_some_and(|at| at.elapsed() >= timeout) {
                record.restart();
                expired += 1;
            }
        }
        if expired > 0 {
            info!(count = expired, "no ack in time; publishing again");
        }
        if self.presence_dirty {
            self.refresh_presence().await;
        }
        self.maybe_more = true;
        self.pump().await;
    }

    /// A burst of messages, checked and applied before the next (the props test's path; `run`
    /// checks bursts beside the loop, see [`Delivery::check_beside`]).
    #[cfg(test)]
    async fn on_messages(&mut self, batch: Vec<Publish>) {
        let checked = self.check_now(batch);
        self.on_checked(checked).await;
    }

    /// Forwards the burst's commands and checks its answers here and now.
    #[cfg(test)]
    fn check_now(&mut self, batch: Vec<Publish>) -> Checked {
        let answers = self.forward_commands(&batch);
        let now = crate::commands::now_secs();
        let results = answers
            .iter()
            .map(|&i| self.opts.answers.check(&batch[i].payload, now))
            .collect();
        Checked {
            generation: self.generation,
            batch,
            results,
        }
    }

    /// Forwards the burst's commands and starts checking its answers on a blocking thread
    /// (signatures cost 0.1-0.4 ms each), so the loop goes on sending while they are checked.
    /// Bursts are applied in the order they came ([`Delivery::next_checked`]): the broker must
    /// get its acks in that order.
    fn check_beside(&mut self, batch: Vec<Publish>) {
        let answers = self.forward_commands(&batch);
        let policy = self.opts.answers.clone();
        let generation = self.generation;
        self.checking
            .push_back(tokio::task::spawn_blocking(move || {
                let now = crate::commands::now_secs();
                let results = answers
                    .iter()
                    .map(|&i| policy.check(&batch[i].payload, now))
                    .collect();
                Checked {
                    generation,
                    batch,
                    results,
                }
            }));
    }

    /// Forwards the commands of a burst to the station; returns the positions of its answers.
    fn forward_commands(&mut self, batch: &[Publish]) -> Vec<usize> {
        let mut answers = Vec::new();
        for (i, publish) in batch.iter().enumerate() {
            if publish.topic.as_ref() == self.topics.commands.as_bytes() {
                self.forward_command(publish);
            } else if publish.topic.as_ref() == self.topics.acks.as_bytes() {
                answers.push(i);
            } else {
                debug!(topic = %String::from_utf8_lossy(&publish.topic), "ignoring a message");
            }
        }
        answers
    }

    /// Applies a checked burst: refusals counted, progress noted, outcomes committed; then, and
    /// only then, the broker gets the burst's acks.
    async fn on_checked(&mut self, checked: Checked) {
        let Checked {
            generation,
            batch,
            results,
        } = checked;
        let mut answers = Vec::new();
        for result in results {
            match result {
                Ok(Answer {
                    outcome:
                        Outcome::Progress {
                            blob_id,
                            next_offset,
                        },
                    bound_to,
                    ..
                }) => {
                    self.progress.insert(blob_id, (next_offset, bound_to));
                }
                Ok(answer) => answers.push(answer),
                Err(refusal) => self.refuse_answer(&refusal),
            }
        }
        if !answers.is_empty() {
            self.apply_answers(answers).await;
        }
        // Only now, with the outbox committed, does the broker learn we have the acks (unless
        // they came on a connection that is gone: the new one owes nothing for them).
        if generation == self.generation {
            self.pending_acks.extend(batch);
            self.flush_acks();
        }
        self.pump().await;
    }

    /// Hands pending MQTT acks to the client, oldest first, as far as its request channel has
    /// room; the rest wait for the next PUBACK, message or tick (the event loop empties the
    /// channel as it writes to the socket).
    fn flush_acks(&mut self) {
        while let Some(publish) = self.pending_acks.front() {
            match self.client.try_ack(publish) {
                Ok(()) => {
                    self.pending_acks.pop_front();
                }
                // The client says the same for a full channel and a closed one; while connected,
                // the poll task is there and empties it.
                Err(_) if self.connected => {
                    if let Some(suppressed) = self.acks_waiting.allow() {
                        debug!(
                            waiting = self.pending_acks.len(),
                            suppressed, "the MQTT client's queue is full; acks wait their turn"
                        );
                    }
                    return;
                }
                Err(_) => {
                    // Disconnected: the next connection starts clean and owes nothing.
                    self.pending_acks.clear();
                    return;
                }
            }
        }
    }

    /// Hands a command to the station. When the station's queue is full the command is dropped
    /// with a rate-limited log line, not answered: it is not verified yet, and a flood of them
    /// must not turn into publishes that take records' QoS 1 slots (the case system times out
    /// and asks again).
    fn forward_command(&mut self, publish: &Publish) {
        let Some(commands) = &self.commands else {
            return;
        };
        let properties = publish.properties.as_ref();
        let command = InboundCommand {
            payload: publish.payload.to_vec(),
            response_topic: properties.and_then(|p| p.response_topic.clone()),
            correlation: properties.and_then(|p| p.correlation_data.clone()),
        };
        if commands.try_send(command).is_err()
            && let Some(held_back) = self.busy_drops.allow()
        {
            warn!(
                held_back,
                "a command arrived while the station's command queue was full; dropped unanswered"
            );
        }
    }

    /// Publishes a command's response on the topic it may go to (see `response_topic`).
    fn send_response(&mut self, mut out: Outbound) {
        out.topic = Some(self.response_topics.choose(out.topic.as_deref()));
        self.send_outbound(out);
    }

    /// Publishes a response or event now, or drops it when the link is down (not durable).
    fn send_outbound(&mut self, out: Outbound) {
        if !self.connected {
            debug!("link down: response or event dropped");
            return;
        }
        let topic = out
            .topic
            .clone()
            .unwrap_or_else(|| self.topics.responses.clone());
        match self.client.try_publish_with_properties(
            topic,
            Outbound::QOS,
            false,
            out.payload.clone(),
            out.properties(),
        ) {
            // Its PUBACK comes back like a record's: count it so the window stays exact.
            Ok(()) => self.outstanding += 1,
            Err(e) => warn!(error = %e, "cannot queue a response or event"),
        }
    }

    /// Counts and logs (at most once a minute) an answer that changes nothing: forged,
    /// unsigned when that is not allowed, for another station or record, stale, malformed.
    fn refuse_answer(&mut self, refusal: &Refusal) {
        emit(
            &self.events,
            Event::AnswerRefused {
                reason: refusal.code,
            },
        );
        if let Some(suppressed) = self.refused_answers.allow() {
            warn!(
                reason = refusal.code,
                detail = %refusal.detail,
                suppressed,
                "an answer on the acks topic was refused; the outbox is unchanged"
            );
        }
    }

    async fn apply_answers(&mut self, answers: Vec<Answer>) {
        let checked: Vec<Answered> = answers
            .iter()
            .map(|a| Answered {
                settle: match &a.outcome {
                    Outcome::Rejected { reason } => {
                        Settle::Rejected(a.record_id.clone(), reason.clone())
                    }
                    _ => Settle::Stored(a.record_id.clone()),
                },
                record_sha256: a.bound_to.clone(),
                receipt: a.signed.as_ref().map(|s| outbox::Receipt {
                    kid: s.kid.clone(),
                    alg: s.alg.clone(),
                    iat: s.iat,
                    jws: s.jws.clone(),
                }),
            })
            .collect();
        let result = outbox::run(&self.outbox, move |o| o.settle_checked(&checked)).await;
        let settled = match result {
            Ok(settled) => settled,
            Err(e) => {
                warn!(error = %e, "cannot apply acks; the records will be sent again");
                return;
            }
        };
        for (answer, settled) in answers.into_iter().zip(settled) {
            let id = answer.record_id;
            if settled == Settled::WrongHash {
                // The record stays where it is, in the window and in the outbox.
                self.refuse_answer(&Refusal {
                    code: "wrong_hash",
                    detail: format!(
                        "a {} answer names a pending record but not its bytes",
                        answer.outcome.status()
                    ),
                });
                continue;
            }
            self.window.retain(|r| r.record_id != id);
            if self.cursor.as_ref().is_some_and(|c| c.record_id == id) {
                self.cursor = None;
            }
            self.maybe_more = true;
            self.presence_dirty = true;
            match (settled, answer.outcome) {
                (Settled::Applied, Outcome::Rejected { reason }) => {
                    warn!(record_id = %id, %reason, "case system rejected the record; kept in dead letters");
                    emit(
                        &self.events,
                        Event::RecordRejected {
                            record_id: id,
                            reason,
                        },
                    );
                }
                (Settled::Applied, _) => {
                    info!(record_id = %id, "record delivered and acknowledged");
                    emit(&self.events, Event::RecordDelivered { record_id: id });
                }
                _ => debug!(record_id = %id, "ack for a record no longer in the outbox"),
            }
        }
    }

    /// Hands chunks and records to the connection while the in-flight budget allows.
    async fn pump(&mut self) {
        while self.connected && self.outstanding < self.opts.inflight_messages {
            let Some(idx) = self.window.iter().position(|r| r.published.is_none()) else {
                if self.window.len() < self.opts.window && self.maybe_more && self.refill().await {
                    continue;
                }
                return;
            };
            let record_id = self.window[idx].record_id.clone();
            if self
                .cursor
                .as_ref()
                .is_none_or(|c| c.record_id != record_id)
            {
                self.put_back_cursor();
                let Some(blob_id) = self.window[idx].to_send.pop_front() else {
                    if !self.publish_record(idx) {
                        return;
                    }
                    continue;
                };
                if !self.load_cursor(record_id, blob_id).await {
                    return;
                }
                continue;
            }
            let Some(cursor) = self.cursor.as_mut() else {
                continue;
            };
            let Some(chunk) = cursor.peek(self.opts.chunk_bytes) else {
                self.cursor = None;
                continue;
            };
            let topic = self.topics.blob(&cursor.blob_id);
            let end = chunk.end;
            match self.client.try_publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                false,
                chunk.payload,
                chunk.properties,
            ) {
                Ok(()) => {
                    self.outstanding += 1;
                    cursor.commit_to(end);
                    if cursor.done() {
                        // The record's next blob, or the record itself, comes next round.
                        self.cursor = None;
                    }
                }
                Err(e) => {
                    debug!(error = %e, "publish queue full; retrying shortly");
                    return;
                }
            }
        }
    }

    /// Drops the cursor of a blob sent only in part (an ack timeout restarted an earlier record,
    /// which goes first now) and puts the blob back at the front of its record's list: its record
    /// must not go out before the whole blob did.
    fn put_back_cursor(&mut self) {
        let Some(cursor) = self.cursor.take() else {
            return;
        };
        if cursor.done() {
            return;
        }
        if let Some(record) = self
            .window
            .iter_mut()
            .find(|r| r.record_id == cursor.record_id && r.published.is_none())
        {
            record.to_send.push_front(cursor.blob_id);
        }
    }

    /// Makes the cursor for a blob: from the prefetch when it is that blob, else read now.
    /// False on an outbox error.
    async fn load_cursor(&mut self, record_id: String, blob_id: String) -> bool {
        let prefetched = match self.prefetch.take() {
            Some((id, task)) if id == blob_id => task.await.ok(),
            _ => None,
        };
        let loaded = match prefetched {
            Some(loaded) => loaded,
            None => {
                self.save_progress().await;
                let (outbox, chunk) = (self.outbox.clone(), self.opts.chunk_bytes);
                let (r, b) = (record_id.clone(), blob_id.clone());
                tokio::task::spawn_blocking(move || read_cursor(&outbox, r, b, chunk))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            }
        };
        let ok = match loaded {
            Ok(Some(cursor)) => {
                if cursor.resumed_at() > 0 {
                    info!(%blob_id, resume_at = cursor.resumed_at(), size = cursor.size(), "resuming a blob transfer where the case system got to");
                }
                self.cursor = Some(cursor);
                true
            }
            Ok(None) => {
                warn!(%blob_id, "a blob named by a pending record is missing from the outbox");
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot read a blob from the outbox");
                false
            }
        };
        self.start_prefetch();
        ok
    }

    /// Reads the blob that comes after the current one in the background (hashes included), so
    /// the connection does not idle between blobs.
    fn start_prefetch(&mut self) {
        if self.prefetch.is_some() {
            return;
        }
        let mut next = None;
        for record in self.window.iter().filter(|r| r.published.is_none()) {
            if let Some(blob_id) = record.to_send.front() {
                next = Some((record.record_id.clone(), blob_id.clone()));
                break;
            }
        }
        let Some((record_id, blob_id)) = next else {
            return;
        };
        let (outbox, chunk) = (self.outbox.clone(), self.opts.chunk_bytes);
        let id = blob_id.clone();
        let task = tokio::task::spawn_blocking(move || read_cursor(&outbox, record_id, id, chunk));
        self.prefetch = Some((blob_id, task));
    }

    /// Publishes the record message once its blobs went out. False when the queue is full.
    fn publish_record(&mut self, idx: usize) -> bool {
        let record = &mut self.window[idx];
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
        match self.client.try_publish_with_properties(
            self.topics.records.clone(),
            QoS::AtLeastOnce,
            false,
            record.wire.clone(),
            properties,
        ) {
            Ok(()) => {
                debug!(record_id = %record.record_id, seq = record.seq, "record published");
                record.published = Some(Instant::now());
                self.attempts.push(record.record_id.clone());
                self.outstanding += 1;
                true
            }
            Err(e) => {
                debug!(error = %e, "publish queue full; retrying shortly");
                false
            }
        }
    }

    /// Adds the oldest pending records not yet in the window. True when it added any.
    async fn refill(&mut self) -> bool {
        let want = self.opts.window;
        let in_window: Vec<String> = self.window.iter().map(|r| r.record_id.clone()).collect();
        let loaded = outbox::run(&self.outbox, move |o| {
            let mut out = Vec::new();
            for p in o.oldest(want)? {
                if in_window.contains(&p.record_id) {
                    continue;
                }
                let blobs = o.blob_ids(&p.record_id)?;
                out.push((p, blobs));
            }
            Ok::<_, outbox::OutboxError>(out)
        })
        .await;
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                return false;
            }
        };
        let mut added = false;
        for (p, blobs) in loaded {
            if self.window.len() >= self.opts.window {
                break;
            }
            self.window.push_back(InFlight {
                record_id: p.record_id,
                seq: p.seq,
                wire: p.wire,
                to_send: blobs.iter().cloned().collect(),
                all_blobs: blobs,
                published: None,
            });
            added = true;
        }
        if !added {
            self.maybe_more = false;
        }
        added
    }

    async fn save_progress(&mut self) {
        if self.progress.is_empty() {
            return;
        }
        let reports: Vec<(String, u64, Option<String>)> = self
            .progress
            .drain()
            .map(|(blob, (offset, bound))| (blob, offset, bound))
            .collect();
        match outbox::run(&self.outbox, move |o| o.set_progress_checked(&reports)).await {
            Ok(done) => {
                for _ in 0..done.wrong_hash {
                    self.refuse_answer(&Refusal {
                        code: "wrong_hash",
                        detail: "a progress report names a pending blob but not its bytes".into(),
                    });
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot store blob progress; those chunks may be sent again")
            }
        }
    }

    async fn save_attempts(&mut self) {
        if self.attempts.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.attempts);
        if let Err(e) = outbox::run(&self.outbox, move |o| o.mark_attempts(&ids)).await {
            warn!(error = %e, "cannot note delivery attempts");
        }
    }

    async fn refresh_presence(&mut self) {
        if !self.connected {
            return;
        }
        match outbox::run(&self.outbox, |o| o.stats()).await {
            Ok(stats) => self.presence.outbox = Some(OutboxStatus::from(&stats)),
            Err(e) => warn!(error = %e, "cannot read outbox statistics for the status"),
        }
        let online = self.presence.online();
        if self.publish_status(online) {
            self.presence_dirty = false;
        }
    }

    fn publish_status(&mut self, payload: Vec<u8>) -> bool {
        let properties = PublishProperties {
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        match self.client.try_publish_with_properties(
            self.topics.status.clone(),
            QoS::AtLeastOnce,
            true,
            payload,
            properties,
        ) {
            Ok(()) => {
                self.outstanding += 1;
                true
            }
            Err(e) => {
                debug!(error = %e, "cannot queue the status");
                false
            }
        }
    }
}

/// The oldest burst's check, when it is done (awaited in place: it stays first until then).
async fn next_checked(
    checking: &mut VecDeque<JoinHandle<Checked>>,
) -> Result<Checked, tokio::task::JoinError> {
    match checking.front_mut() {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// The next outbound message, or never when there is no outbound channel.
async fn recv_outbound(rx: &mut Option<mpsc::UnboundedReceiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
