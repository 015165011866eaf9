//! The engine's output: findings, in domain terms.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

/// What kind of difference a finding is. The names returned by
/// [`Kind::as_str`] are stable: they appear in JSON, metrics, alerts and the
/// policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The same service runs different image content in two environments.
    ImageDigest,
    /// One tag resolves to different content in two places: rebuilt, not
    /// promoted.
    SameTagDifferentDigest,
    /// A service runs from a mutable reference where pinning is required.
    UnpinnedImage,
    /// A service runs in one environment and not in another that should run
    /// it.
    MissingService,
    /// Inside one environment, replicas of a service differ.
    ReplicaDrift,
    /// An explicit env key present on side A is missing on side B.
    EnvMissingKey,
    /// An explicit env key present on side B is missing on side A.
    EnvExtraKey,
    /// An explicit env key has different values on the two sides.
    EnvValue,
    /// A runtime setting (cmd, user, mounts, ports, …) differs.
    RuntimeConfig,
    /// Hosts of two environments run different kernel versions.
    Kernel,
    /// Hosts of two environments run different operating systems.
    Os,
    /// Hosts of two environments run different container engine versions.
    EngineVersion,
    /// Hosts of two environments use a different cgroup version or driver.
    Cgroup,
    /// Hosts of two environments use a different engine storage driver.
    StorageDriver,
    /// Hosts of two environments have different CPU architectures.
    Architecture,
    /// A host has not been heard from within the stale window.
    StaleHost,
    /// Two environments fingerprint a service's env with different fleet
    /// keys, so values set on both sides could not be compared.
    KeyMismatch,
    /// The agent had to cut a container down to fit the report limits, so
    /// comparisons may miss what was cut.
    ContainerUnreportable,
    /// A container without an identity of its own (a one-off `docker run`):
    /// reported on its host, never compared across environments.
    UnmanagedContainer,
    /// A configuration file mounted on side A is missing on side B.
    ConfigFileMissing,
    /// A configuration file mounted on side B is missing on side A.
    ConfigFileExtra,
    /// A key of a configuration file on side A is missing on side B.
    ConfigKeyMissing,
    /// A key of a configuration file on side B is missing on side A.
    ConfigKeyExtra,
    /// A key of a configuration file has different values on the two sides.
    ConfigValue,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 24] = [
        Kind::SameTagDifferentDigest,
        Kind::ImageDigest,
        Kind::UnpinnedImage,
        Kind::ContainerUnreportable,
        Kind::MissingService,
        Kind::ReplicaDrift,
        Kind::EnvMissingKey,
        Kind::EnvExtraKey,
        Kind::EnvValue,
        Kind::KeyMismatch,
        Kind::ConfigFileMissing,
        Kind::ConfigFileExtra,
        Kind::ConfigKeyMissing,
        Kind::ConfigKeyExtra,
        Kind::ConfigValue,
        Kind::RuntimeConfig,
        Kind::Kernel,
        Kind::Os,
        Kind::EngineVersion,
        Kind::Cgroup,
        Kind::StorageDriver,
        Kind::Architecture,
        Kind::StaleHost,
        Kind::UnmanagedContainer,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ImageDigest => "image_digest",
            Kind::SameTagDifferentDigest => "same_tag_different_digest",
            Kind::UnpinnedImage => "unpinned_image",
            Kind::MissingService => "missing_service",
            Kind::ReplicaDrift => "replica_drift",
            Kind::EnvMissingKey => "env_missing_key",
            Kind::EnvExtraKey => "env_extra_key",
            Kind::EnvValue => "env_value",
            Kind::RuntimeConfig => "runtime_config",
            Kind::Kernel => "kernel",
            Kind::Os => "os",
            Kind::EngineVersion => "engine_version",
            Kind::Cgroup => "cgroup",
            Kind::StorageDriver => "storage_driver",
            Kind::Architecture => "architecture",
            Kind::StaleHost => "stale_host",
            Kind::KeyMismatch => "key_mismatch",
            Kind::ContainerUnreportable => "container_unreportable",
            Kind::UnmanagedContainer => "unmanaged_container",
            Kind::ConfigFileMissing => "config_file_missing",
            Kind::ConfigFileExtra => "config_file_extra",
            Kind::ConfigKeyMissing => "config_key_missing",
            Kind::ConfigKeyExtra => "config_key_extra",
            Kind::ConfigValue => "config_value",
        }
    }

    /// Whether the kind concerns hosts rather than one service.
    pub fn is_host_level(self) -> bool {
        matches!(
            self,
            Kind::Kernel
                | Kind::Os
                | Kind::EngineVersion
                | Kind::Cgroup
                | Kind::StorageDriver
                | Kind::Architecture
                | Kind::StaleHost
        )
    }

    /// Whether `status` lists the kind's findings apart from the service
    /// rows, on its first page: the host-level kinds, and unmanaged
    /// containers, which are no service (no row, no drifting cell).
    pub fn is_apart_from_services(self) -> bool {
        self.is_host_level() || self == Kind::UnmanagedContainer
    }

    /// Whether the kind is about one environment (side B is absent).
    pub fn is_single_environment(self) -> bool {
        matches!(
            self,
            Kind::UnpinnedImage
                | Kind::ReplicaDrift
                | Kind::StaleHost
                | Kind::ContainerUnreportable
                | Kind::UnmanagedContainer
        )
    }

    /// The position in report order.
    pub fn rank(self) -> usize {
        Kind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(usize::MAX)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a known kind or severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}; expected one of: {expected}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
    expected: String,
}

impl FromStr for Kind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "finding kind",
                name: s.to_owned(),
                expected: Kind::ALL.map(Kind::as_str).join(", "),
            })
    }
}

