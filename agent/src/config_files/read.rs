//! Reading a container's mounted configuration files through the engine's
//! single-path archive API, bounded and cached.
//!
//! Which files: those in the container's bind mounts (`-v ./app.yaml:…`, a
//! directory, Compose configs and secrets, Kubernetes ConfigMap and Secret
//! volumes under cri-dockerd) whose path in the container matches an
//! include glob and no exclude glob ([`Bounds`]). Never from the host path:
//! the engine's `HEAD`/`GET /containers/{id}/archive?path=` (read-only, so
//! the read-only socket proxy suffices) is the only way in.
//!
//! Bounds: at most [`Bounds::max_files`] files per container (the rest named
//! in the container's `cut`), [`Bounds::max_file_bytes`] per file (a larger
//! one is "not read: too large"), [`Bounds::max_total_bytes`] read per
//! collection across all containers (past it, "not read: over the
//! collection's total", read at a later collection, as files read from the
//! cache cost none of it), and [`MAX_ARCHIVE_BYTES`] streamed for one
//! mounted directory.
//!
//! Re-reads cost nothing when nothing changed: per container and mount the
//! reader keeps what it sent with what it saw of the mount and of every file
//! found in it; the next collection asks the engine for those stats again
//! (`HEAD`, no content, on a kept-alive connection) and reads the mount
//! again only when one differs. Kubernetes updates a ConfigMap volume by
//! swapping a `..data` symlink, which changes the directory's mtime.
//!
//! What is seen of a mount's own path is the engine's stat of it, asked
//! before it is read (size, mode, mtime to the nanosecond): a change after
//! that stat shows at the next collection. What is seen of the files in a
//! mounted directory comes from the directory's archive itself, its tar
//! headers (kind, size, mtime), not from a `HEAD` per file: the engine
//! writes those mtimes to the second (Docker truncates, Podman rounds), so
//! a file rewritten at the same size within the second it was read in would
//! look unchanged. A file
//! whose mtime is within a second of the reading is therefore not trusted:
//! its mount is read again at the next collection, as git does with its
//! "racily clean" entries.
//!
//! Symlinks inside a mounted directory are followed within that directory
//! (Kubernetes' `app.yaml -> ..data/app.yaml`), at most 16 hops; a loop is
//! "not read: symlink loop", a target outside it "not read: symlink out of
//! the mount". Entries under a `..`-prefixed directory (Kubernetes' atomic
//! writer) are reached only through such links.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, stream};

use envparity_proto::v1::{ConfigFile, ConfigFileState, ContainerConfigFiles};

use super::protect::{ClearConfigPolicy, is_secret_mount, protect, whole_file};
use super::tar::{Entry, Kind, TarReader};
use super::{detect, flatten, looks_binary};
use crate::clear_env::glob_match;
use crate::fingerprint::FleetKey;
use crate::runtime::docker::INSPECT_CONCURRENCY;
use crate::runtime::engine_http::{EngineHttp, HttpError, MAX_ANSWER_BYTES, PathStat};

/// The most bytes streamed of one mounted directory's archive.
pub const MAX_ARCHIVE_BYTES: usize = 64 * 1024 * 1024;

/// Longest symlink chain followed inside a mounted directory.
const MAX_HOPS: usize = 16;

/// Which files are read, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Globs of container paths to read (`*` matches any run, `/` included).
    pub include: Vec<String>,
    /// Globs of container paths never read.
    pub exclude: Vec<String>,
    /// Most files reported per container; 0 turns reading off.
    pub max_files: usize,
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes read per collection, across all containers.
    pub max_total_bytes: u64,
}

impl Bounds {
    /// The default include globs.
    pub const DEFAULT_INCLUDE: &[&str] =
        &["/etc/*", "/config/*", "/app/config/*", "/run/secrets/*"];

    fn wanted(&self, path: &str) -> bool {
        self.include.iter().any(|g| glob_match(g, path))
            && !self.exclude.iter().any(|g| glob_match(g, path))
    }

    /// Whether anything under the mount at `destination` could be wanted.
    fn may_hold_wanted(&self, destination: &str) -> bool {
        let inside = format!("{}/x", destination.trim_end_matches('/'));
        self.include
            .iter()
            .any(|g| glob_match(g, destination) || glob_match(g, &inside))
    }
}

/// A bind mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountInfo {
    source: String,
    destination: String,
}

/// What the reader read of one mount, and what it saw of each path.
#[derive(Debug, Clone)]
struct CachedMount {
    stats: Vec<(String, Seen)>,
    files: Vec<ConfigFile>,
}

