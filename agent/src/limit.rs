//! The aggregator's limits, applied by the agent before anything is sent.
//!
//! The aggregator refuses a report over any limit of
//! [`envparity_proto::limits`] whole. Without this module one container with
//! a 70,000-byte label (a `last-applied-configuration` annotation does it)
//! made every snapshot of its host unreportable, so the host's redeploys went
//! unseen. Here each offending field is cut down instead, in the container
//! that carries it, and the cut is visible:
//! - a label value or env value too long is truncated and ends with
//!   [`MARKER`] (an env value too long is sent as its fingerprint only);
//! - labels or env entries beyond the count, a label or env entry whose name
//!   is too long, and containers beyond the count are dropped;
//! - identifiers (container id and name, service name) and image names with
//!   control, bidi or zero-width characters have those characters escaped,
//!   and are truncated to their length limit;
//! - a container over [`MAX_CONTAINER_BYTES`] encoded, or over its share
//!   when the whole snapshot is over [`MAX_SNAPSHOT_BYTES`], is shrunk
//!   (label values, then labels, env, long arguments; at last everything but
//!   its identity and image), and containers that still do not fit are left
//!   out and counted.
//!
//! Each container carries its reasons in its `cut` field, so the aggregator
//! raises a `container_unreportable` finding naming it: a cut is never
//! silent.
//!
//! Every cut is returned as a [`Cut`] naming the container and the reason;
//! the caller logs each at WARN. The function is pure, and its output always
//! passes the aggregator's validation (a property test in the aggregator's
//! validator checks exactly that).

use envparity_proto::digest;
use envparity_proto::limits::{
    MAX_CONTAINER_BYTES, MAX_CONTAINERS, MAX_CUT_LEN, MAX_CUTS, MAX_ENV_ENTRIES, MAX_ID_LEN,
    MAX_LABELS, MAX_SNAPSHOT_BYTES, MAX_TEXT_LEN,
};
use envparity_proto::names::escape_hostile;
use envparity_proto::v1::{Container, EnvVar, HostSnapshot, Label};
use prost::Message;

/// Appended to a truncated value.
pub const MARKER: &str = "…[truncated by envparity-agent]";

/// One field of one container cut down to the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The container's name (as sent, after escaping).
    pub container: String,
    /// What was cut and why.
    pub reason: String,
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `value` cut to `max` bytes including [`MARKER`], if longer.
fn shortened(value: &mut String, max: usize) -> bool {
    if value.len() <= max {
        return false;
    }
    let kept = truncated(value, max - MARKER.len()).len();
    value.truncate(kept);
    value.push_str(MARKER);
    // Give the rest back: a cut-down value held between collections must
    // not keep the engine's size.
    value.shrink_to_fit();
    true
}

/// `s` with hostile characters escaped and cut to `max` bytes; `fallback`
/// when nothing is left.
fn inert(s: &str, max: usize, fallback: &str) -> String {
    let escaped = escape_hostile(s);
    let out = truncated(&escaped, max);
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out.to_owned()
    }
}

fn fix_id(field: &str, value: &mut String, fallback: &str, cuts: &mut Vec<String>) {
    let fixed = inert(value, MAX_ID_LEN, fallback);
    if fixed != *value {
        cuts.push(format!(
            "{field} had control characters or was over {MAX_ID_LEN} bytes"
        ));
        *value = fixed;
    }
}

fn fix_labels(labels: &mut Vec<Label>, cuts: &mut Vec<String>) {
    let before = labels.len();
    labels.retain(|l| l.key.len() <= MAX_TEXT_LEN);
    if labels.len() < before {
        cuts.push(format!(
            "{} label(s) with a key over {MAX_TEXT_LEN} bytes dropped",
            before - labels.len()
        ));
    }
    if labels.len() > MAX_LABELS {
        cuts.push(format!(
            "{} labels, over the limit of {MAX_LABELS}: {} dropped",
            labels.len(),
            labels.len() - MAX_LABELS
        ));
        labels.truncate(MAX_LABELS);
    }
    for l in labels.iter_mut() {
        let len = l.value.len();
        if shortened(&mut l.value, MAX_TEXT_LEN) {
            cuts.push(format!(
                "label {:?} was {len} bytes, truncated to {MAX_TEXT_LEN}",
                inert(&l.key, 80, "")
            ));
        }
    }
}

