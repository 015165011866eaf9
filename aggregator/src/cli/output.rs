//! The documented JSON/YAML output (docs/json-output.md). Field names follow
//! the proto; enum values are the proto names in snake_case without their
//! prefix (`FINDING_KIND_IMAGE_DIGEST` → `image_digest`).
//!
//! Bump [`SCHEMA_VERSION`] on any incompatible change; adding fields is
//! compatible.

use std::collections::BTreeMap;
use std::time::SystemTime;

use envparity_proto::time::from_timestamp;
use envparity_proto::v1;
use serde::Serialize;

/// Version of the JSON/YAML output schema.
pub const SCHEMA_VERSION: u32 = 1;

/// `FINDING_KIND_IMAGE_DIGEST` → `image_digest`.
fn enum_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

/// A timestamp as RFC 3339 text; `None` when absent, malformed, or after
/// the year 9999, which RFC 3339 cannot write (agents' clocks are theirs:
/// `collected_at` and `started_at` can say anything).
fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    use std::fmt::Write;
    let t = ts.and_then(from_timestamp)?;
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_seconds(t)).ok()?;
    Some(text)
}

/// `hosts` output.
#[derive(Debug, Serialize)]
pub struct Hosts {
    /// Output schema version.
    pub schema_version: u32,
    /// The hosts.
    pub hosts: Vec<Host>,
}

/// One host.
#[derive(Debug, Serialize)]
pub struct Host {
    pub host_id: String,
    pub environment: String,
    /// `fresh`, `stale`, `engine_unreachable` or `refused`.
    pub state: String,
    /// Why the host's latest report was refused (state `refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_reason: Option<String>,
    /// When it was refused (state `refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_at: Option<String>,
    pub last_seen: Option<String>,
    /// Seconds since the aggregator last heard from the host.
    pub last_seen_age_seconds: Option<u64>,
    pub container_count: u32,
    /// Running containers the agent left out of its report.
    pub containers_dropped: u32,
    pub agent_version: String,
    pub labels: BTreeMap<String, String>,
    pub host: HostFacts,
    pub engine: EngineFacts,
}

/// Host facts.
#[derive(Debug, Default, Serialize)]
pub struct HostFacts {
    pub kernel_version: String,
    pub os_id: String,
    pub os_name: String,
    pub os_version: String,
    pub architecture: String,
    pub hostname: String,
}

/// Engine facts.
#[derive(Debug, Default, Serialize)]
pub struct EngineFacts {
    pub server_version: String,
    pub api_version: String,
    pub storage_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub operating_system: String,
    pub os_type: String,
    pub architecture: String,
}

