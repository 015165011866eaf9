//! The aggregator's view of the fleet: the latest snapshot of every host,
//! kept in memory for queries and in the [`Store`] for restarts.
//!
//! Write path (one ingest at a time, so two reports of one host never race):
//! validate → compare with the current record → derive history → re-evaluate
//! the services the report touches (incremental: not the whole fleet) → write
//! the snapshot, its history and the findings it opened or resolved to the
//! store in one transaction → only then update memory and acknowledge. A
//! failed store write leaves both the store and memory as they were.
//!
//! Findings live in a [`Ledger`] (first/last seen); queries read it rather
//! than re-evaluating the fleet. Time alone changes one thing — hosts going
//! stale — which [`Fleet::tick`] re-evaluates.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use envparity_proto::time::{from_unix_millis, unix_millis};
use envparity_proto::v1::{EngineState, HeartbeatRequest, HostSnapshot, HostState, StatusCell};

use super::grid::Grid;
use super::validate::{self, InvalidReport};
use crate::history;
use crate::parity::{
    self, Cover, Delta, Entry, Finding, FindingKey, HostLevel, HostView, Ledger, Observation,
    Policy, Scope, Seen, judge,
};
use crate::store::{FindingChanges, FindingRecord, Resolved, Store, StoreError, StoredHost};

/// Why a report was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The report is malformed; nothing of it was stored.
    #[error(transparent)]
    Invalid(#[from] InvalidReport),
    /// The store failed; nothing of the report was stored.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The blocking store task died.
    #[error("store task failed: {0}")]
    Task(String),
}

/// What happened to a pushed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The content hash now held for the host.
    pub content_hash: String,
    /// True when the report was a replay of one already held.
    pub duplicate: bool,
}

/// The policy in force, with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Its file, or `built-in defaults`.
    pub source: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

impl LoadedPolicy {
    /// The built-in defaults.
    pub fn defaults(now: SystemTime) -> Self {
        LoadedPolicy {
            policy: Policy::default(),
            source: "built-in defaults".to_owned(),
            loaded_at: now,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    hosts: BTreeMap<String, StoredHost>,
    ledger: Ledger,
    /// Service -> the hosts running it: what a service's findings depend on,
    /// so that a report re-evaluates its services without reading every
    /// container of the fleet.
    by_service: BTreeMap<String, BTreeSet<String>>,
    /// Environment -> its hosts: which environments exist (and so which
    /// pairs), without reading every host.
    by_environment: BTreeMap<String, BTreeSet<String>>,
    /// The status grid, kept with the indexes so that `status` reads only
    /// the cells it returns.
    grid: Grid,
    /// The hosts whose `last_seen` here is newer than the store's:
    /// heartbeats acknowledged from memory, for the next liveness commit.
    unstored: HashSet<String>,
    /// When the last liveness commit gathered what it wrote: every
    /// heartbeat acknowledged before then is in the store.
    liveness_stored_at: Option<SystemTime>,
    /// Known hosts whose latest report was refused as invalid, until one of
    /// theirs is stored. In memory only: after a restart a host is shown
    /// refused again at its next refused report.
    refusals: HashMap<String, Refusal>,
}

/// Why a host's latest report was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When.
    pub at: SystemTime,
    /// The validation error, naming the offending part.
    pub reason: String,
}

impl Inner {
    /// Adds (`add`) or removes `snapshot`'s host under each service it runs
    /// and under its environment.
    fn index(&mut self, snapshot: &HostSnapshot, add: bool) {
        let id = &snapshot.host_id;
        for service in services_of(snapshot) {
            file(&mut self.by_service, service, id, add);
        }
        file(&mut self.by_environment, &snapshot.environment, id, add);
        self.grid.file(snapshot, add);
    }

    /// Removes a host the store has forgotten; returns its record.
    fn remove(&mut self, host_id: &str) -> Option<StoredHost> {
        let record = self.hosts.remove(host_id)?;
        let snapshot = Arc::clone(&record.snapshot);
        self.index(&snapshot, false);
        self.refusals.remove(host_id);
        self.unstored.remove(host_id);
        Some(record)
    }

    /// Applies a change whose store write succeeded.
    fn apply(&mut self, change: Change) {
        if let Some(record) = change.record {
            if let Some(prev) = self.hosts.get(&record.snapshot.host_id) {
                let prev = Arc::clone(&prev.snapshot);
                self.index(&prev, false);
            }
            self.index(&record.snapshot, true);
            self.refusals.remove(&record.snapshot.host_id);
            self.hosts.insert(record.snapshot.host_id.clone(), record);
        }
        self.ledger.apply(change.observation);
    }
}

/// Adds (`add`) or removes `host` under `name` in `index`.
fn file(index: &mut BTreeMap<String, BTreeSet<String>>, name: &str, host: &str, add: bool) {
    let hosts = index.entry(name.to_owned()).or_default();
    if add {
        hosts.insert(host.to_owned());
    } else {
        hosts.remove(host);
    }
    if hosts.is_empty() {
        index.remove(name);
    }
}

/// The fleet as it is once a report is applied: `inner` with `record` in
/// place of its host's previous record (or added). Reading through it
/// spares copying the fleet state per report: only what the report
/// touches is looked at, and memory changes only once the store has the
/// report.
struct Next<'a> {
    inner: &'a Inner,
    record: Option<&'a StoredHost>,
}

impl<'a> Next<'a> {
    fn id(&self) -> Option<&'a str> {
        self.record.map(|r| r.snapshot.host_id.as_str())
    }

    fn get(&self, id: &str) -> Option<&'a StoredHost> {
        match self.record {
            Some(r) if r.snapshot.host_id == id => Some(r),
            _ => self.inner.hosts.get(id),
        }
    }

    /// Every host, by id.
    fn every_host(&self) -> Vec<&'a StoredHost> {
        let mut hosts: Vec<&StoredHost> = self
            .inner
            .hosts
            .values()
            .filter(|h| Some(h.snapshot.host_id.as_str()) != self.id())
            .collect();
        if let Some(r) = self.record {
            let at = hosts.partition_point(|h| h.snapshot.host_id < r.snapshot.host_id);
            hosts.insert(at, r);
        }
        hosts
    }

    /// The hosts of `index[name]`, `record`'s host among them when
    /// `with_record`.
    fn members(
        &self,
        index: &'a BTreeMap<String, BTreeSet<String>>,
        name: &str,
        with_record: bool,
    ) -> impl Iterator<Item = &'a str> + use<'a> {
        let id = self.id();
        let held = index
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(move |h| Some(*h) != id);
        held.chain(id.filter(|_| with_record))
    }

    /// The environments that have hosts.
    fn environments(&self) -> BTreeSet<&'a str> {
        let mut out: BTreeSet<&str> = self
            .inner
            .by_environment
            .keys()
            .map(String::as_str)
            .filter(|e| self.first_of(e).is_some())
            .collect();
        out.extend(self.record.map(|r| r.snapshot.environment.as_str()));
        out
    }

    /// The first host (by id) of `environment`.
    fn first_of(&self, environment: &str) -> Option<&'a str> {
        let with = self
            .record
            .is_some_and(|r| r.snapshot.environment == environment);
        // The held hosts come sorted: the first of them that is not the
        // record's host is their least, so this reads one or two of them,
        // not the environment.
        let held = self
            .members(&self.inner.by_environment, environment, false)
            .next();
        held.into_iter().chain(self.id().filter(|_| with)).min()
    }

    /// The hosts running any of `services`, and one host of each
    /// environment: the environments that have hosts decide which pairs
    /// exist, at which level, and whether a service is missing from one.
    fn hosts_for(&self, services: &BTreeSet<String>) -> Vec<&'a StoredHost> {
        let runs = |s: &str| {
            self.record
                .is_some_and(|r| services_of(&r.snapshot).any(|x| x == s))
        };
        let mut ids: BTreeSet<&str> = services
            .iter()
            .flat_map(|s| self.members(&self.inner.by_service, s, runs(s)))
            .collect();
        ids.extend(
            self.environments()
                .into_iter()
                .filter_map(|e| self.first_of(e)),
        );
        ids.iter().filter_map(|id| self.get(id)).collect()
    }
}

