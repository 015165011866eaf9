//! The evaluation itself.

use std::collections::{BTreeMap, BTreeSet};

use envparity_proto::v1::{Container, HostSnapshot, ImageInfo};

use super::digest::registry_digest;
use super::env::{self, ValueVerdict};
use super::environments::{self, Strictness};
use super::finding::{Basis, Finding, Kind, Severity, Side};

/// One host as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    /// The host id.
    pub host_id: &'a str,
    /// Its environment.
    pub environment: &'a str,
    /// False when the host is stale or cannot read its engine: its data is
    /// still compared (it is the last known truth) but findings name it.
    pub current: bool,
    /// Its latest snapshot.
    pub snapshot: &'a HostSnapshot,
}

/// What to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Environment pairs, each oriented as (side A, side B).
    pub pairs: Vec<(String, String)>,
    /// Only this service (host-level kinds are always evaluated).
    pub service: Option<String>,
}

impl Scope {
    /// Every pair of the given environments, in promotion order.
    pub fn all_pairs(environments: &[String]) -> Self {
        let envs = environments::ordered(environments.iter().cloned());
        let pairs = envs
            .iter()
            .enumerate()
            .flat_map(|(i, a)| envs[i + 1..].iter().map(move |b| (a.clone(), b.clone())))
            .collect();
        Scope {
            pairs,
            service: None,
        }
    }

    /// One pair, oriented as given.
    pub fn pair(a: impl Into<String>, b: impl Into<String>) -> Self {
        Scope {
            pairs: vec![(a.into(), b.into())],
            service: None,
        }
    }

    /// Restricts service-level kinds to one service.
    pub fn with_service(mut self, service: Option<String>) -> Self {
        self.service = service;
        self
    }
}

/// One replica of a service.
#[derive(Debug, Clone, Copy)]
struct Replica<'a> {
    host: &'a HostView<'a>,
    container: &'a Container,
}

