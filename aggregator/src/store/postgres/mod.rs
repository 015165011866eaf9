//! The server store: one PostgreSQL database (docs/store.md), for fleets
//! that outgrow one SQLite file. One replica for now: the tables, the
//! answers, the paging and the order are SQLite's, so either backend serves
//! the same API; several replicas (leases, sharding) are not built yet.
//!
//! Synchronous calls over an async client. [`Store`] is synchronous and its
//! callers run it on tokio's blocking pool; tokio-postgres is async. The
//! store owns a small runtime of its own (one worker thread) that drives
//! its connections, and each call blocks on that runtime's [`Handle`] from
//! the caller's thread: a blocking-pool thread in `serve`, a plain thread
//! in tests and one-shot commands. No runtime worker thread of the server
//! ever waits on the database. Called from a runtime worker by mistake,
//! `Handle::block_on` panics: the mistake is loud, not a stalled worker.
//! Owning the runtime (rather than borrowing the server's) also lets the
//! store be opened where no runtime runs at all.
//!
//! Durability: a call returns after its transaction committed (PostgreSQL's
//! `synchronous_commit` as the server has it; its default is on).
//!
//! Files by concern, as in `sqlite/`: connecting and the connection pool
//! (`open.rs`), the versioned schema and its migrations (`schema.rs`), host
//! rows (`hosts.rs`), liveness (`liveness.rs`), the change history
//! (`changes.rs`), findings (`findings.rs`), alerts and their outbox
//! (`alerts.rs`), and an embedded store's rows written in (`import.rs`).

mod alerts;
mod changes;
mod findings;
mod hosts;
mod import;
mod lease;
#[cfg(test)]
mod lease_tests;
mod liveness;
mod open;
mod schema;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::SystemTime;

use envparity_proto::v1::EngineState;
use tokio::runtime::{Handle, Runtime};

use super::{
    AlertRow, Change, FindingChanges, FindingRecord, FindingsToCome, OutboxRow, Page, PageAt,
    Reported, Store, StoreError, StoredHost,
};

pub use lease::{Claim, Term};
pub use open::PgTarget;

/// The PostgreSQL-backed [`Store`].
pub struct PgStore {
    target: PgTarget,
    pool: deadpool_postgres::Pool,
    /// Held by the writes that append to the change history and the
    /// findings, one at a time as on SQLite: their row ids are then in
    /// commit order, so that a reader paging back by id never skips a row
    /// that committed late under a smaller id.
    appends: tokio::sync::Mutex<()>,
    /// The lease term every write must hold (`lease.rs`); `None` writes
    /// without one.
    fence: std::sync::RwLock<Option<Term>>,
    /// Drives the connections; `None` only while dropping.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The last owner may be an async task (the server's fleet): a
        // runtime may not be dropped there, but may be shut down in the
        // background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgStore {
    /// The database, as errors and logs name it.
    pub fn name(&self) -> &str {
        self.target.name()
    }

    /// Runs `f` to completion on the store's runtime, from the caller's
    /// (blocking) thread.
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    /// An error of `context` on this database.
    fn db(&self, context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
        move |e| self.target.error(context, &e)
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| self.target.pool_error(&e))
    }
}

/// One column of `rows`, as the array a statement reads with `UNNEST`
/// (rows written together, one statement for many).
fn column<'r, R: 'r, T>(rows: impl IntoIterator<Item = &'r R>, f: impl Fn(&'r R) -> T) -> Vec<T> {
    rows.into_iter().map(f).collect()
}

/// The SQL `LIMIT` that reads one row more than a page holds (see
/// [`Page::from_newest_first`]).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

impl Store for PgStore {
    fn each_host(&self, each: &mut dyn FnMut(StoredHost)) -> Result<(), StoreError> {
        self.read_hosts(each)
    }

    fn save_reports(
        &self,
        reports: &[Reported<'_>],
        findings: FindingsToCome,
    ) -> Result<(), StoreError> {
        self.block_on(self.write_reports(reports, findings))
    }

    fn save_findings(&self, findings: &FindingChanges) -> Result<(), StoreError> {
        self.block_on(self.record_findings(findings))
    }

    fn open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        self.block_on(self.read_open_findings())
    }

    fn finding_records(
        &self,
        service: &str,
        at: PageAt,
    ) -> Result<Page<FindingRecord>, StoreError> {
        self.block_on(self.read_finding_records(service, at))
    }

    fn forget_host(&self, host_id: &str) -> Result<bool, StoreError> {
        self.block_on(self.delete_host(host_id))
    }

    fn touch_many(&self, touches: &[(String, SystemTime, EngineState)]) -> Result<(), StoreError> {
        self.block_on(self.record_heartbeats(touches))
    }

    fn changes(&self, service: Option<&str>, at: PageAt) -> Result<Page<Change>, StoreError> {
        self.block_on(self.read_changes(service, at))
    }

    fn load_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.block_on(self.read_alerts())
    }

    fn save_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        self.block_on(self.write_alerts(alerts, outbox, forget_before_ms))
    }

    fn outbox(&self, sink: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.block_on(self.read_outbox(sink, limit))
    }

    fn outbox_done(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.block_on(self.delete_outbox(seqs))
    }
}
