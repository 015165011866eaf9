//! A synthetic fleet for load tests and benchmarks: deterministic host
//! snapshots of a configurable size, with a realistic share of drift, that
//! change one container at a time ("churn").
//!
//! Shared by `envparity-loadgen` (over the real gRPC API) and the parity
//! engine's criterion benchmarks (in memory), so both measure the same fleet.
//!
//! The shape of the fleet:
//! - host `i` is in environment `i % E` (default `dev`, `staging`,
//!   `production`);
//! - hosts of one environment are cut into *pools* of [`Shape::replicas`]
//!   hosts; every host of a pool runs the same [`Shape::containers`]
//!   services, and pool `p` of every environment runs the same services, so
//!   each service has `replicas` replicas per environment and the number of
//!   services grows with the fleet (as it does in real fleets);
//! - baked-in drift, so that the engine has findings to track: every tenth
//!   service runs a newer image in the first environment (it runs ahead), and
//!   every twentieth has a different clear `CLEAR_00` value in the last one
//!   (which pins images by digest; the others run tags);
//! - churn: each churn step of a host flips its first container between its
//!   normal image and a canary (another image, one env value changed), which
//!   opens findings (image digest, replica drift, env value) and, one step
//!   later, resolves them. A host's content therefore has two variants, which
//!   a load generator can build once and send with ever new sequences.
//!
//! Nothing is random: a host's snapshot is a function of its index and its
//! churn count, so a run can be repeated exactly.

use envparity_proto::fixtures;
use envparity_proto::v1::{
    Container, EngineFacts, EngineState, HeartbeatRequest, HostFacts, HostSnapshot, Port,
    RuntimeConfig,
};

/// The size and make-up of a synthetic fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Number of hosts.
    pub hosts: usize,
    /// Running containers per host (each of another service).
    pub containers: usize,
    /// The environments, in promotion order; hosts are spread evenly.
    pub environments: Vec<String>,
    /// Replicas of each service per environment (the size of a pool).
    pub replicas: usize,
    /// Explicit env variables per container.
    pub env_vars: usize,
    /// How many of them are sent in clear (the rest as fingerprints).
    pub clear_env: usize,
    /// Length of each clear env value, in bytes.
    pub env_value_bytes: usize,
    /// Labels per container (besides `envparity.service`).
    pub labels: usize,
    /// Length of each label value, in bytes.
    pub label_bytes: usize,
    /// The agent boot id every host reports under (a new one makes the
    /// aggregator accept sequences from 1 again).
    pub boot_id: String,
}

impl Default for Shape {
    /// 100 hosts × 50 containers in dev/staging/production, 10 replicas per
    /// service and environment, 10 env variables (2 in clear, 16 bytes) and
    /// 5 labels of 32 bytes per container: about 65 KiB per snapshot.
    fn default() -> Self {
        Shape {
            hosts: 100,
            containers: 50,
            environments: ["dev", "staging", "production"].map(str::to_owned).to_vec(),
            replicas: 10,
            env_vars: 10,
            clear_env: 2,
            env_value_bytes: 16,
            labels: 5,
            label_bytes: 32,
            boot_id: "boot-synthetic".to_owned(),
        }
    }
}

/// A 64-hex-digit digest of `parts`: deterministic and distinct enough
/// (SplitMix64), not cryptographic; only its shape matters.
fn hex64(parts: &[u64]) -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for p in parts {
        state ^= p.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        state = mix(state);
    }
    let mut out = String::with_capacity(64);
    for i in 0..4u64 {
        out.push_str(&format!("{:016x}", mix(state ^ i)));
    }
    out
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `len` bytes of printable filler derived from `seed`.
fn filler(seed: u64, len: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut z = seed;
    (0..len)
        .map(|_| {
            z = mix(z);
            char::from(alphabet[(z % alphabet.len() as u64) as usize])
        })
        .collect()
}

impl Shape {
    /// The id of host `i`.
    pub fn host_id(&self, i: usize) -> String {
        format!("host-{i:05}")
    }

    /// Every host id, in index order.
    pub fn host_ids(&self) -> Vec<String> {
        (0..self.hosts).map(|i| self.host_id(i)).collect()
    }

    /// The environment of host `i`.
    pub fn environment(&self, i: usize) -> &str {
        &self.environments[i % self.environments.len()]
    }

    fn pools(&self) -> usize {
        let per_env = self.hosts.div_ceil(self.environments.len()).max(1);
        per_env.div_ceil(self.replicas.max(1))
    }