/// How serious a finding is; ordered from least to most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Drift that should be fixed.
    Warning,
    /// What runs is not what was tested.
    Critical,
}

impl Severity {
    /// Every severity, least serious first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "severity",
                name: s.to_owned(),
                expected: Severity::ALL.map(Severity::as_str).join(", "),
            })
    }
}

/// What a finding compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Basis {
    /// Registry (index) digests: architecture-independent content identity.
    RegistryDigest,
    /// Local image ids: used when a side has no registry digest.
    ImageId,
    /// Keyed fingerprints of env values.
    Fingerprint,
    /// Allowlisted env values, compared and shown in clear.
    ClearValue,
    /// Whether an env key is set at all.
    KeyPresence,
    /// The image reference a container was started from.
    Reference,
    /// Whether a service runs in an environment at all.
    ServicePresence,
    /// A container's runtime settings.
    RuntimeSetting,
    /// Facts a host or its engine reports about itself.
    HostFact,
    /// When the aggregator last heard from a host.
    LastSeen,
    /// The fleet-key ids env fingerprints were made with.
    KeyId,
    /// What the agent says it cut from a container to fit the report limits.
    AgentCut,
    /// The agent's word that a container has no identity of its own.
    Unmanaged,
}

impl Basis {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::RegistryDigest => "registry_digest",
            Basis::ImageId => "image_id",
            Basis::Fingerprint => "fingerprint",
            Basis::ClearValue => "clear_value",
            Basis::KeyPresence => "key_presence",
            Basis::Reference => "reference",
            Basis::ServicePresence => "service_presence",
            Basis::RuntimeSetting => "runtime_setting",
            Basis::HostFact => "host_fact",
            Basis::LastSeen => "last_seen",
            Basis::KeyId => "key_id",
            Basis::AgentCut => "agent_cut",
            Basis::Unmanaged => "unmanaged",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a finding: what one environment showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Side {
    /// The environment.
    pub environment: String,
    /// The hosts the values were observed on, sorted.
    pub hosts: Vec<String>,
    /// The subset of `hosts` whose data is not current, sorted.
    pub stale_hosts: Vec<String>,
    /// The distinct observed values, sorted (empty when absent).
    pub values: Vec<String>,
}

/// Where a finding stands in its lifecycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Present for less than the grace period (a rollout may be under way).
    Pending,
    /// Present for at least the grace period: it counts.
    #[default]
    Active,
    /// Accepted by an unexpired waiver: shown, but it does not count.
    Waived,
}

impl State {
    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Waived => "waived",
        }
    }
}

/// The waiver that matched a finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiverNote {
    /// Why the difference is accepted.
    pub reason: String,
    /// Who accepted it.
    pub owner: String,
    /// When it stops applying.
    pub expires: SystemTime,
    /// True when it has expired: the finding counts again.
    pub expired: bool,
}

/// Where a finding stands over time; filled by [`super::judge`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Status {
    /// Pending, active or waived.
    pub state: State,
    /// When the aggregator first saw it (continuously since).
    pub first_seen: Option<SystemTime>,
    /// When the aggregator last saw it.
    pub last_seen: Option<SystemTime>,
    /// The waiver that matched, applied or expired.
    pub waiver: Option<WaiverNote>,
}

/// What identifies a finding over time: never a digest or a value, so a
/// changing digest updates the same finding instead of opening another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FindingKey {
    /// The kind.
    pub kind: Kind,
    /// The service, empty for host-level kinds.
    pub service: String,
    /// The environments, sorted by name (one for single-environment kinds).
    pub environments: Vec<String>,
    /// The env key or runtime setting, empty otherwise.
    pub key: String,
    /// The host, for per-host kinds.
    pub host: String,
}

impl FindingKey {
    /// The least key of `kind` and `service`: where their findings start
    /// in key order (empty names sort first).
    pub fn first_of(kind: Kind, service: &str) -> Self {
        FindingKey {
            kind,
            service: service.to_owned(),
            environments: Vec::new(),
            key: String::new(),
            host: String::new(),
        }
    }

    /// A stable one-line identity, used as the store's key and in alerts.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.kind,
            self.service,
            self.environments.join(","),
            self.key,
            self.host
        )
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// What differs.
    pub kind: Kind,
    /// The service, empty for host-level kinds.
    pub service: String,
    /// Side A: the earlier environment of the pair in promotion order, or the
    /// one environment of a single-environment kind.
    pub a: Side,
    /// Side B; `None` for single-environment kinds.
    pub b: Option<Side>,
    /// The env key, runtime setting or image reference the finding is about;
    /// empty otherwise.
    pub key: String,
    /// The host, for per-host kinds (`stale_host`); empty otherwise.
    pub host: String,
    /// How serious it is.
    pub severity: Severity,
    /// What was compared.
    pub basis: Basis,
    /// One line for humans.
    pub summary: String,
    /// Lifecycle, filled in by [`super::judge`].
    pub status: Status,
}

impl Finding {
    /// Its identity over time.
    pub fn identity(&self) -> FindingKey {
        let mut environments = vec![self.a.environment.clone()];
        if let Some(b) = &self.b {
            environments.push(b.environment.clone());
        }
        environments.sort();
        environments.dedup();
        FindingKey {
            kind: self.kind,
            service: self.service.clone(),
            environments,
            key: self.key.clone(),
            host: self.host.clone(),
        }
    }

    /// The names of the environments it concerns.
    pub fn environments(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.a.environment.as_str())
            .chain(self.b.as_ref().map(|b| b.environment.as_str()))
    }

    /// Whether it counts (active, not pending or waived).
    pub fn counts(&self) -> bool {
        self.status.state == State::Active
    }
}
