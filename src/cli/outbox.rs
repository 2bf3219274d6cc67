//! `countersign outbox status|list|export DIR|retry ID|receipts`: the outbox for administrators. Safe to
//! run beside the daemon (SQLite WAL: readers do not block it; `retry` is one short write).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{self, EX_CONFIG};
use crate::outbox::Outbox;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Depth, bytes, age of the oldest record, dead letters, capacity limits.
    Status,
    /// Pending records (oldest first) and dead letters with their reasons.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Writes dead letters in wire form to DIR: `records/<record_id>.jwe`, `blobs/<blob_id>.jwe`,
    /// the reason in `rejected/<record_id>.json`. `countersign verify DIR` reads that layout.
    Export {
        dir: PathBuf,
        /// Only this dead letter.
        #[arg(long)]
        id: Option<String>,
    },
    /// Puts a dead letter back in the queue; the daemon delivers it again.
    Retry { record_id: String },
    /// The case system's signed receipts kept after their records left: which case-system key
    /// acknowledged (or rejected) which record, and when.
    Receipts {
        /// Only receipts received since then: RFC 3339 (`2026-12-01T08:00:00+08:00`), a date
        /// (`2026-12-01`, midnight UTC), or an age (`90m`, `12h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        /// Also writes them to DIR/receipts/<record_id>.jws, for `countersign verify`.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// One JSON object per receipt instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `--since` as Unix milliseconds.
fn parse_since(text: &str) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    if let Ok(d) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(d.midnight().assume_utc().unix_timestamp() * 1000);
    }
    let unit_ms = match text.chars().last() {
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        Some('d') => 86_400_000,
        _ => 0,
    };
    match text[..text.len().saturating_sub(1)].parse::<i64>() {
        Ok(n) if unit_ms > 0 && n >= 0 => Ok(now_ms().saturating_sub(n.saturating_mul(unit_ms))),
        _ => anyhow::bail!(
            "--since {text:?}: expected RFC 3339 (2026-12-01T08:00:00+08:00), a date (2026-12-01) or an age (90m, 12h, 7d)"
        ),
    }
}

/// Unix seconds as RFC 3339 UTC.
pub(super) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn age(ms: i64) -> String {
    let secs = (now_ms() - ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

pub fn run(config_path: &Path, command: OutboxCommand) -> anyhow::Result<ExitCode> {
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign: invalid configuration: {e}");
            return Ok(ExitCode::from(EX_CONFIG as u8));
        }
    };
    let path = config.station.outbox_path();
    if !path.exists() {
        anyhow::bail!(
            "no outbox at {} (station.state_dir); the daemon creates it",
            path.display()
        );
    }
    let mut outbox = Outbox::open(&path)?;
    match command {
        OutboxCommand::Status => {
            let s = outbox.stats()?;
            println!("outbox: {}", path.display());
            println!("pending records: {}", s.depth);
            println!("pending bytes: {}", s.bytes);
            println!(
                "oldest pending: {}",
                s.oldest_created_ms.map(age).unwrap_or_else(|| "-".into())
            );
            println!("dead letters: {}", s.dead_letters);
            println!(
                "limits: {} records, {} bytes (pending and dead letters together)",
                config.outbox.max_records.get(),
                config.outbox.max_bytes.get()
            );
            if s.dead_letters > 0 {
                println!("dead letters need attention: countersign outbox list / export / retry");
            }
        }
        OutboxCommand::List { limit } => {
            println!("pending (oldest first):");
            for r in outbox.list(limit)? {
                println!(
                    "  {}  seq {}  {} bytes  {} blobs  age {}  attempts {}",
                    r.record_id,
                    r.seq,
                    r.bytes,
                    r.blobs,
                    age(r.created_ms),
                    r.attempts
                );
            }
            println!("dead letters:");
            for d in outbox.dead_letters()? {
                println!(
                    "  {}  seq {}  {} bytes  rejected {} ago: {}",
                    d.record_id,
                    d.seq,
                    d.bytes,
                    age(d.rejected_ms),
                    d.reason
                );
            }
        }
        OutboxCommand::Export { dir, id } => {
            let written = outbox.export_dead_letters(&dir, id.as_deref())?;
            if let Some(id) = id
                && written.is_empty()
            {
                anyhow::bail!("no dead letter {id}");
            }
            for f in &written {
                println!("{}", f.display());
            }
            eprintln!(
                "{} dead letters exported to {}",
                written.len(),
                dir.display()
            );
        }
        OutboxCommand::Retry { record_id } => {
            let moved = outbox
                .retry(&record_id)
                .with_context(|| format!("cannot retry {record_id}"))?;
            if !moved {
                anyhow::bail!("no dead letter {record_id}");
            }
            println!("{record_id} queued again; the daemon delivers it");
        }
        OutboxCommand::Receipts {
            since,
            export,
            json,
        } => {
            let since_ms = since.as_deref().map(parse_since).transpose()?;
            let kept = outbox.receipts(since_ms)?;
            for r in &kept {
                if json {
                    let line = serde_json::json!({
                        "record_id": r.record_id,
                        "seq": r.seq,
                        "status": r.status,
                        "record_sha256": r.record_sha256,
                        "kid": r.receipt.kid,
                        "alg": r.receipt.alg,
                        "iat": r.receipt.iat,
                        "issued": rfc3339(r.receipt.iat),
                        "received_ms": r.received_ms,
                        "received": rfc3339(r.received_ms.div_euclid(1000)),
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{}  seq {}  {}  by {} ({})  issued {}  received {}",
                        r.record_id,
                        r.seq,
                        r.status,
                        r.receipt.kid,
                        r.receipt.alg,
                        rfc3339(r.receipt.iat),
                        rfc3339(r.received_ms.div_euclid(1000))
                    );
                }
            }
            eprintln!(
                "{} receipt(s) kept{} (at most {}, for {} days: [acks] keep_receipts, keep_receipts_days)",
                kept.len(),
                if since.is_some() { " in that time" } else { "" },
                config.acks.keep_receipts.get(),
                config.acks.keep_receipts_days.get()
            );
            if let Some(dir) = export {
                let written = outbox.export_receipts(&dir, since_ms)?;
                eprintln!(
                    "{} receipt(s) exported to {}",
                    written.len(),
                    dir.join("receipts").display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