impl Hosts {
    /// From the wire, with ages relative to `now`.
    pub fn from_proto(resp: &v1::ListHostsResponse, now: SystemTime) -> Self {
        let hosts =
            resp.hosts
                .iter()
                .map(|h| {
                    let seen = h.last_seen.as_ref().and_then(from_timestamp);
                    Host {
                        host_id: h.host_id.clone(),
                        environment: h.environment.clone(),
                        state: enum_name(h.state().as_str_name(), "HOST_STATE_"),
                        refused_reason: (!h.refused_reason.is_empty())
                            .then(|| h.refused_reason.clone()),
                        refused_at: rfc3339(h.refused_at.as_ref()),
                        last_seen: rfc3339(h.last_seen.as_ref()),
                        last_seen_age_seconds: seen
                            .map(|t| now.duration_since(t).unwrap_or_default().as_secs()),
                        container_count: h.container_count,
                        containers_dropped: h.containers_dropped,
                        agent_version: h.agent_version.clone(),
                        labels: h
                            .labels
                            .iter()
                            .map(|l| (l.key.clone(), l.value.clone()))
                            .collect(),
                        host: h
                            .host
                            .as_ref()
                            .map_or_else(HostFacts::default, |f| HostFacts {
                                kernel_version: f.kernel_version.clone(),
                                os_id: f.os_id.clone(),
                                os_name: f.os_name.clone(),
                                os_version: f.os_version.clone(),
                                architecture: f.architecture.clone(),
                                hostname: f.hostname.clone(),
                            }),
                        engine: h.engine.as_ref().map_or_else(EngineFacts::default, |e| {
                            EngineFacts {
                                server_version: e.server_version.clone(),
                                api_version: e.api_version.clone(),
                                storage_driver: e.storage_driver.clone(),
                                cgroup_driver: e.cgroup_driver.clone(),
                                cgroup_version: e.cgroup_version.clone(),
                                operating_system: e.operating_system.clone(),
                                os_type: e.os_type.clone(),
                                architecture: e.architecture.clone(),
                            }
                        }),
                    }
                })
                .collect();
        Hosts {
            schema_version: SCHEMA_VERSION,
            hosts,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identity: kind, service, environments, key, host.
    pub id: String,
    /// The kind's stable name (docs/findings.md lists them).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `pending` (inside the grace period), `active` (counts) or `waived`.
    pub state: String,
    /// Empty for host-level kinds.
    pub service: String,
    /// The env key, runtime setting, reference or replica aspect.
    pub key: String,
    /// The host, for per-host kinds (`stale_host`).
    pub host: String,
    pub a: Side,
    /// `null` for single-environment kinds.
    pub b: Option<Side>,
    /// What was compared.
    pub basis: String,
    pub summary: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// The waiver that matched, applied or expired.
    pub waiver: Option<Waiver>,
}

/// A matched waiver.
#[derive(Debug, Clone, Serialize)]
pub struct Waiver {
    pub reason: String,
    pub owner: String,
    pub expires: Option<String>,
    /// True when it expired and the finding counts again.
    pub expired: bool,
}

/// One side of a finding.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub environment: String,
    pub hosts: Vec<String>,
    pub stale_hosts: Vec<String>,
    /// Digests, host facts, settings, or env fingerprints (`fp:…`);
    /// allowlisted env values in clear. Never secret values.
    pub values: Vec<String>,
}

impl Side {
    fn from_proto(s: &v1::FindingSide) -> Self {
        Side {
            environment: s.environment.clone(),
            hosts: s.hosts.clone(),
            stale_hosts: s.stale_hosts.clone(),
            values: s.values.clone(),
        }
    }
}

impl Finding {
    /// From the wire.
    pub fn from_proto(f: &v1::Finding) -> Self {
        Finding {
            id: f.id.clone(),
            kind: enum_name(f.kind().as_str_name(), "FINDING_KIND_"),
            severity: enum_name(f.severity().as_str_name(), "SEVERITY_"),
            state: enum_name(f.state().as_str_name(), "FINDING_STATE_"),
            service: f.service.clone(),
            key: f.key.clone(),
            host: f.host.clone(),
            a: f.a.as_ref().map_or_else(
                || Side::from_proto(&v1::FindingSide::default()),
                Side::from_proto,
            ),
            b: f.b.as_ref().map(Side::from_proto),
            basis: f.basis.clone(),
            summary: f.summary.clone(),
            first_seen: rfc3339(f.first_seen.as_ref()),
            last_seen: rfc3339(f.last_seen.as_ref()),
            waiver: f.waiver.as_ref().map(|w| Waiver {
                reason: w.reason.clone(),
                owner: w.owner.clone(),
                expires: rfc3339(w.expires.as_ref()),
                expired: w.expired,
            }),
        }
    }

    /// Whether it counts: active, not pending or waived.
    pub fn counts(&self) -> bool {
        self.state == "active"
    }
}

/// Whether no finding counts.
fn parity_of(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::counts)
}

/// `diff` output.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub schema_version: u32,
    pub env_a: String,
    pub env_b: String,
    pub service: Option<String>,
    /// True when no finding counts (pending and waived ones do not).
    pub parity: bool,
    pub findings: Vec<Finding>,
}

