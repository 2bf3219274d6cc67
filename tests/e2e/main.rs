//! End-to-end tests against real peers: Mosquitto, a pseudo-terminal with the GA 467 simulator,
//! the daemon binary, and an independent Python case system (paho-mqtt, joserfc, jwcrypto).
//! One test binary, so the project links once.

#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod harness_capture;
#[allow(dead_code)]
mod harness_idcard;
#[allow(dead_code)]
mod harness_mqtt;
#[allow(dead_code)]
mod harness_pcsc;

mod backlog;
mod capacity;
mod capture_cli;
mod capture_daemon;
mod capture_session;
mod chaos;
mod cli;
mod command_flood;
mod crash;
mod delivery;
mod demo;
mod folder;
mod folder_intake;
mod full_disk;
mod idcard;
mod imaging;
mod long_jobs;
mod outbox_cli;
mod package;
mod passport;
mod receipts;
mod records;
mod rotation;
mod service;
mod sessions;
mod start_checks;
mod tls;
mod uplink;
mod uplink_bench;
mod uplink_presence;
