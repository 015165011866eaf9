use super::*;
use crate::parity::policy::{Pinning, Report, RuntimeField};
use envparity_proto::fixtures;
use envparity_proto::v1::{EnvVar, RuntimeConfig};
use proptest::prelude::*;
use std::time::Duration;

/// A container of `service` running `image_id` with an optional registry
/// digest and explicit env `(name, fingerprint)`.
fn container(
    service: &str,
    image_id: &str,
    digest: Option<&str>,
    env: &[(&str, &str)],
) -> Container {
    let c = fixtures::container(service)
        .id(format!("{service}-{image_id}"))
        // One tag per image, so that only the tests that mean it share a
        // tag between different images.
        .image(format!("reg/{service}:{}", image_id.replace(':', "-")))
        .image_id(image_id)
        .envs(env.iter().copied());
    match digest {
        Some(d) => c.repo_digest(format!("reg/{service}@{d}")).build(),
        None => c.build(),
    }
}

/// A host of `env` (the fleet names it) on `kernel` running `containers`.
fn snapshot(env: &str, kernel: &str, containers: Vec<Container>) -> HostSnapshot {
    fixtures::snapshot("h", env)
        .kernel(kernel)
        .fingerprint_key("k1")
        .containers(containers)
        .build()
}

/// The default policy without pinning rules: the containers above run tags,
/// and most tests are about other kinds. Pinning has its own tests.
fn quiet() -> Policy {
    Policy {
        pinning: Pinning {
            required: Vec::new(),
            elsewhere: Report::Off,
        },
        ..Policy::default()
    }
}

pub(crate) const LAST_SEEN: Duration = Duration::from_secs(1_700_000_000);

pub(crate) struct Fleet {
    pub(crate) hosts: Vec<(String, HostSnapshot, bool)>,
    pub(crate) policy: Policy,
}

impl Fleet {
    pub(crate) fn new() -> Self {
        Fleet {
            hosts: Vec::new(),
            policy: quiet(),
        }
    }
    pub(crate) fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
    pub(crate) fn host(mut self, id: &str, snap: HostSnapshot) -> Self {
        self.hosts.push((id.into(), snap, true));
        self
    }
    fn stale_host(mut self, id: &str, snap: HostSnapshot) -> Self {
        self.hosts.push((id.into(), snap, false));
        self
    }
    pub(crate) fn views(&self) -> Vec<HostView<'_>> {
        self.hosts
            .iter()
            .map(|(id, s, current)| HostView {
                host_id: id,
                environment: &s.environment,
                current: *current,
                stale: !*current,
                last_seen: SystemTime::UNIX_EPOCH + LAST_SEEN,
                snapshot: s,
                held: None,
                only: None,
            })
            .collect()
    }
    pub(crate) fn findings(&self, a: &str, b: &str) -> Vec<Finding> {
        evaluate(&self.views(), &self.policy, &Scope::pair(a, b))
    }
    fn all(&self) -> Vec<Finding> {
        let envs: Vec<String> = self
            .hosts
            .iter()
            .map(|(_, s, _)| s.environment.clone())
            .collect();
        evaluate(
            &self.views(),
            &self.policy,
            &Scope::all(&self.policy, &envs),
        )
    }
}

fn b(f: &Finding) -> &Side {
    f.b.as_ref().expect("a two-sided finding")
}

fn kinds(f: &[Finding]) -> Vec<(Kind, &str, &str)> {
    f.iter()
        .map(|x| (x.kind, x.service.as_str(), x.key.as_str()))
        .collect()
}

const K: &str = "6.1.0-18-amd64";

#[test]
fn identical_environments_have_parity() {
    let c = || {
        container(
            "shop",
            "sha256:696d6731696d6731696d6731696d6731696d6731696d6731696d6731696d6731",
            Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
            &[("A", "fa")],
        )
    };
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![c()]))
        .host("p1", snapshot("production", K, vec![c()]));
    assert_eq!(fleet.findings("staging", "production"), vec![]);
}

#[test]
fn a_different_registry_digest_is_a_critical_image_digest_finding() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:6931693169316931693169316931693169316931693169316931693169316931",
                    Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                    &[],
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "sha256:6932693269326932693269326932693269326932693269326932693269326932",
                    Some("sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"),
                    &[],
                )],
            ),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind, Kind::ImageDigest);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].basis, Basis::RegistryDigest);
    assert_eq!(f[0].service, "shop");
    assert_eq!(
        f[0].a.values,
        vec!["sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"]
    );
    assert_eq!(
        b(&f[0]).values,
        vec!["sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"]
    );
    assert_eq!(f[0].a.hosts, vec!["s1"]);
    assert_eq!(b(&f[0]).hosts, vec!["p1"]);
}

#[test]
fn multi_arch_hosts_with_one_index_digest_are_not_a_mismatch() {
    // arm64 and amd64 pulls of one multi-arch image: different image ids,
    // same registry digest.
    let fleet = Fleet::new()
        .host(
            "d1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:61726d61726d61726d61726d61726d61726d61726d61726d61726d61726d6172",
                    Some("sha256:6964786964786964786964786964786964786964786964786964786964786964"),
                    &[],
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "sha256:616d64616d64616d64616d64616d64616d64616d64616d64616d64616d64616d",
                    Some("sha256:6964786964786964786964786964786964786964786964786964786964786964"),
                    &[],
                )],
            ),
        );
    assert_eq!(fleet.findings("staging", "production"), vec![]);
}

const INDEX: &str = "sha256:6964786964786964786964786964786964786964786964786964786964786964";
const PLATFORM: &str = "sha256:706c6174706c6174706c6174706c6174706c6174706c6174706c6174706c6174";
const OTHER: &str = "sha256:6f7468656f7468656f7468656f7468656f7468656f7468656f7468656f746865";

/// A container of `service` from `reg/{service}:1` whose image lists
/// `repo_digests` as given, in that order.
fn listing(service: &str, image_id: &str, repo_digests: &[String]) -> Container {
    repo_digests
        .iter()
        .fold(
            fixtures::container(service)
                .id(format!("{service}-{image_id}"))
                .image(format!("reg/{service}:1"))
                .image_id(image_id),
            |c, d| c.repo_digest(d.clone()),
        )
        .build()
}

/// Docker lists the index digest of a multi-arch pull, Podman the platform
/// digest before it: one content, between environments and inside one.
#[test]
fn podman_and_docker_listings_of_one_pull_are_one_content() {
    let image_id = "sha256:616d64616d64616d64616d64616d64616d64616d64616d64616d64616d64616d";
    let docker = || listing("shop", image_id, &[format!("reg/shop@{INDEX}")]);
    let podman = || {
        listing(
            "shop",
            image_id,
            &[format!("reg/shop@{PLATFORM}"), format!("reg/shop@{INDEX}")],
        )
    };
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![docker()]))
        .host("p1", snapshot("production", K, vec![podman()]))
        .host("p2", snapshot("production", K, vec![docker()]));
    assert_eq!(fleet.findings("staging", "production"), vec![]);
    assert_eq!(fleet.findings("production", "staging"), vec![]);
}

