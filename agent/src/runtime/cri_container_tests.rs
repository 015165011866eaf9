//! Unit tests of the CRI mapping ([`super`]), over answers shaped as
//! containerd 1.6 and CRI-O give them (CRI-O cannot run here: its shape,
//! `info` without `config`, is covered only by these tests).

use envparity_cri::runtime_v1::{
    ContainerMetadata, ContainerState, ImageSpec, LinuxPodSandboxStatus, Mount as CriMount,
    Namespace, NamespaceOption, PodSandboxMetadata,
};
use envparity_proto::v1::ServiceSource;

use super::*;

fn key() -> FleetKey {
    FleetKey::from_bytes(*b"0123456789abcdef")
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// A containerd `ContainerStatus(verbose)` `info` (key `info`), trimmed to
/// the keys that matter and with the shape containerd 1.6 gives.
const CONTAINERD_INFO: &str = r#"{
  "sandboxID": "sb1",
  "pid": 4242,
  "removing": false,
  "snapshotKey": "c1",
  "snapshotter": "native",
  "runtimeType": "io.containerd.runc.v2",
  "config": {
    "metadata": {"name": "web"},
    "image": {"image": "127.0.0.1:5000/shop/web:1.0"},
    "args": ["--port", "8080"],
    "envs": [
      {"key": "LOG_LEVEL", "value": "info"},
      {"key": "DB_PASSWORD", "value": "hunter2"},
      {"key": "KUBERNETES_SERVICE_HOST", "value": "10.96.0.1"},
      {"key": "KUBERNETES_PORT", "value": "tcp://10.96.0.1:443"},
      {"key": "KUBERNETES_PORT_443_TCP_ADDR", "value": "10.96.0.1"},
      {"key": "BAKED", "value": "1"}
    ],
    "labels": {"io.kubernetes.container.name": "web"},
    "linux": {"security_context": {
      "capabilities": {"add_capabilities": ["net_admin"]},
      "readonly_rootfs": true,
      "namespace_options": {"network": 2}
    }}
  },
  "runtimeSpec": {"process": {"env": ["PATH=/bin", "BAKED=1", "LOG_LEVEL=info", "HOSTNAME=node1"], "args": ["/bin/web", "--port", "8080"]}}
}"#;

/// An `ImageStatus(verbose)` `info` as containerd gives it.
const IMAGE_INFO: &str = r#"{
  "chainID": "sha256:chain",
  "imageSpec": {
    "created": "2024-01-01T00:00:00Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {
      "Env": ["PATH=/bin", "BAKED=1"],
      "Entrypoint": ["/bin/web"],
      "Cmd": ["--port", "80"],
      "WorkingDir": "/",
      "Labels": {"org.opencontainers.image.version": "1.0", "maintainer": "x"}
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:l1", "sha256:l2"]}
  }
}"#;

/// A containerd 1.6 `PodSandboxStatus(verbose)` `info` (key `info`), recorded
/// from the scratch containerd of the e2e test
/// `a_pods_host_network_and_ports_are_read_from_its_sandbox` (it prints the
/// answer; run it with `--nocapture`), trimmed: the runtime spec, the runtime
/// options and the paths are left out. A port mapping's zero fields (TCP, no
/// node address) are absent, as containerd serialises them.
const SANDBOX_INFO: &str = r#"{"pid":10322,"processStatus":"running","netNamespaceClosed":false,
  "image":"docker.io/envparity/pause:1","snapshotter":"native","runtimeHandler":"",
  "runtimeType":"io.containerd.runc.v2",
  "config":{"metadata":{"name":"web-7f9c","uid":"uid-shop-web-7f9c","namespace":"shop"},
    "port_mappings":[{"container_port":8080,"host_port":18080}],
    "labels":{"app.kubernetes.io/name":"shop","io.kubernetes.pod.name":"web-7f9c",
      "io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"uid-shop-web-7f9c"},
    "linux":{"security_context":{"namespace_options":{"network":2,"pid":1}}}},
  "cniResult":null}"#;

/// A `PodSandboxStatus` whose network namespace is `network`.
fn sandbox_status(network: NamespaceMode) -> PodSandboxStatus {
    PodSandboxStatus {
        id: s("sb1"),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace {
                options: Some(NamespaceOption {
                    network: network as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                }),
            }),
        }),
        ..Default::default()
    }
}

fn facts(network: NamespaceMode, info: Option<&str>) -> SandboxFacts {
    let info: HashMap<String, String> = info.map(|i| (s("info"), s(i))).into_iter().collect();
    SandboxFacts::new(Some(&sandbox_status(network)), &info).unwrap()
}

fn port(container_port: u32, protocol: &str, host_ip: &str, host_port: u32) -> Port {
    Port {
        container_port,
        protocol: s(protocol),
        host_ip: s(host_ip),
        host_port,
    }
}

