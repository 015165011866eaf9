//! The agent's journal: every snapshot the aggregator has not acknowledged
//! yet, in the order they were collected, so an outage loses nothing.
//!
//! While the aggregator is unreachable each change becomes one more entry
//! (a full snapshot with its collection time); on reconnect the entries are
//! pushed oldest first, so the aggregator's history shows every change with
//! the time it happened. With a state directory the entries are files that
//! survive an agent restart; without one they are kept in memory only (and
//! the agent says so at start).
//!
//! The journal is bounded in bytes. When a new entry would exceed the bound
//! it **compacts**: it keeps the oldest entry (the first change of the
//! outage) and the new one (the latest state of every container) and drops
//! those in between — never unbounded growth, and never silently: the caller
//! logs each [`Compaction`] and counts it in a metric.
//!
//! Files are written to a temporary name, synced, then renamed, so a crash
//! leaves either the whole entry or none. A file that does not decode is
//! renamed `*.corrupt`, kept for inspection and reported, never deleted.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envparity_proto::v1::HostSnapshot;
use prost::Message;

/// Default bound on the journal's size.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

const SUFFIX: &str = ".snapshot";

/// A journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process holds the journal.
    #[error(
        "journal {path} is in use by another envparity-agent (two agents must not share a state_dir)"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("journal {path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.to_owned();
    move |source| JournalError::Io {
        path,
        action,
        source,
    }
}

/// What a compaction did, for the log line and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// Entries dropped.
    pub dropped: usize,
    /// Entries kept (the first of the outage, if it fits, and the new one).
    pub kept: usize,
    /// The bound that was reached.
    pub max_bytes: u64,
}

/// Identifies an entry: what the aggregator acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey {
    /// The agent boot the snapshot was numbered in.
    pub boot_id: String,
    /// Its sequence number in that boot.
    pub sequence: u64,
}

