//! Adapters from the driver crates (under `drivers/`) to station events. Each device runs in its
//! own supervisor (a thread for blocking serial I/O) that opens the device, recovers it with
//! bounded backoff when it goes away, and reports what it read as a [`DeviceEvent`].

pub mod id_reader;

use std::time::{Instant, SystemTime};

use crate::record::{DeviceInfo, Evidence, Identity};

#[derive(Debug)]
pub enum DeviceEvent {
    /// An identity document was read.
    IdCard(Box<CardCapture>),
}

/// One card read, mapped into the record's vocabulary.
#[derive(Debug)]
pub struct CardCapture {
    pub read_at: SystemTime,
    /// For latency measurements (card to ack).
    pub read_instant: Instant,
    pub device: DeviceInfo,
    pub identity: Identity,
    /// The face photo (raw WLT), fingerprints when configured; `identity` indexes are left None
    /// (the station assigns them when it places the identity in a record).
    pub evidence: Vec<Evidence>,
    /// The ID number masked for logs and events (`1101**********002X`).
    pub masked_number: String,
}