impl Diff {
    /// From the wire.
    pub fn from_proto(
        env_a: String,
        env_b: String,
        service: Option<String>,
        resp: &v1::GetFindingsResponse,
    ) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        Diff {
            schema_version: SCHEMA_VERSION,
            env_a,
            env_b,
            service,
            parity: parity_of(&findings),
            findings,
        }
    }
}

/// `status` output.
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema_version: u32,
    /// In promotion order (only the one asked for with `--env`).
    pub environments: Vec<String>,
    /// The rows of this answer: the services that drift, then (with
    /// `--all`) the others.
    pub services: Vec<StatusRow>,
    /// True when no finding counts (pending and waived ones do not), in
    /// the whole scope, not only the rows shown.
    pub parity: bool,
    /// The findings of the services shown, and the host-level ones.
    pub findings: Vec<Finding>,
    /// Which rows an answer holds: `drifting` (the default) or `all`.
    pub rows: &'static str,
    /// Rows of the answer not in this page (see `next_page`).
    pub services_left_out: u32,
    /// Give it to `--page` for the next rows; `null` on the last page.
    pub next_page: Option<String>,
    /// The whole scope, whatever the page shows; `null` from an aggregator
    /// older than paged status.
    pub summary: Option<Summary>,
}

/// What a status answer sums up.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub services: u32,
    pub services_drifting: u32,
    pub hosts: u32,
    pub hosts_not_current: u32,
    pub findings: Tally,
}

/// How many findings there are, by what they weigh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Active critical findings.
    pub critical: u32,
    /// Active warnings.
    pub warning: u32,
    /// Active info findings.
    pub info: u32,
    /// In their grace period: they do not count yet.
    pub pending: u32,
    /// Under a waiver that holds: they do not count.
    pub waived: u32,
}

impl Tally {
    /// The tally of `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        let mut t = Tally::default();
        for f in findings {
            let slot = match (f.state.as_str(), f.severity.as_str()) {
                ("pending", _) => &mut t.pending,
                ("waived", _) => &mut t.waived,
                (_, "critical") => &mut t.critical,
                (_, "warning") => &mut t.warning,
                _ => &mut t.info,
            };
            *slot += 1;
        }
        t
    }

    /// From the wire.
    pub fn from_proto(t: &v1::FindingTally) -> Self {
        Tally {
            critical: t.critical,
            warning: t.warning,
            info: t.info,
            pending: t.pending,
            waived: t.waived,
        }
    }

    /// Findings that count.
    pub fn counted(&self) -> u32 {
        self.critical + self.warning + self.info
    }
}

impl Status {
    /// From the wire; `all` when every row was asked for.
    pub fn from_proto(resp: &v1::GetStatusResponse, all: bool) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        let summary = resp.summary.as_ref().map(|s| Summary {
            services: s.services,
            services_drifting: s.services_drifting,
            hosts: s.hosts,
            hosts_not_current: s.hosts_not_current,
            findings: s
                .findings
                .as_ref()
                .map(Tally::from_proto)
                .unwrap_or_default(),
        });
        let shown = u32::try_from(resp.rows.len()).unwrap_or(u32::MAX);
        Status {
            schema_version: SCHEMA_VERSION,
            environments: resp.environments.clone(),
            services: resp
                .rows
                .iter()
                .map(|r| StatusRow {
                    service: r.service.clone(),
                    cells: r
                        .cells
                        .iter()
                        .map(|c| StatusCell {
                            environment: c.environment.clone(),
                            replicas: c.replicas,
                            digests: c.digests.clone(),
                            versions: c.versions.clone(),
                            drift: c.drift,
                            stale: c.stale,
                        })
                        .collect(),
                })
                .collect(),
            // An aggregator older than paged status sends every finding.
            parity: summary
                .as_ref()
                .map_or_else(|| parity_of(&findings), |s| s.findings.counted() == 0),
            findings,
            rows: if all { "all" } else { "drifting" },
            services_left_out: resp.rows_total.saturating_sub(shown),
            next_page: (!resp.next_page.is_empty()).then(|| resp.next_page.clone()),
            summary,
        }
    }
}

