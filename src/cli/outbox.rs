//! `countersign outbox status|list|export DIR|retry ID`: the outbox for administrators. Safe to
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
    }
    Ok(ExitCode::SUCCESS)
}