/// Computes the findings for `scope`, sorted by kind, service, environments
/// and key. Deterministic: the same input always gives the same output.
pub fn evaluate(hosts: &[HostView<'_>], scope: &Scope) -> Vec<Finding> {
    let fleet = environments::ordered(hosts.iter().map(|h| h.environment));

    // service -> environment -> replicas
    let mut services: BTreeMap<&str, BTreeMap<&str, Vec<Replica<'_>>>> = BTreeMap::new();
    for host in hosts {
        for container in &host.snapshot.containers {
            let Some(service) = container.service.as_ref().map(|s| s.name.as_str()) else {
                continue;
            };
            if scope
                .service
                .as_deref()
                .is_some_and(|wanted| wanted != service)
            {
                continue;
            }
            services
                .entry(service)
                .or_default()
                .entry(host.environment)
                .or_default()
                .push(Replica { host, container });
        }
    }

    let mut findings = Vec::new();
    for (a, b) in &scope.pairs {
        let strictness = environments::strictness(a, b, &fleet);
        kernel(hosts, a, b, &mut findings);
        for (service, by_env) in &services {
            let (Some(ra), Some(rb)) = (by_env.get(a.as_str()), by_env.get(b.as_str())) else {
                continue;
            };
            image_digest(service, (a, ra), (b, rb), strictness, &mut findings);
            explicit_env(service, (a, ra), (b, rb), strictness, &mut findings);
        }
    }
    findings.sort_by(|x, y| {
        kind_rank(x.kind)
            .cmp(&kind_rank(y.kind))
            .then_with(|| x.service.cmp(&y.service))
            .then_with(|| environments::compare(&x.a.environment, &y.a.environment))
            .then_with(|| environments::compare(&x.b.environment, &y.b.environment))
            .then_with(|| x.key.cmp(&y.key))
    });
    findings
}

fn kind_rank(kind: Kind) -> usize {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// A side over some hosts with some values.
fn side<'a>(
    environment: &str,
    hosts: impl IntoIterator<Item = &'a HostView<'a>>,
    values: Vec<String>,
) -> Side {
    let mut all = BTreeSet::new();
    let mut stale = BTreeSet::new();
    for h in hosts {
        all.insert(h.host_id.to_owned());
        if !h.current {
            stale.insert(h.host_id.to_owned());
        }
    }
    Side {
        environment: environment.to_owned(),
        hosts: all.into_iter().collect(),
        stale_hosts: stale.into_iter().collect(),
        values,
    }
}

fn replica_hosts<'a>(replicas: &'a [Replica<'a>]) -> impl Iterator<Item = &'a HostView<'a>> {
    replicas.iter().map(|r| r.host)
}

fn image_digest(
    service: &str,
    (env_a, ra): (&str, &[Replica<'_>]),
    (env_b, rb): (&str, &[Replica<'_>]),
    strictness: Strictness,
    out: &mut Vec<Finding>,
) {
    fn image<'a>(r: &Replica<'a>) -> Option<&'a ImageInfo> {
        r.container.image.as_ref()
    }
    let all_have_registry = ra
        .iter()
        .chain(rb)
        .all(|r| image(r).and_then(registry_digest).is_some());
    let basis = if all_have_registry {
        Basis::RegistryDigest
    } else {
        Basis::ImageId
    };
    let identities = |replicas: &[Replica<'_>]| -> Vec<String> {
        let set: BTreeSet<String> = replicas
            .iter()
            .filter_map(|r| {
                let img = image(r)?;
                match basis {
                    Basis::RegistryDigest => registry_digest(img).map(str::to_owned),
                    _ => Some(img.image_id.clone()),
                }
            })
            .collect();
        set.into_iter().collect()
    };
    let (va, vb) = (identities(ra), identities(rb));
    if va == vb {
        return;
    }
    let severity = match strictness {
        Strictness::Strict => Severity::Critical,
        Strictness::Standard => Severity::Warning,
        Strictness::Relaxed => Severity::Info,
    };
    let summary = format!(
        "{service}: {env_a} runs {} and {env_b} runs {} ({})",
        va.join(", "),
        vb.join(", "),
        basis
    );
    out.push(Finding {
        kind: Kind::ImageDigest,
        service: service.to_owned(),
        a: side(env_a, replica_hosts(ra), va),
        b: side(env_b, replica_hosts(rb), vb),
        key: String::new(),
        severity,
        basis,
        summary,
    });
}

fn explicit_env(
    service: &str,
    (env_a, ra): (&str, &[Replica<'_>]),
    (env_b, rb): (&str, &[Replica<'_>]),
    strictness: Strictness,
    out: &mut Vec<Finding>,
) {
    fn key_id<'a>(r: &Replica<'a>) -> &'a str {
        r.host.snapshot.fingerprint_key_id.as_str()
    }
    let side_a = env::collect(ra.iter().map(|r| (r.container, key_id(r))));
    let side_b = env::collect(rb.iter().map(|r| (r.container, key_id(r))));
    let severity = match strictness {
        Strictness::Strict | Strictness::Standard => Severity::Warning,
        Strictness::Relaxed => Severity::Info,
    };
    let keys: BTreeSet<&String> = side_a.keys().chain(side_b.keys()).collect();
    for key in keys {
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
            (Some(a), Some(b)) => match env::compare_values(a, b) {
                ValueVerdict::Equal | ValueVerdict::Incomparable => continue,
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
        out.push(Finding {
            kind,
            service: service.to_owned(),
            a: side(env_a, replica_hosts(ra), va),
            b: side(env_b, replica_hosts(rb), vb),
            key: key.clone(),
            severity,
            basis,
            summary,
        });
    }
}

fn kernel(hosts: &[HostView<'_>], env_a: &str, env_b: &str, out: &mut Vec<Finding>) {
    let of = |env: &str| -> (Vec<&HostView<'_>>, Vec<String>) {
        let in_env: Vec<&HostView<'_>> = hosts.iter().filter(|h| h.environment == env).collect();
        let versions: BTreeSet<String> = in_env
            .iter()
            .filter_map(|h| h.snapshot.host.as_ref())
            .map(|f| f.kernel_version.clone())
            .filter(|v| !v.is_empty())
            .collect();
        (in_env, versions.into_iter().collect())
    };
    let ((ha, va), (hb, vb)) = (of(env_a), of(env_b));
    if ha.is_empty() || hb.is_empty() || va == vb {
        return;
    }
    let minor = |vs: &[String]| -> BTreeSet<Option<(u64, u64)>> {
        vs.iter().map(|v| major_minor(v)).collect()
    };
    let severity = if minor(&va) == minor(&vb) {
        Severity::Info
    } else {
        Severity::Warning
    };
    let summary = format!(
        "kernel differs: {env_a} runs {} and {env_b} runs {}",
        va.join(", "),
        vb.join(", ")
    );
    out.push(Finding {
        kind: Kind::Kernel,
        service: String::new(),
        a: side(env_a, ha.iter().copied(), va),
        b: side(env_b, hb.iter().copied(), vb),
        key: String::new(),
        severity,
        basis: Basis::KernelVersion,
        summary,
    });
}

/// `6.1.0-18-amd64` → `(6, 1)`.
fn major_minor(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
