//! `/metrics` in the Prometheus text format: `countersign_` prefix, `_total` counters, labels
//! only for configured device names and fixed values (never anything about a person).

use std::fmt::Write as _;
use std::time::Duration;

use crate::service::state::{DeviceState, Snapshot, Uplink};

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP countersign_{name} {help}");
        let _ = writeln!(self.0, "# TYPE countersign_{name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.0, "countersign_{name}");
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(s: &Snapshot, heartbeat_age: Duration) -> String {
    let mut o = Out(String::new());
    let c = &s.counters;
    o.family("build_info", "gauge", "The running build (value 1).");
    o.sample(
        "build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("profile", s.profile),
        ],
        1,
    );
    o.one(
        "ready",
        "gauge",
        "1 once the daemon reported READY.",
        u8::from(s.ready),
    );
    o.one(
        "main_loop_heartbeat_age_seconds",
        "gauge",
        "Seconds since the station's main loop last turned (it turns at least every 5 s).",
        format!("{:.3}", heartbeat_age.as_secs_f64()),
    );
    o.one(
        "cards_read_total",
        "counter",
        "Identity documents read.",
        c.cards_read,
    );
    o.one(
        "pages_total",
        "counter",
        "Pages captured (cameras, scanners).",
        c.pages,
    );
    o.one(
        "records_queued_total",
        "counter",
        "Records committed to the outbox.",
        c.records_queued,
    );
    o.one(
        "records_acked_total",
        "counter",
        "Records the case system acknowledged as stored.",
        c.records_acked,
    );
    o.one(
        "records_rejected_total",
        "counter",
        "Records the case system rejected (moved to dead letters).",
        c.records_rejected,
    );
    o.family(
        "acks_refused_total",
        "counter",
        "Messages on the acks topic that changed nothing (forged, unsigned, another station's, replayed onto another record, stale, malformed), by reason.",
    );
    for (code, n) in crate::receipts::REFUSAL_CODES.iter().zip(c.answers_refused) {
        o.sample("acks_refused_total", &[("reason", code)], n);
    }
    o.family(
        "captures_refused_total",
        "counter",
        "Captures not committed, by reason.",
    );
    o.sample(
        "captures_refused_total",
        &[("reason", "outbox_full")],
        c.captures_refused_full,
    );
    o.sample(
        "captures_refused_total",
        &[("reason", "error")],
        c.captures_refused_error,
    );
    o.one(
        "quality_problems_total",
        "counter",
        "Capture attempts the clerk was asked to repeat.",
        c.quality_problems,
    );
    o.family(
        "sessions_total",
        "counter",
        "Case sessions ended, by outcome.",
    );
    o.sample(
        "sessions_total",
        &[("outcome", "closed")],
        c.sessions_closed,
    );
    o.sample(
        "sessions_total",
        &[("outcome", "cancelled")],
        c.sessions_cancelled,
    );
    if let Some(ob) = s.outbox {
        o.one(
            "outbox_records",
            "gauge",
            "Records waiting for the case system.",
            ob.depth,
        );
        o.one(
            "outbox_bytes",
            "gauge",
            "Bytes of waiting records and their blobs.",
            ob.bytes,
        );
        o.one(
            "outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest waiting record (0 when none).",
            ob.oldest_age_secs.unwrap_or(0),
        );
        o.one(
            "outbox_dead_letters",
            "gauge",
            "Rejected records kept for the administrator.",
            ob.dead_letters,
        );
    }
    o.one(
        "uplink_up",
        "gauge",
        "1 while connected to the broker.",
        u8::from(s.uplink == Uplink::Up),
    );
    o.family(
        "device_up",
        "gauge",
        "1 while a configured device is ready, by kind and configured name.",
    );
    for ((kind, name), state) in &s.devices {
        o.sample(
            "device_up",
            &[("kind", kind), ("device", name)],
            u8::from(*state == DeviceState::Ready),
        );
    }
    o.family(
        "reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    o.sample("reloads_total", &[("result", "applied")], c.reloads_applied);
    o.sample("reloads_total", &[("result", "refused")], c.reloads_refused);
    o.one(
        "restart_pending_settings",
        "gauge",
        "Changed settings that wait for a restart.",
        s.pending_restart.len(),
    );
    o.0
}
