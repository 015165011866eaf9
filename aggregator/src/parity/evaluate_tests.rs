use super::*;
use envparity_proto::v1::{EnvVar, HostFacts, ImageInfo, ServiceIdentity};
use proptest::prelude::*;

/// A container of `service` running `image_id` with an optional registry
/// digest and explicit env `(name, fingerprint)`.
fn container(
    service: &str,
    image_id: &str,
    digest: Option<&str>,
    env: &[(&str, &str)],
) -> Container {
    Container {
        id: format!("{service}-{image_id}"),
        name: service.into(),
        service: Some(ServiceIdentity {
            name: service.into(),
            source: 1,
        }),
        image: Some(ImageInfo {
            reference: format!("reg/{service}:1"),
            image_id: image_id.into(),
            repo_digests: digest
                .map(|d| format!("reg/{service}@{d}"))
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        explicit_env: env
            .iter()
            .map(|(n, fp)| EnvVar {
                name: n.to_string(),
                fingerprint: fp.to_string(),
                value: None,
            })
            .collect(),
        ..Default::default()
    }
}

fn snapshot(env: &str, kernel: &str, containers: Vec<Container>) -> HostSnapshot {
    HostSnapshot {
        environment: env.into(),
        host: Some(HostFacts {
            kernel_version: kernel.into(),
            ..Default::default()
        }),
        containers,
        fingerprint_key_id: "k1".into(),
        ..Default::default()
    }
}

struct Fleet(Vec<(String, HostSnapshot, bool)>);

impl Fleet {
    fn new() -> Self {
        Fleet(Vec::new())
    }
    fn host(mut self, id: &str, snap: HostSnapshot) -> Self {
        self.0.push((id.into(), snap, true));
        self
    }
    fn stale_host(mut self, id: &str, snap: HostSnapshot) -> Self {
        self.0.push((id.into(), snap, false));
        self
    }
    fn views(&self) -> Vec<HostView<'_>> {
        self.0
            .iter()
            .map(|(id, s, current)| HostView {
                host_id: id,
                environment: &s.environment,
                current: *current,
                snapshot: s,
            })
            .collect()
    }
    fn findings(&self, a: &str, b: &str) -> Vec<Finding> {
        evaluate(&self.views(), &Scope::pair(a, b))
    }
}

const K: &str = "6.1.0-18-amd64";

#[test]
fn identical_environments_have_parity() {
    let c = || container("shop", "sha256:img1", Some("sha256:d1"), &[("A", "fa")]);
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
                vec![container("shop", "sha256:i1", Some("sha256:d1"), &[])],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container("shop", "sha256:i2", Some("sha256:d2"), &[])],
            ),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind, Kind::ImageDigest);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].basis, Basis::RegistryDigest);
    assert_eq!(f[0].service, "shop");
    assert_eq!(f[0].a.values, vec!["sha256:d1"]);
    assert_eq!(f[0].b.values, vec!["sha256:d2"]);
    assert_eq!(f[0].a.hosts, vec!["s1"]);
    assert_eq!(f[0].b.hosts, vec!["p1"]);
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
                vec![container("shop", "sha256:arm", Some("sha256:idx"), &[])],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container("shop", "sha256:amd", Some("sha256:idx"), &[])],
            ),
        );
    assert_eq!(fleet.findings("staging", "production"), vec![]);
}

#[test]
fn without_a_registry_digest_on_one_side_image_ids_are_compared() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container("shop", "sha256:i1", Some("sha256:d1"), &[])],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container("shop", "sha256:i2", None, &[])],
            ),
        );
    let f = fleet.findings("staging", "production");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].basis, Basis::ImageId);
    assert_eq!(f[0].a.values, vec!["sha256:i1"]);
    assert_eq!(f[0].b.values, vec!["sha256:i2"]);

    let same = Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                K,
                vec![container("shop", "sha256:i1", Some("sha256:d1"), &[])],
            ),
        )
        .host(
            "p1",
            snapshot(
                "production",
                K,
                vec![container("shop", "sha256:i1", None, &[])],
            ),
        );
    assert_eq!(same.findings("staging", "production"), vec![]);
}

#[test]
fn image_baked_env_is_never_configuration_drift() {
    let mut a = container("shop", "sha256:i1", None, &[]);
    let mut b = container("shop", "sha256:i1", None, &[]);
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
        .host("d1", snapshot("dev", K, vec![c("sha256:1")]))
        .host("s1", snapshot("staging", K, vec![c("sha256:2")]))
        .host("p1", snapshot("production", K, vec![c("sha256:2")]))
        .host("b1", snapshot("blue", K, vec![c("sha256:3")]));
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
    assert_eq!(f[0].b.values, vec!["5.10.0-28-amd64"]);

    let patch = Fleet::new()
        .host("s1", snapshot("staging", "6.1.0-18-amd64", vec![]))
        .host("p1", snapshot("production", "6.1.0-20-amd64", vec![]));
    assert_eq!(
        patch.findings("staging", "production")[0].severity,
        Severity::Info
    );
    assert_eq!(major_minor("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(major_minor("garbage"), None);
}

#[test]
fn services_absent_on_one_side_are_not_compared_in_v1() {
    let fleet = Fleet::new()
        .host(
            "s1",
            snapshot("staging", K, vec![container("shop", "i1", None, &[])]),
        )
        .host(
            "p1",
            snapshot("production", K, vec![container("cart", "i2", None, &[])]),
        );
    assert_eq!(fleet.findings("staging", "production"), vec![]);
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
    assert_eq!(f[0].a.stale_hosts, Vec::<String>::new());
    assert_eq!(f[0].b.stale_hosts, vec!["p1"]);
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
    let f = evaluate(&fleet.views(), &scope);
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
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].b.values, vec!["i1", "i2"]);
    assert_eq!(f[0].b.hosts, vec!["p1", "p2"]);
}

#[test]
fn all_pairs_follow_promotion_order() {
    let scope = Scope::all_pairs(&["production".into(), "dev".into(), "staging".into()]);
    assert_eq!(
        scope.pairs,
        vec![
            ("dev".to_string(), "staging".to_string()),
            ("dev".to_string(), "production".to_string()),
            ("staging".to_string(), "production".to_string()),
        ]
    );
}

// ---- properties ----

fn arb_container() -> impl Strategy<Value = Container> {
    (
        prop::sample::select(vec!["shop", "cart", "auth"]),
        prop::sample::select(vec!["sha256:i1", "sha256:i2"]),
        prop::option::of(prop::sample::select(vec!["sha256:d1", "sha256:d2"])),
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

proptest! {
    #[test]
    fn an_environment_copied_verbatim_has_parity(hosts in arb_env_hosts()) {
        let mut fleet = Fleet::new();
        for (i, (kernel, cs)) in hosts.iter().enumerate() {
            fleet = fleet
                .host(&format!("s{i}"), snapshot("staging", kernel, cs.clone()))
                .host(&format!("p{i}"), snapshot("production", kernel, cs.clone()));
        }
        prop_assert_eq!(fleet.findings("staging", "production"), vec![]);
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
            (kind, f.service.clone(), f.key.clone(), f.b.clone(), f.a.clone(), f.severity, f.basis)
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
