//! The aggregator's view of the fleet: the latest snapshot of every host,
//! kept in memory for queries and in the [`Store`] for restarts.
//!
//! Write path (one ingest at a time, so two reports of one host never race):
//! validate → compare with the current record → derive history → write to the
//! store → only then update memory and acknowledge. A failed store write
//! leaves both the store and memory as they were.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use envparity_proto::time::unix_millis;
use envparity_proto::v1::{EngineState, HeartbeatRequest, HostSnapshot, HostState};

use super::validate::{self, InvalidReport};
use crate::history;
use crate::parity::{self, HostView, Scope};
use crate::store::{Store, StoreError, StoredHost};

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

/// The fleet state shared by the report and query services.
#[derive(Debug)]
pub struct Fleet {
    store: Arc<dyn Store>,
    hosts: RwLock<BTreeMap<String, StoredHost>>,
    ingest: tokio::sync::Mutex<()>,
    stale_after: Duration,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// A consistent copy of the fleet for one query.
#[derive(Debug, Clone)]
pub struct FleetView {
    /// Every host, by id.
    pub hosts: Vec<(StoredHost, HostState)>,
}

impl FleetView {
    /// Engine views of the hosts.
    pub fn host_views(&self) -> Vec<HostView<'_>> {
        self.hosts
            .iter()
            .map(|(h, state)| HostView {
                host_id: &h.snapshot.host_id,
                environment: &h.snapshot.environment,
                current: *state == HostState::Fresh,
                snapshot: &h.snapshot,
            })
            .collect()
    }

    /// The environments present, in promotion order.
    pub fn environments(&self) -> Vec<String> {
        parity::environments::ordered(
            self.hosts
                .iter()
                .map(|(h, _)| h.snapshot.environment.as_str()),
        )
    }

    /// The services present, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .hosts
            .iter()
            .flat_map(|(h, _)| h.snapshot.containers.iter())
            .filter_map(|c| c.service.as_ref().map(|s| s.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Evaluates parity over this view.
    pub fn findings(&self, scope: &Scope) -> Vec<parity::Finding> {
        parity::evaluate(&self.host_views(), scope)
    }
}

impl Fleet {
    /// Loads the fleet from the store.
    pub fn load(store: Arc<dyn Store>, stale_after: Duration) -> Result<Self, StoreError> {
        let hosts = store
            .load_hosts()?
            .into_iter()
            .map(|h| (h.snapshot.host_id.clone(), h))
            .collect();
        Ok(Fleet {
            store,
            hosts: RwLock::new(hosts),
            ingest: tokio::sync::Mutex::new(()),
            stale_after,
        })
    }

    /// Number of hosts known.
    pub fn host_count(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, StoredHost>> {
        self.hosts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, StoredHost>> {
        self.hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// A consistent copy of every host with its state at `now`.
    pub fn view(&self, now: SystemTime) -> FleetView {
        let hosts = self
            .read()
            .values()
            .map(|h| (h.clone(), self.state_of(h, now)))
            .collect();
        FleetView { hosts }
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

    /// Stores a pushed snapshot; returns only after it is durable.
    pub async fn push(
        &self,
        snapshot: HostSnapshot,
        now: SystemTime,
    ) -> Result<PushOutcome, IngestError> {
        validate::snapshot(&snapshot)?;
        let _one_at_a_time = self.ingest.lock().await;
        let previous = self.read().get(&snapshot.host_id).cloned();
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
            self.heard_from(&snapshot.host_id, now, prev.engine_state)
                .await?;
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
        let to_store = record.clone();
        self.blocking(move |store| store.save_snapshot(&to_store, &changes))
            .await?;
        let content_hash = record.snapshot.content_hash.clone();
        self.write().insert(record.snapshot.host_id.clone(), record);
        Ok(PushOutcome {
            content_hash,
            duplicate: false,
        })
    }

    /// Handles a heartbeat: records liveness and says whether the full
    /// snapshot is needed.
    pub async fn heartbeat(
        &self,
        hb: &HeartbeatRequest,
        now: SystemTime,
    ) -> Result<bool, IngestError> {
        validate::heartbeat(hb)?;
        let engine_state =
            EngineState::try_from(hb.engine_state).unwrap_or(EngineState::Unspecified);
        let needed = match self.read().get(&hb.host_id) {
            None => true,
            Some(h) => {
                h.snapshot.content_hash != hb.content_hash
                    || h.snapshot.environment != hb.environment
            }
        };
        if !needed {
            self.heard_from(&hb.host_id, now, engine_state).await?;
        }
        Ok(needed)
    }

    async fn heard_from(
        &self,
        host_id: &str,
        now: SystemTime,
        engine_state: EngineState,
    ) -> Result<(), IngestError> {
        let id = host_id.to_owned();
        self.blocking(move |store| store.touch(&id, now, engine_state))
            .await?;
        if let Some(h) = self.write().get_mut(host_id) {
            h.last_seen = now;
            h.engine_state = engine_state;
        }
        Ok(())
    }

    /// The store, for history queries.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
}
