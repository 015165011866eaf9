//! What a container is given: its explicit env, key by key by fingerprint,
//! and its runtime settings; and the one `key_mismatch` for the values (env
//! and configuration files) that different fleet keys kept from comparing.

use std::collections::BTreeSet;

use super::content::distinct;
use super::{Ctx, Pair, Replica, config_severity, push, replica_hosts, side};
use crate::parity::env::{self, ValueVerdict};
use crate::parity::finding::{Basis, Finding, Kind};
use crate::parity::policy::RuntimeField;
use crate::parity::runtime;

/// The fleet key a replica's values were fingerprinted under.
fn key_id<'a>(r: &Replica<'a>) -> &'a str {
    r.host.snapshot.fingerprint_key_id.as_str()
}

/// Compares the explicit env of a service present on both sides; returns
/// the keys set on both whose values could not be compared (fingerprinted
/// under different fleet keys), for [`key_mismatch`].
pub(super) fn explicit_env(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) -> Vec<String> {
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    let service = p.service;
    let side_a = env::collect(ra.iter().map(|r| (r.container, key_id(r))));
    let side_b = env::collect(rb.iter().map(|r| (r.container, key_id(r))));
    let severity = config_severity(p.level);
    let keys: BTreeSet<&String> = side_a.keys().chain(side_b.keys()).collect();
    // Keys set on both sides whose fingerprints were made with different
    // fleet keys: not compared, reported together as one key_mismatch.
    let mut incomparable: Vec<String> = Vec::new();
    for key in keys {
        if ctx.policy.env_ignored(service, key) {
            continue;
        }
        let (kind, basis, va, vb, summary) = match (side_a.get(key), side_b.get(key)) {
            (Some(_), None) => (
                Kind::EnvMissingKey,
                Basis::KeyPresence,
                vec!["set".to_owned()],
                Vec::new(),
                format!("{service}: {key} is set in {env_a} but not in {env_b}"),
            ),
            (None, Some(_)) => (
                Kind::EnvExtraKey,
                Basis::KeyPresence,
                Vec::new(),
                vec!["set".to_owned()],
                format!("{service}: {key} is set in {env_b} but not in {env_a}"),
            ),
            (Some(_), Some(_)) if ctx.policy.expected_to_differ(service, key) => continue,
            (Some(a), Some(b)) => match env::compare_values(a, b) {
                ValueVerdict::Equal => continue,
                ValueVerdict::Incomparable => {
                    incomparable.push(key.clone());
                    continue;
                }
                ValueVerdict::Differs { a, b, basis } => (
                    Kind::EnvValue,
                    basis,
                    a,
                    b,
                    format!("{service}: {key} differs between {env_a} and {env_b}"),
                ),
            },
            (None, None) => continue,
        };
        push(
            ctx,
            out,
            kind,
            service,
            side(env_a, replica_hosts(ra), va),
            Some(side(env_b, replica_hosts(rb), vb)),
            key,
            severity,
            basis,
            summary,
        );
    }
    incomparable
}

/// One `key_mismatch` for a service on both sides whose values set on
/// both (env keys, and configuration file keys as `PATH:KEY_PATH`) were
/// fingerprinted under different fleet keys and so not compared; nothing
/// when there are none.
pub(super) fn key_mismatch(
    ctx: &Ctx<'_>,
    p: &Pair<'_, '_>,
    incomparable: &[String],
    out: &mut Vec<Finding>,
) {
    if incomparable.is_empty() {
        return;
    }
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    let service = p.service;
    let severity = config_severity(p.level);
    let ids = |replicas: &[Replica<'_>]| -> Vec<String> {
        let ids: BTreeSet<&str> = replicas.iter().map(key_id).collect();
        ids.into_iter().map(str::to_owned).collect()
    };
    let (ids_a, ids_b) = (ids(ra), ids(rb));
    let summary = format!(
        "{service}: {env_a} ({}) and {env_b} ({}) fingerprint env and configuration files with different fleet keys, so {} could not be compared: {}",
        ids_a.join(", "),
        ids_b.join(", "),
        match incomparable.len() {
            1 => "1 key".to_owned(),
            n => format!("{n} keys"),
        },
        incomparable.join(", ")
    );
    push(
        ctx,
        out,
        Kind::KeyMismatch,
        service,
        side(env_a, replica_hosts(ra), ids_a),
        Some(side(env_b, replica_hosts(rb), ids_b)),
        "",
        severity,
        Basis::KeyId,
        summary,
    );
}

/// Whether a replica's runtime reports `field`: the CRI has no restart
/// policy (the kubelet restarts containers), so a replica on containerd
/// says nothing about it and is left out of that comparison.
fn reports(r: &Replica<'_>, field: RuntimeField) -> bool {
    field != RuntimeField::RestartPolicy
        || super::host::runtime_of(r.host.snapshot.engine.as_ref()) != "containerd"
}

pub(super) fn runtime_config(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    for field in RuntimeField::ALL {
        if ctx.policy.runtime_ignored(p.service, field) {
            continue;
        }
        let values = |replicas: &[Replica<'_>]| {
            distinct(replicas, |r| {
                reports(r, field).then(|| runtime::render(r.container.runtime.as_ref(), field))
            })
        };
        let (va, vb) = (values(ra), values(rb));
        // A side none of whose replicas reports the setting is unknown:
        // nothing is claimed.
        if va == vb || va.is_empty() || vb.is_empty() {
            continue;
        }
        let summary = format!(
            "{}: {} differs: {env_a} has {} and {env_b} has {}",
            p.service,
            field.as_str(),
            va.join(" | "),
            vb.join(" | ")
        );
        push(
            ctx,
            out,
            Kind::RuntimeConfig,
            p.service,
            side(env_a, replica_hosts(ra), va),
            Some(side(env_b, replica_hosts(rb), vb)),
            field.as_str(),
            config_severity(p.level),
            Basis::RuntimeSetting,
            summary,
        );
    }
}
