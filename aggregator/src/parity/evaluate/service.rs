//! A service's presence and replicas: containers the agent could not
//! report, containers that are no service's replicas (unmanaged), a
//! service on one side of a pair only, replicas of one environment that
//! differ.

use std::collections::{BTreeMap, BTreeSet};

use super::config_files;
use super::content::replica_contents;
use super::{Ctx, Replica, config_severity, push, replica_hosts, side, uniform};
use crate::parity::env;
use crate::parity::finding::{Basis, Finding, Kind, Severity, Side, Status};
use crate::parity::policy::{Level, RuntimeField};
use crate::parity::runtime;

/// One finding per container the agent cut down to fit the report limits:
/// the comparisons above may miss what was cut, and that is never silent.
pub(super) fn container_unreportable(
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

/// One finding per unmanaged container (no identity label, a name the
/// engine generated): it is compared with nothing, so that a one-off
/// `docker run` never reads as a service missing elsewhere, and reported on
/// its host at the policy's `[unmanaged] report` (info by default, or not
/// at all). Its service is its name, as the agent reports it, and its key
/// the container name; `a.values` is the image it runs.
pub(super) fn unmanaged_container(
    ctx: &Ctx<'_>,
    env: &str,
    r: &Replica<'_>,
    out: &mut Vec<Finding>,
) {
    let Some(severity) = ctx.policy.unmanaged_severity() else {
        return;
    };
    let (name, host) = (r.name, r.host.host_id);
    let service = r
        .container
        .service
        .as_ref()
        .map_or(name, |s| s.name.as_str());
    let image = r.image().map(|i| i.reference.clone()).unwrap_or_default();
    out.push(Finding {
        kind: Kind::UnmanagedContainer,
        service: service.to_owned(),
        a: side(env, [r.host], vec![image.clone()]),
        b: None,
        key: name.to_owned(),
        host: host.to_owned(),
        severity: ctx.policy.severity_of(Kind::UnmanagedContainer, severity),
        basis: Basis::Unmanaged,
        summary: format!(
            "{name} on {host} ({env}) runs {image} without an identity (no envparity.service, Compose or Kubernetes label, a name the engine generated): not compared with other environments; label it envparity.service=NAME to compare it"
        ),
        status: Status::default(),
    });
}

/// `present` runs the service and `absent` does not. `present_is_later`:
/// the present side is side B of the pair.
pub(super) fn missing_service(
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

pub(super) fn note_aspect<'a>(
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
pub(super) fn replica_drift(
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
        && uniform(all(), |r| r.config.unwrap_or(&[]))
    {
        return;
    }
    // aspect -> (basis, value -> hosts)
    let mut aspects: Aspects<'_> = BTreeMap::new();
    let mut note = |aspect: String, basis: Basis, value: String, host| {
        note_aspect(&mut aspects, aspect, basis, value, host);
    };
    if let Some((basis, contents)) = replica_contents(replicas) {
        for (content, host) in contents {
            note("image".into(), basis, content, host);
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
    config_drift(ctx, service, replicas, mixed_keys, &mut note);
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

/// The configuration file aspects of replica drift (`config:` keys), among
/// the replicas whose agent read their files: a file mounted on some only,
/// and per key (or whole file) the values, shown as env values are. A key
/// expected to differ is compared by presence only.
fn config_drift<'a>(
    ctx: &Ctx<'_>,
    service: &str,
    replicas: &[Replica<'a>],
    mixed_keys: bool,
    note: &mut impl FnMut(String, Basis, String, &'a str),
) {
    let read: Vec<(&'a str, BTreeMap<String, config_files::Aspect<'a>>)> = replicas
        .iter()
        .filter_map(|r| {
            config_files::replica_aspects(r, |p, k| ctx.policy.config_ignored(service, p, k))
                .map(|a| (r.host.host_id, a))
        })
        .collect();
    if read.len() < 2 {
        return;
    }
    let names: BTreeSet<&String> = read.iter().flat_map(|(_, a)| a.keys()).collect();
    for name in names {
        let per: Vec<(Option<&config_files::Aspect<'a>>, &'a str)> =
            read.iter().map(|(host, a)| (a.get(name), *host)).collect();
        let Some(first) = per.iter().find_map(|(a, _)| *a) else {
            continue;
        };
        let presence = first.key.is_none()
            || first
                .key
                .is_some_and(|k| ctx.policy.config_expected_to_differ(service, first.path, k));
        let all_clear = per
            .iter()
            .all(|(a, _)| a.is_some_and(|a| a.clear.is_some()));
        let presence = presence || (mixed_keys && !all_clear);
        let basis = if presence {
            Basis::KeyPresence
        } else if all_clear {
            Basis::ClearValue
        } else {
            Basis::Fingerprint
        };
        for (aspect, host) in per {
            let value = match aspect {
                None => "(absent)".to_owned(),
                Some(_) if presence => "set".to_owned(),
                Some(a) if all_clear => a.clear.unwrap_or_default().to_owned(),
                Some(a) => env::shown_fingerprint(a.fingerprint),
            };
            note(name.clone(), basis, value, host);
        }
    }
}
