//! `countersign capture --source NAME --out DIR`: one capture from a configured camera or scanner,
//! without the daemon (like `read-card`): the source is opened from the configuration, a still
//! is taken (or the feeder's pages scanned), each page runs through the imaging pipeline and is
//! written to DIR as a JPEG, and one JSON object per page is printed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::config::{self, Config};
use crate::devices::camera as cam;
use crate::devices::page::Page;
use crate::devices::scanner;
use crate::imaging::{Mode, ProcessOptions};
use crate::logging;

/// Exit codes (documented in `--help`).
pub const EXIT_NO_SOURCE: u8 = 3;
pub const EXIT_BUSY: u8 = 4;
pub const EXIT_NO_DOCUMENT: u8 = 5;
pub const EXIT_DEVICE: u8 = 6;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 page(s) captured (one JSON object per page on stdout); 3 no such \
    source (not configured, or its device is not there); 4 the device is busy (another program \
    holds it); 5 no paper in the feeder, or no document found in the camera's view (the frame is \
    still written); 6 device error (paper jam, cover open, I/O error, timeout, crash, bad frames); \
    78 invalid configuration."
)]
pub struct CaptureArgs {
    /// A `[cameras.<name>]` or `[scanners.<name>]` of the configuration.
    #[arg(long)]
    source: String,
    /// Where the page JPEGs are written (created if missing; nothing is overwritten).
    #[arg(long)]
    out: PathBuf,
    /// The label printed with each page (and used in the file names).
    #[arg(long)]
    label: Option<String>,
    /// Output mode; default: `[imaging] mode`.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    #[arg(long, short, default_value = "/etc/countersign/countersign.toml")]
    config: PathBuf,
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

pub fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn");
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersign capture: {e}");
            return Ok(ExitCode::from(config::EX_CONFIG as u8));
        }
    };
    match capture(&args, &config) {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(f) => {
            eprintln!("countersign capture: {}", f.message);
            Ok(ExitCode::from(f.code))
        }
    }
}

fn capture(args: &CaptureArgs, config: &Config) -> Result<u8, Failure> {
    let mut opts = config.imaging.options();
    if let Some(mode) = args.mode {
        opts.mode = mode;
    }
    std::fs::create_dir_all(&args.out).map_err(|e| {
        fail(
            EXIT_DEVICE,
            format!("cannot create {}: {e}", args.out.display()),
        )
    })?;
    let started = Instant::now();
    let name = args.source.as_str();
    let (pages, kind) =
        if let Some((_, c)) = config.cameras.iter().find(|(n, _)| n.as_str() == name) {
            (camera_pages(c, args, &opts)?, "camera")
        } else if let Some((_, s)) = config.scanners.iter().find(|(n, _)| n.as_str() == name) {
            (scanner_pages(s, args, &opts)?, "scanner")
        } else {
            let folder = config.folders.keys().any(|n| n.as_str() == name);
            let mut known: Vec<&str> = config.cameras.keys().map(|n| n.as_str()).collect();
            known.extend(config.scanners.keys().map(|n| n.as_str()));
            return Err(fail(
                EXIT_NO_SOURCE,
                if folder {
                    format!(
                        "{name:?} is a hot folder: its files are taken by the daemon as they arrive"
                    )
                } else {
                    format!(
                        "no camera or scanner {name:?} in {} (configured: {})",
                        args.config.display(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    )
                },
            ));
        };
    let mut stdout = std::io::stdout().lock();
    let mut no_document = false;
    let count = pages.len();
    for (n, page) in pages.into_iter().enumerate() {
        let path = write_page(&args.out, name, args.label.as_deref(), n + 1, &page)
            .map_err(|e| fail(EXIT_DEVICE, e))?;
        // A scan is the document itself; only a camera's view can lack one.
        no_document |= kind == "camera" && page.report.found == Some(false);
        let line = json!({
            "source": name,
            "kind": kind,
            "label": args.label,
            "page": n + 1,
            "output": path,
            "report": page.report,
            "capture_ms": started.elapsed().as_millis() as u64,
        });
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
    Ok(if no_document || count == 0 {
        EXIT_NO_DOCUMENT
    } else {
        0
    })
}

fn camera_pages(
    config: &config::CameraConfig,
    args: &CaptureArgs,
    opts: &ProcessOptions,
) -> Result<Vec<Page>, Failure> {
    use camera::CameraError as E;
    let code = |e: &E| match e {
        E::NotFound { .. } | E::Unplugged { .. } | E::Replay { .. } => EXIT_NO_SOURCE,
        E::Busy { .. } => EXIT_BUSY,
        _ => EXIT_DEVICE,
    };
    let source = cam::source(config).map_err(|e| fail(code(&e), e.to_string()))?;
    let mut camera = cam::open(source, config).map_err(|(e, _)| fail(code(&e), e.to_string()))?;
    let frame = camera.still().map_err(|e| fail(code(&e), e.to_string()))?;
    camera.close();
    Ok(vec![cam::page_of(frame, args.label.clone(), opts)])
}

fn scanner_pages(
    config: &config::ScannerConfig,
    args: &CaptureArgs,
    opts: &ProcessOptions,
) -> Result<Vec<Page>, Failure> {
    use sane::{ScanError as E, Scanner as _};
    let mut driver = scanner::scanner(config);
    let scan = driver.scan(scanner::feed(config)).map_err(|e| {
        let code = match e {
            E::NoDocuments => EXIT_NO_DOCUMENT,
            E::NoDevice { .. } | E::Spawn { .. } => EXIT_NO_SOURCE,
            E::DeviceBusy => EXIT_BUSY,
            _ => EXIT_DEVICE,
        };
        fail(code, e.to_string())
    })?;
    if let Some(stopped) = &scan.stopped {
        // The pages before the stop are kept (and written); the operator learns why it stopped.
        eprintln!(
            "countersign capture: the feeder stopped after {} page(s): {stopped}",
            scan.pages.len()
        );
    }
    Ok(scan
        .pages
        .into_iter()
        .map(|p| {
            crate::devices::page::page(p.bytes, p.format.media_type(), args.label.clone(), opts)
        })
        .collect())
}

/// Writes the page (the processed JPEG, or the original when it could not be processed) under
/// a name not taken yet.
fn write_page(
    dir: &Path,
    source: &str,
    label: Option<&str>,
    number: usize,
    page: &Page,
) -> Result<PathBuf, String> {
    let evidence = page
        .evidence
        .iter()
        .find(|e| e.role == "page")
        .ok_or("no page evidence")?;
    let ext = match evidence.media_type.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        _ => "bin",
    };
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let stem = format!(
        "{}-{}-{number:03}",
        safe(source),
        label.map(safe).unwrap_or_else(|| "page".into())
    );
    for n in 0..10_000 {
        let name = if n == 0 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(&evidence.bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
        }
    }
    Err(format!("no free file name for {stem} in {}", dir.display()))
}
