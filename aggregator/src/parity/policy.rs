//! The policy: what must match where, what may differ, and what is accepted.
//!
//! A policy is TOML. Every field has a default, and the defaults alone are a
//! useful policy (see [`Policy::default`]): `dev`/`development` →
//! `staging`/`stage` → `prod`/`production` form the promotion chain, other
//! names are compared with every environment, the last stage must be pinned.
//! Parsing is strict: unknown keys, kinds, severities, levels and runtime
//! settings are errors that name the line and the key, so a typo never
//! silently weakens the policy.
//!
//! Parsing and every rule are pure; reading the file is the caller's job.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime};

use envparity_proto::names::validate_environment;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::finding::{Finding, Kind, Severity};

/// A policy that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {origin}: {message}")]
pub struct PolicyError {
    /// Where the policy came from (a path, usually).
    pub origin: String,
    /// What is wrong, with the line and key where known.
    pub message: String,
}

/// The effective policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// How long a finding must persist before it counts (CLI, `check`,
    /// `gate`); before that it is *pending*.
    #[serde(with = "duration")]
    pub grace: Duration,
    /// The grace period for alerts.
    #[serde(with = "duration")]
    pub alert_grace: Duration,
    /// The promotion chain, earliest first; each stage is a name or a list of
    /// names for the same stage.
    pub chain: Vec<Stage>,
    /// Which environments must pin images by digest.
    pub pinning: Pinning,
    /// Env keys that may differ or are ignored, for every service.
    pub env: EnvRules,
    /// Runtime settings that are ignored, for every service.
    pub runtime: RuntimeRules,
    /// The promotion gate.
    pub gate: GateRules,
    /// Severity overrides per finding kind.
    pub severity: BTreeMap<Kind, Severity>,
    /// How strictly explicit pairs of environments must match.
    pub pairs: Vec<PairRule>,
    /// Per-service rules.
    pub services: BTreeMap<String, ServiceRules>,
    /// Accepted differences.
    pub waivers: Vec<Waiver>,
}

/// One stage of the chain: its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage(pub Vec<String>);

/// Pinning requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pinning {
    /// Environments where a mutable reference is a warning. `"@last_stage"`
    /// stands for the last stage of the chain present in the fleet.
    pub required: Vec<String>,
    /// What an unpinned image is elsewhere.
    pub elsewhere: Report,
}

/// Whether, and how seriously, to report something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Not reported.
    Off,
    /// Reported as info.
    Info,
    /// Reported as a warning.
    Warning,
    /// Reported as critical.
    Critical,
}

impl Report {
    fn severity(self) -> Option<Severity> {
        match self {
            Report::Off => None,
            Report::Info => Some(Severity::Info),
            Report::Warning => Some(Severity::Warning),
            Report::Critical => Some(Severity::Critical),
        }
    }
}

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

/// The promotion gate's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateRules {
    /// How long the candidate digest must have run in the previous stage.
    #[serde(with = "duration")]
    pub min_time_in_previous: Duration,
    /// Findings at or above this severity block a promotion.
    pub block_on: Severity,
}

impl Default for GateRules {
    fn default() -> Self {
        GateRules {
            min_time_in_previous: Duration::ZERO,
            block_on: Severity::Critical,
        }
    }
}

/// How strictly a pair of environments must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Not compared.
    Ignore,
    /// An earlier stage may run ahead: drift is info.
    Relaxed,
    /// Drift is a warning.
    Standard,
    /// What runs in the later stage must be what ran in the earlier one:
    /// content drift is critical, config drift a warning.
    Strict,
}

/// An explicit level for one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRule {
    /// The two environments (order does not matter).
    pub environments: [String; 2],
    /// How strictly they must match.
    pub level: Level,
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
}

/// An accepted difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The kind it accepts.
    pub kind: Kind,
    /// The service (empty or absent: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// The env key, runtime setting or reference (absent: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The host, for per-host kinds (absent: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The environments (absent: any); a finding matches when its
    /// environments are exactly these.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub environments: BTreeSet<String>,
    /// Why it is accepted.
    pub reason: String,
    /// Who accepted it.
    pub owner: String,
    /// When it stops applying (RFC 3339, or a date meaning its midnight UTC).
    #[serde(with = "instant")]
    pub expires: SystemTime,
}

impl Waiver {
    /// Whether it is about `finding` (expired or not).
    pub fn matches(&self, finding: &Finding) -> bool {
        let id = finding.identity();
        self.kind == finding.kind
            && (self.service.is_empty() || self.service == finding.service)
            && (self.key.is_empty() || self.key == finding.key)
            && (self.host.is_empty() || self.host == finding.host)
            && (self.environments.is_empty() || self.environments.iter().eq(id.environments.iter()))
    }
}

