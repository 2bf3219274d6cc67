//! Hot folder intake. Other software (a scanner's "scan to folder", a copier, a phone app) drops
//! files into a directory; this crate decides when a file is complete, reads it once, and moves
//! it to `done/` or `failed/` when the caller says what became of it. It never deletes a file.
//!
//! A file is complete when its size and modification time have not changed for the settle time
//! (a file renamed into place is complete at once and only waits the settle time). Names that
//! look like files being written (`.name`, `*.tmp`, `*.part`, `*.partial`, `*.crdownload`,
//! `*~`) are left alone, and so is a file another process still has open for writing (seen
//! through `/proc/*/fdinfo`, for the processes this user may inspect), however long its writer
//! pauses. A file that cannot be read is tried again every [`UNREADABLE_RETRY`] and, after
//! [`UNREADABLE_ATTEMPTS`] failures, reported as unacceptable (moved to `failed/` with the reason,
//! never deleted). FIFOs, directories and symbolic links are never opened.
//!
//! The folder is writable by other software, so nothing seen by `scan` is trusted at `read`: the
//! file is opened without following a symbolic link and without blocking on a FIFO, the open
//! descriptor must be the regular file that settled (same device and inode), and at most
//! `max_file_bytes + 1` bytes are read from it. A symbolic link, FIFO, device or a file grown past
//! the limit is reported as unacceptable (moved to `failed/`), never read as a page.
//!
//! The caller commits what it read *before* calling [`HotFolder::finish`],
//! and recognises a file it committed before a crash by [`ReadyFile::key`] (a hash of name, size
//! and SHA-256: the name may be a citizen's and the key is stored for 30 days),
//! so a restart between the two neither loses nor duplicates the file. A file the caller was
//! processing when it died is recognised too ([`HotFolder::begin_processing`]), so a file that
//! crashes the pipeline goes to `failed/` instead of crashing it again after every restart.
//!
//! Plain synchronous Rust on `std::fs`; no knowledge of records, outboxes or MQTT.

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Options {
    pub settle: Duration,
    pub max_file_bytes: u64,
    /// Lower-case extensions without the dot.
    pub extensions: Vec<String>,
}

/// A complete file, read.
#[derive(Debug, Clone)]
pub struct ReadyFile {
    pub path: PathBuf,
    /// The file name (may hold personal data: log it at debug level only).
    pub name: String,
    pub bytes: Vec<u8>,
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256: String,
    pub media_type: &'static str,
}

impl ReadyFile {
    /// Identifies this file's content under this name, for crash reconciliation. Carries no
    /// name: see [`intake_key`].
    pub fn key(&self, folder: &str) -> String {
        intake_key(folder, &self.name, self.bytes.len() as u64, &self.sha256)
    }
}

/// The intake key of a file: `folder:<folder>:<hex SHA-256 of (name, size, content SHA-256)>`.
/// Deterministic (a restart recognises the file) but without the file name, which is often a
/// citizen's name or ID number. Guessing a name back needs the content's hash, which is kept
/// only inside encrypted records.
pub fn intake_key(folder: &str, name: &str, size: u64, sha256: &str) -> String {
    let mut h = Sha256::new();
    // NUL cannot occur in a file name, so the fields cannot run into each other.
    h.update(name.as_bytes());
    h.update([0]);
    h.update(size.to_string().as_bytes());
    h.update([0]);
    h.update(sha256.as_bytes());
    format!("folder:{folder}:{}", hex(&h.finalize()))
}

/// Why a complete file was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// Not now (it changed, was replaced, or a read failed): it is looked at again.
    Retry(String),
    /// Never: not a regular file, or larger than allowed. Move it to `failed/` with the reason.
    Unacceptable(String),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Retry(r) | Unread::Unacceptable(r) => f.write_str(r),
        }
    }
}

