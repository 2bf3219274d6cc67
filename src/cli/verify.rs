//! `countersign verify`: audits records on disk (the demo's output, an outbox export, a case
//! system's archive). A directory holding `records/` (and `blobs/`) is read in that layout;
//! otherwise every `*.jwe`/`*.jws` file in it is a record, in file-name order (record ids are
//! UUIDv7, so that is sealing order). Blobs are looked up by id in `--blobs` directories and in
//! the `blobs/` directory beside the records. Receipts (`countersign outbox receipts --export`)
//! are read from a `receipts/` directory in a given directory, or from a given `receipts`
//! directory, and checked against `--receipt-key` and the records of the set.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::receipts::{self, audit::ReceiptItem};
use crate::record::audit::{self, Item};
use crate::record::keys::{DecryptKeys, Keyring};
use crate::record::{RecordKind, WIRE_EXT};

mod aa;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A station public key (JWK); repeat for every key the station has used.
    #[arg(long = "station-key")]
    station_keys: Vec<PathBuf>,
    /// A case-system private key (JWK) to decrypt with; repeat after a rotation.
    #[arg(long = "decrypt-key")]
    decrypt_keys: Vec<PathBuf>,
    /// Directories holding blobs (`<blob id>.jwe`), besides `blobs/` next to the records.
    #[arg(long = "blobs")]
    blob_dirs: Vec<PathBuf>,
    /// Do not look for evidence blobs.
    #[arg(long)]
    skip_blobs: bool,
    /// A case-system public key (JWK) that signs receipts; repeat for every key it has used.
    #[arg(long = "receipt-key")]
    receipt_keys: Vec<PathBuf>,
    /// Record files, directories of them, or receipt exports.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn is_record_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e == WIRE_EXT || e == "jws")
}

/// What the paths hold: records, where their blobs may be, receipts.
struct Found {
    items: Vec<Item>,
    blob_dirs: Vec<PathBuf>,
    receipts: Vec<ReceiptItem>,
}

/// The `*.jws` files of a receipts directory, in name order.
fn read_receipts(dir: &Path, out: &mut Vec<ReceiptItem>) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let file = entry?.path();
        if file.is_file() && file.extension().is_some_and(|e| e == "jws") {
            files.push(file);
        }
    }
    files.sort();
    for file in files {
        let jws =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        out.push(ReceiptItem {
            source: file.display().to_string(),
            stem: file.file_stem().map(|s| s.to_string_lossy().into_owned()),
            jws,
        });
    }
    Ok(())
}

fn read_items(args: &VerifyArgs) -> anyhow::Result<Found> {
    let mut items = Vec::new();
    let mut receipts = Vec::new();
    let mut blob_dirs = args.blob_dirs.clone();
    for path in &args.paths {
        let mut files = Vec::new();
        if path.is_dir() && path.file_name().is_some_and(|n| n == "receipts") {
            read_receipts(path, &mut receipts)?;
            continue;
        }
        if path.is_dir() && path.join("receipts").is_dir() {
            read_receipts(&path.join("receipts"), &mut receipts)?;
            if !path.join("records").is_dir() {
                continue; // a receipts export alone
            }
        }
        if path.is_dir() {
            let (records_dir, blobs_dir) = if path.join("records").is_dir() {
                (path.join("records"), path.join("blobs"))
            } else {
                (path.clone(), path.join("..").join("blobs"))
            };
            blob_dirs.push(blobs_dir);
            for entry in std::fs::read_dir(&records_dir)
                .with_context(|| format!("cannot list {}", records_dir.display()))?
            {
                let file = entry?.path();
                if is_record_file(&file) {
                    files.push(file);
                }
            }
            files.sort();
        } else if path.is_file() {
            if let Some(parent) = path.parent() {
                blob_dirs.push(parent.join("..").join("blobs"));
            }
            files.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
        for file in files {
            let wire =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            items.push(Item {
                source: file.display().to_string(),
                stem: file.file_stem().map(|s| s.to_string_lossy().into_owned()),
                wire,
            });
        }
    }
    Ok(Found {
        items,
        blob_dirs,
        receipts,
    })
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keyring = Keyring::load(&args.station_keys)?;
    let decrypt = DecryptKeys::load(&args.decrypt_keys)?;
    let receipt_keys = Keyring::load(&args.receipt_keys)?;
    let Found {
        items,
        blob_dirs,
        receipts,
    } = read_items(&args)?;
    if items.is_empty() && receipts.is_empty() {
        bail!("no record files (*.{WIRE_EXT}, *.jws) or receipts (receipts/*.jws) found");
    }
    if !items.is_empty() && args.station_keys.is_empty() {
        bail!(
            "{} record(s) found: give the station's public key with --station-key",
            items.len()
        );
    }
    if !receipts.is_empty() && args.receipt_keys.is_empty() {
        bail!(
            "{} receipt(s) found: give the case system's public key with --receipt-key",
            receipts.len()
        );
    }
    let find_blob = |id: &str| {
        // Ids come from verified manifests, but never let one name a path outside the dirs.
        if id.contains(['/', '\\']) || id.starts_with('.') {
            return None;
        }
        blob_dirs
            .iter()
            .flat_map(|d| {
                [
                    d.join(format!("{id}.{WIRE_EXT}")),
                    d.join(format!("{id}.bin")),
                ]
            })
            .find_map(|p| std::fs::read(p).ok())
    };
    let report = audit::audit(&items, &keyring, &decrypt, !args.skip_blobs, &find_blob);
    for v in &report.verified {
        let kind = match v.kind {
            RecordKind::Capture => {
                format!("capture, {} identities, {} blobs", v.identities, v.blobs)
            }
            RecordKind::Checkpoint => "checkpoint".into(),
        };
        println!(
            "ok    {} seq {:<6} record {}  ({kind})",
            v.station, v.seq, v.record_id
        );
    }
    let receipt_report = receipts::audit::audit(&receipts, &receipt_keys, &report.verified);
    for r in &receipt_report.verified {
        let checked = if r.record_checked {
            "the record's bytes match"
        } else {
            "record not in the set: signature and shape checked"
        };
        println!(
            "ok    {} receipt for record {}  {} by {} ({}) at {}  ({checked})",
            r.station,
            r.record_id,
            r.outcome,
            r.kid,
            r.alg,
            super::outbox::rfc3339(r.iat)
        );
    }
    for note in &report.notes {
        println!("note  {note}");
    }
    let aa = aa::recheck_all(&items, &keyring, &decrypt);
    for line in &aa.lines {
        println!("{line}");
    }
    for p in report.problems.iter().chain(&receipt_report.problems) {
        println!(
            "FAIL  {}: record {} ({}): {}",
            p.kind,
            p.record_id.as_deref().unwrap_or("?"),
            p.source,
            p.detail
        );
    }
    println!(
        "{} record(s) checked: {} verified, {} problem(s)",
        items.len(),
        report.verified.len(),
        report.problems.len()
    );
    if !receipts.is_empty() {
        println!(
            "{} receipt(s) checked: {} verified, {} problem(s)",
            receipts.len(),
            receipt_report.verified.len(),
            receipt_report.problems.len()
        );
    }
    Ok(
        if report.ok() && receipt_report.problems.is_empty() && aa.failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}
