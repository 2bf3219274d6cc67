//! `[folders.<name>]`: hot folders. Other software (a scanner's "scan to folder", a copier) drops
//! files into `path`; each complete file becomes a capture with one `page` blob.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::Bounded;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// The directory watched (required). Picked-up files move to `done_dir`, files that cannot be
    /// taken (unknown type, too large, unreadable) to `failed_dir`; nothing is ever deleted.
    pub path: PathBuf,
    /// Default: `<path>/done`.
    #[serde(default)]
    pub done_dir: Option<PathBuf>,
    /// Default: `<path>/failed`.
    #[serde(default)]
    pub failed_dir: Option<PathBuf>,
    /// A file is complete once its size and modification time have not changed for this long.
    /// (Files renamed into place are complete at once, but this costs them only the settle time.)
    #[serde(default = "default_settle")]
    pub settle_ms: Bounded<0, 600000>,
    /// How often the directory is listed.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: Bounded<50, 60000>,
    /// Larger files go to `failed_dir`.
    #[serde(default = "default_max_file")]
    pub max_file_bytes: Bounded<1, 1073741824>,
    /// Extensions taken (case-insensitive); others go to `failed_dir`. Names starting with `.` and
    /// ending in `.tmp`, `.part`, `.partial`, `.crdownload` or `~` are left alone (being written).
    #[serde(default = "default_extensions")]
    pub extensions: Vec<String>,
    /// Run images (JPEG, PNG, TIFF) through the page pipeline (`[imaging]`): the record gets the
    /// cleaned page and the file as dropped (`page_original`). `false` keeps files as they are
    /// (scanner software that already delivers clean pages). PDF and OFD are always kept as they are.
    #[serde(default = "default_true")]
    pub process: bool,
}

impl FolderConfig {
    pub fn done_dir(&self) -> PathBuf {
        self.done_dir
            .clone()
            .unwrap_or_else(|| self.path.join("done"))
    }
    pub fn failed_dir(&self) -> PathBuf {
        self.failed_dir
            .clone()
            .unwrap_or_else(|| self.path.join("failed"))
    }
}

fn default_true() -> bool {
    true
}
fn default_settle() -> Bounded<0, 600000> {
    Bounded(2000)
}
fn default_poll() -> Bounded<50, 60000> {
    Bounded(500)
}
fn default_max_file() -> Bounded<1, 1073741824> {
    Bounded(64 * 1024 * 1024)
}
fn default_extensions() -> Vec<String> {
    ["jpg", "jpeg", "png", "tif", "tiff", "pdf", "ofd"]
        .map(String::from)
        .to_vec()
}

impl FolderConfig {
    /// Returns the dotted key and the message of the first problem.
    pub(super) fn validate(&self, name: &str) -> Result<(), (String, String)> {
        let key = |k: &str| format!("folders.{name}.{k}");
        if self.path.as_os_str().is_empty() {
            return Err((key("path"), "must not be empty".into()));
        }
        if self.extensions.is_empty() {
            return Err((key("extensions"), "must list at least one extension".into()));
        }
        if let Some(bad) = self
            .extensions
            .iter()
            .find(|e| e.is_empty() || e.len() > 16 || !e.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err((
                key("extensions"),
                format!("{bad:?} is not an extension: letters and digits, without the dot"),
            ));
        }
        if self.done_dir() == self.failed_dir() {
            return Err((key("failed_dir"), "must differ from done_dir".into()));
        }
        Ok(())
    }
}
