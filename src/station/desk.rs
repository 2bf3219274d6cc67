//! The desk: the counter's case workflow. Captures go into the open session (or become records
//! of their own when none is open and the config says so); commands from the case system (MQTT)
//! and from the clerk (the local control socket) open, fill, close and cancel sessions; idle
//! sessions time out. Every command gets exactly one response.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::logging::RateLimitedLog;
use tracing::{info, warn};

use super::Sealer;
use super::jobs::{self, JobDone, MqttReply, NotTaken, Outcome, Pending, Reply};
use crate::commands::{self, CommandKind, Rejection, Response, Verifier};
use crate::config::{Config, OutsideSession, TimeoutAction};
use crate::devices::{Capture, Intake, IntakeOutcome};
use crate::events::{Event, emit};
use crate::outbox;
use crate::session::store::DataKey;
use crate::session::{self, OpenSession, OpenedBy, SessionMeta};
use crate::uplink::side::{InboundCommand, Outbound};

/// A request from the local control socket, answered on `reply`.
pub struct LocalRequest {
    pub command: String,
    pub args: Value,
    pub reply: oneshot::Sender<Response>,
}

// The capture sources' request type lives with the devices (which must not import the station).
pub use crate::devices::{CaptureHandle, CaptureRequest};

pub(super) struct Desk {
    sealer: Sealer,
    location: Option<String>,
    key: Arc<DataKey>,
    auto_open: bool,
    outside: OutsideSession,
    timeout: std::time::Duration,
    timeout_action: TimeoutAction,
    verifier: Option<Verifier>,
    outbound: mpsc::UnboundedSender<Outbound>,
    sources: BTreeMap<String, CaptureHandle>,
    pcsc_readers: Vec<String>,
    /// Trust anchors for passive authentication of documents read on command.
    csca: Option<Arc<icao9303::pa::CscaStore>>,
    /// Where Active Authentication's challenges of documents read on command are bound.
    chain: crate::devices::pcsc::ChainHead,
    pub(super) session: Option<OpenSession>,
    /// Commands refused, by reason (status and metrics).
    pub(super) rejected: BTreeMap<&'static str, u64>,
    /// Refusals of unauthenticated, stale or replayed commands: logged, never answered.
    gate_log: RateLimitedLog,
    /// Device jobs report back here (see [`super::jobs`]).
    jobs: mpsc::UnboundedSender<JobDone>,
    /// Jobs started and not yet back.
    jobs_in_flight: usize,
    /// PC/SC readers with a read under way (one read per reader at a time).
    reading: std::collections::BTreeSet<String>,
}

impl Desk {
    pub(super) fn new(
        config: &Config,
        sealer: Sealer,
        key: Arc<DataKey>,
        verifier: Option<Verifier>,
        outbound: mpsc::UnboundedSender<Outbound>,
        sources: BTreeMap<String, CaptureHandle>,
        jobs: mpsc::UnboundedSender<JobDone>,
    ) -> Desk {
        Desk {
            sealer,
            location: config.station.location.clone(),
            key,
            auto_open: config.session.auto_open,
            outside: config.session.outside_session,
            timeout: config.session.timeout_secs.secs(),
            timeout_action: config.session.timeout_action,
            verifier,
            outbound,
            sources,
            pcsc_readers: config
                .pcsc
                .as_ref()
                .map(|p| p.readers.keys().map(|k| k.to_string()).collect())
                .unwrap_or_default(),
            chain: crate::devices::pcsc::ChainHead {
                station: config.station.id.to_string(),
                outbox: Some(config.station.outbox_path()),
            },
            csca: match config
                .pcsc
                .as_ref()
                .map(|p| crate::devices::pcsc::load_csca(&p.csca_files))
            {
                Some(Ok(store)) => store.map(Arc::new),
                Some(Err(e)) => {
                    warn!(error = %e, "cannot load pcsc.csca_files; passive authentication chains will be unknown");
                    None
                }
                None => None,
            },
            session: None,
            rejected: BTreeMap::new(),
            gate_log: RateLimitedLog::new(10, std::time::Duration::from_secs(60)),
            jobs,
            jobs_in_flight: 0,
            reading: Default::default(),
        }
    }