/// What a report (or time passing, or a new policy) changes in memory,
/// computed against the current state and applied ([`Inner::apply`]) once
/// the store has it.
#[derive(Debug, Default)]
struct Change {
    /// The host's new record.
    record: Option<StoredHost>,
    /// What the re-evaluation changes in the ledger.
    observation: Observation,
}

/// The open findings whose entry changed since alerting last asked
/// ([`Fleet::take_changed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Everything may have changed (at start, after a new policy, or when
    /// alerting could not record what it saw): judge every open finding.
    pub everything: bool,
    /// Otherwise, these.
    pub keys: BTreeSet<FindingKey>,
}

impl Default for Changed {
    fn default() -> Self {
        Changed::everything()
    }
}

impl Changed {
    /// Everything.
    pub fn everything() -> Self {
        Changed {
            everything: true,
            keys: BTreeSet::new(),
        }
    }

    /// Nothing.
    pub fn nothing() -> Self {
        Changed {
            everything: false,
            keys: BTreeSet::new(),
        }
    }

    fn add<'a>(&mut self, keys: impl IntoIterator<Item = &'a FindingKey>) {
        if !self.everything {
            self.keys.extend(keys.into_iter().cloned());
        }
    }
}

/// How long heartbeats may be acknowledged from memory after the last
/// liveness commit (at most; a tenth of `stale_after` when that is less).
///
/// A heartbeat that changes nothing but `last_seen` is acknowledged at once,
/// without waiting for the store, while the last liveness commit gathered
/// what it wrote less than this long ago. Liveness is committed every tick
/// (1 s), so normally no heartbeat waits. When the commits fail or fall
/// behind, heartbeats wait for a commit of their own again, and see its
/// error. A crash therefore loses only the liveness of heartbeats
/// acknowledged within this bound after the last commit: after a restart a
/// host shows its last heartbeat before that commit, far inside
/// `stale_after` (90 s by default). Engine state changes are never held in
/// memory only: a heartbeat that carries one is acknowledged after its
/// commit.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(5);

/// Heartbeats that must be stored before they are acknowledged (their
/// engine state changed, or the last liveness commit is older than the
/// bound), each with whoever waits for its commit. The next liveness commit
/// ([`Fleet::commit_liveness`]) writes them all with the liveness held in
/// memory, in one transaction.
#[derive(Debug, Default)]
struct Touches(std::sync::Mutex<Vec<Touch>>);

#[derive(Debug)]
struct Touch {
    host_id: String,
    last_seen: SystemTime,
    engine_state: EngineState,
    done: tokio::sync::oneshot::Sender<Result<(), Failed>>,
}

impl Touches {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Touch>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a liveness commit failed, for each heartbeat that waited for it.
#[derive(Debug, Clone)]
enum Failed {
    Store(Arc<StoreError>),
    Task(String),
}

impl From<Failed> for IngestError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Store(e) => IngestError::Store(StoreError::Shared(e)),
            Failed::Task(e) => IngestError::Task(e),
        }
    }
}

/// What a heartbeat found ([`Fleet::hear`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// The host is unknown, or its snapshot is not the one held.
    SnapshotNeeded,
    /// Liveness noted in memory; the next liveness commit stores it.
    Noted,
    /// It must be stored before it is acknowledged.
    MustStore,
}

/// The fleet state shared by the report and query services.
#[derive(Debug)]
pub struct Fleet {
    store: Arc<dyn Store>,
    touches: Touches,
    inner: RwLock<Inner>,
    policy: RwLock<Arc<LoadedPolicy>>,
    ingest: tokio::sync::Mutex<()>,
    stale_after: Duration,
    /// [`LIVENESS_BOUND`], or a tenth of `stale_after` when that is less.
    liveness_bound: Duration,
    /// Signalled whenever the ledger may have changed (alerting listens).
    changed: tokio::sync::Notify,
    /// Which findings changed since alerting last asked.
    changed_keys: std::sync::Mutex<Changed>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// A consistent copy of the fleet for one query.
#[derive(Debug, Clone)]
pub struct FleetView {
    /// Every host, by id, with its state.
    pub hosts: Vec<(StoredHost, HostState)>,
    /// Why the hosts whose state is [`HostState::Refused`] were refused.
    pub refusals: HashMap<String, Refusal>,
    /// The policy in force.
    pub policy: Arc<LoadedPolicy>,
    /// The open findings as of the last evaluation.
    pub open: Vec<Entry>,
    /// When the view was taken.
    pub now: SystemTime,
}

fn host_views<'a>(
    hosts: impl IntoIterator<Item = (&'a StoredHost, HostState)>,
) -> Vec<HostView<'a>> {
    hosts
        .into_iter()
        .map(|(h, state)| HostView {
            host_id: &h.snapshot.host_id,
            environment: &h.snapshot.environment,
            current: state == HostState::Fresh,
            stale: state == HostState::Stale,
            last_seen: h.last_seen,
            snapshot: &h.snapshot,
        })
        .collect()
}

fn services_of(snapshot: &HostSnapshot) -> impl Iterator<Item = &str> {
    snapshot
        .containers
        .iter()
        .filter_map(|c| c.service.as_ref().map(|s| s.name.as_str()))
}