fn status(id: &str) -> ContainerStatus {
    ContainerStatus {
        id: s(id),
        metadata: Some(ContainerMetadata {
            name: s("web"),
            attempt: 0,
        }),
        state: ContainerState::ContainerRunning as i32,
        started_at: 1_714_557_600_500_000_000,
        image: Some(ImageSpec {
            image: s("127.0.0.1:5000/shop/web:1.0"),
            annotations: HashMap::new(),
        }),
        image_ref: s("127.0.0.1:5000/shop/web@sha256:aa"),
        labels: HashMap::from([
            (s("io.kubernetes.container.name"), s("web")),
            (s("io.kubernetes.pod.namespace"), s("shop")),
            (s("io.kubernetes.pod.name"), s("web-7f9c")),
        ]),
        mounts: vec![CriMount {
            container_path: s("/etc/hosts"),
            host_path: s("/var/lib/x/hosts"),
            readonly: false,
        }],
        ..Default::default()
    }
}

fn sandbox() -> PodSandbox {
    PodSandbox {
        id: s("sb1"),
        metadata: Some(PodSandboxMetadata {
            name: s("web-7f9c"),
            uid: s("uid1"),
            namespace: s("shop"),
            attempt: 0,
        }),
        labels: HashMap::from([
            (s("app.kubernetes.io/name"), s("storefront")),
            (s("pod-template-hash"), s("7f9c")),
        ]),
        ..Default::default()
    }
}

fn image() -> CriImage {
    let image = Image {
        id: s("sha256:img"),
        repo_digests: vec![s("127.0.0.1:5000/shop/web@sha256:aa")],
        ..Default::default()
    };
    CriImage::new(&image, &HashMap::from([(s("info"), s(IMAGE_INFO))])).unwrap()
}

fn map(info: &str) -> Container {
    let info: ContainerInfo = parse_json(info, "test").unwrap();
    container_from_status(
        &status("c1"),
        &info,
        Some(&sandbox()),
        None,
        Some(&image()),
        &key(),
        &ClearEnvPolicy::new(["LOG_LEVEL", "DB_PASSWORD"]),
    )
    .unwrap()
}

fn names(env: &[envparity_proto::v1::EnvVar]) -> Vec<&str> {
    env.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn the_pod_labels_on_the_sandbox_name_the_service() {
    let c = map(CONTAINERD_INFO);
    let service = c.service.unwrap();
    assert_eq!(
        (service.name.as_str(), service.source()),
        ("storefront/web", ServiceSource::Kubernetes)
    );
    assert_eq!(c.name, "shop/web-7f9c/web");
    // The container's own labels only.
    assert!(c.labels.iter().all(|l| l.key.starts_with("io.kubernetes.")));
}

#[test]
fn the_env_the_kubelet_passed_is_split_three_ways() {
    let c = map(CONTAINERD_INFO);
    assert_eq!(names(&c.explicit_env), ["DB_PASSWORD", "LOG_LEVEL"]);
    assert_eq!(names(&c.image_env), ["BAKED", "PATH"]);
    assert_eq!(
        names(&c.injected_env),
        [
            "KUBERNETES_PORT",
            "KUBERNETES_PORT_443_TCP_ADDR",
            "KUBERNETES_SERVICE_HOST"
        ]
    );
    // A secret arriving in clear over the CRI leaves only as a fingerprint,
    // even when allowlisted.
    let secret = &c.explicit_env[0];
    assert_eq!(secret.value, None);
    assert_eq!(
        secret.fingerprint,
        key().fingerprint("DB_PASSWORD", "hunter2")
    );
    assert_eq!(c.explicit_env[1].value.as_deref(), Some("info"));
}

#[test]
fn image_facts_come_from_the_image_status() {
    let c = map(CONTAINERD_INFO);
    let image = c.image.unwrap();
    assert_eq!(image.reference, "127.0.0.1:5000/shop/web:1.0");
    assert_eq!(image.image_id, "sha256:img");
    assert_eq!(image.repo_digests, ["127.0.0.1:5000/shop/web@sha256:aa"]);
    assert_eq!(image.layers, ["sha256:l1", "sha256:l2"]);
    assert_eq!(image.oci_labels.len(), 1);
    assert_eq!(
        (image.os.as_str(), image.architecture.as_str()),
        ("linux", "amd64")
    );
}

#[test]
fn the_run_configuration_is_the_effective_one() {
    let c = map(CONTAINERD_INFO);
    let rt = c.runtime.unwrap();
    // args replace the image's cmd, the image's entrypoint stays.
    assert_eq!(rt.entrypoint, ["/bin/web"]);
    assert_eq!(rt.cmd, ["--port", "8080"]);
    assert_eq!(rt.working_dir, "", "the image's / means none");
    assert_eq!(rt.cap_add, ["CAP_NET_ADMIN"]);
    assert!(rt.read_only_rootfs);
    assert_eq!(rt.mounts.len(), 1);
    let started = c.started_at.unwrap();
    assert_eq!(
        (started.seconds, started.nanos),
        (1_714_557_600, 500_000_000)
    );
}

#[test]
fn without_a_pod_spec_command_the_image_defaults_run() {
    let info = CONTAINERD_INFO.replace(r#""args": ["--port", "8080"],"#, "");
    let rt = map(&info).runtime.unwrap();
    assert_eq!(rt.entrypoint, ["/bin/web"]);
    assert_eq!(rt.cmd, ["--port", "80"]);
}

/// CRI-O's verbose info has no `config`: the merged OCI env is split, and
/// the image's entries and `HOSTNAME` fall out of the explicit env.
#[test]
fn a_cri_o_shaped_info_without_config_uses_the_merged_env() {
    let info = r#"{"sandboxID": "sb1", "pid": 1, "runtimeSpec": {"process": {
        "env": ["PATH=/bin", "BAKED=1", "LOG_LEVEL=info", "HOSTNAME=web-7f9c"],
        "args": ["/bin/web", "--port", "8080"]}}}"#;
    let c = map(info);
    assert_eq!(names(&c.explicit_env), ["LOG_LEVEL"]);
    assert_eq!(names(&c.injected_env), ["HOSTNAME"]);
    assert_eq!(c.runtime.unwrap().cmd, ["/bin/web", "--port", "8080"]);
}

