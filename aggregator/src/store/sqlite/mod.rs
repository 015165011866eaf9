//! The embedded store: one SQLite database in WAL mode under the data
//! directory.
//!
//! Durability: `synchronous = FULL` makes every committed transaction survive
//! a crash or power loss, which is what "acknowledged after commit" needs.
//! Snapshots are stored as their protobuf encoding, the header and each
//! container in rows of their own — the versioned wire contract is also
//! the storage format, so a newer agent's fields survive a round trip
//! through an older table layout.
//!
//! This file holds the store itself and its [`Store`] implementation, which
//! hands each call to the file of its concern: opening the database
//! (`open.rs`), its schema and upgrades (`schema.rs`), host snapshots
//! (`hosts.rs`), liveness (`liveness.rs`), the change history
//! (`changes.rs`), findings (`findings.rs`), alerts with their
//! notification outbox (`alerts.rs`), and every row read out for an
//! import into PostgreSQL (`export.rs`).

mod alerts;
mod changes;
mod export;
mod findings;
mod hosts;
mod liveness;
mod open;
mod schema;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use envparity_proto::v1::EngineState;
use rusqlite::Connection;

use super::{
    AlertRow, Change, FindingChanges, FindingRecord, FindingsToCome, OutboxRow, Page, PageAt,
    Reported, Store, StoreError, StoredHost,
};

pub use open::check_writable;
pub(super) use schema::SCHEMA_VERSION;

/// The SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: self.path.clone(),
            context,
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The SQL `LIMIT` that reads one row more than a page holds (see
/// [`Page::from_newest_first`]).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn each_host(&self, each: &mut dyn FnMut(StoredHost)) -> Result<(), StoreError> {
        self.read_hosts(each)
    }

    fn save_reports(
        &self,
        reports: &[Reported<'_>],
        findings: FindingsToCome,
    ) -> Result<(), StoreError> {
        self.write_reports(reports, findings)
    }

    fn save_findings(&self, findings: &FindingChanges) -> Result<(), StoreError> {
        self.record_findings(findings)
    }

    fn open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        self.read_open_findings()
    }

    fn finding_records(
        &self,
        service: &str,
        at: PageAt,
    ) -> Result<Page<FindingRecord>, StoreError> {
        self.read_finding_records(service, at)
    }

    fn forget_host(&self, host_id: &str) -> Result<bool, StoreError> {
        self.delete_host(host_id)
    }

    fn touch_many(&self, touches: &[(String, SystemTime, EngineState)]) -> Result<(), StoreError> {
        self.record_heartbeats(touches)
    }

    fn load_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.read_alerts()
    }

    fn save_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        self.write_alerts(alerts, outbox, forget_before_ms)
    }

    fn outbox(&self, sink: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.read_outbox(sink, limit)
    }

    fn outbox_done(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.delete_outbox(seqs)
    }

    fn changes(&self, service: Option<&str>, at: PageAt) -> Result<Page<Change>, StoreError> {
        self.read_changes(service, at)
    }
}
