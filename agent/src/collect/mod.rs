//! Collecting a host snapshot: host facts, engine facts and containers,
//! from whichever container runtime the host runs ([`crate::runtime`]).

pub mod host;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use envparity_proto::hash::{HashForm, content_hash_in};
use envparity_proto::time::to_timestamp;
use envparity_proto::v1::{
    AgentInfo, Container, ContainerConfigFiles, EngineFacts, EngineState, HostFacts, HostSnapshot,
    Label,
};

use crate::clear_env::ClearEnvPolicy;
use crate::config::Config;
use crate::fingerprint::FleetKey;
use crate::limit::Cut;

use crate::runtime::changes::Changes;
use crate::runtime::detect::{self, Target};
use crate::runtime::{ContainerRuntime, Runtime, RuntimeError};

/// The part of every snapshot that does not come from observation: who
/// reports, for which environment, under which key.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotHeader {
    /// `HostSnapshot.host_id`.
    pub host_id: String,
    /// `HostSnapshot.environment`.
    pub environment: String,
    /// Host labels, sorted by key.
    pub labels: Vec<Label>,
    /// This agent and boot.
    pub agent: AgentInfo,
    /// `HostSnapshot.fingerprint_key_id`.
    pub fingerprint_key_id: String,
}

impl SnapshotHeader {
    /// The header for `config`, for the agent boot `boot_id`.
    pub fn new(config: &Config, boot_id: &str) -> Self {
        Self {
            host_id: config.host_id.clone(),
            environment: config.environment.clone(),
            labels: config
                .labels
                .iter()
                .map(|(key, value)| Label {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            agent: AgentInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                boot_id: boot_id.to_owned(),
            },
            fingerprint_key_id: config.fingerprint_key_id.clone(),
        }
    }
}

/// A fresh random boot id: 128 bits, lower hex. It only has to be unique per
/// agent start, not secret.
pub fn new_boot_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// What the engine said, or why it could not be read.
pub type EngineReading = Result<(EngineFacts, Vec<Container>), RuntimeError>;

/// Assembles a snapshot, cuts it down to the aggregator's limits
/// ([`crate::limit`]) and stamps its content hash in `form`. `sequence` is left at 0:
/// the reporter numbers snapshots when it sends them. Returns what was cut.
///
/// When the engine could not be read the snapshot says so and carries no
/// engine facts and no containers: "unknown" must never look like "nothing
/// runs".
///
/// `config_files` are the containers' configuration files
/// ([`crate::config_files::read`]), sorted by container id; left out when
/// the engine could not be read.
pub fn build_snapshot(
    header: &SnapshotHeader,
    host: HostFacts,
    engine: &EngineReading,
    config_files: Vec<ContainerConfigFiles>,
    collected_at: SystemTime,
    form: HashForm,
) -> (HostSnapshot, Vec<Cut>) {
    let (engine, engine_state, containers) = match engine {
        Ok((facts, containers)) => (Some(facts.clone()), EngineState::Ok, containers.clone()),
        Err(_) => (None, EngineState::Unreachable, Vec::new()),
    };
    let mut containers = containers;
    let config_files = if engine_state == EngineState::Ok {
        fit_config_files(config_files, &mut containers)
    } else {
        Vec::new()
    };
    let mut snapshot = HostSnapshot {
        config_files,
        containers_dropped: 0,
        host_id: header.host_id.clone(),
        environment: header.environment.clone(),
        labels: header.labels.clone(),
        agent: Some(header.agent.clone()),
        sequence: 0,
        collected_at: Some(to_timestamp(collected_at)),
        host: Some(host),
        engine,
        engine_state: engine_state as i32,
        containers,
        content_hash: String::new(),
        fingerprint_key_id: header.fingerprint_key_id.clone(),
    };
    let cuts = crate::limit::apply(&mut snapshot);
    // The files of a container the limiter left out go with it: an entry
    // must name a reported container.
    let ids: std::collections::BTreeSet<&str> =
        snapshot.containers.iter().map(|c| c.id.as_str()).collect();
    let kept: Vec<ContainerConfigFiles> = std::mem::take(&mut snapshot.config_files)
        .into_iter()
        .filter(|f| ids.contains(f.container_id.as_str()))
        .collect();
    snapshot.config_files = kept;
    snapshot.content_hash = content_hash_in(form, &snapshot);
    (snapshot, cuts)
}

/// Whether `a` and `b` say the same of everything but their configuration
/// files and what changes at every collection (`sequence`, `collected_at`,
/// `content_hash`). Every field is named, so that a new one is decided here.
fn same_but_files(a: &HostSnapshot, b: &HostSnapshot) -> bool {
    let HostSnapshot {
        host_id,
        environment,
        labels,
        agent,
        sequence: _,
        collected_at: _,
        host,
        engine,
        engine_state,
        containers,
        content_hash: _,
        fingerprint_key_id,
        containers_dropped,
        config_files: _,
    } = a;
    *host_id == b.host_id
        && *environment == b.environment
        && *labels == b.labels
        && *agent == b.agent
        && *host == b.host
        && *engine == b.engine
        && *engine_state == b.engine_state
        && *containers == b.containers
        && *fingerprint_key_id == b.fingerprint_key_id
        && *containers_dropped == b.containers_dropped
}

/// Keeps the configuration files within
/// [`envparity_proto::limits::MAX_SNAPSHOT_CONFIG_BYTES`] together: the
/// entries past it (by container id) are left out, so those containers'
/// files are unknown this time, and each of those containers says so in its
/// `cut`.
fn fit_config_files(
    files: Vec<ContainerConfigFiles>,
    containers: &mut [Container],
) -> Vec<ContainerConfigFiles> {
    let budget = envparity_proto::limits::MAX_SNAPSHOT_CONFIG_BYTES;
    let mut used = 0;
    let mut kept = Vec::with_capacity(files.len());
    for entry in files {
        used += prost::Message::encoded_len(&entry);
        if used <= budget {
            kept.push(entry);
        } else if let Some(c) = containers.iter_mut().find(|c| c.id == entry.container_id) {
            c.cut.push(format!(
                "config files: left out, the snapshot's config files are over {budget} encoded bytes"
            ));
        }
    }
    kept
}

/// Collects snapshots of this host, keeping the engine connection between
/// collections and re-establishing it after a failure (the engine may have
/// restarted, possibly as a newer version with another API version).
///
/// It keeps the last engine reading, so that a collection after an event
/// reads only the containers the event named ([`Collector::collect`]).
#[derive(Debug)]
pub struct Collector {
    target: Target,
    engine: Option<Runtime>,
    host_root: PathBuf,
    key: FleetKey,
    policy: ClearEnvPolicy,
    /// Reads the containers' configuration files, caching between
    /// collections.
    files: crate::config_files::read::Reader,
    header: SnapshotHeader,
    /// Whether the last collection could read the engine (`None` before the
    /// first), so that an outage is logged once, not on every retry.
    engine_was_ok: Option<bool>,
    /// What the engine said at the last collection, if it could be read.
    last: Option<Reading>,
    /// What the last collection cut to fit the limits.
    cuts: Vec<Cut>,
    /// The form of the content hashes it stamps: by container once the
    /// aggregator says it checks that form.
    hash_form: HashForm,
}

/// A successful reading of the engine.
#[derive(Debug)]
struct Reading {
    /// Read at every full collection: they only change when the engine
    /// restarts, which ends the event stream and so brings a full one.
    facts: EngineFacts,
    /// The reported containers, by id.
    containers: BTreeMap<String, Container>,
}

impl Collector {
    /// A collector for `config`; connects to the engine on first use.
    pub fn new(config: &Config, header: SnapshotHeader) -> Self {
        Self {
            target: config.runtime_target(),
            engine: None,
            host_root: config.host_root.clone(),
            key: config.fingerprint_key.clone(),
            policy: config.clear_env.clone(),
            files: crate::config_files::read::Reader::new(
                config.config_files.clone(),
                config.clear_config.clone(),
            ),
            header,
            engine_was_ok: None,
            last: None,
            cuts: Vec::new(),
            hash_form: HashForm::Whole,
        }
    }