/// Inside one environment, replicas of which every two share a digest run
/// one content, even where no digest is on all of them; two that share
/// none are replica drift, shown under different digests.
#[test]
fn replicas_are_one_content_when_every_two_share_a_digest() {
    let image_id = "sha256:616d64616d64616d64616d64616d64616d64616d64616d64616d64616d6461";
    // One production host a replica, each listing these digests.
    let fleet = |replicas: &[&[&str]]| {
        replicas
            .iter()
            .enumerate()
            .fold(Fleet::new(), |fleet, (i, ds)| {
                let digests: Vec<String> = ds.iter().map(|d| format!("reg/shop@{d}")).collect();
                // Each its own image id: only digests make them one content.
                let c = listing("shop", &format!("{image_id}{i}"), &digests);
                fleet.host(&format!("p{}", i + 1), snapshot("production", K, vec![c]))
            })
    };
    assert_eq!(
        fleet(&[&[INDEX, PLATFORM], &[PLATFORM, OTHER], &[INDEX, OTHER]]).all(),
        vec![]
    );

    let drifting = fleet(&[&[INDEX, PLATFORM], &[PLATFORM], &[INDEX]]);
    let f = drifting.all();
    assert_eq!(kinds(&f), vec![(Kind::ReplicaDrift, "shop", "image")]);
    assert_eq!(f[0].a.values.len(), 2, "{:?}", f[0].a.values);
}

/// Podman gives a local build a digest of its own, which stays beside the
/// one a push adds: the pushed digest is found on the Docker side.
#[test]
fn a_podman_build_pushed_and_pulled_by_docker_is_one_content() {
    let image_id = "sha256:6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f";
    let built = listing(
        "shop",
        image_id,
        &[
            format!("localhost/shop@{OTHER}"),
            format!("reg/shop@{INDEX}"),
        ],
    );
    let pulled = listing("shop", image_id, &[format!("reg/shop@{INDEX}")]);
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![built]))
        .host("p1", snapshot("production", K, vec![pulled]));
    assert_eq!(fleet.findings("staging", "production"), vec![]);
}

/// Podman 4.3, measured (e2e `runtimes_podman`): a local build pushed to
/// a registry keeps listing only the digest Podman gave it, while a Docker
/// host that pulled the push lists the registry's. The two share no digest
/// but their image id (the digest of the config, which names the layers):
/// one content, no finding; another id is another content.
#[test]
fn a_podman_build_listing_only_its_own_digest_is_the_content_docker_pulled() {
    let image_id = "sha256:6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f";
    let built = listing("shop", image_id, &[format!("reg/shop@{OTHER}")]);
    let pulled = |id: &str| listing("shop", id, &[format!("reg/shop@{INDEX}")]);
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![built.clone()]))
        .host("p1", snapshot("production", K, vec![pulled(image_id)]));
    assert_eq!(fleet.findings("staging", "production"), vec![]);
    assert_eq!(fleet.all(), vec![]);

    let other = "sha256:6f746865726f746865726f746865726f746865726f746865726f746865726f";
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![built]))
        .host("p1", snapshot("production", K, vec![pulled(other)]));
    let f = fleet.findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::SameTagDifferentDigest, "shop", "reg/shop:1"),
            (Kind::ImageDigest, "shop", ""),
        ],
        "{f:#?}"
    );
    // Named by their registry digests, not by the ids they do not share.
    assert_eq!(f[1].a.values, vec![OTHER.to_owned()]);
    assert_eq!(b(&f[1]).values, vec![INDEX.to_owned()]);
}

/// Digest sets that share nothing still differ, whichever runtime listed
/// them; a side shows its content under the digest the other side shares
/// when there is one, so what runs on both sides reads the same.
#[test]
fn digest_sets_sharing_nothing_are_still_an_image_digest_finding() {
    let podman = listing(
        "shop",
        "sha256:6931693169316931693169316931693169316931693169316931693169316931",
        &[format!("reg/shop@{PLATFORM}"), format!("reg/shop@{INDEX}")],
    );
    // Another content each, so another image id each.
    let docker = |digest: &str| {
        listing(
            "shop",
            &format!("sha256:69{}", &digest["sha256:".len()..digest.len() - 2]),
            &[format!("reg/shop@{digest}")],
        )
    };
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![podman]))
        .host("p1", snapshot("production", K, vec![docker(OTHER)]))
        .host("p2", snapshot("production", K, vec![docker(INDEX)]));
    let f = fleet.findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::SameTagDifferentDigest, "shop", "reg/shop:1"),
            (Kind::ImageDigest, "shop", ""),
            (Kind::ReplicaDrift, "shop", "image")
        ]
    );
    let digest = &f[1];
    assert_eq!(digest.basis, Basis::RegistryDigest);
    assert_eq!(digest.severity, Severity::Critical);
    assert_eq!(digest.a.values, vec![INDEX]);
    assert_eq!(b(digest).values, vec![INDEX, OTHER]);
    assert_eq!(
        f[2].a.values,
        vec![format!("{INDEX} on p2"), format!("{OTHER} on p1")]
    );
}

#[test]
fn without_a_registry_digest_on_one_side_image_ids_are_compared() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:6931693169316931693169316931693169316931693169316931693169316931",
                    Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                    &[],
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "sha256:6932693269326932693269326932693269326932693269326932693269326932",
                    None,
                    &[],
                )],
            ),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].basis, Basis::ImageId);
    assert_eq!(
        f[0].a.values,
        vec!["sha256:6931693169316931693169316931693169316931693169316931693169316931"]
    );
    assert_eq!(
        b(&f[0]).values,
        vec!["sha256:6932693269326932693269326932693269326932693269326932693269326932"]
    );

    let same = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:6931693169316931693169316931693169316931693169316931693169316931",
                    Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                    &[],
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "sha256:6931693169316931693169316931693169316931693169316931693169316931",
                    None,
                    &[],
                )],
            ),
        );
    assert_eq!(same.findings("staging", "production"), vec![]);
}

#[test]
fn image_baked_env_is_never_configuration_drift() {
    let mut a = container(
        "shop",
        "sha256:6931693169316931693169316931693169316931693169316931693169316931",
        None,
        &[],
    );
    let mut b = container(
        "shop",
        "sha256:6931693169316931693169316931693169316931693169316931693169316931",
        None,
        &[],
    );
    a.image_env.push(EnvVar {
        name: "BAKED".into(),
        fingerprint: "x".into(),
        value: None,
    });
    b.image_env.push(EnvVar {
        name: "BAKED".into(),
        fingerprint: "y".into(),
        value: None,
    });
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![a]))
        .host("p1", snapshot("production", K, vec![b]));
    assert_eq!(fleet.findings("staging", "production"), vec![]);
}

