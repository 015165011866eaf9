//! Unit tests of the CRI mapping ([`super`]), over answers shaped as
//! containerd 1.6 and CRI-O give them (CRI-O cannot run here: its shape,
//! `info` without `config`, is covered only by these tests).

use envparity_cri::runtime_v1::{
    ContainerMetadata, ContainerState, ImageSpec, Mount as CriMount, PodSandboxMetadata,
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
