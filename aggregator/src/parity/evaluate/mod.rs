//! The evaluation itself: hosts and a policy in, findings out.
//!
//! [`evaluate`] groups the replicas by service and environment, then hands
//! each comparison to the file that knows it: image content, tags and
//! pinning (`content`), a service's presence and replicas (`service`), the
//! env and runtime settings a container is given (`config`), its mounted
//! configuration files (`config_files`), and the
//! host-level kinds (`host`). Containers without an identity of their own
//! (`Container.unmanaged`) are never a service's replicas: each is reported
//! on its host (`service::unmanaged_container`) and compared with nothing. Each comparison only appends findings; the
//! order comes from `order::sort` at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::v1::{ConfigFile, Container, ContainerConfigFiles, HostSnapshot, ImageInfo};

use super::finding::{Basis, Finding, Kind, Severity, Side, Status};
use super::order::sort;
use super::policy::{Level, Policy};

mod config;
mod config_files;
mod content;
mod host;
mod service;

use config::{explicit_env, key_mismatch, runtime_config};
use content::{image_digest, same_tag, unpinned_image};
pub use host::{HOST_FACT_COUNT, host_fact_values};
use host::{env_facts, host_facts, stale_hosts};
use service::{container_unreportable, missing_service, replica_drift, unmanaged_container};

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
    /// True when the host has not been heard from within the stale window.
    pub stale: bool,
    /// When the aggregator last heard from it.
    pub last_seen: SystemTime,
    /// Its latest snapshot: its facts, and its containers unless `held`.
    pub snapshot: &'a HostSnapshot,
    /// Its containers as the fleet holds them (then `snapshot` is only
    /// their header, and its own containers are not read).
    pub held: Option<&'a [HeldContainer]>,
    /// When set, only these positions of `held` are read: the containers
    /// of the services a scope evaluates (the others would be passed over
    /// one by one).
    pub only: Option<&'a [u32]>,
}

impl<'a> HostView<'a> {
    /// Its containers, as (id, name, content, configuration files when
    /// read): from the snapshot's `config_files` for a whole snapshot, from
    /// each held container otherwise.
    fn containers(&self) -> Vec<(&'a str, &'a str, &'a Container, Option<&'a [ConfigFile]>)> {
        let (snapshot, held) = (self.snapshot, self.held);
        match held {
            None => {
                let files: BTreeMap<&str, &[ConfigFile]> = snapshot
                    .config_files
                    .iter()
                    .rev()
                    .map(|f| (f.container_id.as_str(), f.files.as_slice()))
                    .collect();
                snapshot
                    .containers
                    .iter()
                    .map(|c| {
                        (
                            c.id.as_str(),
                            c.name.as_str(),
                            c,
                            files.get(c.id.as_str()).copied(),
                        )
                    })
                    .collect()
            }
            Some(held) => {
                let read = |h: &'a HeldContainer| {
                    let files = h.config.as_ref().map(|f| f.files.as_slice());
                    (&*h.id, &*h.name, h.content.as_ref(), files)
                };
                match self.only {
                    Some(only) => only
                        .iter()
                        .filter_map(|&i| held.get(i as usize))
                        .map(read)
                        .collect(),
                    None => held.iter().map(read).collect(),
                }
            }
        }
    }
}

/// A container as the fleet holds it: its id and name beside its content,
/// the container with its id and name cleared, which identical containers
/// of the fleet share.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldContainer {
    /// The container id.
    pub id: Box<str>,
    /// The container name.
    pub name: Box<str>,
    /// Everything else.
    pub content: Arc<Container>,
    /// The SHA-256 of `content` encoded
    /// ([`envparity_proto::hash::content_digest`]), of which a content hash
    /// by container is made.
    pub digest: envparity_proto::hash::ContentDigest,
    /// Its configuration files when its agent read them (with
    /// `container_id` cleared), shared like `content`; `None`: not read.
    pub config: Option<Arc<ContainerConfigFiles>>,
}

impl HeldContainer {
    /// Its configuration files as the agent sent them, if read.
    pub fn config_files(&self) -> Option<ContainerConfigFiles> {
        self.config.as_ref().map(|f| ContainerConfigFiles {
            container_id: self.id.to_string(),
            files: f.files.clone(),
        })
    }

    /// The container whole again.
    pub fn whole(&self) -> Container {
        let mut c = Container::clone(&self.content);
        c.id = self.id.to_string();
        c.name = self.name.to_string();
        c
    }
}

