//! Builders of reports for tests, benches and fuzzers: one set, so that a
//! test says only what matters to it and every other field is a valid
//! default.
//!
//! Compiled for this crate's own tests and behind the `fixtures` feature,
//! which the other crates enable only for their tests, benches and fuzz
//! targets: production binaries never contain it.
//!
//! With no more than its names, [`snapshot`] builds the smallest report the
//! aggregator accepts (`aggregator/src/server/validate.rs`): an agent with a
//! boot id, sequence 1 and a correct content hash; [`container`] builds a
//! running container of a service with an image id in strict digest form.
//! Everything else (host facts, engine, fleet key, env, labels, runtime) is
//! absent until a test sets it. The builders check nothing, so a test of
//! hostile input can build one too. For example:
//! `snapshot("host-1", "staging").kernel("6.1.0").container(container("shop").env("MODE", "fp1")).build()`.

use prost_types::Timestamp;

use crate::v1::{
    AgentInfo, Container, EngineFacts, EngineState, EnvVar, HostFacts, HostSnapshot, ImageInfo,
    Label, RuntimeConfig, ServiceIdentity, ServiceSource,
};

/// A container of `service` (identified by label), named after it, running
/// `registry.test/{service}:1` with a `sha256:abab…` image id.
pub fn container(service: &str) -> ContainerBuilder {
    ContainerBuilder(Container {
        id: format!("{service}-0123456789ab"),
        name: service.to_owned(),
        service: Some(ServiceIdentity {
            name: service.to_owned(),
            source: ServiceSource::Label as i32,
        }),
        image: Some(ImageInfo {
            reference: format!("registry.test/{service}:1"),
            image_id: format!("sha256:{}", "ab".repeat(32)),
            ..ImageInfo::default()
        }),
        ..Container::default()
    })
}

/// A [`Container`] under construction; see [`container`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ContainerBuilder(Container);

impl ContainerBuilder {
    /// The engine's container id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.0.id = id.into();
        self
    }

    /// The container name (by default the service's).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = name.into();
        self
    }

    /// The image reference the container was started from.
    pub fn image(mut self, reference: impl Into<String>) -> Self {
        self.image_info().reference = reference.into();
        self
    }

    /// The image id (any string; `sha256:` ids must be strict digests to be
    /// accepted).
    pub fn image_id(mut self, image_id: impl Into<String>) -> Self {
        self.image_info().image_id = image_id.into();
        self
    }

    /// Adds a repo digest as the engine reports it, `REPOSITORY@sha256:…`,
    /// taken as given.
    pub fn repo_digest(mut self, repo_digest: impl Into<String>) -> Self {
        self.image_info().repo_digests.push(repo_digest.into());
        self
    }

    /// The image's layers, bottom first.
    pub fn layers(mut self, layers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.image_info().layers = layers.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an OCI label of the image (`org.opencontainers.image.*`).
    pub fn image_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.image_info().oci_labels.push(label(key, value));
        self
    }

    /// When the image was built, as the engine reports it.
    pub fn created(mut self, created: impl Into<String>) -> Self {
        self.image_info().created = created.into();
        self
    }

    /// The image's operating system and architecture.
    pub fn platform(mut self, os: impl Into<String>, architecture: impl Into<String>) -> Self {
        let image = self.image_info();
        image.os = os.into();
        image.architecture = architecture.into();
        self
    }

    /// Adds an explicit env variable sent as a fingerprint only.
    pub fn env(mut self, name: impl Into<String>, fingerprint: impl Into<String>) -> Self {
        self.0
            .explicit_env
            .push(var(name.into(), fingerprint.into(), None));
        self
    }

    /// Adds explicit env variables, `(name, fingerprint)`, each as [`env`](Self::env).
    pub fn envs<N: Into<String>, F: Into<String>>(
        self,
        vars: impl IntoIterator<Item = (N, F)>,
    ) -> Self {
        vars.into_iter().fold(self, |c, (name, fp)| c.env(name, fp))
    }

    /// Adds an explicit env variable sent in clear: its fingerprint and its
    /// value, as the agent sends an allow-listed variable.
    pub fn clear_env(
        mut self,
        name: impl Into<String>,
        fingerprint: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let v = var(name.into(), fingerprint.into(), Some(value.into()));
        self.0.explicit_env.push(v);
        self
    }

    /// Adds an env variable baked into the image, in clear or not.
    pub fn image_env(
        mut self,
        name: impl Into<String>,
        fingerprint: impl Into<String>,
        value: Option<&str>,
    ) -> Self {
        let v = var(name.into(), fingerprint.into(), value.map(str::to_owned));
        self.0.image_env.push(v);
        self
    }

    /// Adds a container label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.push(label(key, value));
        self
    }

    /// The runtime settings (command, user, ports, …).
    pub fn runtime(mut self, runtime: RuntimeConfig) -> Self {
        self.0.runtime = Some(runtime);
        self
    }

    /// When the container started, in seconds since the Unix epoch.
    pub fn started_at(mut self, seconds: i64) -> Self {
        self.0.started_at = Some(Timestamp { seconds, nanos: 0 });
        self
    }

    /// Without an identity of its own, as the agent reports a one-off
    /// `docker run`: named by its container name (give it one the engine
    /// would generate, e.g. `container("naughty_wilson")`), `unmanaged`.
    pub fn unmanaged(mut self) -> Self {
        self.0.unmanaged = true;
        if let Some(service) = &mut self.0.service {
            service.source = ServiceSource::ContainerName as i32;
        }
        self
    }

    /// The container.
    pub fn build(self) -> Container {
        self.0
    }

    fn image_info(&mut self) -> &mut ImageInfo {
        self.0.image.get_or_insert_with(ImageInfo::default)
    }
}

