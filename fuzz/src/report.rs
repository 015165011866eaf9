//! Reports: a small realistic fleet to compare against, and structured
//! reports built from fuzz input whose strings are often hostile.

use arbitrary::Arbitrary;
use envparity_proto::fixtures;
use envparity_proto::v1::{
    AgentInfo, Container, EngineFacts, EngineState, EnvVar, HeartbeatRequest, HostFacts,
    HostSnapshot, ImageInfo, Label, Mount, Port, RuntimeConfig, ServiceIdentity,
};
use prost_types::Timestamp;

use crate::text::Text;

/// Realistic values per field, shared by the baseline fleet and generated
/// reports so that generated reports meet the baseline in every comparison.
pub mod dict {
    /// Host ids.
    pub const HOSTS: &[&str] = &["dev-1", "staging-1", "production-1", "production-2"];
    /// Environments.
    pub const ENVIRONMENTS: &[&str] = &["dev", "staging", "production", "qa", "prod"];
    /// Services.
    pub const SERVICES: &[&str] = &["shop", "checkout", "db"];
    /// Env names.
    pub const ENV_NAMES: &[&str] = &["LOG_LEVEL", "DB_PASSWORD", "FEATURE_NEW_CART", "PATH"];
    /// Clear env values.
    pub const ENV_VALUES: &[&str] = &["debug", "info", "warn", "/usr/bin"];
    /// Fingerprints (lower hex of HMAC-SHA256).
    pub const FINGERPRINTS: &[&str] = &[
        "1111111111111111111111111111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222222222222222222222222222",
        "3333333333333333333333333333333333333333333333333333333333333333",
    ];
    /// Image references.
    pub const REFERENCES: &[&str] = &[
        "registry:5000/shop:1.4.0",
        "registry:5000/checkout:2.0.0",
        "registry:5000/shop@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "postgres:16",
    ];
    /// Repo digests (`repo@sha256:…`).
    pub const REPO_DIGESTS: &[&str] = &[
        "registry:5000/shop@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "registry:5000/shop@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "registry:5000/checkout@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
        "postgres@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
    ];
    /// Image ids and layers.
    pub const IMAGE_IDS: &[&str] = &[
        "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "sha256:2222222222222222222222222222222222222222222222222222222222222222",
        "sha256:3333333333333333333333333333333333333333333333333333333333333333",
    ];
    /// OCI label keys.
    pub const LABEL_KEYS: &[&str] = &[
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.base.digest",
        "region",
    ];
    /// Label values.
    pub const LABEL_VALUES: &[&str] = &["1.4.0", "2.0.0", "eu-west", "abc123"];
    /// Host and engine facts.
    pub const FACTS: &[&str] = &[
        "6.1.0-18-amd64",
        "debian",
        "12",
        "amd64",
        "arm64",
        "overlay2",
        "systemd",
        "2",
        "24.0.7",
    ];
    /// Container and host ids.
    pub const IDS: &[&str] = &["c1", "c2", "c3", "4f1c"];
    /// Agent boot ids.
    pub const BOOT_IDS: &[&str] = &["boot-a", "boot-b"];
}

/// A valid content hash (the aggregator only checks its form).
pub const CONTENT_HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn container(
    name: &str,
    service: &str,
    reference: &str,
    digest: &str,
    env: &[(&str, &str, Option<&str>)],
) -> Container {
    let c = fixtures::container(service)
        .id(format!("id-{name}"))
        .name(name)
        .image(reference)
        .image_id(dict::IMAGE_IDS[0])
        .repo_digest(digest)
        .image_label(dict::LABEL_KEYS[0], "1.4.0")
        .created("2026-01-01T00:00:00Z")
        .layers(dict::IMAGE_IDS[1..].iter().copied())
        .platform("linux", "amd64");
    env.iter()
        .fold(c, |c, (name, fp, value)| match value {
            Some(value) => c.clear_env(*name, *fp, *value),
            None => c.env(*name, *fp),
        })
        .image_env("PATH", dict::FINGERPRINTS[0], Some("/usr/bin"))
        .runtime(RuntimeConfig {
            cmd: vec!["serve".to_owned()],
            user: "app".to_owned(),
            restart_policy: "always".to_owned(),
            network_mode: "bridge".to_owned(),
            ..Default::default()
        })
        .started_at(1_700_000_000)
        .build()
}