/// What the reader keeps of a mount between collections: what it saw of
/// each path, and its files in the compact form of [`HeldFile`].
#[derive(Debug, Clone)]
struct HeldMount {
    stats: Vec<(String, Seen)>,
    files: Vec<HeldFile>,
}

/// A file as the cache holds it, which a whole reading holds as many times as
/// it has containers × files: the fingerprints as their 32 bytes rather than
/// 64 hex digits each in its own allocation, and the key paths in one
/// string. [`HeldFile::file`] gives back exactly the [`ConfigFile`] it was
/// made of. With 100 keys of short paths, about 60 bytes a key instead of
/// about 180.
#[derive(Debug, Clone, PartialEq)]
struct HeldFile {
    /// The file without its keys, its fingerprint moved to `digest` when it
    /// is one.
    head: ConfigFile,
    /// The whole file's fingerprint, when `head.fingerprint` was moved here.
    digest: Option<[u8; 32]>,
    /// Every key path, one after the other.
    paths: String,
    /// Where each key path ends in `paths`.
    ends: Vec<u32>,
    /// Each key's fingerprint.
    fingerprints: Vec<[u8; 32]>,
    /// The clear values, by key index.
    values: Vec<(u32, String)>,
}

/// The 32 bytes of a fingerprint in the agent's form (64 lower hex digits),
/// `None` for anything else, which is then held as it is.
fn digest(fingerprint: &str) -> Option<[u8; 32]> {
    let lower = fingerprint.len() == 64
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut out = [0u8; 32];
    (lower && hex::decode_to_slice(fingerprint, &mut out).is_ok()).then_some(out)
}

impl HeldFile {
    /// `file` held compactly, or as it is when one of its fingerprints is
    /// not in the agent's form or its key paths are over 4 GiB together.
    fn of(mut file: ConfigFile) -> Self {
        let keys = std::mem::take(&mut file.keys);
        let total: usize = keys.iter().map(|k| k.path.len()).sum();
        let compact =
            u32::try_from(total).is_ok() && keys.iter().all(|k| digest(&k.fingerprint).is_some());
        if !compact {
            file.keys = keys;
            return Self {
                head: file,
                digest: None,
                paths: String::new(),
                ends: Vec::new(),
                fingerprints: Vec::new(),
                values: Vec::new(),
            };
        }
        let digest_of_file = digest(&file.fingerprint);
        if digest_of_file.is_some() {
            file.fingerprint = String::new();
        }
        let mut held = Self {
            head: file,
            digest: digest_of_file,
            paths: String::with_capacity(total),
            ends: Vec::with_capacity(keys.len()),
            fingerprints: Vec::with_capacity(keys.len()),
            values: Vec::new(),
        };
        for (i, key) in keys.into_iter().enumerate() {
            held.paths.push_str(&key.path);
            held.ends.push(held.paths.len() as u32);
            held.fingerprints
                .push(digest(&key.fingerprint).unwrap_or_default());
            if let Some(value) = key.value {
                held.values.push((i as u32, value));
            }
        }
        held
    }

    /// The file it was made of.
    fn file(&self) -> ConfigFile {
        let mut file = self.head.clone();
        if let Some(digest) = &self.digest {
            file.fingerprint = hex::encode(digest);
        }
        if self.ends.is_empty() {
            return file;
        }
        let mut values = self.values.iter().peekable();
        let mut start = 0;
        file.keys = self
            .ends
            .iter()
            .zip(&self.fingerprints)
            .enumerate()
            .map(|(i, (&end, fingerprint))| {
                let path = self.paths[start..end as usize].to_owned();
                start = end as usize;
                let value = values
                    .next_if(|(at, _)| *at as usize == i)
                    .map(|(_, v)| v.clone());
                envparity_proto::v1::ConfigKey {
                    path,
                    fingerprint: hex::encode(fingerprint),
                    value,
                }
            })
            .collect();
        file
    }
}

/// What the reader saw of one path when it read it, to compare with the
/// engine's stat of it at the next collection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The engine's stat (`HEAD`): compared whole.
    Stat(PathStat),
    /// An entry of a directory's archive: its kind, its size (not a
    /// symlink's, which the stat gives as its target's length) and its
    /// mtime in seconds, as the tar header gives them.
    Header { kind: Kind, size: u64, mtime: u64 },
    /// Modified within a second of the reading (see the module doc): never
    /// equal, so that its mount is read again.
    Racy,
}

