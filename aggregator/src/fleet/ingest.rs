//! The write path: snapshots (in batches, [`super::lane`]), a forgotten
//! host, a new policy. One at a time; the store first, then memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::unix_millis;
use envparity_proto::v1::{Container, EngineState, HostSnapshot, HostState, PushDeltaRequest};

use super::compact::HeldHost;
use super::index::Change;
use super::lane::{AbandonOnPanic, Delta, Pending, Prepared, PushOutcome, Report};
use super::liveness::{Failed, Heard};
use super::overlay::Next;
use super::plan::{HostReach, Reach, finding_changes, host_facts_open_in, services_touched};
use super::{Fleet, IngestError, LoadedPolicy, to_millis};
use crate::history;
use crate::parity::HeldContainer;
use crate::store::{Change as StoreChange, FindingsToCome, HostWrite, Reported};

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
            self.reevaluate(&Next::now(&inner), &reach, now)
        };
        let changes = finding_changes(&observation.delta, now);
        let changed = !changes.is_empty();
        if changed {
            self.blocking(move |store| store.save_findings(&changes))
                .await?;
        }
        self.commit(
            Change {
                records: Vec::new(),
                observation,
            },
            changed,
        );
        Ok(())
    }

    /// Stores a pushed snapshot, which the caller validated (the gRPC edge
    /// refuses an invalid one and notes it with [`Fleet::refused`]);
    /// returns only after it is durable.
    ///
    /// Reports wait in the ingest [`lane`](super::lane) and are stored in
    /// batches, each batch one transaction (group commit): the reports
    /// that arrive while one batch is written go together in the next.
    /// Memory changes only after the commit, and each report is answered
    /// after it; when the commit fails, every report of the batch gets the
    /// error and nothing of them is stored or applied.
    pub async fn push(
        self: &Arc<Self>,
        snapshot: HostSnapshot,
        now: SystemTime,
    ) -> Result<PushOutcome, IngestError> {
        self.submit(Report::Whole(snapshot), now).await
    }

    /// Stores a delta report against the host held, as [`Fleet::push`]
    /// does a snapshot: the caller validated its header and upserted
    /// containers, and that neither it nor the host held has configuration
    /// files (such a delta is rebuilt whole and pushed). Refused with
    /// [`IngestError::Delta`] when no host is held, the held one is not its
    /// base, it names containers wrongly, or the result is not the content
    /// it claims; then nothing changed and the agent sends the snapshot.
    pub async fn push_delta(
        self: &Arc<Self>,
        delta: PushDeltaRequest,
        now: SystemTime,
    ) -> Result<PushOutcome, IngestError> {
        let now = to_millis(now);
        let report = self.prepare_delta(delta, now)?;
        self.submit(report, now).await
    }

    async fn submit(
        self: &Arc<Self>,
        report: Report,
        now: SystemTime,
    ) -> Result<PushOutcome, IngestError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let pending = Pending {
            report,
            now: to_millis(now),
            done,
        };
        if self.lane.push(pending) {
            tokio::spawn(Arc::clone(self).drain());
        }
        match answer.await {
            Ok(outcome) => outcome.map_err(IngestError::from),
            Err(_) => Err(IngestError::Task(
                "the ingest task failed before storing the report (see the aggregator's log)"
                    .to_owned(),
            )),
        }
    }

    /// Stores the reports waiting in the lane, a batch at a time, until
    /// none waits.
    async fn drain(self: Arc<Self>) {
        let _abandon = AbandonOnPanic(&self.lane);
        loop {
            let _one_at_a_time = self.ingest.lock().await;
            let Some(batch) = self.lane.next_batch() else {
                return;
            };
            self.store_batch(batch).await;
        }
    }

    /// Stores a batch of reports in one transaction, then applies it to
    /// memory, then answers each report. The caller holds the ingest lock.
    async fn store_batch(&self, batch: Vec<Pending>) {
        let mut accepted: Vec<Accepted> = Vec::with_capacity(batch.len());
        // What the store writes of each, in the same order.
        let mut writes: Vec<(HostWrite, Vec<StoreChange>)> = Vec::with_capacity(batch.len());
        // Host id -> its latest report in `accepted`.
        let mut latest: HashMap<String, usize> = HashMap::new();
        let mut now = SystemTime::UNIX_EPOCH;
        for pending in batch {
            now = now.max(pending.now);
            let host = pending.report.host_id().to_owned();
            let in_batch = latest.get(&host).map(|&i| &accepted[i].record);
            let previous = match in_batch {
                Some(record) => Some(record.clone()),
                None => self.read().hosts.get(&host).cloned(),
            };
            match self.accept(pending, previous, in_batch.is_some()).await {
                Some((report, write, changes)) => {
                    latest.insert(host, accepted.len());
                    accepted.push(report);
                    writes.push((write, changes));
                }
                None => continue,
            }
        }
        if accepted.is_empty() {
            return;
        }

        // The store writes the reports while they are evaluated here; their
        // findings follow into the same transaction (dropped unsent, should
        // the evaluation fail, they store nothing of the batch).
        let (findings_sender, findings) = FindingsToCome::later();
        let stored = self.blocking(move |store| {
            let reports: Vec<Reported<'_>> = writes
                .iter()
                .map(|(host, changes)| Reported { host, changes })
                .collect();
            store.save_reports(&reports, findings)
        });

        // Re-evaluate what the batch can change: the services its reports
        // ran before and run now, and the host-level kinds when a host's
        // facts, environment or state changed — the host facts over every
        // host only when an environment's values of them change or an open
        // host-fact finding lists its hosts (so that a new host costs the
        // same in a fleet of 100 as of 10,000); everything when the set of
        // environments changed, because that changes which pairs exist.
        let observation = {
            let inner = self.read();
            let next = Next::with(&inner, accepted.iter().map(|a| &a.record));
            let reach = if next.environments() == Next::now(&inner).environments() {
                let mut services = BTreeSet::new();
                for a in &accepted {
                    services.extend(services_touched(
                        a.previous.as_ref(),
                        &a.record,
                        a.whole_host,
                    ));
                }
                let moved: Vec<&Accepted> = accepted.iter().filter(|a| a.host_level).collect();
                let host_level = if moved.is_empty() {
                    HostReach::No
                } else if inner
                    .facts
                    .unchanged_by(moved.iter().map(|a| (a.previous.as_ref(), &a.record)))
                    && !moved
                        .iter()
                        .any(|a| host_facts_open_in(&inner.ledger, &a.record.snapshot.environment))
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
        findings_sender.send(finding_changes(&observation.delta, now));

        let (mut records, mut answers) = (Vec::new(), Vec::new());
        for a in accepted {
            answers.push((
                a.done,
                PushOutcome {
                    content_hash: a.record.snapshot.content_hash.clone(),
                    duplicate: false,
                },
            ));
            records.push(a.record);
        }
        let stored = stored.await;
        match stored {
            Ok(()) => {
                self.commit(
                    Change {
                        records,
                        observation,
                    },
                    true,
                );
                for (done, outcome) in answers {
                    // A caller that went away needs no answer.
                    let _ = done.send(Ok(outcome));
                }
            }
            Err(e) => {
                let failed = Failed::from(e);
                for (done, _) in answers {
                    let _ = done.send(Err(failed.clone()));
                }
            }
        }
    }

    /// A report of the batch, made ready to store against `previous` (the
    /// host as held, or as an earlier report of the batch left it, when
    /// `in_batch`), with what the store writes of it and the changes it
    /// brought for the history; `None` when it was a replay, already
    /// answered.
    async fn accept(
        &self,
        pending: Pending,
        previous: Option<HeldHost>,
        in_batch: bool,
    ) -> Option<(Accepted, HostWrite, Vec<StoreChange>)> {
        let Pending { report, now, done } = pending;
        let boot_id = |s: &HostSnapshot| {
            s.agent
                .as_ref()
                .map(|a| a.boot_id.clone())
                .unwrap_or_default()
        };

        let header = report.header();
        if let Some(prev) = &previous
            && boot_id(&prev.snapshot) == boot_id(header)
            && header.sequence <= prev.snapshot.sequence
        {
            // A retry or replay of something already held (or about to be,
            // with this batch): acknowledge without changing anything but
            // liveness.
            let mut answer = Ok(());
            if !in_batch
                && self.hear(&header.host_id, None, now, prev.engine_state) == Heard::MustStore
            {
                let committed = self.enqueue(&header.host_id, now, prev.engine_state);
                let _ = self.commit_liveness(now).await;
                answer = Self::answer(committed).await.map(|_| ());
            }
            let _ = done.send(answer.map_err(Failed::from).map(|()| PushOutcome {
                content_hash: prev.snapshot.content_hash.clone(),
                duplicate: true,
            }));
            return None;
        }

        let made = match report {
            Report::Whole(snapshot) => Ok(self.hold_whole(snapshot, previous.as_ref(), now)),
            Report::Prepared(prepared)
                if previous
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(&p.snapshot, &prepared.base)) =>
            {
                let Prepared {
                    record,
                    changes,
                    upserted,
                    removed,
                    ..
                } = *prepared;
                let write = record.delta_write(upserted, removed);
                Ok((record, write, changes))
            }
            // Another report of the host came first: apply the delta to
            // the host as that one left it.
            Report::Prepared(prepared) => {
                self.apply_delta(previous.as_ref(), prepared.into_delta(), now)
            }
            Report::Delta(delta) => self.apply_delta(previous.as_ref(), delta, now),
        };
        let (record, write, changes) = match made {
            Ok(made) => made,
            Err(why) => {
                let _ = done.send(Err(Failed::Delta(format!("{why}; send the full snapshot"))));
                return None;
            }
        };

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
        let accepted = Accepted {
            done,
            record,
            previous,
            host_level,
            whole_host,
        };
        Some((accepted, write, changes))
    }
}

