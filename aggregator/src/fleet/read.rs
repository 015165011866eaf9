//! The read model: what queries, alerting and metrics read of the fleet,
//! and how an open finding is shown (judged with the policy, its stale
//! hosts as of now).

#[cfg(test)]
use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envparity_proto::v1::{HostState, StatusCell};

use super::compact::HeldHost;
use super::index::{Inner, Refusal};
#[cfg(test)]
use super::listing::concerns;
use super::listing::{FindingsPage, Listing, Window};
use super::{Fleet, LoadedPolicy};
use crate::parity::{
    self, Entry, Finding, FindingKey, HostView, Kind, Policy, Position, Scope, State, Tally, judge,
    judged_state,
};
#[cfg(test)]
use crate::store::StoredHost;

/// A consistent copy of the fleet: the read model before [`Reading`], kept
/// for tests as the reference a [`Reading`] must answer like.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct FleetView {
    /// Every host, by id, with its state.
    pub hosts: Vec<(StoredHost, HostState)>,
    /// Why the hosts whose state is [`HostState::Refused`] were refused.
    pub refusals: HashMap<String, Refusal>,
    /// The hosts not heard from within `stale_after`, refused ones too.
    pub stale: BTreeSet<String>,
    /// The policy in force.
    pub policy: Arc<LoadedPolicy>,
    /// The open findings as of the last evaluation.
    pub open: Vec<Entry>,
    /// When the view was taken.
    pub now: SystemTime,
}

/// Engine views of `hosts`, each current when its state is fresh and stale
/// when it is stale.
pub(super) fn host_views<'a>(
    hosts: impl IntoIterator<Item = (&'a HeldHost, HostState)>,
) -> Vec<HostView<'a>> {
    hosts
        .into_iter()
        .map(|(h, state)| host_view(h, state == HostState::Fresh, state == HostState::Stale))
        .collect()
}

/// The engine's views of `hosts`, each reading only the containers at the
/// positions given with it ([`super::overlay::Next::replicas_of`]).
pub(super) fn host_views_of<'a>(
    hosts: impl IntoIterator<Item = (&'a HeldHost, HostState, &'a [u32])>,
) -> Vec<HostView<'a>> {
    hosts
        .into_iter()
        .map(|(h, state, running)| HostView {
            only: Some(running),
            ..host_view(h, state == HostState::Fresh, state == HostState::Stale)
        })
        .collect()
}

/// The engine's view of `host`: `current` decides whether findings name it
/// among their stale hosts, `stale` whether it is a `stale_host` finding.
fn host_view(host: &HeldHost, current: bool, stale: bool) -> HostView<'_> {
    HostView {
        host_id: &host.snapshot.host_id,
        environment: &host.snapshot.environment,
        current,
        stale,
        last_seen: host.last_seen,
        snapshot: &host.snapshot,
        held: Some(&host.containers),
        only: None,
    }
}

#[cfg(test)]
impl FleetView {
    /// Engine views of the hosts, read from their whole snapshots (the
    /// engine's input before the fleet held hosts compact: the reference).
    pub fn host_views(&self) -> Vec<HostView<'_>> {
        self.hosts
            .iter()
            .map(|(h, state)| HostView {
                host_id: &h.snapshot.host_id,
                environment: &h.snapshot.environment,
                current: *state == HostState::Fresh,
                stale: self.stale.contains(&h.snapshot.host_id),
                last_seen: h.last_seen,
                snapshot: &h.snapshot,
                held: None,
                only: None,
            })
            .collect()
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy.policy
    }

    /// The environments present, in promotion order.
    pub fn environments(&self) -> Vec<String> {
        self.policy().ordered(
            self.hosts
                .iter()
                .map(|(h, _)| h.snapshot.environment.as_str()),
        )
    }

    /// The services present, sorted.
    pub fn services(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .hosts
            .iter()
            .flat_map(|(h, _)| {
                h.snapshot
                    .containers
                    .iter()
                    .filter_map(|c| c.service.as_ref().map(|s| s.name.as_str()))
            })
            .collect();
        set.into_iter().map(str::to_owned).collect()
    }

    /// The hosts whose data is not current.
    fn not_current(&self) -> BTreeSet<&str> {
        self.hosts
            .iter()
            .filter(|(_, s)| *s != HostState::Fresh)
            .map(|(h, _)| h.snapshot.host_id.as_str())
            .collect()
    }

    /// Every open finding (every pair, in promotion order), judged with the
    /// policy's CLI grace, optionally for one service only (host-level
    /// findings are always included).
    pub fn findings(&self, service: Option<&str>) -> Vec<Finding> {
        let stale = self.not_current();
        let mut out: Vec<Finding> = self
            .open
            .iter()
            .filter(|e| concerns(&e.finding, service))
            .map(|e| judged(e, |h| stale.contains(h), self.policy(), self.now))
            .collect();
        parity::sort(&mut out, self.policy());
        out
    }
}