/// What to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Environment pairs, each oriented as (side A, side B).
    pub pairs: Vec<(String, String)>,
    /// Environments for the single-environment kinds.
    pub environments: Vec<String>,
    /// Only these services (`None`: every service).
    pub services: Option<BTreeSet<String>>,
    /// Whether to evaluate host-level kinds.
    pub host_level: bool,
    /// Only these hosts' staleness (`None`: every host's). A host's
    /// staleness depends on that host alone, so a report re-evaluates its
    /// own, not every host's.
    pub stale_of: Option<BTreeSet<String>>,
}

impl Scope {
    /// Every pair of the given environments in promotion order, except pairs
    /// the policy ignores.
    pub fn all(policy: &Policy, environments: &[String]) -> Self {
        let envs = policy.ordered(environments.iter().cloned());
        let pairs = envs
            .iter()
            .enumerate()
            .flat_map(|(i, a)| envs[i + 1..].iter().map(move |b| (a.clone(), b.clone())))
            .filter(|(a, b)| policy.level(a, b, &envs) != Level::Ignore)
            .collect();
        Scope {
            pairs,
            environments: envs,
            services: None,
            host_level: true,
            stale_of: None,
        }
    }

    /// One pair, oriented as given.
    pub fn pair(a: impl Into<String>, b: impl Into<String>) -> Self {
        let (a, b) = (a.into(), b.into());
        Scope {
            pairs: vec![(a.clone(), b.clone())],
            environments: vec![a, b],
            services: None,
            host_level: true,
            stale_of: None,
        }
    }

    /// Restricts service-level kinds to one service (`None`: all).
    pub fn with_service(mut self, service: Option<String>) -> Self {
        self.services = service.map(|s| BTreeSet::from([s]));
        self
    }

    /// Restricts service-level kinds to some services.
    pub fn with_services(mut self, services: BTreeSet<String>) -> Self {
        self.services = Some(services);
        self
    }

    /// Whether host-level kinds are evaluated.
    pub fn with_host_level(mut self, host_level: bool) -> Self {
        self.host_level = host_level;
        self
    }

    /// Restricts stale-host findings to these hosts (`None`: every host).
    pub fn with_stale_of(mut self, hosts: Option<BTreeSet<String>>) -> Self {
        self.stale_of = hosts;
        self
    }

    fn wants(&self, service: &str) -> bool {
        self.services.as_ref().is_none_or(|s| s.contains(service))
    }
}

/// One replica of a service.
#[derive(Debug, Clone, Copy)]
struct Replica<'a> {
    host: &'a HostView<'a>,
    /// The container's name.
    name: &'a str,
    /// The container (its name and id are in `name` and the host's view).
    container: &'a Container,
    /// Its configuration files, when its agent read them (`None`: unknown,
    /// never "no files").
    config: Option<&'a [ConfigFile]>,
}

impl<'a> Replica<'a> {
    fn image(&self) -> Option<&'a ImageInfo> {
        self.container.image.as_ref()
    }
}

/// What the evaluation of one pair or environment shares.
struct Ctx<'p> {
    policy: &'p Policy,
    fleet: Vec<String>,
}