impl Seen {
    /// What an archive entry read at `now` (seconds since the epoch) says.
    fn of_entry(entry: &Entry, now: u64) -> Self {
        if entry.mtime.abs_diff(now) <= 1 {
            return Seen::Racy;
        }
        Seen::Header {
            kind: entry.kind,
            size: if entry.kind == Kind::Symlink {
                0
            } else {
                entry.size
            },
            mtime: entry.mtime,
        }
    }

    /// Whether the engine's stat `now` shows the path as it was seen.
    fn matches(&self, now: &PathStat) -> bool {
        match self {
            Seen::Stat(stat) => stat == now,
            Seen::Header { kind, size, mtime } => {
                let now_kind = if now.is_dir() {
                    Kind::Dir
                } else if now.is_symlink() {
                    Kind::Symlink
                } else if now.mode & GO_MODE_TYPE == 0 {
                    Kind::File
                } else {
                    Kind::Other
                };
                // Docker truncates the header's mtime to the second,
                // Podman rounds it.
                let same_second = rfc3339_seconds(&now.mtime).is_some_and(|(seconds, nanos)| {
                    *mtime == seconds || (nanos >= 500_000_000 && *mtime == seconds + 1)
                });
                *kind == now_kind && (*kind == Kind::Symlink || *size == now.size) && same_second
            }
            Seen::Racy => false,
        }
    }
}

/// Go's `os.ModeType`: the bits that make a path other than a regular file.
const GO_MODE_TYPE: u32 =
    (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

/// Seconds since the epoch and nanoseconds of a time as Go writes it in
/// JSON (RFC 3339, `2026-12-04T20:50:01.123456789Z` or with an offset such
/// as `+01:00`); `None` for anything else or before 1970.
fn rfc3339_seconds(text: &str) -> Option<(u64, u32)> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then_some(())?;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for i in 0..9 {
            nanos = nanos * 10
                + fraction
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |d| u32::from(d - b'0'));
        }
        rest = &fraction[n..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let minutes = two(*h1, *h2)? * 60 + two(*m1, *m2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds =
        u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second - offset).ok()?;
    Some((seconds, nanos))
}

/// Seconds since the epoch, now.
fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads configuration files; keeps its cache between collections.
#[derive(Debug)]
pub struct Reader {
    bounds: Bounds,
    clear: ClearConfigPolicy,
    mounts: HashMap<String, Vec<MountInfo>>,
    cache: HashMap<(String, String), HeldMount>,
    /// File content bytes fetched from the engine so far.
    fetched: u64,
    /// What the last collection did.
    counts: ReadCounts,
}

/// What one collection's reading did, for the agent's metrics: counts only,
/// never a path or a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Mounts whose stats were unchanged: served from the cache.
    pub mounts_unchanged: u64,
    /// Mounts read from the engine (new, or a stat changed).
    pub mounts_read: u64,
    /// Files served from the cache.
    pub files_unchanged: u64,
    /// Files read, flattened and fingerprinted.
    pub files_read: u64,
    /// Files read but in no format they claim (`not parsed`).
    pub files_not_parsed: u64,
    /// Files not read, by reason.
    pub files_not_read: BTreeMap<NotRead, u64>,
    /// Bytes of file content fetched from the engine.
    pub bytes_fetched: u64,
}

/// Why a file was not read, as a fixed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotRead {
    /// Over the per-file bound, or a directory over the archive bound.
    TooLarge,
    /// Over the collection's total; read at a later collection.
    OverTotal,
    /// Binary content.
    Binary,
    /// A symlink that leads nowhere readable (loop, out of the mount,
    /// missing, a directory, an excluded path).
    Symlink,
    /// Anything else (not a regular file).
    Other,
}

impl NotRead {
    /// Every reason, in a fixed order.
    pub const ALL: [NotRead; 5] = [
        NotRead::TooLarge,
        NotRead::OverTotal,
        NotRead::Binary,
        NotRead::Symlink,
        NotRead::Other,
    ];

    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            NotRead::TooLarge => "too_large",
            NotRead::OverTotal => "over_total",
            NotRead::Binary => "binary",
            NotRead::Symlink => "symlink",
            NotRead::Other => "other",
        }
    }

    fn of(reason: &str) -> Self {
        if reason.starts_with("too large") || reason.starts_with("directory archive over") {
            NotRead::TooLarge
        } else if reason.starts_with(OVER_TOTAL) {
            NotRead::OverTotal
        } else if reason == "binary" {
            NotRead::Binary
        } else if reason.starts_with("symlink") {
            NotRead::Symlink
        } else {
            NotRead::Other
        }
    }
}

