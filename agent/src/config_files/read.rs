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
//! Re-reads cost nothing when nothing changed: the reader keeps what it
//! read per container and mount, and reads a mount again only when the
//! engine's stats of it differ ([`super::cache`]).
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

use super::bounds::{Bounds, MAX_ARCHIVE_BYTES};
use super::cache::{Check, HeldFile, HeldMount, Seen, check, now_seconds};
use super::counts::{OVER_TOTAL, ReadCounts, not_read, over_total, too_large};
use super::protect::{ClearConfigPolicy, is_secret_mount, protect, whole_file};
use super::symlink::resolve;
use super::tar::{Entry, Kind, TarReader};
use super::{detect, flatten, looks_binary};
use crate::fingerprint::FleetKey;
use crate::runtime::docker::INSPECT_CONCURRENCY;
use crate::runtime::engine_http::{EngineHttp, HttpError, MAX_ANSWER_BYTES, PathStat};

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
    /// The containers the last reading was asked for, in order.
    last_ids: Vec<String>,
    /// Whether the last reading read every one of them (no engine error).
    last_complete: bool,
    /// What the last reading cut, per container (only those it cut).
    last_cuts: Vec<(String, Vec<String>)>,
}

/// One container's reading: its files, and what to change in the cache.
struct Outcome {
    /// What each wanted mount gave, in mount order.
    parts: Vec<Part>,
    /// The container's bind mounts, when asked of the engine this time.
    mounts: Option<Vec<MountInfo>>,
    /// Per mount read again: what to cache (`None`: forget it).
    fresh: Vec<(String, Option<HeldMount>)>,
    counts: ReadCounts,
}

/// What one mount gave a container's reading.
enum Part {
    /// Read again: its files.
    Read(Vec<ConfigFile>),
    /// Unchanged: its files are in the cache under this destination, made
    /// into [`ConfigFile`]s only if they are wanted.
    Cached(String),
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
            last_ids: Vec::new(),
            last_complete: false,
            last_cuts: Vec::new(),
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
        match self.read_unless_unchanged(http, ids, key).await {
            Some(read) => read,
            None => self.as_before(),
        }
    }

    /// As [`Reader::read`], but `None` when the reading would give exactly
    /// what the last one gave: the same containers, each read whole both
    /// times, and every mount unchanged (served from the cache). The files
    /// are then not made again from the cache, which with many files is
    /// most of an unchanged collection's cost; [`Reader::cuts_as_before`]
    /// gives what was cut, and [`Reader::as_before`] the files, if wanted
    /// after all.
    pub async fn read_unless_unchanged(
        &mut self,
        http: &EngineHttp,
        ids: &[String],
        key: &FleetKey,
    ) -> Option<Vec<Read>> {
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
        let mut done = Vec::with_capacity(outcomes.len());
        let mut complete = true;
        let mut unchanged = true;
        for (id, outcome) in outcomes {
            match outcome {
                Ok(outcome) => {
                    if let Some(mounts) = outcome.mounts {
                        self.mounts.insert(id.clone(), mounts);
                    }
                    unchanged &= outcome.fresh.is_empty();
                    for (destination, fresh) in outcome.fresh {
                        let cache_key = (id.clone(), destination);
                        match fresh {
                            Some(fresh) => self.cache.insert(cache_key, fresh),
                            None => self.cache.remove(&cache_key),
                        };
                    }
                    counts.add(&outcome.counts);
                    done.push((id, outcome.parts));
                }
                Err(error) => {
                    complete = false;
                    tracing::warn!(
                        container = %id.escape_debug(),
                        %error,
                        "cannot read this container's configuration files; reported as unknown"
                    );
                }
            }
        }
        let spent = self.bounds.max_total_bytes - budget.load(Ordering::Relaxed);
        self.fetched += spent;
        counts.bytes_fetched = spent;
        self.counts.add(&counts);
        // Forget what belongs to containers no longer running.
        self.mounts.retain(|id, _| ids.contains(id));
        self.cache.retain(|(id, _), _| ids.contains(id));
        let as_before = unchanged && complete && self.last_complete && self.last_ids == ids;
        self.last_ids = ids.to_vec();
        self.last_complete = complete;
        if as_before {
            return None;
        }
        let out: Vec<Read> = done
            .into_iter()
            .map(|(id, parts)| self.finish(&id, parts))
            .collect();
        self.last_cuts = out
            .iter()
            .filter(|r| !r.cut.is_empty())
            .map(|r| (r.files.container_id.clone(), r.cut.clone()))
            .collect();
        Some(out)
    }

    /// What the last reading cut, per container (only those it cut).
    pub fn cuts_as_before(&self) -> &[(String, Vec<String>)] {
        &self.last_cuts
    }

    /// The files the last reading gave, made again from the cache: what
    /// [`Reader::read_unless_unchanged`] left out when it answered `None`.
    pub fn as_before(&self) -> Vec<Read> {
        self.last_ids
            .iter()
            .filter_map(|id| {
                let mounts = self.mounts.get(id)?;
                let parts = mounts
                    .iter()
                    .filter(|m| self.bounds.may_hold_wanted(&m.destination))
                    .map(|m| Part::Cached(m.destination.clone()))
                    .collect();
                Some(self.finish(id, parts))
            })
            .collect()
    }

    /// A container's files from what its mounts gave, in mount order (a
    /// later mount's file replaces an earlier one's of the same path),
    /// within the bounds per container.
    fn finish(&self, id: &str, parts: Vec<Part>) -> Read {
        let mut files = BTreeMap::new();
        for part in parts {
            match part {
                Part::Read(read) => {
                    for file in read {
                        files.insert(file.path.clone(), file);
                    }
                }
                Part::Cached(destination) => {
                    let cache_key = (id.to_owned(), destination);
                    for held in self.cache.get(&cache_key).map_or(&[][..], |c| &c.files) {
                        let file = held.file();
                        files.insert(file.path.clone(), file);
                    }
                }
            }
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
        Read {
            files: ContainerConfigFiles {
                container_id: id.to_owned(),
                files,
            },
            cut,
        }
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
        let mut parts = Vec::new();
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
                        parts.push(Part::Cached(mount.destination.clone()));
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
            let held = complete.then(|| HeldMount {
                stats: fresh.stats,
                files: fresh.files.iter().cloned().map(HeldFile::of).collect(),
            });
            parts.push(Part::Read(fresh.files));
            fresh_entries.push((mount.destination.clone(), held));
        }
        Ok(Outcome {
            parts,
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

/// Takes `bytes` from the collection's budget, if that many are left.
fn take(budget: &AtomicU64, bytes: u64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(bytes)
        })
        .is_ok()
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
