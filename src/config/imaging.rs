//! `[imaging]`: how captured pages are processed (`crate::imaging`): output mode, resolution,
//! page size, JPEG quality and the limits of the quality warnings shown at the counter.

use serde::{Deserialize, Serialize};

use super::model::Bounded;
use crate::imaging::{Mode, PageSize, ProcessOptions, QualityThresholds};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImagingConfig {
    /// `colour` (default), `grey` or `bw`.
    #[serde(default)]
    pub mode: Mode,
    /// Output resolution, written into each JPEG (JFIF density).
    #[serde(default = "default_dpi")]
    pub dpi: Bounded<50, 600>,
    /// `a4` (default), `a5`, `letter`, or `detected` (the document's own aspect).
    #[serde(default)]
    pub page: PageSize,
    #[serde(default = "default_quality")]
    pub jpeg_quality: Bounded<1, 100>,
    /// Blurred below this sharpness (Laplacian variance of the page's detailed tiles).
    #[serde(default = "default_sharpness")]
    pub min_sharpness: Limit,
    /// Too dark below this paper brightness (0–255).
    #[serde(default = "default_brightness")]
    pub min_brightness: Limit,
    /// Glare above this percentage of the page washed out (luma ≥ 250).
    #[serde(default = "default_clipped")]
    pub max_clipped_percent: Limit,
    /// Cut off when a corner is closer to the frame edge than this percentage of its shorter side.
    #[serde(default = "default_margin")]
    pub edge_margin_percent: Limit,
    /// The pixel budget of one page: larger images are refused from their header, before any
    /// decoding, and kept as captured (bounds one page's transient memory, docs/capture.md).
    #[serde(default = "default_megapixels")]
    pub max_megapixels: Bounded<1, 100>,
}

impl Default for ImagingConfig {
    fn default() -> Self {
        ImagingConfig {
            mode: Mode::default(),
            dpi: default_dpi(),
            page: PageSize::default(),
            jpeg_quality: default_quality(),
            min_sharpness: default_sharpness(),
            min_brightness: default_brightness(),
            max_clipped_percent: default_clipped(),
            edge_margin_percent: default_margin(),
            max_megapixels: default_megapixels(),
        }
    }
}

impl ImagingConfig {
    pub fn options(&self) -> ProcessOptions {
        ProcessOptions {
            mode: self.mode,
            dpi: self.dpi.get() as u32,
            page: self.page,
            jpeg_quality: self.jpeg_quality.get() as u8,
            quality: QualityThresholds {
                min_sharpness: self.min_sharpness.0,
                min_brightness: self.min_brightness.0,
                max_clipped_percent: self.max_clipped_percent.0,
                edge_margin_percent: self.edge_margin_percent.0,
            },
            max_megapixels: self.max_megapixels.get() as u32,
        }
    }
}

/// A finite, non-negative number (integers are accepted).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Limit(pub f32);

impl From<Limit> for f64 {
    fn from(l: Limit) -> f64 {
        f64::from(l.0)
    }
}

impl TryFrom<f64> for Limit {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v.is_finite() && (0.0..=1e6).contains(&v) {
            Ok(Limit(v as f32))
        } else {
            Err(format!("must be a number from 0 to 1000000, found {v}"))
        }
    }
}

fn default_dpi() -> Bounded<50, 600> {
    Bounded(300)
}
fn default_quality() -> Bounded<1, 100> {
    Bounded(85)
}
fn default_sharpness() -> Limit {
    Limit(QualityThresholds::default().min_sharpness)
}
fn default_brightness() -> Limit {
    Limit(QualityThresholds::default().min_brightness)
}
fn default_clipped() -> Limit {
    Limit(QualityThresholds::default().max_clipped_percent)
}
fn default_megapixels() -> Bounded<1, 100> {
    Bounded(u64::from(crate::imaging::DEFAULT_MEGAPIXELS))
}
fn default_margin() -> Limit {
    Limit(QualityThresholds::default().edge_margin_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let c: ImagingConfig = toml::from_str("").unwrap();
        assert_eq!(c.options(), ProcessOptions::default());
        let c: ImagingConfig =
            toml::from_str("mode = \"bw\"\ndpi = 200\npage = \"detected\"\nmin_sharpness = 80")
                .unwrap();
        let o = c.options();
        assert_eq!((o.mode, o.dpi, o.page), (Mode::Bw, 200, PageSize::Detected));
        assert_eq!(o.quality.min_sharpness, 80.0);
        assert_eq!(o.max_megapixels, crate::imaging::DEFAULT_MEGAPIXELS);
        let c: ImagingConfig = toml::from_str("max_megapixels = 20").unwrap();
        assert_eq!(c.options().max_megapixels, 20);
        assert!(toml::from_str::<ImagingConfig>("max_megapixels = 0").is_err());
        assert!(toml::from_str::<ImagingConfig>("max_megapixels = 101").is_err());
        assert!(toml::from_str::<ImagingConfig>("dpi = 20").is_err());
        assert!(toml::from_str::<ImagingConfig>("mode = \"sepia\"").is_err());
        assert!(toml::from_str::<ImagingConfig>("min_brightness = -1").is_err());
        assert!(toml::from_str::<ImagingConfig>("colour = true").is_err());
    }
}