fn fix_env(env: &mut Vec<EnvVar>, room: usize, what: &str, cuts: &mut Vec<String>) {
    let before = env.len();
    env.retain(|v| {
        !v.name.is_empty() && v.name.len() <= MAX_TEXT_LEN && v.fingerprint.len() <= MAX_TEXT_LEN
    });
    if env.len() < before {
        cuts.push(format!(
            "{} {what} env entr(ies) with an empty or oversize name dropped",
            before - env.len()
        ));
    }
    if env.len() > room {
        cuts.push(format!(
            "{} {what} env entries beyond the limit of {MAX_ENV_ENTRIES} per container dropped",
            env.len() - room
        ));
        env.truncate(room);
    }
    for v in env.iter_mut() {
        if v.value.as_ref().is_some_and(|x| x.len() > MAX_TEXT_LEN) {
            v.value = None;
            cuts.push(format!(
                "env {:?}: the clear value is over {MAX_TEXT_LEN} bytes; sent as its fingerprint only",
                inert(&v.name, 80, "")
            ));
        }
    }
}

fn fix_container(c: &mut Container) -> Vec<String> {
    let mut cuts = Vec::new();
    // A nameless container is named after its id, which may itself be
    // hostile: the fallback is made inert like any name (found by the
    // `limiter` fuzz target: an empty name and an id of carriage returns).
    let fallback_name = inert(&c.id, 12, "unnamed");
    fix_id("id", &mut c.id, "unknown", &mut cuts);
    fix_id("name", &mut c.name, &fallback_name, &mut cuts);
    if let Some(service) = c.service.as_mut() {
        fix_id("service name", &mut service.name, "unnamed", &mut cuts);
    }
    if let Some(image) = c.image.as_mut() {
        for (field, value) in [
            ("image reference", &mut image.reference),
            ("image id", &mut image.image_id),
        ] {
            let fixed = inert(value, MAX_TEXT_LEN, "");
            if fixed != *value {
                cuts.push(format!(
                    "{field} had control characters or was over {MAX_TEXT_LEN} bytes"
                ));
                *value = fixed;
            }
        }
        if image.image_id.is_empty() {
            cuts.push("the engine gave no image id: sent as unknown".to_owned());
            image.image_id = "unknown".to_owned();
        }
        if image.image_id.starts_with(digest::SHA256_PREFIX)
            && digest::parse_digest(&image.image_id).is_err()
        {
            cuts.push(
                "the image id is not a well-formed sha256 digest: sent as unknown".to_owned(),
            );
            image.image_id = "unknown".to_owned();
        }
        let before = image.repo_digests.len();
        image.repo_digests.retain(|d| {
            digest::split_repo_digest(d).is_ok()
                && d.len() <= MAX_TEXT_LEN
                && !d.chars().any(envparity_proto::names::is_hostile)
        });
        if image.repo_digests.len() < before {
            cuts.push(format!(
                "{} repo digest(s) not of the form REPOSITORY@sha256:<64 hex>, or with control characters, dropped",
                before - image.repo_digests.len()
            ));
        }
    }
    fix_labels(&mut c.labels, &mut cuts);
    fix_env(&mut c.explicit_env, MAX_ENV_ENTRIES, "explicit", &mut cuts);
    let room = MAX_ENV_ENTRIES - c.explicit_env.len();
    fix_env(&mut c.image_env, room, "image", &mut cuts);
    let room = room - c.image_env.len();
    fix_env(&mut c.injected_env, room, "injected", &mut cuts);
    cuts
}

/// Label values and command-line arguments are shortened to this many bytes
/// when a container is over its byte budget.
const SHORT: usize = 256;

/// Repo digests kept when a container is cut to its identity and image: with
/// the reference, at most 5 × 64 KiB, well within a container's budget.
const KEPT_DIGESTS: usize = 4;

