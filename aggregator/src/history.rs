//! Deriving the history of a host from consecutive snapshots.
//!
//! Pure: two snapshots in, the list of changes out. Containers are matched by
//! name within a host, so a container replaced under the same name (the usual
//! deploy) is one `image_changed`, not a removal and an addition, and an agent
//! restart — same containers, new boot id — records nothing.

use std::collections::BTreeMap;

use envparity_proto::time::{from_timestamp, unix_millis};
use envparity_proto::v1::{Container, HostSnapshot};

use crate::parity::digest;
use crate::store::{Change, ChangeKind};

/// The content identity shown in history: the registry digest when known,
/// else the image id.
pub fn content_identity(container: &Container) -> String {
    container
        .image
        .as_ref()
        .map_or_else(String::new, digest::content_identity)
}

/// The changes from the `previous` containers of a host, as (name,
/// container), to `next` (none before: the host is new, every container is
/// an addition). `received_at_ms` is the aggregator's clock. Nothing is
/// copied but what the changes record.
pub fn changes<'a>(
    previous: impl IntoIterator<Item = (&'a str, &'a Container)>,
    next: &HostSnapshot,
    received_at_ms: i64,
) -> Vec<Change> {
    let after = next.containers.iter().map(|c| (c.name.as_str(), c));
    changes_to(previous, next, after, received_at_ms)
}

/// Whether two containers run the same image content
/// ([`digest::same_image`]; none on both sides is the same).
fn same_image(old: &Container, new: &Container) -> bool {
    match (&old.image, &new.image) {
        (Some(a), Some(b)) => digest::same_image(a, b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// [`changes`] to the snapshot whose header is `next` and whose containers
/// are `after`, each by name (its own name and id may be empty: only what
/// it runs is compared).
pub fn changes_to<'a, 'b>(
    previous: impl IntoIterator<Item = (&'a str, &'a Container)>,
    next: &HostSnapshot,
    after: impl IntoIterator<Item = (&'b str, &'b Container)>,
    received_at_ms: i64,
) -> Vec<Change> {
    let before: BTreeMap<&str, &Container> = previous.into_iter().collect();
    let after: BTreeMap<&str, &Container> = after.into_iter().collect();
    let observed_at_ms = next
        .collected_at
        .as_ref()
        .and_then(from_timestamp)
        .map_or(received_at_ms, unix_millis);
    let change = |name: &str, c: &Container, what, old_image: String, new_image: String| Change {
        host_id: next.host_id.clone(),
        environment: next.environment.clone(),
        service: c
            .service
            .as_ref()
            .map_or_else(|| name.to_owned(), |s| s.name.clone()),
        container: name.to_owned(),
        what,
        old_image,
        new_image,
        observed_at_ms,
        received_at_ms,
    };
    let mut out = Vec::new();
    for (name, old) in &before {
        match after.get(name) {
            None => out.push(change(
                name,
                old,
                ChangeKind::Removed,
                content_identity(old),
                String::new(),
            )),
            Some(new) if !same_image(old, new) => out.push(change(
                name,
                new,
                ChangeKind::ImageChanged,
                content_identity(old),
                content_identity(new),
            )),
            Some(_) => {}
        }
    }
    for (name, new) in &after {
        if !before.contains_key(name) {
            out.push(change(
                name,
                new,
                ChangeKind::Added,
                String::new(),
                content_identity(new),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::fixtures;

    /// Container `name` of service `svc-{name}` on `image_id` (its tag pins no
    /// digest, so history shows the image id).
    fn c(name: &str, image_id: &str) -> Container {
        fixtures::container(&format!("svc-{name}"))
            .id(format!("{name}-{image_id}"))
            .name(name)
            .image_id(image_id)
            .build()
    }

    fn named(s: &HostSnapshot) -> impl Iterator<Item = (&str, &Container)> {
        s.containers.iter().map(|c| (c.name.as_str(), c))
    }

    fn snap(containers: Vec<Container>) -> HostSnapshot {
        fixtures::snapshot("h", "dev")
            .containers(containers)
            .build()
    }

    #[test]
    fn added_removed_and_replaced_containers() {
        let before = snap(vec![c("a", "i1"), c("b", "i1"), c("keep", "i1")]);
        let after = snap(vec![c("a", "i2"), c("keep", "i1"), c("new", "i3")]);
        let got: Vec<(String, ChangeKind, String, String)> = changes(named(&before), &after, 7)
            .into_iter()
            .map(|x| (x.container, x.what, x.old_image, x.new_image))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "a".into(),
                    ChangeKind::ImageChanged,
                    "i1".into(),
                    "i2".into()
                ),
                ("b".into(), ChangeKind::Removed, "i1".into(), String::new()),
                ("new".into(), ChangeKind::Added, String::new(), "i3".into()),
            ]
        );
    }

    /// An image that lists one more registry digest (a local build pushed,
    /// a multi-arch pull listing its platform digest beside the index, in
    /// any order) is the same image: nothing is recorded. An image that
    /// shares no digest with the one before is another.
    #[test]
    fn an_image_listing_one_more_digest_is_no_change() {
        let index = format!("sha256:{}", "a".repeat(64));
        let platform = format!("sha256:{}", "b".repeat(64));
        let other = format!("sha256:{}", "c".repeat(64));
        let with = |digests: &[&str]| {
            let mut c = c("a", "i1");
            c.image.as_mut().unwrap().repo_digests =
                digests.iter().map(|d| format!("reg/app@{d}")).collect();
            c
        };
        let before = snap(vec![with(&[&index])]);
        for same in [vec![&*platform, &*index], vec![&*index, &*platform]] {
            let after = snap(vec![with(&same)]);
            assert_eq!(changes(named(&before), &after, 1), vec![], "{same:?}");
        }
        // The same image id is the same content, whatever its digests (a
        // Podman local build pushed lists only its own): no change.
        let after = snap(vec![with(&[&other])]);
        assert_eq!(changes(named(&before), &after, 1), vec![]);
        // Another content: another image id.
        let mut other_image = with(&[&other]);
        other_image.image.as_mut().unwrap().image_id = "i2".into();
        let after = snap(vec![other_image]);
        let got = changes(named(&before), &after, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].what, ChangeKind::ImageChanged);
        assert_eq!((&*got[0].old_image, &*got[0].new_image), (&*index, &*other));
    }

    #[test]
    fn an_unchanged_host_records_nothing() {
        let s = snap(vec![c("a", "i1")]);
        let mut restarted = s.clone();
        restarted.containers[0].id = "new-id-after-agent-restart".into();
        assert_eq!(changes(named(&s), &restarted, 1), vec![]);
    }

    #[test]
    fn a_new_host_adds_everything_at_the_agents_time() {
        let mut s = snap(vec![c("a", "i1")]);
        s.collected_at = Some(prost_types::Timestamp {
            seconds: 100,
            nanos: 0,
        });
        let got = changes([], &s, 999_999);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].what, ChangeKind::Added);
        assert_eq!(got[0].observed_at_ms, 100_000);
        assert_eq!(got[0].received_at_ms, 999_999);
        assert_eq!(got[0].service, "svc-a");
    }
}
