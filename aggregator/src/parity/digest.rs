//! Which digest identifies an image's content.
//!
//! Two identities exist. The *registry digest* is the digest of the manifest
//! (or of the multi-arch index) in a registry: the same on every host and every
//! architecture that pulled it, so it is the right thing to compare. The *image
//! id* is the digest of the local image config: it differs between the arm64
//! and amd64 variants of one multi-arch image, and it is all there is for an
//! image that never went through a registry. The engine compares registry
//! digests when every replica on both sides has one, image ids otherwise, and
//! says which in the finding.
//!
//! One image can carry several registry digests, and runtimes list different
//! ones for the same content: Podman lists both the index and the platform
//! digest of a multi-arch pull where Docker lists the index alone, and gives a
//! local build a digest of its own that stays beside the one a push adds.
//! Each of them is the digest of a manifest (or index) whose content this
//! image is, so two images that share any one run the same content: the
//! engine compares the [`registry_digests`] of two images by
//! [`same_content`] (do they intersect), never as whole sets, which would
//! make every mixed Docker and Podman fleet disagree. The repository is not
//! part of the comparison: a digest is the hash of the manifest's bytes, the
//! same in a mirror as in the registry it mirrors.

use envparity_proto::digest::{pinned_digest, split_repo_digest};
use envparity_proto::v1::ImageInfo;

/// The registry digest (`sha256:…`) of an image, if one is known. Only
/// strict digests count ([`envparity_proto::digest`]): something that merely
/// starts like one is no identity.
///
/// In order: the digest the reference pins (`repo@sha256:…`); the repo digest
/// whose repository is the reference's; the only distinct digest among the
/// repo digests. `None` when there is none, or several that the reference
/// does not disambiguate.
pub fn registry_digest(image: &ImageInfo) -> Option<&str> {
    if let Ok(Some(pinned)) = pinned_digest(&image.reference) {
        return Some(pinned);
    }
    let wanted = repository(&image.reference);
    let mut entries = image
        .repo_digests
        .iter()
        .filter_map(|d| split_repo_digest(d).ok());
    if let Some((_, digest)) = entries.clone().find(|(repo, _)| *repo == wanted) {
        return Some(digest);
    }
    let first = entries.next()?.1;
    entries.all(|(_, d)| d == first).then_some(first)
}

/// Every registry digest of an image, sorted and without repeats: the digest
/// its reference pins and each strict repo digest, whatever its repository.
/// Empty when it has none (an image that never went through a registry, on
/// Docker).
pub fn registry_digests(image: &ImageInfo) -> Vec<&str> {
    let pinned = pinned_digest(&image.reference).ok().flatten();
    let mut digests: Vec<&str> = pinned
        .into_iter()
        .chain(
            image
                .repo_digests
                .iter()
                .filter_map(|d| split_repo_digest(d).ok().map(|(_, digest)| digest)),
        )
        .collect();
    digests.sort_unstable();
    digests.dedup();
    digests
}

/// Whether two sorted lists of identities share one.
pub fn intersect(a: &[&str], b: &[&str]) -> bool {
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Whether two groups of replicas run the same content, each replica given
/// by its identities (sorted: its registry digests, or its image id alone):
/// every replica of each group shares an identity with some replica of the
/// other. With one identity a replica this is "the same distinct contents
/// on both sides"; with several it never asks that every digest be on both
/// sides, only that each replica's content be found on the other side.
///
/// Deliberately not transitive: an arm64 image listed under two indexes
/// does not make the two amd64 images of those indexes one content.
pub fn same_content(a: &[Vec<&str>], b: &[Vec<&str>]) -> bool {
    let (a, b) = (distinct(a), distinct(b));
    let covered = |side: &[&Vec<&str>], other: &[&Vec<&str>]| {
        side.iter()
            .all(|ids| other.iter().any(|o| intersect(ids, o)))
    };
    covered(&a, &b) && covered(&b, &a)
}

/// Whether the replicas of one group run one content: every two share an
/// identity. Pairwise, for the reason [`same_content`] gives.
pub fn one_content(replicas: &[Vec<&str>]) -> bool {
    let replicas = distinct(replicas);
    replicas
        .iter()
        .enumerate()
        .all(|(i, a)| replicas[i + 1..].iter().all(|b| intersect(a, b)))
}

/// The distinct identity lists of some replicas: most replicas of a service
/// share one, so the pairwise comparisons above stay small.
fn distinct<'l, 'a>(replicas: &'l [Vec<&'a str>]) -> Vec<&'l Vec<&'a str>> {
    let set: std::collections::BTreeSet<&Vec<&str>> = replicas.iter().collect();
    set.into_iter().collect()
}

