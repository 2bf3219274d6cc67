//! The station's side of sealing: commits captures and checkpoints from the async loop (the
//! outbox work runs on a blocking thread, see [`crate::seal`]), says what happened (log, events),
//! wakes the uplink, and tells sources that wait for the outcome (hot folders) where their item
//! went: an item committed before a crash is recognised by its intake key, not captured twice.

use std::sync::Arc;

use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::capture::{Capture, Intake, IntakeOutcome};
use crate::events::{Event, EventBus, emit};
use crate::outbox::{self, OutboxError, SharedOutbox};
use crate::seal::{self, Committed, Crypto};

#[derive(Clone)]
pub(super) struct Sealer {
    pub(super) station: String,
    pub(super) location: Option<String>,
    pub(super) crypto: Crypto,
    pub(super) outbox: SharedOutbox,
    pub(super) events: EventBus,
    pub(super) new_records: Arc<Notify>,
}

impl Sealer {
    /// Seals and commits one capture (tagged with its source's intake key, when given); the
    /// committed record once it is durable.
    pub(super) async fn commit(
        &self,
        capture: Capture,
        intake: Option<String>,
    ) -> Option<Committed> {
        let (station, crypto, location) = (
            self.station.clone(),
            self.crypto.clone(),
            self.location.clone(),
        );
        let summary = capture.summary.clone();
        let instant = capture.instant;
        let committed = outbox::run(&self.outbox, move |o| {
            seal::commit_capture(o, &station, &crypto, capture, location, intake.as_deref())
        })
        .await;
        match committed {
            Ok(c) => {
                info!(record_id = %c.record_id, seq = c.seq, %summary, "record committed");
                emit(
                    &self.events,
                    Event::RecordCommitted {
                        record_id: c.record_id.clone(),
                        seq: c.seq,
                        masked_number: summary,
                        card_read_at: instant,
                    },
                );
                self.new_records.notify_one();
                Some(c)
            }
            Err(OutboxError::Full { detail, .. }) => {
                error!(%detail, "capture refused: the outbox is full; everything held is kept");
                emit(&self.events, Event::OutboxFull { detail });
                None
            }
            Err(e) => {
                error!(error = %e, "capture refused: the record could not be committed");
                emit(
                    &self.events,
                    Event::CaptureRefused {
                        reason: e.to_string(),
                    },
                );
                None
            }
        }
    }

    /// Commits a capture whose source waits for the outcome, and tells it; true when a new record
    /// was committed.
    pub(super) async fn commit_intake(&self, capture: Capture, intake: Intake) -> bool {
        let Intake { key, outcome } = intake;
        let lookup = key.clone();
        match outbox::run(&self.outbox, move |o| o.intake_record(&lookup)).await {
            Ok(Some(record_id)) => {
                let _ = outcome.send(IntakeOutcome::AlreadyCommitted(record_id));
                return false;
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot look up an intake key; the item stays at its source");
                let _ = outcome.send(IntakeOutcome::Refused(e.to_string()));
                return false;
            }
        }
        match self.commit(capture, Some(key)).await {
            Some(c) => {
                let _ = outcome.send(IntakeOutcome::Committed(c.record_id));
                true
            }
            None => {
                let _ = outcome.send(IntakeOutcome::Refused(
                    "the record was not committed".into(),
                ));
                false
            }
        }
    }

    /// Seals a checkpoint record; true when it is durable.
    pub(super) async fn checkpoint(&self) -> bool {
        let (station, crypto) = (self.station.clone(), self.crypto.clone());
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