impl Fleet {
    /// The record, store write and history of a whole snapshot replacing
    /// `previous`.
    fn hold_whole(
        &self,
        snapshot: HostSnapshot,
        previous: Option<&HeldHost>,
        now: SystemTime,
    ) -> (HeldHost, HostWrite, Vec<StoreChange>) {
        let engine_state =
            EngineState::try_from(snapshot.engine_state).unwrap_or(EngineState::Unspecified);
        let mut next = snapshot;
        let changes = match (previous, engine_state) {
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
            .hold_mut(&mut next, now, engine_state, previous);
        let write = record.write(previous, std::mem::take(&mut next.containers));
        (record, write, changes)
    }

    /// The record a delta makes of `held` and the history it brings,
    /// checked: `held` is its base, and it names containers rightly
    /// ([`makes_its_content`] checks the result).
    fn hold_delta(
        &self,
        held: &HeldHost,
        header: HostSnapshot,
        base_content_hash: &str,
        upserted: &mut [Container],
        removed: &[String],
        now: SystemTime,
    ) -> Result<(HeldHost, Vec<StoreChange>), String> {
        if base_content_hash != held.snapshot.content_hash {
            return Err(format!(
                "the delta is against content {:?}, but the base held is {:?}",
                base_content_hash.escape_debug().to_string(),
                held.snapshot.content_hash
            ));
        }
        held.takes_delta(&header).map_err(str::to_owned)?;
        let engine_state =
            EngineState::try_from(header.engine_state).unwrap_or(EngineState::Unspecified);
        let record =
            self.interner()
                .hold_delta(held, header, upserted, removed, now, engine_state)?;
        if record.containers.len() > envparity_proto::limits::MAX_CONTAINERS {
            return Err(format!(
                "the delta makes {} containers, over the limit of {}",
                record.containers.len(),
                envparity_proto::limits::MAX_CONTAINERS
            ));
        }
        let before = held.containers.iter();
        let before = before.map(|c| (&*c.name, c.content.as_ref()));
        let after = record.containers.iter();
        let after = after.map(|c| (&*c.name, c.content.as_ref()));
        let changes = history::changes_to(before, &record.snapshot, after, unix_millis(now));
        Ok((record, changes))
    }

    /// A delta, checked and applied to the host held before it waits in
    /// the lane, so that this work (above all hashing the content it
    /// makes) runs beside other calls instead of in the one lane. Refused
    /// when no host is held, or when applied to the host held it names
    /// containers wrongly or does not make the content its header claims.
    /// Against another base it waits as it came: the lane says why, or
    /// answers a retry already stored as a duplicate.
    fn prepare_delta(
        &self,
        delta: PushDeltaRequest,
        now: SystemTime,
    ) -> Result<Report, IngestError> {
        let refuse = |why: String| IngestError::Delta(format!("{why}; send the full snapshot"));
        let PushDeltaRequest {
            snapshot,
            base_content_hash,
            mut upserted,
            removed,
        } = delta;
        let header =
            snapshot.ok_or_else(|| refuse("PushDeltaRequest.snapshot is missing".to_owned()))?;
        let (base, record, changes) = {
            let inner = self.read();
            let Some(held) = inner.hosts.get(&header.host_id) else {
                return Err(refuse(no_snapshot_of(&header.host_id)));
            };
            if base_content_hash != held.snapshot.content_hash {
                return Ok(Report::Delta(Delta {
                    header,
                    base_content_hash,
                    upserted,
                    removed,
                }));
            }
            let (record, changes) = self
                .hold_delta(
                    held,
                    header,
                    &base_content_hash,
                    &mut upserted,
                    &removed,
                    now,
                )
                .map_err(refuse)?;
            (Arc::clone(&held.snapshot), record, changes)
        };
        makes_its_content(&record).map_err(refuse)?;
        Ok(Report::Prepared(Box::new(Prepared {
            base,
            base_content_hash,
            record,
            changes,
            upserted,
            removed,
        })))
    }

    /// The record, store write and history of `delta` applied to
    /// `previous` (in the lane: the host as held, or as an earlier report
    /// of the batch left it); why not when it does not apply.
    fn apply_delta(
        &self,
        previous: Option<&HeldHost>,
        delta: Delta,
        now: SystemTime,
    ) -> Result<(HeldHost, HostWrite, Vec<StoreChange>), String> {
        let Delta {
            header,
            base_content_hash,
            mut upserted,
            removed,
        } = delta;
        let held = previous.ok_or_else(|| no_snapshot_of(&header.host_id))?;
        let (record, changes) = self.hold_delta(
            held,
            header,
            &base_content_hash,
            &mut upserted,
            &removed,
            now,
        )?;
        makes_its_content(&record)?;
        let write = record.delta_write(upserted, removed);
        Ok((record, write, changes))
    }
}

/// Why a delta of `host_id` does not apply when no host is held.
fn no_snapshot_of(host_id: &str) -> String {
    format!(
        "the aggregator holds no snapshot of host {:?} to apply a delta to",
        host_id.escape_debug().to_string()
    )
}

/// Whether the host a delta made holds the content its header claims, in
/// the form its hash is written in: by container, from the digests held of
/// its contents; whole, from all of their encodings.
fn makes_its_content(record: &HeldHost) -> Result<(), String> {
    use envparity_proto::hash::{self, HashForm};
    let rebuilt = match HashForm::of(&record.snapshot.content_hash) {
        Some(HashForm::ByContainer) => {
            let parts = record
                .containers
                .iter()
                .map(|c| (&*c.id, &*c.name, &c.digest));
            hash::content_hash_of_digests(&record.snapshot, parts)
        }
        _ => {
            let parts = record
                .containers
                .iter()
                .map(|c| (&*c.id, &*c.name, c.content.as_ref()));
            hash::content_hash_of_parts(&record.snapshot, parts)
        }
    };
    if rebuilt == record.snapshot.content_hash {
        Ok(())
    } else {
        Err(format!(
            "the snapshot rebuilt from the delta has content {rebuilt}, not {:?} as sent",
            record.snapshot.content_hash.escape_debug().to_string()
        ))
    }
}

/// A report of a batch, ready to store.
struct Accepted {
    done: tokio::sync::oneshot::Sender<Result<PushOutcome, Failed>>,
    /// The host as the report leaves it.
    record: HeldHost,
    /// The host before (as held, or as an earlier report of the batch left
    /// it); `None` for a new host.
    previous: Option<HeldHost>,
    /// Whether the host's facts, environment or state changed (or it is
    /// new, or was not shown fresh).
    host_level: bool,
    /// Whether every service of the host is reached (besides `host_level`,
    /// its fingerprint key changed).
    whole_host: bool,
}