/// Computes the findings for `scope`, sorted by kind, service, environments,
/// key and host. Deterministic: the same input always gives the same output.
/// The returned findings have a default [`Status`]; see [`super::judge`].
pub fn evaluate(hosts: &[HostView<'_>], policy: &Policy, scope: &Scope) -> Vec<Finding> {
    let ctx = Ctx {
        policy,
        fleet: policy.ordered(hosts.iter().map(|h| h.environment)),
    };

    // service -> environment -> replicas
    let mut services: BTreeMap<&str, BTreeMap<&str, Vec<Replica<'_>>>> = BTreeMap::new();
    // environment -> unmanaged containers: named at random, compared with
    // nothing, reported where they run.
    let mut unmanaged: BTreeMap<&str, Vec<Replica<'_>>> = BTreeMap::new();
    // A scope of no services (host-level kinds only) reads no container.
    let no_services = scope.services.as_ref().is_some_and(BTreeSet::is_empty);
    for host in hosts.iter().filter(|_| !no_services) {
        for (_, name, container, config) in host.containers() {
            let Some(service) = container.service.as_ref().map(|s| s.name.as_str()) else {
                continue;
            };
            if !scope.wants(service) || policy.service_ignored(service) {
                continue;
            }
            let replica = Replica {
                host,
                name,
                container,
                config,
            };
            if container.unmanaged {
                unmanaged.entry(host.environment).or_default().push(replica);
                continue;
            }
            services
                .entry(service)
                .or_default()
                .entry(host.environment)
                .or_default()
                .push(replica);
        }
    }

    let facts = if scope.host_level {
        env_facts(hosts)
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    for env in &scope.environments {
        for (service, by_env) in &services {
            if let Some(replicas) = by_env.get(env.as_str()) {
                unpinned_image(&ctx, service, env, replicas, &mut out);
                container_unreportable(&ctx, service, env, replicas, &mut out);
                replica_drift(&ctx, service, env, replicas, &mut out);
            }
        }
        for r in unmanaged.get(env.as_str()).into_iter().flatten() {
            unmanaged_container(&ctx, env, r, &mut out);
        }
        if let Some(f) = facts.get(env.as_str()) {
            stale_hosts(&ctx, &f.hosts, scope.stale_of.as_ref(), env, &mut out);
        }
    }
    for (a, b) in &scope.pairs {
        let level = policy.level(a, b, &ctx.fleet);
        if level == Level::Ignore {
            continue;
        }
        if scope.host_level {
            host_facts(&facts, level, (a, b), &ctx, &mut out);
        }
        for (service, by_env) in &services {
            match (by_env.get(a.as_str()), by_env.get(b.as_str())) {
                (Some(ra), Some(rb)) => {
                    let pair = Pair {
                        service,
                        level,
                        a: (a, ra),
                        b: (b, rb),
                    };
                    // Each comparison is skipped when every replica on both
                    // sides carries the same part: it could find nothing.
                    let both = || ra.iter().chain(rb.iter()).copied();
                    if !uniform(both(), |r| &r.container.image) {
                        image_digest(&ctx, &pair, &mut out);
                        same_tag(&ctx, &pair, &mut out);
                    }
                    // Values that different fleet keys kept from comparing
                    // (env and files): one key_mismatch.
                    let mut incomparable = Vec::new();
                    if !(uniform(both(), |r| &r.container.explicit_env)
                        && uniform(both(), |r| &r.host.snapshot.fingerprint_key_id))
                    {
                        incomparable = explicit_env(&ctx, &pair, &mut out);
                    }
                    if !uniform(both(), |r| &r.container.runtime) {
                        runtime_config(&ctx, &pair, &mut out);
                    }
                    if !(uniform(both(), |r| r.config.unwrap_or(&[]))
                        && uniform(both(), |r| &r.host.snapshot.fingerprint_key_id))
                    {
                        incomparable.extend(config_files::compare(&ctx, &pair, &mut out));
                    }
                    key_mismatch(&ctx, &pair, &incomparable, &mut out);
                }
                (Some(ra), None) if has_hosts(hosts, b) => {
                    missing_service(&ctx, service, level, (a, ra), b, false, &mut out);
                }
                (None, Some(rb)) if has_hosts(hosts, a) => {
                    missing_service(&ctx, service, level, (b, rb), a, true, &mut out);
                }
                _ => {}
            }
        }
    }
    sort(&mut out, policy);
    out
}

/// Whether every replica has the same `part` as the first.
///
/// The fast path of the comparisons: replicas that agree on a part cannot
/// differ in anything derived from it, so comparing them (which renders,
/// collects and allocates every value) can only find nothing. Equal parts are
/// sufficient for "no finding", not necessary — runtime settings that differ
/// only in the order of a set still go through the full comparison, which
/// decides. Most services in a fleet run identical replicas, so this keeps
/// the cost of an evaluation close to that of reading the snapshots.
fn uniform<'a, T: PartialEq + ?Sized + 'a>(
    mut replicas: impl Iterator<Item = Replica<'a>>,
    part: impl Fn(&Replica<'a>) -> &'a T,
) -> bool {
    let Some(first) = replicas.next() else {
        return true;
    };
    let first = part(&first);
    replicas.all(|r| part(&r) == first)
}

fn has_hosts(hosts: &[HostView<'_>], env: &str) -> bool {
    hosts.iter().any(|h| h.environment == env)
}

/// A service present on both sides of a pair.
struct Pair<'r, 'a> {
    service: &'r str,
    level: Level,
    a: (&'r str, &'r [Replica<'a>]),
    b: (&'r str, &'r [Replica<'a>]),
}

/// Config drift: a warning unless relaxed.
fn config_severity(level: Level) -> Severity {
    match level {
        Level::Strict | Level::Standard | Level::Ignore => Severity::Warning,
        Level::Relaxed => Severity::Info,
    }
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

#[allow(clippy::too_many_arguments)]
fn push(
    ctx: &Ctx<'_>,
    out: &mut Vec<Finding>,
    kind: Kind,
    service: &str,
    a: Side,
    b: Option<Side>,
    key: &str,
    severity: Severity,
    basis: Basis,
    summary: String,
) {
    out.push(Finding {
        kind,
        service: service.to_owned(),
        a,
        b,
        key: key.to_owned(),
        host: String::new(),
        severity: ctx.policy.severity_of(kind, severity),
        basis,
        summary,
        status: Status::default(),
    });
}

#[cfg(test)]
pub(super) mod tests;

#[cfg(test)]
mod config_files_tests;