impl Default for Policy {
    fn default() -> Self {
        let stage = |names: &[&str]| Stage(names.iter().map(|s| (*s).to_owned()).collect());
        Policy {
            grace: Duration::ZERO,
            alert_grace: Duration::from_secs(5 * 60),
            chain: vec![
                stage(&["dev", "development"]),
                stage(&["staging", "stage"]),
                stage(&["prod", "production"]),
            ],
            pinning: Pinning::default(),
            env: EnvRules::default(),
            runtime: RuntimeRules::default(),
            gate: GateRules::default(),
            severity: BTreeMap::new(),
            pairs: Vec::new(),
            services: BTreeMap::new(),
            waivers: Vec::new(),
        }
    }
}

/// The stand-in for the last stage of the chain present in the fleet.
pub const LAST_STAGE: &str = "@last_stage";

impl Default for Pinning {
    fn default() -> Self {
        Pinning {
            required: vec![LAST_STAGE.to_owned()],
            elsewhere: Report::Info,
        }
    }
}

impl Policy {
    /// Parses and validates a policy; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let error = |message: String| PolicyError {
            origin: origin.to_owned(),
            message,
        };
        let policy: Policy = toml::from_str(text).map_err(|e| error(describe(&e, text)))?;
        policy.validate(text).map_err(error)?;
        Ok(policy)
    }

    /// The policy as TOML, as `policy show` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render the policy: {e}\n"))
    }

    fn validate(&self, text: &str) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        for (i, stage) in self.chain.iter().enumerate() {
            if stage.0.is_empty() {
                return Err(format!("chain[{i}]: a stage needs at least one name"));
            }
            for name in &stage.0 {
                validate_environment(name).map_err(|e| format!("chain[{i}]: {e}"))?;
                if let Some(other) = seen.insert(name.clone(), i) {
                    return Err(format!(
                        "chain[{i}]: environment {name:?} is already stage {other}"
                    ));
                }
            }
        }
        let env_name = |what: String, name: &str| -> Result<(), String> {
            if name == LAST_STAGE {
                return Ok(());
            }
            validate_environment(name).map_err(|e| format!("{what}: {e}"))
        };
        for name in &self.pinning.required {
            env_name("pinning.required".into(), name)?;
        }
        for (i, pair) in self.pairs.iter().enumerate() {
            for name in &pair.environments {
                env_name(format!("pairs[{i}].environments"), name)?;
            }
            if pair.environments[0] == pair.environments[1] {
                return Err(format!(
                    "pairs[{i}].environments: names the same environment twice ({:?})",
                    pair.environments[0]
                ));
            }
        }
        for (service, rules) in &self.services {
            for name in rules.environments.iter().flatten() {
                env_name(format!("services.{service}.environments"), name)?;
            }
        }
        for (i, w) in self.waivers.iter().enumerate() {
            let at = table_line(text, "waivers", i)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            for (field, value) in [("reason", &w.reason), ("owner", &w.owner)] {
                if value.trim().is_empty() {
                    return Err(format!(
                        "{at}waivers[{i}] ({}): `{field}` is empty; every waiver needs a reason and an owner",
                        w.kind
                    ));
                }
            }
            if w.environments.len() > 2 {
                return Err(format!(
                    "{at}waivers[{i}] ({}): `environments` names {} environments; a finding concerns one or two",
                    w.kind,
                    w.environments.len()
                ));
            }
            for name in &w.environments {
                env_name(format!("{at}waivers[{i}].environments"), name)?;
            }
        }
        Ok(())
    }

    /// The chain stage of an environment name.
    pub fn stage_of(&self, name: &str) -> Option<usize> {
        self.chain
            .iter()
            .position(|s| s.0.iter().any(|n| n == name))
    }

    /// Promotion order: chain stages first, then other names alphabetically.
    pub fn compare(&self, a: &str, b: &str) -> Ordering {
        match (self.stage_of(a), self.stage_of(b)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        }
    }

    /// Sorts and de-duplicates environment names in promotion order.
    pub fn ordered<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut v: Vec<String> = names.into_iter().map(Into::into).collect();
        v.sort_by(|a, b| self.compare(a, b));
        v.dedup();
        v
    }

    /// The chain stages present in `fleet`, earliest first.
    fn stages_present(&self, fleet: &[String]) -> Vec<usize> {
        let mut stages: Vec<usize> = fleet.iter().filter_map(|e| self.stage_of(e)).collect();
        stages.sort_unstable();
        stages.dedup();
        stages
    }

    /// How strictly `a` and `b` must match, given every environment in the
    /// fleet. Explicit `[[pairs]]` win; otherwise the last two chain stages
    /// present are strict, earlier chain pairs relaxed, anything involving a
    /// name outside the chain standard.
    pub fn level(&self, a: &str, b: &str, fleet: &[String]) -> Level {
        if let Some(rule) = self.pairs.iter().find(|p| {
            let [x, y] = &p.environments;
            (x == a && y == b) || (x == b && y == a)
        }) {
            return rule.level;
        }
        let (Some(sa), Some(sb)) = (self.stage_of(a), self.stage_of(b)) else {
            return Level::Standard;
        };
        if sa == sb {
            return Level::Standard;
        }
        match self.stages_present(fleet).as_slice() {
            [.., x, y] if (sa.min(sb), sa.max(sb)) == (*x, *y) => Level::Strict,
            [_, _, ..] => Level::Relaxed,
            _ => Level::Standard,
        }
    }

    /// The environment of the fleet in the stage before `env`'s, if any.
    pub fn previous_stage(&self, env: &str, fleet: &[String]) -> Option<String> {
        let stage = self.stage_of(env)?;
        fleet
            .iter()
            .filter(|e| self.stage_of(e).is_some_and(|s| s < stage))
            .max_by(|x, y| self.compare(x, y))
            .cloned()
    }

    /// Whether a service is ignored entirely.
    pub fn service_ignored(&self, service: &str) -> bool {
        self.services.get(service).is_some_and(|r| r.ignore)
    }

    /// Whether an env key of a service is ignored.
    pub fn env_ignored(&self, service: &str, key: &str) -> bool {
        self.env.ignored.contains(key)
            || self
                .services
                .get(service)
                .is_some_and(|r| r.ignored_env.contains(key))
    }

    /// Whether an env key of a service may differ between environments.
    pub fn expected_to_differ(&self, service: &str, key: &str) -> bool {
        self.env.expected_to_differ.contains(key)
            || self
                .services
                .get(service)
                .is_some_and(|r| r.expected_to_differ.contains(key))
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

    /// How serious an unpinned image in `env` is; `None`: not reported.
    pub fn unpinned_severity(&self, env: &str, fleet: &[String]) -> Option<Severity> {
        let last = self
            .stages_present(fleet)
            .last()
            .copied()
            .filter(|_| self.pinning.required.iter().any(|r| r == LAST_STAGE));
        let required = self.pinning.required.iter().any(|r| r == env)
            || last.is_some_and(|s| self.stage_of(env) == Some(s));
        if required {
            Some(Severity::Warning)
        } else {
            self.pinning.elsewhere.severity()
        }
    }

    /// The severity of a finding of `kind`: the override if the policy has
    /// one, else `default`.
    pub fn severity_of(&self, kind: Kind, default: Severity) -> Severity {
        self.severity.get(&kind).copied().unwrap_or(default)
    }

    /// The waiver that matches `finding`: an unexpired one if any, else the
    /// most recently expired one (so the finding can say it expired).
    pub fn waiver_for(&self, finding: &Finding, now: SystemTime) -> Option<&Waiver> {
        let matching = self.waivers.iter().filter(|w| w.matches(finding));
        let (live, expired): (Vec<&Waiver>, Vec<&Waiver>) = matching.partition(|w| w.expires > now);
        live.into_iter()
            .max_by_key(|w| w.expires)
            .or_else(|| expired.into_iter().max_by_key(|w| w.expires))
    }
}

