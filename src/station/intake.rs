//! Captures from sources that must learn the outcome (hot folders): recognise an item committed
//! before a crash by its intake key, tag the append with the key, and report back.

use tracing::warn;

use super::Sealer;
use crate::devices::{Capture, Intake, IntakeOutcome};
use crate::outbox;

impl Sealer {
    /// Commits a capture tagged with its intake key; true when a new record was committed.
    pub(super) async fn commit_intake(&self, capture: Capture, intake: Intake) -> bool {
        let Intake { key, outcome } = intake;
        let lookup = key.clone();
        let before = outbox::run(&self.outbox, move |o| o.intake_record(&lookup)).await;
        match before {
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
        let tag = key.clone();
        outbox::run(&self.outbox, move |o| o.tag_next_append(tag)).await;
        // The station commits one capture at a time, so the tag goes with this capture's append.
        let _ = self.commit(capture).await;
        let after = outbox::run(&self.outbox, move |o| {
            o.clear_append_tag();
            o.intake_record(&key)
        })
        .await;
        let (result, committed) = match after {
            Ok(Some(record_id)) => (IntakeOutcome::Committed(record_id), true),
            Ok(None) => (
                IntakeOutcome::Refused("the record was not committed".into()),
                false,
            ),
            Err(e) => (IntakeOutcome::Refused(e.to_string()), false),
        };
        let _ = outcome.send(result);
        committed
    }
}
