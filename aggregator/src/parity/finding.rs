//! The engine's output: findings, in domain terms.

use std::fmt;

/// What kind of difference a finding is. The names returned by
/// [`Kind::as_str`] are stable: they appear in JSON, metrics and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The same service runs different image content.
    ImageDigest,
    /// Hosts of two environments run different kernel versions.
    Kernel,
    /// An explicit env key present on side A is missing on side B.
    EnvMissingKey,
    /// An explicit env key present on side B is missing on side A.
    EnvExtraKey,
    /// An explicit env key has different values on the two sides.
    EnvValue,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::ImageDigest,
        Kind::EnvMissingKey,
        Kind::EnvExtraKey,
        Kind::EnvValue,
        Kind::Kernel,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ImageDigest => "image_digest",
            Kind::Kernel => "kernel",
            Kind::EnvMissingKey => "env_missing_key",
            Kind::EnvExtraKey => "env_extra_key",
            Kind::EnvValue => "env_value",
        }
    }

    /// Whether the kind concerns hosts rather than one service.
    pub fn is_host_level(self) -> bool {
        matches!(self, Kind::Kernel)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// Kernel release strings.
    KernelVersion,
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
            Basis::KernelVersion => "kernel_version",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a finding: what one environment showed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// One difference between two environments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// What differs.
    pub kind: Kind,
    /// The service, empty for host-level kinds.
    pub service: String,
    /// Side A: the earlier environment of the pair in promotion order.
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// The env key, for env kinds; empty otherwise.
    pub key: String,
    /// How serious it is.
    pub severity: Severity,
    /// What was compared.
    pub basis: Basis,
    /// One line for humans.
    pub summary: String,
}