#[test]
fn a_parse_error_never_quotes_the_json() {
    let err =
        parse_json::<ContainerInfo>(r#"{"config": {"envs": "hunter2"}}"#, "container c1 info")
            .unwrap_err()
            .to_string();
    assert!(err.contains("container c1 info"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_sandbox_labelled_service_beats_the_kubernetes_rule() {
    let mut pod = sandbox();
    pod.labels.insert(s("envparity.service"), s("checkout"));
    let info: ContainerInfo = parse_json(CONTAINERD_INFO, "test").unwrap();
    let c = container_from_status(
        &status("c1"),
        &info,
        Some(&pod),
        None,
        None,
        &key(),
        &ClearEnvPolicy::default(),
    )
    .unwrap();
    assert_eq!(c.service.unwrap().name, "checkout");
    // Without the image status, the id is the one the status gave.
    assert_eq!(
        c.image.unwrap().image_id,
        "127.0.0.1:5000/shop/web@sha256:aa"
    );
}

#[test]
fn a_pods_host_network_and_ports_come_from_its_sandbox_status() {
    let pod = facts(NamespaceMode::Node, Some(SANDBOX_INFO));
    let info: ContainerInfo = parse_json(CONTAINERD_INFO, "test").unwrap();
    let c = container_from_status(
        &status("c1"),
        &info,
        Some(&sandbox()),
        Some(&pod),
        Some(&image()),
        &key(),
        &ClearEnvPolicy::default(),
    )
    .unwrap();
    let rt = c.runtime.unwrap();
    assert_eq!(rt.network_mode, "host");
    assert_eq!(rt.ports, [port(8080, "tcp", "", 18080)]);
    // The kubelet restarts containers itself: the CRI has no policy to report.
    assert_eq!(rt.restart_policy, "");
}

#[test]
fn a_pod_on_its_own_network_reports_pod_and_every_mapping_sorted() {
    // As containerd serialises them: a field left out is zero (TCP, not
    // mapped to a node port, any address). Two containers of the pod
    // declaring the same port make one.
    let info = r#"{"config": {"port_mappings": [
        {"protocol": 1, "container_port": 53, "host_port": 5353, "host_ip": "127.0.0.1"},
        {"container_port": 80},
        {"container_port": 80},
        {"protocol": 2, "container_port": 80, "host_port": 8080}]}}"#;
    let pod = facts(NamespaceMode::Pod, Some(info));
    assert_eq!(pod.network_mode, "pod");
    assert_eq!(
        pod.ports,
        [
            port(53, "udp", "127.0.0.1", 5353),
            port(80, "sctp", "", 8080),
            port(80, "tcp", "", 0),
        ]
    );
}

#[test]
fn without_a_sandbox_status_network_and_ports_stay_empty() {
    let rt = map(CONTAINERD_INFO).runtime.unwrap();
    assert_eq!(
        (rt.network_mode.as_str(), rt.ports.len()),
        ("", 0),
        "nothing is guessed"
    );
    // A status without its verbose info: the network, no ports.
    assert_eq!(
        facts(NamespaceMode::Node, None),
        SandboxFacts {
            network_mode: s("host"),
            ports: Vec::new(),
        }
    );
    // No namespaces in the status: no network mode either.
    let bare = SandboxFacts::new(Some(&PodSandboxStatus::default()), &HashMap::new()).unwrap();
    assert_eq!(bare, SandboxFacts::default());
}

#[test]
fn a_sandbox_info_that_does_not_parse_names_the_sandbox_and_quotes_nothing() {
    let info = HashMap::from([(s("info"), s(r#"{"config": {"port_mappings": "hunter2"}}"#))]);
    let err = SandboxFacts::new(Some(&sandbox_status(NamespaceMode::Pod)), &info)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pod sandbox sb1 info"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
