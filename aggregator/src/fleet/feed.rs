//! The change feed: which open findings changed since alerting last asked,
//! and a wake-up when they may have.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Fleet;
use crate::parity::FindingKey;

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

    pub(super) fn add<'a>(&mut self, keys: impl IntoIterator<Item = &'a FindingKey>) {
        if !self.everything {
            self.keys.extend(keys.into_iter().cloned());
        }
    }
}

/// The feed the fleet writes and alerting reads.
#[derive(Debug)]
pub(super) struct Feed {
    /// Signalled whenever the ledger may have changed (alerting listens).
    notify: tokio::sync::Notify,
    /// Which findings changed since alerting last asked.
    keys: Mutex<Changed>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            notify: tokio::sync::Notify::new(),
            keys: Mutex::new(Changed::everything()),
        }
    }
}

impl Feed {
    /// The keys changed so far (to add to, or take).
    pub(super) fn keys(&self) -> MutexGuard<'_, Changed> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the listener.
    pub(super) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Makes the next take say everything changed.
    pub(super) fn everything(&self) {
        *self.keys() = Changed::everything();
    }
}

impl Fleet {
    /// Resolves when the open findings may have changed since the last
    /// call (one waiter: the alerting task).
    pub async fn changed(&self) {
        self.feed.notify.notified().await;
    }

    /// Which open findings changed since the last call (for alerting): the
    /// ones a report, time passing or a new policy opened, updated or
    /// resolved; `everything` on the first call and after
    /// [`Fleet::all_changed`].
    pub fn take_changed(&self) -> Changed {
        std::mem::replace(&mut *self.feed.keys(), Changed::nothing())
    }

    /// Makes the next [`Fleet::take_changed`] say everything changed (for
    /// alerting, when it could not record what it saw).
    pub fn all_changed(&self) {
        self.feed.everything();
    }
}
