//! A page from any capture source (camera, scanner, hot folder) into evidence: the standard
//! Huffman tables inserted into a DHT-less frame first (before anything hashes or stores it),
//! then the imaging pipeline. The record gets the processed page as role `page` (`image/jpeg`)
//! and the frame or file as captured as `page_original`, so the archive can always go back to
//! the source. What the pipeline cannot take (a PDF from a hot folder, a file that is not a
//! decodable image) is kept unchanged as the `page`, with the reason in the report: a page is
//! never dropped for failing to process.
//!
//! The pipeline runs behind `catch_unwind`: a page that makes it panic (a decoder bug reached by a
//! hostile file) is kept as captured with the reason, and the device thread that called goes on.
//! Images over the pixel budget (`[imaging] max_megapixels`) are refused from their header.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::Capture;
use crate::imaging::{self, ProcessOptions};
use crate::record::{DeviceInfo, Evidence};

/// A page ready for a capture, and what to tell about it.
#[derive(Debug)]
pub struct Page {
    pub evidence: Vec<Evidence>,
    pub report: PageReport,
}

/// What processing found, for logs, `countersign capture` and the capture summary (no content).
#[derive(Debug, Clone, Serialize)]
pub struct PageReport {
    /// Whether the pipeline ran on it.
    pub processed: bool,
    /// A document outline was found in the frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew_degrees: Option<f32>,
    /// Quality warnings: `kind: reason`.
    pub warnings: Vec<Warning>,
    /// Why it was kept unprocessed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Pipeline stages in ms.
    pub timings: Vec<(String, f64)>,
    /// The frame or file as captured: its media type and size (after the DHT repair).
    pub original_media_type: String,
    pub original_bytes: usize,
    /// The standard Huffman tables were inserted (a UVC MJPEG frame).
    pub dht_inserted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub kind: String,
    pub reason: String,
}

/// `opts` with a request's `mode` (`colour`, `grey` or `bw`: the `capture` command's argument).
pub fn with_mode(mut opts: ProcessOptions, mode: Option<&str>) -> Result<ProcessOptions, String> {
    if let Some(text) = mode {
        opts.mode = <imaging::Mode as clap::ValueEnum>::from_str(text, true)
            .map_err(|_| format!("unknown mode {text:?}: use colour, grey or bw"))?;
    }
    Ok(opts)
}

/// Media types the pipeline takes.
fn processable(media_type: &str) -> bool {
    matches!(media_type, "image/jpeg" | "image/png" | "image/tiff")
}

/// Repairs, processes and wraps one page.
pub fn page(raw: Vec<u8>, media_type: &str, label: Option<String>, opts: &ProcessOptions) -> Page {
    page_with(raw, media_type, label, opts, imaging::process)
}

/// The pipeline `page` runs (a parameter so tests can inject one that panics).
type Pipeline = fn(&[u8], &ProcessOptions) -> Result<imaging::Processed, imaging::ImagingError>;

/// What a panic carried, for the page's note: its message if it is text, cut short.
fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    text.chars().take(200).collect()
}

