//! Opening the outbox for the daemon: damaged files are moved aside (and reported), capacity
//! limits come from `[outbox]`, old intake keys are pruned.

use tracing::{error, info};

use super::{Limits, Outbox, open_or_quarantine};
use crate::config::Config;
use crate::events::{Event, EventBus, emit};

/// Opens the station's outbox, reporting a damaged file as an error log line and an event.
pub fn open_for_station(config: &Config, events: &EventBus) -> anyhow::Result<Outbox> {
    let path = config.station.outbox_path();
    let (mut outbox, quarantined) =
        open_or_quarantine(&path).map_err(|e| anyhow::anyhow!("cannot open the outbox: {e}"))?;
    if let Some(q) = quarantined {
        error!(
            damaged = %q.moved_to.display(),
            reason = %q.reason,
            chains_salvaged = q.chains_salvaged,
            "the outbox file was damaged: moved aside (not deleted) and a new outbox started; \
             records in the damaged file were not delivered, inspect it"
        );
        emit(
            events,
            Event::OutboxQuarantined {
                moved_to: q.moved_to.display().to_string(),
                reason: q.reason,
            },
        );
    }
    outbox.set_limits(Limits {
        max_bytes: config.outbox.max_bytes.get(),
        max_records: config.outbox.max_records.get(),
    });
    match outbox.prune_intake() {
        Ok(n) if n > 0 => info!(pruned = n, "forgot old intake keys"),
        Ok(_) => {}
        Err(e) => error!(error = %e, "cannot prune old intake keys"),
    }
    Ok(outbox)
}
