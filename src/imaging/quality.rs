//! Quality figures of a page and the warnings the counter shows: no document, blurred, too dark,
//! glare (clipped highlights), cut off at the frame edge.

use serde::{Deserialize, Serialize};

use super::geom::Pt;
use super::plane::Plane;

/// Limits for the warnings (`[imaging]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityThresholds {
    /// Below this sharpness (Laplacian variance of the page's most detailed tiles at the output
    /// resolution) the page is reported blurred.
    pub min_sharpness: f32,
    /// Below this paper brightness (95th percentile of the page's luma, 0–255) it is too dark.
    pub min_brightness: f32,
    /// Above this share of the page at full white (luma ≥ 250), in percent: glare.
    pub max_clipped_percent: f32,
    /// A corner closer than this to the frame's edge (percent of the shorter side): cut off.
    pub edge_margin_percent: f32,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            min_sharpness: 120.0,
            min_brightness: 110.0,
            max_clipped_percent: 2.0,
            edge_margin_percent: 0.5,
        }
    }
}

/// Measured figures, reported with every page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quality {
    /// See [`QualityThresholds::min_sharpness`].
    pub sharpness: f32,
    /// 95th percentile of the page's luma.
    pub brightness: f32,
    /// Percent of the page at luma ≥ 250.
    pub clipped_percent: f32,
    /// Smallest distance of a corner to the frame's edge, in input pixels (0 when no document).
    pub edge_margin_px: f32,
    /// Share of the frame covered by the document, percent.
    pub document_percent: f32,
    /// The input's resolution across the document at the output page size (dots per inch):
    /// below the output dpi the page was upsampled.
    pub source_dpi: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    NoDocument,
    Blurred,
    TooDark,
    Glare,
    CutOff,
}

/// A warning with a short reason for the counter's screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityWarning {
    pub kind: WarningKind,
    pub reason: String,
}

/// Brightness (p95) and clipped percentage of the small image inside `quad` (or everywhere).
pub fn exposure(small: &Plane, quad: Option<&[Pt; 4]>) -> (f32, f32) {
    let mut hist = [0u64; 256];
    let inside = |x: f64, y: f64| {
        quad.is_none_or(|q| {
            let (mut pos, mut neg) = (true, true);
            for i in 0..4 {
                let (a, b) = (q[i], q[(i + 1) % 4]);
                let v = (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0);
                pos &= v >= 0.0;
                neg &= v <= 0.0;
            }
            pos || neg
        })
    };
    let step = ((small.w * small.h) / 250_000).max(1);
    for y in (0..small.h).step_by(step.min(4)) {
        for x in (0..small.w).step_by(step.min(4)) {
            if inside(x as f64 + 0.5, y as f64 + 0.5) {
                hist[usize::from(small.at(x, y))] += 1;
            }
        }
    }
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return (0.0, 0.0);
    }
    let mut acc = 0;
    let mut p95 = 255;
    for (v, &c) in hist.iter().enumerate() {
        acc += c;
        if acc * 100 >= total * 95 {
            p95 = v;
            break;
        }
    }
    let clipped: u64 = hist[250..].iter().sum();
    (p95 as f32, (clipped as f64 * 100.0 / total as f64) as f32)
}

/// The page's sharpness from its tiles: the 90th percentile (detailed tiles, not blank paper).
pub fn sharpness(tiles: &[f32]) -> f32 {
    if tiles.is_empty() {
        return 0.0;
    }
    let mut t = tiles.to_vec();
    t.sort_by(f32::total_cmp);
    t[(t.len() * 9 / 10).min(t.len() - 1)]
}

/// The warnings for figures `q`; `short_side` is the frame's shorter side in pixels.
pub fn warnings(
    q: &Quality,
    found: bool,
    th: &QualityThresholds,
    short_side: f32,
) -> Vec<QualityWarning> {
    let mut out = Vec::new();
    let mut warn = |kind, reason: String| out.push(QualityWarning { kind, reason });
    if !found {
        warn(
            WarningKind::NoDocument,
            "no document found: the whole frame was kept; place the page flat inside the frame"
                .into(),
        );
    }
    if q.sharpness < th.min_sharpness {
        warn(
            WarningKind::Blurred,
            format!(
                "blurred (sharpness {:.0}, needs {:.0}): hold still and let the camera focus",
                q.sharpness, th.min_sharpness
            ),
        );
    }
    if q.brightness < th.min_brightness {
        warn(
            WarningKind::TooDark,
            format!(
                "too dark (paper brightness {:.0} of 255, needs {:.0}): add light",
                q.brightness, th.min_brightness
            ),
        );
    }
    if q.clipped_percent > th.max_clipped_percent {
        warn(
            WarningKind::Glare,
            format!(
                "glare: {:.1}% of the page is washed out (limit {:.1}%); tilt the page or dim the light",
                q.clipped_percent, th.max_clipped_percent
            ),
        );
    }
    if found && q.edge_margin_px < th.edge_margin_percent / 100.0 * short_side {
        warn(
            WarningKind::CutOff,
            "page cut off at the edge of the frame: move it fully into view".into(),
        );
    }
    out
}