    /// The service indices host `i` runs.
    fn services_of(&self, i: usize) -> impl Iterator<Item = usize> {
        let pool = (i / self.environments.len()) / self.replicas.max(1);
        let first = pool * self.containers;
        first..first + self.containers
    }

    /// The number of distinct services in the fleet.
    pub fn services(&self) -> usize {
        self.pools() * self.containers
    }

    /// The snapshot of host `i` after `churn` churn steps, with a correct
    /// content hash; its sequence is `churn + 1`.
    pub fn snapshot(&self, i: usize, churn: u64) -> HostSnapshot {
        let env_index = i % self.environments.len();
        // Odd churn counts run the first container as a canary.
        let canary = churn % 2 == 1;
        let mut containers: Vec<Container> = self
            .services_of(i)
            .enumerate()
            .map(|(k, service)| self.container(i, env_index, service, canary && k == 0))
            .collect();
        // Sorted by id, as agents send them (a delta relies on it).
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        let host_id = self.host_id(i);
        let kernel = "6.1.0-18-amd64".to_owned();
        fixtures::snapshot(&host_id, &self.environments[env_index])
            .label("rack", format!("r{}", i % 40))
            .label("region", "eu-west-1")
            .agent_version("synthetic")
            .boot_id(&self.boot_id)
            .sequence(churn + 1)
            .host_facts(HostFacts {
                kernel_version: kernel.clone(),
                os_id: "debian".to_owned(),
                os_name: "Debian GNU/Linux".to_owned(),
                os_version: "12".to_owned(),
                architecture: "x86_64".to_owned(),
                hostname: host_id.clone(),
            })
            .engine(EngineFacts {
                server_version: "20.10.24+dfsg1".to_owned(),
                api_version: "1.41".to_owned(),
                storage_driver: "overlay2".to_owned(),
                cgroup_driver: "systemd".to_owned(),
                cgroup_version: "2".to_owned(),
                operating_system: "Debian GNU/Linux 12 (bookworm)".to_owned(),
                os_type: "linux".to_owned(),
                architecture: "x86_64".to_owned(),
                kernel_version: kernel,
                // As an agent older than runtimes says it (Docker): the
                // snapshots stay byte-identical to those the benchmarks
                // were measured with (pinned below).
                runtime: String::new(),
            })
            .engine_state(EngineState::Ok)
            .containers(containers)
            .fingerprint_key("k-synthetic")
            .build()
    }

    /// The heartbeat of host `i` vouching for `content_hash`.
    pub fn heartbeat(&self, i: usize, content_hash: &str, sequence: u64) -> HeartbeatRequest {
        HeartbeatRequest {
            host_id: self.host_id(i),
            environment: self.environment(i).to_owned(),
            content_hash: content_hash.to_owned(),
            boot_id: self.boot_id.clone(),
            sequence,
            sent_at: None,
            engine_state: EngineState::Ok as i32,
        }
    }