/// An open finding as a query shows it: which of its hosts are not current
/// (`not_current`) as of now, not as of its last evaluation, and judged with
/// the policy's CLI grace.
fn judged(
    entry: &Entry,
    not_current: impl Fn(&str) -> bool,
    policy: &Policy,
    now: SystemTime,
) -> Finding {
    let mut f = entry.finding.clone();
    for side in std::iter::once(&mut f.a).chain(f.b.as_mut()) {
        side.stale_hosts = side
            .hosts
            .iter()
            .filter(|h| not_current(h))
            .cloned()
            .collect();
    }
    judge(
        f,
        Some((entry.first_seen, entry.last_seen)),
        policy,
        policy.grace,
        now,
    )
}

/// What the findings of a listing weigh ([`Reading::weigh`]).
#[derive(Debug, Default)]
pub struct Weight<'r> {
    /// All of them, by severity and state.
    pub tally: Tally,
    /// The cells a finding that counts concerns: service → environments.
    pub drifting: BTreeMap<&'r str, BTreeSet<&'r str>>,
    /// Those that involve each environment (when asked for).
    pub environments: BTreeMap<&'r str, Tally>,
}

/// The fleet under its read lock: the one read model of queries. Nothing
/// is copied up front; an answer reads the indexes and the status grid,
/// and clones only what it returns (hosts of one environment or service,
/// the ledger entries it shows, judged; it still filters every open entry:
/// a comparison each, no allocation). Hold it only while computing an
/// answer (it keeps ingest from applying a report), never across an
/// `.await`.
#[derive(Debug)]
pub struct Reading<'a> {
    fleet: &'a Fleet,
    inner: std::sync::RwLockReadGuard<'a, Inner>,
    policy: Arc<LoadedPolicy>,
    now: SystemTime,
    /// The hosts whose data is not current at `now` (usually few).
    pub(super) not_current: BTreeSet<String>,
    /// Service -> the environments where a host running it is not current.
    stale_cells: BTreeMap<String, BTreeSet<String>>,
}

