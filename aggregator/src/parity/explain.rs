//! Why two environments run different images: what each image says about
//! itself (OCI labels, creation time) and how much of it they share.
//!
//! Layers are listed bottom first (the image's `RootFS.Layers`), so the
//! length of the common prefix says where two images diverge: a long shared
//! prefix is the same base with different application layers on top; none at
//! all is a different base.

use std::collections::BTreeMap;

use envparity_proto::v1::{Container, ImageInfo};

use super::digest::{
    content_identity, registry_digest, registry_digests, same_content, with_image_id,
};

/// The OCI annotation keys shown.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// The version label.
pub const VERSION: &str = "org.opencontainers.image.version";
/// The creation time label.
pub const CREATED: &str = "org.opencontainers.image.created";
/// The base image digest label.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// The source repository label.
pub const SOURCE: &str = "org.opencontainers.image.source";

/// What one image says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// The reference containers were started from.
    pub reference: String,
    /// The registry digest, empty when unknown.
    pub digest: String,
    /// The local image id.
    pub image_id: String,
    /// Its architecture.
    pub architecture: String,
    /// When it was built (the image config's `created`).
    pub created: String,
    /// OCI `revision` label (the source commit), empty when absent.
    pub revision: String,
    /// OCI `version` label.
    pub version: String,
    /// OCI `created` label.
    pub created_label: String,
    /// OCI `base.digest` label: the base image it was built on.
    pub base_digest: String,
    /// OCI `source` label.
    pub source: String,
    /// Its layers, bottom first.
    pub layers: Vec<String>,
    /// The hosts running it, sorted.
    pub hosts: Vec<String>,
    /// Every registry digest it lists, sorted: whether two sides run the
    /// same content is asked of these, as the parity engine asks it
    /// ([`same_content`]).
    pub digests: Vec<String>,
}

impl ImageFacts {
    /// Its content identity (see [`content_identity`]).
    pub fn content(&self) -> &str {
        if self.digest.is_empty() {
            &self.image_id
        } else {
            &self.digest
        }
    }
}

/// One environment's images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainSide {
    /// The environment.
    pub environment: String,
    /// The distinct images the service runs there.
    pub images: Vec<ImageFacts>,
}

/// How much two images share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedLayers {
    /// Layers shared from the bottom.
    pub shared: usize,
    /// Layers of side A's image.
    pub a_total: usize,
    /// Layers of side B's image.
    pub b_total: usize,
}

/// The explanation for one service and pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The service.
    pub service: String,
    /// Side A.
    pub a: ExplainSide,
    /// Side B.
    pub b: ExplainSide,
    /// True when both sides run exactly the same content.
    pub same_content: bool,
    /// Shared layers, when each side runs exactly one image and both list
    /// their layers.
    pub shared: Option<SharedLayers>,
}

fn label<'a>(img: &'a ImageInfo, key: &str) -> &'a str {
    img.oci_labels
        .iter()
        .find(|l| l.key == key)
        .map_or("", |l| l.value.as_str())
}

fn side<'a>(
    environment: &str,
    instances: impl Iterator<Item = (&'a str, &'a Container)>,
) -> ExplainSide {
    let mut images: BTreeMap<String, ImageFacts> = BTreeMap::new();
    for (host, c) in instances {
        let Some(img) = c.image.as_ref() else {
            continue;
        };
        let facts = images
            .entry(content_identity(img))
            .or_insert_with(|| ImageFacts {
                reference: img.reference.clone(),
                digest: registry_digest(img).unwrap_or_default().to_owned(),
                image_id: img.image_id.clone(),
                architecture: img.architecture.clone(),
                created: img.created.clone(),
                revision: label(img, REVISION).to_owned(),
                version: label(img, VERSION).to_owned(),
                created_label: label(img, CREATED).to_owned(),
                base_digest: label(img, BASE_DIGEST).to_owned(),
                source: label(img, SOURCE).to_owned(),
                layers: img.layers.clone(),
                hosts: Vec::new(),
                digests: registry_digests(img)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            });
        if !facts.hosts.iter().any(|h| h == host) {
            facts.hosts.push(host.to_owned());
            facts.hosts.sort();
        }
    }
    ExplainSide {
        environment: environment.to_owned(),
        images: images.into_values().collect(),
    }
}

/// Whether two sides run the same content: by registry digests when every
/// image of both lists some, as the parity engine compares them (one
/// shared digest names one content: Podman lists a multi-arch image's
/// platform digest beside the index a Docker host lists alone); else the
/// same distinct identities. Never when a side runs nothing.
fn same_images(a: &[ImageFacts], b: &[ImageFacts]) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    match (digest_lists(a), digest_lists(b)) {
        (Some(x), Some(y)) => same_content(&x, &y),
        _ => a
            .iter()
            .map(ImageFacts::content)
            .eq(b.iter().map(ImageFacts::content)),
    }
}

/// Each image's identities, when every image lists registry digests: its
/// digests and its image id, sorted, as the parity engine compares them
/// ([`super::digest::identities`]).
fn digest_lists(side: &[ImageFacts]) -> Option<Vec<Vec<&str>>> {
    side.iter()
        .map(|i| {
            (!i.digests.is_empty()).then(|| {
                let digests = i.digests.iter().map(String::as_str).collect();
                with_image_id(digests, &i.image_id)
            })
        })
        .collect()
}

