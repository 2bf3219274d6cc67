//! `countersign read-document`: one travel document (ePassport, exit-entry permit) read from a
//! PC/SC reader with the MRZ given, printed as one JSON object with the record's field names:
//! the identity (MRZ fields, access protocol, every check), the evidence (face image and the
//! files as read, by role, size and SHA-256; `--out` writes them) and the read's statistics.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use icao9303::ReadError;
use icao9303::access::AccessError;
use icao9303::mrz::MrzKey;

use crate::devices::pcsc::{self, DocumentError, ReadSettings};
use crate::logging;

/// Exit codes (documented in `--help`).
pub const EXIT_NO_CARD: u8 = 3;
pub const EXIT_NO_READER: u8 = 4;
pub const EXIT_ACCESS_REFUSED: u8 = 5;
pub const EXIT_READ_FAILED: u8 = 6;
pub const EXIT_NOT_A_DOCUMENT: u8 = 7;

#[derive(Debug, Args)]
#[command(
    after_help = "The MRZ opens the chip (PACE when the chip offers it, BAC otherwise): give it as \
    printed (--mrz, TD1/TD2/TD3 or the exit-entry permits' 3x30 lines) or as --doc-number, \
    --birth and --expiry (YYMMDD or YYYY-MM-DD). With --can, PACE uses the card access number \
    instead (the MRZ is still needed for chips without PACE and for the DG1 check). The output's \
    access_protocol says which protocol was used; the pace check, with what parameters. When \
    DG14 offers it, chip authentication runs after EF.SOD (the chip_authentication check: \
    passed, failed, not_offered, not_supported, not_trusted or skipped); a chip that fails it \
    (a possible clone) is still read, the check fails and a warning goes to stderr. Active \
    Authentication runs when the chip has DG15 (the active_authentication check, the same \
    outcomes; its challenge is random here, bound to the station's chain in the daemon), with \
    the same warning for a possible clone.\n\nExit \
    status: 0 read (JSON on stdout); 3 no card on the reader; 4 no reader or no pcscd; 5 access \
    refused (wrong MRZ or CAN, or PACE with parameters countersign does not support); 6 the read \
    failed (card removed, communication error); 7 the card is not a travel document."
)]
pub struct ReadDocumentArgs {
    /// The reader: a substring of its PC/SC name (e.g. "ACR1252" or "Virtual PCD 00 00").
    #[arg(long)]
    reader: String,
    /// The MRZ as printed on the data page (lines separated by newlines or not at all).
    #[arg(long, conflicts_with_all = ["doc_number", "birth", "expiry"])]
    mrz: Option<String>,
    /// Document number as printed.
    #[arg(long, requires_all = ["birth", "expiry"])]
    doc_number: Option<String>,
    /// Birth date, YYMMDD or YYYY-MM-DD.
    #[arg(long)]
    birth: Option<String>,
    /// Expiry date, YYMMDD or YYYY-MM-DD.
    #[arg(long)]
    expiry: Option<String>,
    /// The card access number printed on the data page (six digits): PACE's password instead
    /// of the MRZ.
    #[arg(long)]
    can: Option<String>,
    /// Trusted CSCA certificates for passive authentication (PEM, DER or an ICAO master list);
    /// repeatable. Added to `[pcsc] csca_files` of --config when given.
    #[arg(long)]
    csca: Vec<PathBuf>,
    /// A configuration whose `[pcsc] csca_files` are trusted too.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Write the evidence (face.jpg, the original face, EF.SOD, the data groups) to this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep trying for up to this many seconds while there is no card (0: once).
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// Do not run chip authentication (the check says `skipped`; for measurements).
    #[arg(long)]
    no_chip_auth: bool,
    /// Do not run Active Authentication (the check says `skipped`, DG15 is not read; for
    /// measurements).
    #[arg(long)]
    no_active_auth: bool,
    /// Ask for Active Authentication's answer with an extended Le (reader and chip must support
    /// extended length); otherwise a short Le and GET RESPONSE pieces.
    #[arg(long)]
    extended_length: bool,
}

struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

