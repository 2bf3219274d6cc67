//! Document imaging: a camera frame or scan in, a clean page out. Decode (JPEG, including
//! DHT-less MJPEG; PNG; TIFF) → find the document on a small image → perspective warp of the full
//! frame to the page size at the requested dpi → colour, grey or black-and-white → JPEG with the
//! JFIF density set, plus quality figures and warnings the counter can show. A frame without a
//! document is still returned whole (deskewed), flagged `no_document`: a page is never dropped.
//!
//! Speed on 2 cores comes from: the detection image decoded DCT-scaled on one core while the
//! other decodes the full frame; planes kept in YCbCr from decoder to encoder; a fixed-point warp;
//! and warp + encode split into strips across cores, joined with restart markers.

#[doc(hidden)]
pub mod bench;
mod codec;
mod deskew;
mod detect;
mod edges;
mod error;
mod geom;
mod jpeg;
mod pdf;
mod plane;
mod quality;
mod render;
pub mod testgen;
mod warp;

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use codec::{CODEC, DEFAULT_MEGAPIXELS, MAX_MEGAPIXELS};
pub use error::ImagingError;
pub use geom::iou;
pub use jpeg::{density, ensure_huffman_tables};
pub use pdf::{pdf, try_pdf};
pub use quality::{Quality, QualityThresholds, QualityWarning, WarningKind};

use geom::{Homography, Pt, dist, order_corners};
use plane::Plane;

/// Colour, grey or black-and-white output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Colour (needed for seals, 红头 documents and photos).
    #[default]
    Colour,
    /// Greyscale.
    Grey,
    /// Black and white (locally adaptive threshold), stored as a greyscale JPEG.
    Bw,
}

/// The output page size. The page is portrait or landscape as the document lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PageSize {
    /// 210 × 297 mm.
    #[default]
    A4,
    /// 148 × 210 mm.
    A5,
    /// 8.5 × 11 in.
    Letter,
    /// The document's own aspect at the input's resolution.
    Detected,
}

impl PageSize {
    fn inches(self) -> Option<(f64, f64)> {
        match self {
            PageSize::A4 => Some((210.0 / 25.4, 297.0 / 25.4)),
            PageSize::A5 => Some((148.0 / 25.4, 210.0 / 25.4)),
            PageSize::Letter => Some((8.5, 11.0)),
            PageSize::Detected => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessOptions {
    pub mode: Mode,
    /// Output resolution, written as the JFIF density (50 to 600).
    pub dpi: u32,
    pub page: PageSize,
    /// JPEG quality 1 to 100.
    pub jpeg_quality: u8,
    pub quality: QualityThresholds,
    /// The pixel budget of one input: larger images are refused from their header, before any
    /// decoding (1 to [`MAX_MEGAPIXELS`]).
    pub max_megapixels: u32,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            mode: Mode::Colour,
            dpi: 300,
            page: PageSize::A4,
            jpeg_quality: 85,
            quality: QualityThresholds::default(),
            max_megapixels: DEFAULT_MEGAPIXELS,
        }
    }
}

/// The processed page.
#[derive(Debug, Clone)]
pub struct Processed {
    /// Whether a document outline was found (else `jpeg` is the whole frame).
    pub found: bool,
    /// The document's corners in input pixel coordinates, clockwise from the page's top-left.
    pub corners: Option<[(f32, f32); 4]>,
    /// Rotation corrected, degrees, positive clockwise: the document's top edge when found,
    /// the text lines' angle otherwise.
    pub skew_degrees: f32,
    /// The page as JPEG (baseline, JFIF density = dpi).
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub quality: Quality,
    pub warnings: Vec<QualityWarning>,
    /// Wall time per stage in ms (`*_cpu` entries: CPU time summed over the parallel workers).
    pub timings: Vec<(&'static str, f64)>,
}

/// Runs the pipeline on one image (JPEG, PNG or TIFF bytes).
pub fn process(input: &[u8], opts: &ProcessOptions) -> Result<Processed, ImagingError> {
    if !(50..=600).contains(&opts.dpi) {
        return Err(ImagingError::Options(format!(
            "dpi must be between 50 and 600, found {}",
            opts.dpi
        )));
    }
    if !(1..=100).contains(&opts.jpeg_quality) {
        return Err(ImagingError::Options(format!(
            "JPEG quality must be between 1 and 100, found {}",
            opts.jpeg_quality
        )));
    }
    let start = Instant::now();
    let mut timings = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |name: &'static str, timings: &mut Vec<(&'static str, f64)>| {
            let now = Instant::now();
            timings.push((name, (now - last).as_secs_f64() * 1000.0));
            last = now;
        }
    };

    let bytes = ensure_huffman_tables(input);
    let colour = opts.mode == Mode::Colour;
    let decoded = codec::decode(&bytes, colour, opts.max_megapixels)?;
    lap("decode", &mut timings);