    /// Stamps the next snapshots' content hashes in `form`.
    pub fn set_hash_form(&mut self, form: HashForm) {
        self.hash_form = form;
    }

    /// The form of the content hashes it stamps.
    pub fn hash_form(&self) -> HashForm {
        self.hash_form
    }

    /// What reading configuration files did since the last call.
    pub fn take_config_file_counts(&mut self) -> crate::config_files::counts::ReadCounts {
        self.files.take_counts()
    }

    /// Where the runtime is looked for.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The snapshot header this collector stamps on every snapshot.
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// Collects one snapshot. Never fails: an unreadable engine yields an
    /// `ENGINE_STATE_UNREACHABLE` snapshot (and a warning, once per outage).
    ///
    /// With `changes`, reads again only the containers they name and keeps
    /// the others as the last collection saw them; reads everything without
    /// them, when there is no last reading (the first collection, or the
    /// engine was unreachable) or when reading the changes fails.
    pub async fn collect(&mut self, changes: Option<&Changes>) -> HostSnapshot {
        let mut reading = self.read_engine(changes).await;
        let config_files = self.read_config_files(&mut reading).await;
        self.note_engine(&reading);
        let host = host::host_facts(&self.host_root);
        self.build(&reading, host, config_files)
    }

    /// As [`Collector::collect`], but `None` when the snapshot would have
    /// the content of `current` (the last one collected): every
    /// configuration file unchanged and the rest of it equal. The snapshot is then not built again from the reader's
    /// cache, nor hashed, which with many mounted files is most of what an
    /// unchanged collection costs.
    pub async fn collect_unless_same(
        &mut self,
        changes: Option<&Changes>,
        current: &HostSnapshot,
    ) -> Option<HostSnapshot> {
        let mut reading = self.read_engine(changes).await;
        let config_files = self.read_config_files_unless_unchanged(&mut reading).await;
        self.note_engine(&reading);
        let host = host::host_facts(&self.host_root);
        let config_files = match config_files {
            Some(files) => files,
            None => {
                let (probe, _) = build_snapshot(
                    &self.header,
                    host.clone(),
                    &reading,
                    Vec::new(),
                    SystemTime::now(),
                    self.hash_form,
                );
                if same_but_files(&probe, current) {
                    return None;
                }
                self.files
                    .as_before()
                    .into_iter()
                    .map(|r| r.files)
                    .collect()
            }
        };
        Some(self.build(&reading, host, config_files))
    }

