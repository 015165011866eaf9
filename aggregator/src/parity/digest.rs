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
}
