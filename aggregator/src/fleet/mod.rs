//! The fleet: the latest stored snapshot of every host, kept in memory for
//! queries and alerting and in the [`Store`] for restarts, with the open
//! findings the parity engine found in it.
//!
//! The gRPC edge (`server`) authenticates and validates a report, then hands
//! it here. Write path (one batch of reports at a time, in the order they
//! came, so two reports of one host never race; [`ingest`], [`lane`]):
//! compare each with the current record → derive history → re-evaluate
//! what the batch can change ([`plan`], read through the [`overlay`] of the
//! fleet as it will be) → write the snapshots, their history and the
//! findings they opened or resolved to the store in one transaction → only
//! then update memory ([`index`]) and acknowledge each. A failed store
//! write leaves both the store and memory as they were.
//!
//! Findings live in a [`Ledger`] (first/last seen); queries read it through
//! a [`Reading`] rather than re-evaluating the fleet. Time alone changes one
//! thing, hosts going stale, which [`Fleet::tick`] re-evaluates after
//! committing the liveness heartbeats left in memory ([`liveness`]).
//! Alerting learns which findings changed from the [`feed`].
//!
//! Files, one concern each:
//! - [`index`]: the hosts, their indexes by service and environment, the
//!   status grid ([`grid`]) and the refused hosts;
//! - [`overlay`]: the fleet as it is once a report is applied, read without
//!   copying it;
//! - [`plan`]: from what a change can reach to what is evaluated and what
//!   the ledger's answer covers;
//! - [`ingest`]: snapshots, forgetting a host, a new policy, and [`lane`]:
//!   reports waiting to be stored together (group commit);
//! - [`liveness`]: heartbeats, acknowledged from memory within a bound;
//! - [`read`]: the read model for queries, alerting and metrics, and
//!   [`listing`]: which findings a listing shows, a page at a time;
//! - [`feed`]: which findings changed, for alerting;
//! - [`generation`]: a number that moves whenever what the fleet shows may
//!   have changed, for the web view's live updates.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use envparity_proto::time::{from_unix_millis, unix_millis};
use envparity_proto::v1::{EngineState, HostSnapshot, HostState, PushDeltaRequest};

use crate::parity::{Ledger, Policy, Seen};
use crate::store::{Resolved, Store, StoreError};

mod compact;
mod facts;
mod feed;
mod generation;
mod grid;
mod index;
mod ingest;
mod lane;
mod listing;
mod liveness;
mod overlay;
mod plan;
mod read;
#[cfg(test)]
pub(crate) mod tests;

pub use compact::{HeldHost, Interner};
pub use feed::Changed;
pub use generation::Generation;
pub use index::Refusal;
pub use lane::{PushOutcome, Report};
pub use listing::{FindingsPage, Listing, Window};
pub use liveness::LIVENESS_BOUND;
#[cfg(test)]
pub use read::FleetView;
pub use read::{Reading, Weight};

use feed::Feed;
use index::Inner;
use liveness::Touches;
use overlay::Next;
use plan::{Reach, finding_changes};

/// Why a report was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed; nothing of the report was stored.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The blocking store task died.
    #[error("store task failed: {0}")]
    Task(String),
    /// A delta report does not apply to the host held (why); the agent
    /// sends the full snapshot.
    #[error("{0}")]
    Delta(String),
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

/// The fleet state shared by the report and query services.
#[derive(Debug)]
pub struct Fleet {
    store: Arc<dyn Store>,
    touches: Touches,
    inner: RwLock<Inner>,
    policy: RwLock<Arc<LoadedPolicy>>,
    ingest: tokio::sync::Mutex<()>,
    /// The reports waiting to be stored.
    lane: lane::Lane,
    stale_after: Duration,
    /// [`LIVENESS_BOUND`], or a tenth of `stale_after` when that is less.
    liveness_bound: Duration,
    /// Which findings changed, for alerting.
    feed: Feed,
    /// The contents of the containers held (compact hosts share them).
    interner: std::sync::Mutex<Interner>,
    /// Moves whenever what the fleet shows may have changed.
    generation: Generation,
    /// The hosts not fresh when the tick last re-evaluated (`None`: it has
    /// not, or its last pass failed).
    ticked: std::sync::Mutex<Option<liveness::NotFresh>>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
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
        let mut interner = Interner::default();
        // Host by host: each is held compactly before the next is read, so
        // that loading never holds the fleet whole.
        let mut hosts: BTreeMap<String, HeldHost> = BTreeMap::new();
        store.each_host(&mut |h| {
            hosts.insert(h.snapshot.host_id.clone(), interner.hold(h));
        })?;
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
            inner.index(h, true);
        }
        inner.hosts = hosts;
        let fleet = Fleet {
            store,
            touches: Touches::default(),
            inner: RwLock::new(inner),
            policy: RwLock::new(Arc::new(policy)),
            ingest: tokio::sync::Mutex::new(()),
            lane: lane::Lane::default(),
            stale_after,
            liveness_bound: LIVENESS_BOUND.min(stale_after / 10),
            feed: Feed::default(),
            interner: std::sync::Mutex::new(interner),
            generation: Generation::starting_at(unix_millis(now).try_into().unwrap_or_default()),
            ticked: std::sync::Mutex::new(None),
        };
        let mut inner = fleet.write();
        let observation = fleet.reevaluate(&Next::now(&inner), &Reach::Full, now);
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

    /// The snapshot held for `host`, if any (the base of its next delta).
    pub fn held(&self, host: &str) -> Option<HostSnapshot> {
        self.read().hosts.get(host).map(HeldHost::whole)
    }

    /// Whether `delta` can be applied to the compact host held
    /// ([`Fleet::push_delta`], [`HeldHost::takes_delta`]); when not, the
    /// caller rebuilds the whole snapshot and pushes it.
    pub fn takes_delta(&self, delta: &PushDeltaRequest) -> bool {
        let Some(header) = &delta.snapshot else {
            return false;
        };
        self.read()
            .hosts
            .get(&header.host_id)
            .is_some_and(|held| held.takes_delta(header).is_ok())
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
    fn shown_state(&self, inner: &Inner, host: &HeldHost, now: SystemTime) -> HostState {
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
            drop(inner);
            self.generation.bump();
        }
    }

    /// How current a host is at `now`.
    pub fn state_of(&self, host: &HeldHost, now: SystemTime) -> HostState {
        let age = now.duration_since(host.last_seen).unwrap_or_default();
        if age > self.stale_after {
            HostState::Stale
        } else if host.engine_state == EngineState::Unreachable {
            HostState::EngineUnreachable
        } else {
            HostState::Fresh
        }
    }

    /// Runs `f` on the store, on the blocking pool: started at once, so
    /// that the caller can do other work before awaiting the answer.
    fn blocking<T, F>(&self, f: F) -> impl Future<Output = Result<T, IngestError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let task = tokio::task::spawn_blocking(move || f(store.as_ref()));
        async move {
            task.await
                .map_err(|e| IngestError::Task(e.to_string()))?
                .map_err(IngestError::from)
        }
    }

    fn interner(&self) -> std::sync::MutexGuard<'_, Interner> {
        self.interner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store, for history queries.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
}

/// `now` at the store's precision (milliseconds), so that what is kept in
/// memory and what comes back after a restart are the same instants.
fn to_millis(now: SystemTime) -> SystemTime {
    from_unix_millis(unix_millis(now))
}