impl ReadCounts {
    fn file(&mut self, file: &ConfigFile) {
        match ConfigFileState::try_from(file.state) {
            Ok(ConfigFileState::Read) => self.files_read += 1,
            Ok(ConfigFileState::NotParsed) => self.files_not_parsed += 1,
            _ => {
                *self
                    .files_not_read
                    .entry(NotRead::of(&file.reason))
                    .or_default() += 1
            }
        }
    }

    fn add(&mut self, other: &ReadCounts) {
        self.mounts_unchanged += other.mounts_unchanged;
        self.mounts_read += other.mounts_read;
        self.files_unchanged += other.files_unchanged;
        self.files_read += other.files_read;
        self.files_not_parsed += other.files_not_parsed;
        for (reason, n) in &other.files_not_read {
            *self.files_not_read.entry(*reason).or_default() += n;
        }
        self.bytes_fetched += other.bytes_fetched;
    }
}

/// One container's reading: its files, and what to change in the cache.
struct Outcome {
    read: Read,
    /// The container's bind mounts, when asked of the engine this time.
    mounts: Option<Vec<MountInfo>>,
    /// Per mount read again: what to cache (`None`: forget it).
    fresh: Vec<(String, Option<HeldMount>)>,
    counts: ReadCounts,
}

/// One container's files, and what was cut from them (for `Container.cut`).
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// The files, sorted by path.
    pub files: ContainerConfigFiles,
    /// Reasons for what was left out.
    pub cut: Vec<String>,
}

impl Reader {
    /// A reader with these bounds and clear-value allowlist.
    pub fn new(bounds: Bounds, clear: ClearConfigPolicy) -> Self {
        Self {
            bounds,
            clear,
            mounts: HashMap::new(),
            cache: HashMap::new(),
            fetched: 0,
            counts: ReadCounts::default(),
        }
    }

    /// How many bytes of file content were fetched from the engine since
    /// the reader was made: unchanged files add nothing.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// Whether reading is on (`max_files` > 0).
    pub fn enabled(&self) -> bool {
        self.bounds.max_files > 0
    }

    /// What the readings since the last call read, served from the cache
    /// or left out (then zero again).
    pub fn take_counts(&mut self) -> ReadCounts {
        std::mem::take(&mut self.counts)
    }