/// Cuts `snapshot` down to the limits, in place, and says what was cut.
///
/// Each container's reasons are also written to its `cut` field (at most
/// [`MAX_CUTS`]), so that the aggregator raises a `container_unreportable`
/// finding; containers left out are counted in `containers_dropped`.
pub fn apply(snapshot: &mut HostSnapshot) -> Vec<Cut> {
    let mut reasons: Vec<Vec<String>> = Vec::with_capacity(snapshot.containers.len());
    for c in &mut snapshot.containers {
        // What [`fit_container`] cut when the container was read stays.
        let mut why = std::mem::take(&mut c.cut);
        why.extend(fix_container(c));
        why.extend(shrink(c, MAX_CONTAINER_BYTES));
        reasons.push(why);
    }
    let mut dropped = Vec::new();
    if snapshot.containers.len() > MAX_CONTAINERS {
        for c in snapshot.containers.split_off(MAX_CONTAINERS) {
            dropped.push(Cut {
                container: c.name,
                reason: format!(
                    "beyond the limit of {MAX_CONTAINERS} containers per host: not reported"
                ),
            });
        }
        reasons.truncate(MAX_CONTAINERS);
    }
    for (c, why) in snapshot.containers.iter_mut().zip(&reasons) {
        c.cut = listed(why);
    }
    fit(snapshot, &mut reasons, &mut dropped);
    snapshot.containers_dropped = u32::try_from(dropped.len()).unwrap_or(u32::MAX);
    let mut cuts: Vec<Cut> = snapshot
        .containers
        .iter()
        .zip(reasons)
        .flat_map(|(c, why)| {
            why.into_iter().map(|reason| Cut {
                container: c.name.clone(),
                reason,
            })
        })
        .collect();
    cuts.extend(dropped);
    cuts
}

/// The least a container is shrunk to when it is read ([`fit_container`]).
const MIN_READ_BUDGET: usize = 16 * 1024;

/// Shrinks one container as soon as it is read from the engine, to what it
/// could have of a report on a host running `count` containers (its fair
/// share of [`MAX_SNAPSHOT_BYTES`], at least [`MIN_READ_BUDGET`], at most
/// [`MAX_CONTAINER_BYTES`]), recording why in its `cut`. So what the agent
/// holds between collections does not follow what the engine holds: 100
/// containers carrying 500 KB of labels each are held as 16 MB, not 50.
/// Only sizes are dealt with here; names, ids and digests are made to fit
/// by [`apply`], when the snapshot is built (the collector still updates
/// repo digests after reading), and [`apply`] keeps these reasons.
pub fn fit_container(c: &mut Container, count: usize) {
    let share = MAX_SNAPSHOT_BYTES / count.max(1);
    let budget = share
        .clamp(MIN_READ_BUDGET, MAX_CONTAINER_BYTES)
        .saturating_sub(MAX_CUTS * (MAX_CUT_LEN + 3));
    let why: Vec<String> = shrink(c, budget).into_iter().collect();
    if !why.is_empty() {
        let mut all = std::mem::take(&mut c.cut);
        all.extend(why);
        c.cut = listed(&all);
    }
}

/// What a container's `cut` field carries for `reasons`: each made inert and
/// bounded, at most [`MAX_CUTS`] of them (the last one then says how many
/// more the agent's log has).
fn listed(reasons: &[String]) -> Vec<String> {
    let mut out: Vec<String> = reasons
        .iter()
        .take(MAX_CUTS)
        .map(|r| inert(r, MAX_CUT_LEN, "cut"))
        .collect();
    if reasons.len() > MAX_CUTS {
        out[MAX_CUTS - 1] = format!(
            "{} more cuts: the agent's log lists them",
            reasons.len() - (MAX_CUTS - 1)
        );
    }
    out
}

