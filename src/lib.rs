//! countersign: reads identity documents and scanned evidence at a service counter, seals them
//! into signed, hash-chained records, keeps them in a durable outbox and delivers them over MQTT 5
//! to the case system, which acknowledges them.
//!
//! The flow, one module per stage: `devices` (driver adapters) → `station` (supervisor) →
//! `record` (seal) → `outbox` (durable) → `uplink` (MQTT). `cli` holds one module per
//! subcommand; `demo` wires the whole chain on one machine.

// The only unsafe code is in `os` (prctl, geteuid, access, statvfs), allowed there and audited.
#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod devices;
pub mod events;
pub mod imaging;
pub mod logging;
pub mod metrics;
pub mod os;
pub mod outbox;
pub mod receipts;
pub mod record;
pub mod secret_file;
pub mod service;
pub mod session;
pub mod station;
pub mod uplink;
