//! `[scanners.<name>]`: SANE scanners (sheet-fed or flatbed), driven through `scanimage`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    /// The SANE device name as `scanimage -L` lists it (`fujitsu:fi-7160:12345`, `test:0`).
    pub device: String,
    /// `--source` (backend-specific: `ADF`, `ADF Duplex`, `Automatic Document Feeder`,
    /// `Flatbed`); default: the backend's.
    #[serde(default)]
    pub source: Option<String>,
    /// `--mode` (backend-specific: `Color`, `Gray`, `Lineart`); default: the backend's.
    #[serde(default)]
    pub scan_mode: Option<String>,
    /// `--resolution` in dpi.
    #[serde(default = "default_resolution")]
    pub resolution: Bounded<50, 1200>,
    /// The file format scanimage writes: jpeg, png or tiff.
    #[serde(default)]
    pub format: ScanFormat,
    /// Scan every sheet in the feeder (`--batch`) instead of one page.
    #[serde(default)]
    pub feeder: bool,
    /// A feeder batch stops after this many pages.
    #[serde(default = "default_max_pages")]
    pub max_pages: Bounded<1, 1000>,
    /// Further scanimage options, passed as given (e.g. `["-x", "210", "-y", "297"]`).
    #[serde(default)]
    pub options: Vec<String>,
    /// The scanimage program.
    #[serde(default = "default_scanimage")]
    pub scanimage: PathBuf,
    /// `SANE_CONFIG_DIR` for scanimage (which backends it loads); default: SANE's own.
    #[serde(default)]
    pub sane_config_dir: Option<PathBuf>,
    /// scanimage is killed when it makes no progress for this long.
    #[serde(default = "default_page_timeout")]
    pub page_timeout_secs: Bounded<5, 3600>,
    /// Try a scan this often by itself (a feeder with paper in it is scanned; an empty one is
    /// quiet); 0: only on request (`countersign capture`, the case system's `capture`).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: Bounded<0, 86400>,
    /// A larger page is refused.
    #[serde(default = "default_max_page")]
    pub max_page_bytes: Bounded<1024, 1073741824>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanFormat {
    #[default]
    Jpeg,
    Png,
    Tiff,
}

impl ScanFormat {
    pub fn page_format(self) -> sane::PageFormat {
        match self {
            Self::Jpeg => sane::PageFormat::Jpeg,
            Self::Png => sane::PageFormat::Png,
            Self::Tiff => sane::PageFormat::Tiff,
        }
    }
}

fn default_resolution() -> Bounded<50, 1200> {
    Bounded(300)
}
fn default_poll() -> Bounded<0, 86400> {
    Bounded(0)
}
fn default_max_pages() -> Bounded<1, 1000> {
    Bounded(100)
}
fn default_scanimage() -> PathBuf {
    PathBuf::from("scanimage")
}
fn default_page_timeout() -> Bounded<5, 3600> {
    Bounded(120)
}
fn default_max_page() -> Bounded<1024, 1073741824> {
    Bounded(256 * 1024 * 1024)
}

impl ScannerConfig {
    /// Returns the dotted key and the message of the first problem.
    pub(super) fn validate(&self, name: &str) -> Result<(), (String, String)> {
        let key = |k: &str| format!("scanners.{name}.{k}");
        if self.device.trim().is_empty() {
            return Err((key("device"), "must not be empty".into()));
        }
        if self.scanimage.as_os_str().is_empty() {
            return Err((key("scanimage"), "must not be empty".into()));
        }
        Ok(())
    }

    /// The driver's options; scans run in `work_dir`.
    pub fn scanimage_options(&self, work_dir: PathBuf) -> sane::ScanimageOptions {
        sane::ScanimageOptions {
            program: self.scanimage.clone(),
            device: self.device.clone(),
            source: self.source.clone(),
            mode: self.scan_mode.clone(),
            resolution: Some(self.resolution.get() as u32),
            format: self.format.page_format(),
            extra_args: self.options.clone(),
            sane_config_dir: self.sane_config_dir.clone(),
            page_timeout: self.page_timeout_secs.secs(),
            work_dir,
            max_pages: self.max_pages.get() as u32,
            max_page_bytes: self.max_page_bytes.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ScannerConfig, String> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| e.message().to_string())?;
        let c: ScannerConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: {}", e.path(), e.inner().message()))?;
        c.validate("feeder").map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(c)
    }

    #[test]
    fn defaults_and_driver_options() {
        let c = parse("device = \"test:0\"\nfeeder = true\nsource = \"ADF\"\nformat = \"png\"\n")
            .unwrap();
        let o = c.scanimage_options("/tmp".into());
        assert_eq!(o.device, "test:0");
        assert_eq!(o.format, sane::PageFormat::Png);
        assert_eq!(o.resolution, Some(300));
        assert_eq!(o.source.as_deref(), Some("ADF"));
        assert_eq!(o.page_timeout.as_secs(), 120);
        assert_eq!(c.poll_interval_secs.get(), 0);
        assert!(parse("device = \"\"\n").unwrap_err().contains("device"));
        assert!(parse("device = \"x\"\nformat = \"pdf\"\n").is_err());
        assert!(parse("device = \"x\"\nresolution = 20\n").is_err());
    }
}