/// Fits the whole snapshot in [`MAX_SNAPSHOT_BYTES`]: when it is over, each
/// container over its fair share of the room is shrunk to it, and if that is
/// not enough (containers whose identity alone is over the share), the last
/// containers are left out.
fn fit(snapshot: &mut HostSnapshot, reasons: &mut Vec<Vec<String>>, dropped: &mut Vec<Cut>) {
    if snapshot.encoded_len() <= MAX_SNAPSHOT_BYTES || snapshot.containers.is_empty() {
        return;
    }
    let containers = std::mem::take(&mut snapshot.containers);
    let fixed = snapshot.encoded_len();
    snapshot.containers = containers;
    let share = MAX_SNAPSHOT_BYTES.saturating_sub(fixed) / snapshot.containers.len();
    // Room for the reason this adds to the container's `cut` list.
    let budget = share.saturating_sub(MAX_CUT_LEN + 8);
    for (c, why) in snapshot.containers.iter_mut().zip(reasons.iter_mut()) {
        if let Some(reason) = shrink(c, budget) {
            why.push(format!(
                "the host's snapshot was over {MAX_SNAPSHOT_BYTES} bytes: {reason}"
            ));
            c.cut = listed(why);
        }
    }
    let mut total = snapshot.encoded_len();
    while total > MAX_SNAPSHOT_BYTES {
        let Some(c) = snapshot.containers.pop() else {
            break;
        };
        reasons.pop();
        total -= prost::encoding::message::encoded_len(10, &c);
        dropped.push(Cut {
            container: c.name,
            reason: format!(
                "the host's snapshot would be over {MAX_SNAPSHOT_BYTES} bytes with it: not reported"
            ),
        });
    }
}

