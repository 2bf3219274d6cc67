//! `countersign read-card`: one card read, for admins and the field. Prints the identity as one
//! JSON object (the record's field names) and exits with a code that says what went wrong.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use ga467::card::CivilDate;
use ga467::reader::{PROBE_BAUDS, Reader, ReaderError, ReaderOptions};
use ga467::transport::SerialTransport;

use crate::config::{Baud, READER_BAUDS};
use crate::devices::id_reader::capture_of;
use crate::logging;
use crate::record::DeviceInfo;

/// Exit codes (documented in `--help`).
pub const EXIT_NO_CARD: u8 = 3;
pub const EXIT_NO_READER: u8 = 4;
pub const EXIT_TIMEOUT: u8 = 5;
pub const EXIT_PROTOCOL: u8 = 6;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 card read (JSON on stdout); 3 no card on the reader; \
    4 no reader (the port cannot be opened, or nothing answers SAM status 11 FF); 5 the reader \
    stopped answering (timeout); 6 protocol error (garbled replies, SAM fault, unexpected status, \
    unsupported reader protocol)."
)]
pub struct ReadCardArgs {
    /// The serial device of the reader.
    #[arg(long)]
    port: PathBuf,
    /// 115200, 57600, 38400, 19200, 9600, or "auto" to probe them in that order.
    #[arg(long, default_value = "auto", value_parser = parse_baud)]
    baud: Baud,
    /// Read the fingerprint templates too (30 10); they are printed base64 as `fingerprint`.
    #[arg(long)]
    fingerprint: bool,
    /// Keep looking for a card for up to this many seconds (0: look once).
    #[arg(long, default_value_t = 0)]
    wait: u64,
}

fn parse_baud(text: &str) -> Result<Baud, String> {
    if text == "auto" {
        return Ok(Baud::AUTO);
    }
    text.parse::<u32>()
        .ok()
        .filter(|b| READER_BAUDS.contains(b))
        .map(Baud)
        .ok_or_else(|| format!("{text:?}: use auto, 115200, 57600, 38400, 19200 or 9600"))
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Timeouts before the reader ever answered mean "no reader"; after, "timeout".
    fn from_reader(e: ReaderError, answered: bool) -> Self {
        let code = match &e {
            ReaderError::Io { .. } | ReaderError::NoReader { .. } => EXIT_NO_READER,
            ReaderError::Timeout { .. } if !answered => EXIT_NO_READER,
            ReaderError::Timeout { .. } => EXIT_TIMEOUT,
            _ => EXIT_PROTOCOL,
        };
        Self::new(code, e.to_string())
    }
}

pub fn run(args: ReadCardArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn");
    match read(&args) {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{json}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            eprintln!("countersign read-card: {}", f.message);
            Ok(ExitCode::from(f.code))
        }
    }
}

fn read(args: &ReadCardArgs) -> Result<serde_json::Value, Failure> {
    let port = args.port.to_string_lossy();
    let first = args.baud.fixed().unwrap_or(PROBE_BAUDS[0]);
    let transport = SerialTransport::open(&port, first)
        .map_err(|e| Failure::new(EXIT_NO_READER, e.to_string()))?;
    let mut reader = Reader::new(
        transport,
        ReaderOptions {
            baud: first,
            fingerprint: args.fingerprint,
            appended_address: true,
            ..ReaderOptions::default()
        },
    );
    let baud = match args.baud.fixed() {
        Some(rate) => rate,
        None => reader
            .probe_baud(&PROBE_BAUDS)
            .map_err(|e| Failure::from_reader(e, false))?,
    };
    reader.start().map_err(|e| Failure::from_reader(e, false))?;
    let sam_id = reader.sam_id().map_err(|e| Failure::from_reader(e, true))?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut card = loop {
        match reader
            .try_read_card()
            .map_err(|e| Failure::from_reader(e, true))?
        {
            Some(card) => break card,
            None if Instant::now() >= deadline => {
                return Err(Failure::new(
                    EXIT_NO_CARD,
                    format!("no card on the reader at {port}"),
                ));
            }
            None => std::thread::sleep(Duration::from_millis(300)),
        }
    };
    card.appended_address = reader
        .read_appended_address()
        .map_err(|e| Failure::from_reader(e, true))?;
    let device = DeviceInfo {
        kind: "ga467".into(),
        name: "read-card".into(),
        sam_id: Some(sam_id.iter().map(|b| format!("{b:02x}")).collect()),
        detail: Some(format!("{port} at {baud} baud")),
    };
    let capture = capture_of(&card, &device, None, CivilDate::today_in_china());
    let mut json = serde_json::to_value(&capture.identity).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        object.insert("devices".into(), serde_json::json!([device]));
        for e in &capture.evidence {
            object.insert(e.role.clone(), BASE64.encode(&e.bytes).into());
        }
    }
    Ok(json)
}
