//! What is compared at all: env keys and configuration file keys that may
//! differ or are ignored, runtime settings that are ignored, and per-service
//! rules.
//!
//! Configuration file keys use the env rules' shape and lookup (the same
//! [`EnvRules`] type, for every service under `[config]` and per service in
//! `config_expected_to_differ` / `ignored_config`), with entries that are
//! patterns `FILE_GLOB:KEY_PATTERN` (`/etc/app/*.yaml:database.url`, `*`
//! matching any run of characters) rather than exact names.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Policy;

/// Env rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvRules {
    /// Keys whose values may differ between environments; they must still be
    /// set on both sides.
    pub expected_to_differ: BTreeSet<String>,
    /// Keys that are not compared at all.
    pub ignored: BTreeSet<String>,
}

/// Runtime settings compared by `runtime_config` and `replica_drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeField {
    /// The command.
    Cmd,
    /// The entrypoint.
    Entrypoint,
    /// The user.
    User,
    /// The working directory.
    WorkingDir,
    /// Mount destinations and modes.
    Mounts,
    /// Exposed and published ports.
    Ports,
    /// Privileged mode.
    Privileged,
    /// Added capabilities.
    CapAdd,
    /// Dropped capabilities.
    CapDrop,
    /// Read-only root filesystem.
    ReadOnlyRootfs,
    /// The network mode.
    NetworkMode,
    /// The restart policy.
    RestartPolicy,
}

impl RuntimeField {
    /// Every setting, in report order.
    pub const ALL: [RuntimeField; 12] = [
        RuntimeField::Cmd,
        RuntimeField::Entrypoint,
        RuntimeField::User,
        RuntimeField::WorkingDir,
        RuntimeField::Mounts,
        RuntimeField::Ports,
        RuntimeField::Privileged,
        RuntimeField::CapAdd,
        RuntimeField::CapDrop,
        RuntimeField::ReadOnlyRootfs,
        RuntimeField::NetworkMode,
        RuntimeField::RestartPolicy,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeField::Cmd => "cmd",
            RuntimeField::Entrypoint => "entrypoint",
            RuntimeField::User => "user",
            RuntimeField::WorkingDir => "working_dir",
            RuntimeField::Mounts => "mounts",
            RuntimeField::Ports => "ports",
            RuntimeField::Privileged => "privileged",
            RuntimeField::CapAdd => "cap_add",
            RuntimeField::CapDrop => "cap_drop",
            RuntimeField::ReadOnlyRootfs => "read_only_rootfs",
            RuntimeField::NetworkMode => "network_mode",
            RuntimeField::RestartPolicy => "restart_policy",
        }
    }
}

/// Runtime rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeRules {
    /// Settings that are not compared.
    pub ignored: BTreeSet<RuntimeField>,
}

/// Rules for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceRules {
    /// Not compared at all.
    pub ignore: bool,
    /// Where the service should run (`missing_service`); every environment
    /// of the fleet when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environments: Option<BTreeSet<String>>,
    /// More env keys that may differ, for this service.
    pub expected_to_differ: BTreeSet<String>,
    /// More env keys that are ignored, for this service.
    pub ignored_env: BTreeSet<String>,
    /// More runtime settings that are ignored, for this service.
    pub ignored_runtime: BTreeSet<RuntimeField>,
    /// More configuration file keys that may differ, for this service
    /// (`FILE_GLOB:KEY_PATTERN`).
    pub config_expected_to_differ: BTreeSet<String>,
    /// More configuration file keys that are ignored, for this service.
    pub ignored_config: BTreeSet<String>,
}

/// Whether a `FILE_GLOB:KEY_PATTERN` entry names key `key` of the file at
/// `path` (split at the first `:`; an entry without one names nothing).
pub fn config_pattern_matches(pattern: &str, path: &str, key: &str) -> bool {
    use envparity_proto::glob::glob_match;
    pattern
        .split_once(':')
        .is_some_and(|(file, k)| glob_match(file, path) && glob_match(k, key))
}

impl Policy {
    /// Whether a service is ignored entirely.
    pub fn service_ignored(&self, service: &str) -> bool {
        self.services.get(service).is_some_and(|r| r.ignore)
    }

    /// Whether a rule set names something, for every service (`every`) or
    /// for `service` (`own` of its rules): the one lookup env and
    /// configuration keys share.
    fn in_rules(
        &self,
        service: &str,
        every: &BTreeSet<String>,
        own: impl Fn(&ServiceRules) -> &BTreeSet<String>,
        names: impl Fn(&BTreeSet<String>) -> bool,
    ) -> bool {
        names(every) || self.services.get(service).is_some_and(|r| names(own(r)))
    }

    /// Whether an env key of a service is ignored.
    pub fn env_ignored(&self, service: &str, key: &str) -> bool {
        self.in_rules(
            service,
            &self.env.ignored,
            |r| &r.ignored_env,
            |s| s.contains(key),
        )
    }

    /// Whether an env key of a service may differ between environments.
    pub fn expected_to_differ(&self, service: &str, key: &str) -> bool {
        self.in_rules(
            service,
            &self.env.expected_to_differ,
            |r| &r.expected_to_differ,
            |s| s.contains(key),
        )
    }

    /// Whether key `key` of the configuration file at `path` is ignored for
    /// a service. `key` is `$file` for a file compared whole.
    pub fn config_ignored(&self, service: &str, path: &str, key: &str) -> bool {
        self.in_rules(
            service,
            &self.config.ignored,
            |r| &r.ignored_config,
            |s| s.iter().any(|p| config_pattern_matches(p, path, key)),
        )
    }

    /// Whether key `key` of the configuration file at `path` may differ
    /// between environments for a service (it must still be there).
    pub fn config_expected_to_differ(&self, service: &str, path: &str, key: &str) -> bool {
        self.in_rules(
            service,
            &self.config.expected_to_differ,
            |r| &r.config_expected_to_differ,
            |s| s.iter().any(|p| config_pattern_matches(p, path, key)),
        )
    }

    /// Whether a runtime setting of a service is ignored.
    pub fn runtime_ignored(&self, service: &str, field: RuntimeField) -> bool {
        self.runtime.ignored.contains(&field)
            || self
                .services
                .get(service)
                .is_some_and(|r| r.ignored_runtime.contains(&field))
    }

    /// Whether `service` should run in `env`.
    pub fn should_run(&self, service: &str, env: &str) -> bool {
        match self
            .services
            .get(service)
            .and_then(|r| r.environments.as_ref())
        {
            Some(envs) => envs.contains(env),
            None => true,
        }
    }
}