impl Reading<'_> {
    /// When the reading was taken.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy.policy
    }

    /// The policy, with where it came from, to keep after the reading.
    pub fn loaded_policy(&self) -> Arc<LoadedPolicy> {
        Arc::clone(&self.policy)
    }

    /// The environments present, in promotion order.
    pub fn environments(&self) -> Vec<String> {
        self.policy().ordered(self.inner.by_environment.keys())
    }

    /// The services present, sorted.
    pub fn services(&self) -> Vec<String> {
        self.inner.by_service.keys().cloned().collect()
    }

    /// The services `status` has a row for (a managed replica runs them
    /// somewhere; an unmanaged container is no service), sorted, without
    /// copying them.
    pub fn row_names(&self) -> impl Iterator<Item = &str> {
        self.inner.grid.services()
    }

    /// Whether `status` has a row for `service` (see [`Reading::row_names`]).
    pub fn has_row(&self, service: &str) -> bool {
        self.inner.grid.has_row(service)
    }

    /// Whether `service` has a replica in `environment`.
    pub fn has_cell(&self, service: &str, environment: &str) -> bool {
        self.inner.grid.has(service, environment)
    }

    /// Whether a host runs `service`.
    pub fn runs(&self, service: &str) -> bool {
        self.inner.by_service.contains_key(service)
    }

    /// Every host, by id, with the state it is shown in.
    pub fn hosts(&self) -> impl Iterator<Item = (&HeldHost, HostState)> {
        self.inner.hosts.values().map(|h| (h, self.state(h)))
    }

    /// The hosts of `environment`, by id, with their states.
    pub fn hosts_in(&self, environment: &str) -> impl Iterator<Item = (&HeldHost, HostState)> {
        self.members(&self.inner.by_environment, environment)
    }

    /// The hosts running `service`, by id, with their states.
    pub fn hosts_running(&self, service: &str) -> impl Iterator<Item = (&HeldHost, HostState)> {
        self.members(&self.inner.by_service, service)
    }

    fn members<'s>(
        &'s self,
        index: &'s BTreeMap<String, BTreeSet<String>>,
        name: &str,
    ) -> impl Iterator<Item = (&'s HeldHost, HostState)> + use<'s> {
        index
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.inner.hosts.get(id))
            .map(|h| (h, self.state(h)))
    }

    /// The state `host` is shown in: refused, stale, engine unreachable or
    /// fresh.
    pub fn state(&self, host: &HeldHost) -> HostState {
        self.fleet.shown_state(&self.inner, host, self.now)
    }

    /// Why `host_id`'s latest report was refused, when it was.
    pub fn refusal(&self, host_id: &str) -> Option<&Refusal> {
        self.inner.refusals.get(host_id)
    }

    /// Every open finding (every pair, in promotion order), judged with the
    /// policy's CLI grace, optionally for one service only (host-level
    /// findings are always included): what [`FleetView::findings`] says.
    pub fn findings(&self, service: Option<&str>) -> Vec<Finding> {
        self.page(&Listing::every_pair(service), None).findings
    }

    /// The findings of `a` against `b` in that orientation (optionally for
    /// one service; host-level findings always): see [`Listing::pair`].
    pub fn diff(&self, a: &str, b: &str, service: Option<&str>) -> Vec<Finding> {
        self.page(&Listing::pair(a, b, service), None).findings
    }

    /// A page of `listing`: its findings after `at`'s position, at most
    /// `at`'s limit, judged with the policy's CLI grace; with how many
    /// findings the whole listing holds and what they weigh. The page is
    /// read as ranges of the ledger ([`Reading::range`]); only the findings
    /// shown are copied and sorted. Its weight is still counted over the
    /// whole listing (a pass without copies; only the findings of the
    /// listing's service when it names one).
    pub fn page(&self, listing: &Listing<'_>, at: Option<&Window>) -> FindingsPage {
        let policy = self.policy();
        let after = at.and_then(|at| at.after.as_ref());
        let limit = at.map_or(usize::MAX, |at| at.limit.max(1));
        let mut tally = Tally::default();
        if let Some((a, b)) = listing.pair
            && !self.holds(a, b)
        {
            // Evaluated afresh: every finding is built anyway.
            let mut all = self.evaluate_pair(a, b, listing.service);
            all.retain(|f| listing.shows(f));
            for f in &all {
                tally.add(f.severity, f.status.state);
            }
            let total = all.len();
            all.retain(|f| after.is_none_or(|p| p.precedes(f, policy)));
            let next = (all.len() > limit).then(|| Position::of(&all[limit - 1]));
            all.truncate(limit);
            return FindingsPage {
                findings: all,
                total,
                next,
                tally,
            };
        }
        let mut total = 0;
        for e in self.listed(listing) {
            let state = judged_state(&e.finding, e.first_seen, policy, policy.grace, self.now);
            tally.add(e.finding.severity, state);
            total += 1;
        }
        let (shown, next) = self.range(listing, after, limit);
        FindingsPage {
            findings: shown.into_iter().map(|e| self.judged(e)).collect(),
            total,
            next,
            tally,
        }
    }

    /// The open findings `listing` shows, in identity order; those of its
    /// service only (ranges of the ledger) when it names one.
    fn listed<'r>(&'r self, listing: &'r Listing<'_>) -> Box<dyn Iterator<Item = &'r Entry> + 'r> {
        let ledger = &self.inner.ledger;
        let entries: Box<dyn Iterator<Item = &'r Entry> + 'r> = match listing.service {
            None => Box::new(ledger.entries()),
            Some(service) => Box::new(Kind::ALL.into_iter().flat_map(move |kind| {
                let from = if kind.is_host_level() { "" } else { service };
                ledger
                    .of_kind(kind, from)
                    .take_while(move |e| kind.is_host_level() || e.finding.service == service)
            })),
        };
        Box::new(entries.filter(|e| listing.shows(&e.finding)))
    }

    /// The first `limit` findings `listing` shows after `after`, in report
    /// order, and the place of the last when more follow. The ledger is
    /// read as ranges: kind by kind in report order, from the page's kind
    /// and service on, one service at a time (report order within a kind
    /// and service is that of environments in the policy's promotion
    /// order, so each service's findings are sorted among themselves). A
    /// page reads what it shows, plus the rest of its last service.
    fn range(
        &self,
        listing: &Listing<'_>,
        after: Option<&Position>,
        limit: usize,
    ) -> (Vec<&Entry>, Option<Position>) {
        let policy = self.policy();
        let ledger = &self.inner.ledger;
        let order = |x: &&Entry, y: &&Entry| parity::order(&x.finding, &y.finding, policy);
        let mut shown: Vec<&Entry> = Vec::new();
        let mut group: Vec<&Entry> = Vec::new();
        let kinds = Kind::ALL
            .into_iter()
            .filter(|k| after.is_none_or(|p| k.rank() >= p.kind.rank()));
        for kind in kinds {
            let only = listing.service.filter(|_| !kind.is_host_level());
            let from = match (after, only) {
                (Some(p), _) if p.kind == kind => p.service.as_str().max(only.unwrap_or("")),
                (_, Some(service)) => service,
                _ => "",
            };
            let mut entries = ledger.of_kind(kind, from).peekable();
            while let Some(first) = entries.next() {
                let service = first.finding.service.as_str();
                if only.is_some_and(|s| s != service) {
                    break;
                }
                group.clear();
                group.extend(
                    std::iter::once(first)
                        .chain(std::iter::from_fn(|| {
                            entries.next_if(|e| e.finding.service == service)
                        }))
                        .filter(|e| {
                            listing.shows(&e.finding)
                                && after.is_none_or(|p| p.precedes(&e.finding, policy))
                        }),
                );
                group.sort_by(order);
                for e in group.drain(..) {
                    if shown.len() == limit {
                        let next = shown.last().map(|last| Position::of(&last.finding));
                        return (shown, next);
                    }
                    shown.push(e);
                }
            }
        }
        (shown, None)
    }

    /// What the findings `listing` shows weigh, and the cells a finding
    /// that counts concerns (service → environments), without copying a
    /// finding or a name: the names are borrowed from the ledger. Entries
    /// come in identity order (kind, then service), so the environments of
    /// a run of one service's entries are gathered first and the map is
    /// looked up once per run, not once per finding: this pass reads every
    /// open finding of every pair on each `status`. With `by_environment`,
    /// also what the findings involving each environment weigh, in the same
    /// pass.
    pub fn weigh<'r>(&'r self, listing: &'r Listing<'_>, by_environment: bool) -> Weight<'r> {
        let policy = self.policy();
        let mut tally = Tally::default();
        let mut environments: BTreeMap<&'r str, Tally> = BTreeMap::new();
        let mut drifting: BTreeMap<&'r str, BTreeSet<&'r str>> = BTreeMap::new();
        // The run being gathered: its service and environments.
        let mut run: (&'r str, Vec<&'r str>) = ("", Vec::new());
        let mut flush = |run: &mut (&'r str, Vec<&'r str>)| {
            if !run.1.is_empty() {
                drifting.entry(run.0).or_default().extend(run.1.drain(..));
            }
        };
        for e in self.listed(listing) {
            let f = &e.finding;
            let state = judged_state(f, e.first_seen, policy, policy.grace, self.now);
            tally.add(f.severity, state);
            if by_environment {
                for env in f.environments() {
                    environments.entry(env).or_default().add(f.severity, state);
                }
            }
            if state == State::Active && !f.kind.is_apart_from_services() {
                if f.service != run.0 {
                    flush(&mut run);
                    run.0 = &f.service;
                }
                for env in f.environments() {
                    if !run.1.contains(&env) {
                        run.1.push(env);
                    }
                }
            }
        }
        flush(&mut run);
        Weight {
            tally,
            drifting,
            environments,
        }
    }

    /// The findings `listing` shows of `services`, and when `apart` those
    /// listed apart from the service rows (host-level kinds, unmanaged
    /// containers: [`Kind::is_apart_from_services`]), judged, in report
    /// order.
    pub fn findings_of(
        &self,
        listing: &Listing<'_>,
        services: &BTreeSet<String>,
        apart: bool,
    ) -> Vec<Finding> {
        let policy = self.policy();
        let ledger = &self.inner.ledger;
        let mut entries: Vec<&Entry> = Vec::new();
        for kind in Kind::ALL {
            if kind.is_apart_from_services() {
                if apart {
                    entries.extend(ledger.of_kind(kind, ""));
                }
                continue;
            }
            for service in services {
                entries.extend(
                    ledger
                        .of_kind(kind, service)
                        .take_while(|e| e.finding.service == *service),
                );
            }
        }
        entries.retain(|e| listing.shows(&e.finding));
        entries.sort_by(|x, y| parity::order(&x.finding, &y.finding, policy));
        entries.iter().map(|e| self.judged(e)).collect()
    }

    /// How many hosts (of `environment`, if given) are shown in each state;
    /// states with no host are left out. Over the whole fleet, only the
    /// hosts not current are looked at (the others are fresh).
    pub fn host_states(&self, environment: Option<&str>) -> BTreeMap<HostState, usize> {
        let mut states = BTreeMap::new();
        match environment {
            None => {
                let fresh = self.inner.hosts.len() - self.not_current.len();
                if fresh > 0 {
                    states.insert(HostState::Fresh, fresh);
                }
                for h in self
                    .not_current
                    .iter()
                    .filter_map(|id| self.inner.hosts.get(id))
                {
                    *states.entry(self.state(h)).or_default() += 1;
                }
            }
            Some(env) => {
                for (_, state) in self.hosts_in(env) {
                    *states.entry(state).or_default() += 1;
                }
            }
        }
        states
    }

    /// Whether the ledger evaluates `a` against `b` in that orientation (a
    /// pair of [`Scope::all`]: earlier stage first).
    fn holds(&self, a: &str, b: &str) -> bool {
        Scope::all(self.policy(), &self.environments())
            .pairs
            .iter()
            .any(|(x, y)| x == a && y == b)
    }

    /// `a` against `b` evaluated afresh over the hosts of `a` and `b`, plus
    /// one host of every other environment (the environments present decide
    /// the pair's level), judged with what the ledger knows of each.
    fn evaluate_pair(&self, a: &str, b: &str, service: Option<&str>) -> Vec<Finding> {
        let policy = self.policy();
        let by_environment = &self.inner.by_environment;
        let mut ids: BTreeSet<&str> = [a, b]
            .iter()
            .filter_map(|e| by_environment.get(*e))
            .flatten()
            .map(String::as_str)
            .collect();
        ids.extend(
            by_environment
                .values()
                .filter_map(|hosts| hosts.first())
                .map(String::as_str),
        );
        let hosts = ids.iter().filter_map(|id| self.inner.hosts.get(*id));
        // As the ledger's answer shows them: not current when shown other
        // than fresh (refused ones too), stale when not heard from in time.
        let views: Vec<HostView<'_>> = hosts
            .map(|h| {
                let stale = self.fleet.state_of(h, self.now) == HostState::Stale;
                host_view(h, self.state(h) == HostState::Fresh, stale)
            })
            .collect();
        let scope = Scope::pair(a, b).with_service(service.map(str::to_owned));
        parity::evaluate(&views, policy, &scope)
            .into_iter()
            .map(|f| {
                let seen = self
                    .inner
                    .ledger
                    .get(&f.identity())
                    .map(|e| (e.first_seen, e.last_seen));
                judge(f, seen, policy, policy.grace, self.now)
            })
            .collect()
    }

    /// The status cell of `service` in `environment`, `stale` filled in and
    /// `drift` left for the caller (which knows the findings); `None` when
    /// the service has no replica there.
    pub fn cell(&self, service: &str, environment: &str) -> Option<StatusCell> {
        let mut cell = self.inner.grid.cell(service, environment)?;
        cell.stale = self
            .stale_cells
            .get(service)
            .is_some_and(|envs| envs.contains(environment));
        Some(cell)
    }

    fn judged(&self, entry: &Entry) -> Finding {
        judged(
            entry,
            |h| self.not_current.contains(h),
            self.policy(),
            self.now,
        )
    }
}