impl FleetView {
    /// Engine views of the hosts.
    pub fn host_views(&self) -> Vec<HostView<'_>> {
        host_views(self.hosts.iter().map(|(h, state)| (h, *state)))
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
            .flat_map(|(h, _)| services_of(&h.snapshot))
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

/// Whether `finding` is among those of `service` (`None`: every finding);
/// host-level findings concern every service.
fn concerns(finding: &Finding, service: Option<&str>) -> bool {
    service.is_none_or(|s| finding.service == s || finding.kind.is_host_level())
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

/// Whether `finding` is one a diff of `a` against `b` shows: a finding of
/// that pair in that orientation, or a single-environment finding of either.
fn of_pair(finding: &Finding, a: &str, b: &str) -> bool {
    match &finding.b {
        Some(side_b) => finding.a.environment == a && side_b.environment == b,
        None => finding.a.environment == a || finding.a.environment == b,
    }
}

/// The fleet under its read lock, for the queries that should cost what
/// they return (`status`, `diff`): unlike a [`FleetView`], nothing is
/// copied up front; an answer reads the indexes and the status grid, and
/// clones and judges only the ledger entries it returns (it still filters
/// every open entry: a comparison each, no allocation). Hold it only while
/// computing an answer (it keeps ingest from applying a report), never
/// across an `.await`.
#[derive(Debug)]
pub struct Reading<'a> {
    fleet: &'a Fleet,
    inner: std::sync::RwLockReadGuard<'a, Inner>,
    policy: Arc<LoadedPolicy>,
    now: SystemTime,
    /// The hosts whose data is not current at `now` (usually few).
    not_current: BTreeSet<String>,
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

    /// The environments present, in promotion order.
    pub fn environments(&self) -> Vec<String> {
        self.policy().ordered(self.inner.by_environment.keys())
    }

    /// The services present, sorted.
    pub fn services(&self) -> Vec<String> {
        self.inner.by_service.keys().cloned().collect()
    }

    /// Every open finding (every pair, in promotion order), judged with the
    /// policy's CLI grace, optionally for one service only (host-level
    /// findings are always included): what [`FleetView::findings`] says.
    pub fn findings(&self, service: Option<&str>) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .inner
            .ledger
            .entries()
            .filter(|e| concerns(&e.finding, service))
            .map(|e| self.judged(e))
            .collect();
        parity::sort(&mut out, self.policy());
        out
    }