/// Shrinks `c` to at most `budget` encoded bytes, giving up first what
/// parity needs least: label values, then labels, image env, clear env
/// values, long command-line arguments, explicit env entries, and at last
/// everything but the container's identity and image. Says what it gave up,
/// or `None` when the container already fit.
fn shrink(c: &mut Container, budget: usize) -> Option<String> {
    let before = c.encoded_len();
    if before <= budget {
        return None;
    }
    let over = |c: &Container| c.encoded_len() > budget;
    let mut gave_up = Vec::new();
    let mut count = |n: usize, what: &str| {
        if n > 0 {
            gave_up.push(format!("{n} {what}"));
        }
    };
    let mut n = 0;
    while over(c) && c.injected_env.pop().is_some() {
        n += 1;
    }
    count(n, "injected env entr(ies) dropped");
    let mut n = 0;
    for l in &mut c.labels {
        n += usize::from(shortened(&mut l.value, SHORT));
    }
    count(n, "label value(s) shortened");
    let mut n = 0;
    while over(c) && c.labels.pop().is_some() {
        n += 1;
    }
    count(n, "label(s) dropped");
    let mut n = 0;
    while over(c) && c.image_env.pop().is_some() {
        n += 1;
    }
    count(n, "image env entr(ies) dropped");
    if over(c) {
        let mut n = 0;
        for v in &mut c.explicit_env {
            n += usize::from(v.value.take().is_some());
        }
        count(n, "clear env value(s) sent as fingerprints only");
    }
    if over(c)
        && let Some(runtime) = c.runtime.as_mut()
    {
        let mut n = 0;
        for arg in runtime.cmd.iter_mut().chain(&mut runtime.entrypoint) {
            n += usize::from(shortened(arg, SHORT));
        }
        count(n, "command-line argument(s) shortened");
    }
    let mut n = 0;
    while over(c) && c.explicit_env.pop().is_some() {
        n += 1;
    }
    count(n, "explicit env entr(ies) dropped");
    if over(c) {
        c.runtime = None;
        c.labels.clear();
        if let Some(image) = c.image.as_mut() {
            image.repo_digests.truncate(KEPT_DIGESTS);
            image.layers.clear();
            image.oci_labels.clear();
        }
        gave_up.push("cut to its identity and image".to_owned());
    }
    Some(format!(
        "the container was {before} bytes encoded, over {budget}: {}",
        gave_up.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    //! The limiter's input is oversize or hostile on purpose: the builders
    //! check nothing, and each test spells out what is wrong with its input.

    use envparity_proto::fixtures::{self, ContainerBuilder};
    use envparity_proto::names::is_hostile;

    use super::*;

    /// A container of `name` with an image id and no image reference.
    fn builder(name: &str) -> ContainerBuilder {
        fixtures::container(name)
            .id(format!("{name}-id"))
            .image("")
            .image_id(format!("sha256:{}", "a".repeat(64)))
    }

    fn container(name: &str) -> Container {
        builder(name).build()
    }

    /// A snapshot of `containers`, as the agent has it before the limiter.
    fn snapshot(containers: impl IntoIterator<Item = Container>) -> HostSnapshot {
        fixtures::snapshot("h", "dev")
            .containers(containers)
            .build()
    }

    #[test]
    fn an_oversize_label_is_truncated_with_a_marker_and_named() {
        let c = builder("shop").label(
            "kubectl.kubernetes.io/last-applied-configuration",
            "x".repeat(70_000),
        );
        let mut s = snapshot([c.build(), container("cart")]);
        let cuts = apply(&mut s);
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        assert_eq!(cuts[0].container, "shop");
        assert!(cuts[0].reason.contains("70000 bytes"), "{cuts:?}");
        let value = &s.containers[0].labels[0].value;
        assert_eq!(value.len(), MAX_TEXT_LEN);
        assert!(value.ends_with(MARKER));
        // The other container is untouched.
        assert_eq!(s.containers[1], container("cart"));
    }

    #[test]
    fn counts_over_the_limits_are_dropped_and_names_made_inert() {
        let c = (0..1_100).fold(builder("evil\u{1b}[2J\u{202e}"), |c, i| {
            c.label(format!("k{i:05}"), "v")
        });
        let mut s = snapshot([c.build(), container("plain")]);
        s.containers
            .extend((0..MAX_CONTAINERS).map(|i| container(&format!("z{i:05}"))));
        let cuts = apply(&mut s);
        assert_eq!(s.containers.len(), MAX_CONTAINERS);
        assert_eq!(s.containers_dropped, 2);
        let first = &s.containers[0];
        assert_eq!(first.labels.len(), MAX_LABELS);
        assert!(!first.name.chars().any(is_hostile), "{:?}", first.name);
        assert!(first.name.contains("\\u{1b}"));
        assert!(cuts.iter().any(|c| c.reason.contains("1100 labels")));
        assert!(
            first.cut.iter().any(|r| r.contains("1100 labels")),
            "{:?}",
            first.cut
        );
        assert_eq!(s.containers[1].cut, Vec::<String>::new());
        assert_eq!(
            cuts.iter()
                .filter(|c| c.reason.contains("not reported"))
                .count(),
            2
        );
    }

    /// Labels of 60,000 bytes each, many of them: every one is within the
    /// per-field limits, the whole is far over the message limit.
    fn heavy(name: &str, labels: usize) -> Container {
        (0..labels)
            .fold(builder(name), |c, i| {
                c.label(format!("k{i:04}"), "x".repeat(60_000))
            })
            .clear_env("MODE", "f".repeat(64), "blue")
            .build()
    }

    #[test]
    fn a_container_over_its_byte_budget_is_shrunk_and_says_so() {
        let mut s = snapshot([heavy("shop", 1_000), container("cart")]);
        assert!(s.encoded_len() > MAX_SNAPSHOT_BYTES);
        let cuts = apply(&mut s);
        let shop = &s.containers[0];
        assert!(
            shop.encoded_len() <= MAX_CONTAINER_BYTES,
            "{}",
            shop.encoded_len()
        );
        assert!(s.encoded_len() <= MAX_SNAPSHOT_BYTES);
        // Label values go first: the keys all stay, the env is untouched.
        assert_eq!(shop.labels.len(), 1_000);
        assert!(shop.labels.iter().all(|l| l.value.ends_with(MARKER)));
        assert_eq!(shop.explicit_env[0].value.as_deref(), Some("blue"));
        assert_eq!(shop.cut.len(), 1, "{:?}", shop.cut);
        assert!(
            shop.cut[0].contains("1000 label value(s) shortened"),
            "{:?}",
            shop.cut
        );
        assert_eq!(cuts.len(), 1);
        assert_eq!(s.containers[1], container("cart"));
        assert_eq!(s.containers_dropped, 0);
    }

    #[test]
    fn a_snapshot_over_the_message_limit_is_shared_out_fairly() {
        // 60 containers of about 900 KB each: each within its own budget,
        // together 54 MB.
        let mut s = snapshot((0..60).map(|i| heavy(&format!("c{i:02}"), 15)));
        assert!(s.containers[0].encoded_len() <= MAX_CONTAINER_BYTES);
        apply(&mut s);
        assert!(s.encoded_len() <= MAX_SNAPSHOT_BYTES, "{}", s.encoded_len());
        assert_eq!(s.containers.len(), 60, "nobody is left out");
        assert_eq!(s.containers_dropped, 0);
        for c in &s.containers {
            assert!(
                c.cut
                    .iter()
                    .any(|r| r.contains("the host's snapshot was over")),
                "{}: {:?}",
                c.name,
                c.cut
            );
        }
    }

    #[test]
    fn containers_that_cannot_shrink_enough_are_left_out_and_counted() {
        // Identity and image alone over a fair share: 5,000 image
        // references of 60,000 bytes are 300 MB.
        let mut s = snapshot((0..MAX_CONTAINERS).map(|i| {
            builder(&format!("c{i:04}"))
                .image(format!("r{i:04}/{}", "x".repeat(60_000)))
                .build()
        }));
        let cuts = apply(&mut s);
        assert!(s.encoded_len() <= MAX_SNAPSHOT_BYTES, "{}", s.encoded_len());
        let kept = s.containers.len();
        assert!(kept > 0 && kept < MAX_CONTAINERS, "{kept}");
        assert_eq!(s.containers_dropped as usize, MAX_CONTAINERS - kept);
        assert_eq!(
            cuts.iter()
                .filter(|c| c.reason.contains("would be over"))
                .count(),
            MAX_CONTAINERS - kept
        );
    }

    #[test]
    fn the_cut_list_is_bounded_and_inert() {
        let reasons: Vec<String> = (0..20)
            .map(|i| format!("reason {i} \u{1b}[2J {}", "y".repeat(400)))
            .collect();
        let listed = listed(&reasons);
        assert_eq!(listed.len(), MAX_CUTS);
        assert!(listed.iter().all(|r| r.len() <= MAX_CUT_LEN));
        assert!(listed.iter().all(|r| !r.chars().any(is_hostile)));
        assert_eq!(
            listed[MAX_CUTS - 1],
            "13 more cuts: the agent's log lists them"
        );
    }

    #[test]
    fn a_nameless_container_with_a_hostile_id_gets_an_inert_name() {
        let c = builder("x").name("").id("\r".repeat(40));
        let mut s = snapshot([c.build()]);
        apply(&mut s);
        let name = &s.containers[0].name;
        assert!(
            !name.is_empty() && !name.chars().any(is_hostile),
            "{name:?}"
        );
        assert!(!s.containers[0].id.chars().any(is_hostile));
    }

    #[test]
    fn a_repo_digest_with_a_hostile_repository_is_dropped() {
        let digest = format!("sha256:{}", "d".repeat(64));
        let c = builder("shop")
            .repo_digest(format!("\u{1b}[2Jpostgres@{digest}"))
            .repo_digest(format!("postgres@{digest}"));
        let mut s = snapshot([c.build()]);
        let cuts = apply(&mut s);
        let image = s.containers[0].image.as_ref().expect("image");
        assert_eq!(image.repo_digests, vec![format!("postgres@{digest}")]);
        assert!(
            cuts.iter().any(|c| c.reason.contains("1 repo digest(s)")),
            "{cuts:?}"
        );
    }

    #[test]
    fn a_snapshot_within_the_limits_is_left_alone() {
        let mut s = snapshot([container("a"), container("b")]);
        let before = s.clone();
        assert!(apply(&mut s).is_empty());
        assert_eq!(s, before);
    }

    #[test]
    fn truncation_keeps_utf8_intact() {
        let mut v = "é".repeat(MAX_TEXT_LEN);
        assert!(shortened(&mut v, MAX_TEXT_LEN));
        assert!(v.len() <= MAX_TEXT_LEN && v.ends_with(MARKER));
    }
}