impl EntryKey {
    /// The key of `snapshot`.
    pub fn of(snapshot: &HostSnapshot) -> Self {
        EntryKey {
            boot_id: snapshot
                .agent
                .as_ref()
                .map(|a| a.boot_id.clone())
                .unwrap_or_default(),
            sequence: snapshot.sequence,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Orders the files; increases across agent restarts.
    id: u64,
    bytes: u64,
    key: EntryKey,
    content_hash: String,
    /// The snapshot itself when there is no directory to read it from:
    /// the agent's shared copy, not one of its own.
    in_memory: Option<Arc<HostSnapshot>>,
}

/// The unacknowledged snapshots, oldest first.
#[derive(Debug)]
pub struct Journal {
    dir: Option<PathBuf>,
    /// Held (locked) as long as the journal is open.
    _lock: Option<std::fs::File>,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    next_id: u64,
}

/// What [`Journal::open`] found besides the entries.
#[derive(Debug, Default)]
pub struct Opened {
    /// Entries recovered from a previous run.
    pub recovered: usize,
    /// Files that did not decode, renamed to `*.corrupt`.
    pub corrupt: Vec<PathBuf>,
}

impl Journal {
    /// A journal in memory only.
    pub fn in_memory(max_bytes: u64) -> Self {
        Journal {
            dir: None,
            _lock: None,
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            next_id: 1,
        }
    }

    /// Opens (creating it if needed) the journal in `dir`, recovering the
    /// entries a previous run left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Self, Opened), JournalError> {
        // Owner only: entries hold env names, fingerprints and labels.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(io(dir, "create the directory"))?;
        let lock_path = dir.join("lock");
        let lock = std::os::unix::fs::OpenOptionsExt::mode(&mut std::fs::OpenOptions::new(), 0o600)
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path, "open the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked { path: lock_path });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io(&lock_path, "lock the journal")(e));
            }
        }
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir, "list the directory"))? {
            let path = entry.map_err(io(dir, "list the directory"))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A write a crash interrupted: never renamed, so never
                // counted as written.
                std::fs::remove_file(&path).map_err(io(&path, "remove an unfinished write"))?;
            } else if let Some(id) = name
                .strip_suffix(SUFFIX)
                .and_then(|n| n.parse::<u64>().ok())
            {
                found.push((id, path));
            }
        }
        found.sort();
        let mut journal = Journal {
            dir: Some(dir.to_owned()),
            _lock: Some(lock),
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            next_id: found.last().map_or(1, |(id, _)| id + 1),
        };
        let mut opened = Opened::default();
        for (id, path) in found {
            let bytes = std::fs::read(&path).map_err(io(&path, "read an entry"))?;
            match HostSnapshot::decode(bytes.as_slice()) {
                Ok(snapshot) => {
                    journal.bytes += bytes.len() as u64;
                    journal.entries.push_back(Entry {
                        id,
                        bytes: bytes.len() as u64,
                        key: EntryKey::of(&snapshot),
                        content_hash: snapshot.content_hash,
                        in_memory: None,
                    });
                    opened.recovered += 1;
                }
                Err(_) => {
                    let mut corrupt = path.clone().into_os_string();
                    corrupt.push(".corrupt");
                    let corrupt = PathBuf::from(corrupt);
                    std::fs::rename(&path, &corrupt)
                        .map_err(io(&path, "set a corrupt entry aside"))?;
                    opened.corrupt.push(corrupt);
                }
            }
        }
        Ok((journal, opened))
    }

    /// Entries waiting for acknowledgement.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The encoded size of the waiting entries.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the entries are kept; `None`: in memory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The content hash of the newest entry.
    pub fn newest_hash(&self) -> Option<&str> {
        self.entries.back().map(|e| e.content_hash.as_str())
    }

    /// Appends `snapshot` (already numbered), compacting first if it would
    /// not fit. Durable when this returns (with a directory). In memory, the
    /// entry is `snapshot` itself, shared, and nothing is encoded.
    pub fn append(
        &mut self,
        snapshot: impl Into<Arc<HostSnapshot>>,
    ) -> Result<Option<Compaction>, JournalError> {
        let snapshot = snapshot.into();
        let encoded = self.dir.as_ref().map(|_| snapshot.encode_to_vec());
        let size = encoded
            .as_ref()
            .map_or_else(|| snapshot.encoded_len(), Vec::len) as u64;
        let compaction = if self.bytes + size > self.max_bytes && !self.entries.is_empty() {
            Some(self.compact(size)?)
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        let key = EntryKey::of(&snapshot);
        let content_hash = snapshot.content_hash.clone();
        let in_memory = match (&self.dir, encoded) {
            (Some(dir), Some(encoded)) => {
                write_entry(dir, id, &encoded)?;
                None
            }
            _ => Some(snapshot),
        };
        self.entries.push_back(Entry {
            id,
            bytes: size,
            key,
            content_hash,
            in_memory,
        });
        self.bytes += size;
        Ok(compaction)
    }

    /// Makes room for `incoming` bytes: keeps the oldest entry if it and the
    /// new one fit, drops everything else.
    fn compact(&mut self, incoming: u64) -> Result<Compaction, JournalError> {
        let before = self.entries.len();
        let keep_first = self
            .entries
            .front()
            .is_some_and(|first| first.bytes + incoming <= self.max_bytes);
        let dropped: Vec<Entry> = if keep_first {
            self.entries.drain(1..).collect()
        } else {
            self.entries.drain(..).collect()
        };
        for entry in &dropped {
            self.bytes -= entry.bytes;
            self.remove_file(entry.id)?;
        }
        Ok(Compaction {
            dropped: dropped.len(),
            kept: before - dropped.len() + 1,
            max_bytes: self.max_bytes,
        })
    }

    /// The oldest entry, to push next (in memory: the shared copy).
    pub fn oldest(&self) -> Result<Option<Arc<HostSnapshot>>, JournalError> {
        let Some(entry) = self.entries.front() else {
            return Ok(None);
        };
        if let Some(snapshot) = &entry.in_memory {
            return Ok(Some(Arc::clone(snapshot)));
        }
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let path = entry_path(dir, entry.id);
        let bytes = std::fs::read(&path).map_err(io(&path, "read an entry"))?;
        HostSnapshot::decode(bytes.as_slice())
            .map(|s| Some(Arc::new(s)))
            .map_err(|e| JournalError::Io {
                path,
                action: "decode an entry",
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })
    }

    /// Removes the oldest entry once the aggregator acknowledged `key`. An
    /// acknowledgement for something no longer oldest (dropped by a
    /// compaction meanwhile) removes nothing.
    pub fn acknowledged(&mut self, key: &EntryKey) -> Result<bool, JournalError> {
        if self.entries.front().map(|e| &e.key) != Some(key) {
            return Ok(false);
        }
        self.drop_oldest()?;
        Ok(true)
    }

    /// Removes the oldest entry whatever it holds (it could not be read).
    pub fn drop_oldest(&mut self) -> Result<(), JournalError> {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.bytes;
            self.remove_file(entry.id)?;
        }
        Ok(())
    }

    fn remove_file(&self, id: u64) -> Result<(), JournalError> {
        if let Some(dir) = &self.dir {
            let path = entry_path(dir, id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, "remove an acknowledged entry")(e)),
            }
        }
        Ok(())
    }
}

fn entry_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SUFFIX}"))
}

