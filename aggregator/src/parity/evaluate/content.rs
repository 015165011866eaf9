//! Image content across a pair and within an environment: which content
//! replicas run (registry digest or image id), a digest that differs, a tag
//! that names other content, an image run by tag.

use std::collections::{BTreeMap, BTreeSet};

use super::{Ctx, Pair, Replica, push, replica_hosts, side};
use crate::parity::digest::{
    identities, is_pinned, one_content, registry_digest, registry_digests, same_content,
};
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
        .all(|r| r.image().is_some_and(|i| !registry_digests(i).is_empty()))
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

/// One replica's image content on a basis.
struct Content<'a> {
    /// What a finding shows for it when nothing on the other side shares
    /// it: its registry digest ([`registry_digest`]), or its image id.
    shown: &'a str,
    /// Every identity that names it, sorted: its registry digests and its
    /// image id ([`identities`]), or its image id alone.
    ids: Vec<&'a str>,
    /// Its image id when `ids` holds it beside registry digests: what a
    /// finding names it by only when no digest will do.
    id_beside: Option<&'a str>,
}

impl<'a> Content<'a> {
    /// Its identities that `wanted`, registry digests first.
    fn preferred(&self, wanted: impl Fn(&str) -> bool) -> Option<&'a str> {
        let digests = self
            .ids
            .iter()
            .copied()
            .filter(|id| Some(*id) != self.id_beside);
        digests.chain(self.id_beside).find(|id| wanted(id))
    }
}

/// A replica's content on `basis`; `None` without an image.
fn content_of<'a>(r: &Replica<'a>, basis: Basis) -> Option<Content<'a>> {
    let img = r.image()?;
    Some(match basis {
        Basis::RegistryDigest => {
            let ids = identities(img);
            let id_beside = Some(img.image_id.as_str()).filter(|id| !id.is_empty());
            let shown = registry_digest(img)
                .or_else(|| ids.iter().copied().find(|id| Some(*id) != id_beside))?;
            Content {
                shown,
                ids,
                id_beside,
            }
        }
        _ => Content {
            shown: &img.image_id,
            ids: vec![&img.image_id],
            id_beside: None,
        },
    })
}

/// The content of each replica that has an image, on `basis`.
fn contents<'a>(replicas: &[Replica<'a>], basis: Basis) -> Vec<Content<'a>> {
    replicas
        .iter()
        .filter_map(|r| content_of(r, basis))
        .collect()
}

fn ids<'a>(contents: &[Content<'a>]) -> Vec<Vec<&'a str>> {
    contents.iter().map(|c| c.ids.clone()).collect()
}

/// What a side of a finding shows: each replica's content under an identity
/// the other side shares when there is one (so that content found on both
/// sides reads the same on both), else under its own; distinct, sorted.
fn shown_against(side: &[Content<'_>], other: &[Content<'_>]) -> Vec<String> {
    let there: BTreeSet<&str> = other.iter().flat_map(|c| c.ids.iter().copied()).collect();
    let shown: BTreeSet<&str> = side
        .iter()
        .map(|c| {
            if there.contains(c.shown) {
                c.shown
            } else {
                c.preferred(|id| there.contains(id)).unwrap_or(c.shown)
            }
        })
        .collect();
    shown.into_iter().map(str::to_owned).collect()
}

pub(super) fn distinct<'a>(
    replicas: impl IntoIterator<Item = &'a Replica<'a>>,
    f: impl Fn(&Replica<'a>) -> Option<String>,
) -> Vec<String> {
    let set: BTreeSet<String> = replicas.into_iter().filter_map(f).collect();
    set.into_iter().collect()
}

/// The contents of two groups of replicas and the basis they were compared
/// on, when they differ ([`same_content`]: some replica's content is not
/// found on the other side); `None` when they agree or cannot be compared.
/// A side that differs always shows a value the other does not: the replica
/// found nowhere on the other side is shown under its own identity.
pub(super) fn content_difference(
    ra: &[Replica<'_>],
    rb: &[Replica<'_>],
) -> Option<(Basis, Vec<String>, Vec<String>)> {
    let basis = content_basis(ra.iter().chain(rb))?;
    let (ca, cb) = (contents(ra, basis), contents(rb, basis));
    if same_content(&ids(&ca), &ids(&cb)) {
        return None;
    }
    Some((basis, shown_against(&ca, &cb), shown_against(&cb, &ca)))
}

/// Inside one environment: each replica's content as `replica_drift` shows
/// it, when some two replicas share no identity ([`one_content`]); `None`
/// when they run one content or cannot be compared. A replica is shown
/// under the identity most replicas share (ties: the smallest), so two
/// replicas shown alike always share it, and two that share none are never
/// shown alike.
pub(super) fn replica_contents<'a>(
    replicas: &[Replica<'a>],
) -> Option<(Basis, Vec<(String, &'a str)>)> {
    let basis = content_basis(replicas.iter())?;
    let (hosts, contents): (Vec<&str>, Vec<Content<'a>>) = replicas
        .iter()
        .filter_map(|r| Some((r.host.host_id, content_of(r, basis)?)))
        .unzip();
    if one_content(&ids(&contents)) {
        return None;
    }
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for id in contents.iter().flat_map(|c| &c.ids) {
        *count.entry(id).or_default() += 1;
    }
    let rows = contents
        .iter()
        .zip(hosts)
        .map(|(c, host)| {
            // Most shared first, then a registry digest before the image
            // id, then the smallest (`ids` is sorted, and `max_by_key`
            // keeps the last of equals: so search reversed).
            let label = c
                .ids
                .iter()
                .rev()
                .max_by_key(|id| (count[*id], Some(**id) != c.id_beside))
                .copied()
                .unwrap_or_default();
            (label.to_owned(), host)
        })
        .collect();
    Some((basis, rows))
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