/// What went wrong reading a file, inside the driver.
enum Failure {
    /// Opening, stat or read failed: counts towards [`UNREADABLE_ATTEMPTS`].
    Io(String),
    /// Changed or replaced since it settled: settles again.
    Changed(String),
    /// Never to be read.
    Unacceptable(String),
}

/// The marker of the file being processed, in the watched directory (a dot name: never taken).
pub const PROCESSING_MARKER: &str = ".countersign-processing";

/// What a scan found.
#[derive(Debug)]
pub enum Found {
    /// Complete and acceptable: read it with [`HotFolder::read`].
    Complete(PathBuf),
    /// Complete but not acceptable (type, size): move it to `failed/` with the reason.
    Unacceptable(PathBuf, String),
}

/// How often a file that could not be read is tried again.
pub const UNREADABLE_RETRY: Duration = Duration::from_secs(5);
/// Failed reads before a file is given up on (moved to `failed/`).
pub const UNREADABLE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Observation {
    size: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a file replaced by another one is not the file that settled.
    id: (u64, u64),
}

impl Observation {
    fn of(meta: &std::fs::Metadata) -> Self {
        Observation {
            size: meta.len(),
            modified: meta.modified().ok(),
            id: (meta.dev(), meta.ino()),
        }
    }
}

/// One watched directory.
#[derive(Debug)]
pub struct HotFolder {
    dir: PathBuf,
    done: PathBuf,
    failed: PathBuf,
    options: Options,
    /// Last observation of each candidate and since when it has not changed.
    seen: HashMap<PathBuf, (Observation, Instant)>,
    /// Files to leave alone until then (the caller could not take them yet).
    deferred: HashMap<PathBuf, Instant>,
    /// Files that could not be read: failed attempts and the last error.
    unreadable: HashMap<PathBuf, (u32, String)>,
    /// The clock of the latest scan (reads are retried on the scan clock).
    last_scan: Option<Instant>,
    /// Files being processed when earlier runs died, by key: how many runs in a row died on
    /// each (from the marker).
    died_on: HashMap<String, u32>,
    /// The file being processed now, with the runs (this one included) that took it up.
    current: Option<(String, u32)>,
}

/// A file on which this many runs in a row died goes to `failed/`. One death proves nothing (a
/// SIGKILL, a power cut or an upgrade can land in any file's processing); three in a row is a
/// file that kills the process (an abort, a segfault in a C decoder, the OOM killer) and would
/// otherwise crash-loop the service.
pub const DEATHS_BEFORE_FAILED: u32 = 3;

/// The media type of a page by its extension.
pub fn media_type(extension: &str) -> &'static str {
    match extension.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "tif" | "tiff" => "image/tiff",
        "pdf" => "application/pdf",
        "ofd" => "application/ofd",
        "jp2" => "image/jp2",
        _ => "application/octet-stream",
    }
}

