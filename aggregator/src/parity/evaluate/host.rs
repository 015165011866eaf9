//! Host-level kinds: kernel, OS, engine and the other host facts across a
//! pair, and hosts gone stale.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use envparity_proto::v1::{EngineFacts, HostFacts};

use super::{Ctx, HostView, push, side};
use crate::parity::finding::{Basis, Finding, Kind, Severity, Status};
use crate::parity::policy::Level;

/// The value of a host fact, borrowed from the snapshot where it is one
/// field (most are), so that gathering an environment's values copies
/// nothing per host.
type FactValue = for<'s> fn(Option<&'s HostFacts>, Option<&'s EngineFacts>) -> Cow<'s, str>;

/// A host fact compared between environments.
pub(super) struct HostFact {
    kind: Kind,
    what: &'static str,
    value: FactValue,
    severity: fn(&[String], &[String]) -> Severity,
    /// A fact of the container runtime (its version, storage, cgroup
    /// driver): compared only between hosts running the same runtime, as
    /// Docker 20.10 and containerd 1.6 are not two versions of one thing.
    per_runtime: bool,
}

/// The runtime a host's engine facts describe: agents older than the
/// runtimes read only Docker and say nothing.
pub(super) fn runtime_of(engine: Option<&EngineFacts>) -> &str {
    match engine.map_or("", |e| e.runtime.as_str()) {
        "" => "docker",
        runtime => runtime,
    }
}

/// A runtime fact's value as shown and compared: Docker's as reported
/// (so Docker fleets read as they always did), another runtime's after
/// its name, `containerd 1.6.20`.
fn of_runtime<'s>(engine: Option<&'s EngineFacts>, value: Cow<'s, str>) -> Cow<'s, str> {
    match runtime_of(engine) {
        "docker" => value,
        _ if value.is_empty() => value,
        runtime => Cow::Owned(format!("{runtime} {value}")),
    }
}

/// How many host facts are compared between environments.
pub const HOST_FACT_COUNT: usize = HOST_FACTS.len();

/// The value of each host fact compared between environments, in a fixed
/// order (empty where the host does not report it): all that the comparison
/// of host facts reads of a host, besides which hosts there are.
pub fn host_fact_values(
    host: Option<&HostFacts>,
    engine: Option<&EngineFacts>,
) -> [String; HOST_FACT_COUNT] {
    std::array::from_fn(|i| (HOST_FACTS[i].value)(host, engine).into_owned())
}

/// `s`, borrowed.
pub(super) fn field(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

pub(super) const HOST_FACTS: [HostFact; 6] = [
    HostFact {
        kind: Kind::Kernel,
        what: "kernel",
        value: |h, _| h.map_or(field(""), |h| field(&h.kernel_version)),
        severity: |a, b| by_release(a, b, 2),
        per_runtime: false,
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
        per_runtime: false,
    },
    HostFact {
        kind: Kind::EngineVersion,
        what: "engine version",
        value: |_, e| of_runtime(e, e.map_or(field(""), |e| field(&e.server_version))),
        severity: |a, b| by_release(a, b, 1),
        per_runtime: true,
    },
    HostFact {
        kind: Kind::Cgroup,
        what: "cgroup version/driver",
        value: |_, e| {
            let value = e
                .filter(|e| !e.cgroup_version.is_empty() || !e.cgroup_driver.is_empty())
                .map_or(field(""), |e| {
                    Cow::Owned(format!("v{}/{}", e.cgroup_version, e.cgroup_driver))
                });
            of_runtime(e, value)
        },
        severity: |_, _| Severity::Warning,
        per_runtime: true,
    },
    HostFact {
        kind: Kind::StorageDriver,
        what: "storage driver",
        value: |_, e| of_runtime(e, e.map_or(field(""), |e| field(&e.storage_driver))),
        severity: |_, _| Severity::Warning,
        per_runtime: true,
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
        per_runtime: false,
    },
];

/// Warning when the first `parts` numeric components of a release differ,
/// info when only later ones do.
pub(super) fn by_release(a: &[String], b: &[String], parts: usize) -> Severity {
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
/// distinct non-empty values they report, sorted, by the runtime they run
/// for a runtime fact (under `""` for the others).
pub(super) struct EnvFacts<'h, 'a> {
    pub(super) hosts: Vec<&'h HostView<'a>>,
    values: Vec<BTreeMap<&'a str, Vec<String>>>,
}

/// Every environment's hosts and host-fact values, gathered in one pass so
/// that each pair compares what is gathered instead of walking the fleet.
pub(super) fn env_facts<'h, 'a>(hosts: &'h [HostView<'a>]) -> BTreeMap<&'h str, EnvFacts<'h, 'a>> {
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
                    // few values, so the sets stay small and nothing is
                    // copied or sorted per host.
                    let mut values: BTreeMap<&'a str, BTreeSet<Cow<'a, str>>> = BTreeMap::new();
                    for h in &in_env {
                        let (host, engine) = (h.snapshot.host.as_ref(), h.snapshot.engine.as_ref());
                        let v = (fact.value)(host, engine);
                        if !v.is_empty() {
                            let scope = if fact.per_runtime {
                                runtime_of(engine)
                            } else {
                                ""
                            };
                            values.entry(scope).or_default().insert(v);
                        }
                    }
                    values
                        .into_iter()
                        .map(|(scope, v)| (scope, v.into_iter().map(Cow::into_owned).collect()))
                        .collect()
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

pub(super) fn host_facts(
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
        // Compared runtime by runtime, over the runtimes both sides run:
        // the values of those that differ.
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        for (scope, a) in &fa.values[i] {
            match fb.values[i].get(scope) {
                Some(b) if a != b => {
                    va.extend(a.iter().cloned());
                    vb.extend(b.iter().cloned());
                }
                _ => {}
            }
        }
        if va.is_empty() {
            continue;
        }
        let (va, vb) = (&va, &vb);
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

pub(super) fn stale_hosts(
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
