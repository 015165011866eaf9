//! The CLI's JSON answers (`-o json`) as typed rows, so an end-to-end test
//! reads `status.services[0].cells` instead of `json["services"][0]["cells"]`.
//!
//! These types are written here, apart from the CLI's own, on purpose: they
//! are a second spelling of the documented JSON contract (docs/json-output.md), so a
//! field the CLI renames or drops fails the parse, naming the field and the
//! command, instead of reading as `null`. Kinds, severities and states stay
//! their wire names (`"image_digest"`, `"critical"`), as scripts see them.
//! Fields no test reads are not spelled; unknown fields are allowed, as the
//! contract allows additions.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cli::CliOutput;

impl CliOutput {
    /// Stdout parsed as the answer `T`; panics showing the whole output when
    /// it is not one.
    #[track_caller]
    pub fn answer<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not a {} answer: {e}\n{self}", std::any::type_name::<T>()))
    }

    /// Stdout parsed as the answer `T`, or `None` (for a wait's condition,
    /// which may see an error before the answer it waits for).
    pub fn try_answer<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.stdout).ok()
    }
}

/// `status`.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    /// The environments, in promotion order.
    pub environments: Vec<String>,
    /// The rows shown (by default the drifting services only).
    pub services: Vec<StatusRow>,
    /// Whether no finding is active.
    pub parity: bool,
    /// The findings of the services shown.
    pub findings: Vec<Finding>,
    /// Which rows: `drifting`, `all` or `selected`.
    pub rows: String,
    /// Services not shown.
    pub services_left_out: u32,
    /// The cursor of the next page, if any.
    pub next_page: Option<String>,
    /// The fleet's counts.
    pub summary: Option<Summary>,
}

/// `status`'s summary of the whole fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Summary {
    /// Services in the fleet.
    pub services: u32,
    /// Services with an active finding.
    pub services_drifting: u32,
    /// Hosts in the fleet.
    pub hosts: u32,
    /// Hosts stale or unreachable.
    pub hosts_not_current: u32,
    /// Findings by severity and state.
    pub findings: Tally,
}

/// Counts of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Tally {
    /// Active critical findings.
    pub critical: u32,
    /// Active warnings.
    pub warning: u32,
    /// Active infos.
    pub info: u32,
    /// Findings still pending.
    pub pending: u32,
    /// Waived findings.
    pub waived: u32,
}

/// One service across the environments.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusRow {
    /// The service.
    pub service: String,
    /// One cell per environment it runs in.
    pub cells: Vec<StatusCell>,
}

/// A service in one environment.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusCell {
    /// The environment.
    pub environment: String,
    /// Containers running it.
    pub replicas: u32,
    /// Their distinct registry digests (or image ids).
    pub digests: Vec<String>,
    /// Their distinct versions.
    pub versions: Vec<String>,
    /// Whether a finding names this cell.
    pub drift: bool,
    /// Whether a host of it is not current.
    pub stale: bool,
}

/// `diff`, `findings` and `check`: findings and whether they pass.
#[derive(Debug, Clone, Deserialize)]
pub struct Findings {
    /// The findings, in the engine's order.
    pub findings: Vec<Finding>,
}

/// `diff`: a page of the findings between two environments.
#[derive(Debug, Clone, Deserialize)]
pub struct Diff {
    /// The findings of this page, in the engine's order.
    pub findings: Vec<Finding>,
    /// How many findings the pair holds.
    pub findings_total: u32,
    /// Findings of the pair not in this page.
    pub findings_left_out: u32,
    /// The token for the next page; `None` on the last.
    pub next_page: Option<String>,
    /// What all the pair's findings weigh.
    pub tally: Tally,
    /// Whether no finding of the pair counts.
    pub parity: bool,
}

/// One finding.
#[derive(Debug, Clone, Deserialize)]
pub struct Finding {
    /// Its stable id.
    pub id: String,
    /// Its kind's wire name, e.g. `image_digest`.
    pub kind: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// `active`, `pending`, `waived` …
    pub state: String,
    /// The service, empty for host-level kinds.
    pub service: String,
    /// The env key, setting or fact compared.
    pub key: String,
    /// The host, for host-level kinds.
    pub host: String,
    /// The first side.
    pub a: Side,
    /// The second side, for kinds comparing two environments.
    pub b: Option<Side>,
    /// What was compared: `registry_digest`, `image_id`, `fingerprint` …
    pub basis: String,
    /// One line for people.
    pub summary: String,
    /// When it was first seen.
    pub first_seen: Option<String>,
    /// The waiver, when waived.
    pub waiver: Option<Waiver>,
}

impl Finding {
    /// The second side, which this kind must have.
    #[track_caller]
    pub fn b(&self) -> &Side {
        self.b
            .as_ref()
            .unwrap_or_else(|| panic!("finding {} has no second side", self.id))
    }
}

/// One side of a finding.
#[derive(Debug, Clone, Deserialize)]
pub struct Side {
    /// The environment.
    pub environment: String,
    /// Its hosts involved.
    pub hosts: Vec<String>,
    /// Those not current.
    pub stale_hosts: Vec<String>,
    /// The values seen (digests, fingerprints, settings).
    pub values: Vec<String>,
}

/// A waiver applied to a finding.
#[derive(Debug, Clone, Deserialize)]
pub struct Waiver {
    /// Who owns it.
    pub owner: String,
    /// Why.
    pub reason: String,
    /// Until when.
    pub expires: Option<String>,
}

