//! Configuration passed as files: the files mounted into a service's
//! containers, compared file by file and key by key across a pair of
//! environments (issue 20; the agent side is `agent/src/config_files/`).
//!
//! What a side says: only replicas whose agent read their configuration
//! files count (`Replica::config` is `Some`). A side where no replica was
//! read is unknown, and nothing is compared against it: an older agent, a
//! runtime without the archive API or reading turned off must never read as
//! "every file missing".
//!
//! Per file (its path in the container):
//! - on one side only: `config_file_missing` / `config_file_extra` (key: the
//!   path);
//! - parsed into keys on both sides: per key path, `config_key_missing` /
//!   `config_key_extra` and `config_value` (key: `PATH:KEY_PATH`), values
//!   compared by fingerprint exactly as env values are
//!   ([`crate::parity::env::compare_values`]: clear values when both sides
//!   sent them, fingerprints under one fleet key, nothing under two);
//! - otherwise, when both sides have the whole content's fingerprint (a file
//!   in no known format, or one that did not parse): one `config_value`
//!   with key `PATH:$file`;
//! - not read on a side: not compared (the reason is shown by `explain`).
//!
//! Policy: `config_ignored` (file glob and key pattern, for every service or
//! one) skips a key, and the key `$file` of a file skips its presence;
//! `config_expected_to_differ` skips the value, never the presence.

use std::collections::{BTreeMap, BTreeSet};

use envparity_proto::v1::{ConfigFile, ConfigFileState};

use super::{Ctx, Pair, Replica, config_severity, push, replica_hosts, side};
use crate::parity::env::{KeyValues, ValueVerdict, compare_values};
use crate::parity::finding::{Basis, Finding, Kind};

/// The key of a file compared whole.
pub(super) const WHOLE: &str = "$file";

/// What one side says of one file.
#[derive(Debug, Default)]
struct FileSide {
    /// Keys of the replicas that parsed it, by key path.
    keys: BTreeMap<String, KeyValues>,
    /// Whether every replica holding it parsed it into keys.
    all_keyed: bool,
    /// The whole content's fingerprint, from every replica that read it.
    whole: KeyValues,
    /// Whether every replica holding it read it (has a fingerprint).
    all_read: bool,
}

/// A side's files, by path; `None` when no replica was read.
fn fold<'a>(replicas: &[Replica<'a>]) -> Option<BTreeMap<&'a str, FileSide>> {
    let mut files: BTreeMap<&str, FileSide> = BTreeMap::new();
    let mut any = false;
    for r in replicas {
        let Some(read) = r.config else { continue };
        any = true;
        let key_id = r.host.snapshot.fingerprint_key_id.as_str();
        for f in read {
            let side = files.entry(f.path.as_str()).or_insert_with(|| FileSide {
                all_keyed: true,
                all_read: true,
                ..FileSide::default()
            });
            if f.fingerprint.is_empty() {
                side.all_read = false;
            } else {
                side.whole.add(&f.fingerprint, None, key_id);
            }
            if is_keyed(f) {
                for k in &f.keys {
                    side.keys.entry(k.path.clone()).or_default().add(
                        &k.fingerprint,
                        k.value.as_deref(),
                        key_id,
                    );
                }
            } else {
                side.all_keyed = false;
            }
        }
    }
    any.then_some(files)
}

/// Whether a file was parsed into keys (read, in a known format).
pub(super) fn is_keyed(f: &ConfigFile) -> bool {
    f.state() == ConfigFileState::Read && f.format != "unknown" && !f.format.is_empty()
}

/// Compares the configuration files of a service present on both sides;
/// returns the keys (`PATH:KEY_PATH`, `PATH:$file`) set on both whose
/// values could not be compared (fingerprinted under different fleet keys),
/// for [`super::config::key_mismatch`].
pub(super) fn compare(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) -> Vec<String> {
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    let (Some(files_a), Some(files_b)) = (fold(ra), fold(rb)) else {
        return Vec::new();
    };
    let mut incomparable = Vec::new();
    let service = p.service;
    let severity = config_severity(p.level);
    let mut emit = |kind, key: String, va: Vec<String>, vb: Vec<String>, basis, summary| {
        push(
            ctx,
            out,
            kind,
            service,
            side(env_a, replica_hosts(ra), va),
            Some(side(env_b, replica_hosts(rb), vb)),
            &key,
            severity,
            basis,
            summary,
        );
    };
    let paths: BTreeSet<&str> = files_a.keys().chain(files_b.keys()).copied().collect();
    for path in paths {
        let (a, b) = match (files_a.get(path), files_b.get(path)) {
            (Some(a), Some(b)) => (a, b),
            (only_a, _) => {
                if ctx.policy.config_ignored(service, path, WHOLE) {
                    continue;
                }
                let (kind, va, vb, summary) = if only_a.is_some() {
                    (
                        Kind::ConfigFileMissing,
                        vec!["mounted".to_owned()],
                        Vec::new(),
                        format!("{service}: {path} is mounted in {env_a} but not in {env_b}"),
                    )
                } else {
                    (
                        Kind::ConfigFileExtra,
                        Vec::new(),
                        vec!["mounted".to_owned()],
                        format!("{service}: {path} is mounted in {env_b} but not in {env_a}"),
                    )
                };
                emit(kind, path.to_owned(), va, vb, Basis::KeyPresence, summary);
                continue;
            }
        };
        if a.all_keyed && b.all_keyed {
            let not_compared = keys(ctx, service, (env_a, env_b), path, a, b, &mut emit);
            incomparable.extend(not_compared);
        } else if a.all_read && b.all_read && !ctx.policy.config_ignored(service, path, WHOLE) {
            if ctx.policy.config_expected_to_differ(service, path, WHOLE) {
                continue;
            }
            match compare_values(&a.whole, &b.whole) {
                ValueVerdict::Differs { a, b, basis } => {
                    let summary = format!(
                        "{service}: {path} differs between {env_a} and {env_b} (compared whole)"
                    );
                    emit(
                        Kind::ConfigValue,
                        format!("{path}:{WHOLE}"),
                        a,
                        b,
                        basis,
                        summary,
                    );
                }
                ValueVerdict::Incomparable => incomparable.push(format!("{path}:{WHOLE}")),
                ValueVerdict::Equal => {}
            }
        }
    }
    incomparable
}