#[test]
fn env_missing_extra_and_value_are_told_apart() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "i",
                    None,
                    &[("ONLY_A", "f"), ("BOTH", "f1"), ("SAME", "s")],
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "i",
                    None,
                    &[("ONLY_B", "f"), ("BOTH", "f2"), ("SAME", "s")],
                )],
            ),
        );
    let f = fleet.findings("staging", "production");
    let got: Vec<(Kind, &str, Severity)> = f
        .iter()
        .map(|x| (x.kind, x.key.as_str(), x.severity))
        .collect();
    assert_eq!(
        got,
        vec![
            (Kind::EnvMissingKey, "ONLY_A", Severity::Warning),
            (Kind::EnvExtraKey, "ONLY_B", Severity::Warning),
            (Kind::EnvValue, "BOTH", Severity::Warning),
        ]
    );
    assert_eq!(f[2].basis, Basis::Fingerprint);
    assert!(f.iter().all(|x| x.service == "shop"));
}

#[test]
fn earlier_stages_are_info_and_unknown_names_warning() {
    let c = |img: &str| container("shop", img, Some(img), &[("A", img)]);
    let fleet = Fleet::new()
        .host(
            "d1",
            snapshot(
                "dev",
                K,
                vec![c(
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                )],
            ),
        )
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![c(
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![c(
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                )],
            ),
        )
        .host(
            "b1",
            snapshot(
                "blue",
                K,
                vec![c(
                    "sha256:3333333333333333333333333333333333333333333333333333333333333333",
                )],
            ),
        );
    let dev = fleet.findings("dev", "staging");
    assert_eq!(dev.len(), 2);
    assert!(dev.iter().all(|f| f.severity == Severity::Info), "{dev:#?}");
    let blue = fleet.findings("production", "blue");
    assert_eq!(blue.len(), 2);
    assert!(blue.iter().all(|f| f.severity == Severity::Warning));
}

#[test]
fn kernel_minor_drift_is_a_warning_and_patch_drift_info() {
    let minor = Fleet::new()
        .host("s1", snapshot("staging", "6.1.0-18-amd64", vec![]))
        .host("p1", snapshot("production", "5.10.0-28-amd64", vec![]));
    let f = minor.findings("staging", "production");
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].severity),
        (Kind::Kernel, Severity::Warning)
    );
    assert_eq!(f[0].service, "");
    assert_eq!(b(&f[0]).values, vec!["5.10.0-28-amd64"]);

    let patch = Fleet::new()
        .host("s1", snapshot("staging", "6.1.0-18-amd64", vec![]))
        .host("p1", snapshot("production", "6.1.0-20-amd64", vec![]));
    assert_eq!(
        patch.findings("staging", "production")[0].severity,
        Severity::Info
    );
}

#[test]
fn a_service_absent_on_one_side_is_missing_there_and_nothing_else() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot("staging", K, vec![container("shop", "i1", None, &[])]),
        )
        .host(
            "p1",
            snapshot("production", K, vec![container("cart", "i2", None, &[])]),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::MissingService, "cart", ""),
            (Kind::MissingService, "shop", "")
        ]
    );
    // cart runs in production but never ran in staging: a warning.
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].a.hosts, Vec::<String>::new());
    assert_eq!(b(&f[0]).hosts, vec!["p1"]);
    // shop is in staging, not promoted yet: info.
    assert_eq!(f[1].severity, Severity::Info);
    assert_eq!(f[1].a.values, vec!["running"]);
    assert_eq!(f[1].summary, "shop: runs in staging but not in production");
}

#[test]
fn stale_hosts_are_named_on_their_side() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot("staging", K, vec![container("shop", "i1", None, &[])]),
        )
        .stale_host(
            "p1",
            snapshot("production", K, vec![container("shop", "i2", None, &[])]),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(f[0].kind, Kind::ImageDigest);
    assert_eq!(f[0].a.stale_hosts, Vec::<String>::new());
    assert_eq!(b(&f[0]).stale_hosts, vec!["p1"]);
    // And the stale host is a finding of its own, saying since when.
    let stale = f
        .iter()
        .find(|x| x.kind == Kind::StaleHost)
        .expect("stale_host");
    assert_eq!(stale.host, "p1");
    assert_eq!(stale.a.environment, "production");
    assert!(stale.b.is_none());
    assert_eq!(stale.a.values, vec!["2023-11-14T22:13:20Z"]);
    assert_eq!(f.len(), 2, "{f:#?}");
}

#[test]
fn the_service_filter_keeps_host_level_findings() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                "6.1.0",
                vec![
                    container("shop", "i1", None, &[]),
                    container("cart", "c1", None, &[]),
                ],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                "5.10.0",
                vec![
                    container("shop", "i2", None, &[]),
                    container("cart", "c2", None, &[]),
                ],
            ),
        );
    let scope = Scope::pair("staging", "production").with_service(Some("cart".into()));
    let f = evaluate(&fleet.views(), &fleet.policy, &scope);
    let kinds: Vec<(Kind, &str)> = f.iter().map(|x| (x.kind, x.service.as_str())).collect();
    assert_eq!(kinds, vec![(Kind::ImageDigest, "cart"), (Kind::Kernel, "")]);
}

#[test]
fn replicas_contribute_all_their_digests() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot("staging", K, vec![container("shop", "i1", None, &[])]),
        )
        .host(
            "p1",
            snapshot("production", K, vec![container("shop", "i1", None, &[])]),
        )
        .host(
            "p2",
            snapshot("production", K, vec![container("shop", "i2", None, &[])]),
        );
    let f = fleet.findings("staging", "production");
    // The two production replicas also differ from each other.
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::ImageDigest, "shop", ""),
            (Kind::ReplicaDrift, "shop", "image")
        ]
    );
    assert_eq!(b(&f[0]).values, vec!["i1", "i2"]);
    assert_eq!(b(&f[0]).hosts, vec!["p1", "p2"]);
}

/// A one-off `docker run` (no identity label, a name the engine made up)
/// is reported on its host as unmanaged, info by default, and compared
/// with nothing: no `missing_service` under its random name, no drift with
/// a container of the same name elsewhere.
#[test]
fn an_unmanaged_container_is_reported_on_its_host_and_never_compared() {
    let shop = || container("shop", "i1", None, &[]);
    let one_off = |image_id: &str| {
        fixtures::container("naughty_wilson")
            .image("busybox:1")
            .image_id(image_id)
            .unmanaged()
            .build()
    };
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![shop(), one_off("i8")]))
        .host("p1", snapshot("production", K, vec![shop()]))
        .host("p2", snapshot("production", K, vec![shop(), one_off("i9")]));
    let f = fleet.all();
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::UnmanagedContainer, "naughty_wilson", "naughty_wilson"),
            (Kind::UnmanagedContainer, "naughty_wilson", "naughty_wilson"),
        ],
        "{f:#?}"
    );
    let hosts: Vec<(&str, &str)> = f
        .iter()
        .map(|x| (x.host.as_str(), x.a.environment.as_str()))
        .collect();
    assert_eq!(hosts, vec![("s1", "staging"), ("p2", "production")]);
    assert!(f.iter().all(|x| x.severity == Severity::Info
        && x.basis == Basis::Unmanaged
        && x.b.is_none()
        && x.a.values == vec!["busybox:1"]));

    // An older agent does not say so: the container is a service of its
    // own, as before.
    let old = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![shop(), {
                    let mut c = one_off("i8");
                    c.unmanaged = false;
                    c
                }],
            ),
        )
        .host("p1", snapshot("production", K, vec![shop()]));
    assert_eq!(
        kinds(&old.findings("staging", "production")),
        vec![(Kind::MissingService, "naughty_wilson", "")]
    );
}