/// `explain SERVICE`.
#[derive(Debug, Clone, Deserialize)]
pub struct Explain {
    /// The older side of the pair.
    pub a: ExplainSide,
    /// The newer side.
    pub b: ExplainSide,
    /// Whether both run the same content.
    pub same_content: bool,
    /// Layers the two share, when both images list theirs.
    pub shared_layers: Option<SharedLayers>,
    /// The replicas of both sides with their configuration files.
    #[serde(default)]
    pub replicas: Vec<Replica>,
}

/// One replica of `explain`, with its configuration files.
#[derive(Debug, Clone, Deserialize)]
pub struct Replica {
    /// The environment.
    pub environment: String,
    /// The host.
    pub host_id: String,
    /// Its files; absent when its agent did not read them.
    pub config_files: Option<Vec<ConfigFile>>,
}

/// One configuration file of a replica.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigFile {
    /// Its path in the container.
    pub path: String,
    /// `read`, `not_read` or `not_parsed`.
    pub state: String,
    /// Its key paths, by fingerprint.
    pub keys: Vec<EnvVar>,
}

/// One environment of `explain`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExplainSide {
    /// The environment.
    pub environment: String,
    /// The images it runs.
    pub images: Vec<ExplainImage>,
}

/// One image of `explain`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExplainImage {
    /// Its registry digest.
    pub digest: String,
    /// Its revision label.
    pub revision: String,
}

/// Layers two images share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SharedLayers {
    /// Layers in both.
    pub shared: u32,
    /// Layers of the first.
    pub a_total: u32,
    /// Layers of the second.
    pub b_total: u32,
}

/// `gate`.
#[derive(Debug, Clone, Deserialize)]
pub struct Gate {
    /// Whether the promotion is allowed.
    pub allowed: bool,
    /// The environment before the target.
    pub previous_environment: String,
    /// The digest that would be promoted.
    pub candidate: String,
    /// Since when it runs in the previous environment.
    pub running_since: Option<String>,
    /// Why it is refused.
    pub reasons: Vec<String>,
}

/// `history SERVICE`.
#[derive(Debug, Clone, Deserialize)]
pub struct History {
    /// Image changes, oldest first.
    pub events: Vec<HistoryEvent>,
    /// Finding lifetimes.
    pub findings: Vec<FindingRecord>,
}

/// One image change.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryEvent {
    /// When the agent saw it (RFC 3339).
    pub observed_at: Option<String>,
    /// When the aggregator stored it (RFC 3339).
    pub received_at: Option<String>,
    /// The environment.
    pub environment: String,
    /// The host.
    pub host_id: String,
    /// The container's name.
    pub container: String,
    /// `started`, `changed`, `stopped`.
    pub change: String,
    /// The image after the change.
    pub new_image: String,
}

/// One finding's lifetime.
#[derive(Debug, Clone, Deserialize)]
pub struct FindingRecord {
    /// Its kind's wire name.
    pub kind: String,
    /// When it was resolved, if it was.
    pub resolved_at: Option<String>,
}

/// `hosts`.
#[derive(Debug, Clone, Deserialize)]
pub struct Hosts {
    /// The hosts.
    pub hosts: Vec<Host>,
}

/// One host.
#[derive(Debug, Clone, Deserialize)]
pub struct Host {
    /// Its id.
    pub host_id: String,
    /// Its environment.
    pub environment: String,
    /// `current`, `stale`, `unreachable`, `refused` …
    pub state: String,
    /// Why its last report was refused.
    pub refused_reason: Option<String>,
    /// When.
    pub refused_at: Option<String>,
    /// Containers it runs.
    pub container_count: u32,
    /// Containers it could not report.
    pub containers_dropped: u32,
    /// Its unmanaged containers, by name.
    #[serde(default)]
    pub unmanaged: Vec<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Host facts.
    pub host: BTreeMap<String, String>,
    /// Engine facts.
    pub engine: BTreeMap<String, String>,
}

/// `hosts forget HOST`: the host as it was forgotten.
#[derive(Debug, Clone, Deserialize)]
pub struct Forgotten {
    /// Its id.
    pub host_id: String,
    /// Its environment.
    pub environment: String,
    /// The containers it ran.
    pub container_count: u32,
}

/// `service NAME`.
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Its containers.
    pub instances: Vec<Instance>,
}

/// One container of a service.
#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    /// The environment.
    pub environment: String,
    /// The host.
    pub host_id: String,
    /// The image as referenced.
    pub image_reference: String,
    /// Its explicit env, by fingerprint.
    pub explicit_env: Vec<EnvVar>,
}

/// One explicit env variable.
#[derive(Debug, Clone, Deserialize)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its keyed fingerprint.
    pub fingerprint: String,
    /// Its value, only where the agent was told to send it in clear.
    pub value: Option<String>,
}

/// `alerts`: the alerts firing.
#[derive(Debug, Clone, Deserialize)]
pub struct Alerts {
    /// One per firing finding.
    pub alerts: Vec<Alert>,
}

/// One firing alert.
#[derive(Debug, Clone, Deserialize)]
pub struct Alert {
    /// The finding's id.
    pub id: String,
    /// Its kind's wire name.
    pub kind: String,
}

/// `policy show`.
#[derive(Debug, Clone, Deserialize)]
pub struct PolicyShow {
    /// Where it was loaded from.
    pub source: String,
    /// The effective policy.
    pub toml: String,
}
