//! The re-evaluation plan: from what a change can reach to what the parity
//! engine evaluates, and what of the ledger that answer covers.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::unix_millis;
use envparity_proto::v1::Container;

use super::Fleet;
use super::compact::HeldHost;
use super::overlay::Next;
use super::read::{host_views, host_views_of};
use crate::parity::{self, Cover, Delta, HostLevel, Kind, Ledger, Observation, Scope};
use crate::store::{FindingChanges, FindingRecord, Resolved};

/// What to re-evaluate after a change.
#[derive(Debug, Clone)]
pub(super) enum Reach {
    /// Everything.
    Full,
    /// These services, and the host-level kinds `host_level` says.
    Services {
        services: BTreeSet<String>,
        host_level: HostReach,
    },
    /// Only the host-level kinds (time passing).
    HostLevel,
    /// Only the staleness of these hosts (time passing moved their states).
    StaleOf(BTreeSet<String>),
}

/// Which host-level kinds a batch of reports reaches. Another host's
/// staleness depends on time alone, which the tick ([`Reach::HostLevel`])
/// re-evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum HostReach {
    /// None: the reporting hosts' facts, environments and states are as
    /// they were.
    No,
    /// The staleness of the reporting hosts only: facts, environments or
    /// states changed, but every environment reports the same values of
    /// every host fact as before ([`super::facts::FactIndex`]) and no open
    /// host-fact finding names the environment of a host whose facts
    /// changed, so no comparison of host facts can come out otherwise.
    Reporter,
    /// The host facts compared over every host, and the staleness of the
    /// reporting hosts.
    FactsAndReporter,
}

/// Whether an open finding comparing host facts names `environment` (its
/// sides list that environment's hosts, which a report there changes).
pub(super) fn host_facts_open_in(ledger: &Ledger, environment: &str) -> bool {
    Kind::ALL
        .into_iter()
        .filter(|k| k.is_host_level() && *k != Kind::StaleHost)
        .flat_map(|k| ledger.of_kind(k, ""))
        .any(|e| {
            e.finding.a.environment == environment
                || e.finding
                    .b
                    .as_ref()
                    .is_some_and(|b| b.environment == environment)
        })
}

/// The services a report of a host can change the findings of, from what
/// it held before (`None`: a new host). When `whole_host`, every service it
/// ran or runs: its environment, facts, state or fingerprint key changed,
/// or it was not shown fresh before, and any of those shows in every
/// finding of its services. Otherwise only the services whose containers
/// changed (appeared, went, were renamed or changed content): the engine
/// reads nothing else of a host for a service. Content is compared by its
/// shared copy ([`super::Interner`]), so equal content held twice counts
/// as changed: that re-evaluates more, never less.
pub(super) fn services_touched(
    previous: Option<&HeldHost>,
    record: &HeldHost,
    whole_host: bool,
) -> BTreeSet<String> {
    let Some(previous) = previous.filter(|_| !whole_host) else {
        let mut all: BTreeSet<String> = record.services().map(str::to_owned).collect();
        all.extend(
            previous
                .into_iter()
                .flat_map(|p| p.services().map(str::to_owned)),
        );
        return all;
    };
    // Each replica, (name, shared content), counted +1 before and -1
    // after, with its service: a service is touched when one of its
    // replicas does not cancel out.
    let mut replicas: HashMap<(&str, *const Container), (i32, &str)> =
        HashMap::with_capacity(previous.containers.len() + record.containers.len());
    for (host, one) in [(previous, 1), (record, -1)] {
        for c in &host.containers {
            if let Some(service) = &c.content.service {
                let key = (&*c.name, Arc::as_ptr(&c.content));
                replicas.entry(key).or_insert((0, &service.name)).0 += one;
            }
        }
    }
    replicas
        .into_values()
        .filter(|(count, _)| *count != 0)
        .map(|(_, service)| service.to_owned())
        .collect()
}

