//! The write path: a snapshot, a forgotten host, a new policy. One at a
//! time; the store first, then memory.

use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::unix_millis;
use envparity_proto::v1::{EngineState, HostSnapshot, HostState};

use super::compact::HeldHost;
use super::index::Change;
use super::liveness::Heard;
use super::overlay::Next;
use super::plan::{HostReach, Reach, finding_changes, host_facts_open_in, services_touched};
use super::{Fleet, IngestError, LoadedPolicy, to_millis};
use crate::history;
use crate::parity::HeldContainer;

/// What happened to a pushed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The content hash now held for the host.
    pub content_hash: String,
    /// True when the report was a replay of one already held.
    pub duplicate: bool,
}

impl Fleet {
    /// Applies a change the store has recorded; wakes alerting when
    /// `wake`.
    fn commit(&self, change: Change, wake: bool) {
        let mut inner = self.write();
        self.feed.keys().add(change.observation.keys());
        inner.apply(change);
        drop(inner);
        if wake {
            self.feed.wake();
            self.generation.bump();
        }
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
    ) -> Result<Option<HeldHost>, IngestError> {
        let now = to_millis(now);
        let _one_at_a_time = self.ingest.lock().await;
        if !self.knows(host_id) {
            return Ok(None);
        }
        let id = host_id.to_owned();
        self.blocking(move |store| store.forget_host(&id)).await?;
        let removed = self.write().remove(host_id);
        self.generation.bump();
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
        self.feed.everything();
        let applied = self.apply(Reach::Full, now).await;
        self.generation.bump();
        applied
    }

    pub(super) async fn apply(&self, reach: Reach, now: SystemTime) -> Result<(), IngestError> {
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

    /// Stores a pushed snapshot, which the caller validated (the gRPC edge
    /// refuses an invalid one and notes it with [`Fleet::refused`]);
    /// returns only after it is durable.
    pub async fn push(
        &self,
        snapshot: HostSnapshot,
        now: SystemTime,
    ) -> Result<PushOutcome, IngestError> {
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
                next.containers = prev.containers.iter().map(HeldContainer::whole).collect();
                next.engine.clone_from(&prev.snapshot.engine);
                Vec::new()
            }
            (prev, _) => {
                let before = prev.iter().flat_map(|p| &p.containers);
                let before = before.map(|c| (&*c.name, c.content.as_ref()));
                history::changes(before, &next, unix_millis(now))
            }
        };
        // Memory holds the compact host; the store writes the containers
        // this report changed.
        let record = self
            .interner()
            .hold_mut(&mut next, now, engine_state, previous.as_ref());
        let write = record.write(previous.as_ref(), std::mem::take(&mut next.containers));
        drop(next);

        // Re-evaluate what this report can change: the services it ran
        // before and runs now, and the host-level kinds when the host's
        // facts, environment or state changed — the host facts over every
        // host only when an environment's values of them change or an open
        // host-fact finding lists its hosts (so that a new host costs the
        // same in a fleet of 100 as of 10,000); everything when the set of
        // environments changed, because that changes which pairs exist.
        let host_level = previous.as_ref().is_none_or(|prev| {
            let (p, n) = (&prev.snapshot, &record.snapshot);
            p.environment != n.environment
                || p.host != n.host
                || p.engine != n.engine
                || prev.engine_state != record.engine_state
                || self.state_of(prev, now) != HostState::Fresh
        });
        let whole_host = host_level
            || previous.as_ref().is_some_and(|prev| {
                prev.snapshot.fingerprint_key_id != record.snapshot.fingerprint_key_id
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
                let services = services_touched(previous.as_ref(), &record, whole_host);
                let host_level = if !host_level {
                    HostReach::No
                } else if inner.facts.unchanged_by(previous.as_ref(), &record)
                    && !host_facts_open_in(&inner.ledger, &record.snapshot.environment)
                {
                    HostReach::Reporter
                } else {
                    HostReach::FactsAndReporter
                };
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

        self.blocking(move |store| store.save_report(&write, &changes, &findings))
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
}