/// Whether a replica that ran image `a` and now runs `b` runs the same
/// content: by their identities when both have registry digests (sharing
/// one digest, or the image id, is enough: [`identities`]), else by image
/// id. History and the gate ask this, so that an image listing one more
/// digest (a multi-arch pull on Podman), or another one for the same
/// config (a Podman local build pushed), is not taken for another image.
pub fn same_image(a: &ImageInfo, b: &ImageInfo) -> bool {
    let (x, y) = (registry_digests(a), registry_digests(b));
    if x.is_empty() || y.is_empty() {
        a.image_id == b.image_id
    } else {
        intersect(&identities(a), &identities(b))
    }
}

/// The identities that name an image's content, sorted: its registry
/// digests and its image id. The id (the digest of the image's config,
/// which names its layers) is the same wherever the image went: a Podman
/// local build pushed to a registry lists only the digest Podman gave it,
/// where a Docker host that pulled the push lists the registry's, and
/// they share the id. What [`same_content`] and [`same_image`] compare.
pub fn identities(image: &ImageInfo) -> Vec<&str> {
    with_image_id(registry_digests(image), &image.image_id)
}

/// `digests` (sorted, without repeats) with the image id `id` in its
/// place: an image's identities ([`identities`]).
pub fn with_image_id<'a>(mut digests: Vec<&'a str>, id: &'a str) -> Vec<&'a str> {
    if !id.is_empty()
        && let Err(at) = digests.binary_search(&id)
    {
        digests.insert(at, id);
    }
    digests
}

/// The content identity of an image: its registry digest when known, else its
/// image id. What history, `status` cells and `explain` show and group by.
pub fn content_identity(image: &ImageInfo) -> String {
    registry_digest(image).map_or_else(|| image.image_id.clone(), str::to_owned)
}