impl Fleet {
    /// Re-evaluates `reach` of `fleet` at `now`; returns what that changes
    /// in the ledger.
    pub(super) fn reevaluate(
        &self,
        fleet: &Next<'_>,
        reach: &Reach,
        now: SystemTime,
    ) -> Observation {
        let policy = self.policy();
        let policy = &policy.policy;
        let environments = policy.ordered(fleet.environments());
        let all = Scope::all(policy, &environments);
        let evaluate = |hosts: Vec<&HeldHost>, scope: &Scope| {
            let views = host_views(hosts.into_iter().map(|h| (h, self.state_of(h, now))));
            parity::evaluate(&views, policy, scope)
        };
        // The services' containers only, found through the indexes.
        let evaluate_services = |services: &BTreeSet<String>, scope: &Scope| {
            let replicas = fleet.replicas_of(services);
            let views = host_views_of(
                replicas
                    .iter()
                    .map(|(h, running)| (*h, self.state_of(h, now), running.as_slice())),
            );
            parity::evaluate(&views, policy, scope)
        };
        let host_level_only = all.clone().with_services(BTreeSet::new());
        let reporter: BTreeSet<String> = fleet.reporters();
        let none = BTreeSet::new();
        // What is evaluated, and what of the ledger that answer covers (so
        // that what it no longer finds resolves, and nothing else does).
        let (findings, covers) = match reach {
            Reach::Full => (evaluate(fleet.every_host(), &all), Cover::Everything),
            Reach::HostLevel => (
                evaluate(fleet.every_host(), &host_level_only),
                Cover::Only {
                    services: &none,
                    host_level: HostLevel::All,
                },
            ),
            Reach::StaleOf(hosts) => {
                let scope = host_level_only.clone().with_stale_of(Some(hosts.clone()));
                let mut findings = evaluate(
                    hosts.iter().filter_map(|id| fleet.get(id)).collect(),
                    &scope,
                );
                // The host facts compared over these hosts alone would be
                // partial: their staleness is all this answer covers.
                findings.retain(|f| f.kind == Kind::StaleHost);
                let covers = Cover::Only {
                    services: &none,
                    host_level: HostLevel::OnlyStaleOf(hosts),
                };
                (findings, covers)
            }
            Reach::Services {
                services,
                host_level: HostReach::No,
            } => {
                let scope = all
                    .clone()
                    .with_services(services.clone())
                    .with_host_level(false);
                let findings = evaluate_services(services, &scope);
                let covers = Cover::Only {
                    services,
                    host_level: HostLevel::No,
                };
                (findings, covers)
            }
            Reach::Services {
                services,
                host_level: host_level @ (HostReach::Reporter | HostReach::FactsAndReporter),
            } => {
                let scope = all
                    .clone()
                    .with_services(services.clone())
                    .with_host_level(false);
                let mut findings = evaluate_services(services, &scope);
                // Of the stale hosts, only the reporting ones can have
                // changed; the host facts, compared over every host, only
                // when the report can change what they compare.
                let scope = host_level_only.with_stale_of(Some(reporter.clone()));
                let (hosts, host_level) = if *host_level == HostReach::Reporter {
                    let reporting = fleet.records().collect();
                    (reporting, HostLevel::OnlyStaleOf(&reporter))
                } else {
                    (fleet.every_host(), HostLevel::StaleOf(&reporter))
                };
                findings.extend(evaluate(hosts, &scope));
                let covers = Cover::Only {
                    services,
                    host_level,
                };
                (findings, covers)
            }
        };
        fleet.inner().ledger.assess(findings, covers, now)
    }
}

/// The store's record of what an observation opened and resolved.
pub(super) fn finding_changes(delta: &Delta, now: SystemTime) -> FindingChanges {
    FindingChanges {
        opened: delta
            .opened
            .iter()
            .map(|t| {
                let key = t.finding.identity();
                FindingRecord {
                    id: t.id.clone(),
                    kind: t.finding.kind.as_str().to_owned(),
                    severity: t.finding.severity.as_str().to_owned(),
                    service: t.finding.service.clone(),
                    environments: key.environments,
                    key: t.finding.key.clone(),
                    host: t.finding.host.clone(),
                    summary: t.finding.summary.clone(),
                    first_seen_ms: unix_millis(t.first_seen),
                    last_seen_ms: unix_millis(t.last_seen),
                    resolved_ms: None,
                }
            })
            .collect(),
        resolved: delta
            .resolved
            .iter()
            .map(|t| Resolved {
                id: t.id.clone(),
                last_seen_ms: unix_millis(t.last_seen),
                resolved_ms: unix_millis(now),
            })
            .collect(),
    }
}
