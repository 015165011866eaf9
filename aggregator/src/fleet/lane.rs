//! The ingest lane: pushed reports ([`Report`]) wait here, and a task of their own
//! stores them in batches, one transaction per batch (group commit), each
//! report acknowledged once its batch is committed.
//!
//! The task, not the caller, carries a batch from the store to memory, so
//! a call that goes away (its client disconnected) cannot stop a batch
//! between the two.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use envparity_proto::v1::{Container, HostSnapshot};
use tokio::sync::oneshot;

use super::compact::HeldHost;
use super::liveness::Failed;
use crate::store::Change as StoreChange;

/// The most reports stored in one transaction. The reports waiting are
/// bounded anyway by the calls in flight (`server::budget`); this bounds
/// the work between two releases of the ingest lock, so that a tick or a
/// policy reload waits for one batch at most.
pub(super) const MAX_BATCH: usize = 256;

/// A report as it came: a whole snapshot, or what changed since the one
/// held ([`envparity_proto::delta`]).
#[derive(Debug)]
pub enum Report {
    /// A whole snapshot.
    Whole(HostSnapshot),
    /// A delta ([`envparity_proto::delta`]).
    Delta(Delta),
    /// A delta already applied to the host held when it came (checked and
    /// made ready beside other calls, not in the one lane); the lane takes
    /// it as it is when that host is still its base.
    Prepared(Box<Prepared>),
}

/// A delta: the header (a snapshot without containers), the content hash
/// of its base, the containers added or changed, the ids gone.
#[derive(Debug)]
pub struct Delta {
    pub(super) header: HostSnapshot,
    pub(super) base_content_hash: String,
    pub(super) upserted: Vec<Container>,
    pub(super) removed: Vec<String>,
}

/// A delta applied to its base ([`Report::Prepared`]).
#[derive(Debug)]
pub struct Prepared {
    /// The header of the host it was applied to: its base, still held when
    /// the lane finds the same one (the same allocation; kept alive here,
    /// so that no other can take its address).
    pub(super) base: Arc<HostSnapshot>,
    /// The content hash of the base.
    pub(super) base_content_hash: String,
    /// The host as the delta leaves it.
    pub(super) record: HeldHost,
    /// The changes it brings, for the history.
    pub(super) changes: Vec<StoreChange>,
    /// The containers it adds or changes, as they came.
    pub(super) upserted: Vec<Container>,
    /// The ids of those it removes.
    pub(super) removed: Vec<String>,
}

impl Prepared {
    /// The delta as it came, to apply to another base.
    pub(super) fn into_delta(self) -> Delta {
        Delta {
            header: Arc::unwrap_or_clone(self.record.snapshot),
            base_content_hash: self.base_content_hash,
            upserted: self.upserted,
            removed: self.removed,
        }
    }
}

impl Report {
    /// The reporting host.
    pub fn host_id(&self) -> &str {
        &self.header().host_id
    }

    /// The snapshot, or the delta's header (without containers).
    pub(super) fn header(&self) -> &HostSnapshot {
        match self {
            Report::Whole(s) | Report::Delta(Delta { header: s, .. }) => s,
            Report::Prepared(p) => &p.record.snapshot,
        }
    }
}

/// What happened to a pushed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The content hash now held for the host.
    pub content_hash: String,
    /// True when the report was a replay of one already held.
    pub duplicate: bool,
}

/// A report waiting to be stored, with whoever waits for its answer.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) report: Report,
    /// When it was received (at the store's precision).
    pub(super) now: SystemTime,
    pub(super) done: oneshot::Sender<Result<PushOutcome, Failed>>,
}

/// The reports waiting, and whether a task is storing them.
#[derive(Debug, Default)]
pub(super) struct Lane(Mutex<Queue>);

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Pending>,
    draining: bool,
}

impl Lane {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `pending`; true when no task is storing reports, so that
    /// the caller must start one.
    pub(super) fn push(&self, pending: Pending) -> bool {
        let mut queue = self.queue();
        queue.waiting.push(pending);
        !std::mem::replace(&mut queue.draining, true)
    }

    /// The next batch, oldest first; `None` when none waits, and then the
    /// lane is idle (the next push starts a task).
    pub(super) fn next_batch(&self) -> Option<Vec<Pending>> {
        let mut queue = self.queue();
        if queue.waiting.is_empty() {
            queue.draining = false;
            return None;
        }
        let at = queue.waiting.len().min(MAX_BATCH);
        let rest = queue.waiting.split_off(at);
        Some(std::mem::replace(&mut queue.waiting, rest))
    }

    /// How many reports wait.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.queue().waiting.len()
    }

    /// After the storing task failed (panicked): every waiting report is
    /// answered with an error (its sender dropped) and the lane is idle.
    pub(super) fn abandon(&self) {
        let mut queue = self.queue();
        queue.waiting.clear();
        queue.draining = false;
    }
}

/// Abandons the lane if the storing task unwinds.
pub(super) struct AbandonOnPanic<'a>(pub(super) &'a Lane);

impl Drop for AbandonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                "the ingest task failed; the reports waiting for it are refused and their agents send them again"
            );
            self.0.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(host: &str) -> (Pending, oneshot::Receiver<Result<PushOutcome, Failed>>) {
        let (done, answer) = oneshot::channel();
        let report = Report::Whole(envparity_proto::v1::HostSnapshot {
            host_id: host.into(),
            ..Default::default()
        });
        let now = SystemTime::UNIX_EPOCH;
        (Pending { report, now, done }, answer)
    }

    #[test]
    fn batches_come_oldest_first_bounded_and_the_lane_goes_idle_when_empty() {
        let lane = Lane::default();
        let mut answers = Vec::new();
        for i in 0..MAX_BATCH + 3 {
            let (p, a) = pending(&format!("h{i}"));
            // Only the first push finds the lane idle.
            assert_eq!(lane.push(p), i == 0);
            answers.push(a);
        }
        let first = lane.next_batch().expect("a batch");
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].report.host_id(), "h0");
        let second = lane.next_batch().expect("the rest");
        let ids: Vec<&str> = second.iter().map(|p| p.report.host_id()).collect();
        assert_eq!(
            ids,
            [
                format!("h{MAX_BATCH}"),
                format!("h{}", MAX_BATCH + 1),
                format!("h{}", MAX_BATCH + 2)
            ]
        );
        assert!(lane.next_batch().is_none());
        // Idle again: the next push must start a task.
        let (p, _a) = pending("later");
        assert!(lane.push(p));
    }

    #[test]
    fn an_abandoned_lane_answers_its_waiting_reports_with_an_error_and_goes_idle() {
        let lane = Lane::default();
        let (p, mut answer) = pending("h1");
        assert!(lane.push(p));
        lane.abandon();
        assert!(
            matches!(answer.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "the waiting report is answered"
        );
        let (p, _a) = pending("h2");
        assert!(lane.push(p), "the lane is idle again");
    }
}
