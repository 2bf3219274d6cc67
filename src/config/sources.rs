//! The configuration's files: the main file and its drop-ins (`conf.d/*.toml` beside it, in
//! lexical order), merged at the TOML table level. Every key and value keeps its origin, so an
//! error found anywhere (syntax, type, range, a check across keys) names the file, line and
//! column where the offending text is.
//!
//! Each file's spans are shifted into one virtual address space (file `i` starts at `base[i]`),
//! so the merged table can be handed to the ordinary deserializer and any span it reports maps
//! back to exactly one file.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::ConfigError;

/// Tables whose keys are device names: the same device defined in two files is an error
/// (rather than one file silently changing another's device).
const DEVICE_TABLES: &[&[&str]] = &[
    &["id_readers"],
    &["folders"],
    &["pcsc", "readers"],
    &["cameras"],
    &["scanners"],
];

/// One configuration file's text and where its spans start in the merged address space.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    base: usize,
}

/// The files of one configuration, in merge order (main file first).
pub struct Sources {
    pub files: Vec<Source>,
}

impl Sources {
    /// Reads `main` and the `*.toml` files of `conf.d/` beside it (names starting with `.` are
    /// skipped, so editors' temporary files are not read).
    pub fn read(main: &Path) -> Result<Sources, ConfigError> {
        let mut paths = vec![main.to_path_buf()];
        let dir = main.parent().unwrap_or(Path::new(".")).join("conf.d");
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let mut dropins: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
                        !name.starts_with('.') && name.ends_with(".toml") && p.is_file()
                    })
                    .collect();
                dropins.sort();
                paths.extend(dropins);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ConfigError::whole_file(
                    &dir,
                    format!("cannot read the drop-in directory: {e}"),
                ));
            }
        }
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::whole_file(&path, format!("cannot read the configuration file: {e}"))
            })?;
            files.push((path, text));
        }
        Ok(Self::from_texts(files))
    }

    /// Sources from texts already in memory (tests, `config::parse`).
    pub fn from_texts(files: Vec<(PathBuf, String)>) -> Sources {
        let mut base = 0;
        let files = files
            .into_iter()
            .map(|(path, text)| {
                let source = Source { path, text, base };
                // One byte of gap, so the end of one file is not the start of the next.
                base += source.text.len() + 1;
                source
            })
            .collect();
        Sources { files }
    }

    /// The file a merged-space offset belongs to, and the 1-based line and column in it.
    fn locate(&self, offset: usize) -> (&Path, usize, usize) {
        let file = self
            .files
            .iter()
            .rev()
            .find(|f| f.base <= offset)
            .unwrap_or(&self.files[0]);
        let (line, column) = super::line_column(&file.text, offset - file.base.min(offset));
        (&file.path, line, column)
    }

    /// An error at a merged-space span (or, without one, in the main file).
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: String,
    ) -> ConfigError {
        let key = key.filter(|k| !k.is_empty() && k != ".");
        match span {
            Some(span) => {
                let (file, line, column) = self.locate(span.start);
                ConfigError {
                    file: file.to_path_buf(),
                    line: Some(line),
                    column: Some(column),
                    key,
                    message,
                }
            }
            None => ConfigError {
                file: self.files[0].path.clone(),
                line: None,
                column: None,
                key,
                message,
            },
        }
    }

    /// Parses every file and merges them in order: tables merge key by key, a later value
    /// replaces an earlier one, a device defined twice is an error.
    pub fn merged(&self) -> Result<Spanned<DeTable<'_>>, ConfigError> {
        let mut root = DeTable::new();
        for file in &self.files {
            let table = DeTable::parse(&file.text).map_err(|e| {
                self.error(
                    e.span().map(|s| s.start + file.base..s.end + file.base),
                    None,
                    e.message().to_string(),
                )
            })?;
            let table = shift_table(table.into_inner(), file.base);
            merge(&mut root, table, &mut Vec::new(), self)?;
        }
        let end = self.files.last().map_or(0, |f| f.base + f.text.len());
        Ok(Spanned::new(0..end, root))
    }
}

fn shift_span(span: Range<usize>, base: usize) -> Range<usize> {
    span.start + base..span.end + base
}

fn shift_value<'i>(value: Spanned<DeValue<'i>>, base: usize) -> Spanned<DeValue<'i>> {
    let span = shift_span(value.span(), base);
    let inner = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, base)),
        DeValue::Array(a) => DeValue::Array(
            a.into_iter()
                .map(|v| shift_value(v, base))
                .collect::<DeArray<'i>>(),
        ),
        other => other,
    };
    Spanned::new(span, inner)
}

fn shift_table(table: DeTable<'_>, base: usize) -> DeTable<'_> {
    table
        .into_iter()
        .map(|(k, v)| {
            let span = shift_span(k.span(), base);
            (Spanned::new(span, k.into_inner()), shift_value(v, base))
        })
        .collect()
}

fn merge<'i>(
    into: &mut DeTable<'i>,
    from: DeTable<'i>,
    path: &mut Vec<String>,
    sources: &Sources,
) -> Result<(), ConfigError> {
    let devices = DEVICE_TABLES
        .iter()
        .any(|t| t.len() == path.len() && t.iter().zip(path.iter()).all(|(a, b)| a == b));
    for (key, value) in from {
        let name = key.get_ref().to_string();
        let dotted = path
            .iter()
            .chain([&name])
            .cloned()
            .collect::<Vec<_>>()
            .join(".");
        let Some((earlier_key, earlier)) = into.get_key_value(name.as_str()) else {
            into.insert(key, value);
            continue;
        };
        if devices {
            let (file, line, column) = sources.locate(earlier_key.span().start);
            return Err(sources.error(
                Some(key.span()),
                Some(dotted),
                format!(
                    "this device is already defined in {}:{line}:{column}; define each device in one file",
                    file.display()
                ),
            ));
        }
        match (earlier.get_ref(), value.get_ref()) {
            (DeValue::Table(_), DeValue::Table(_)) => {
                if let (DeValue::Table(from), Some(slot)) =
                    (value.into_inner(), into.get_mut(name.as_str()))
                    && let DeValue::Table(earlier) = slot.get_mut()
                {
                    path.push(name);
                    merge(earlier, from, path, sources)?;
                    path.pop();
                }
            }
            (DeValue::Table(_), _) | (_, DeValue::Table(_)) => {
                let (file, line, column) = sources.locate(earlier_key.span().start);
                return Err(sources.error(
                    Some(key.span()),
                    Some(dotted),
                    format!(
                        "is a {} here but a {} in {}:{line}:{column}",
                        value.get_ref().type_str(),
                        earlier.get_ref().type_str(),
                        file.display()
                    ),
                ));
            }
            _ => {
                // A later file wins; the key's origin moves with the value.
                into.remove(name.as_str());
                into.insert(key, value);
            }
        }
    }
    Ok(())
}
