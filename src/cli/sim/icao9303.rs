//! `countersign sim icao9303`: the card emulator on vpcd.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use icao9303::cipher::Cipher;
use icao9303::ec::Curve;
use icao9303::sim::vpcd::{self, VpcdEnd};
use icao9303::sim::{
    AaKeyKind, Chip, ChipOptions, DocumentKind, DocumentSpec, TestDocument, TestPki,
};
use icao9303::sod::HashAlg;

#[derive(Debug, Args)]
pub struct Icao9303Args {
    /// vpcd's address (pcscd's reader.conf `DEVICENAME /dev/null:<port>`; slot 2 is port + 1).
    #[arg(long, default_value = "127.0.0.1:35963")]
    vpcd: SocketAddr,
    /// passport-jpeg, passport-jp2, passport-j2k or exit-entry-permit.
    #[arg(long, default_value = "passport-jpeg", value_parser = parse_kind)]
    document: DocumentKind,
    /// A document profile instead of --document and the protocol options: `china-passport`
    /// (raw JPEG 2000 face, BAC only, RSA-2048 Active Authentication, no DG14, a chip strict
    /// about Le without extended length) or `hong-kong` (PACE, ECDSA P-256 Active
    /// Authentication, DG14 without a chip authentication key). Fault options still apply.
    #[arg(long, value_parser = ["china-passport", "hong-kong"])]
    profile: Option<String>,
    /// DG15 and Active Authentication with this key: RSA-1024, RSA-2048 or ECDSA-P256.
    #[arg(long, value_parser = parse_aa_key)]
    active_auth: Option<AaKeyKind>,
    /// The hash of RSA Active Authentication: SHA-1 (trailer BC), SHA-224, SHA-256, SHA-384 or
    /// SHA-512 (two-byte trailers).
    #[arg(long, default_value = "SHA-1", value_parser = parse_hash)]
    aa_hash: HashAlg,
    /// An Active Authentication clone: DG15 as the genuine document's, the chip signs with a
    /// key of its own.
    #[arg(long)]
    aa_cloned: bool,
    /// A clone bringing its own DG15 (and holding its key): EF.SOD's hash list is rewritten, so
    /// EF.SOD's signature fails.
    #[arg(long)]
    aa_own_dg15: bool,
    /// Break EF.SOD's signature (one byte of it changed) while every hash still matches.
    #[arg(long)]
    break_sod_signature: bool,
    /// Never answer more than Le: longer answers in 61xx pieces fetched by GET RESPONSE.
    #[arg(long)]
    strict_le: bool,
    /// Refuse extended-length APDUs (6700).
    #[arg(long)]
    no_extended_length: bool,
    /// Write the test CSCA certificate (PEM) here: give it to `read-document --csca` or
    /// `[pcsc] csca_files`.
    #[arg(long)]
    csca_out: Option<PathBuf>,
    /// Only make a test CSCA, write it to --csca-out and exit (a CSCA the document does not
    /// chain to, for tests).
    #[arg(long, requires = "csca_out")]
    csca_only: bool,
    /// Pad the JPEG face to at least this many bytes (DG2 size for read-time measurements).
    #[arg(long, default_value_t = 0)]
    face_bytes: usize,
    /// Change one byte of this data group after EF.SOD is signed (passive authentication fails).
    #[arg(long)]
    tamper_dg: Option<u8>,
    /// EF.CardAccess offers PACE (BAC still works).
    #[arg(long)]
    pace_offered: bool,
    /// The chip offers PACE only and refuses BAC (EXTERNAL AUTHENTICATE answers 6A88).
    #[arg(long)]
    pace_only: bool,
    /// PACE with the chip authentication mapping (PACE-CAM, AES): the chip proves during PACE
    /// that it holds DG14's chip authentication key (with --cloned-chip it cannot).
    #[arg(long, conflicts_with = "no_chip_auth")]
    pace_cam: bool,
    /// PACE's curve (ECDH generic mapping): P-256, brainpoolP256r1, P-384 or brainpoolP384r1.
    #[arg(long, default_value = "P-256", value_parser = parse_curve)]
    pace_curve: Curve,
    /// PACE's cipher: 3DES, AES-128, AES-192 or AES-256.
    #[arg(long, default_value = "AES-128", value_parser = parse_cipher)]
    pace_cipher: Cipher,
    /// The card access number (six digits), PACE's other password.
    #[arg(long, default_value = "123456")]
    can: String,
    /// No DG14 and no chip authentication (as documents without it, e.g. Chinese passports).
    #[arg(long)]
    no_chip_auth: bool,
    /// Chip authentication's curve (ECDH): P-256, brainpoolP256r1, P-384 or brainpoolP384r1.
    #[arg(long, default_value = "P-256", value_parser = parse_curve, conflicts_with = "no_chip_auth")]
    ca_curve: Curve,
    /// Chip authentication's cipher: 3DES (MSE:Set KAT), AES-128, AES-192 or AES-256 (MSE:Set AT
    /// and GENERAL AUTHENTICATE).
    #[arg(long, default_value = "AES-128", value_parser = parse_cipher, conflicts_with = "no_chip_auth")]
    ca_cipher: Cipher,
    /// A cloned chip: DG14 and EF.SOD as the genuine document's, but the chip does not hold the
    /// private key of DG14's public key, so chip authentication fails.
    #[arg(long, conflicts_with = "no_chip_auth")]
    cloned_chip: bool,
    /// A card without the travel document application (as a bank card or a staff badge).
    #[arg(long)]
    not_a_document: bool,
    /// Pull the card after this many APDUs (card removed mid-read).
    #[arg(long)]
    remove_after_apdus: Option<u32>,
    /// Answer READ BINARY for more than this many bytes with 6700 (short-length readers).
    #[arg(long)]
    max_le: Option<usize>,
    /// Delay before each reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    reply_delay_ms: u64,
    /// Leave the reader after this many milliseconds (default: stay until stopped).
    #[arg(long)]
    present_ms: Option<u64>,
    /// How long to keep trying to reach vpcd, in seconds.
    #[arg(long, default_value_t = 10)]
    connect_secs: u64,
}