    /// Picks up a session left open by the previous run.
    pub(super) async fn resume(&mut self) {
        let key = self.key.clone();
        match outbox::run(&self.sealer.outbox, move |o| session::resume(o, &key)).await {
            Ok(Some(s)) => {
                info!(session_id = %s.id, identities = s.identities, pages = s.pages, "session resumed");
                self.session = Some(s);
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot resume the open session; it stays stored"),
        }
    }

    /// A capture from a device. Returns true when a record was committed (checkpoint counting).
    pub(super) async fn on_capture(&mut self, capture: Capture, intake: Option<Intake>) -> bool {
        if self.session.is_none() && self.auto_open && capture.identity.is_some() {
            let meta = SessionMeta {
                case_ref: None,
                operator: None,
                purpose: Some("auto".into()),
                opened_by: OpenedBy::Auto,
            };
            if let Err(r) = self.open(meta).await {
                warn!(reason = %r.detail, "cannot open a session automatically");
            }
        }
        let Some(open) = self.session.clone() else {
            let announce = page_events(&capture, 0);
            return match (self.outside, intake) {
                (OutsideSession::Record, Some(intake)) => {
                    let committed = self.sealer.commit_intake(capture, intake).await;
                    self.emit_all(committed, announce);
                    committed
                }
                (OutsideSession::Record, None) => {
                    let committed = self.sealer.commit(capture).await;
                    self.emit_all(committed, announce);
                    committed
                }
                (OutsideSession::Ignore, intake) => {
                    info!(summary = %capture.summary, "capture outside a session ignored (session.outside_session = \"ignore\")");
                    if let Some(intake) = intake {
                        let _ = intake
                            .outcome
                            .send(IntakeOutcome::Refused("no session is open".into()));
                    }
                    false
                }
            };
        };
        let announce = page_events(&capture, open.pages);
        let key = self.key.clone();
        let station = self.sealer.station.clone();
        let crypto = self.sealer.crypto.clone();
        let intake_key = intake.as_ref().map(|i| i.key.clone());
        let session_for_add = open.clone();
        let added = outbox::run(&self.sealer.outbox, move |o| {
            session::add(
                o,
                &key,
                &session_for_add,
                &station,
                &crypto,
                capture,
                intake_key.as_deref(),
            )
        })
        .await;
        match added {
            Ok(added) if added.already_committed.is_some() => {
                if let (Some(intake), Some(record_id)) = (intake, added.already_committed) {
                    let _ = intake
                        .outcome
                        .send(IntakeOutcome::AlreadyCommitted(record_id));
                }
            }
            Ok(added) => {
                self.emit_all(true, announce);
                if let Some(s) = &mut self.session {
                    s.identities += u32::from(added.identity);
                    s.pages += added.pages.len() as u32;
                    s.touched_ms = session::now_ms();
                }
                if let Some(intake) = intake {
                    let _ = intake
                        .outcome
                        .send(IntakeOutcome::Committed(format!("session:{}", open.id)));
                }
            }
            Err(e) => {
                warn!(error = %e, "capture refused: it could not be added to the session");
                let reason = e.to_string();
                if let session::SessionError::Outbox(crate::outbox::OutboxError::Full {
                    detail,
                    ..
                }) = &e
                {
                    emit(
                        &self.sealer.events,
                        Event::OutboxFull {
                            detail: detail.clone(),
                        },
                    );
                }
                emit(
                    &self.sealer.events,
                    Event::CaptureRefused {
                        reason: reason.clone(),
                    },
                );
                if let Some(intake) = intake {
                    let _ = intake.outcome.send(IntakeOutcome::Refused(reason));
                }
            }
        }
        false
    }

    fn emit_all(&self, committed: bool, events: Vec<Event>) {
        if committed {
            for event in events {
                emit(&self.sealer.events, event);
            }
        }
    }

    /// A command from the case system over MQTT: authenticated, fresh, first seen, executed.
    /// A message refused at this gate (unsigned, bad signature, another station, stale, replayed,
    /// malformed) is counted and logged (rate-limited) but never answered: anyone who can publish
    /// on the broker could otherwise make the station publish, taking QoS 1 slots from records.
    pub(super) async fn on_command(&mut self, inbound: InboundCommand) -> bool {
        let now = commands::now_secs();
        let reply = Reply::Mqtt(Box::new(MqttReply {
            topic: inbound.response_topic,
            correlation: inbound.correlation,
        }));
        let checked = match &self.verifier {
            Some(v) => v.check(&inbound.payload, now),
            None => Err((
                None,
                Rejection {
                    code: "unsigned",
                    detail: "this station accepts no commands over MQTT ([commands] trusted_keys is empty)".into(),
                },
            )),
        };
        // A command the case system signed for this station, fresh, whose arguments are wrong
        // (malformed, unknown command) is answered, once: it cannot come from anyone else.
        let (id, iat, kind) = match checked {
            Ok(command) => (command.id, command.iat, Ok(command.kind)),
            // Fresh (it passed the skew check), so `now` keeps its id long enough.
            Err((Some(id), rejection)) if !matches!(rejection.code, "wrong_station" | "stale") => {
                (id, now, Err(rejection))
            }
            Err((_, rejection)) => {
                self.refuse_at_gate(rejection);
                return false;
            }
        };
        let skew = self
            .verifier
            .as_ref()
            .map(|v| v.max_skew_secs)
            .unwrap_or(120);
        let (seen_id, seen_iat) = (id.clone(), iat);
        let fresh = outbox::run(&self.sealer.outbox, move |o| {
            commands::replay::first_sighting(o, &seen_id, seen_iat, now, skew)
        })
        .await;
        match (fresh, kind) {
            (Ok(true), Ok(kind)) => self.execute(&id, kind, OpenedBy::Command, reply).await,
            (Ok(true), Err(rejection)) => {
                let response = self.refuse(Some(id), rejection);
                reply.send(response, &self.outbound);
                false
            }
            (Ok(false), _) => {
                self.refuse_at_gate(Rejection {
                    code: "replayed",
                    detail: "this command id was already used".into(),
                });
                false
            }
            (Err(e), _) => {
                let response = self.refuse(
                    Some(id),
                    Rejection {
                        code: "internal",
                        detail: format!("cannot check for replays: {e}"),
                    },
                );
                reply.send(response, &self.outbound);
                false
            }
        }
    }

    /// A request from the local control socket (trusted by the socket's file permissions).
    pub(super) async fn on_local(&mut self, request: LocalRequest) -> bool {
        let id = format!("local-{}", uuid::Uuid::now_v7());
        let reply = Reply::Local(request.reply);
        match commands::parse_kind(&request.command, &request.args) {
            Ok(kind) => self.execute(&id, kind, OpenedBy::Local, reply).await,
            Err(rejection) => {
                let response = self.refuse(Some(id), rejection);
                reply.send(response, &self.outbound);
                false
            }
        }
    }

    /// A device job ended: its command is answered (and a document read joins the session).
    /// Returns true when a record was committed.
    pub(super) async fn on_job(&mut self, done: JobDone) -> bool {
        self.jobs_in_flight = self.jobs_in_flight.saturating_sub(1);
        let JobDone { id, reply, outcome } = done;
        let (result, committed) = match outcome {
            Outcome::Capture { source, answer } => (
                match answer {
                    None => Err(Rejection {
                        code: "source_unavailable",
                        detail: format!("capture source {source:?} stopped"),
                    }),
                    Some(Err(reason)) => Err(Rejection {
                        code: "capture_failed",
                        detail: reason,
                    }),
                    Some(Ok(pages)) => Ok(json!({"source": source, "pages": pages})),
                },
                false,
            ),
            Outcome::Document { reader, read } => {
                self.reading.remove(&reader);
                match read {
                    Ok(capture) => {
                        let summary = capture.summary.clone();
                        let committed = self.on_capture(*capture, None).await;
                        (
                            Ok(json!({"reader": reader, "document": summary})),
                            committed,
                        )
                    }
                    Err(detail) => (
                        Err(Rejection {
                            code: "read_failed",
                            detail,
                        }),
                        false,
                    ),
                }
            }
        };
        let response = match result {
            Ok(value) => Response::accepted(&id, value),
            Err(rejection) => self.refuse(Some(id), rejection),
        };
        reply.send(response, &self.outbound);
        committed
    }

    /// Device jobs started and not yet back (the loop waits for them when stopping).
    pub(super) fn jobs_in_flight(&self) -> usize {
        self.jobs_in_flight
    }

    fn refuse(&mut self, id: Option<String>, rejection: Rejection) -> Response {
        *self.rejected.entry(rejection.code).or_default() += 1;
        info!(reason = rejection.code, detail = %rejection.detail, "command rejected");
        Response::rejected(id, &rejection)
    }

    /// Counts a message refused before it was known to be the case system's, fresh and new.
    fn refuse_at_gate(&mut self, rejection: Rejection) {
        *self.rejected.entry(rejection.code).or_default() += 1;
        if let Some(suppressed) = self.gate_log.allow() {
            info!(reason = rejection.code, detail = %rejection.detail, suppressed, "command refused, not answered");
        }
    }

    /// Runs a command and answers it, now or when its device job ends. Returns true when a
    /// record was committed.
    async fn execute(
        &mut self,
        id: &str,
        kind: CommandKind,
        origin: OpenedBy,
        reply: Reply,
    ) -> bool {
        let result = match kind {
            CommandKind::Ping => Ok((json!({"pong": true}), false)),
            CommandKind::Status => Ok((self.status(), false)),
            CommandKind::OpenSession {
                case_ref,
                operator,
                purpose,
            } => self
                .open(SessionMeta {
                    case_ref: Some(case_ref),
                    operator,
                    purpose,
                    opened_by: origin,
                })
                .await
                .map(|s| (json!({"session_id": s}), false)),
            // Pages of a batch still scanning belong to this session: it is sealed after them.
            CommandKind::CloseSession if self.jobs_in_flight > 0 => Err(Rejection {
                code: "busy",
                detail: "a capture or document read is under way; close the session when it has answered".into(),
            }),
            CommandKind::CloseSession => self.close().await,
            CommandKind::CancelSession { reason } => self
                .cancel(reason.unwrap_or_else(|| "cancelled by command".into()))
                .await
                .map(|v| (v, false)),
            CommandKind::Capture {
                source,
                label,
                mode,
            } => {
                let pending = self.pending(id, reply);
                return match self.capture(source, label, mode, pending) {
                    Ok(()) => false,
                    Err((pending, rejection)) => self.answer_now(pending, rejection),
                };
            }
            CommandKind::ReadDocument { reader, mrz, can } => {
                let pending = self.pending(id, reply);
                return match self.read_document(reader, mrz, can, pending) {
                    Ok(()) => false,
                    Err((pending, rejection)) => self.answer_now(pending, rejection),
                };
            }
        };
        let (response, committed) = match result {
            Ok((value, committed)) => (Response::accepted(id, value), committed),
            Err(rejection) => (self.refuse(Some(id.to_string()), rejection), false),
        };
        reply.send(response, &self.outbound);
        committed
    }

    fn pending(&self, id: &str, reply: Reply) -> Pending {
        Pending {
            id: id.to_string(),
            reply,
            jobs: self.jobs.clone(),
        }
    }

    /// A job that could not start: its command is refused at once.
    fn answer_now(&mut self, pending: Pending, rejection: Rejection) -> bool {
        let response = self.refuse(Some(pending.id), rejection);
        pending.reply.send(response, &self.outbound);
        false
    }

    fn status(&self) -> Value {
        json!({
            "station": self.sealer.station,
            "session": self.session.as_ref().map(|s| json!({
                "session_id": s.id, "case_ref": s.meta.case_ref, "identities": s.identities,
                "pages": s.pages, "opened_by": format!("{:?}", s.meta.opened_by).to_lowercase(),
            })),
            "sources": self.sources.keys().collect::<Vec<_>>(),
            "rejected_commands": self.rejected,
        })
    }

    async fn open(&mut self, meta: SessionMeta) -> Result<String, Rejection> {
        if let Some(open) = &self.session {
            return Err(Rejection {
                code: "session_open",
                detail: format!("session {} is open; close or cancel it first", open.id),
            });
        }
        let key = self.key.clone();
        let stored_meta = meta.clone();
        let opened = outbox::run(&self.sealer.outbox, move |o| {
            session::open(o, &key, stored_meta)
        })
        .await
        .map_err(|e| Rejection {
            code: "internal",
            detail: e.to_string(),
        })?;
        info!(session_id = %opened.id, "session opened");
        emit(
            &self.sealer.events,
            Event::SessionOpened {
                session_id: opened.id.clone(),
                case_ref: meta.case_ref,
                opened_by: format!("{:?}", meta.opened_by).to_lowercase(),
            },
        );
        let id = opened.id.clone();
        self.session = Some(opened);
        Ok(id)
    }

    async fn close(&mut self) -> Result<(Value, bool), Rejection> {
        let Some(open) = self.session.clone() else {
            return Err(no_session());
        };
        let key = self.key.clone();
        let station = self.sealer.station.clone();
        let crypto = self.sealer.crypto.clone();
        let location = self.location.clone();
        let closing = open.clone();
        let closed = outbox::run(&self.sealer.outbox, move |o| {
            session::close(o, &key, &closing, &station, location, &crypto)
        })
        .await
        .map_err(|e| Rejection {
            code: if matches!(
                e,
                session::SessionError::Outbox(crate::outbox::OutboxError::Full { .. })
            ) {
                "outbox_full"
            } else {
                "internal"
            },
            detail: e.to_string(),
        })?;
        self.session = None;
        match closed {
            Some(committed) => {
                info!(session_id = %open.id, record_id = %committed.record_id, seq = committed.seq, "session sealed");
                emit(
                    &self.sealer.events,
                    Event::RecordCommitted {
                        record_id: committed.record_id.clone(),
                        seq: committed.seq,
                        masked_number: format!("session {}", open.id),
                        card_read_at: std::time::Instant::now(),
                    },
                );
                emit(
                    &self.sealer.events,
                    Event::SessionClosed {
                        session_id: open.id.clone(),
                        record_id: committed.record_id.clone(),
                        identities: open.identities,
                        pages: open.pages,
                    },
                );
                self.sealer.new_records.notify_one();
                Ok((
                    json!({"session_id": open.id, "record_id": committed.record_id,
                           "seq": committed.seq, "identities": open.identities, "pages": open.pages}),
                    true,
                ))
            }
            None => {
                emit(
                    &self.sealer.events,
                    Event::SessionCancelled {
                        session_id: open.id.clone(),
                        reason: "closed with nothing captured".into(),
                        items: 0,
                    },
                );
                Ok((json!({"session_id": open.id, "record_id": null}), false))
            }
        }
    }

    async fn cancel(&mut self, reason: String) -> Result<Value, Rejection> {
        let Some(open) = self.session.clone() else {
            return Err(no_session());
        };
        let cancelling = open.clone();
        let items = outbox::run(&self.sealer.outbox, move |o| {
            session::cancel(o, &cancelling)
        })
        .await
        .map_err(|e| Rejection {
            code: "internal",
            detail: e.to_string(),
        })?;
        self.session = None;
        info!(session_id = %open.id, items, %reason, "session cancelled; nothing it captured is sent");
        emit(
            &self.sealer.events,
            Event::SessionCancelled {
                session_id: open.id.clone(),
                reason,
                items,
            },
        );
        Ok(json!({"session_id": open.id, "items_discarded": items}))
    }

    /// Hands the request to the source; its answer comes back through [`Desk::on_job`] while
    /// the pages it delivers are committed by the loop as they come.
    fn capture(
        &mut self,
        source: String,
        label: String,
        mode: Option<String>,
        pending: Pending,
    ) -> Result<(), (Pending, Rejection)> {
        if self.session.is_none() {
            return Err((pending, no_session()));
        }
        let Some(handle) = self.sources.get(&source) else {
            let detail = format!(
                "no capture source {source:?} (configured: {})",
                self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            return Err((
                pending,
                Rejection {
                    code: "unknown_source",
                    detail,
                },
            ));
        };
        match jobs::start_capture(handle, source.clone(), label, mode, pending) {
            Ok(()) => {
                self.jobs_in_flight += 1;
                Ok(())
            }
            Err((pending, NotTaken::Busy)) => Err((
                pending,
                Rejection {
                    code: "busy",
                    detail: format!(
                        "capture source {source:?} has requests waiting; try again when they end"
                    ),
                },
            )),
            Err((pending, NotTaken::Stopped)) => Err((
                pending,
                Rejection {
                    code: "source_unavailable",
                    detail: format!("capture source {source:?} is not running"),
                },
            )),
        }
    }

    /// Starts a travel-document read beside the loop (one per reader at a time); the document
    /// joins the session through [`Desk::on_job`].
    fn read_document(
        &mut self,
        reader: Option<String>,
        mrz: String,
        can: Option<String>,
        pending: Pending,
    ) -> Result<(), (Pending, Rejection)> {
        if self.session.is_none() {
            return Err((pending, no_session()));
        }
        let Some(reader) = reader.or_else(|| self.pcsc_readers.first().cloned()) else {
            return Err((
                pending,
                Rejection {
                    code: "unknown_source",
                    detail: "no PC/SC reader is configured".into(),
                },
            ));
        };
        let key = match crate::devices::pcsc::parse_mrz_text(&mrz) {
            Ok(key) => key,
            Err(e) => {
                return Err((
                    pending,
                    Rejection {
                        code: "malformed",
                        detail: format!("args.mrz: {e}"),
                    },
                ));
            }
        };
        let can = match can.as_deref().map(icao9303::pace::parse_can).transpose() {
            Ok(can) => can,
            Err(e) => {
                return Err((
                    pending,
                    Rejection {
                        code: "malformed",
                        detail: format!("args.can: {e}"),
                    },
                ));
            }
        };
        if self.reading.contains(&reader) {
            return Err((
                pending,
                Rejection {
                    code: "busy",
                    detail: format!(
                        "a document is being read on {reader:?}; try again when it ends"
                    ),
                },
            ));
        }
        let settings = crate::devices::pcsc::ReadSettings {
            can,
            chain: Some(self.chain.clone()),
            ..Default::default()
        };
        let name = reader.clone();
        let csca = self.csca.clone();
        self.reading.insert(reader.clone());
        self.jobs_in_flight += 1;
        jobs::start_read(
            reader,
            move || {
                crate::devices::pcsc::read_document(&name, &key, csca.as_deref(), &settings)
                    .map(|(capture, _)| Box::new(capture))
                    .map_err(|e| e.to_string())
            },
            pending,
        );
        Ok(())
    }

    /// Closes or cancels an idle session (per `session.timeout_action`); true on a new record.
    pub(super) async fn on_tick(&mut self) -> bool {
        let Some(open) = &self.session else {
            return false;
        };
        if open.idle_for(session::now_ms()) < self.timeout || self.jobs_in_flight > 0 {
            return false;
        }
        info!(session_id = %open.id, action = ?self.timeout_action, "session timed out");
        match self.timeout_action {
            TimeoutAction::Close => self.close().await.map(|(_, c)| c).unwrap_or(false),
            TimeoutAction::Cancel => {
                let _ = self.cancel("timed out".into()).await;
                false
            }
        }
    }
}

/// The clerk's-screen events for each page a capture holds (numbered after `before`).
fn page_events(capture: &Capture, before: u32) -> Vec<Event> {
    let pages = capture.evidence.iter().filter(|e| e.role == "page");
    pages
        .enumerate()
        .map(|(i, page)| Event::PageCaptured {
            device: capture.device.name.clone(),
            label: page.label.clone(),
            page: before + 1 + i as u32,
            warnings: capture.warnings.clone(),
        })
        .collect()
}

fn no_session() -> Rejection {
    Rejection {
        code: "no_session",
        detail: "no session is open; send open_session first".into(),
    }
}