/// One service across environments.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub service: String,
    pub cells: Vec<StatusCell>,
}

/// One service in one environment.
#[derive(Debug, Serialize)]
pub struct StatusCell {
    pub environment: String,
    pub replicas: u32,
    pub digests: Vec<String>,
    pub versions: Vec<String>,
    pub drift: bool,
    pub stale: bool,
}

/// `service` output.
#[derive(Debug, Serialize)]
pub struct Service {
    pub schema_version: u32,
    pub service: String,
    pub instances: Vec<Instance>,
}

/// One replica.
#[derive(Debug, Serialize)]
pub struct Instance {
    pub environment: String,
    pub host_id: String,
    pub host_state: String,
    pub container_name: String,
    pub container_id: String,
    pub image_reference: String,
    pub image_id: String,
    pub repo_digests: Vec<String>,
    pub started_at: Option<String>,
    /// Explicit env: names with fingerprints (and clear values only for
    /// allowlisted, non-secret names).
    pub explicit_env: Vec<EnvVar>,
}

/// One env entry.
#[derive(Debug, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Service {
    /// From the wire.
    pub fn from_proto(resp: &v1::GetServiceResponse) -> Self {
        let instances = resp
            .instances
            .iter()
            .map(|i| {
                let c = i.container.clone().unwrap_or_default();
                let img = c.image.clone().unwrap_or_default();
                Instance {
                    environment: i.environment.clone(),
                    host_id: i.host_id.clone(),
                    host_state: enum_name(i.host_state().as_str_name(), "HOST_STATE_"),
                    container_name: c.name.clone(),
                    container_id: c.id.clone(),
                    image_reference: img.reference,
                    image_id: img.image_id,
                    repo_digests: img.repo_digests,
                    started_at: rfc3339(c.started_at.as_ref()),
                    explicit_env: c
                        .explicit_env
                        .iter()
                        .map(|e| EnvVar {
                            name: e.name.clone(),
                            fingerprint: e.fingerprint.clone(),
                            value: e.value.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        Service {
            schema_version: SCHEMA_VERSION,
            service: resp.service.clone(),
            instances,
        }
    }
}

/// `findings` and `check` output.
#[derive(Debug, Serialize)]
pub struct Findings {
    pub schema_version: u32,
    /// The filters applied (`null`: none).
    pub min_severity: Option<String>,
    pub kind: Option<String>,
    pub service: Option<String>,
    /// For `check`: the severity at or above which a finding fails it.
    pub fail_on: Option<String>,
    /// True when no finding here counts (for `check`: none at or above
    /// `fail_on`).
    pub passed: bool,
    pub findings: Vec<Finding>,
}

/// `gate` output.
#[derive(Debug, Serialize)]
pub struct Gate {
    pub schema_version: u32,
    pub service: String,
    pub to: String,
    pub previous_environment: String,
    pub candidate: String,
    pub allowed: bool,
    pub running_since: Option<String>,
    pub min_time_in_previous: String,
    pub reasons: Vec<String>,
    pub blocking: Vec<Finding>,
}

impl Gate {
    /// From the wire.
    pub fn from_proto(service: String, to: String, r: &v1::GateResponse) -> Self {
        let min = r
            .min_time_in_previous
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .unwrap_or_default();
        Gate {
            schema_version: SCHEMA_VERSION,
            service,
            to,
            previous_environment: r.previous_environment.clone(),
            candidate: r.candidate.clone(),
            allowed: r.allowed,
            running_since: rfc3339(r.running_since.as_ref()),
            min_time_in_previous: humantime::format_duration(min).to_string(),
            reasons: r.reasons.clone(),
            blocking: r.blocking.iter().map(Finding::from_proto).collect(),
        }
    }
}

/// `history` output.
#[derive(Debug, Serialize)]
pub struct History {
    pub schema_version: u32,
    pub service: String,
    /// Container changes, oldest first.
    pub events: Vec<HistoryEvent>,
    /// Findings about the service, open and resolved, oldest first.
    pub findings: Vec<FindingRecord>,
    /// Whether older changes exist than `events` shows (raise `--limit`).
    pub older_events_left_out: bool,
    /// Whether older findings exist than `findings` shows.
    pub older_findings_left_out: bool,
}

/// One container change.
#[derive(Debug, Serialize)]
pub struct HistoryEvent {
    pub observed_at: Option<String>,
    pub received_at: Option<String>,
    pub environment: String,
    pub host_id: String,
    pub container: String,
    /// `added`, `removed` or `image_changed`.
    pub change: String,
    pub old_image: String,
    pub new_image: String,
}

/// A finding's lifetime.
#[derive(Debug, Serialize)]
pub struct FindingRecord {
    pub id: String,
    pub kind: String,
    pub severity: String,
    pub service: String,
    pub environments: Vec<String>,
    pub key: String,
    pub host: String,
    pub summary: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// `null` while open.
    pub resolved_at: Option<String>,
}

impl History {
    /// From the wire.
    pub fn from_proto(r: &v1::GetHistoryResponse) -> Self {
        History {
            schema_version: SCHEMA_VERSION,
            service: r.service.clone(),
            events: r
                .events
                .iter()
                .map(|e| HistoryEvent {
                    observed_at: rfc3339(e.observed_at.as_ref()),
                    received_at: rfc3339(e.received_at.as_ref()),
                    environment: e.environment.clone(),
                    host_id: e.host_id.clone(),
                    container: e.container.clone(),
                    change: e.change.clone(),
                    old_image: e.old_image.clone(),
                    new_image: e.new_image.clone(),
                })
                .collect(),
            findings: r
                .findings
                .iter()
                .map(|f| FindingRecord {
                    id: f.id.clone(),
                    kind: enum_name(f.kind().as_str_name(), "FINDING_KIND_"),
                    severity: enum_name(f.severity().as_str_name(), "SEVERITY_"),
                    service: f.service.clone(),
                    environments: f.environments.clone(),
                    key: f.key.clone(),
                    host: f.host.clone(),
                    summary: f.summary.clone(),
                    first_seen: rfc3339(f.first_seen.as_ref()),
                    last_seen: rfc3339(f.last_seen.as_ref()),
                    resolved_at: rfc3339(f.resolved_at.as_ref()),
                })
                .collect(),
            older_events_left_out: r.older_events != 0,
            older_findings_left_out: r.older_findings != 0,
        }
    }
}

/// `explain` output.
#[derive(Debug, Serialize)]
pub struct Explain {
    pub schema_version: u32,
    pub service: String,
    pub a: ExplainSide,
    pub b: ExplainSide,
    /// True when both sides run exactly the same content.
    pub same_content: bool,
    /// Layers shared from the bottom, when each side runs one image.
    pub shared_layers: Option<SharedLayers>,
}

/// One environment's images.
#[derive(Debug, Serialize)]
pub struct ExplainSide {
    pub environment: String,
    pub images: Vec<ExplainImage>,
}

/// What an image says about itself.
#[derive(Debug, Serialize)]
pub struct ExplainImage {
    pub reference: String,
    pub digest: String,
    pub image_id: String,
    pub architecture: String,
    pub created: String,
    /// OCI labels `revision`, `version`, `created`, `base.digest`, `source`
    /// (empty when the image does not set them).
    pub revision: String,
    pub version: String,
    pub created_label: String,
    pub base_digest: String,
    pub source: String,
    pub layer_count: u32,
    pub hosts: Vec<String>,
}

/// Shared layers.
#[derive(Debug, Serialize)]
pub struct SharedLayers {
    /// Layers both images share from the bottom: divergence starts at layer
    /// `shared + 1`.
    pub shared: u32,
    pub a_total: u32,
    pub b_total: u32,
}

impl Explain {
    /// From the wire.
    pub fn from_proto(r: &v1::ExplainResponse) -> Self {
        let side = |s: Option<&v1::ExplainSide>| {
            let s = s.cloned().unwrap_or_default();
            ExplainSide {
                environment: s.environment,
                images: s
                    .images
                    .into_iter()
                    .map(|i| ExplainImage {
                        reference: i.reference,
                        digest: i.digest,
                        image_id: i.image_id,
                        architecture: i.architecture,
                        created: i.created,
                        revision: i.revision,
                        version: i.version,
                        created_label: i.created_label,
                        base_digest: i.base_digest,
                        source: i.source,
                        layer_count: i.layer_count,
                        hosts: i.hosts,
                    })
                    .collect(),
            }
        };
        Explain {
            schema_version: SCHEMA_VERSION,
            service: r.service.clone(),
            a: side(r.a.as_ref()),
            b: side(r.b.as_ref()),
            same_content: r.same_content,
            shared_layers: r.shared_layers.map(|s| SharedLayers {
                shared: s.shared,
                a_total: s.a_total,
                b_total: s.b_total,
            }),
        }
    }
}

/// `hosts forget` output.
#[derive(Debug, Serialize)]
pub struct Forgotten {
    pub schema_version: u32,
    pub host_id: String,
    pub environment: String,
    /// Containers its last snapshot held.
    pub container_count: u32,
    pub last_seen: Option<String>,
}

impl Forgotten {
    /// From the wire.
    pub fn from_proto(r: &v1::ForgetHostResponse) -> Self {
        Forgotten {
            schema_version: SCHEMA_VERSION,
            host_id: r.host_id.clone(),
            environment: r.environment.clone(),
            container_count: r.container_count,
            last_seen: rfc3339(r.last_seen.as_ref()),
        }
    }
}

/// `policy show` output.
#[derive(Debug, Serialize)]
pub struct PolicyShow {
    pub schema_version: u32,
    /// The file it was loaded from, or `built-in defaults`.
    pub source: String,
    pub loaded_at: Option<String>,
    /// The effective policy as TOML.
    pub toml: String,
}

impl PolicyShow {
    /// From the wire.
    pub fn from_proto(r: &v1::GetPolicyResponse) -> Self {
        PolicyShow {
            schema_version: SCHEMA_VERSION,
            source: r.source.clone(),
            loaded_at: rfc3339(r.loaded_at.as_ref()),
            toml: r.toml.clone(),
        }
    }
}

/// `alerts` output.
#[derive(Debug, Serialize)]
pub struct Alerts {
    pub schema_version: u32,
    /// The lowest severity that alerts.
    pub min_severity: String,
    /// The configured sinks, as `name (type)`.
    pub sinks: Vec<String>,
    /// The firing alerts, most severe first.
    pub alerts: Vec<Alert>,
}

/// A firing alert.
#[derive(Debug, Serialize)]
pub struct Alert {
    /// Stable identity (the finding's id).
    pub id: String,
    pub kind: String,
    pub severity: String,
    pub service: String,
    pub env_a: String,
    /// Empty for single-environment kinds.
    pub env_b: String,
    pub host: String,
    pub key: String,
    pub summary: String,
    pub first_seen: Option<String>,
    pub fired_at: Option<String>,
}

impl Alerts {
    /// From the wire.
    pub fn from_proto(r: &v1::ListAlertsResponse) -> Self {
        Alerts {
            schema_version: SCHEMA_VERSION,
            min_severity: enum_name(r.min_severity().as_str_name(), "SEVERITY_"),
            sinks: r.sinks.clone(),
            alerts: r
                .alerts
                .iter()
                .map(|a| Alert {
                    id: a.id.clone(),
                    kind: enum_name(a.kind().as_str_name(), "FINDING_KIND_"),
                    severity: enum_name(a.severity().as_str_name(), "SEVERITY_"),
                    service: a.service.clone(),
                    env_a: a.env_a.clone(),
                    env_b: a.env_b.clone(),
                    host: a.host.clone(),
                    key: a.key.clone(),
                    summary: a.summary.clone(),
                    first_seen: rfc3339(a.first_seen.as_ref()),
                    fired_at: rfc3339(a.fired_at.as_ref()),
                })
                .collect(),
        }
    }
}

/// `check-config` output: the effective settings, never a secret.
#[derive(Debug, Serialize)]
pub struct ConfigCheck {
    pub schema_version: u32,
    /// The file checked.
    pub source: String,
    pub listen: String,
    /// `tls 1.3, client certificates from CA …` or `plain text (…)`.
    pub transport: String,
    /// `5/s per host, bursts of 50`.
    pub report_rate: String,
    pub data_dir: String,
    pub stale_after: String,
    /// The policy file, or `built-in defaults`.
    pub policy: String,
    /// Empty when metrics are off.
    pub metrics_listen: String,
    pub log_format: String,
    pub alert_min_severity: String,
    /// One line per sink: name, type, route (secrets are never shown).
    pub sinks: Vec<String>,
}

impl ConfigCheck {
    /// From a resolved configuration.
    pub fn new(
        source: String,
        c: &crate::server::ServeConfig,
        log_format: crate::config::LogFormat,
    ) -> Self {
        ConfigCheck {
            schema_version: SCHEMA_VERSION,
            source,
            listen: c.listen.to_string(),
            transport: match (&c.tls, c.plaintext) {
                (Some(tls), _) => format!(
                    "tls 1.3 (certificate {}, client certificates from CA {})",
                    tls.cert.display(),
                    tls.client_ca.display()
                ),
                (None, envparity_proto::transport::Plaintext::Anywhere) => format!(
                    "plain text, any address (insecure), at most {} hosts",
                    c.max_plaintext_hosts
                ),
                (None, _) => format!(
                    "plain text, loopback only (insecure), at most {} hosts",
                    c.max_plaintext_hosts
                ),
            },
            report_rate: format!(
                "{}/s per host, bursts of {}",
                c.report_rate.rate, c.report_rate.burst
            ),
            data_dir: c.data_dir.display().to_string(),
            stale_after: humantime::format_duration(c.stale_after).to_string(),
            policy: c.policy.as_ref().map_or_else(
                || "built-in defaults".to_owned(),
                |p| p.display().to_string(),
            ),
            metrics_listen: c.metrics_listen.map(|a| a.to_string()).unwrap_or_default(),
            log_format: match log_format {
                crate::config::LogFormat::Text => "text",
                crate::config::LogFormat::Json => "json",
            }
            .to_owned(),
            alert_min_severity: c.alerts.min_severity.as_str().to_owned(),
            sinks: c
                .alerts
                .sinks
                .iter()
                .map(|s| {
                    let envs: Vec<&str> = s.route.environments.iter().map(String::as_str).collect();
                    format!(
                        "{} ({}): min_severity {}, environments {}",
                        s.name,
                        s.target.type_name(),
                        s.route.min_severity,
                        if envs.is_empty() {
                            "all".to_owned()
                        } else {
                            envs.join(",")
                        }
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_after_the_year_9999_is_absent_not_a_panic() {
        // Found by fuzz/render: an agent's `collected_at` in the year 10000
        // reached `history` as an event time, and formatting it panicked.
        let at = |seconds| rfc3339(Some(&prost_types::Timestamp { seconds, nanos: 0 }));
        assert_eq!(at(253_402_300_799).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(at(253_402_300_800), None);
        assert_eq!(at(i64::MAX), None);
        let history = History::from_proto(&v1::GetHistoryResponse {
            events: vec![v1::HistoryEvent {
                observed_at: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(history.events[0].observed_at, None);
    }

    #[test]
    fn enum_names_are_snake_case_without_prefix() {
        assert_eq!(
            enum_name(
                v1::FindingKind::EnvMissingKey.as_str_name(),
                "FINDING_KIND_"
            ),
            "env_missing_key"
        );
        assert_eq!(
            enum_name(
                v1::HostState::EngineUnreachable.as_str_name(),
                "HOST_STATE_"
            ),
            "engine_unreachable"
        );
        assert_eq!(
            enum_name(v1::Severity::Critical.as_str_name(), "SEVERITY_"),
            "critical"
        );
    }
}