fn parse_kind(text: &str) -> Result<DocumentKind, String> {
    DocumentKind::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = DocumentKind::ALL.iter().map(|(n, _)| *n).collect();
        format!("{text:?}: use one of {}", names.join(", "))
    })
}

fn parse_aa_key(text: &str) -> Result<AaKeyKind, String> {
    AaKeyKind::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = AaKeyKind::ALL.iter().map(|(n, _)| *n).collect();
        format!("{text:?}: use one of {}", names.join(", "))
    })
}

fn parse_hash(text: &str) -> Result<HashAlg, String> {
    HashAlg::from_name(text)
        .ok_or_else(|| format!("{text:?}: use SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512"))
}

fn parse_curve(text: &str) -> Result<Curve, String> {
    Curve::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Curve::ALL.iter().map(|c| c.name()).collect();
        format!("{text:?}: use one of {}", names.join(", "))
    })
}

fn parse_cipher(text: &str) -> Result<Cipher, String> {
    Cipher::from_name(text)
        .ok_or_else(|| format!("{text:?}: use one of 3DES, AES-128, AES-192, AES-256"))
}

/// One JSON line on stdout per stage (`ready` with the MRZ, then `end`), for scripts and tests.
fn say(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

pub fn run(args: Icao9303Args) -> anyhow::Result<ExitCode> {
    let pki = TestPki::generate(
        if args.document == DocumentKind::ExitEntryPermit
            || args.profile.as_deref() == Some("china-passport")
        {
            "CN"
        } else {
            "UT"
        },
    );
    if let Some(path) = &args.csca_out {
        std::fs::write(path, pki.csca_pem())
            .with_context(|| format!("cannot write the CSCA to {}", path.display()))?;
    }
    if args.csca_only {
        return Ok(ExitCode::SUCCESS);
    }
    let can = icao9303::pace::parse_can(&args.can).map_err(|e| anyhow::anyhow!("--can: {e}"))?;
    let (mut spec, strict_profile) = match args.profile.as_deref() {
        Some("china-passport") => (DocumentSpec::chinese_passport(), true),
        Some(_) => (DocumentSpec::hong_kong_passport(), false),
        None => (
            DocumentSpec {
                pace_offered: args.pace_offered,
                pace_only: args.pace_only,
                pace_cam: args.pace_cam,
                pace_curve: args.pace_curve,
                pace_cipher: args.pace_cipher,
                chip_auth: !args.no_chip_auth,
                ca_curve: args.ca_curve,
                ca_cipher: args.ca_cipher,
                active_auth: args.active_auth,
                ..DocumentSpec::new(args.document)
            },
            false,
        ),
    };
    spec.face_bytes = args.face_bytes;
    spec.tamper_dg = args.tamper_dg;
    spec.can = can;
    spec.cloned_chip = args.cloned_chip;
    spec.aa_hash = args.aa_hash;
    spec.aa_cloned = args.aa_cloned;
    spec.aa_own_dg15 = args.aa_own_dg15;
    spec.break_sod_signature = args.break_sod_signature;
    let doc = TestDocument::generate(&spec, &pki);
    say(serde_json::json!({
        "event": "ready",
        "mrz": doc.mrz,
        "document_number": doc.key.document_number,
        "birth_date": doc.key.birth_date,
        "expiry_date": doc.key.expiry_date,
        "can": doc.can,
        "pace": doc.pace.as_ref().map(|p| p.describe()),
        "chip_authentication": doc.chip_auth.as_ref().map(|k| k.describe()),
        "cloned_chip": args.cloned_chip,
        "active_authentication": spec.active_auth.map(|k| AaKeyKind::ALL.iter().find(|(_, a)| *a == k).map_or("", |(n, _)| *n)),
        "aa_cloned": args.aa_cloned || args.aa_own_dg15,
        "dg2_bytes": doc.file(0x0102).map_or(0, <[u8]>::len),
    }));
    let mut chip = Chip::new(
        doc,
        ChipOptions {
            max_le: args.max_le,
            remove_after_apdus: args.remove_after_apdus,
            reply_delay: Duration::from_millis(args.reply_delay_ms),
            fixed: None,
            no_application: args.not_a_document,
            strict_le: args.strict_le || strict_profile,
            no_extended_length: args.no_extended_length || strict_profile,
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (vpcd_addr, connect, present) = (
        args.vpcd,
        Duration::from_secs(args.connect_secs),
        args.present_ms.map(Duration::from_millis),
    );
    let (end, apdus) = runtime.block_on(async {
        let sim_stop = stop.clone();
        let mut sim = tokio::task::spawn_blocking(move || {
            let end = vpcd::serve(vpcd_addr, &mut chip, &sim_stop, connect, present);
            (end, chip.apdus)
        });
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            done = &mut sim => return anyhow::Ok(done?),
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        stop.store(true, Ordering::Relaxed);
        anyhow::Ok(sim.await?)
    })?;
    let end = end?;
    let end = match end {
        VpcdEnd::Stopped => "stopped",
        VpcdEnd::Removed => "removed",
        VpcdEnd::Closed => "closed",
    };
    say(serde_json::json!({"event": "end", "end": end, "apdus": apdus}));
    Ok(ExitCode::SUCCESS)
}
