//! The evaluation itself: hosts and a policy in, findings out.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::v1::{Container, EngineFacts, HostFacts, HostSnapshot, ImageInfo};

use super::digest::{is_pinned, registry_digest};
use super::env::{self, ValueVerdict};
use super::finding::{Basis, Finding, Kind, Severity, Side, Status};
use super::order::sort;
use super::policy::{Level, Policy, RuntimeField};
use super::runtime;

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
}

impl<'a> HostView<'a> {
    /// Its containers, as (name, content).
    fn containers(&self) -> impl Iterator<Item = (&'a str, &'a Container)> + use<'a> {
        let (snapshot, held) = (self.snapshot, self.held);
        let whole = held
            .is_none()
            .then(|| snapshot.containers.iter().map(|c| (c.name.as_str(), c)));
        let held = held
            .into_iter()
            .flatten()
            .map(|h| (&*h.name, h.content.as_ref()));
        whole.into_iter().flatten().chain(held)
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
}

impl HeldContainer {
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
    // A scope of no services (host-level kinds only) reads no container.
    let no_services = scope.services.as_ref().is_some_and(BTreeSet::is_empty);
    for host in hosts.iter().filter(|_| !no_services) {
        for (name, container) in host.containers() {
            let Some(service) = container.service.as_ref().map(|s| s.name.as_str()) else {
                continue;
            };
            if !scope.wants(service) || policy.service_ignored(service) {
                continue;
            }
            services
                .entry(service)
                .or_default()
                .entry(host.environment)
                .or_default()
                .push(Replica {
                    host,
                    name,
                    container,
                });
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
                    if !(uniform(both(), |r| &r.container.explicit_env)
                        && uniform(both(), |r| &r.host.snapshot.fingerprint_key_id))
                    {
                        explicit_env(&ctx, &pair, &mut out);
                    }
                    if !uniform(both(), |r| &r.container.runtime) {
                        runtime_config(&ctx, &pair, &mut out);
                    }
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

/// Content drift: critical between the strict pair, info when relaxed.
fn content_severity(level: Level) -> Severity {
    match level {
        Level::Strict => Severity::Critical,
        Level::Standard | Level::Ignore => Severity::Warning,
        Level::Relaxed => Severity::Info,
    }
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

/// How to identify image content across some replicas: registry digests when
/// every one has one, else image ids — unless the image ids come from
/// different architectures, where they cannot be compared (`None`).
fn content_basis<'a>(replicas: impl Iterator<Item = &'a Replica<'a>> + Clone) -> Option<Basis> {
    if replicas
        .clone()
        .all(|r| r.image().and_then(registry_digest).is_some())
    {
        return Some(Basis::RegistryDigest);
    }
    let arches: BTreeSet<&str> = replicas
        .filter_map(|r| r.image())
        .map(|i| i.architecture.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    (arches.len() <= 1).then_some(Basis::ImageId)
}

fn content_of(r: &Replica<'_>, basis: Basis) -> Option<String> {
    let img = r.image()?;
    match basis {
        Basis::RegistryDigest => registry_digest(img).map(str::to_owned),
        _ => Some(img.image_id.clone()),
    }
}

fn distinct<'a>(
    replicas: impl IntoIterator<Item = &'a Replica<'a>>,
    f: impl Fn(&Replica<'a>) -> Option<String>,
) -> Vec<String> {
    let set: BTreeSet<String> = replicas.into_iter().filter_map(f).collect();
    set.into_iter().collect()
}

/// The distinct contents of two groups of replicas and the basis they were
/// compared on, when they differ; `None` when they agree or cannot be
/// compared.
fn content_difference(
    ra: &[Replica<'_>],
    rb: &[Replica<'_>],
) -> Option<(Basis, Vec<String>, Vec<String>)> {
    let basis = content_basis(ra.iter().chain(rb))?;
    let (va, vb) = (
        distinct(ra, |r| content_of(r, basis)),
        distinct(rb, |r| content_of(r, basis)),
    );
    (va != vb).then_some((basis, va, vb))
}

fn image_digest(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    let Some((basis, va, vb)) = content_difference(ra, rb) else {
        return;
    };
    let summary = format!(
        "{}: {env_a} runs {} and {env_b} runs {} ({basis})",
        p.service,
        va.join(", "),
        vb.join(", "),
    );
    push(
        ctx,
        out,
        Kind::ImageDigest,
        p.service,
        side(env_a, replica_hosts(ra), va),
        Some(side(env_b, replica_hosts(rb), vb)),
        "",
        content_severity(p.level),
        basis,
        summary,
    );
}

/// The same mutable reference resolving to different content on the two
/// sides: one finding per reference.
fn same_tag(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    let by_reference = |replicas: &[Replica<'_>]| -> BTreeSet<String> {
        replicas
            .iter()
            .filter_map(|r| r.image())
            .map(|i| i.reference.clone())
            .filter(|reference| !reference.is_empty() && !is_pinned(reference))
            .collect()
    };
    let common: BTreeSet<String> = by_reference(ra)
        .intersection(&by_reference(rb))
        .cloned()
        .collect();
    for reference in common {
        let (ua, ub) = (using(ra, &reference), using(rb, &reference));
        let Some((basis, va, vb)) = content_difference(&ua, &ub) else {
            continue;
        };
        let summary = format!(
            "{}: {reference} is {} in {env_a} but {} in {env_b}: the tag was rebuilt, not promoted",
            p.service,
            va.join(", "),
            vb.join(", "),
        );
        push(
            ctx,
            out,
            Kind::SameTagDifferentDigest,
            p.service,
            side(env_a, ua.iter().map(|r| r.host), va),
            Some(side(env_b, ub.iter().map(|r| r.host), vb)),
            &reference,
            Severity::Critical,
            basis,
            summary,
        );
    }
}

fn using<'a>(replicas: &[Replica<'a>], reference: &str) -> Vec<Replica<'a>> {
    replicas
        .iter()
        .filter(|r| r.image().is_some_and(|i| i.reference == reference))
        .copied()
        .collect()
}

fn unpinned_image(
    ctx: &Ctx<'_>,
    service: &str,
    env: &str,
    replicas: &[Replica<'_>],
    out: &mut Vec<Finding>,
) {
    let Some(severity) = ctx.policy.unpinned_severity(env, &ctx.fleet) else {
        return;
    };
    let unpinned: Vec<&Replica<'_>> = replicas
        .iter()
        .filter(|r| r.image().is_some_and(|i| !is_pinned(&i.reference)))
        .collect();
    if unpinned.is_empty() {
        return;
    }
    let references = distinct(unpinned.iter().copied(), |r| {
        r.image().map(|i| i.reference.clone())
    });
    let summary = format!(
        "{service}: {env} runs {} by a mutable reference; pin it by @sha256 digest",
        references.join(", ")
    );
    push(
        ctx,
        out,
        Kind::UnpinnedImage,
        service,
        side(env, unpinned.iter().map(|r| r.host), references),
        None,
        "",
        severity,
        Basis::Reference,
        summary,
    );
}

/// One finding per container the agent cut down to fit the report limits:
/// the comparisons above may miss what was cut, and that is never silent.
fn container_unreportable(
    ctx: &Ctx<'_>,
    service: &str,
    env: &str,
    replicas: &[Replica<'_>],
    out: &mut Vec<Finding>,
) {
    for r in replicas.iter().filter(|r| !r.container.cut.is_empty()) {
        let (name, host) = (r.name, r.host.host_id);
        out.push(Finding {
            kind: Kind::ContainerUnreportable,
            service: service.to_owned(),
            a: side(env, [r.host], r.container.cut.clone()),
            b: None,
            key: name.to_owned(),
            host: host.to_owned(),
            severity: ctx
                .policy
                .severity_of(Kind::ContainerUnreportable, Severity::Warning),
            basis: Basis::AgentCut,
            summary: format!(
                "{service}: the agent on {host} ({env}) cut container {name} to fit the report limits ({}); comparisons may miss what was cut",
                r.container.cut.join("; ")
            ),
            status: Status::default(),
        });
    }
}

/// `present` runs the service and `absent` does not. `present_is_later`:
/// the present side is side B of the pair.
fn missing_service(
    ctx: &Ctx<'_>,
    service: &str,
    level: Level,
    (present, replicas): (&str, &[Replica<'_>]),
    absent: &str,
    present_is_later: bool,
    out: &mut Vec<Finding>,
) {
    if !ctx.policy.should_run(service, absent) {
        return;
    }
    // Absent from the later stage: not promoted yet. Absent from the earlier
    // one: the later stage runs something the earlier never ran. "Later" is
    // promotion order, not the pair's orientation, so swapping the pair
    // swaps the sides and nothing else.
    let later = ctx.policy.compare(present, absent) == std::cmp::Ordering::Greater;
    let severity = if later {
        config_severity(level)
    } else {
        match level {
            Level::Standard | Level::Ignore => Severity::Warning,
            Level::Strict | Level::Relaxed => Severity::Info,
        }
    };
    let with = side(present, replica_hosts(replicas), vec!["running".to_owned()]);
    let without = Side {
        environment: absent.to_owned(),
        ..Side::default()
    };
    let (a, b) = if present_is_later {
        (without, with)
    } else {
        (with, without)
    };
    let summary = format!("{service}: runs in {present} but not in {absent}");
    push(
        ctx,
        out,
        Kind::MissingService,
        service,
        a,
        Some(b),
        "",
        severity,
        Basis::ServicePresence,
        summary,
    );
}

type Aspects<'a> = BTreeMap<String, (Basis, BTreeMap<String, BTreeSet<&'a str>>)>;

fn note_aspect<'a>(
    aspects: &mut Aspects<'a>,
    aspect: String,
    basis: Basis,
    value: String,
    host: &'a str,
) {
    aspects
        .entry(aspect)
        .or_insert_with(|| (basis, BTreeMap::new()))
        .1
        .entry(value)
        .or_default()
        .insert(host);
}

/// Inside one environment: replicas that run different content, env or
/// runtime settings. One finding per aspect (`image`, `env:KEY`,
/// `runtime:SETTING`).
fn replica_drift(
    ctx: &Ctx<'_>,
    service: &str,
    env: &str,
    replicas: &[Replica<'_>],
    out: &mut Vec<Finding>,
) {
    if replicas.len() < 2 {
        return;
    }
    let all = || replicas.iter().copied();
    if uniform(all(), |r| &r.container.image)
        && uniform(all(), |r| &r.container.explicit_env)
        && uniform(all(), |r| &r.container.runtime)
    {
        return;
    }
    // aspect -> (basis, value -> hosts)
    let mut aspects: Aspects<'_> = BTreeMap::new();
    let mut note = |aspect: String, basis: Basis, value: String, host| {
        note_aspect(&mut aspects, aspect, basis, value, host);
    };
    if let Some(basis) = content_basis(replicas.iter()) {
        for r in replicas {
            if let Some(v) = content_of(r, basis) {
                note("image".into(), basis, v, r.host.host_id);
            }
        }
    }
    let keys: BTreeSet<&str> = replicas
        .iter()
        .flat_map(|r| r.container.explicit_env.iter().map(|v| v.name.as_str()))
        .filter(|k| !ctx.policy.env_ignored(service, k))
        .collect();
    // Replicas fingerprinting under different fleet keys (a rotation under
    // way) cannot compare fingerprints: only presence, and clear values.
    let mixed_keys = replicas
        .iter()
        .map(|r| r.host.snapshot.fingerprint_key_id.as_str())
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    for key in keys {
        let expected_to_differ = ctx.policy.expected_to_differ(service, key);
        let per_replica: Vec<(Option<&envparity_proto::v1::EnvVar>, &str)> = replicas
            .iter()
            .map(|r| {
                (
                    r.container.explicit_env.iter().find(|v| v.name == key),
                    r.host.host_id,
                )
            })
            .collect();
        let all_clear = per_replica
            .iter()
            .all(|(v, _)| v.is_some_and(|v| v.value.is_some()));
        let presence_only = expected_to_differ || (mixed_keys && !all_clear);
        for (var, host) in per_replica {
            let value = match var {
                None => "(unset)".to_owned(),
                Some(_) if presence_only => "set".to_owned(),
                Some(v) if all_clear => v.value.clone().unwrap_or_default(),
                Some(v) => env::shown_fingerprint(&v.fingerprint),
            };
            let basis = if presence_only {
                Basis::KeyPresence
            } else if all_clear {
                Basis::ClearValue
            } else {
                Basis::Fingerprint
            };
            note(format!("env:{key}"), basis, value, host);
        }
    }
    for field in RuntimeField::ALL {
        if ctx.policy.runtime_ignored(service, field) {
            continue;
        }
        for r in replicas {
            let value = runtime::render(r.container.runtime.as_ref(), field);
            note(
                format!("runtime:{}", field.as_str()),
                Basis::RuntimeSetting,
                value,
                r.host.host_id,
            );
        }
    }
    for (aspect, (basis, values)) in aspects {
        if values.len() < 2 {
            continue;
        }
        let shown: Vec<String> = values
            .iter()
            .map(|(v, hosts)| {
                format!(
                    "{v} on {}",
                    hosts.iter().copied().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        let summary = format!(
            "{service}: replicas in {env} differ in {aspect}: {}",
            shown.join("; ")
        );
        push(
            ctx,
            out,
            Kind::ReplicaDrift,
            service,
            side(env, replica_hosts(replicas), shown),
            None,
            &aspect,
            Severity::Warning,
            basis,
            summary,
        );
    }
}

fn explicit_env(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
    fn key_id<'a>(r: &Replica<'a>) -> &'a str {
        r.host.snapshot.fingerprint_key_id.as_str()
    }
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    let service = p.service;
    let side_a = env::collect(ra.iter().map(|r| (r.container, key_id(r))));
    let side_b = env::collect(rb.iter().map(|r| (r.container, key_id(r))));
    let severity = config_severity(p.level);
    let keys: BTreeSet<&String> = side_a.keys().chain(side_b.keys()).collect();
    // Keys set on both sides whose fingerprints were made with different
    // fleet keys: not compared, reported together as one key_mismatch.
    let mut incomparable: Vec<&str> = Vec::new();
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
                    incomparable.push(key);
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
    if !incomparable.is_empty() {
        let ids = |replicas: &[Replica<'_>]| -> Vec<String> {
            let ids: BTreeSet<&str> = replicas.iter().map(key_id).collect();
            ids.into_iter().map(str::to_owned).collect()
        };
        let (ids_a, ids_b) = (ids(ra), ids(rb));
        let summary = format!(
            "{service}: {env_a} ({}) and {env_b} ({}) fingerprint env with different fleet keys, so {} could not be compared: {}",
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
}

fn runtime_config(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
    let ((env_a, ra), (env_b, rb)) = (p.a, p.b);
    for field in RuntimeField::ALL {
        if ctx.policy.runtime_ignored(p.service, field) {
            continue;
        }
        let values = |replicas: &[Replica<'_>]| {
            distinct(replicas, |r| {
                Some(runtime::render(r.container.runtime.as_ref(), field))
            })
        };
        let (va, vb) = (values(ra), values(rb));
        if va == vb {
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

/// The value of a host fact, borrowed from the snapshot where it is one
/// field (most are), so that gathering an environment's values copies
/// nothing per host.
type FactValue = for<'s> fn(Option<&'s HostFacts>, Option<&'s EngineFacts>) -> Cow<'s, str>;

/// A host fact compared between environments.
struct HostFact {
    kind: Kind,
    what: &'static str,
    value: FactValue,
    severity: fn(&[String], &[String]) -> Severity,
}

/// `s`, borrowed.
fn field(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

const HOST_FACTS: [HostFact; 6] = [
    HostFact {
        kind: Kind::Kernel,
        what: "kernel",
        value: |h, _| h.map_or(field(""), |h| field(&h.kernel_version)),
        severity: |a, b| by_release(a, b, 2),
    },
    HostFact {
        kind: Kind::Os,
        what: "operating system",
        value: |h, _| {
            h.map_or(field(""), |h| {
                match (h.os_id.as_str(), h.os_version.as_str()) {
                    ("", "") => field(&h.os_name),
                    (id, "") => field(id.trim()),
                    ("", version) => field(version.trim()),
                    (id, version) => Cow::Owned(format!("{id} {version}").trim().to_owned()),
                }
            })
        },
        severity: |_, _| Severity::Warning,
    },
    HostFact {
        kind: Kind::EngineVersion,
        what: "engine version",
        value: |_, e| e.map_or(field(""), |e| field(&e.server_version)),
        severity: |a, b| by_release(a, b, 1),
    },
    HostFact {
        kind: Kind::Cgroup,
        what: "cgroup version/driver",
        value: |_, e| {
            e.filter(|e| !e.cgroup_version.is_empty() || !e.cgroup_driver.is_empty())
                .map_or(field(""), |e| {
                    Cow::Owned(format!("v{}/{}", e.cgroup_version, e.cgroup_driver))
                })
        },
        severity: |_, _| Severity::Warning,
    },
    HostFact {
        kind: Kind::StorageDriver,
        what: "storage driver",
        value: |_, e| e.map_or(field(""), |e| field(&e.storage_driver)),
        severity: |_, _| Severity::Warning,
    },
    HostFact {
        kind: Kind::Architecture,
        what: "architecture",
        value: |h, e| {
            h.map(|h| h.architecture.as_str())
                .filter(|a| !a.is_empty())
                .or_else(|| e.map(|e| e.architecture.as_str()))
                .map_or(field(""), field)
        },
        severity: |_, _| Severity::Warning,
    },
];

/// Warning when the first `parts` numeric components of a release differ,
/// info when only later ones do.
fn by_release(a: &[String], b: &[String], parts: usize) -> Severity {
    let prefix = |vs: &[String]| -> BTreeSet<Vec<Option<u64>>> {
        vs.iter()
            .map(|v| {
                let mut nums = v
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .map(|n| n.parse().ok());
                (0..parts).map(|_| nums.next().flatten()).collect()
            })
            .collect()
    };
    if prefix(a) == prefix(b) {
        Severity::Info
    } else {
        Severity::Warning
    }
}

/// The hosts of one environment and, per entry of [`HOST_FACTS`], the
/// distinct non-empty values they report, sorted.
struct EnvFacts<'h, 'a> {
    hosts: Vec<&'h HostView<'a>>,
    values: Vec<Vec<String>>,
}

/// Every environment's hosts and host-fact values, gathered in one pass so
/// that each pair compares what is gathered instead of walking the fleet.
fn env_facts<'h, 'a>(hosts: &'h [HostView<'a>]) -> BTreeMap<&'h str, EnvFacts<'h, 'a>> {
    let mut by_env: BTreeMap<&str, Vec<&HostView<'a>>> = BTreeMap::new();
    for h in hosts {
        by_env.entry(h.environment).or_default().push(h);
    }
    by_env
        .into_iter()
        .map(|(env, in_env)| {
            let values = HOST_FACTS
                .iter()
                .map(|fact| {
                    // Inserted one by one: an environment's hosts share a
                    // few values, so the set stays small and nothing is
                    // copied or sorted per host.
                    let mut values: BTreeSet<Cow<'_, str>> = BTreeSet::new();
                    for h in &in_env {
                        let v = (fact.value)(h.snapshot.host.as_ref(), h.snapshot.engine.as_ref());
                        if !v.is_empty() {
                            values.insert(v);
                        }
                    }
                    values.into_iter().map(Cow::into_owned).collect()
                })
                .collect();
            (
                env,
                EnvFacts {
                    hosts: in_env,
                    values,
                },
            )
        })
        .collect()
}

fn host_facts(
    facts: &BTreeMap<&str, EnvFacts<'_, '_>>,
    level: Level,
    (env_a, env_b): (&str, &str),
    ctx: &Ctx<'_>,
    out: &mut Vec<Finding>,
) {
    let (Some(fa), Some(fb)) = (facts.get(env_a), facts.get(env_b)) else {
        return;
    };
    for (i, fact) in HOST_FACTS.iter().enumerate() {
        let (va, vb) = (&fa.values[i], &fb.values[i]);
        if va.is_empty() || vb.is_empty() || va == vb {
            continue;
        }
        let mut severity = (fact.severity)(va, vb);
        if level == Level::Relaxed {
            severity = Severity::Info;
        }
        let summary = format!(
            "{} differs: {env_a} runs {} and {env_b} runs {}",
            fact.what,
            va.join(", "),
            vb.join(", ")
        );
        push(
            ctx,
            out,
            fact.kind,
            "",
            side(env_a, fa.hosts.iter().copied(), va.clone()),
            Some(side(env_b, fb.hosts.iter().copied(), vb.clone())),
            "",
            severity,
            Basis::HostFact,
            summary,
        );
    }
}

fn stale_hosts(
    ctx: &Ctx<'_>,
    hosts: &[&HostView<'_>],
    only: Option<&BTreeSet<String>>,
    env: &str,
    out: &mut Vec<Finding>,
) {
    let wanted = |h: &HostView<'_>| only.is_none_or(|o| o.contains(h.host_id));
    for h in hosts.iter().filter(|h| h.stale && wanted(h)) {
        let last_seen = humantime::format_rfc3339_seconds(h.last_seen).to_string();
        out.push(Finding {
            kind: Kind::StaleHost,
            service: String::new(),
            a: side(env, [*h], vec![last_seen.clone()]),
            b: None,
            key: String::new(),
            host: h.host_id.to_owned(),
            severity: ctx.policy.severity_of(Kind::StaleHost, Severity::Warning),
            basis: Basis::LastSeen,
            summary: format!(
                "host {} in {env} has not been heard from since {last_seen}; its data is not current",
                h.host_id
            ),
            status: Status::default(),
        });
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
pub(super) mod tests;
