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
//!   and are truncated to their length limit.
//!
//! Every cut is returned as a [`Cut`] naming the container and the reason;
//! the caller logs each at WARN. The function is pure, and its output always
//! passes the aggregator's validation (a property test in the aggregator's
//! validator checks exactly that).

use envparity_proto::limits::{
    MAX_CONTAINERS, MAX_ENV_ENTRIES, MAX_ID_LEN, MAX_LABELS, MAX_TEXT_LEN,
};
use envparity_proto::names::escape_hostile;
use envparity_proto::v1::{Container, EnvVar, HostSnapshot, Label};

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
    let fallback_name = truncated(&c.id, 12).to_owned();
    fix_id("id", &mut c.id, "unknown", &mut cuts);
    fix_id(
        "name",
        &mut c.name,
        if fallback_name.is_empty() {
            "unnamed"
        } else {
            &fallback_name
        },
        &mut cuts,
    );
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
            image.image_id = "unknown".to_owned();
        }
        for digest in &mut image.repo_digests {
            let fixed = inert(digest, MAX_TEXT_LEN, "unknown");
            if fixed != *digest {
                cuts.push("a repo digest had control characters or was oversize".to_owned());
                *digest = fixed;
            }
        }
    }
    fix_labels(&mut c.labels, &mut cuts);
    fix_env(&mut c.explicit_env, MAX_ENV_ENTRIES, "explicit", &mut cuts);
    let room = MAX_ENV_ENTRIES - c.explicit_env.len();
    fix_env(&mut c.image_env, room, "image", &mut cuts);
    cuts
}

/// Cuts `snapshot` down to the limits, in place, and says what was cut.
pub fn apply(snapshot: &mut HostSnapshot) -> Vec<Cut> {
    let mut cuts = Vec::new();
    for c in &mut snapshot.containers {
        for reason in fix_container(c) {
            cuts.push(Cut {
                container: c.name.clone(),
                reason,
            });
        }
    }
    if snapshot.containers.len() > MAX_CONTAINERS {
        let dropped = snapshot.containers.split_off(MAX_CONTAINERS);
        for c in dropped {
            cuts.push(Cut {
                container: c.name,
                reason: format!(
                    "beyond the limit of {MAX_CONTAINERS} containers per host: not reported"
                ),
            });
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use envparity_proto::names::is_hostile;
    use envparity_proto::v1::{ImageInfo, ServiceIdentity};

    use super::*;

    fn container(name: &str) -> Container {
        Container {
            id: format!("{name}-id"),
            name: name.to_owned(),
            service: Some(ServiceIdentity {
                name: name.to_owned(),
                source: 1,
            }),
            image: Some(ImageInfo {
                image_id: format!("sha256:{}", "a".repeat(64)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_oversize_label_is_truncated_with_a_marker_and_named() {
        let mut s = HostSnapshot::default();
        let mut c = container("shop");
        c.labels = vec![Label {
            key: "kubectl.kubernetes.io/last-applied-configuration".into(),
            value: "x".repeat(70_000),
        }];
        s.containers = vec![c, container("cart")];
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
        let mut s = HostSnapshot::default();
        let mut c = container("evil\u{1b}[2J\u{202e}");
        c.labels = (0..1_100)
            .map(|i| Label {
                key: format!("k{i:05}"),
                value: "v".into(),
            })
            .collect();
        s.containers = vec![c; MAX_CONTAINERS + 2];
        let cuts = apply(&mut s);
        assert_eq!(s.containers.len(), MAX_CONTAINERS);
        let first = &s.containers[0];
        assert_eq!(first.labels.len(), MAX_LABELS);
        assert!(!first.name.chars().any(is_hostile), "{:?}", first.name);
        assert!(first.name.contains("\\u{1b}"));
        assert!(cuts.iter().any(|c| c.reason.contains("1100 labels")));
        assert_eq!(
            cuts.iter()
                .filter(|c| c.reason.contains("not reported"))
                .count(),
            2
        );
    }

    #[test]
    fn a_snapshot_within_the_limits_is_left_alone() {
        let mut s = HostSnapshot {
            containers: vec![container("a"), container("b")],
            ..Default::default()
        };
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