/// The repository part of a reference: without `@digest` and without `:tag`
/// (a `:` followed by no `/`, so a registry port is kept).
pub fn repository(reference: &str) -> &str {
    let without_digest = reference.split_once('@').map_or(reference, |(r, _)| r);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

/// Whether a reference is pinned to content: `@` and a strict digest.
pub fn is_pinned(reference: &str) -> bool {
    matches!(pinned_digest(reference), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::fixtures;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The image of a container started from `reference`, with
    /// `repo_digests` taken as given.
    fn image(reference: &str, repo_digests: &[&str]) -> ImageInfo {
        let image_id = "sha256:6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f";
        let c = fixtures::container("app")
            .image(reference)
            .image_id(image_id);
        let c = repo_digests.iter().fold(c, |c, d| c.repo_digest(*d));
        c.build().image.expect("an image")
    }

    #[test]
    fn repository_strips_tag_and_digest_but_keeps_the_port() {
        assert_eq!(repository("127.0.0.1:5000/app:1.2"), "127.0.0.1:5000/app");
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(
            repository(
                "app@sha256:abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabca"
            ),
            "app"
        );
        assert_eq!(
            repository(
                "app:1@sha256:abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabca"
            ),
            "app"
        );
        assert_eq!(repository("busybox"), "busybox");
    }

    #[test]
    fn a_pinned_reference_is_its_own_digest() {
        let i = image(
            "reg/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &["reg/app@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],
        );
        assert_eq!(
            registry_digest(&i),
            Some("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        );
        assert!(is_pinned(&i.reference));
    }

    #[test]
    fn the_repo_digest_of_the_references_repository_wins() {
        let i = image(
            "reg/app:1",
            &[
                "other/app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "reg/app@sha256:2222222222222222222222222222222222222222222222222222222222222222",
            ],
        );
        assert_eq!(
            registry_digest(&i),
            Some("sha256:2222222222222222222222222222222222222222222222222222222222222222")
        );
    }

    #[test]
    fn a_single_distinct_digest_under_other_names_is_used() {
        let i = image(
            "app:1",
            &[
                "a/app@sha256:3333333333333333333333333333333333333333333333333333333333333333",
                "b/app@sha256:3333333333333333333333333333333333333333333333333333333333333333",
            ],
        );
        assert_eq!(
            registry_digest(&i),
            Some("sha256:3333333333333333333333333333333333333333333333333333333333333333")
        );
    }

    #[test]
    fn ambiguous_or_missing_digests_give_none() {
        assert_eq!(registry_digest(&image("app:1", &[])), None);
        let i = image(
            "app:1",
            &[
                "a/app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "b/app@sha256:2222222222222222222222222222222222222222222222222222222222222222",
            ],
        );
        assert_eq!(registry_digest(&i), None);
        assert_eq!(registry_digest(&image("app:1", &["garbage"])), None);
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    #[test]
    fn registry_digests_are_the_pinned_one_and_every_strict_repo_digest_sorted() {
        let i = image(
            &format!("reg/app@{D3}"),
            &[
                &format!("reg/app@{D2}"),
                &format!("localhost/app@{D1}"),
                &format!("mirror/app@{D2}"),
                "reg/app@sha256:abc",
            ],
        );
        assert_eq!(registry_digests(&i), vec![D1, D2, D3]);
        assert!(registry_digests(&image("app:1", &[])).is_empty());
    }

    #[test]
    fn podmans_index_and_platform_digests_are_the_same_content_as_dockers_index_digest() {
        // Docker lists the index digest of a multi-arch pull; Podman lists
        // the platform digest too, and may list it first.
        let docker = image("reg/app:1", &[&format!("reg/app@{D1}")]);
        let podman = image(
            "reg/app:1",
            &[&format!("reg/app@{D2}"), &format!("reg/app@{D1}")],
        );
        let (d, p) = (registry_digests(&docker), registry_digests(&podman));
        assert!(same_content(
            std::slice::from_ref(&d),
            std::slice::from_ref(&p)
        ));
        assert!(one_content(&[d, p]));
    }

    #[test]
    fn each_replica_must_find_its_content_on_the_other_side() {
        // A side that runs two contents, against one that runs one of them.
        assert!(!same_content(&[vec![D1], vec![D2]], &[vec![D1]]));
        assert!(same_content(
            &[vec![D1], vec![D2]],
            &[vec![D2], vec![D1, D3]]
        ));
        // Not transitive: D1 and D3 meet only through a replica listing
        // both, which is on neither side.
        assert!(!same_content(&[vec![D1]], &[vec![D3]]));
        assert!(!one_content(&[vec![D1], vec![D1, D2], vec![D2]]));
        assert!(one_content(&[vec![D1, D2], vec![D2], vec![D2, D3]]));
        assert!(same_content(&[], &[]));
        assert!(!same_content(&[], &[vec![D1]]));
    }

    fn arb_ids() -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::btree_set(prop::sample::select(vec![D1, D2, D3]), 1..=3)
            .prop_map(|s| s.into_iter().collect())
    }

    fn arb_side() -> impl Strategy<Value = Vec<Vec<&'static str>>> {
        prop::collection::vec(arb_ids(), 0..4)
    }

    proptest! {
        #[test]
        fn same_content_is_symmetric(a in arb_side(), b in arb_side()) {
            prop_assert_eq!(same_content(&a, &b), same_content(&b, &a));
        }

        #[test]
        fn equal_sides_are_the_same_content(a in arb_side()) {
            prop_assert!(same_content(&a, &a));
            prop_assert!(same_content(&a, &a.iter().rev().cloned().collect::<Vec<_>>()));
        }

        #[test]
        fn sides_with_no_digest_in_common_differ(a in arb_side(), b in arb_side()) {
            let seen: BTreeSet<&str> = a.iter().flatten().copied().collect();
            let b: Vec<Vec<&str>> = b
                .into_iter()
                .map(|ids| ids.into_iter().filter(|d| !seen.contains(d)).collect::<Vec<_>>())
                .filter(|ids| !ids.is_empty())
                .collect();
            prop_assume!(!a.is_empty() || !b.is_empty());
            prop_assert!(!same_content(&a, &b));
        }

        /// Adding a digest to a replica of a matching pair keeps the match:
        /// a runtime that lists more digests for the same content never
        /// turns parity into drift.
        #[test]
        fn an_extra_digest_keeps_a_match(a in arb_side(), b in arb_side(), extra in prop::sample::select(vec![D1, D2, D3]), which in any::<prop::sample::Index>()) {
            prop_assume!(same_content(&a, &b) && !a.is_empty());
            let mut a = a;
            let i = which.index(a.len());
            a[i].push(extra);
            a[i].sort_unstable();
            a[i].dedup();
            prop_assert!(same_content(&a, &b));
            prop_assert!(same_content(&b, &a));
        }

        /// With one digest a replica, intersection is the old rule: the
        /// same distinct digests on both sides.
        #[test]
        fn single_digests_match_as_equal_sets(a in prop::collection::vec(prop::sample::select(vec![D1, D2, D3]), 0..4), b in prop::collection::vec(prop::sample::select(vec![D1, D2, D3]), 0..4)) {
            let old = a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>();
            let (a, b): (Vec<Vec<&str>>, Vec<Vec<&str>>) = (a.into_iter().map(|d| vec![d]).collect(), b.into_iter().map(|d| vec![d]).collect());
            prop_assert_eq!(same_content(&a, &b), old);
        }

        #[test]
        fn intersect_agrees_with_sets(a in arb_ids(), b in arb_ids()) {
            let (sa, sb): (BTreeSet<&str>, BTreeSet<&str>) = (a.iter().copied().collect(), b.iter().copied().collect());
            prop_assert_eq!(intersect(&a, &b), sa.intersection(&sb).next().is_some());
        }
    }
}