/// The policy raises unmanaged containers (`[unmanaged] report`, or a
/// `[severity]` override) or turns them off.
#[test]
fn the_policy_raises_or_ignores_unmanaged_containers() {
    let fleet = |policy: &str| {
        Fleet::new()
            .policy(Policy {
                pinning: quiet().pinning,
                ..Policy::from_toml(policy, "test.toml").expect("a policy")
            })
            .host(
                "p1",
                snapshot(
                    "production",
                    K,
                    vec![fixtures::container("sad_wu").unmanaged().build()],
                ),
            )
            .all()
    };
    let severities = |f: Vec<Finding>| f.iter().map(|x| (x.kind, x.severity)).collect::<Vec<_>>();
    assert_eq!(
        severities(fleet("")),
        vec![(Kind::UnmanagedContainer, Severity::Info)]
    );
    assert_eq!(
        severities(fleet("[unmanaged]\nreport = \"warning\"\n")),
        vec![(Kind::UnmanagedContainer, Severity::Warning)]
    );
    assert_eq!(
        severities(fleet("[severity]\nunmanaged_container = \"critical\"\n")),
        vec![(Kind::UnmanagedContainer, Severity::Critical)]
    );
    assert_eq!(severities(fleet("[unmanaged]\nreport = \"off\"\n")), vec![]);
}

#[test]
fn all_pairs_follow_promotion_order() {
    let scope = Scope::all(
        &Policy::default(),
        &["production".into(), "dev".into(), "staging".into()],
    );
    assert_eq!(
        scope.pairs,
        vec![
            ("dev".to_string(), "staging".to_string()),
            ("dev".to_string(), "production".to_string()),
            ("staging".to_string(), "production".to_string()),
        ]
    );
}

fn with_reference(mut c: Container, reference: &str) -> Container {
    if let Some(i) = c.image.as_mut() {
        i.reference = reference.into();
    }
    c
}

fn with_runtime(mut c: Container, f: impl FnOnce(&mut RuntimeConfig)) -> Container {
    let mut r = c.runtime.take().unwrap_or_default();
    f(&mut r);
    c.runtime = Some(r);
    c
}

#[test]
fn one_tag_with_two_digests_is_a_critical_rebuild() {
    let tagged = |i, d| with_reference(container("shop", i, Some(d), &[]), "reg/shop:1");
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![tagged(
                    "i1",
                    "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1",
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![tagged(
                    "i2",
                    "sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2",
                )],
            ),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::SameTagDifferentDigest, "shop", "reg/shop:1"),
            (Kind::ImageDigest, "shop", "")
        ]
    );
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(
        f[0].a.values,
        vec!["sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"]
    );
    assert_eq!(
        b(&f[0]).values,
        vec!["sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"]
    );
    assert!(
        f[0].summary.contains("rebuilt, not promoted"),
        "{}",
        f[0].summary
    );

    // A different tag with different content is drift, not a rebuild; and
    // even in relaxed pairs a rebuilt tag stays critical.
    let retagged = Fleet::new()
        .host(
            "s1",
            snapshot("staging", K, vec![tagged("i1", "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1")]),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![with_reference(
                    container("shop", "i2", Some("sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"), &[]),
                    "reg/shop:2",
                )],
            ),
        );
    assert_eq!(
        kinds(&retagged.findings("staging", "production")),
        vec![(Kind::ImageDigest, "shop", "")]
    );
    let dev = Fleet::new()
        .host(
            "d1",
            snapshot(
                "dev",
                K,
                vec![tagged(
                    "i1",
                    "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1",
                )],
            ),
        )
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![tagged(
                    "i2",
                    "sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2",
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![tagged(
                    "i2",
                    "sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2",
                )],
            ),
        );
    let f = dev.findings("dev", "staging");
    assert_eq!(f[0].kind, Kind::SameTagDifferentDigest);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[1].severity, Severity::Info);
}

#[test]
fn multi_arch_pulls_of_one_tag_are_not_a_rebuild() {
    let arm = |c: Container| {
        let mut c = c;
        c.image.as_mut().unwrap().architecture = "arm64".into();
        c
    };
    let amd = |c: Container| {
        let mut c = c;
        c.image.as_mut().unwrap().architecture = "amd64".into();
        c
    };
    // Same index digest: nothing at all.
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![arm(container(
                    "shop",
                    "sha256:61726d61726d61726d61726d61726d61726d61726d61726d61726d61726d6172",
                    Some("sha256:6964786964786964786964786964786964786964786964786964786964786964"),
                    &[],
                ))],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![amd(container(
                    "shop",
                    "sha256:616d64616d64616d64616d64616d64616d64616d64616d64616d64616d64616d",
                    Some("sha256:6964786964786964786964786964786964786964786964786964786964786964"),
                    &[],
                ))],
            ),
        );
    assert_eq!(fleet.findings("staging", "production"), vec![]);
    // No registry digest on one side and different architectures: image ids
    // cannot be compared, so no content verdict rather than a false one.
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![arm(container(
                    "shop",
                    "sha256:61726d61726d61726d61726d61726d61726d61726d61726d61726d61726d6172",
                    Some("sha256:6964786964786964786964786964786964786964786964786964786964786964"),
                    &[],
                ))],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![amd(container(
                    "shop",
                    "sha256:616d64616d64616d64616d64616d64616d64616d64616d64616d64616d64616d",
                    None,
                    &[],
                ))],
            ),
        );
    assert_eq!(fleet.findings("staging", "production"), vec![]);
}

#[test]
fn unpinned_images_follow_the_pinning_policy() {
    let pinned = |s| {
        with_reference(
            container(
                s,
                "i1",
                Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                &[],
            ),
            "reg/shop@sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1",
        )
    };
    let tagged = |s| {
        with_reference(
            container(
                s,
                "i1",
                Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                &[],
            ),
            "reg/shop:1",
        )
    };
    let fleet = Fleet::new()
        .policy(Policy::default())
        .host("d1", snapshot("dev", K, vec![tagged("shop")]))
        .host("s1", snapshot("staging", K, vec![pinned("shop")]))
        .host("p1", snapshot("production", K, vec![tagged("shop")]));
    let f: Vec<_> = fleet
        .all()
        .into_iter()
        .filter(|f| f.kind == Kind::UnpinnedImage)
        .collect();
    let got: Vec<(&str, Severity, Option<&Side>)> = f
        .iter()
        .map(|x| (x.a.environment.as_str(), x.severity, x.b.as_ref()))
        .collect();
    // The last stage must be pinned (warning); elsewhere it is info.
    assert_eq!(
        got,
        vec![
            ("dev", Severity::Info, None),
            ("production", Severity::Warning, None)
        ]
    );
    assert_eq!(f[1].a.values, vec!["reg/shop:1"]);
    assert_eq!(f[1].a.hosts, vec!["p1"]);

    // An explicit policy: only the listed environments, nothing elsewhere.
    let policy = Policy {
        pinning: Pinning {
            required: vec!["dev".into()],
            elsewhere: Report::Off,
        },
        ..Policy::default()
    };
    let f: Vec<_> = fleet
        .policy(policy)
        .all()
        .into_iter()
        .filter(|f| f.kind == Kind::UnpinnedImage)
        .map(|f| (f.a.environment, f.severity))
        .collect();
    assert_eq!(f, vec![("dev".to_owned(), Severity::Warning)]);
}

