//! Image content across a pair and within an environment: which content
//! replicas run (registry digest or image id), a digest that differs, a tag
//! that names other content, an image run by tag.

use std::collections::BTreeSet;

use super::{Ctx, Pair, Replica, push, replica_hosts, side};
use crate::parity::digest::{is_pinned, registry_digest};
use crate::parity::finding::{Basis, Finding, Kind, Severity};
use crate::parity::policy::Level;

/// Content drift: critical between the strict pair, info when relaxed.
fn content_severity(level: Level) -> Severity {
    match level {
        Level::Strict => Severity::Critical,
        Level::Standard | Level::Ignore => Severity::Warning,
        Level::Relaxed => Severity::Info,
    }
}

/// How to identify image content across some replicas: registry digests when
/// every one has one, else image ids — unless the image ids come from
/// different architectures, where they cannot be compared (`None`).
pub(super) fn content_basis<'a>(
    replicas: impl Iterator<Item = &'a Replica<'a>> + Clone,
) -> Option<Basis> {
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

pub(super) fn content_of(r: &Replica<'_>, basis: Basis) -> Option<String> {
    let img = r.image()?;
    match basis {
        Basis::RegistryDigest => registry_digest(img).map(str::to_owned),
        _ => Some(img.image_id.clone()),
    }
}

pub(super) fn distinct<'a>(
    replicas: impl IntoIterator<Item = &'a Replica<'a>>,
    f: impl Fn(&Replica<'a>) -> Option<String>,
) -> Vec<String> {
    let set: BTreeSet<String> = replicas.into_iter().filter_map(f).collect();
    set.into_iter().collect()
}

/// The distinct contents of two groups of replicas and the basis they were
/// compared on, when they differ; `None` when they agree or cannot be
/// compared.
pub(super) fn content_difference(
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

pub(super) fn image_digest(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
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
pub(super) fn same_tag(ctx: &Ctx<'_>, p: &Pair<'_, '_>, out: &mut Vec<Finding>) {
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

pub(super) fn using<'a>(replicas: &[Replica<'a>], reference: &str) -> Vec<Replica<'a>> {
    replicas
        .iter()
        .filter(|r| r.image().is_some_and(|i| i.reference == reference))
        .copied()
        .collect()
}

pub(super) fn unpinned_image(
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
