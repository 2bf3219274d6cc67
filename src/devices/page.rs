//! A page from any capture source (camera, scanner, hot folder) into evidence: the standard
//! Huffman tables inserted into a DHT-less frame first (before anything hashes or stores it),
//! then the imaging pipeline. The record gets the processed page as role `page` (`image/jpeg`)
//! and the frame or file as captured as `page_original`, so the archive can always go back to
//! the source. What the pipeline cannot take (a PDF from a hot folder, a file that is not a
//! decodable image) is kept unchanged as the `page`, with the reason in the report: a page is
//! never dropped for failing to process.

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
    let raw = if media_type == "image/jpeg" {
        match imaging::ensure_huffman_tables(&raw) {
            std::borrow::Cow::Owned(repaired) => {
                report.dht_inserted = true;
                repaired
            }
            std::borrow::Cow::Borrowed(_) => raw,
        }
    } else {
        raw
    };
    report.original_bytes = raw.len();
    match imaging::process(&raw, opts) {
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