/// A TOML error as one line: "line 3, column 9: <message> (near `<text>`)".
pub(crate) fn describe(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => format!("{}: {message}", position(text, span.start)),
        None => message.to_owned(),
    }
}

/// "line L, column C (near `…`)" for a byte offset of `text`.
fn position(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[start..].chars().count() + 1;
    let content: String = text[start..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(60)
        .collect();
    format!("line {line}, column {column} (near `{content}`)")
}

/// The line of the `nth` (0-based) `[[table]]` header, for errors found
/// after parsing.
fn table_line(text: &str, table: &str, nth: usize) -> Option<usize> {
    let header = format!("[[{table}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&header))
        .nth(nth)
        .map(|(i, _)| i + 1)
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            One(String),
            Many(Vec<String>),
        }
        match Repr::deserialize(d) {
            Ok(Repr::One(name)) => Ok(Stage(vec![name])),
            Ok(Repr::Many(names)) => Ok(Stage(names)),
            Err(_) => Err(serde::de::Error::custom(
                "a chain stage is an environment name or a list of names",
            )),
        }
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Kind);
string_serde!(Severity);

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ignore => "ignore",
            Level::Relaxed => "relaxed",
            Level::Standard => "standard",
            Level::Strict => "strict",
        })
    }
}

/// Durations as humantime strings ("0s", "5m", "1h 30m").
pub(crate) mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (examples: \"0s\", \"90s\", \"5m\", \"2h\")"
            ))
        })
    }
}

/// Instants as RFC 3339 strings, TOML datetimes, or dates (midnight UTC).
mod instant {
    use super::*;

    /// Whole seconds, or nanoseconds when the instant has a fraction of a
    /// second, so that what `policy show` prints parses back to the same
    /// instant.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Repr::deserialize(d) {
            Ok(Repr::Text(s)) => s,
            Ok(Repr::Toml(dt)) => dt.to_string(),
            Err(_) => {
                return Err(serde::de::Error::custom(
                    "expected a date or time such as 2027-01-31 or 2027-01-31T12:00:00Z",
                ));
            }
        };
        parse_instant(&text).map_err(serde::de::Error::custom)
    }

    pub(super) fn parse_instant(text: &str) -> Result<SystemTime, String> {
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        humantime::parse_rfc3339(&full).map_err(|e| {
            format!("invalid time {text:?}: {e} (examples: 2027-01-31, 2027-01-31T12:00:00Z)")
        })
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