    /// The findings of `a` against `b` in that orientation (optionally for
    /// one service; host-level findings always), as evaluating the pair
    /// over the whole fleet finds them, judged with what the ledger knows
    /// of each.
    ///
    /// When the ledger evaluates the pair in this orientation (a pair of
    /// [`Scope::all`]: earlier stage first, as `diff staging production`),
    /// the answer is the ledger's open findings of the pair, as `status`
    /// shows them: what an evaluation at the last report or tick found, so a
    /// host crossing the stale threshold shows within the tick (1 s), as in
    /// `status`. Otherwise (the pair reversed, whose sides and summaries
    /// read the other way, or one the policy ignores) the pair is evaluated
    /// afresh over the hosts of `a` and `b`, plus one host of every other
    /// environment: the environments present decide the pair's level.
    pub fn diff(&self, a: &str, b: &str, service: Option<&str>) -> Vec<Finding> {
        let policy = self.policy();
        let held = Scope::all(policy, &self.environments())
            .pairs
            .iter()
            .any(|(x, y)| x == a && y == b);
        if held {
            let mut out: Vec<Finding> = self
                .inner
                .ledger
                .entries()
                .filter(|e| concerns(&e.finding, service) && of_pair(&e.finding, a, b))
                .map(|e| self.judged(e))
                .collect();
            parity::sort(&mut out, policy);
            return out;
        }
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
        let views = host_views(hosts.map(|h| (h, self.fleet.state_of(h, self.now))));
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

/// What to re-evaluate after a change.
#[derive(Debug, Clone)]
enum Reach {
    /// Everything.
    Full,
    /// These services, and the host-level kinds when `host_level` (the
    /// report changed a host's facts, environment or state): the host
    /// facts over every host, and the staleness of the reporting host
    /// only — another host's depends on time alone, which the tick
    /// ([`Reach::HostLevel`]) re-evaluates.
    Services {
        services: BTreeSet<String>,
        host_level: bool,
    },
    /// Only the host-level kinds (time passing).
    HostLevel,
}

impl Fleet {
    /// Loads the fleet from the store and evaluates it once with `policy`.
    pub fn load(
        store: Arc<dyn Store>,
        stale_after: Duration,
        policy: LoadedPolicy,
        now: SystemTime,
    ) -> Result<Self, StoreError> {
        let now = to_millis(now);
        let hosts: BTreeMap<String, StoredHost> = store
            .load_hosts()?
            .into_iter()
            .map(|h| (h.snapshot.host_id.clone(), h))
            .collect();
        let remembered = store.open_findings()?.into_iter().map(|r| {
            (
                r.id,
                Seen {
                    first_seen: from_unix_millis(r.first_seen_ms),
                    last_seen: from_unix_millis(r.last_seen_ms),
                },
            )
        });
        let mut inner = Inner {
            ledger: Ledger::remembering(remembered),
            liveness_stored_at: Some(now),
            ..Inner::default()
        };
        for h in hosts.values() {
            inner.index(&h.snapshot, true);
        }
        inner.hosts = hosts;
        let fleet = Fleet {
            store,
            touches: Touches::default(),
            inner: RwLock::new(inner),
            policy: RwLock::new(Arc::new(policy)),
            ingest: tokio::sync::Mutex::new(()),
            stale_after,
            liveness_bound: LIVENESS_BOUND.min(stale_after / 10),
            changed: tokio::sync::Notify::new(),
            changed_keys: std::sync::Mutex::new(Changed::everything()),
        };
        let mut inner = fleet.write();
        let observation = fleet.reevaluate(
            &Next {
                inner: &inner,
                record: None,
            },
            &Reach::Full,
            now,
        );
        let mut changes = finding_changes(&observation.delta, now);
        inner.ledger.apply(observation);
        // What a previous run recorded as open and is gone now resolved
        // while the aggregator was down; it is recorded as resolved now.
        for (id, seen) in inner.ledger.forget_remembered() {
            changes.resolved.push(Resolved {
                id,
                last_seen_ms: unix_millis(seen.last_seen),
                resolved_ms: unix_millis(now),
            });
        }
        fleet.store.save_findings(&changes)?;
        drop(inner);
        Ok(fleet)
    }

    /// Number of hosts known.
    pub fn host_count(&self) -> usize {
        self.read().hosts.len()
    }

    /// Whether `host` has reported before.
    pub fn knows(&self, host: &str) -> bool {
        self.read().hosts.contains_key(host)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<LoadedPolicy> {
        Arc::clone(
            &self
                .policy
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The state a host is shown in at `now`: refused when its latest
    /// report was, else [`Fleet::state_of`]. Evaluation uses `state_of`:
    /// the last stored snapshot stays the fleet's knowledge of the host, and
    /// it goes stale as any other.
    fn shown_state(&self, inner: &Inner, host: &StoredHost, now: SystemTime) -> HostState {
        if inner.refusals.contains_key(&host.snapshot.host_id) {
            HostState::Refused
        } else {
            self.state_of(host, now)
        }
    }

    /// Notes that a report of `host_id` was refused as invalid at `now`, so
    /// that the host is shown as refused until a report of it is stored.
    /// Only known hosts are noted: what is held stays bounded by the fleet.
    pub fn refused(&self, host_id: &str, reason: &str, now: SystemTime) {
        let mut inner = self.write();
        if inner.hosts.contains_key(host_id) {
            inner.refusals.insert(
                host_id.to_owned(),
                Refusal {
                    at: now,
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// How current a host is at `now`.
    pub fn state_of(&self, host: &StoredHost, now: SystemTime) -> HostState {
        let age = now.duration_since(host.last_seen).unwrap_or_default();
        if age > self.stale_after {
            HostState::Stale
        } else if host.engine_state == EngineState::Unreachable {
            HostState::EngineUnreachable
        } else {
            HostState::Fresh
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
            for service in services_of(&h.snapshot) {
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
    /// and the open findings.
    pub fn view(&self, now: SystemTime) -> FleetView {
        let inner = self.read();
        let hosts = inner
            .hosts
            .values()
            .map(|h| (h.clone(), self.shown_state(&inner, h, now)))
            .collect();
        FleetView {
            hosts,
            refusals: inner.refusals.clone(),
            policy: self.policy(),
            open: inner.ledger.entries().cloned().collect(),
            now,
        }
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, IngestError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| IngestError::Task(e.to_string()))?
            .map_err(IngestError::from)
    }

    /// Re-evaluates `reach` of `fleet` at `now`; returns what that changes
    /// in the ledger.
    fn reevaluate(&self, fleet: &Next<'_>, reach: &Reach, now: SystemTime) -> Observation {
        let policy = self.policy();
        let policy = &policy.policy;
        let environments = policy.ordered(fleet.environments());
        let all = Scope::all(policy, &environments);
        let evaluate = |hosts: Vec<&StoredHost>, scope: &Scope| {
            let views = host_views(hosts.into_iter().map(|h| (h, self.state_of(h, now))));
            parity::evaluate(&views, policy, scope)
        };
        let host_level_only = all.clone().with_services(BTreeSet::new());
        let reporter: BTreeSet<String> = fleet.id().map(str::to_owned).into_iter().collect();
        let findings = match reach {
            Reach::Full => evaluate(fleet.every_host(), &all),
            Reach::HostLevel => evaluate(fleet.every_host(), &host_level_only),
            Reach::Services {
                services,
                host_level,
            } => {
                let scope = all
                    .clone()
                    .with_services(services.clone())
                    .with_host_level(false);
                let mut findings = evaluate(fleet.hosts_for(services), &scope);
                if *host_level {
                    // The host facts are compared over every host; of the
                    // stale hosts, only the reporting one can have changed.
                    let scope = host_level_only
                        .clone()
                        .with_stale_of(Some(reporter.clone()));
                    findings.extend(evaluate(fleet.every_host(), &scope));
                }
                findings
            }
        };
        let none = BTreeSet::new();
        let covers = match reach {
            Reach::Full => Cover::Everything,
            Reach::Services {
                services,
                host_level,
            } => Cover::Only {
                services,
                host_level: if *host_level {
                    HostLevel::StaleOf(&reporter)
                } else {
                    HostLevel::No
                },
            },
            Reach::HostLevel => Cover::Only {
                services: &none,
                host_level: HostLevel::All,
            },
        };
        fleet.inner.ledger.assess(findings, covers, now)
    }

    /// Applies a change the store has recorded; wakes alerting when
    /// `wake`.
    fn commit(&self, change: Change, wake: bool) {
        let mut inner = self.write();
        self.changed_keys().add(change.observation.keys());
        inner.apply(change);
        drop(inner);
        if wake {
            self.changed.notify_one();
        }
    }

    fn changed_keys(&self) -> std::sync::MutexGuard<'_, Changed> {
        self.changed_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits the liveness held in memory, then re-evaluates what depends
    /// on time alone (stale hosts) and records what opened or resolved.
    /// The re-evaluation runs even when the commit failed (whose error is
    /// returned): hosts still go stale while the store is failing.
    pub async fn tick(&self, now: SystemTime) -> Result<(), IngestError> {
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        let stored = self.commit_liveness(now).await;
        let evaluated = self.apply(Reach::HostLevel, now).await;
        stored.and(evaluated)
    }

    /// Commits the liveness held in memory (at shutdown: so that a graceful
    /// stop loses none).
    pub async fn store_liveness(&self, now: SystemTime) -> Result<(), IngestError> {
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        self.commit_liveness(now).await
    }

    /// Writes, in one transaction, every heartbeat waiting to be stored and
    /// the liveness of every host acknowledged from memory since the last
    /// commit, then answers the waiting heartbeats. The caller holds the
    /// ingest lock, so no snapshot is stored meanwhile: the engine state
    /// written with a host's liveness is the one memory and store agree on,
    /// and a waiting heartbeat's engine state reaches memory only once the
    /// store has it.
    async fn commit_liveness(&self, now: SystemTime) -> Result<(), IngestError> {
        let touches = std::mem::take(&mut *self.touches.queue());
        let (rows, unstored) = {
            let mut inner = self.write();
            let unstored = std::mem::take(&mut inner.unstored);
            let mut rows: Vec<(String, SystemTime, EngineState)> = unstored
                .iter()
                .filter_map(|id| {
                    let h = inner.hosts.get(id)?;
                    Some((id.clone(), h.last_seen, h.engine_state))
                })
                .collect();
            // After the held liveness: a waiting heartbeat's row is the
            // last written for its host.
            rows.extend(
                touches
                    .iter()
                    .map(|t| (t.host_id.clone(), t.last_seen, t.engine_state)),
            );
            if rows.is_empty() {
                // Everything acknowledged so far is stored.
                mark_stored(&mut inner, now);
                return Ok(());
            }
            (rows, unstored)
        };
        let store = Arc::clone(&self.store);
        let written = match tokio::task::spawn_blocking(move || store.touch_many(&rows)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failed::Store(Arc::new(e))),
            Err(e) => Err(Failed::Task(e.to_string())),
        };
        {
            let mut inner = self.write();
            if written.is_ok() {
                for t in &touches {
                    if let Some(h) = inner.hosts.get_mut(&t.host_id) {
                        h.last_seen = t.last_seen;
                        h.engine_state = t.engine_state;
                    }
                }
                mark_stored(&mut inner, now);
            } else {
                // Not stored: the next commit tries again.
                inner.unstored.extend(unstored);
            }
        }
        for t in touches {
            // A waiter that went away (its call was cancelled) needs no answer.
            let _ = t.done.send(written.clone());
        }
        written.map_err(IngestError::from)
    }

    /// Forgets a host (`envparity hosts forget`): its snapshot and liveness
    /// leave the store, then memory, and the whole fleet is re-evaluated so
    /// that its findings resolve. Returns its record, or `None` for an
    /// unknown host; an error only when the store could not forget it (then
    /// nothing changed). When recording the findings fails afterwards, the
    /// host is forgotten all the same and the failure logged: the findings
    /// resolve at the next evaluation of their services.
    pub async fn forget(
        &self,
        host_id: &str,
        now: SystemTime,
    ) -> Result<Option<StoredHost>, IngestError> {
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        if !self.knows(host_id) {
            return Ok(None);
        }
        let id = host_id.to_owned();
        self.blocking(move |store| store.forget_host(&id)).await?;
        let removed = self.write().remove(host_id);
        if let Err(error) = self.apply(Reach::Full, now).await {
            tracing::error!(
                host = %host_id.escape_debug(),
                %error,
                "host forgotten, but recording the findings that resolve with it failed; they resolve at the next evaluation of their services"
            );
        }
        Ok(removed)
    }

    /// Replaces the policy and re-evaluates everything with it.
    pub async fn set_policy(
        &self,
        policy: LoadedPolicy,
        now: SystemTime,
    ) -> Result<(), IngestError> {
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
        // The grace periods and waivers that judge every finding changed.
        *self.changed_keys() = Changed::everything();
        self.apply(Reach::Full, now).await
    }

    async fn apply(&self, reach: Reach, now: SystemTime) -> Result<(), IngestError> {
        let observation = {
            let inner = self.read();
            self.reevaluate(
                &Next {
                    inner: &inner,
                    record: None,
                },
                &reach,
                now,
            )
        };
        let changes = finding_changes(&observation.delta, now);
        let changed = !changes.is_empty();
        if changed {
            self.blocking(move |store| store.save_findings(&changes))
                .await?;
        }
        self.commit(
            Change {
                record: None,
                observation,
            },
            changed,
        );
        Ok(())
    }

    /// Stores a pushed snapshot; returns only after it is durable.
    pub async fn push(
        &self,
        snapshot: HostSnapshot,
        now: SystemTime,
    ) -> Result<PushOutcome, IngestError> {
        if let Err(e) = validate::snapshot(&snapshot) {
            self.refused(&snapshot.host_id, &e.reason, now);
            return Err(e.into());
        }
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        let previous = self.read().hosts.get(&snapshot.host_id).cloned();
        let boot_id = |s: &HostSnapshot| {
            s.agent
                .as_ref()
                .map(|a| a.boot_id.clone())
                .unwrap_or_default()
        };

        if let Some(prev) = &previous
            && boot_id(&prev.snapshot) == boot_id(&snapshot)
            && snapshot.sequence <= prev.snapshot.sequence
        {
            // A retry or replay of something already held: acknowledge
            // without changing anything but liveness.
            if self.hear(&snapshot.host_id, None, now, prev.engine_state) == Heard::MustStore {
                let committed = self.enqueue(&snapshot.host_id, now, prev.engine_state);
                self.commit_liveness(now).await?;
                Self::answer(committed).await?;
            }
            return Ok(PushOutcome {
                content_hash: prev.snapshot.content_hash.clone(),
                duplicate: true,
            });
        }

        let engine_state =
            EngineState::try_from(snapshot.engine_state).unwrap_or(EngineState::Unspecified);
        let mut next = snapshot;
        let changes = match (&previous, engine_state) {
            // The agent could not read its engine: nothing is known about
            // containers, so keep the last observed ones rather than record
            // every service as removed.
            (Some(prev), EngineState::Unreachable) => {
                next.containers.clone_from(&prev.snapshot.containers);
                next.engine.clone_from(&prev.snapshot.engine);
                Vec::new()
            }
            (prev, _) => history::changes(
                prev.as_ref().map(|p| p.snapshot.as_ref()),
                &next,
                unix_millis(now),
            ),
        };
        let record = StoredHost {
            snapshot: Arc::new(next),
            received_at: now,
            last_seen: now,
            engine_state,
        };

        // Re-evaluate what this report can change: the services it ran
        // before and runs now, and the host-level kinds when the host's
        // facts, environment or state changed (everything when the set of
        // environments changed, because that changes which pairs exist).
        let host_level = previous.as_ref().is_none_or(|prev| {
            let (p, n) = (&prev.snapshot, &record.snapshot);
            p.environment != n.environment
                || p.host != n.host
                || p.engine != n.engine
                || prev.engine_state != record.engine_state
                || self.state_of(prev, now) != HostState::Fresh
        });
        let observation = {
            let inner = self.read();
            let next = Next {
                inner: &inner,
                record: Some(&record),
            };
            let before = Next {
                inner: &inner,
                record: None,
            };
            let reach = if next.environments() == before.environments() {
                let mut services: BTreeSet<String> =
                    services_of(&record.snapshot).map(str::to_owned).collect();
                if let Some(prev) = &previous {
                    services.extend(services_of(&prev.snapshot).map(str::to_owned));
                }
                Reach::Services {
                    services,
                    host_level,
                }
            } else {
                Reach::Full
            };
            self.reevaluate(&next, &reach, now)
        };
        let findings = finding_changes(&observation.delta, now);

        let to_store = record.clone();
        self.blocking(move |store| store.save_snapshot(&to_store, &changes, &findings))
            .await?;
        let content_hash = record.snapshot.content_hash.clone();
        self.commit(
            Change {
                record: Some(record),
                observation,
            },
            true,
        );
        Ok(PushOutcome {
            content_hash,
            duplicate: false,
        })
    }

    /// Handles a heartbeat: records liveness and says whether the full
    /// snapshot is needed. Liveness alone is acknowledged from memory (see
    /// [`LIVENESS_BOUND`]); a changed engine state only once it is stored.
    pub async fn heartbeat(
        &self,
        hb: &HeartbeatRequest,
        now: SystemTime,
    ) -> Result<bool, IngestError> {
        validate::heartbeat(hb)?;
        let now = to_millis(now);
        let engine_state =
            EngineState::try_from(hb.engine_state).unwrap_or(EngineState::Unspecified);
        let held = Some((hb.content_hash.as_str(), hb.environment.as_str()));
        match self.hear(&hb.host_id, held, now, engine_state) {
            Heard::SnapshotNeeded => Ok(true),
            Heard::Noted => Ok(false),
            Heard::MustStore => {
                let committed = self.enqueue(&hb.host_id, now, engine_state);
                let one_at_a_time = self.ingest.lock().await;
                // An earlier holder of the lock may have written ours with
                // its own; then this writes only what came since, if any.
                // Ours is answered through `committed` either way: an error
                // of this commit that is not about ours is reported to the
                // heartbeats it concerns and by the next tick.
                let _ = self.commit_liveness(now).await;
                drop(one_at_a_time);
                Self::answer(committed).await
            }
        }
    }

    /// Notes that `host_id` was heard from at `now` with `engine_state`, in
    /// memory when that is allowed; `held`, when given, is the content hash
    /// and environment the host says it runs, which must be the ones held.
    fn hear(
        &self,
        host_id: &str,
        held: Option<(&str, &str)>,
        now: SystemTime,
        engine_state: EngineState,
    ) -> Heard {
        let mut guard = self.write();
        let inner = &mut *guard;
        let stored_at = inner.liveness_stored_at;
        let Some(h) = inner.hosts.get_mut(host_id) else {
            return Heard::SnapshotNeeded;
        };
        if let Some((hash, environment)) = held
            && (h.snapshot.content_hash != hash || h.snapshot.environment != environment)
        {
            return Heard::SnapshotNeeded;
        }
        // A clock that went back before the last commit counts as late.
        let recent = stored_at
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age < self.liveness_bound);
        if h.engine_state != engine_state || !recent {
            return Heard::MustStore;
        }
        h.last_seen = now;
        if !inner.unstored.contains(host_id) {
            inner.unstored.insert(host_id.to_owned());
        }
        Heard::Noted
    }

    /// Queues a heartbeat for the next liveness commit; resolves with that
    /// commit's outcome.
    fn enqueue(
        &self,
        host_id: &str,
        now: SystemTime,
        engine_state: EngineState,
    ) -> tokio::sync::oneshot::Receiver<Result<(), Failed>> {
        let (done, committed) = tokio::sync::oneshot::channel();
        self.touches.queue().push(Touch {
            host_id: host_id.to_owned(),
            last_seen: now,
            engine_state,
            done,
        });
        committed
    }

    /// The outcome of a queued heartbeat's commit, `Ok(false)` (no snapshot
    /// needed) once it is stored.
    async fn answer(
        committed: tokio::sync::oneshot::Receiver<Result<(), Failed>>,
    ) -> Result<bool, IngestError> {
        committed
            .await
            .map_err(|e| IngestError::Task(e.to_string()))?
            .map_err(IngestError::from)?;
        Ok(false)
    }

    /// Resolves when the open findings may have changed since the last
    /// call (one waiter: the alerting task).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Which open findings changed since the last call (for alerting): the
    /// ones a report, time passing or a new policy opened, updated or
    /// resolved; `everything` on the first call and after
    /// [`Fleet::all_changed`].
    pub fn take_changed(&self) -> Changed {
        std::mem::replace(&mut *self.changed_keys(), Changed::nothing())
    }

    /// Makes the next [`Fleet::take_changed`] say everything changed (for
    /// alerting, when it could not record what it saw).
    pub fn all_changed(&self) {
        *self.changed_keys() = Changed::everything();
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

    /// The store, for history queries.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
}

/// The store's record of what an observation opened and resolved.
fn finding_changes(delta: &Delta, now: SystemTime) -> FindingChanges {
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

/// Records that every heartbeat acknowledged before `now` is stored.
fn mark_stored(inner: &mut Inner, now: SystemTime) {
    inner.liveness_stored_at = inner.liveness_stored_at.max(Some(now));
}

/// `now` at the store's precision (milliseconds), so that what is kept in
/// memory and what comes back after a restart are the same instants.
fn to_millis(now: SystemTime) -> SystemTime {
    from_unix_millis(unix_millis(now))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use envparity_proto::v1::{
        AgentInfo, Container, EnvVar, HostFacts, ImageInfo, ServiceIdentity,
    };

    fn container(service: &str, image: u64, env: u64) -> Container {
        Container {
            id: format!("{service}-{image}"),
            name: service.into(),
            service: Some(ServiceIdentity {
                name: service.into(),
                source: 1,
            }),
            image: Some(ImageInfo {
                reference: format!("reg/{service}:{image}"),
                image_id: format!("sha256:{image:064x}"),
                ..Default::default()
            }),
            explicit_env: vec![EnvVar {
                name: "MODE".into(),
                fingerprint: format!("fp{env}"),
                value: None,
            }],
            ..Default::default()
        }
    }

    /// A report of one of 9 hosts, the next in its sequence: up to 3 of 5
    /// services with one of 3 images and 2 env values, mostly in the host's
    /// own environment (sometimes it moves), sometimes with its engine
    /// unreachable, one of 2 kernels.
    pub(crate) fn random_report(
        rng: &mut fastrand::Rng,
        sequence: &mut BTreeMap<String, u64>,
    ) -> HostSnapshot {
        let envs = ["dev", "staging", "production"];
        let host = format!("h{}", rng.u64(0..9));
        let seq = sequence.entry(host.clone()).or_insert(0u64);
        *seq += 1;
        let containers = (0..rng.usize(0..4))
            .map(|_| container(&format!("s{}", rng.u64(0..5)), rng.u64(0..3), rng.u64(0..2)))
            .collect();
        let mut s = HostSnapshot {
            host_id: host.clone(),
            environment: envs[(rng.usize(0..12) + host.len()) % 3].into(),
            agent: Some(AgentInfo {
                version: "t".into(),
                boot_id: "b".into(),
            }),
            sequence: *seq,
            host: Some(HostFacts {
                kernel_version: format!("6.{}.0", rng.u64(0..2)),
                ..Default::default()
            }),
            engine_state: if rng.u8(0..10) == 0 { 2 } else { 1 },
            containers,
            fingerprint_key_id: "k".into(),
            ..Default::default()
        };
        s.content_hash = envparity_proto::hash::content_hash(&s);
        s
    }

    /// A fleet with no hosts over a fresh SQLite store (kept alive by the
    /// returned directory), and the time it was loaded at.
    pub(crate) fn empty_fleet() -> (tempfile::TempDir, Fleet, SystemTime) {
        empty_fleet_stale_after(Duration::from_secs(3600))
    }

    /// [`empty_fleet`] with hosts going stale after `stale_after`.
    fn empty_fleet_stale_after(stale_after: Duration) -> (tempfile::TempDir, Fleet, SystemTime) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fleet = Fleet::load(store, stale_after, LoadedPolicy::defaults(t0), t0).unwrap();
        (dir, fleet, t0)
    }

    /// The open findings, and what a full evaluation of the fleet finds.
    fn held_and_full(
        fleet: &Fleet,
        now: SystemTime,
    ) -> (BTreeSet<FindingKey>, BTreeSet<FindingKey>) {
        let view = fleet.view(now);
        let held = view.open.iter().map(|e| e.finding.identity()).collect();
        let views = view.host_views();
        let environments = view.environments();
        let full = parity::evaluate(
            &views,
            view.policy(),
            &Scope::all(view.policy(), &environments),
        )
        .iter()
        .map(Finding::identity)
        .collect();
        (held, full)
    }

    /// A random fleet changing one report at a time: after every report the
    /// ledger, kept by incremental re-evaluation (only the services the
    /// report touches, host-level kinds only when the host's facts or state
    /// changed), holds exactly what a full evaluation finds.
    #[tokio::test]
    async fn incremental_ingest_matches_a_full_evaluation() {
        let (_dir, fleet, t0) = empty_fleet();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut sequence = BTreeMap::new();
        for step in 0..150u64 {
            let s = random_report(&mut rng, &mut sequence);
            let now = t0 + Duration::from_secs(step);
            fleet.push(s, now).await.unwrap();

            let (held, full) = held_and_full(&fleet, now);
            assert_eq!(held, full, "after step {step}");
        }
    }

    /// Hosts going stale while others report: a report re-evaluates the
    /// staleness of its own host only (the others' depends on time alone,
    /// which the tick re-evaluates), so its own stale finding resolves at
    /// once, and after the tick that follows the ledger holds exactly what
    /// a full evaluation finds.
    #[tokio::test]
    async fn a_report_judges_its_own_staleness_and_the_tick_everyone_elses() {
        let (_dir, fleet, t0) = empty_fleet_stale_after(Duration::from_secs(3));
        let mut rng = fastrand::Rng::with_seed(11);
        let mut sequence = BTreeMap::new();
        let mut now = t0;
        let mut stale_seen = 0;
        for step in 0..150u64 {
            let s = random_report(&mut rng, &mut sequence);
            let host = s.host_id.clone();
            now += Duration::from_millis(rng.u64(0..2500));
            fleet.push(s, now).await.unwrap();
            let (held, _) = held_and_full(&fleet, now);
            assert!(
                !held
                    .iter()
                    .any(|k| k.kind == parity::Kind::StaleHost && k.host == host),
                "step {step}: {host} reported but is still held stale"
            );

            fleet.tick(now).await.unwrap();
            let (held, full) = held_and_full(&fleet, now);
            stale_seen += held
                .iter()
                .filter(|k| k.kind == parity::Kind::StaleHost)
                .count();
            assert_eq!(held, full, "after step {step}");
        }
        assert!(
            stale_seen > 0,
            "no host ever went stale: the test tests nothing"
        );
    }

    /// The change a report makes is computed against the current state and
    /// applied only once the store has it: when the store fails, queries
    /// see the fleet and its findings as they were.
    #[tokio::test]
    async fn a_report_the_store_refuses_changes_nothing_in_memory() {
        let (dir, fleet, t0) = empty_fleet();
        let report = |host: &str, environment: &str, image: u64, sequence: u64| {
            let mut s = HostSnapshot {
                host_id: host.into(),
                environment: environment.into(),
                agent: Some(AgentInfo {
                    version: "t".into(),
                    boot_id: "b".into(),
                }),
                sequence,
                engine_state: 1,
                containers: vec![container("shop", image, 0)],
                fingerprint_key_id: "k".into(),
                ..Default::default()
            };
            s.content_hash = envparity_proto::hash::content_hash(&s);
            s
        };
        fleet.push(report("s1", "staging", 1, 1), t0).await.unwrap();
        fleet
            .push(report("p1", "production", 1, 1), t0)
            .await
            .unwrap();
        let before = fleet.view(t0);

        let db = rusqlite::Connection::open(dir.path().join("envparity.db")).unwrap();
        db.execute_batch("DROP TABLE changes").unwrap();
        // A new image (a finding would open) and a new environment.
        assert!(
            fleet
                .push(report("p1", "production", 2, 2), t0)
                .await
                .is_err()
        );
        assert!(fleet.push(report("d1", "dev", 1, 1), t0).await.is_err());

        let after = fleet.view(t0);
        let hosts = |v: &FleetView| -> Vec<(String, String)> {
            v.hosts
                .iter()
                .map(|(h, _)| (h.snapshot.host_id.clone(), h.snapshot.content_hash.clone()))
                .collect()
        };
        assert_eq!(hosts(&after), hosts(&before));
        assert_eq!(after.open, before.open);
        assert_eq!(after.environments(), ["staging", "production"]);
    }

    /// One host `h1` in staging with its engine answering, reported at `t0`.
    /// A forgotten host leaves memory and the store, and the findings it
    /// took part in resolve, in memory and in the store.
    #[tokio::test]
    async fn a_forgotten_host_leaves_and_its_findings_resolve() {
        let (dir, fleet, t0) = empty_fleet();
        let report = |host: &str, environment: &str, image: u64| {
            let mut s = HostSnapshot {
                host_id: host.into(),
                environment: environment.into(),
                agent: Some(AgentInfo {
                    version: "t".into(),
                    boot_id: "b".into(),
                }),
                sequence: 1,
                engine_state: 1,
                containers: vec![container("shop", image, 0)],
                fingerprint_key_id: "k".into(),
                ..Default::default()
            };
            s.content_hash = envparity_proto::hash::content_hash(&s);
            s
        };
        fleet.push(report("s1", "staging", 1), t0).await.unwrap();
        fleet.push(report("p1", "production", 2), t0).await.unwrap();
        let digest = |fleet: &Fleet| {
            fleet
                .view(t0)
                .open
                .iter()
                .any(|e| e.finding.kind == parity::Kind::ImageDigest)
        };
        assert!(digest(&fleet), "two images: a finding");

        let forgotten = fleet.forget("p1", t0).await.unwrap().expect("known");
        assert_eq!(forgotten.snapshot.environment, "production");
        assert!(fleet.forget("p1", t0).await.unwrap().is_none());
        assert!(!fleet.knows("p1"));
        assert!(!digest(&fleet), "the finding resolved");
        let reading = fleet.reading(t0);
        assert_eq!(reading.environments(), ["staging"]);
        drop(reading);
        drop(fleet);
        // Durable: a restart finds neither the host nor the finding open.
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        let hosts: Vec<String> = store
            .load_hosts()
            .unwrap()
            .iter()
            .map(|h| h.snapshot.host_id.clone())
            .collect();
        assert_eq!(hosts, ["s1"]);
        assert!(
            store
                .open_findings()
                .unwrap()
                .iter()
                .all(|f| f.kind != "image_digest")
        );
    }

    /// A known host whose report is refused as invalid is shown refused,
    /// with why, until one of its reports is stored; an unknown host's
    /// refusal is not held.
    #[tokio::test]
    async fn a_refused_report_shows_its_host_refused_until_one_is_stored() {
        let (_dir, fleet, t0) = empty_fleet();
        let s = one_host(&fleet, t0).await;
        let mut bad = s.clone();
        bad.sequence = 2;
        bad.content_hash = "not-a-hash".into();
        let err = fleet.push(bad, t0).await.unwrap_err();
        assert!(matches!(err, IngestError::Invalid(_)), "{err:?}");
        let view = fleet.view(t0);
        assert_eq!(view.hosts[0].1, HostState::Refused);
        let refusal = &view.refusals["h1"];
        assert!(refusal.reason.contains("content_hash"), "{refusal:?}");
        assert_eq!(refusal.at, t0);
        assert!(fleet.reading(t0).not_current.contains("h1"));

        let mut stranger = s.clone();
        stranger.host_id = "h2".into();
        stranger.content_hash = "not-a-hash".into();
        assert!(fleet.push(stranger, t0).await.is_err());
        assert!(!fleet.view(t0).refusals.contains_key("h2"));

        let mut good = s;
        good.sequence = 3;
        good.containers[0].name = "shop-2".into();
        good.content_hash = envparity_proto::hash::content_hash(&good);
        fleet.push(good, t0).await.unwrap();
        let view = fleet.view(t0);
        assert_eq!(view.hosts[0].1, HostState::Fresh);
        assert!(view.refusals.is_empty());
    }

    async fn one_host(fleet: &Fleet, t0: SystemTime) -> HostSnapshot {
        let mut s = HostSnapshot {
            host_id: "h1".into(),
            environment: "staging".into(),
            agent: Some(AgentInfo {
                version: "t".into(),
                boot_id: "b".into(),
            }),
            sequence: 1,
            engine_state: EngineState::Ok as i32,
            containers: vec![container("shop", 1, 0)],
            fingerprint_key_id: "k".into(),
            ..Default::default()
        };
        s.content_hash = envparity_proto::hash::content_hash(&s);
        fleet.push(s.clone(), t0).await.unwrap();
        s
    }

    fn beat(s: &HostSnapshot, engine_state: EngineState) -> HeartbeatRequest {
        HeartbeatRequest {
            host_id: s.host_id.clone(),
            environment: s.environment.clone(),
            content_hash: s.content_hash.clone(),
            boot_id: "b".into(),
            sequence: 2,
            sent_at: None,
            engine_state: engine_state as i32,
        }
    }

    /// What the store holds for `h1` (read through a connection of its
    /// own, as the next process would after a crash): last seen, engine
    /// state.
    fn stored(dir: &tempfile::TempDir) -> (SystemTime, EngineState) {
        let hosts = SqliteStore::open(dir.path()).unwrap().load_hosts().unwrap();
        let h = hosts.iter().find(|h| h.snapshot.host_id == "h1").unwrap();
        (h.last_seen, h.engine_state)
    }

    /// Heartbeats that change nothing but liveness are acknowledged from
    /// memory only within LIVENESS_BOUND after the last liveness commit
    /// (each tick makes one); later ones wait for a commit of their own. A
    /// crash (the fleet dropped with no tick and no shutdown) then finds in
    /// the store a last_seen at most LIVENESS_BOUND older than the last
    /// acknowledged heartbeat.
    #[tokio::test]
    async fn a_crash_loses_at_most_the_liveness_bound_of_heartbeats() {
        let (dir, fleet, t0) = empty_fleet();
        let s = one_host(&fleet, t0).await;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(fleet.liveness_bound == LIVENESS_BOUND);

        assert!(
            !fleet
                .heartbeat(&beat(&s, EngineState::Ok), at(2_000))
                .await
                .unwrap()
        );
        assert_eq!(stored(&dir).0, t0, "acknowledged from memory");
        assert_eq!(fleet.view(at(2_000)).hosts[0].0.last_seen, at(2_000));
        fleet.tick(at(3_000)).await.unwrap();
        assert_eq!(stored(&dir).0, at(2_000), "committed by the tick");

        // 4 s after the tick's commit: from memory; 5.5 s: stored first.
        fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(7_000))
            .await
            .unwrap();
        assert_eq!(stored(&dir).0, at(2_000));
        fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(8_500))
            .await
            .unwrap();
        assert_eq!(stored(&dir).0, at(8_500), "older than the bound: stored");
        let last = at(9_000);
        fleet
            .heartbeat(&beat(&s, EngineState::Ok), last)
            .await
            .unwrap();
        drop(fleet);

        let (seen, state) = stored(&dir);
        assert_eq!(seen, at(8_500));
        assert!(last.duration_since(seen).unwrap() <= LIVENESS_BOUND);
        assert_eq!(state, EngineState::Ok);
    }

    /// An engine state change is never held in memory only: the heartbeat
    /// carrying it is acknowledged once the store has it (a host whose
    /// engine is unreachable changes findings), even right after a commit.
    #[tokio::test]
    async fn an_engine_state_change_is_stored_before_its_heartbeat_is_acknowledged() {
        let (dir, fleet, t0) = empty_fleet();
        let s = one_host(&fleet, t0).await;
        let at = |ms: u64| t0 + Duration::from_millis(ms);

        fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(500))
            .await
            .unwrap();
        fleet
            .heartbeat(&beat(&s, EngineState::Unreachable), at(1_000))
            .await
            .unwrap();
        assert_eq!(stored(&dir), (at(1_000), EngineState::Unreachable));
        let view = fleet.view(at(1_000));
        assert_eq!(view.hosts[0].1, HostState::EngineUnreachable);

        fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(1_500))
            .await
            .unwrap();
        drop(fleet);
        assert_eq!(stored(&dir), (at(1_500), EngineState::Ok));
    }

    /// A failing store still reaches heartbeats as an error: at once for an
    /// engine state change, at the tick for the liveness held in memory, and
    /// for every heartbeat once the last commit is older than the bound.
    /// The held liveness is kept and stored once the store works again.
    #[tokio::test]
    async fn heartbeats_see_a_failing_store_once_liveness_cannot_be_stored() {
        let (dir, fleet, t0) = empty_fleet();
        let s = one_host(&fleet, t0).await;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let db = rusqlite::Connection::open(dir.path().join("envparity.db")).unwrap();
        db.execute_batch("ALTER TABLE liveness RENAME TO liveness_away")
            .unwrap();

        fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(1_000))
            .await
            .unwrap();
        let err = fleet
            .heartbeat(&beat(&s, EngineState::Unreachable), at(1_000))
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Store(_)), "{err}");
        assert!(err.to_string().contains("heartbeat"), "{err}");
        assert!(err.to_string().contains("envparity.db"), "{err}");
        assert!(fleet.tick(at(2_000)).await.is_err());
        let err = fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(6_000))
            .await
            .unwrap_err();
        assert!(matches!(err, IngestError::Store(_)), "{err}");
        assert_eq!(
            fleet.view(at(6_000)).hosts[0].0.engine_state,
            EngineState::Ok,
            "a change the store refused is not in memory either"
        );

        db.execute_batch("ALTER TABLE liveness_away RENAME TO liveness")
            .unwrap();
        fleet.tick(at(7_000)).await.unwrap();
        assert_eq!(stored(&dir), (at(1_000), EngineState::Ok));
    }
}