fn write_entry(dir: &Path, id: u64, encoded: &[u8]) -> Result<(), JournalError> {
    use std::io::Write;
    let tmp = dir.join(format!(".{id:020}.tmp"));
    let mut file = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
        0o600,
    )
    .open(&tmp)
    .map_err(io(&tmp, "create an entry"))?;
    file.write_all(encoded)
        .map_err(io(&tmp, "write an entry"))?;
    file.sync_all().map_err(io(&tmp, "sync an entry"))?;
    let path = entry_path(dir, id);
    std::fs::rename(&tmp, &path).map_err(io(&path, "rename an entry into place"))?;
    // The rename itself must survive a power loss too.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "sync the directory"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::fixtures;
    use proptest::prelude::*;

    /// Report `sequence` of boot `b1`, its content hash `hash-{sequence}`
    /// (the journal takes it as given) and `padding` bytes of fleet key id.
    fn snap(sequence: u64, padding: usize) -> HostSnapshot {
        let mut s = fixtures::snapshot("h", "dev")
            .boot_id("b1")
            .agent_version("t")
            .sequence(sequence)
            .fingerprint_key("p".repeat(padding))
            .build();
        s.content_hash = format!("hash-{sequence}");
        s
    }

    fn sequences(j: &mut Journal) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(s) = j.oldest().unwrap() {
            out.push(s.sequence);
            assert!(j.acknowledged(&EntryKey::of(&s)).unwrap());
        }
        out
    }

    #[test]
    fn the_journal_is_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state/journal");
        let (mut j, _) = Journal::open(&dir, DEFAULT_MAX_BYTES).unwrap();
        j.append(snap(1, 10)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&parent.path().join("state")), 0o700);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }

    #[test]
    fn entries_come_back_in_order_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, opened) = Journal::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
            assert_eq!(opened.recovered, 0);
            for seq in 1..=3 {
                assert_eq!(j.append(snap(seq, 10)).unwrap(), None);
            }
            let first = j.oldest().unwrap().unwrap();
            assert!(j.acknowledged(&EntryKey::of(&first)).unwrap());
        }
        let (mut j, opened) = Journal::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(opened.recovered, 2);
        assert_eq!(j.newest_hash(), Some("hash-3"));
        j.append(snap(4, 10)).unwrap();
        assert_eq!(sequences(&mut j), vec![2, 3, 4]);
        assert_eq!(j.bytes(), 0);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["lock"], "only the lock file stays");
    }

    #[test]
    fn two_agents_cannot_share_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = Journal::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        let err = Journal::open(dir.path(), DEFAULT_MAX_BYTES).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("in use by another envparity-agent")
        );
        drop(first);
        Journal::open(dir.path(), DEFAULT_MAX_BYTES).expect("free again once closed");
    }

    #[test]
    fn a_full_journal_keeps_the_first_and_the_latest_and_says_so() {
        let size = snap(1, 1000).encoded_len() as u64;
        let mut j = Journal::in_memory(size * 3);
        for seq in 1..=3 {
            assert_eq!(j.append(snap(seq, 1000)).unwrap(), None);
        }
        let compaction = j.append(snap(4, 1000)).unwrap().expect("compacted");
        assert_eq!(
            compaction,
            Compaction {
                dropped: 2,
                kept: 2,
                max_bytes: size * 3
            }
        );
        assert!(j.bytes() <= size * 3);
        assert_eq!(sequences(&mut j), vec![1, 4]);
    }

    #[test]
    fn an_acknowledgement_for_a_dropped_entry_removes_nothing() {
        let mut j = Journal::in_memory(u64::MAX);
        j.append(snap(5, 0)).unwrap();
        let stale = EntryKey {
            boot_id: "b1".into(),
            sequence: 4,
        };
        assert!(!j.acknowledged(&stale).unwrap());
        assert_eq!(j.len(), 1);
    }

    #[test]
    fn corrupt_and_unfinished_files_are_set_aside_not_lost_or_replayed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, _) = Journal::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
            j.append(snap(1, 0)).unwrap();
            j.append(snap(2, 0)).unwrap();
        }
        std::fs::write(entry_path(dir.path(), 1), b"\xff\xff not protobuf").unwrap();
        std::fs::write(dir.path().join(".00000000000000000009.tmp"), b"half").unwrap();
        let (mut j, opened) = Journal::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(opened.recovered, 1);
        assert_eq!(opened.corrupt.len(), 1);
        assert!(opened.corrupt[0].exists(), "kept for inspection");
        assert!(!dir.path().join(".00000000000000000009.tmp").exists());
        assert_eq!(sequences(&mut j), vec![2]);
        // New entries never reuse the corrupt file's name.
        j.append(snap(3, 0)).unwrap();
        assert!(entry_path(dir.path(), 3).exists());
    }

    proptest! {
        /// Whatever is appended and acknowledged, the journal stays within
        /// its bound (unless one entry alone exceeds it), keeps order, and
        /// always holds the newest entry.
        #[test]
        fn bounded_ordered_and_never_without_the_latest(
            ops in proptest::collection::vec((any::<bool>(), 0usize..600), 1..80),
            max in 500u64..3000,
        ) {
            let mut j = Journal::in_memory(max);
            let mut seq = 0;
            for (ack, padding) in ops {
                if ack {
                    if let Some(s) = j.oldest().unwrap() {
                        j.acknowledged(&EntryKey::of(&s)).unwrap();
                    }
                } else {
                    seq += 1;
                    let s = snap(seq, padding);
                    let size = s.encoded_len() as u64;
                    j.append(s).unwrap();
                    let newest = format!("hash-{seq}");
                    prop_assert_eq!(j.newest_hash(), Some(newest.as_str()));
                    prop_assert!(j.bytes() <= max.max(size), "{} > {}", j.bytes(), max);
                }
            }
            let order = sequences(&mut j);
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}", order);
        }
    }
}
