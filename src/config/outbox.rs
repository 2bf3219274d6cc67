//! `[outbox]`: capacity limits of the durable outbox.
//!
//! The limits count everything the outbox holds: records waiting for the case system and dead
//! letters (with their blobs), since both occupy the disk. When a new capture would exceed a limit
//! it is refused at the counter; nothing already captured is ever dropped to make room.

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Bytes of records and blobs held, at most.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: Bounded<1048576, { i64::MAX as u64 }>,
    /// Records held (pending and dead letters), at most.
    #[serde(default = "default_max_records")]
    pub max_records: Bounded<1, { i64::MAX as u64 }>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_bytes: default_max_bytes(),
            max_records: default_max_records(),
        }
    }
}

fn default_max_bytes() -> Bounded<1048576, { i64::MAX as u64 }> {
    Bounded(4 * 1024 * 1024 * 1024)
}
fn default_max_records() -> Bounded<1, { i64::MAX as u64 }> {
    Bounded(100_000)
}
