//! Replay protection: a command id is accepted once. Seen ids are kept in the outbox database
//! (so a restart does not reopen the window) for as long as their `iat` is within the allowed
//! skew; older ones are refused as stale anyway and are pruned.

use crate::outbox::{Outbox, OutboxError};

/// Records `id` as seen; false when it was seen before (a replay).
pub fn first_sighting(
    outbox: &Outbox,
    id: &str,
    iat: i64,
    now: i64,
    max_skew_secs: i64,
) -> Result<bool, OutboxError> {
    // Saturating: a clock near i64::MIN must not wrap the prune point into the future.
    outbox.remember_command(id, iat, now.saturating_sub(max_skew_secs.saturating_mul(2)))
}
