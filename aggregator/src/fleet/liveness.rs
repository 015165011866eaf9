//! Heartbeats: liveness acknowledged from memory within a bound, and the
//! liveness commits that store it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envparity_proto::v1::{EngineState, HeartbeatRequest, HostState};

use super::index::Inner;
use super::plan::Reach;
use super::{Fleet, IngestError, to_millis};
use crate::store::StoreError;

/// The hosts not fresh, by id, with the state each is evaluated in and when it
/// was last heard from: what the tick's re-evaluation depends on besides
/// the reports. A host that reported since (fresh for a while, then stale
/// again) has another last-seen time, so its report's own re-evaluation
/// cannot hide a change from the tick.
pub(super) type NotFresh = std::collections::BTreeMap<String, (HostState, SystemTime)>;

/// The hosts whose entry differs between `before` and `now`: turned not
/// fresh, fresh again, or not fresh otherwise (another state, another last
/// seen time).
fn moved(before: &NotFresh, now: &NotFresh) -> BTreeSet<String> {
    let gone = before.iter().filter(|(id, v)| now.get(*id) != Some(*v));
    let came = now.iter().filter(|(id, _)| !before.contains_key(*id));
    gone.chain(came).map(|(id, _)| id.clone()).collect()
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
pub(super) struct Touches(std::sync::Mutex<Vec<Touch>>);

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
pub(super) enum Failed {
    Store(Arc<StoreError>),
    Task(String),
    /// A delta that does not apply to the host held (why).
    Delta(String),
}

impl From<IngestError> for Failed {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(StoreError::Shared(e)) => Failed::Store(e),
            IngestError::Store(e) => Failed::Store(Arc::new(e)),
            IngestError::Task(e) => Failed::Task(e),
            IngestError::Delta(why) => Failed::Delta(why),
        }
    }
}

impl From<Failed> for IngestError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Store(e) => IngestError::Store(StoreError::Shared(e)),
            Failed::Task(e) => IngestError::Task(e),
            Failed::Delta(why) => IngestError::Delta(why),
        }
    }
}

/// What a heartbeat found ([`Fleet::hear`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard {
    /// The host is unknown, or its snapshot is not the one held.
    SnapshotNeeded,
    /// Liveness noted in memory; the next liveness commit stores it.
    Noted,
    /// It must be stored before it is acknowledged.
    MustStore,
}

impl Fleet {
    /// Commits the liveness held in memory, then re-evaluates what depends
    /// on time alone (stale hosts) and records what opened or resolved.
    /// The re-evaluation runs even when the commit failed (whose error is
    /// returned): hosts still go stale while the store is failing.
    ///
    /// It runs only when a host's state moved since the last tick that
    /// evaluated (a host turned stale or fresh, its engine unreachable or
    /// back, a host not fresh reported): the host-level
    /// findings depend on time through those states alone, and a report
    /// re-evaluates what it changes itself. It evaluates the staleness of
    /// the hosts that moved, not every host: at 100,000 hosts turning
    /// stale one after another, a pass over every host took seconds, once
    /// a second, under the ingest lock (docs/benchmarks.md, issue 18).
    /// Returns whether it evaluated.
    pub async fn tick(&self, now: SystemTime) -> Result<bool, IngestError> {
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        let stored = self.commit_liveness(now).await;
        let states = self.not_fresh(now);
        let reach = {
            let mut ticked = self
                .ticked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if ticked.as_ref() == Some(&states) {
                return stored.map(|()| false);
            }
            // Only the hosts whose state moved since the last pass: a
            // host's staleness depends on that host alone, and a report
            // re-evaluates its own host's. Every host after a failed pass
            // (and at the first).
            let reach = match ticked.as_ref() {
                Some(before) => Reach::StaleOf(moved(before, &states)),
                None => Reach::HostLevel,
            };
            // Recorded only once evaluated: a failed pass is tried again.
            *ticked = None;
            reach
        };
        let evaluated = self.apply(reach, now).await;
        if evaluated.is_ok() {
            *self
                .ticked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(states);
        }
        stored.and(evaluated).map(|()| true)
    }

    /// Every host not fresh at `now` by time and engine state (as the engine
    /// is shown them; a refusal is for queries to show, not evaluated),
    /// with its last-seen time.
    fn not_fresh(&self, now: SystemTime) -> NotFresh {
        let inner = self.read();
        inner
            .hosts
            .values()
            .map(|h| (h, self.state_of(h, now)))
            .filter(|(_, state)| *state != HostState::Fresh)
            .map(|(h, state)| (h.snapshot.host_id.clone(), (state, h.last_seen)))
            .collect()
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
    pub(super) async fn commit_liveness(&self, now: SystemTime) -> Result<(), IngestError> {
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
                        if h.engine_state != t.engine_state {
                            self.generation.bump();
                        }
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
    /// Handles a heartbeat the caller validated: records liveness and says
    /// whether the full snapshot is needed. Liveness alone is acknowledged
    /// from memory (see [`LIVENESS_BOUND`]); a changed engine state only
    /// once it is stored.
    pub async fn heartbeat(
        &self,
        hb: &HeartbeatRequest,
        now: SystemTime,
    ) -> Result<bool, IngestError> {
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
    pub(super) fn hear(
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
    pub(super) fn enqueue(
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
    pub(super) async fn answer(
        committed: tokio::sync::oneshot::Receiver<Result<(), Failed>>,
    ) -> Result<bool, IngestError> {
        committed
            .await
            .map_err(|e| IngestError::Task(e.to_string()))?
            .map_err(IngestError::from)?;
        Ok(false)
    }
}

/// Records that every heartbeat acknowledged before `now` is stored.
fn mark_stored(inner: &mut Inner, now: SystemTime) {
    inner.liveness_stored_at = inner.liveness_stored_at.max(Some(now));
}