impl From<ContainerBuilder> for Container {
    fn from(builder: ContainerBuilder) -> Container {
        builder.build()
    }
}

/// A report of `host_id` in `environment`: agent version `test`, boot id
/// `boot-1`, sequence 1, no containers, and its content hash.
pub fn snapshot(host_id: &str, environment: &str) -> SnapshotBuilder {
    SnapshotBuilder(HostSnapshot {
        host_id: host_id.to_owned(),
        environment: environment.to_owned(),
        agent: Some(AgentInfo {
            version: "test".to_owned(),
            boot_id: "boot-1".to_owned(),
        }),
        sequence: 1,
        ..HostSnapshot::default()
    })
}

/// A [`HostSnapshot`] under construction; see [`snapshot`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SnapshotBuilder(HostSnapshot);

impl SnapshotBuilder {
    /// The report's sequence number within its agent's boot.
    pub fn sequence(mut self, sequence: u64) -> Self {
        self.0.sequence = sequence;
        self
    }

    /// The agent's boot id.
    pub fn boot_id(mut self, boot_id: impl Into<String>) -> Self {
        self.agent().boot_id = boot_id.into();
        self
    }

    /// The agent's version.
    pub fn agent_version(mut self, version: impl Into<String>) -> Self {
        self.agent().version = version.into();
        self
    }

    /// The host's kernel version (the other host facts stay as they are).
    pub fn kernel(mut self, kernel: impl Into<String>) -> Self {
        let facts = self.0.host.get_or_insert_with(HostFacts::default);
        facts.kernel_version = kernel.into();
        self
    }

    /// All the host facts.
    pub fn host_facts(mut self, facts: HostFacts) -> Self {
        self.0.host = Some(facts);
        self
    }

    /// The container engine's facts.
    pub fn engine(mut self, facts: EngineFacts) -> Self {
        self.0.engine = Some(facts);
        self
    }

    /// Whether the agent reached the container engine.
    pub fn engine_state(mut self, state: EngineState) -> Self {
        self.0.engine_state = state as i32;
        self
    }

    /// The id of the fleet key the env fingerprints were made with.
    pub fn fingerprint_key(mut self, key_id: impl Into<String>) -> Self {
        self.0.fingerprint_key_id = key_id.into();
        self
    }

    /// Adds a host label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.push(label(key, value));
        self
    }

    /// Adds a container (a [`Container`] or a [`ContainerBuilder`]).
    pub fn container(mut self, container: impl Into<Container>) -> Self {
        self.0.containers.push(container.into());
        self
    }

    /// Adds containers, in the order given.
    pub fn containers(mut self, containers: impl IntoIterator<Item = Container>) -> Self {
        self.0.containers.extend(containers);
        self
    }

    /// The snapshot, with its content hash computed.
    pub fn build(mut self) -> HostSnapshot {
        self.0.content_hash = crate::hash::content_hash(&self.0);
        self.0
    }

    fn agent(&mut self) -> &mut AgentInfo {
        self.0.agent.get_or_insert_with(AgentInfo::default)
    }
}

fn label(key: impl Into<String>, value: impl Into<String>) -> Label {
    Label {
        key: key.into(),
        value: value.into(),
    }
}

fn var(name: String, fingerprint: String, value: Option<String>) -> EnvVar {
    EnvVar {
        name,
        fingerprint,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults pass the checks the aggregator makes of every report
    /// (`aggregator/src/server/validate.rs`), restated here as the fields
    /// they need.
    #[test]
    fn the_defaults_make_a_valid_report() {
        let s = snapshot("host-1", "staging")
            .container(container("shop"))
            .build();
        assert!(crate::names::validate_environment(&s.environment).is_ok());
        assert!(!s.agent.as_ref().expect("agent").boot_id.is_empty());
        assert!(s.sequence >= 1);
        assert_eq!(s.content_hash, crate::hash::content_hash(&s));
        let c = &s.containers[0];
        assert!(!c.id.is_empty() && !c.name.is_empty());
        assert_eq!(c.service.as_ref().expect("service").name, "shop");
        let image = c.image.as_ref().expect("image");
        assert!(crate::digest::is_digest(&image.image_id));
        assert!(!image.reference.is_empty());
    }
}