    /// Reads the files of the containers `ids`, [`INSPECT_CONCURRENCY`] at a
    /// time, sharing one byte budget. A container the engine no longer
    /// knows is left out; any other engine error leaves that container
    /// unread (no entry: unknown, not "no files") and is logged.
    pub async fn read(&mut self, http: &EngineHttp, ids: &[String], key: &FleetKey) -> Vec<Read> {
        let budget = AtomicU64::new(self.bounds.max_total_bytes);
        let this = &*self;
        let budget_ref = &budget;
        // Futures from owned ids by a plain iterator, as in
        // `runtime::docker`: closures over borrowed ids inside stream
        // combinators make the future !Send.
        let reads = ids.iter().cloned().map(|id| async move {
            let outcome = this.read_container(http, &id, key, budget_ref).await;
            (id, outcome)
        });
        let outcomes: Vec<(String, Result<Outcome, HttpError>)> = stream::iter(reads)
            .buffered(INSPECT_CONCURRENCY)
            .collect()
            .await;
        let mut counts = ReadCounts::default();
        let mut out = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            match outcome {
                Ok(outcome) => {
                    if let Some(mounts) = outcome.mounts {
                        self.mounts.insert(id.clone(), mounts);
                    }
                    for (destination, fresh) in outcome.fresh {
                        let cache_key = (id.clone(), destination);
                        match fresh {
                            Some(fresh) => self.cache.insert(cache_key, fresh),
                            None => self.cache.remove(&cache_key),
                        };
                    }
                    counts.add(&outcome.counts);
                    out.push(outcome.read);
                }
                Err(error) => tracing::warn!(
                    container = %id.escape_debug(),
                    %error,
                    "cannot read this container's configuration files; reported as unknown"
                ),
            }
        }
        let spent = self.bounds.max_total_bytes - budget.load(Ordering::Relaxed);
        self.fetched += spent;
        counts.bytes_fetched = spent;
        self.counts.add(&counts);
        // Forget what belongs to containers no longer running.
        self.mounts.retain(|id, _| ids.contains(id));
        self.cache.retain(|(id, _), _| ids.contains(id));
        out
    }

    /// One container's files, from the cache where the engine's stats are
    /// unchanged; what to change in the cache is returned, not applied, so
    /// that containers are read concurrently.
    async fn read_container(
        &self,
        http: &EngineHttp,
        id: &str,
        key: &FleetKey,
        budget: &AtomicU64,
    ) -> Result<Outcome, HttpError> {
        let (mounts, fetched_mounts) = match self.mounts.get(id) {
            Some(m) => (m.clone(), None),
            None => {
                let m = bind_mounts(http, id).await?;
                (m.clone(), Some(m))
            }
        };
        let mut counts = ReadCounts::default();
        let mut fresh_entries = Vec::new();
        let mut files = BTreeMap::new();
        for mount in mounts
            .iter()
            .filter(|m| self.bounds.may_hold_wanted(&m.destination))
        {
            let cache_key = (id.to_owned(), mount.destination.clone());
            let root = match self.cache.get(&cache_key) {
                Some(cached) => match check(http, id, cached).await {
                    Check::Unchanged => {
                        counts.mounts_unchanged += 1;
                        counts.files_unchanged += cached.files.len() as u64;
                        for held in &cached.files {
                            let file = held.file();
                            files.insert(file.path.clone(), file);
                        }
                        continue;
                    }
                    Check::Changed { root } => root,
                },
                None => None,
            };
            counts.mounts_read += 1;
            let fresh = self.read_mount(http, id, mount, root, key, budget).await?;
            for file in &fresh.files {
                counts.file(file);
            }
            // A file not read for the budget is read next time.
            let complete = !fresh.files.iter().any(|f| f.reason.starts_with(OVER_TOTAL));
            let mut held = Vec::with_capacity(if complete { fresh.files.len() } else { 0 });
            for file in fresh.files {
                if complete {
                    held.push(HeldFile::of(file.clone()));
                }
                files.insert(file.path.clone(), file);
            }
            let held = complete.then_some(HeldMount {
                stats: fresh.stats,
                files: held,
            });
            fresh_entries.push((mount.destination.clone(), held));
        }
        let mut files: Vec<ConfigFile> = files.into_values().collect();
        let mut cut = Vec::new();
        let max = self
            .bounds
            .max_files
            .min(envparity_proto::limits::MAX_CONFIG_FILES);
        if files.len() > max {
            cut.push(format!(
                "config files: {} found, over the limit of {max} per container; the last {} by path not reported",
                files.len(),
                files.len() - max
            ));
            files.truncate(max);
        }
        let budget = envparity_proto::limits::MAX_CONTAINER_CONFIG_BYTES;
        let mut used = 0;
        if let Some(over) = files.iter().position(|f| {
            used += prost::Message::encoded_len(f);
            used > budget
        }) {
            cut.push(format!(
                "config files: over {budget} encoded bytes per container; {} of {} not reported, from {}",
                files.len() - over,
                files.len(),
                envparity_proto::names::escape_hostile(&files[over].path)
            ));
            files.truncate(over);
        }
        Ok(Outcome {
            read: Read {
                files: ContainerConfigFiles {
                    container_id: id.to_owned(),
                    files,
                },
                cut,
            },
            mounts: fetched_mounts,
            fresh: fresh_entries,
            counts,
        })
    }

    async fn read_mount(
        &self,
        http: &EngineHttp,
        id: &str,
        mount: &MountInfo,
        root: Option<PathStat>,
        key: &FleetKey,
        budget: &AtomicU64,
    ) -> Result<CachedMount, HttpError> {
        let dest = mount.destination.trim_end_matches('/').to_owned();
        // The stat the cache check just asked for, if it did.
        let root = match root {
            Some(stat) => Ok(stat),
            None => http.path_stat(id, &dest).await,
        };
        let root = match root {
            Ok(stat) => stat,
            Err(e) if e.is_not_found() => {
                return Ok(CachedMount {
                    stats: Vec::new(),
                    files: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        };
        let secret = |path: &str| is_secret_mount(path, &mount.source);
        let mut stats = vec![(dest.clone(), Seen::Stat(root.clone()))];
        let mut files = Vec::new();
        if root.is_symlink() {
            // A bind mount's destination is never a symlink in practice.
            return Ok(CachedMount { stats, files });
        }
        if !root.is_dir() {
            if !self.bounds.wanted(&dest) {
                return Ok(CachedMount { stats, files });
            }
            let file = if root.size > self.bounds.max_file_bytes {
                not_read(
                    &dest,
                    too_large(root.size, self.bounds.max_file_bytes),
                    secret(&dest),
                )
            } else if !take(budget, root.size) {
                not_read(
                    &dest,
                    over_total(self.bounds.max_total_bytes),
                    secret(&dest),
                )
            } else {
                let cap = usize::try_from(self.bounds.max_file_bytes)
                    .unwrap_or(usize::MAX)
                    .saturating_add(64 * 1024);
                let entries = archive(http, id, &dest, cap, &mut |_| true).await?;
                match entries.into_iter().find(|e| e.kind == Kind::File) {
                    Some(Entry {
                        content: Some(content),
                        ..
                    }) => self.file(&dest, &content, secret(&dest), key),
                    _ => not_read(&dest, "not a regular file".to_owned(), secret(&dest)),
                }
            };
            files.push(file);
            return Ok(CachedMount { stats, files });
        }

        // A directory: one archive of it, the content of wanted files kept.
        let parent = dest.rsplit_once('/').map_or("", |(p, _)| p).to_owned();
        let full = |name: &str| format!("{parent}/{name}");
        let bounds = &self.bounds;
        let mut keep = |e: &Entry| {
            let path = full(&e.name);
            bounds.wanted(&path) && e.size <= bounds.max_file_bytes && take(budget, e.size)
        };
        let entries = match archive(http, id, &dest, MAX_ARCHIVE_BYTES, &mut keep).await {
            Ok(entries) => entries,
            Err(HttpError::TooLarge { cap }) => {
                files.push(not_read(
                    &dest,
                    format!("directory archive over {cap} bytes"),
                    secret(&dest),
                ));
                return Ok(CachedMount { stats, files });
            }
            Err(e) => return Err(e),
        };
        let by_name: HashMap<&str, &Entry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();
        let now = now_seconds();
        for entry in &entries {
            let path = full(&entry.name);
            if entry.name.split('/').any(|c| c.starts_with("..")) || !bounds.wanted(&path) {
                continue;
            }
            let target = match entry.kind {
                Kind::File => Ok(entry),
                Kind::Symlink => resolve(&by_name, entry),
                Kind::Dir | Kind::Other => continue,
            };
            let file = match target {
                Err(reason) => not_read(&path, reason, secret(&path)),
                Ok(target) => match &target.content {
                    Some(content) => self.file(&path, content, secret(&path), key),
                    None if target.size > bounds.max_file_bytes => not_read(
                        &path,
                        too_large(target.size, bounds.max_file_bytes),
                        secret(&path),
                    ),
                    None if !bounds.wanted(&full(&target.name)) => not_read(
                        &path,
                        "symlink to an excluded path".to_owned(),
                        secret(&path),
                    ),
                    None => not_read(&path, over_total(bounds.max_total_bytes), secret(&path)),
                },
            };
            // What to compare next time: the entry's own header (a link's,
            // as the engine's stat of its path is of the link).
            stats.push((path, Seen::of_entry(entry, now)));
            files.push(file);
        }
        Ok(CachedMount { stats, files })
    }

    /// One file read whole: detected, flattened, protected.
    fn file(&self, path: &str, content: &[u8], secret: bool, key: &FleetKey) -> ConfigFile {
        if looks_binary(content) {
            return not_read(path, "binary".to_owned(), secret);
        }
        let format = detect(path, content);
        let fingerprint = whole_file(key, path, content);
        let (state, reason, keys) = match flatten(format, content) {
            Ok(pairs) => (
                ConfigFileState::Read,
                String::new(),
                protect(key, &self.clear, path, secret, pairs)
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            ),
            Err(e) => (ConfigFileState::NotParsed, e.to_string(), Vec::new()),
        };
        ConfigFile {
            path: path.to_owned(),
            format: format.as_str().to_owned(),
            state: state as i32,
            reason,
            keys,
            fingerprint,
            secret,
        }
    }
}

/// The start of the reason a file over the collection's budget carries.
const OVER_TOTAL: &str = "over the collection's total";

fn over_total(total: u64) -> String {
    format!("{OVER_TOTAL} of {total} bytes; read at a later collection")
}

fn too_large(size: u64, max: u64) -> String {
    format!("too large: {size} bytes, over the limit of {max}")
}

fn not_read(path: &str, reason: String, secret: bool) -> ConfigFile {
    ConfigFile {
        path: path.to_owned(),
        format: String::new(),
        state: ConfigFileState::NotRead as i32,
        reason,
        keys: Vec::new(),
        fingerprint: String::new(),
        secret,
    }
}

/// Follows `link` within the archive to a regular file, resolving links
/// anywhere in the path (`..data/app.yaml` where `..data` is a link).
fn resolve<'a>(by_name: &HashMap<&str, &'a Entry>, link: &'a Entry) -> Result<&'a Entry, String> {
    let out = || "symlink out of the mount".to_owned();
    let mut path = link.name.clone();
    let mut hops = 0;
    'walk: loop {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            let entry = by_name
                .get(prefix.as_str())
                .ok_or_else(|| "symlink to a missing file".to_owned())?;
            if entry.kind == Kind::Symlink {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err("symlink loop".to_owned());
                }
                if entry.link.starts_with('/') {
                    return Err(out());
                }
                let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
                let rest = parts[i..].join("/");
                path = normalize(&format!("{dir}/{}/{rest}", entry.link)).ok_or_else(out)?;
                continue 'walk;
            }
            if i == parts.len() {
                return match entry.kind {
                    Kind::File => Ok(entry),
                    _ => Err("symlink to a directory".to_owned()),
                };
            }
        }
        return Err("symlink to a missing file".to_owned());
    }
}