/// Names another program is still writing, by convention.
pub fn looks_in_progress(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".partial", ".crdownload", ".download"]
            .iter()
            .any(|s| lower.ends_with(s))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl HotFolder {
    /// Watches `dir`; creates `done` and `failed` when missing.
    pub fn open(dir: &Path, done: &Path, failed: &Path, options: Options) -> std::io::Result<Self> {
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ));
        }
        std::fs::create_dir_all(done)?;
        std::fs::create_dir_all(failed)?;
        let died_on = read_marker(&dir.join(PROCESSING_MARKER));
        Ok(HotFolder {
            dir: dir.to_path_buf(),
            done: done.to_path_buf(),
            failed: failed.to_path_buf(),
            options,
            seen: HashMap::new(),
            deferred: HashMap::new(),
            unreadable: HashMap::new(),
            last_scan: None,
            died_on,
            current: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lists the directory; returns the files that became complete, oldest first by name order
    /// of discovery (sorted by name, which scanners number in order).
    pub fn scan(&mut self, now: Instant) -> std::io::Result<Vec<Found>> {
        self.last_scan = Some(now);
        let mut present = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if looks_in_progress(&name) {
                continue;
            }
            present.push((entry.path(), name, meta));
        }
        present.sort_by(|a, b| a.1.cmp(&b.1));
        let mut found = Vec::new();
        let mut still_here = HashMap::new();
        for (path, name, meta) in present {
            if self.deferred.get(&path).is_some_and(|until| now < *until) {
                still_here.insert(
                    path.clone(),
                    self.seen
                        .get(&path)
                        .copied()
                        .unwrap_or((Observation::of(&meta), now)),
                );
                continue;
            }
            let observation = Observation::of(&meta);
            let since = match self.seen.get(&path) {
                Some((seen, since)) if *seen == observation => *since,
                _ => now,
            };
            still_here.insert(path.clone(), (observation, since));
            if now.duration_since(since) < self.options.settle {
                continue;
            }
            if let Some((attempts, error)) = self.unreadable.get(&path)
                && *attempts >= UNREADABLE_ATTEMPTS
            {
                found.push(Found::Unacceptable(
                    path,
                    format!("cannot read after {attempts} attempts: {error}"),
                ));
                continue;
            }
            let ext = Path::new(&name)
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if !self
                .options
                .extensions
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&ext))
            {
                found.push(Found::Unacceptable(
                    path,
                    format!(
                        "extension {ext:?} is not taken (folder extensions: {})",
                        self.options.extensions.join(", ")
                    ),
                ));
            } else if observation.size > self.options.max_file_bytes {
                found.push(Found::Unacceptable(
                    path,
                    format!(
                        "{} bytes is more than max_file_bytes {}",
                        observation.size, self.options.max_file_bytes
                    ),
                ));
            } else {
                found.push(Found::Complete(path));
            }
        }
        self.seen = still_here;
        self.deferred.retain(|p, _| self.seen.contains_key(p));
        self.unreadable.retain(|p, _| self.seen.contains_key(p));
        // Settled, but still open for writing by another program (paused, not finished).
        let candidates: Vec<&PathBuf> = found
            .iter()
            .filter_map(|f| match f {
                Found::Complete(p) => Some(p),
                Found::Unacceptable(..) => None,
            })
            .collect();
        if !candidates.is_empty() {
            let writing = files_open_for_writing();
            if !writing.is_empty() {
                let busy: HashSet<PathBuf> = candidates
                    .into_iter()
                    .filter(|p| file_id(p).is_some_and(|id| writing.contains(&id)))
                    .cloned()
                    .collect();
                found.retain(|f| !matches!(f, Found::Complete(p) if busy.contains(p)));
            }
        }
        Ok(found)
    }

    /// Reads a complete file, once, from a descriptor that is the regular file that settled.
    /// [`Unread::Retry`] when it changed or was replaced (it is looked at again);
    /// [`Unread::Unacceptable`] when it is no longer a regular file or is larger than allowed.
    pub fn read(&mut self, path: &Path) -> Result<ReadyFile, Unread> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = match self.read_bounded(path) {
            Ok(b) => b,
            Err(Failure::Changed(reason)) => {
                self.seen.remove(path);
                return Err(Unread::Retry(reason));
            }
            Err(Failure::Unacceptable(reason)) => return Err(Unread::Unacceptable(reason)),
            Err(Failure::Io(error)) => {
                let entry = self
                    .unreadable
                    .entry(path.to_path_buf())
                    .or_insert((0, String::new()));
                entry.0 += 1;
                entry.1 = error.clone();
                if let Some(now) = self.last_scan {
                    self.deferred
                        .insert(path.to_path_buf(), now + UNREADABLE_RETRY);
                }
                return Err(Unread::Retry(error));
            }
        };
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ReadyFile {
            path: path.to_path_buf(),
            sha256: hex(&Sha256::digest(&bytes)),
            media_type: media_type(&ext),
            name,
            bytes,
        })
    }

    /// Opens without following a link or blocking on a FIFO, checks the descriptor, reads at
    /// most `max_file_bytes + 1` bytes. Retry errors of opening count towards
    /// [`UNREADABLE_ATTEMPTS`]; a change seen while reading does not.
    fn read_bounded(&mut self, path: &Path) -> Result<Vec<u8>, Failure> {
        let max = self.options.max_file_bytes;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => Failure::Unacceptable(
                    "is a symbolic link (replaced after it settled); not followed".into(),
                ),
                _ => Failure::Io(format!("cannot read: {e}")),
            })?;
        let before = file
            .metadata()
            .map_err(|e| Failure::Io(format!("cannot stat: {e}")))?;
        if !before.file_type().is_file() {
            return Err(Failure::Unacceptable(format!(
                "is not a regular file ({}; replaced after it settled)",
                kind_of(&before.file_type())
            )));
        }
        let opened = Observation::of(&before);
        let expected = self.seen.get(path).map(|(o, _)| *o);
        if expected.is_some_and(|o| o.id != opened.id) {
            self.unreadable.remove(path);
            return Err(Failure::Changed(
                "the file was replaced after it settled; waiting for it to settle".into(),
            ));
        }
        let too_large = |size: u64| {
            Failure::Unacceptable(format!("{size} bytes is more than max_file_bytes {max}"))
        };
        if opened.size > max {
            return Err(too_large(opened.size));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(opened.size).unwrap_or(0));
        (&mut file)
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Io(format!("cannot read: {e}")))?;
        let read = bytes.len() as u64;
        if read > max {
            return Err(too_large(read));
        }
        self.unreadable.remove(path);
        let after = file
            .metadata()
            .map(|m| Observation::of(&m))
            .map_err(|e| Failure::Io(format!("cannot stat: {e}")))?;
        if after.size != read || after != opened || expected.is_some_and(|o| o != after) {
            return Err(Failure::Changed(
                "the file changed while it was read; waiting for it to settle".into(),
            ));
        }
        Ok(bytes)
    }

    /// Whether [`DEATHS_BEFORE_FAILED`] runs in a row died while processing the file with this
    /// key: it is not to be processed again.
    pub fn crashed_while_processing(&self, key: &str) -> bool {
        self.died_on
            .get(key)
            .is_some_and(|&n| n >= DEATHS_BEFORE_FAILED)
    }

    /// Records, durably, that the file with this key is being processed: if the process dies
    /// before [`HotFolder::end_processing`], the next [`HotFolder::open`] counts it.
    pub fn begin_processing(&mut self, key: &str) -> std::io::Result<()> {
        let runs = self.died_on.remove(key).unwrap_or(0) + 1;
        self.current = Some((key.to_string(), runs));
        self.write_marker()
    }

    /// The file being processed was handled (whatever became of it): its count is forgotten.
    pub fn end_processing(&mut self) -> std::io::Result<()> {
        if self.current.take().is_none() {
            return Ok(());
        }
        self.write_marker()
    }

    /// Keeps the marker to the keys still pending, `<key> <runs>` a line (or removes it), synced
    /// to disk.
    fn write_marker(&self) -> std::io::Result<()> {
        let marker = self.dir.join(PROCESSING_MARKER);
        let mut text = String::new();
        for (key, runs) in self
            .died_on
            .iter()
            .chain(self.current.as_ref().map(|(k, n)| (k, n)))
        {
            text.push_str(&format!("{key} {runs}\n"));
        }
        if text.is_empty() {
            match std::fs::remove_file(&marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        } else {
            let tmp = self.dir.join(format!("{PROCESSING_MARKER}.tmp"));
            {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&tmp)?;
                std::io::Write::write_all(&mut f, text.as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &marker)?;
        }
        sync_dir(&self.dir);
        Ok(())
    }

    /// Leaves a complete file in place for `delay` (the caller could not take it now).
    pub fn defer(&mut self, path: &Path, delay: Duration, now: Instant) {
        self.deferred.insert(path.to_path_buf(), now + delay);
    }

    /// Moves a file to `done/` (taken) or `failed/` (with a `<name>.reason.txt` beside it).
    /// Returns where it went. A name already there gets a `-1`, `-2`... suffix.
    pub fn finish(&mut self, path: &Path, failure: Option<&str>) -> std::io::Result<PathBuf> {
        let dest_dir = if failure.is_some() {
            &self.failed
        } else {
            &self.done
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let dest = unique(dest_dir, &name);
        move_file(path, &dest)?;
        if let Some(reason) = failure {
            let mut note = dest.as_os_str().to_owned();
            note.push(".reason.txt");
            // failed/ is as writable as the folder: never write through a planted link.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(PathBuf::from(note))?;
            std::io::Write::write_all(&mut f, format!("{reason}\n").as_bytes())?;
        }
        sync_dir(dest_dir);
        sync_dir(&self.dir);
        self.seen.remove(path);
        self.deferred.remove(path);
        self.unreadable.remove(path);
        Ok(dest)
    }

    /// Moves a file that crashed the caller's processing to `failed/` and forgets its key.
    pub fn fail_crashed(
        &mut self,
        path: &Path,
        key: &str,
        reason: &str,
    ) -> std::io::Result<PathBuf> {
        let dest = self.finish(path, Some(reason))?;
        self.died_on.remove(key);
        self.write_marker()?;
        Ok(dest)
    }
}

/// The keys in a processing marker with the runs that died on each (none when there is no
/// marker or it cannot be read; a line without a count is one death).
fn read_marker(marker: &Path) -> HashMap<String, u32> {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(marker)
    else {
        return HashMap::new();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return HashMap::new();
    }
    let mut text = String::new();
    // A marker holds a few keys of ~90 bytes; anything larger is not ours.
    let _ = file.take(64 * 1024).read_to_string(&mut text);
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let key = fields.next().filter(|k| k.starts_with("folder:"))?;
            let runs = fields.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            Some((key.to_string(), runs))
        })
        .collect()
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Device and inode of a file.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Device and inode of every regular file some process has open for writing, as far as this
/// user can see (`/proc/<pid>/fdinfo` flags: O_WRONLY or O_RDWR).
fn files_open_for_writing() -> HashSet<(u64, u64)> {
    let mut ids = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return ids;
    };
    for proc_entry in procs.flatten() {
        let name = proc_entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let info = proc_entry.path().join("fdinfo").join(fd.file_name());
            let Ok(text) = std::fs::read_to_string(&info) else {
                continue;
            };
            let writable = text
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|flags| flags & 0o3 != 0);
            if writable && let Some(id) = file_id(&fd.path()) {
                ids.insert(id);
            }
        }
    }
    ids
}

/// A name not taken in `dir`; a (dangling) symbolic link counts as taken.
fn unique(dir: &Path, name: &str) -> PathBuf {
    let taken = |p: &Path| p.symlink_metadata().is_ok();
    let candidate = dir.join(name);
    if !taken(&candidate) {
        return candidate;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.to_string(), String::new()),
    };
    (1..)
        .map(|n| dir.join(format!("{stem}-{n}{ext}")))
        .find(|p| !taken(p))
        .unwrap_or(candidate)
}

/// Rename, or copy + fsync + remove across file systems.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            // EXDEV: done/ is on another file system. Copying would follow a link or block on
            // a FIFO, so only a regular file is copied; anything else stays where it is.
            if !std::fs::symlink_metadata(from)?.file_type().is_file() {
                return Err(std::io::Error::other(
                    "not a regular file; not copied to another file system",
                ));
            }
            std::fs::copy(from, to)?;
            std::fs::File::open(to)?.sync_all()?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