    let frame = &decoded.frame;
    let k = decoded.reduction as f64;
    let (fw, fh) = (frame.width as f64, frame.height as f64);
    let smoothed = edges::smooth(&decoded.small, 1);
    let found = detect::detect(&smoothed);
    let corners: Option<[Pt; 4]> = found
        .as_ref()
        .map(|f| order_corners(f.quad.map(|(x, y)| (x * k, y * k))));
    lap("detect", &mut timings);

    // Geometry of the output page.
    let dpi = f64::from(opts.dpi);
    let (h, width, height, skew, source_dpi) = match corners {
        Some(c) => {
            let top = (dist(c[0], c[1]) + dist(c[3], c[2])) / 2.0;
            let side = (dist(c[0], c[3]) + dist(c[1], c[2])) / 2.0;
            let landscape = top > side;
            let (w, h) = match opts.page.inches() {
                Some((a, b)) => {
                    let (a, b) = if landscape { (b, a) } else { (a, b) };
                    ((a * dpi).round(), (b * dpi).round())
                }
                None => (top.round().max(1.0), side.round().max(1.0)),
            };
            let page = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
            let hom = Homography::from_points(&page, &c)
                .ok_or_else(|| ImagingError::Options("degenerate document outline".into()))?;
            let skew = ((c[1].1 - c[0].1).atan2(c[1].0 - c[0].0)
                + (c[2].1 - c[3].1).atan2(c[2].0 - c[3].0))
            .to_degrees()
                / 2.0;
            let source_dpi = top.max(side) / (w.max(h) / dpi);
            (hom, w as usize, h as usize, skew, source_dpi)
        }
        None => {
            let skew = deskew::skew_degrees(&smoothed).unwrap_or(0.0);
            let hom = if skew.abs() >= 0.1 {
                Homography::rotation_about(skew, (fw / 2.0, fh / 2.0))
            } else {
                Homography::IDENTITY
            };
            (hom, frame.width, frame.height, skew, dpi)
        }
    };
    let (brightness, clipped) = exposure_of(&decoded.small, found.as_ref().map(|f| &f.quad));
    let background =
        (opts.mode == Mode::Bw).then(|| page_background(&decoded.small, k, &h, width, height));
    lap("quality", &mut timings);

    let rendered = render::render(&render::Job {
        frame,
        h,
        width,
        height,
        colour,
        background: background.as_ref(),
        quality: opts.jpeg_quality,
    })?;
    lap("warp_encode", &mut timings);
    timings.push(("warp_cpu", rendered.warp_ms));
    timings.push(("encode_cpu", rendered.encode_ms));
    let mut jpeg = rendered.jpeg;
    jpeg::set_density(&mut jpeg, opts.dpi as u16);

    let edge_margin = corners.map_or(0.0, |c| {
        c.iter()
            .map(|p| p.0.min(p.1).min(fw - p.0).min(fh - p.1))
            .fold(f64::MAX, f64::min)
            .max(0.0)
    });
    let document_percent = corners.map_or(0.0, |c| geom::signed_area(&c).abs() / (fw * fh) * 100.0);
    let q = Quality {
        sharpness: quality::sharpness(&rendered.tiles),
        brightness,
        clipped_percent: clipped,
        edge_margin_px: edge_margin as f32,
        document_percent: document_percent as f32,
        source_dpi: source_dpi as f32,
    };
    let warnings = quality::warnings(&q, corners.is_some(), &opts.quality, fw.min(fh) as f32);
    timings.push(("total", start.elapsed().as_secs_f64() * 1000.0));
    Ok(Processed {
        found: corners.is_some(),
        corners: corners.map(|c| c.map(|(x, y)| (x as f32, y as f32))),
        skew_degrees: skew as f32,
        jpeg,
        width: width as u32,
        height: height as u32,
        quality: q,
        warnings,
        timings,
    })
}

fn exposure_of(small: &Plane, quad: Option<&[Pt; 4]>) -> (f32, f32) {
    quality::exposure(small, quad)
}

/// The paper's brightness over the page, coarse (1/16 of the page): the small image warped to
/// the page, then a local maximum (paper, not ink) and smoothing.
fn page_background(small: &Plane, k: f64, h: &Homography, width: usize, height: usize) -> Plane {
    let (bw, bh) = (width.div_ceil(16).max(1), height.div_ceil(16).max(1));
    let to_small = Homography::scale_translate(1.0 / k, 1.0 / k, 0.0, 0.0).then_after(h);
    let m = warp::plane_map(
        &to_small,
        (1.0, 1.0),
        (bw as f64 / width as f64, bh as f64 / height as f64),
    );
    let mut coarse = Plane::new(bw, bh);
    warp::warp_rows(small, &m, &mut coarse.data, bw, bw, 0, bh, 255);
    let mut max = Plane::new(bw, bh);
    for y in 0..bh {
        for x in 0..bw {
            let mut v = 0;
            for yy in y.saturating_sub(2)..(y + 3).min(bh) {
                for xx in x.saturating_sub(2)..(x + 3).min(bw) {
                    v = v.max(coarse.at(xx, yy));
                }
            }
            max.data[y * bw + x] = v;
        }
    }
    edges::smooth(&max, 2)
}

#[cfg(test)]
mod tests;