#[test]
fn replicas_that_differ_inside_one_environment_are_replica_drift() {
    let fleet = Fleet::new()
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container("shop", "i1", Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"), &[("A", "f1")])],
            ),
        )
        .host(
            "p2",
            snapshot(
                "production",
                K,
                vec![container("shop", "i2", Some("sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"), &[("A", "f2")])],
            ),
        )
        .host(
            "p3",
            snapshot(
                "production",
                K,
                vec![with_runtime(
                    container("shop", "i1", Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"), &[("A", "f1")]),
                    |r| r.user = "root".into(),
                )],
            ),
        );
    let f = fleet.all();
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::ReplicaDrift, "shop", "env:A"),
            (Kind::ReplicaDrift, "shop", "image"),
            (Kind::ReplicaDrift, "shop", "runtime:user"),
        ]
    );
    assert!(
        f.iter()
            .all(|x| x.b.is_none() && x.a.environment == "production")
    );
    assert_eq!(
        f[1].a.values,
        vec![
            "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1 on p1,p3",
            "sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2 on p2"
        ]
    );
    assert_eq!(f[1].basis, Basis::RegistryDigest);
    assert_eq!(f[0].a.values, vec!["fp:f1 on p1,p3", "fp:f2 on p2"]);
    assert_eq!(f[2].a.values, vec!["(none) on p1,p2", "root on p3"]);
    assert_eq!(f[1].severity, Severity::Warning);

    // Identical replicas: nothing.
    let same = Fleet::new()
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "i1",
                    Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                    &[("A", "f1")],
                )],
            ),
        )
        .host(
            "p2",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "i1",
                    Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
                    &[("A", "f1")],
                )],
            ),
        );
    assert_eq!(same.all(), vec![]);
}

/// The CRI has no restart policy: a replica on containerd says nothing
/// about it, so Docker's `always` against containerd's empty value is no
/// finding, while two Docker sides are still compared, and a side that
/// mixes both runtimes is compared on its Docker replicas.
#[test]
fn a_restart_policy_is_not_compared_with_containerd_which_has_none() {
    let pinned = Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1");
    let docker = |policy: &str| {
        with_runtime(container("shop", "i1", pinned, &[]), |r| {
            r.restart_policy = policy.into();
        })
    };
    let on = |env: &str, runtime: &str, containers: Vec<Container>| {
        let mut s = snapshot(env, K, containers);
        s.engine = Some(envparity_proto::v1::EngineFacts {
            runtime: runtime.into(),
            ..Default::default()
        });
        s
    };
    let restart = |f: &[Finding]| {
        f.iter()
            .filter(|x| x.kind == Kind::RuntimeConfig && x.key == "restart_policy")
            .count()
    };
    let mixed = Fleet::new()
        .host("s1", on("staging", "docker", vec![docker("always")]))
        .host("p1", on("production", "containerd", vec![docker("")]));
    assert_eq!(restart(&mixed.findings("staging", "production")), 0);

    let both_docker = Fleet::new()
        .host("s1", on("staging", "docker", vec![docker("always")]))
        .host("p1", on("production", "docker", vec![docker("")]));
    assert_eq!(restart(&both_docker.findings("staging", "production")), 1);

    let half = Fleet::new()
        .host("s1", on("staging", "docker", vec![docker("always")]))
        .host("p1", on("production", "containerd", vec![docker("")]))
        .host("p2", on("production", "docker", vec![docker("no")]));
    let f = half.findings("staging", "production");
    assert_eq!(restart(&f), 1);
    let finding = f.iter().find(|x| x.key == "restart_policy").unwrap();
    assert_eq!(b(finding).values, vec!["no"]);
}

#[test]
fn runtime_settings_that_differ_are_runtime_config_findings() {
    let base = || {
        container(
            "shop",
            "i1",
            Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
            &[],
        )
    };
    let staging = with_runtime(base(), |r| {
        r.cmd = vec!["serve".into()];
        r.privileged = false;
        r.mounts = vec![envparity_proto::v1::Mount {
            r#type: "volume".into(),
            destination: "/data".into(),
            read_only: true,
        }];
    });
    let production = with_runtime(base(), |r| {
        r.cmd = vec!["serve".into(), "--debug".into()];
        r.privileged = true;
        r.mounts = vec![envparity_proto::v1::Mount {
            r#type: "volume".into(),
            destination: "/data".into(),
            read_only: false,
        }];
    });
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![staging]))
        .host("p1", snapshot("production", K, vec![production]));
    let f = fleet.findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::RuntimeConfig, "shop", "cmd"),
            (Kind::RuntimeConfig, "shop", "mounts"),
            (Kind::RuntimeConfig, "shop", "privileged"),
        ]
    );
    assert_eq!(f[0].a.values, vec!["serve"]);
    assert_eq!(b(&f[0]).values, vec!["serve --debug"]);
    assert_eq!(b(&f[1]).values, vec!["/data:rw (volume)"]);
    assert!(
        f.iter()
            .all(|x| x.severity == Severity::Warning && x.basis == Basis::RuntimeSetting)
    );

    // Ignoring a setting in the policy removes exactly its finding.
    let mut policy = quiet();
    policy.runtime.ignored.insert(RuntimeField::Cmd);
    let f = fleet.policy(policy).findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::RuntimeConfig, "shop", "mounts"),
            (Kind::RuntimeConfig, "shop", "privileged")
        ]
    );
}

#[test]
fn expected_to_differ_keys_must_exist_but_may_differ() {
    let mut policy = quiet();
    policy.env.expected_to_differ.insert("DATABASE_URL".into());
    let fleet = Fleet::new()
        .policy(policy)
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "i",
                    None,
                    &[("DATABASE_URL", "f1"), ("ENVIRONMENT", "s")],
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container("shop", "i", None, &[("DATABASE_URL", "f2")])],
            ),
        );
    // The value may differ; the key missing from production still counts.
    assert_eq!(
        kinds(&fleet.findings("staging", "production")),
        vec![(Kind::EnvMissingKey, "shop", "ENVIRONMENT")]
    );
    let missing = Fleet::new()
        .policy(fleet.policy.clone())
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container("shop", "i", None, &[("DATABASE_URL", "f1")])],
            ),
        )
        .host(
            "p1",
            snapshot("production", K, vec![container("shop", "i", None, &[])]),
        );
    assert_eq!(
        kinds(&missing.findings("staging", "production")),
        vec![(Kind::EnvMissingKey, "shop", "DATABASE_URL")]
    );
}