/// A host of the baseline fleet.
pub fn host(host_id: &str, environment: &str, containers: Vec<Container>) -> HostSnapshot {
    let mut s = fixtures::snapshot(host_id, environment)
        .label("region", "eu-west")
        .agent_version("0.1.0")
        .boot_id(dict::BOOT_IDS[0])
        .host_facts(HostFacts {
            kernel_version: "6.1.0-18-amd64".to_owned(),
            os_id: "debian".to_owned(),
            os_name: "Debian GNU/Linux".to_owned(),
            os_version: "12".to_owned(),
            architecture: "amd64".to_owned(),
            hostname: host_id.to_owned(),
        })
        .engine(EngineFacts {
            server_version: "24.0.7".to_owned(),
            api_version: "1.43".to_owned(),
            storage_driver: "overlay2".to_owned(),
            cgroup_driver: "systemd".to_owned(),
            cgroup_version: "2".to_owned(),
            operating_system: "Debian GNU/Linux 12".to_owned(),
            os_type: "linux".to_owned(),
            architecture: "x86_64".to_owned(),
            kernel_version: "6.1.0-18-amd64".to_owned(),
            runtime: "docker".to_owned(),
        })
        .engine_state(EngineState::Ok)
        .containers(containers)
        .fingerprint_key("k1")
        .build();
    // The committed seeds (examples/seeds.rs) carry this hash: keep it.
    s.content_hash = CONTENT_HASH.to_owned();
    s.collected_at = Some(Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    });
    s
}

/// Three environments running `shop` and `checkout`, with the drift the demo
/// shows: a different digest, a different clear value, an extra key.
pub fn baseline() -> Vec<HostSnapshot> {
    let [fp1, fp2, fp3] = [
        dict::FINGERPRINTS[0],
        dict::FINGERPRINTS[1],
        dict::FINGERPRINTS[2],
    ];
    let shop = |digest: &str, level: &'static str, fp: &'static str, extra: bool| {
        let mut env = vec![("LOG_LEVEL", fp, Some(level)), ("DB_PASSWORD", fp3, None)];
        if extra {
            env.push(("FEATURE_NEW_CART", fp1, None));
        }
        container("shop", "shop", dict::REFERENCES[0], digest, &env)
    };
    let checkout = |digest: &str| {
        container(
            "checkout",
            "checkout",
            dict::REFERENCES[1],
            digest,
            &[("DB_PASSWORD", fp3, None)],
        )
    };
    vec![
        host(
            "dev-1",
            "dev",
            vec![
                shop(dict::REPO_DIGESTS[1], "debug", fp1, false),
                checkout(dict::REPO_DIGESTS[2]),
            ],
        ),
        host(
            "staging-1",
            "staging",
            vec![
                shop(dict::REPO_DIGESTS[0], "info", fp2, false),
                checkout(dict::REPO_DIGESTS[2]),
            ],
        ),
        host(
            "production-1",
            "production",
            vec![
                shop(dict::REPO_DIGESTS[0], "warn", fp1, true),
                checkout(dict::REPO_DIGESTS[3]),
            ],
        ),
    ]
}

/// A timestamp: usually plausible, sometimes out of every range.
#[derive(Debug, Clone, Arbitrary)]
pub enum Time {
    /// Around now.
    Recent(u32),
    /// Anything, including negative, year 10000 and beyond, bad nanos.
    Any(i64, i32),
}

