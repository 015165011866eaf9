//! What the reader keeps between collections, and how it tells that a
//! mount is unchanged.
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

use envparity_proto::v1::ConfigFile;

use super::tar::{Entry, Kind};
use crate::runtime::engine_http::{EngineHttp, PathStat};

/// What the reader keeps of a mount between collections: what it saw of
/// each path, and its files in the compact form of [`HeldFile`].
#[derive(Debug, Clone)]
pub(super) struct HeldMount {
    pub(super) stats: Vec<(String, Seen)>,
    pub(super) files: Vec<HeldFile>,
}

/// A file as the cache holds it, which a whole reading holds as many times as
/// it has containers × files: the fingerprints as their 32 bytes rather than
/// 64 hex digits each in its own allocation, and the key paths in one
/// string. [`HeldFile::file`] gives back exactly the [`ConfigFile`] it was
/// made of. With 100 keys of short paths, about 60 bytes a key instead of
/// about 180.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HeldFile {
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
    pub(super) fn of(mut file: ConfigFile) -> Self {
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
    pub(super) fn file(&self) -> ConfigFile {
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
pub(super) enum Seen {
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
    pub(super) fn of_entry(entry: &Entry, now: u64) -> Self {
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
pub(super) fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the engine's stats say of a cached mount.
pub(super) enum Check {
    /// Every stat it was read with is unchanged.
    Unchanged,
    /// One differs (or could not be asked); `root` is the mount's own stat
    /// when it was asked, so that reading the mount again does not ask
    /// twice.
    Changed { root: Option<PathStat> },
}

/// Asks the engine for the stat of every path a cached mount was read with
/// (the mount's own first), stopping at the first that differs.
pub(super) async fn check(http: &EngineHttp, id: &str, cached: &HeldMount) -> Check {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_files::counts::not_read;
    use envparity_proto::v1::ConfigFileState;

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
}