    fn container(&self, host: usize, env_index: usize, service: usize, canary: bool) -> Container {
        let name = format!("svc-{service:05}");
        let ahead = env_index == 0 && service.is_multiple_of(10);
        let version: u64 = match (canary, ahead) {
            (true, _) => 3,
            (false, true) => 2,
            (false, false) => 1,
        };
        let s = service as u64;
        let repo = format!("registry.example:5000/{name}");
        let last_env = env_index + 1 == self.environments.len();
        let base = fixtures::container(&name)
            .id(hex64(&[host as u64, s, version, 3]))
            .name(format!("{name}-1"))
            // The last environment pins by digest, as the default policy
            // asks; the others run tags.
            .image(if last_env {
                format!("{repo}@sha256:{}", hex64(&[s, version, 5]))
            } else {
                format!("{repo}:{version}.0.0")
            })
            .image_id(format!("sha256:{}", hex64(&[s, version, 4])))
            .repo_digest(format!("{repo}@sha256:{}", hex64(&[s, version, 5])))
            .image_label("org.opencontainers.image.version", format!("{version}.0.0"))
            .created("2026-01-01T00:00:00Z")
            .layers((0..3u64).map(|l| format!("sha256:{}", hex64(&[s, version, l, 6]))))
            .platform("linux", "amd64")
            .image_env("PATH", hex64(&[7]), None);
        let with_env = (0..self.env_vars).fold(base, |c, j| {
            let j64 = j as u64;
            if j < self.clear_env {
                let mut value = filler(s ^ (j64 << 32), self.env_value_bytes);
                if j == 0 && last_env && service % 20 == 1 {
                    value = filler(s ^ 0xdead, self.env_value_bytes);
                }
                let fingerprint = hex64(&[s, j64, value.len() as u64, 1]);
                c.clear_env(format!("CLEAR_{j:02}"), fingerprint, value)
            } else {
                // The first fingerprinted variable changes in a canary.
                let changed = u64::from(canary && j == self.clear_env);
                c.env(format!("VAR_{j:02}"), hex64(&[s, j64, changed, 2]))
            }
        });
        let labelled = (0..self.labels).fold(with_env, |c, j| {
            let value = filler(s ^ ((j as u64) << 40), self.label_bytes);
            c.label(format!("com.example.label-{j:02}"), value)
        });
        labelled
            .label("envparity.service", name)
            .runtime(RuntimeConfig {
                cmd: vec!["/app/server".to_owned(), "--port=8080".to_owned()],
                entrypoint: Vec::new(),
                user: "app".to_owned(),
                working_dir: "/app".to_owned(),
                mounts: Vec::new(),
                ports: vec![Port {
                    container_port: 8080,
                    protocol: "tcp".to_owned(),
                    host_ip: String::new(),
                    host_port: 0,
                }],
                restart_policy: "unless-stopped".to_owned(),
                privileged: false,
                cap_add: Vec::new(),
                cap_drop: Vec::new(),
                read_only_rootfs: false,
                network_mode: "bridge".to_owned(),
            })
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_service_has_its_replicas_in_every_environment() {
        let shape = Shape {
            hosts: 90,
            ..Shape::default()
        };
        assert_eq!(shape.services(), 3 * 50);
        let mut per: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for i in 0..shape.hosts {
            let s = shape.snapshot(i, 0);
            for c in &s.containers {
                let svc = c
                    .service
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                *per.entry((svc, s.environment.clone())).or_default() += 1;
            }
        }
        assert_eq!(per.len(), 150 * 3);
        assert!(per.values().all(|&n| n == 10), "{per:?}");
    }

    #[test]
    fn churn_flips_one_container_and_back() {
        let shape = Shape::default();
        let (a, b, c) = (
            shape.snapshot(4, 0),
            shape.snapshot(4, 1),
            shape.snapshot(4, 2),
        );
        assert_ne!(a.content_hash, b.content_hash);
        assert_eq!(a.content_hash, c.content_hash);
        assert_eq!((a.sequence, b.sequence, c.sequence), (1, 2, 3));
        // One container is replaced (a canary has its own id): one of `b`
        // is not in `a`, and one of `a` is not in `b`.
        let new_in = |x: &HostSnapshot, y: &HostSnapshot| {
            x.containers
                .iter()
                .filter(|c| !y.containers.contains(c))
                .count()
        };
        assert_eq!((new_in(&b, &a), new_in(&a, &b)), (1, 1));
        assert_eq!(a.containers.len(), b.containers.len());
        // Sorted by id, as agents send them.
        assert!(b.containers.is_sorted_by(|x, y| x.id <= y.id));
    }

    #[test]
    fn the_default_snapshot_is_tens_of_kibibytes() {
        let len = Shape::default().snapshot(0, 0).encoded_len();
        assert!((30_000..120_000).contains(&len), "{len} bytes");
    }

    /// docs/benchmarks.md quotes the snapshot's size on the wire and the
    /// benchmarks measure this exact fleet, so its snapshots must not change
    /// by a byte: pinned by size and content hash (which covers every field
    /// but the sequence), for a host of each environment, canaries included.
    #[test]
    fn the_synthetic_snapshots_stay_byte_identical() {
        let shape = Shape::default();
        let pinned = [
            (
                0,
                0,
                94_539,
                "54f9eac209ab9214543b2cba2bcb06cd4c1e82f6f639e34962dc18db231ea0e5",
            ),
            (
                1,
                1,
                94_543,
                "9dc105c48f281c6dc660bda7383810c87072ae9a08b5042f040a99cb7ae8eee6",
            ),
            (
                2,
                1,
                97_846,
                "ad172eaa515ed8e9af4f070e57828934da93a9ab53e5a4a49d35d49937417a98",
            ),
        ];
        for (i, churn, len, hash) in pinned {
            let s = shape.snapshot(i, churn);
            assert_eq!(
                (s.encoded_len(), s.content_hash.as_str()),
                (len, hash),
                "host {i} after {churn} churn steps"
            );
        }
    }
}
