//! The findings of a group commit, given to the store once the caller has
//! evaluated the reports the store writes meanwhile
//! ([`Store::save_reports`](super::Store::save_reports)): evaluating a batch
//! and writing its reports overlap, and still go in one transaction.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{FindingChanges, StoreError};

/// The findings a group commit writes last: known already, or to come
/// from a [`FindingsSender`].
#[derive(Debug)]
pub struct FindingsToCome(Source);

#[derive(Debug)]
enum Source {
    Ready(FindingChanges),
    Later(Receiver<FindingChanges>),
}

/// Where the caller gives the findings of a group commit. Dropped without
/// giving them (their evaluation failed), the store writes nothing of it.
#[derive(Debug)]
pub struct FindingsSender(SyncSender<FindingChanges>);

impl FindingsToCome {
    /// Findings known already.
    pub fn ready(findings: FindingChanges) -> Self {
        Self(Source::Ready(findings))
    }

    /// Findings to come from the sender.
    pub fn later() -> (FindingsSender, Self) {
        let (sender, receiver) = sync_channel(1);
        (FindingsSender(sender), Self(Source::Later(receiver)))
    }

    /// The findings, once given; blocks until then. An error when the
    /// sender went without giving them: the store then rolls back.
    pub fn wait(self) -> Result<FindingChanges, StoreError> {
        match self.0 {
            Source::Ready(findings) => Ok(findings),
            Source::Later(receiver) => receiver.recv().map_err(|_| StoreError::Abandoned),
        }
    }
}

impl FindingsSender {
    /// Gives the findings. The store may have stopped waiting (a write of
    /// the reports failed): then they go nowhere, and the caller learns
    /// of the failure from the store call.
    pub fn send(self, findings: FindingChanges) {
        let _ = self.0.send(findings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_come_ready_or_from_the_sender_and_none_is_an_error() {
        assert!(
            FindingsToCome::ready(FindingChanges::default())
                .wait()
                .is_ok()
        );
        let (sender, later) = FindingsToCome::later();
        let waiting = std::thread::spawn(move || later.wait());
        sender.send(FindingChanges::default());
        assert!(waiting.join().unwrap().is_ok());
        let (sender, later) = FindingsToCome::later();
        drop(sender);
        assert!(matches!(later.wait(), Err(StoreError::Abandoned)));
    }
}