    /// Logs the engine's state when it changed since the last collection.
    fn note_engine(&mut self, reading: &EngineReading) {
        let runtime = self.target.describe();
        match (reading, self.engine_was_ok) {
            (Err(error), Some(true) | None) => tracing::warn!(
                %runtime,
                %error,
                "container engine unreachable; reporting it as such until it answers"
            ),
            (Err(error), Some(false)) => {
                tracing::debug!(%runtime, %error, "container engine still unreachable");
            }
            (Ok(_), Some(false)) => {
                tracing::info!(%runtime, "container engine reachable again");
            }
            (Ok(_), _) => {}
        }
        self.engine_was_ok = Some(reading.is_ok());
        if reading.is_err() {
            self.engine = None;
        }
    }

    /// The snapshot of a reading, its cuts logged when they first appear.
    fn build(
        &mut self,
        reading: &EngineReading,
        host: HostFacts,
        config_files: Vec<ContainerConfigFiles>,
    ) -> HostSnapshot {
        let (snapshot, cuts) = build_snapshot(
            &self.header,
            host,
            reading,
            config_files,
            SystemTime::now(),
            self.hash_form,
        );
        // Each cut is logged when it first appears, not at every collection.
        for cut in cuts.iter().filter(|c| !self.cuts.contains(c)) {
            tracing::warn!(
                container = %cut.container.escape_debug(),
                reason = %cut.reason,
                "container over the aggregator's limits: cut down to report the rest of it and of its host"
            );
        }
        self.cuts = cuts;
        snapshot
    }

    /// The configuration files of every container read, on Docker and on
    /// Podman (whose Docker-compatible API serves the same archive calls,
    /// `HEAD` and `GET`, this reads through); what was cut from
    /// them goes to each container's `cut`. Every container is looked at,
    /// not only those an event named: a file changes without an event, and
    /// an unchanged one costs a stat, not a read.
    async fn read_config_files(
        &mut self,
        reading: &mut EngineReading,
    ) -> Vec<ContainerConfigFiles> {
        self.read_config_files_as(reading, false)
            .await
            .unwrap_or_default()
    }