impl Fleet {
    /// Counts what `/metrics` shows, under the read lock and copying
    /// nothing: calls `host` with each host's environment and the state it
    /// is shown in, and `finding` with each open finding and the state
    /// `status` shows it in (judged with the policy's CLI grace).
    pub fn census(
        &self,
        now: SystemTime,
        mut host: impl FnMut(&str, HostState),
        mut finding: impl FnMut(&Finding, State),
    ) {
        let loaded = self.policy();
        let policy = &loaded.policy;
        let inner = self.read();
        for h in inner.hosts.values() {
            host(&h.snapshot.environment, self.shown_state(&inner, h, now));
        }
        for e in inner.ledger.entries() {
            let state = judged_state(&e.finding, e.first_seen, policy, policy.grace, now);
            finding(&e.finding, state);
        }
    }

    /// The fleet under its read lock at `now`, for `status` and `diff`
    /// (see [`Reading`]).
    pub fn reading(&self, now: SystemTime) -> Reading<'_> {
        let inner = self.read();
        let mut not_current = BTreeSet::new();
        let mut stale_cells: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for h in inner
            .hosts
            .values()
            .filter(|h| self.shown_state(&inner, h, now) != HostState::Fresh)
        {
            not_current.insert(h.snapshot.host_id.clone());
            for service in h.managed_services() {
                if !stale_cells
                    .get(service)
                    .is_some_and(|envs| envs.contains(&h.snapshot.environment))
                {
                    stale_cells
                        .entry(service.to_owned())
                        .or_default()
                        .insert(h.snapshot.environment.clone());
                }
            }
        }
        Reading {
            fleet: self,
            inner,
            policy: self.policy(),
            now,
            not_current,
            stale_cells,
        }
    }

    /// A consistent copy of every host with its state at `now`, the policy
    /// and the open findings (the reference for tests).
    #[cfg(test)]
    pub fn view(&self, now: SystemTime) -> FleetView {
        let inner = self.read();
        let hosts = inner
            .hosts
            .values()
            .map(|h| (h.stored(), self.shown_state(&inner, h, now)))
            .collect();
        let stale = inner
            .hosts
            .values()
            .filter(|h| self.state_of(h, now) == HostState::Stale)
            .map(|h| h.snapshot.host_id.clone())
            .collect();
        FleetView {
            hosts,
            refusals: inner.refusals.clone(),
            stale,
            policy: self.policy(),
            open: inner.ledger.entries().cloned().collect(),
            now,
        }
    }

    /// The open findings (every one, or those of `only` that are open)
    /// judged with `grace` at `now` (for alerting, with the policy's
    /// `alert_grace`).
    pub fn judged(
        &self,
        only: Option<&BTreeSet<FindingKey>>,
        grace: impl Fn(&Policy) -> Duration,
        now: SystemTime,
    ) -> Vec<Finding> {
        let loaded = self.policy();
        let policy = &loaded.policy;
        let grace = grace(policy);
        let inner = self.read();
        let entries: Box<dyn Iterator<Item = &Entry>> = match only {
            None => Box::new(inner.ledger.entries()),
            Some(keys) => Box::new(keys.iter().filter_map(|k| inner.ledger.get(k))),
        };
        entries
            .map(|e| {
                judge(
                    e.finding.clone(),
                    Some((e.first_seen, e.last_seen)),
                    policy,
                    grace,
                    now,
                )
            })
            .collect()
    }
}