impl Time {
    /// The timestamp.
    pub fn resolve(&self) -> Timestamp {
        match self {
            Time::Recent(s) => Timestamp {
                seconds: 1_700_000_000 + i64::from(*s),
                nanos: 0,
            },
            Time::Any(seconds, nanos) => Timestamp {
                seconds: *seconds,
                nanos: *nanos,
            },
        }
    }
}

/// A generated label.
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzLabel {
    key: Text,
    value: Text,
}

impl FuzzLabel {
    fn resolve(&self) -> Label {
        Label {
            key: self.key.resolve(dict::LABEL_KEYS),
            value: self.value.resolve(dict::LABEL_VALUES),
        }
    }
}

/// A generated env entry.
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzEnv {
    name: Text,
    fingerprint: Text,
    value: Option<Text>,
}

impl FuzzEnv {
    fn resolve(&self) -> EnvVar {
        EnvVar {
            name: self.name.resolve(dict::ENV_NAMES),
            fingerprint: self.fingerprint.resolve(dict::FINGERPRINTS),
            value: self.value.as_ref().map(|v| v.resolve(dict::ENV_VALUES)),
        }
    }
}

/// A generated container.
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzContainer {
    id: Text,
    name: Text,
    service: Option<(Text, i32)>,
    reference: Text,
    image_id: Text,
    repo_digests: Vec<Text>,
    oci_labels: Vec<FuzzLabel>,
    created: Text,
    layers: Vec<Text>,
    architecture: Text,
    no_image: bool,
    explicit_env: Vec<FuzzEnv>,
    image_env: Vec<FuzzEnv>,
    runtime: Option<FuzzRuntime>,
    labels: Vec<FuzzLabel>,
    started_at: Option<Time>,
    unmanaged: bool,
}

/// Generated runtime settings.
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzRuntime {
    cmd: Vec<Text>,
    user: Text,
    mounts: Vec<(Text, Text, bool)>,
    ports: Vec<(u32, Text, Text, u32)>,
    privileged: bool,
    cap_add: Vec<Text>,
    network_mode: Text,
}

impl FuzzRuntime {
    fn resolve(&self) -> RuntimeConfig {
        let any = |t: &Text| t.resolve(dict::FACTS);
        RuntimeConfig {
            cmd: self.cmd.iter().map(any).collect(),
            entrypoint: vec![],
            user: any(&self.user),
            working_dir: String::new(),
            mounts: self
                .mounts
                .iter()
                .map(|(kind, dest, ro)| Mount {
                    r#type: any(kind),
                    destination: any(dest),
                    read_only: *ro,
                })
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|(cp, proto, ip, hp)| Port {
                    container_port: *cp,
                    protocol: any(proto),
                    host_ip: any(ip),
                    host_port: *hp,
                })
                .collect(),
            restart_policy: "always".to_owned(),
            privileged: self.privileged,
            cap_add: self.cap_add.iter().map(any).collect(),
            cap_drop: vec![],
            read_only_rootfs: false,
            network_mode: any(&self.network_mode),
        }
    }
}

impl FuzzContainer {
    /// The container. Built field by field, not with the fixtures: it is
    /// hostile input, and may lack what they always set.
    pub fn resolve(&self) -> Container {
        Container {
            cut: Vec::new(),
            unmanaged: self.unmanaged,
            id: self.id.resolve(dict::IDS),
            name: self.name.resolve(dict::SERVICES),
            service: self.service.as_ref().map(|(name, source)| ServiceIdentity {
                name: name.resolve(dict::SERVICES),
                source: *source,
            }),
            image: (!self.no_image).then(|| ImageInfo {
                reference: self.reference.resolve(dict::REFERENCES),
                image_id: self.image_id.resolve(dict::IMAGE_IDS),
                repo_digests: self
                    .repo_digests
                    .iter()
                    .map(|d| d.resolve(dict::REPO_DIGESTS))
                    .collect(),
                oci_labels: self.oci_labels.iter().map(FuzzLabel::resolve).collect(),
                created: self.created.resolve(&["2026-01-01T00:00:00Z"]),
                layers: self
                    .layers
                    .iter()
                    .map(|l| l.resolve(dict::IMAGE_IDS))
                    .collect(),
                os: "linux".to_owned(),
                architecture: self.architecture.resolve(dict::FACTS),
            }),
            explicit_env: self.explicit_env.iter().map(FuzzEnv::resolve).collect(),
            image_env: self.image_env.iter().map(FuzzEnv::resolve).collect(),
            // Never read by the aggregator (never compared); hostile bytes
            // in it only travel with the snapshot.
            injected_env: Vec::new(),
            runtime: self.runtime.as_ref().map(FuzzRuntime::resolve),
            labels: self.labels.iter().map(FuzzLabel::resolve).collect(),
            started_at: self.started_at.as_ref().map(Time::resolve),
        }
    }
}

