//! Configuration: the TOML model, loading with precise errors, and validation.
//!
//! Errors name the file, line, column and key (`countersign.toml:12:8: mqtt.port: ...`).
//! Unknown keys are errors: a typo must not silently fall back to a default. Every key is
//! documented in `config/countersign.toml`. The main file's drop-ins (`conf.d/*.toml`) are
//! merged in lexical order (`sources.rs`); which settings a reload applies is `reload.rs`.

mod camera;
mod crypto;
mod folder;
mod id_reader;
mod imaging;
mod model;
mod mqtt;
mod outbox;
mod pcsc;
pub mod reload;
mod scanner;
mod service;
mod session;
mod sources;

pub use model::*;
pub use sources::Sources;

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration error with its location. `countersign check-config` exits 78 (EX_CONFIG).
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error about a whole file (unreadable, missing).
    pub(crate) fn whole_file(path: &Path, message: String) -> Self {
        ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message,
        }
    }
}

/// Exit status for an invalid configuration (sysexits.h EX_CONFIG).
pub const EX_CONFIG: i32 = 78;

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Parses configuration text; `file` is used in error messages only (no drop-ins).
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    from_sources(&Sources::from_texts(vec![(
        file.to_path_buf(),
        text.to_string(),
    )]))
}

/// Reads and parses a configuration file and its drop-ins (`conf.d/*.toml` beside it).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_files(path).map(|(config, _)| config)
}

/// As [`load`], also returning the files read, in merge order.
pub fn load_with_files(path: &Path) -> Result<(Config, Vec<PathBuf>), ConfigError> {
    let sources = Sources::read(path)?;
    let config = from_sources(&sources)?;
    Ok((config, sources.files.into_iter().map(|f| f.path).collect()))
}

fn from_sources(sources: &Sources) -> Result<Config, ConfigError> {
    let merged = sources.merged()?;
    // Kept to locate errors found after deserializing (checks across keys).
    let table = merged.get_ref().clone();
    let deserializer = toml::de::Deserializer::from(merged);
    let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        sources.error(inner.span(), Some(key), inner.message().to_string())
    })?;
    config.validate().map_err(|(key, message)| {
        let span = find_key_span(&table, &key);
        sources.error(span, Some(key), message)
    })?;
    Ok(config)
}

/// Locates a dotted key such as `mqtt.port` in the merged table, for errors found after parsing.
fn find_key_span(table: &toml::de::DeTable<'_>, dotted: &str) -> Option<std::ops::Range<usize>> {
    let mut parts = dotted.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        let (key, value) = current.iter().find(|(k, _)| k.get_ref() == part)?;
        if parts.peek().is_none() {
            return Some(key.span());
        }
        match value.get_ref() {
            toml::de::DeValue::Table(t) => current = t,
            _ => return Some(value.span()),
        }
    }
    None
}

/// The effective configuration as TOML: every key with its value after defaults and drop-ins.
pub fn to_toml(config: &Config) -> Result<String, String> {
    toml::to_string(config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
