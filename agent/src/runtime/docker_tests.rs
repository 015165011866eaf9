//! Unit tests of the Docker Engine API reading ([`super`]), over an
//! in-memory engine.

use std::sync::Mutex;

use bollard::models::{
    ContainerConfig, ContainerState, ImageConfig, ImageInspectRootFs, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use envparity_proto::v1::ServiceSource;

use super::*;

fn key() -> FleetKey {
    FleetKey::from_bytes(*b"0123456789abcdef")
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn image(id: &str, env: &[&str]) -> ImageInspect {
    ImageInspect {
        id: Some(s(id)),
        repo_digests: Some(vec![s("b/app@sha256:2"), s("a/app@sha256:1")]),
        created: Some(s("2024-01-01T00:00:00Z")),
        os: Some(s("linux")),
        architecture: Some(s("amd64")),
        root_fs: Some(ImageInspectRootFs {
            typ: s("layers"),
            layers: Some(vec![s("sha256:bottom"), s("sha256:top")]),
        }),
        config: Some(ImageConfig {
            env: Some(env.iter().map(|e| s(e)).collect()),
            labels: Some(HashMap::from([
                (s("org.opencontainers.image.version"), s("2.3.0")),
                (s("org.opencontainers.image.revision"), s("abc")),
                (s("maintainer"), s("someone")),
            ])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(id: &str, image_id: &str, env: &[&str]) -> ContainerInspectResponse {
    ContainerInspectResponse {
        id: Some(s(id)),
        name: Some(format!("/{id}-name")),
        image: Some(s(image_id)),
        state: Some(ContainerState {
            running: Some(true),
            started_at: Some(s("2024-05-01T10:00:00.5Z")),
            ..Default::default()
        }),
        config: Some(ContainerConfig {
            image: Some(s("registry/app:2.3.0")),
            env: Some(env.iter().map(|e| s(e)).collect()),
            cmd: Some(vec![s("/bin/sleep"), s("3600")]),
            labels: Some(HashMap::from([(s("z"), s("1")), (s("a"), s("2"))])),
            ..Default::default()
        }),
        host_config: Some(HostConfig {
            network_mode: Some(s("none")),
            cap_add: Some(vec![s("NET_ADMIN"), s("CHOWN")]),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(3),
            }),
            ..Default::default()
        }),
        mounts: Some(vec![
            MountPoint {
                typ: Some(s("volume")),
                destination: Some(s("/z")),
                rw: Some(true),
                ..Default::default()
            },
            MountPoint {
                typ: Some(s("bind")),
                destination: Some(s("/a")),
                rw: Some(false),
                source: Some(s("/host/specific")),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

#[test]
fn maps_an_inspected_container_to_the_contract() {
    let policy = ClearEnvPolicy::new(["FOO"]);
    let c = container("c1", "sha256:img", &["BAKED=1", "FOO=bar"]);
    let img = image("sha256:img", &["BAKED=1"]);
    let out = container_from_inspect(&c, Some(&img), &DOCKER, &key(), &policy).unwrap();

    assert_eq!(out.name, "c1-name", "leading / stripped");
    let service = out.service.unwrap();
    assert_eq!(
        (service.name.as_str(), service.source()),
        ("c1-name", ServiceSource::ContainerName)
    );
    let names =
        |v: &[envparity_proto::v1::EnvVar]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&out.explicit_env), ["FOO"]);
    assert_eq!(out.explicit_env[0].value.as_deref(), Some("bar"));
    assert_eq!(names(&out.image_env), ["BAKED"]);
    assert_eq!(out.image_env[0].value, None, "BAKED is not allowlisted");

    let info = out.image.unwrap();
    assert_eq!(info.reference, "registry/app:2.3.0");
    assert_eq!(info.image_id, "sha256:img");
    assert_eq!(info.repo_digests, ["a/app@sha256:1", "b/app@sha256:2"]);
    let oci: Vec<_> = info.oci_labels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(
        oci,
        [
            "org.opencontainers.image.revision",
            "org.opencontainers.image.version"
        ]
    );
    assert_eq!(
        info.layers,
        ["sha256:bottom", "sha256:top"],
        "bottom first, as given"
    );
    assert_eq!(
        (info.os.as_str(), info.architecture.as_str()),
        ("linux", "amd64")
    );

    let rt = out.runtime.unwrap();
    assert_eq!(rt.cmd, ["/bin/sleep", "3600"]);
    assert_eq!(rt.cap_add, ["CAP_CHOWN", "CAP_NET_ADMIN"]);
    assert_eq!(rt.restart_policy, "on-failure");
    assert_eq!(rt.network_mode, "none");
    let mounts: Vec<_> = rt
        .mounts
        .iter()
        .map(|m| (m.destination.as_str(), m.r#type.as_str(), m.read_only))
        .collect();
    assert_eq!(mounts, [("/a", "bind", true), ("/z", "volume", false)]);

    let labels: Vec<_> = out.labels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(labels, ["a", "z"]);
    let started = out.started_at.unwrap();
    assert_eq!(
        (started.seconds, started.nanos),
        (1_714_557_600, 500_000_000)
    );
}

#[test]
fn capabilities_are_spelled_one_way_and_sorted() {
    let caps = [s("net_raw"), s("CAP_CHOWN"), s("NET_RAW"), s("all")];
    assert_eq!(
        capabilities(Some(&caps)),
        ["ALL", "CAP_CHOWN", "CAP_NET_RAW"]
    );
    assert!(capabilities(None).is_empty());
}

#[test]
fn declared_port_bindings_win_and_unpublished_live_ports_get_zero() {
    let host = HostConfig {
        port_bindings: Some(HashMap::from([(
            s("80/tcp"),
            Some(vec![PortBinding {
                host_ip: Some(s("")),
                host_port: Some(s("8080")),
            }]),
        )])),
        ..Default::default()
    };
    let live = NetworkSettings {
        ports: Some(HashMap::from([
            (
                s("80/tcp"),
                Some(vec![
                    PortBinding {
                        host_ip: Some(s("0.0.0.0")),
                        host_port: Some(s("8080")),
                    },
                    PortBinding {
                        host_ip: Some(s("::")),
                        host_port: Some(s("8080")),
                    },
                ]),
            ),
            (s("53/udp"), None),
        ])),
        ..Default::default()
    };
    let got: Vec<_> = ports(Some(&host), Some(&live))
        .into_iter()
        .map(|p| (p.container_port, p.protocol, p.host_ip, p.host_port))
        .collect();
    assert_eq!(got, [(53, s("udp"), s(""), 0), (80, s("tcp"), s(""), 8080)]);
}

#[test]
fn pause_containers_are_not_reported() {
    let mut c = container("c1", "sha256:img", &[]);
    c.config.as_mut().unwrap().labels = Some(HashMap::from([(
        s("io.kubernetes.container.name"),
        s("POD"),
    )]));
    assert_eq!(
        container_from_inspect(&c, None, &DOCKER, &key(), &ClearEnvPolicy::default()),
        None
    );
}

/// A `docker run` without `--name` or identity labels is reported
/// unmanaged, under its name; a name given by hand, or an
/// `envparity.service` label, is a service as before.
#[test]
fn a_container_with_a_generated_name_and_no_identity_is_unmanaged() {
    let map = |name: &str, labels: &[(&str, &str)]| {
        let mut c = container("c1", "sha256:img", &[]);
        c.name = Some(format!("/{name}"));
        c.config.as_mut().unwrap().labels =
            Some(labels.iter().map(|(k, v)| (s(k), s(v))).collect());
        container_from_inspect(&c, None, &DOCKER, &key(), &ClearEnvPolicy::default()).unwrap()
    };
    let one_off = map("naughty_wilson", &[("maintainer", "x")]);
    assert!(one_off.unmanaged);
    assert_eq!(one_off.service.unwrap().name, "naughty_wilson");
    assert!(!map("web-1", &[]).unmanaged);
    assert!(!map("naughty_wilson", &[("envparity.service", "debug")]).unmanaged);
}

#[test]
fn engine_facts_map_version_and_info() {
    use bollard::models::{SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
    let version = SystemVersion {
        version: Some(s("20.10.24")),
        api_version: Some(s("1.41")),
        ..Default::default()
    };
    let info = SystemInfo {
        driver: Some(s("vfs")),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(SystemInfoCgroupVersionEnum::_2),
        operating_system: Some(s("Debian GNU/Linux 12")),
        os_type: Some(s("linux")),
        architecture: Some(s("x86_64")),
        kernel_version: Some(s("6.1.0")),
        ..Default::default()
    };
    let facts = engine_facts(&version, &info);
    assert_eq!(facts.server_version, "20.10.24");
    assert_eq!(facts.api_version, "1.41");
    assert_eq!(facts.storage_driver, "vfs");
    assert_eq!(facts.cgroup_driver, "cgroupfs");
    assert_eq!(facts.cgroup_version, "2");
    assert_eq!(facts.operating_system, "Debian GNU/Linux 12");
    assert_eq!(facts.os_type, "linux");
    assert_eq!(facts.architecture, "x86_64");
    assert_eq!(facts.kernel_version, "6.1.0");
}

/// An in-memory engine that records which images were inspected.
#[derive(Default)]
struct FakeEngine {
    listed: Vec<&'static str>,
    containers: HashMap<&'static str, ContainerInspectResponse>,
    images: HashMap<&'static str, ImageInspect>,
    fail_inspect: Option<&'static str>,
    image_inspects: Mutex<Vec<String>>,
}

fn server_error() -> HttpError {
    HttpError::Status {
        status: 500,
        message: s("boom"),
    }
}

impl Engine for FakeEngine {
    async fn version(&self) -> Result<SystemVersion, EngineError> {
        Ok(SystemVersion::default())
    }
    async fn info(&self) -> Result<SystemInfo, EngineError> {
        Ok(SystemInfo::default())
    }
    async fn running_container_ids(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.listed.iter().map(|id| s(id)).collect())
    }
    async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, EngineError> {
        if self.fail_inspect == Some(id) {
            return Err(EngineError::new(
                format!("inspect container {id}"),
                server_error(),
            ));
        }
        Ok(self.containers.get(id).cloned())
    }
    async fn inspect_image(&self, id: &str) -> Result<Option<ImageInspect>, EngineError> {
        self.image_inspects.lock().unwrap().push(s(id));
        Ok(self.images.get(id).cloned())
    }
}

fn fake() -> FakeEngine {
    let mut stopped = container("c4", "sha256:a", &[]);
    stopped.state.as_mut().unwrap().running = Some(false);
    FakeEngine {
        // c3 vanishes between list and inspect; c4 stopped meanwhile.
        listed: vec!["c2", "c1", "c3", "c4"],
        containers: HashMap::from([
            ("c1", container("c1", "sha256:a", &["X=1"])),
            ("c2", container("c2", "sha256:a", &["X=1"])),
            ("c4", stopped),
        ]),
        images: HashMap::from([("sha256:a", image("sha256:a", &["X=1"]))]),
        ..Default::default()
    }
}

#[tokio::test]
async fn vanished_and_stopped_containers_are_skipped_and_the_rest_sorted() {
    let engine = fake();
    let got = collect_containers(&engine, &DOCKER, &key(), &ClearEnvPolicy::default())
        .await
        .unwrap();
    let ids: Vec<_> = got.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert!(
        got[0].explicit_env.is_empty(),
        "X=1 is baked into the image"
    );
}

#[tokio::test]
async fn each_distinct_image_is_inspected_once() {
    let engine = fake();
    collect_containers(&engine, &DOCKER, &key(), &ClearEnvPolicy::default())
        .await
        .unwrap();
    assert_eq!(*engine.image_inspects.lock().unwrap(), ["sha256:a"]);
}

#[tokio::test]
async fn a_failed_inspect_fails_the_collection_naming_the_container() {
    let engine = FakeEngine {
        fail_inspect: Some("c2"),
        ..fake()
    };
    let err = collect_containers(&engine, &DOCKER, &key(), &ClearEnvPolicy::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("inspect container c2"), "{err}");
}

fn by_id(containers: Vec<Container>) -> BTreeMap<String, Container> {
    containers.into_iter().map(|c| (c.id.clone(), c)).collect()
}

#[tokio::test]
async fn refreshing_the_named_containers_agrees_with_reading_them_all() {
    let policy = ClearEnvPolicy::default();
    // Before: c1, c2, c3 and c4 run on image a.
    let before = FakeEngine {
        listed: vec!["c1", "c2", "c3", "c4"],
        containers: HashMap::from([
            ("c1", container("c1", "sha256:a", &["X=1"])),
            ("c2", container("c2", "sha256:a", &[])),
            ("c3", container("c3", "sha256:a", &[])),
            ("c4", container("c4", "sha256:a", &[])),
        ]),
        images: HashMap::from([("sha256:a", image("sha256:a", &["X=1"]))]),
        ..Default::default()
    };
    let mut containers = by_id(
        collect_containers(&before, &DOCKER, &key(), &policy)
            .await
            .unwrap(),
    );

    // After: c1 renamed and restarted with another env, c2 paused, c4
    // removed, c5 started on image b, c6 restarting; image a was
    // pushed meanwhile (one more repo digest); c3 untouched.
    let mut renamed = container("c1", "sha256:a", &["X=2"]);
    renamed.name = Some(s("/c1-renamed"));
    let mut paused = container("c2", "sha256:a", &[]);
    paused.state.as_mut().unwrap().paused = Some(true);
    let mut restarting = container("c6", "sha256:b", &[]);
    restarting.state.as_mut().unwrap().restarting = Some(true);
    let mut pushed = image("sha256:a", &["X=1"]);
    pushed
        .repo_digests
        .as_mut()
        .unwrap()
        .push(s("c/app@sha256:3"));
    let after = FakeEngine {
        // What `status=running` lists: neither c2 (paused) nor c6.
        listed: vec!["c1", "c3", "c5"],
        containers: HashMap::from([
            ("c1", renamed),
            ("c2", paused),
            ("c3", container("c3", "sha256:a", &[])),
            ("c5", container("c5", "sha256:b", &["Y=1"])),
            ("c6", restarting),
        ]),
        images: HashMap::from([("sha256:a", pushed), ("sha256:b", image("sha256:b", &[]))]),
        ..Default::default()
    };
    let changes: Changes = [
        ("c1", Change::Inspect),
        ("c2", Change::Inspect),
        ("c4", Change::Remove),
        ("c5", Change::Inspect),
        ("c6", Change::Inspect),
    ]
    .into_iter()
    .collect();
    refresh_containers(&after, &DOCKER, &mut containers, &changes, &key(), &policy)
        .await
        .unwrap();

    let everything = by_id(
        collect_containers(&after, &DOCKER, &key(), &policy)
            .await
            .unwrap(),
    );
    assert_eq!(containers, everything);
    assert_eq!(containers.keys().collect::<Vec<_>>(), ["c1", "c3", "c5"]);
    let digests = |id: &str| containers[id].image.as_ref().unwrap().repo_digests.len();
    assert_eq!(digests("c3"), 3, "c3 shares the image inspected for c1");
}

#[tokio::test]
async fn a_removed_container_is_dropped_without_asking_the_engine() {
    let engine = FakeEngine {
        // Asking about c1 would fail the refresh.
        fail_inspect: Some("c1"),
        ..fake()
    };
    let mut containers = by_id(vec![
        container_from_inspect(
            &container("c1", "sha256:a", &[]),
            None,
            &DOCKER,
            &key(),
            &ClearEnvPolicy::default(),
        )
        .unwrap(),
    ]);
    let changes: Changes = [("c1", Change::Remove)].into_iter().collect();
    refresh_containers(
        &engine,
        &DOCKER,
        &mut containers,
        &changes,
        &key(),
        &ClearEnvPolicy::default(),
    )
    .await
    .unwrap();
    assert!(containers.is_empty());
    assert!(engine.image_inspects.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_refresh_changes_nothing() {
    let policy = ClearEnvPolicy::default();
    let engine = fake();
    let mut containers = by_id(
        collect_containers(&engine, &DOCKER, &key(), &policy)
            .await
            .unwrap(),
    );
    let kept = containers.clone();
    let failing = FakeEngine {
        fail_inspect: Some("c2"),
        ..fake()
    };
    let changes: Changes = [("c1", Change::Remove), ("c2", Change::Inspect)]
        .into_iter()
        .collect();
    let err = refresh_containers(
        &failing,
        &DOCKER,
        &mut containers,
        &changes,
        &key(),
        &policy,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("inspect container c2"), "{err}");
    assert_eq!(containers, kept);
}