pub fn run(args: ReadDocumentArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn");
    match read(&args) {
        Ok(json) => {
            writeln!(std::io::stdout().lock(), "{json}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            eprintln!("countersign read-document: {}", f.message);
            Ok(ExitCode::from(f.code))
        }
    }
}

fn key_of(args: &ReadDocumentArgs) -> Result<MrzKey, Failure> {
    let key = match (&args.mrz, &args.doc_number, &args.birth, &args.expiry) {
        (Some(mrz), ..) => MrzKey::from_mrz_text(mrz),
        (None, Some(n), Some(b), Some(e)) => MrzKey::new(n, b, e),
        _ => {
            return Err(fail(
                2,
                "give --mrz, or --doc-number with --birth and --expiry",
            ));
        }
    };
    key.map_err(|e| fail(2, format!("the MRZ is not usable: {e}")))
}

fn read(args: &ReadDocumentArgs) -> Result<serde_json::Value, Failure> {
    let key = key_of(args)?;
    let mut files = args.csca.clone();
    if let Some(path) = &args.config {
        let config = crate::config::load(path).map_err(|e| fail(2, e.to_string()))?;
        if let Some(p) = &config.pcsc {
            files.extend(p.csca_files.iter().cloned());
        }
    }
    let csca = pcsc::load_csca(&files).map_err(|e| fail(2, format!("CSCA: {e}")))?;
    let settings = ReadSettings {
        can: args
            .can
            .as_deref()
            .map(icao9303::pace::parse_can)
            .transpose()
            .map_err(|e| fail(2, format!("--can: {e}")))?,
        skip_chip_authentication: args.no_chip_auth,
        skip_active_authentication: args.no_active_auth,
        extended_length: args.extended_length,
        ..ReadSettings::default()
    };
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let (capture, read) = loop {
        match pcsc::read_document(&args.reader, &key, csca.as_ref(), &settings) {
            Ok(done) => break done,
            Err(DocumentError::NoCard(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(failure_of(e)),
        }
    };
    // A clerk running the command sees a failed chip authentication even without reading the
    // JSON.
    for (protocol, outcome) in [
        ("chip authentication", &read.chip_authentication),
        ("Active Authentication", &read.active_authentication),
    ] {
        if outcome.is_warning() {
            eprintln!(
                "countersign read-document: WARNING: {protocol} {}: {}",
                outcome.status(),
                outcome.detail()
            );
        }
    }
    let mut evidence = Vec::new();
    for e in &capture.evidence {
        let mut entry = serde_json::json!({
            "role": e.role,
            "media_type": e.media_type,
            "size": e.bytes.len(),
            "sha256": crate::record::chain_hash(&e.bytes),
        });
        if let Some(dir) = &args.out {
            let name = file_name(&e.role, &e.media_type);
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(dir.join(&name), &e.bytes))
                .map_err(|err| {
                    fail(
                        1,
                        format!("cannot write {}: {err}", dir.join(&name).display()),
                    )
                })?;
            entry["file"] = name.into();
        }
        evidence.push(entry);
    }
    let mut json = serde_json::to_value(&capture.identity).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        object.insert("devices".into(), serde_json::json!([capture.device]));
        object.insert("evidence".into(), evidence.into());
        object.insert(
            "read".into(),
            serde_json::json!({
                "secure_messaging": read.sm_cipher,
                "pace": read.pace.as_ref().map(|(params, _)| params),
                "access_apdus": read.stats.access_apdus,
                "access_ms": read.stats.access_time.as_millis() as u64,
                "chip_authentication": read.chip_authentication.status(),
                "chip_authentication_apdus": read.stats.ca_apdus,
                "chip_authentication_ms": read.stats.ca_time.as_millis() as u64,
                "active_authentication": read.active_authentication.status(),
                "active_authentication_apdus": read.stats.aa_apdus,
                "active_authentication_ms": read.stats.aa_time.as_millis() as u64,
                "apdus": read.stats.apdus,
                "ms": read.stats.total.as_millis() as u64,
                "bytes": read.com.len() + read.sod.len() + read.data_groups.iter().map(|(_, b)| b.len()).sum::<usize>(),
            }),
        );
    }
    Ok(json)
}

fn file_name(role: &str, media_type: &str) -> String {
    let ext = match media_type {
        "image/jpeg" => "jpg",
        "image/jp2" => "jp2",
        "image/j2c" => "j2c",
        _ => "bin",
    };
    format!("{role}.{ext}")
}

fn failure_of(e: DocumentError) -> Failure {
    let code = match &e {
        DocumentError::NoCard(_) => EXIT_NO_CARD,
        DocumentError::NoService(_) | DocumentError::NoReader(..) | DocumentError::Unsupported => {
            EXIT_NO_READER
        }
        DocumentError::Read(ReadError::Access(
            AccessError::WrongKey { .. }
            | AccessError::WrongCan { .. }
            | AccessError::PaceOnly { .. }
            | AccessError::Refused { .. },
        )) => EXIT_ACCESS_REFUSED,
        DocumentError::Read(ReadError::NotAnEmrtd { .. }) => EXIT_NOT_A_DOCUMENT,
        DocumentError::Read(ReadError::ReaderGone { .. }) => EXIT_NO_READER,
        DocumentError::Read(_) => EXIT_READ_FAILED,
    };
    fail(code, e.to_string())
}