/// `a/./b/../c` → `a/c`; `None` when `..` climbs out.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Takes `bytes` from the collection's budget, if that many are left.
fn take(budget: &AtomicU64, bytes: u64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(bytes)
        })
        .is_ok()
}

/// What the engine's stats say of a cached mount.
enum Check {
    /// Every stat it was read with is unchanged.
    Unchanged,
    /// One differs (or could not be asked); `root` is the mount's own stat
    /// when it was asked, so that reading the mount again does not ask
    /// twice.
    Changed { root: Option<PathStat> },
}

/// Asks the engine for the stat of every path a cached mount was read with
/// (the mount's own first), stopping at the first that differs.
async fn check(http: &EngineHttp, id: &str, cached: &HeldMount) -> Check {
    let mut root = None;
    for (i, (path, seen)) in cached.stats.iter().enumerate() {
        match http.path_stat(id, path).await {
            Ok(now) if seen.matches(&now) => {
                if i == 0 {
                    root = Some(now);
                }
            }
            Ok(now) => {
                return Check::Changed {
                    root: if i == 0 { Some(now) } else { root },
                };
            }
            Err(_) => return Check::Changed { root },
        }
    }
    Check::Unchanged
}

/// The entries of the archive of `path`, content kept where `keep` says.
async fn archive(
    http: &EngineHttp,
    id: &str,
    path: &str,
    cap: usize,
    keep: &mut (dyn FnMut(&Entry) -> bool + Send),
) -> Result<Vec<Entry>, HttpError> {
    let mut reader = TarReader::default();
    let mut entries = Vec::new();
    http.archive(id, path, cap, |chunk| {
        reader.feed(chunk, &mut |e| keep(e), &mut |e| entries.push(e));
        true
    })
    .await?;
    if !reader.is_complete() {
        return Err(HttpError::Malformed(format!(
            "archive of {path}: truncated tar"
        )));
    }
    Ok(entries)
}

