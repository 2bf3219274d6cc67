//! Opening the outbox for the daemon: damaged files are moved aside (and reported), capacity
//! limits come from `[outbox]`, old intake keys are pruned, and the reserve for a full disk is
//! kept (`reserve`): on a full disk the daemon still starts and drains.

use tracing::{error, info, warn};

use super::reserve::{RESERVE_BYTES, Reserve};
use super::{Limits, Outbox, open_or_quarantine};
use crate::config::Config;
use crate::events::{Event, EventBus, emit};

/// Opens the station's outbox, reporting a damaged file as an error log line and an event.
pub fn open_for_station(config: &Config, events: &EventBus) -> anyhow::Result<Outbox> {
    let path = config.station.outbox_path();
    let reserve = Reserve::beside(&path, RESERVE_BYTES);
    let opened = match open_or_quarantine(&path) {
        // SQLite needs a little room to open a WAL file (its index and log): on a full disk the
        // reserve makes it.
        Err(e) if reserve.release() => {
            warn!(error = %e, "cannot open the outbox: released the reserve (disk full?) and trying again");
            open_or_quarantine(&path)
        }
        opened => opened,
    };
    let (mut outbox, quarantined) =
        opened.map_err(|e| anyhow::anyhow!("cannot open the outbox: {e}"))?;
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
    outbox.set_receipt_limits(super::ReceiptLimits {
        max_age_ms: config.acks.keep_receipts_days.get() as i64 * 86_400_000,
        max_count: config.acks.keep_receipts.get(),
    });
    if !outbox.set_reserve(reserve) {
        warn!(
            outbox = %path.display(),
            "disk full: no room for the outbox's reserve; records held are delivered, new captures are refused until space is freed"
        );
    }
    // Housekeeping: on a full disk it waits for the next start.
    match outbox.prune_intake() {
        Ok(n) if n > 0 => info!(pruned = n, "forgot old intake keys"),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot prune old intake keys now"),
    }
    match outbox.prune_receipts() {
        Ok(n) if n > 0 => info!(
            pruned = n,
            "forgot receipts beyond [acks] keep_receipts(_days)"
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot prune old receipts now"),
    }
    Ok(outbox)
}