    /// As [`Collector::read_config_files`], but `None` when every file is
    /// as the last reading gave it ([`Reader::read_unless_unchanged`]); what
    /// it cut then goes to each container's `cut` all the same.
    ///
    /// [`Reader::read_unless_unchanged`]: crate::config_files::read::Reader::read_unless_unchanged
    async fn read_config_files_unless_unchanged(
        &mut self,
        reading: &mut EngineReading,
    ) -> Option<Vec<ContainerConfigFiles>> {
        self.read_config_files_as(reading, true).await
    }

    async fn read_config_files_as(
        &mut self,
        reading: &mut EngineReading,
        unless_unchanged: bool,
    ) -> Option<Vec<ContainerConfigFiles>> {
        let (Ok((_, containers)), Some(Runtime::DockerApi(api))) = (reading, &self.engine) else {
            return Some(Vec::new());
        };
        use crate::runtime::RuntimeKind;
        if !self.files.enabled()
            || !matches!(api.dialect.kind, RuntimeKind::Docker | RuntimeKind::Podman)
        {
            return Some(Vec::new());
        }
        let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
        let http = api.engine.http();
        let read = if unless_unchanged {
            self.files
                .read_unless_unchanged(http, &ids, &self.key)
                .await
        } else {
            Some(self.files.read(http, &ids, &self.key).await)
        };
        let Some(read) = read else {
            for (id, cut) in self.files.cuts_as_before() {
                if let Some(c) = containers.iter_mut().find(|c| &c.id == id) {
                    c.cut.extend(cut.iter().cloned());
                }
            }
            return None;
        };
        let mut out = Vec::with_capacity(read.len());
        for r in read {
            if let Some(c) = containers.iter_mut().find(|c| c.id == r.files.container_id) {
                c.cut.extend(r.cut);
            }
            out.push(r.files);
        }
        Some(out)
    }