#[test]
fn per_service_rules_apply_to_that_service_only() {
    let mut policy = quiet();
    policy.services.insert(
        "shop".into(),
        crate::parity::policy::ServiceRules {
            expected_to_differ: ["A".to_owned()].into(),
            ..Default::default()
        },
    );
    policy.services.insert(
        "legacy".into(),
        crate::parity::policy::ServiceRules {
            ignore: true,
            ..Default::default()
        },
    );
    let c = |s, fp| container(s, "i", None, &[("A", fp)]);
    let fleet = Fleet::new()
        .policy(policy)
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![c("shop", "f1"), c("cart", "f1"), c("legacy", "f1")],
            ),
        )
        .host(
            "p1",
            snapshot("production", K, vec![c("shop", "f2"), c("cart", "f2")]),
        );
    assert_eq!(
        kinds(&fleet.findings("staging", "production")),
        vec![(Kind::EnvValue, "cart", "A")]
    );
}

#[test]
fn a_service_listed_for_some_environments_is_only_missing_there() {
    let mut policy = quiet();
    policy.services.insert(
        "debug-ui".into(),
        crate::parity::policy::ServiceRules {
            environments: Some(["dev".to_owned()].into()),
            ..Default::default()
        },
    );
    let fleet = Fleet::new()
        .policy(policy)
        .host(
            "d1",
            snapshot("dev", K, vec![container("debug-ui", "i", None, &[])]),
        )
        .host(
            "s1",
            snapshot("staging", K, vec![container("shop", "i", None, &[])]),
        )
        .host(
            "p1",
            snapshot("production", K, vec![container("shop", "i", None, &[])]),
        );
    // shop should run in dev too (no rule): missing there. debug-ui is dev-only.
    assert_eq!(
        kinds(&fleet.all()),
        vec![
            (Kind::MissingService, "shop", ""),
            (Kind::MissingService, "shop", "")
        ]
    );
}

#[test]
fn host_facts_are_compared_per_environment_pair() {
    let host = |env: &str, os: (&str, &str), engine: (&str, &str, &str, &str), arch: &str| {
        let mut s = snapshot(env, K, vec![]);
        let h = s.host.as_mut().unwrap();
        h.os_id = os.0.into();
        h.os_version = os.1.into();
        h.architecture = arch.into();
        s.engine = Some(envparity_proto::v1::EngineFacts {
            server_version: engine.0.into(),
            cgroup_version: engine.1.into(),
            cgroup_driver: engine.2.into(),
            storage_driver: engine.3.into(),
            ..Default::default()
        });
        s
    };
    let fleet = Fleet::new()
        .host(
            "s1",
            host(
                "staging",
                ("debian", "12"),
                ("20.10.24", "2", "cgroupfs", "overlay2"),
                "x86_64",
            ),
        )
        .host(
            "p1",
            host(
                "production",
                ("ubuntu", "22.04"),
                ("24.0.7", "1", "systemd", "vfs"),
                "aarch64",
            ),
        );
    let f = fleet.findings("staging", "production");
    let got: Vec<(Kind, Severity, Vec<String>, Vec<String>)> = f
        .iter()
        .map(|x| (x.kind, x.severity, x.a.values.clone(), b(x).values.clone()))
        .collect();
    let v = |s: &str| vec![s.to_owned()];
    assert_eq!(
        got,
        vec![
            (
                Kind::Os,
                Severity::Warning,
                v("debian 12"),
                v("ubuntu 22.04")
            ),
            (
                Kind::EngineVersion,
                Severity::Warning,
                v("20.10.24"),
                v("24.0.7")
            ),
            (
                Kind::Cgroup,
                Severity::Warning,
                v("v2/cgroupfs"),
                v("v1/systemd")
            ),
            (
                Kind::StorageDriver,
                Severity::Warning,
                v("overlay2"),
                v("vfs")
            ),
            (
                Kind::Architecture,
                Severity::Warning,
                v("x86_64"),
                v("aarch64")
            ),
        ]
    );
    assert!(
        f.iter()
            .all(|x| x.service.is_empty() && x.basis == Basis::HostFact)
    );

    // A patch-level engine difference is info; a relaxed pair is info.
    let patch = Fleet::new()
        .host(
            "s1",
            host(
                "staging",
                ("debian", "12"),
                ("20.10.24", "2", "systemd", "vfs"),
                "x86_64",
            ),
        )
        .host(
            "p1",
            host(
                "production",
                ("debian", "12"),
                ("20.10.25", "2", "systemd", "vfs"),
                "x86_64",
            ),
        );
    let f = patch.findings("staging", "production");
    assert_eq!(
        (f[0].kind, f[0].severity),
        (Kind::EngineVersion, Severity::Info)
    );
    let relaxed = Fleet::new()
        .host(
            "d1",
            host(
                "dev",
                ("ubuntu", "24.04"),
                ("20.10.24", "2", "systemd", "vfs"),
                "x86_64",
            ),
        )
        .host(
            "s1",
            host(
                "staging",
                ("debian", "12"),
                ("20.10.24", "2", "systemd", "vfs"),
                "x86_64",
            ),
        )
        .host(
            "p1",
            host(
                "production",
                ("debian", "12"),
                ("20.10.24", "2", "systemd", "vfs"),
                "x86_64",
            ),
        );
    let f = relaxed.findings("dev", "staging");
    assert_eq!((f[0].kind, f[0].severity), (Kind::Os, Severity::Info));
}

#[test]
fn severity_overrides_replace_the_default() {
    let mut policy = quiet();
    policy.severity.insert(Kind::Kernel, Severity::Critical);
    policy.severity.insert(Kind::EnvValue, Severity::Info);
    let fleet = Fleet::new()
        .policy(policy)
        .host(
            "s1",
            snapshot(
                "staging",
                "6.1.0",
                vec![container("shop", "i", None, &[("A", "f1")])],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                "6.1.1",
                vec![container("shop", "i", None, &[("A", "f2")])],
            ),
        );
    let got: Vec<(Kind, Severity)> = fleet
        .findings("staging", "production")
        .iter()
        .map(|f| (f.kind, f.severity))
        .collect();
    assert_eq!(
        got,
        vec![
            (Kind::EnvValue, Severity::Info),
            (Kind::Kernel, Severity::Critical)
        ]
    );
}

#[test]
fn a_pair_the_policy_ignores_is_not_compared() {
    let mut policy = quiet();
    policy.pairs.push(crate::parity::policy::PairRule {
        environments: ["dev".into(), "staging".into()],
        level: Level::Ignore,
    });
    let c = |img: &str| container("shop", img, Some(img), &[]);
    let fleet = Fleet::new()
        .policy(policy)
        .host(
            "d1",
            snapshot(
                "dev",
                K,
                vec![c(
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                )],
            ),
        )
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![c(
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![c(
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                )],
            ),
        );
    let pairs: Vec<(String, String)> = fleet
        .all()
        .iter()
        .filter(|f| f.kind == Kind::ImageDigest)
        .map(|f| (f.a.environment.clone(), b(f).environment.clone()))
        .collect();
    assert_eq!(pairs, vec![("dev".to_owned(), "production".to_owned())]);
}

// ---- properties ----