fn page_with(
    raw: Vec<u8>,
    media_type: &str,
    label: Option<String>,
    opts: &ProcessOptions,
    pipeline: Pipeline,
) -> Page {
    let mut report = PageReport {
        processed: false,
        found: None,
        width: None,
        height: None,
        skew_degrees: None,
        warnings: Vec::new(),
        note: None,
        timings: Vec::new(),
        original_media_type: media_type.to_string(),
        original_bytes: raw.len(),
        dht_inserted: false,
    };
    let evidence = |role: &str, media_type: &str, bytes: Vec<u8>| Evidence {
        role: role.into(),
        media_type: media_type.into(),
        bytes,
        identity: None,
        label: label.clone(),
    };
    if !processable(media_type) {
        report.note = Some(format!("{media_type} is kept as it is"));
        return Page {
            evidence: vec![evidence("page", media_type, raw)],
            report,
        };
    }
    let repaired = if media_type == "image/jpeg" {
        catch_unwind(|| match imaging::ensure_huffman_tables(&raw) {
            std::borrow::Cow::Owned(repaired) => Some(repaired),
            std::borrow::Cow::Borrowed(_) => None,
        })
        .unwrap_or(None)
    } else {
        None
    };
    let raw = match repaired {
        Some(repaired) => {
            report.dht_inserted = true;
            repaired
        }
        None => raw,
    };
    report.original_bytes = raw.len();
    // The pipeline only reads `raw` and `opts`: nothing it could leave half-changed is used after
    // a panic, so asserting unwind safety is sound.
    let outcome = catch_unwind(AssertUnwindSafe(|| pipeline(&raw, opts)))
        .unwrap_or_else(|p| Err(imaging::ImagingError::Panicked(panic_reason(p.as_ref()))));
    match outcome {
        Ok(p) => {
            report.processed = true;
            report.found = Some(p.found);
            report.width = Some(p.width);
            report.height = Some(p.height);
            report.skew_degrees = Some(p.skew_degrees);
            report.warnings = p
                .warnings
                .iter()
                .map(|w| Warning {
                    kind: serde_json::to_value(w.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_else(|| format!("{:?}", w.kind)),
                    reason: w.reason.clone(),
                })
                .collect();
            report.timings = p
                .timings
                .iter()
                .map(|(name, ms)| (name.to_string(), *ms))
                .collect();
            Page {
                evidence: vec![
                    evidence("page", "image/jpeg", p.jpeg),
                    evidence("page_original", media_type, raw),
                ],
                report,
            }
        }
        Err(e) => {
            report.note = Some(format!("not processed: {e}"));
            Page {
                evidence: vec![evidence("page", media_type, raw)],
                report,
            }
        }
    }
}

impl PageReport {
    /// One line for logs and the capture summary: size, outline, warnings; no content.
    pub fn summary(&self) -> String {
        let mut s = match (self.width, self.height) {
            (Some(w), Some(h)) => format!("page {w}x{h}"),
            _ => format!(
                "page {} {} bytes",
                self.original_media_type, self.original_bytes
            ),
        };
        if self.found == Some(false) {
            s.push_str(" (no document outline)");
        }
        if !self.warnings.is_empty() {
            let kinds: Vec<&str> = self.warnings.iter().map(|w| w.kind.as_str()).collect();
            s.push_str(&format!("; warnings: {}", kinds.join(", ")));
        }
        if let Some(note) = &self.note {
            s.push_str(&format!("; {note}"));
        }
        s
    }

    /// The warning kinds, for events.
    pub fn warning_kinds(&self) -> Vec<String> {
        self.warnings.iter().map(|w| w.kind.clone()).collect()
    }
}

/// A capture of one page from a camera or scanner.
pub fn capture(
    name: &str,
    kind: &str,
    detail: String,
    evidence: Vec<Evidence>,
    report: &PageReport,
) -> Capture {
    Capture {
        captured_at: SystemTime::now(),
        instant: Instant::now(),
        device: DeviceInfo {
            kind: kind.into(),
            name: name.into(),
            sam_id: None,
            detail: Some(detail),
        },
        identity: None,
        evidence,
        summary: report.summary(),
        warnings: report.warning_kinds(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blank greyscale PNG of `side`×`side` pixels: a few hundred KB for 100 MP.
    pub(crate) fn blank_png(side: u32) -> Vec<u8> {
        use image::ImageEncoder;
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        let pixels = vec![255u8; side as usize * side as usize];
        let mut png = Vec::new();
        PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::NoFilter)
            .write_image(&pixels, side, side, image::ExtendedColorType::L8)
            .unwrap();
        png
    }

    /// The PNG signature and an IHDR declaring `width`×`height` 8-bit RGB, then an IDAT that
    /// is not a zlib stream: only a decoder that never looks at the pixels refuses it for its size.
    fn png_header_only(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", b"not a zlib stream");
        chunk(&mut png, b"IEND", b"");
        png
    }

    #[test]
    fn an_image_over_the_pixel_budget_is_refused_from_its_header() {
        let opts = ProcessOptions::default();
        // 100 MP: over the default 64 MP budget. Its pixels are garbage: a Size error (not a
        // Decode error) proves it was refused before any decoding.
        let p = page(png_header_only(10_000, 10_000), "image/png", None, &opts);
        assert!(!p.report.processed);
        let note = p.report.note.clone().unwrap_or_default();
        assert!(
            note.contains("10000x10000") && note.contains("64 megapixels"),
            "{note}"
        );
        assert_eq!(p.evidence.len(), 1);
        assert_eq!(p.evidence[0].role, "page");
        // Within the budget, the same garbage reaches the decoder.
        let p = page(png_header_only(4_000, 4_000), "image/png", None, &opts);
        let note = p.report.note.clone().unwrap_or_default();
        assert!(note.contains("cannot decode PNG"), "{note}");
        // A real, blank 100 MP PNG (a small file) is refused the same way, and quickly.
        let png = blank_png(10_000);
        let start = Instant::now();
        let p = page(png, "image/png", None, &opts);
        let note = p.report.note.clone().unwrap_or_default();
        assert!(note.contains("outside the accepted size"), "{note}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // A lower budget from [imaging] max_megapixels applies too.
        let tight = ProcessOptions {
            max_megapixels: 1,
            ..opts
        };
        let p = page(blank_png(1_200), "image/png", None, &tight);
        let note = p.report.note.clone().unwrap_or_default();
        assert!(note.contains("1 megapixels"), "{note}");
    }

    fn panicking_pipeline(
        _: &[u8],
        _: &ProcessOptions,
    ) -> Result<imaging::Processed, imaging::ImagingError> {
        panic!("index out of bounds: injected by the test")
    }

    #[test]
    fn a_panic_in_the_pipeline_is_a_page_kept_as_captured_and_the_thread_goes_on() {
        let scene = imaging::testgen::scene(3, &imaging::testgen::SceneOptions::default());
        let jpeg = scene.jpeg.clone();
        // A device thread: two pages that panic the pipeline, then a good one.
        let worker = std::thread::spawn(move || {
            let opts = ProcessOptions::default();
            let mut pages = Vec::new();
            for _ in 0..2 {
                pages.push(page_with(
                    jpeg.clone(),
                    "image/jpeg",
                    Some("form".into()),
                    &opts,
                    panicking_pipeline,
                ));
            }
            pages.push(page(jpeg, "image/jpeg", Some("form".into()), &opts));
            pages
        });
        let pages = worker
            .join()
            .expect("the device thread survived the panics");
        for failed in &pages[..2] {
            assert!(!failed.report.processed);
            assert_eq!(failed.evidence.len(), 1);
            assert_eq!(failed.evidence[0].role, "page");
            assert_eq!(failed.evidence[0].bytes, scene.jpeg, "kept as captured");
            assert_eq!(failed.evidence[0].label.as_deref(), Some("form"));
            let summary = failed.report.summary();
            assert!(
                summary.contains("imaging pipeline failed") && summary.contains("injected"),
                "{summary}"
            );
        }
        assert!(pages[2].report.processed, "{:?}", pages[2].report);
    }

    #[test]
    fn a_pdf_and_an_undecodable_image_are_kept_unchanged() {
        let opts = ProcessOptions::default();
        let pdf = page(b"%PDF-1.7 ...".to_vec(), "application/pdf", None, &opts);
        assert_eq!(pdf.evidence.len(), 1);
        assert_eq!(pdf.evidence[0].role, "page");
        assert_eq!(pdf.evidence[0].bytes, b"%PDF-1.7 ...");
        assert!(!pdf.report.processed);
        let junk = page(
            vec![0xFF, 0xD8, 1, 2, 3],
            "image/jpeg",
            Some("x".into()),
            &opts,
        );
        assert_eq!(junk.evidence.len(), 1);
        assert_eq!(junk.evidence[0].media_type, "image/jpeg");
        assert_eq!(junk.evidence[0].label.as_deref(), Some("x"));
        assert!(
            junk.report.summary().contains("not processed"),
            "{}",
            junk.report.summary()
        );
    }

    #[test]
    fn a_dht_less_frame_is_repaired_processed_and_kept() {
        let scene = imaging::testgen::scene(7, &imaging::testgen::SceneOptions::default());
        let stripped = camera::frame::strip_huffman_tables(&scene.jpeg);
        assert!(!camera::frame::has_huffman_tables(&stripped));
        let p = page(
            stripped,
            "image/jpeg",
            Some("id_card".into()),
            &ProcessOptions::default(),
        );
        assert!(p.report.processed, "{:?}", p.report);
        assert!(p.report.dht_inserted);
        let roles: Vec<&str> = p.evidence.iter().map(|e| e.role.as_str()).collect();
        assert_eq!(roles, ["page", "page_original"]);
        assert!(camera::frame::has_huffman_tables(&p.evidence[1].bytes));
        assert!(
            p.evidence
                .iter()
                .all(|e| e.label.as_deref() == Some("id_card"))
        );
    }
}