    async fn read_engine(&mut self, changes: Option<&Changes>) -> EngineReading {
        let engine = match &self.engine {
            Some(engine) => engine,
            None => {
                let engine = detect::connect(&self.target).await?;
                if self.target.choice == detect::RuntimeChoice::Auto {
                    tracing::info!(
                        runtime = %engine.kind(),
                        address = %engine.address(),
                        "container runtime detected; keeping to it"
                    );
                    self.target = self.target.pinned(&engine);
                }
                self.engine.insert(engine)
            }
        };
        if let (Some(changes), Some(last)) = (changes, &mut self.last) {
            match engine
                .refresh(&mut last.containers, changes, &self.key, &self.policy)
                .await
            {
                Ok(()) => {
                    return Ok((
                        last.facts.clone(),
                        last.containers.values().cloned().collect(),
                    ));
                }
                Err(error) => tracing::debug!(
                    runtime = %engine.kind(),
                    %error,
                    "cannot read the changed containers; reading them all"
                ),
            }
        }
        self.last = None;
        let facts = engine.engine_facts().await?;
        let containers = engine.collect(&self.key, &self.policy).await?;
        self.last = Some(Reading {
            facts: facts.clone(),
            containers: containers
                .iter()
                .map(|c| (c.id.clone(), c.clone()))
                .collect(),
        });
        Ok((facts, containers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            host_id: "h1".into(),
            environment: "staging".into(),
            labels: vec![Label {
                key: "region".into(),
                value: "eu".into(),
            }],
            agent: AgentInfo {
                version: "0.1.0".into(),
                boot_id: "b".into(),
            },
            fingerprint_key_id: "kabc".into(),
        }
    }

    fn unreachable() -> EngineReading {
        Err(RuntimeError::Docker(crate::runtime::docker::EngineError {
            operation: "connect".into(),
            error: crate::runtime::engine_http::HttpError::Connection(
                "connect to /nope: not found".into(),
            ),
        }))
    }

    #[test]
    fn unreachable_engine_reports_no_containers_and_no_engine_facts() {
        let (snap, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &unreachable(),
            Vec::new(),
            SystemTime::now(),
            HashForm::Whole,
        );
        assert_eq!(snap.engine_state(), EngineState::Unreachable);
        assert!(snap.engine.is_none());
        assert!(snap.containers.is_empty());
        assert_eq!(
            snap.content_hash,
            envparity_proto::hash::content_hash(&snap)
        );
    }

    #[test]
    fn reachable_engine_reports_state_ok_and_the_header() {
        let reading: EngineReading = Ok((
            EngineFacts::default(),
            vec![Container {
                id: "c1".into(),
                ..Default::default()
            }],
        ));
        let (snap, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &reading,
            Vec::new(),
            SystemTime::now(),
            HashForm::Whole,
        );
        assert_eq!(snap.engine_state(), EngineState::Ok);
        assert_eq!(snap.containers.len(), 1);
        assert_eq!(snap.host_id, "h1");
        assert_eq!(snap.environment, "staging");
        assert_eq!(snap.fingerprint_key_id, "kabc");
        assert_eq!(snap.sequence, 0);
        assert_eq!(snap.content_hash.len(), 64);
        // In the form by container once asked: the same content.
        let (by_container, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &reading,
            Vec::new(),
            SystemTime::now(),
            HashForm::ByContainer,
        );
        assert!(by_container.content_hash.starts_with("v2:"));
        assert!(envparity_proto::hash::makes_its_hash(&by_container));
    }

    #[test]
    fn an_outage_changes_the_content_hash() {
        let ok: EngineReading = Ok((EngineFacts::default(), Vec::new()));
        let now = SystemTime::now();
        let (a, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &ok,
            Vec::new(),
            now,
            HashForm::Whole,
        );
        let (b, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &unreachable(),
            Vec::new(),
            now,
            HashForm::Whole,
        );
        assert_ne!(a.content_hash, b.content_hash);
    }

    #[test]
    fn config_files_past_the_snapshot_budget_are_left_out_and_named_in_cut() {
        use envparity_proto::v1::{ConfigFile, ConfigKey};
        let big = |id: &str| ContainerConfigFiles {
            container_id: id.into(),
            files: vec![ConfigFile {
                path: "/etc/a.yaml".into(),
                keys: vec![
                    ConfigKey {
                        path: "k".repeat(1000),
                        fingerprint: "f".repeat(64),
                        value: None,
                    };
                    2000
                ],
                ..Default::default()
            }],
        };
        // 2.1 MB each: three fit in the budget (8.4 MB), the others do not.
        let ids = ["c1", "c2", "c3", "c4", "c5"];
        let reading: EngineReading = Ok((
            EngineFacts::default(),
            ids.iter()
                .map(|id| Container {
                    id: (*id).into(),
                    ..Default::default()
                })
                .collect(),
        ));
        let files = ids.iter().map(|id| big(id)).collect();
        let (snap, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &reading,
            files,
            SystemTime::now(),
            HashForm::Whole,
        );
        let with: Vec<&str> = snap
            .config_files
            .iter()
            .map(|f| f.container_id.as_str())
            .collect();
        assert_eq!(with, ["c1", "c2", "c3"]);
        let c5 = snap.containers.iter().find(|c| c.id == "c5").unwrap();
        assert!(
            c5.cut
                .iter()
                .any(|r| r.starts_with("config files: left out")),
            "{:?}",
            c5.cut
        );
        assert!(prost::Message::encoded_len(&snap) <= envparity_proto::limits::MAX_SNAPSHOT_BYTES);
    }

    #[test]
    fn config_files_of_a_container_the_limiter_drops_go_with_it() {
        let reading: EngineReading = Ok((EngineFacts::default(), Vec::new()));
        let files = vec![ContainerConfigFiles {
            container_id: "gone".into(),
            files: Vec::new(),
        }];
        let (snap, _) = build_snapshot(
            &header(),
            HostFacts::default(),
            &reading,
            files,
            SystemTime::now(),
            HashForm::Whole,
        );
        assert!(snap.config_files.is_empty());
    }

    #[test]
    fn boot_ids_are_random_128_bit_hex() {
        let (a, b) = (new_boot_id(), new_boot_id());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