fn arb_container() -> impl Strategy<Value = Container> {
    (
        prop::sample::select(vec!["shop", "cart", "auth"]),
        prop::sample::select(vec![
            "sha256:6931693169316931693169316931693169316931693169316931693169316931",
            "sha256:6932693269326932693269326932693269326932693269326932693269326932",
        ]),
        prop::option::of(prop::sample::select(vec![
            "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1",
            "sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2",
        ])),
        prop::collection::vec(
            (
                prop::sample::select(vec!["A", "B", "C", "D"]),
                prop::sample::select(vec!["f1", "f2"]),
            ),
            0..4,
        ),
    )
        .prop_map(|(s, i, d, env)| {
            let mut env: Vec<(&str, &str)> = env;
            env.sort();
            env.dedup_by_key(|(n, _)| *n);
            container(s, i, d, &env)
        })
}

fn arb_env_hosts() -> impl Strategy<Value = Vec<(String, Vec<Container>)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["6.1.0", "6.1.2", "5.10.0"]).prop_map(str::to_owned),
            prop::collection::vec(arb_container(), 0..4),
        ),
        1..3,
    )
}

fn rekeyed(mut snap: HostSnapshot, key_id: &str) -> HostSnapshot {
    // Another fleet key gives every value another fingerprint.
    snap.fingerprint_key_id = key_id.into();
    for c in &mut snap.containers {
        for v in &mut c.explicit_env {
            v.fingerprint = format!("{key_id}-{}", v.fingerprint);
        }
    }
    snap
}

#[test]
fn a_key_rotation_is_one_key_mismatch_not_env_value_findings() {
    let env = [("A", "fa"), ("B", "fb")];
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:6969696969696969696969696969696969696969696969696969696969696969",
                    None,
                    &env,
                )],
            ),
        )
        .host(
            "p1",
            rekeyed(
                snapshot(
                    "production",
                    K,
                    vec![container(
                        "shop",
                        "sha256:6969696969696969696969696969696969696969696969696969696969696969",
                        None,
                        &[("A", "fa"), ("B", "fb"), ("C", "fc")],
                    )],
                ),
                "k2",
            ),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(
        kinds(&f),
        vec![
            (Kind::EnvExtraKey, "shop", "C"),
            (Kind::KeyMismatch, "shop", "")
        ],
        "{f:#?}"
    );
    let mismatch = &f[1];
    assert_eq!(mismatch.a.values, vec!["k1"]);
    assert_eq!(b(mismatch).values, vec!["k2"]);
    assert_eq!(mismatch.basis, Basis::KeyId);
    assert_eq!(mismatch.severity, Severity::Warning);
    assert!(
        mismatch
            .summary
            .contains("2 keys could not be compared: A, B"),
        "{}",
        mismatch.summary
    );

    // Positive control: under one key the same values are env_value drift.
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:6969696969696969696969696969696969696969696969696969696969696969",
                    None,
                    &env,
                )],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container(
                    "shop",
                    "sha256:6969696969696969696969696969696969696969696969696969696969696969",
                    None,
                    &[("A", "k2-fa"), ("B", "k2-fb")],
                )],
            ),
        );
    assert_eq!(
        kinds(&fleet.findings("staging", "production")),
        vec![(Kind::EnvValue, "shop", "A"), (Kind::EnvValue, "shop", "B")]
    );
}

#[test]
fn a_rotation_with_nothing_to_compare_is_no_finding() {
    // Keys set on one side only are compared by presence, whatever the key.
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container(
                    "shop",
                    "sha256:6969696969696969696969696969696969696969696969696969696969696969",
                    None,
                    &[("A", "fa")],
                )],
            ),
        )
        .host(
            "p1",
            rekeyed(
                snapshot(
                    "production",
                    K,
                    vec![container(
                        "shop",
                        "sha256:6969696969696969696969696969696969696969696969696969696969696969",
                        None,
                        &[],
                    )],
                ),
                "k2",
            ),
        );
    assert_eq!(
        kinds(&fleet.findings("staging", "production")),
        vec![(Kind::EnvMissingKey, "shop", "A")]
    );
}

#[test]
fn replicas_under_different_keys_are_compared_by_presence_only() {
    let c = |env: &[(&str, &str)]| {
        container(
            "shop",
            "sha256:6969696969696969696969696969696969696969696969696969696969696969",
            None,
            env,
        )
    };
    let fleet = Fleet::new()
        .host("p1", snapshot("production", K, vec![c(&[("A", "fa")])]))
        .host(
            "p2",
            rekeyed(snapshot("production", K, vec![c(&[("A", "fa")])]), "k2"),
        )
        .host("p3", snapshot("production", K, vec![c(&[])]));
    let f: Vec<Finding> = fleet
        .all()
        .into_iter()
        .filter(|f| f.kind == Kind::ReplicaDrift)
        .collect();
    assert_eq!(
        kinds(&f),
        vec![(Kind::ReplicaDrift, "shop", "env:A")],
        "{f:#?}"
    );
    assert_eq!(f[0].basis, Basis::KeyPresence, "presence, not fingerprints");
}

