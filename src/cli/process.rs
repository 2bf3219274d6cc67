//! `countersign process IMAGE... --out DIR`: the document pipeline on files. Prints one JSON
//! object per input (corners, skew, quality figures and warnings, outputs, time per stage) and
//! writes the cleaned page as `DIR/<name>.jpg`; with `--pdf`, also `DIR/pages.pdf` of all pages.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use crate::config;
use crate::imaging::{self, Mode, PageSize, ProcessOptions};

#[derive(Debug, Args)]
#[command(
    after_help = "Each input gives one JSON line: {input, found, corners (input pixels, clockwise \
    from the page's top-left), skew_degrees, width, height, quality, warnings [{kind, reason}], \
    outputs, timings_ms}, or {input, error}. Exit status: 0 every input processed (warnings \
    included); 1 some input could not be read or decoded."
)]
pub struct ProcessArgs {
    /// Images: JPEG (also DHT-less MJPEG frames), PNG or TIFF.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where the pages go (created if missing; same-named files are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Output mode (default: the configuration's, else colour).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Output resolution, 50 to 600 (default: the configuration's, else 300).
    #[arg(long)]
    dpi: Option<u32>,
    /// Page size (default: the configuration's, else a4).
    #[arg(long, value_enum)]
    page: Option<PageSize>,
    /// JPEG quality 1 to 100 (default: the configuration's, else 85).
    #[arg(long)]
    jpeg_quality: Option<u8>,
    /// Also write DIR/pages.pdf with every page, the JPEGs embedded unchanged.
    #[arg(long)]
    pdf: bool,
    /// Take defaults and quality thresholds from this configuration's [imaging] section.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let mut opts = match &args.config {
        Some(path) => config::load(path)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .imaging
            .options(),
        None => ProcessOptions::default(),
    };
    opts.mode = args.mode.unwrap_or(opts.mode);
    opts.dpi = args.dpi.unwrap_or(opts.dpi);
    opts.page = args.page.unwrap_or(opts.page);
    opts.jpeg_quality = args.jpeg_quality.unwrap_or(opts.jpeg_quality);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let mut names = HashSet::new();
    let mut pages = Vec::new();
    let mut lines = Vec::new();
    let mut failed = false;
    for input in &args.inputs {
        match one(input, &args.out, &opts, &mut names) {
            Ok((line, jpeg)) => {
                pages.push(jpeg);
                lines.push(line);
            }
            Err(e) => {
                failed = true;
                lines.push(json!({"input": input, "error": format!("{e:#}")}));
            }
        }
    }
    let pdf_path = args.out.join("pages.pdf");
    if args.pdf && !pages.is_empty() {
        let refs: Vec<&[u8]> = pages.iter().map(Vec::as_slice).collect();
        std::fs::write(&pdf_path, imaging::pdf(&refs, opts.dpi))
            .with_context(|| format!("cannot write {}", pdf_path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    for mut line in lines {
        if args.pdf && line.get("error").is_none() {
            line["pdf"] = json!(pdf_path);
        }
        writeln!(stdout, "{line}")?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn one(
    input: &Path,
    out: &Path,
    opts: &ProcessOptions,
    names: &mut HashSet<String>,
) -> anyhow::Result<(Value, Vec<u8>)> {
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let p = imaging::process(&bytes, opts)?;
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "page".into());
    let mut name = format!("{stem}.jpg");
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{stem}-{n}.jpg");
        n += 1;
    }
    let path = out.join(&name);
    std::fs::write(&path, &p.jpeg).with_context(|| format!("cannot write {}", path.display()))?;
    let timings: serde_json::Map<String, Value> = p
        .timings
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!((v * 10.0).round() / 10.0)))
        .collect();
    let line = json!({
        "input": input,
        "found": p.found,
        "corners": p.corners.map(|c| c.map(|(x, y)| [round1(x), round1(y)])),
        "skew_degrees": round1(p.skew_degrees),
        "width": p.width,
        "height": p.height,
        "quality": p.quality,
        "warnings": p.warnings,
        "outputs": [path],
        "timings_ms": timings,
    });
    Ok((line, p.jpeg))
}

fn round1(v: f32) -> f64 {
    (f64::from(v) * 10.0).round() / 10.0
}
