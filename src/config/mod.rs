//! Configuration: the TOML model, loading with precise errors, and validation.
//!
//! Errors name the file, line, column and key (`countersign.toml:12:8: mqtt.port: ...`).
//! Unknown keys are errors: a typo must not silently fall back to a default. Every key is
//! documented in `config/countersign.toml`.

mod crypto;
mod folder;
mod id_reader;
mod model;
mod mqtt;
mod outbox;
mod pcsc;

pub use model::*;

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

/// Exit status for an invalid configuration (sysexits.h EX_CONFIG).
pub const EX_CONFIG: i32 = 78;

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Parses configuration text; `file` is used in error messages only.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let located = |span: Option<std::ops::Range<usize>>, key: Option<String>, message: String| {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_column(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key: key.filter(|k| !k.is_empty() && k != "."),
            message,
        }
    };
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|e| located(e.span(), None, e.message().to_string()))?;
    let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        located(inner.span(), Some(key), inner.message().to_string())
    })?;
    config.validate().map_err(|(key, message)| {
        let span = find_key_span(text, &key);
        located(span, Some(key), message)
    })?;
    Ok(config)
}

/// Reads and parses a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read the configuration file: {e}"),
    })?;
    parse(&text, path)
}

/// Locates a dotted key such as `mqtt.port` in the text, for errors found after parsing.
fn find_key_span(text: &str, dotted: &str) -> Option<std::ops::Range<usize>> {
    let table = toml::de::DeTable::parse(text).ok()?;
    let mut parts = dotted.split('.').peekable();
    let mut current = table.get_ref();
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

#[cfg(test)]
mod tests;