proptest! {
    #[test]
    fn re_keying_an_environment_never_yields_env_value(hosts in arb_env_hosts()) {
        let mut fleet = Fleet::new();
        for (i, (kernel, cs)) in hosts.iter().enumerate() {
            fleet = fleet
                .host(&format!("s{i}"), snapshot("staging", kernel, cs.clone()))
                .host(&format!("p{i}"), rekeyed(snapshot("production", kernel, cs.clone()), "k2"));
        }
        let between: Vec<Finding> = fleet
            .findings("staging", "production")
            .into_iter()
            .filter(|f| f.b.is_some())
            .collect();
        // The same containers, only re-keyed: nothing but key mismatches,
        // at most one per service.
        prop_assert!(between.iter().all(|f| f.kind == Kind::KeyMismatch), "{:#?}", between);
        let services: BTreeSet<&str> = between.iter().map(|f| f.service.as_str()).collect();
        prop_assert_eq!(services.len(), between.len());
    }

    #[test]
    fn adding_an_ignored_key_changes_nothing(a in arb_env_hosts(), b in arb_env_hosts(), fp in "[a-f]{1,4}", on_a in any::<bool>()) {
        let mut policy = quiet();
        policy.env.ignored.insert("IGNORED".into());
        let build = |extra: bool| {
            let mut fleet = Fleet::new().policy(policy.clone());
            for (i, (kernel, cs)) in a.iter().enumerate() {
                let mut cs = cs.clone();
                if extra && on_a {
                    for c in &mut cs {
                        c.explicit_env.push(EnvVar { name: "IGNORED".into(), fingerprint: fp.clone(), value: None });
                    }
                }
                fleet = fleet.host(&format!("s{i}"), snapshot("staging", kernel, cs));
            }
            for (i, (kernel, cs)) in b.iter().enumerate() {
                let mut cs = cs.clone();
                if extra && !on_a {
                    for c in &mut cs {
                        c.explicit_env.push(EnvVar { name: "IGNORED".into(), fingerprint: fp.clone(), value: None });
                    }
                }
                fleet = fleet.host(&format!("p{i}"), snapshot("production", kernel, cs));
            }
            fleet.all()
        };
        prop_assert_eq!(build(false), build(true));
    }

    #[test]
    fn an_environment_copied_verbatim_has_parity(hosts in arb_env_hosts()) {
        let mut fleet = Fleet::new();
        for (i, (kernel, cs)) in hosts.iter().enumerate() {
            fleet = fleet
                .host(&format!("s{i}"), snapshot("staging", kernel, cs.clone()))
                .host(&format!("p{i}"), snapshot("production", kernel, cs.clone()));
        }
        // Replicas may differ inside each environment (that is replica
        // drift, on both sides alike); between the two there is nothing.
        let between: Vec<Finding> = fleet
            .findings("staging", "production")
            .into_iter()
            .filter(|f| f.b.is_some())
            .collect();
        prop_assert_eq!(between, vec![]);
    }

    #[test]
    fn swapping_environments_swaps_sides_and_nothing_else(a in arb_env_hosts(), b in arb_env_hosts()) {
        let mut fleet = Fleet::new();
        for (i, (kernel, cs)) in a.iter().enumerate() {
            fleet = fleet.host(&format!("s{i}"), snapshot("staging", kernel, cs.clone()));
        }
        for (i, (kernel, cs)) in b.iter().enumerate() {
            fleet = fleet.host(&format!("p{i}"), snapshot("production", kernel, cs.clone()));
        }
        let forward = fleet.findings("staging", "production");
        let backward = fleet.findings("production", "staging");
        let mirror = |f: &Finding| {
            let kind = match f.kind {
                Kind::EnvMissingKey => Kind::EnvExtraKey,
                Kind::EnvExtraKey => Kind::EnvMissingKey,
                k => k,
            };
            match &f.b {
                Some(b) => (kind, f.service.clone(), f.key.clone(), b.clone(), Some(f.a.clone()), f.severity, f.basis),
                None => (kind, f.service.clone(), f.key.clone(), f.a.clone(), None, f.severity, f.basis),
            }
        };
        let mut fw: Vec<_> = forward.iter().map(mirror).collect();
        let mut bw: Vec<_> = backward
            .iter()
            .map(|f| (f.kind, f.service.clone(), f.key.clone(), f.a.clone(), f.b.clone(), f.severity, f.basis))
            .collect();
        fw.sort();
        bw.sort();
        prop_assert_eq!(fw, bw);
    }

    #[test]
    fn host_order_does_not_change_the_verdict(a in arb_env_hosts(), b in arb_env_hosts()) {
        let mut hosts: Vec<(String, HostSnapshot)> = Vec::new();
        for (i, (kernel, cs)) in a.iter().enumerate() {
            hosts.push((format!("s{i}"), snapshot("staging", kernel, cs.clone())));
        }
        for (i, (kernel, cs)) in b.iter().enumerate() {
            hosts.push((format!("p{i}"), snapshot("production", kernel, cs.clone())));
        }
        let forward = hosts.iter().fold(Fleet::new(), |f, (id, s)| f.host(id, s.clone()));
        let reversed = hosts.iter().rev().fold(Fleet::new(), |f, (id, s)| f.host(id, s.clone()));
        prop_assert_eq!(forward.findings("staging", "production"), reversed.findings("staging", "production"));
    }
}

#[test]
fn a_container_the_agent_cut_is_a_finding_of_its_own_environment_host_and_name() {
    let whole = container(
        "shop",
        "sha256:6931693169316931693169316931693169316931693169316931693169316931",
        Some("sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"),
        &[],
    );
    let mut cut = whole.clone();
    cut.name = "shop-2".into();
    cut.cut = vec!["label \"last-applied\" was 70000 bytes, truncated to 65536".into()];
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![whole.clone()]))
        .host("p1", snapshot("production", K, vec![whole.clone(), cut]));
    let f: Vec<Finding> = fleet
        .all()
        .into_iter()
        .filter(|f| f.kind == Kind::ContainerUnreportable)
        .collect();
    assert_eq!(f.len(), 1, "{f:?}");
    let f = &f[0];
    assert_eq!(
        (
            f.service.as_str(),
            f.key.as_str(),
            f.host.as_str(),
            f.a.environment.as_str()
        ),
        ("shop", "shop-2", "p1", "production")
    );
    assert_eq!(f.b, None);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.basis, Basis::AgentCut);
    assert_eq!(
        f.a.values,
        vec!["label \"last-applied\" was 70000 bytes, truncated to 65536"]
    );
    assert!(f.summary.contains("70000 bytes"), "{}", f.summary);
    // The same container reported whole: nothing.
    let fleet = Fleet::new()
        .host("s1", snapshot("staging", K, vec![whole.clone()]))
        .host("p1", snapshot("production", K, vec![whole]));
    assert!(
        fleet
            .all()
            .iter()
            .all(|f| f.kind != Kind::ContainerUnreportable)
    );
}

#[test]
fn runtime_facts_are_compared_between_hosts_of_the_same_runtime() {
    let host = |env: &str, runtime: &str, version: &str, storage: &str| {
        let mut s = snapshot(env, K, vec![]);
        s.engine = Some(envparity_proto::v1::EngineFacts {
            runtime: runtime.into(),
            server_version: version.into(),
            cgroup_version: "2".into(),
            cgroup_driver: "systemd".into(),
            storage_driver: storage.into(),
            ..Default::default()
        });
        s
    };
    let engine_kinds = |f: &[Finding]| -> Vec<(Kind, Vec<String>, Vec<String>)> {
        f.iter()
            .map(|x| (x.kind, x.a.values.clone(), b(x).values.clone()))
            .collect()
    };
    // Staging on Docker, production on containerd: nothing to compare.
    let mixed = Fleet::new()
        .host("s1", host("staging", "docker", "20.10.24", "vfs"))
        .host("p1", host("production", "containerd", "1.6.20", "native"));
    assert_eq!(
        engine_kinds(&mixed.findings("staging", "production")),
        vec![]
    );
    // An agent older than runtimes read Docker: compared with Docker.
    let old = Fleet::new()
        .host("s1", host("staging", "", "20.10.24", "vfs"))
        .host("p1", host("production", "docker", "24.0.7", "vfs"));
    assert_eq!(
        engine_kinds(&old.findings("staging", "production")),
        vec![(
            Kind::EngineVersion,
            vec!["20.10.24".to_owned()],
            vec!["24.0.7".to_owned()]
        )]
    );
    // Both run both: containerd's versions differ, Docker's agree. Only
    // containerd's are named, after the runtime.
    let both = Fleet::new()
        .host("s1", host("staging", "docker", "20.10.24", "vfs"))
        .host("s2", host("staging", "containerd", "1.6.20", "native"))
        .host("p1", host("production", "docker", "20.10.24", "vfs"))
        .host("p2", host("production", "containerd", "1.7.2", "native"));
    assert_eq!(
        engine_kinds(&both.findings("staging", "production")),
        vec![(
            Kind::EngineVersion,
            vec!["containerd 1.6.20".to_owned()],
            vec!["containerd 1.7.2".to_owned()]
        )]
    );
}