/// A generated host report.
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzReport {
    host_id: Text,
    environment: Text,
    labels: Vec<FuzzLabel>,
    agent: Option<(Text, Text)>,
    sequence: u64,
    collected_at: Option<Time>,
    facts: Vec<Text>,
    engine_state: i32,
    containers: Vec<FuzzContainer>,
    /// A valid content hash unless this says otherwise.
    content_hash: Option<Text>,
    fingerprint_key_id: Text,
}

impl FuzzReport {
    /// The snapshot it describes. Built field by field, not with the
    /// fixtures: it is hostile input, and may lack what they always set.
    pub fn resolve(&self) -> HostSnapshot {
        let fact = |i: usize| {
            self.facts.get(i).map_or_else(
                || dict::FACTS[i % dict::FACTS.len()].to_owned(),
                |t| t.resolve(dict::FACTS),
            )
        };
        HostSnapshot {
            // Config files are not generated yet (issue 20): the aggregator
            // does not read them beyond validation.
            config_files: Vec::new(),
            containers_dropped: 0,
            host_id: self.host_id.resolve(dict::HOSTS),
            environment: self.environment.resolve(dict::ENVIRONMENTS),
            labels: self.labels.iter().map(FuzzLabel::resolve).collect(),
            agent: self.agent.as_ref().map(|(version, boot)| AgentInfo {
                version: version.resolve(&["0.1.0"]),
                boot_id: boot.resolve(dict::BOOT_IDS),
            }),
            sequence: self.sequence,
            collected_at: self.collected_at.as_ref().map(Time::resolve),
            host: Some(HostFacts {
                kernel_version: fact(0),
                os_id: fact(1),
                os_name: fact(2),
                os_version: fact(3),
                architecture: fact(4),
                hostname: fact(5),
            }),
            engine: Some(EngineFacts {
                server_version: fact(6),
                api_version: fact(7),
                storage_driver: fact(8),
                cgroup_driver: fact(9),
                cgroup_version: fact(10),
                operating_system: fact(11),
                os_type: fact(12),
                architecture: fact(13),
                kernel_version: fact(14),
                runtime: String::new(),
            }),
            engine_state: self.engine_state,
            containers: self.containers.iter().map(FuzzContainer::resolve).collect(),
            content_hash: self
                .content_hash
                .as_ref()
                .map_or_else(|| CONTENT_HASH.to_owned(), |t| t.resolve(&[CONTENT_HASH])),
            fingerprint_key_id: self.fingerprint_key_id.resolve(&["k1", "k2"]),
        }
    }
}

/// The heartbeat an agent sends for `s` while nothing changed.
pub fn heartbeat_for(s: &HostSnapshot) -> HeartbeatRequest {
    HeartbeatRequest {
        host_id: s.host_id.clone(),
        environment: s.environment.clone(),
        content_hash: s.content_hash.clone(),
        boot_id: s
            .agent
            .as_ref()
            .map(|a| a.boot_id.clone())
            .unwrap_or_default(),
        sequence: s.sequence,
        sent_at: s.collected_at,
        engine_state: s.engine_state,
    }
}