/// Explains `service` between environments `a` and `b` from its instances
/// `(environment, host, container)`.
pub fn explain(
    service: &str,
    a: &str,
    b: &str,
    instances: &[(String, String, Container)],
) -> Explanation {
    let of = |env: &str| {
        side(
            env,
            instances
                .iter()
                .filter(move |(e, _, _)| e == env)
                .map(|(_, h, c)| (h.as_str(), c)),
        )
    };
    let (sa, sb) = (of(a), of(b));
    let same_content = same_images(&sa.images, &sb.images);
    let shared = match (sa.images.as_slice(), sb.images.as_slice()) {
        ([x], [y]) if !x.layers.is_empty() && !y.layers.is_empty() => Some(SharedLayers {
            shared: x
                .layers
                .iter()
                .zip(&y.layers)
                .take_while(|(p, q)| p == q)
                .count(),
            a_total: x.layers.len(),
            b_total: y.layers.len(),
        }),
        _ => None,
    };
    Explanation {
        service: service.to_owned(),
        a: sa,
        b: sb,
        same_content,
        shared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::fixtures;

    fn container(digest: &str, layers: &[&str], revision: &str) -> Container {
        fixtures::container("app")
            .image("reg/app:1")
            .image_id(format!("sha256:id-{digest}"))
            .repo_digest(format!("reg/app@sha256:{}", &digest.repeat(64)[..64]))
            .layers(layers.iter().copied())
            .image_label(REVISION, revision)
            .build()
    }

    fn instance(env: &str, host: &str, c: Container) -> (String, String, Container) {
        (env.into(), host.into(), c)
    }

    #[test]
    fn a_rebuild_on_the_same_base_shares_the_bottom_layers() {
        let instances = vec![
            instance(
                "staging",
                "s1",
                container("aaa", &["base", "deps", "app1"], "r1"),
            ),
            instance(
                "production",
                "p1",
                container("bbb", &["base", "deps", "app2"], "r2"),
            ),
            instance(
                "production",
                "p2",
                container("bbb", &["base", "deps", "app2"], "r2"),
            ),
        ];
        let e = explain("app", "staging", "production", &instances);
        assert!(!e.same_content);
        assert_eq!(
            e.shared,
            Some(SharedLayers {
                shared: 2,
                a_total: 3,
                b_total: 3
            })
        );
        assert_eq!(e.a.images[0].revision, "r1");
        assert_eq!(e.b.images[0].revision, "r2");
        assert_eq!(e.b.images[0].hosts, vec!["p1", "p2"]);
        assert_eq!(
            e.b.images[0].digest,
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        );
    }

    #[test]
    fn identical_content_is_said_and_a_different_base_shares_nothing() {
        let same = vec![
            instance("staging", "s1", container("aaa", &["l1"], "r")),
            instance("production", "p1", container("aaa", &["l1"], "r")),
        ];
        assert!(explain("app", "staging", "production", &same).same_content);
        let other_base = vec![
            instance("staging", "s1", container("aaa", &["x1", "x2"], "r")),
            instance("production", "p1", container("bbb", &["y1", "x2"], "r")),
        ];
        let e = explain("app", "staging", "production", &other_base);
        assert_eq!(e.shared.map(|s| s.shared), Some(0));
    }

    /// A Podman replica lists a multi-arch image's platform digest beside
    /// the index a Docker replica lists alone: the same content, as the
    /// parity engine says, although each side names it by another digest.
    #[test]
    fn an_image_listing_one_more_digest_is_the_same_content() {
        let index = format!("sha256:{}", "1".repeat(64));
        let platform = format!("sha256:{}", "2".repeat(64));
        let image = |digests: &[&str]| {
            let mut c = fixtures::container("app").image("reg/app:1").build();
            let img = c.image.as_mut().unwrap();
            img.image_id = format!("sha256:{}", "9".repeat(64));
            img.repo_digests = digests.iter().map(|d| format!("reg/app@{d}")).collect();
            c
        };
        let instances = vec![
            instance("staging", "podman", image(&[&platform, &index])),
            instance("production", "docker", image(&[&index])),
        ];
        let e = explain("app", "staging", "production", &instances);
        assert!(e.same_content, "{e:?}");
        // Only the image id shared (a Podman local build pushed): the same.
        let other = format!("sha256:{}", "3".repeat(64));
        let instances = vec![
            instance("staging", "podman", image(&[&platform, &index])),
            instance("production", "docker", image(&[&other])),
        ];
        assert!(explain("app", "staging", "production", &instances).same_content);
        // Another content: another image id too.
        let mut another = image(&[&other]);
        another.image.as_mut().unwrap().image_id = format!("sha256:{}", "8".repeat(64));
        let instances = vec![
            instance("staging", "podman", image(&[&platform, &index])),
            instance("production", "docker", another),
        ];
        assert!(!explain("app", "staging", "production", &instances).same_content);
    }

    #[test]
    fn several_images_on_one_side_give_no_layer_comparison() {
        let instances = vec![
            instance("staging", "s1", container("aaa", &["l1"], "r")),
            instance("staging", "s2", container("ccc", &["l1"], "r")),
            instance("production", "p1", container("bbb", &["l1"], "r")),
        ];
        let e = explain("app", "staging", "production", &instances);
        assert_eq!(e.a.images.len(), 2);
        assert_eq!(e.shared, None);
    }
}