type Emit<'e> = dyn FnMut(Kind, String, Vec<String>, Vec<String>, Basis, String) + 'e;

/// Compares a file parsed into keys on both sides; returns the key ids
/// whose values could not be compared.
fn keys(
    ctx: &Ctx<'_>,
    service: &str,
    (env_a, env_b): (&str, &str),
    path: &str,
    a: &FileSide,
    b: &FileSide,
    emit: &mut Emit<'_>,
) -> Vec<String> {
    let mut incomparable = Vec::new();
    let all: BTreeSet<&String> = a.keys.keys().chain(b.keys.keys()).collect();
    for key in all {
        if ctx.policy.config_ignored(service, path, key) {
            continue;
        }
        let id = format!("{path}:{key}");
        match (a.keys.get(key), b.keys.get(key)) {
            (Some(_), None) => emit(
                Kind::ConfigKeyMissing,
                id,
                vec!["set".to_owned()],
                Vec::new(),
                Basis::KeyPresence,
                format!("{service}: {key} in {path} is set in {env_a} but not in {env_b}"),
            ),
            (None, Some(_)) => emit(
                Kind::ConfigKeyExtra,
                id,
                Vec::new(),
                vec!["set".to_owned()],
                Basis::KeyPresence,
                format!("{service}: {key} in {path} is set in {env_b} but not in {env_a}"),
            ),
            (Some(_), Some(_)) if ctx.policy.config_expected_to_differ(service, path, key) => {}
            (Some(va), Some(vb)) => match compare_values(va, vb) {
                ValueVerdict::Differs { a, b, basis } => emit(
                    Kind::ConfigValue,
                    id,
                    a,
                    b,
                    basis,
                    format!("{service}: {key} in {path} differs between {env_a} and {env_b}"),
                ),
                ValueVerdict::Incomparable => incomparable.push(id),
                ValueVerdict::Equal => {}
            },
            (None, None) => {}
        }
    }
    incomparable
}

/// One aspect of a replica's configuration, for replica drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Aspect<'a> {
    /// The file's path.
    pub path: &'a str,
    /// The key path, `$file` for a file compared whole, `None` for the
    /// file's presence.
    pub key: Option<&'a str>,
    /// The fingerprint (empty for presence).
    pub fingerprint: &'a str,
    /// The clear value, when sent.
    pub clear: Option<&'a str>,
}

/// One replica's configuration by aspect name: `config:PATH` for a file's
/// presence, `config:PATH:KEY_PATH` per key of a parsed file,
/// `config:PATH:$file` for a file compared whole. `None` when its agent did
/// not read its files. `ignored(path, key)` leaves keys (and, for `$file`,
/// whole files) out.
pub(super) fn replica_aspects<'a>(
    r: &Replica<'a>,
    ignored: impl Fn(&str, &str) -> bool,
) -> Option<BTreeMap<String, Aspect<'a>>> {
    let files = r.config?;
    let mut out = BTreeMap::new();
    for f in files {
        let path = f.path.as_str();
        if ignored(path, WHOLE) {
            continue;
        }
        let aspect = |key, fingerprint, clear| Aspect {
            path,
            key,
            fingerprint,
            clear,
        };
        out.insert(format!("config:{path}"), aspect(None, "", None));
        if is_keyed(f) {
            for k in f.keys.iter().filter(|k| !ignored(path, &k.path)) {
                out.insert(
                    format!("config:{path}:{}", k.path),
                    aspect(Some(k.path.as_str()), &k.fingerprint, k.value.as_deref()),
                );
            }
        } else if !f.fingerprint.is_empty() {
            out.insert(
                format!("config:{path}:{WHOLE}"),
                aspect(Some(WHOLE), &f.fingerprint, None),
            );
        }
    }
    Some(out)
}