/// The container's bind mounts (`GET /containers/{id}/json`, `Mounts`).
async fn bind_mounts(http: &EngineHttp, id: &str) -> Result<Vec<MountInfo>, HttpError> {
    #[derive(serde::Deserialize)]
    struct Inspect {
        #[serde(rename = "Mounts", default)]
        mounts: Vec<Mount>,
    }
    #[derive(serde::Deserialize)]
    struct Mount {
        #[serde(rename = "Type", default)]
        kind: String,
        #[serde(rename = "Source", default)]
        source: String,
        #[serde(rename = "Destination", default)]
        destination: String,
    }
    let id_path: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let inspect: Inspect = http
        .get_json(&format!("/containers/{id_path}/json"), MAX_ANSWER_BYTES)
        .await?;
    let mut mounts: Vec<MountInfo> = inspect
        .mounts
        .into_iter()
        .filter(|m| m.kind == "bind" && m.destination.starts_with('/'))
        .map(|m| MountInfo {
            source: m.source,
            destination: m.destination,
        })
        .collect();
    mounts.sort_by(|a, b| a.destination.cmp(&b.destination));
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_file_gives_back_exactly_the_file_it_was_made_of() {
        use envparity_proto::v1::ConfigKey;
        let fp = |n: u8| hex::encode([n; 32]);
        let file = ConfigFile {
            path: "/etc/app/a.yaml".into(),
            format: "yaml".into(),
            state: ConfigFileState::Read as i32,
            reason: String::new(),
            keys: vec![
                ConfigKey {
                    path: "a".into(),
                    fingerprint: fp(1),
                    value: Some("1".into()),
                },
                ConfigKey {
                    path: "b.c[0]".into(),
                    fingerprint: fp(2),
                    value: None,
                },
                ConfigKey {
                    path: String::new(),
                    fingerprint: fp(3),
                    value: Some(String::new()),
                },
                ConfigKey {
                    path: "labels[\"é\"]".into(),
                    fingerprint: fp(4),
                    value: None,
                },
            ],
            fingerprint: fp(9),
            secret: true,
        };
        let held = HeldFile::of(file.clone());
        assert_eq!(held.fingerprints.len(), 4, "held compactly");
        assert!(held.head.fingerprint.is_empty());
        assert_eq!(held.file(), file);
        // Not in the agent's form (upper case, short, none): held as it is.
        for odd in [fp(5).to_uppercase(), "abc".into(), String::new()] {
            let mut other = file.clone();
            other.keys[1].fingerprint = odd.clone();
            other.fingerprint = odd;
            assert_eq!(HeldFile::of(other.clone()).file(), other);
        }
        let not_read = not_read("/etc/app/b.yaml", "binary".into(), false);
        assert_eq!(HeldFile::of(not_read.clone()).file(), not_read);
    }

    #[test]
    fn go_times_read_as_seconds_since_the_epoch() {
        for (text, seconds) in [
            ("1970-01-01T00:00:00Z", Some((0, 0))),
            (
                "2026-12-04T20:50:01.123456789Z",
                Some((1_796_417_401, 123_456_789)),
            ),
            (
                "2026-12-04T21:50:01.5+01:00",
                Some((1_796_417_401, 500_000_000)),
            ),
            ("2026-12-04T19:20:01-01:30", Some((1_796_417_401, 0))),
            ("2000-02-29T23:59:59Z", Some((951_868_799, 0))),
            ("2000-02-29T23:59:59", None),
            ("2000-02-29T23:59:59.Z", None),
            ("2000-13-01T00:00:00Z", None),
            ("1969-12-31T23:59:59Z", None),
            ("", None),
        ] {
            assert_eq!(rfc3339_seconds(text), seconds, "{text}");
        }
    }

    #[test]
    fn a_tar_header_matches_the_engine_stat_of_the_same_file_only() {
        let entry = Entry {
            name: "app/a.yaml".into(),
            kind: Kind::File,
            size: 10,
            mtime: 1_796_417_401,
            link: String::new(),
            content: None,
        };
        let stat = |size, mode, mtime: &str| PathStat {
            name: "a.yaml".into(),
            size,
            mode,
            mtime: mtime.into(),
            link_target: String::new(),
        };
        let seen = Seen::of_entry(&entry, 1_796_417_401 + 60);
        assert!(seen.matches(&stat(10, 0o644, "2026-12-04T20:50:01.9Z")));
        // Podman rounds the header's mtime.
        assert!(seen.matches(&stat(10, 0o644, "2026-12-04T20:50:00.5Z")));
        assert!(!seen.matches(&stat(10, 0o644, "2026-12-04T20:50:00.4Z")));
        assert!(!seen.matches(&stat(11, 0o644, "2026-12-04T20:50:01.9Z")));
        assert!(!seen.matches(&stat(10, 0o644, "2026-12-04T20:50:02Z")));
        assert!(!seen.matches(&stat(10, 1 << 27, "2026-12-04T20:50:01Z")));
        let link = Seen::of_entry(
            &Entry {
                kind: Kind::Symlink,
                size: 0,
                link: "..data/a.yaml".into(),
                ..entry.clone()
            },
            1_796_417_401 + 60,
        );
        assert!(link.matches(&stat(13, 1 << 27 | 0o777, "2026-12-04T20:50:01Z")));
        // Read within a second of its mtime: not trusted.
        assert_eq!(Seen::of_entry(&entry, 1_796_417_402), Seen::Racy);
        assert!(!Seen::Racy.matches(&stat(10, 0o644, "2026-12-04T20:50:01Z")));
    }

    #[test]
    fn every_not_read_reason_the_reader_gives_is_counted_under_its_own_word() {
        for (reason, counted) in [
            (too_large(300, 200), NotRead::TooLarge),
            (
                "directory archive over 64 bytes".to_owned(),
                NotRead::TooLarge,
            ),
            (over_total(100), NotRead::OverTotal),
            ("binary".to_owned(), NotRead::Binary),
            ("symlink loop".to_owned(), NotRead::Symlink),
            ("symlink out of the mount".to_owned(), NotRead::Symlink),
            ("symlink to an excluded path".to_owned(), NotRead::Symlink),
            ("not a regular file".to_owned(), NotRead::Other),
        ] {
            let mut counts = ReadCounts::default();
            counts.file(&not_read("/etc/app/a.yaml", reason.clone(), false));
            assert_eq!(
                counts.files_not_read,
                BTreeMap::from([(counted, 1)]),
                "{reason}"
            );
        }
    }
}
