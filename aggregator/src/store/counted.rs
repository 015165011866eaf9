//! A [`Store`] that counts its failures: each failed call adds one to
//! `envparity_store_errors_total{op, error}`, whichever backend is under
//! it, so that a database that refuses writes or answers slowly shows on a
//! dashboard before the reports it fails do. `serve` puts every store it
//! opens behind this.

use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::v1::EngineState;

use super::{
    AlertRow, Change, FindingChanges, FindingRecord, FindingsToCome, OutboxRow, Page, PageAt,
    Reported, Store, StoreError, StoredHost,
};
use crate::metrics::Metrics;

/// `inner`, with its failures counted into `metrics`.
pub struct Counted {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").finish_non_exhaustive()
    }
}

impl Counted {
    /// Counts the failures of `inner` into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Counted { inner, metrics }
    }

    /// `result` of the call `op`, counted when it failed.
    fn count<T>(&self, op: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.metrics.store_error(op, e.class());
        }
        result
    }
}

impl Store for Counted {
    fn each_host(&self, each: &mut dyn FnMut(StoredHost)) -> Result<(), StoreError> {
        self.count("load_hosts", self.inner.each_host(each))
    }

    fn save_reports(
        &self,
        reports: &[Reported<'_>],
        findings: FindingsToCome,
    ) -> Result<(), StoreError> {
        self.count("save_reports", self.inner.save_reports(reports, findings))
    }

    fn save_findings(&self, findings: &FindingChanges) -> Result<(), StoreError> {
        self.count("save_findings", self.inner.save_findings(findings))
    }

    fn open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        self.count("open_findings", self.inner.open_findings())
    }

    fn finding_records(
        &self,
        service: &str,
        at: PageAt,
    ) -> Result<Page<FindingRecord>, StoreError> {
        self.count("finding_records", self.inner.finding_records(service, at))
    }

    fn forget_host(&self, host_id: &str) -> Result<bool, StoreError> {
        self.count("forget_host", self.inner.forget_host(host_id))
    }

    fn touch_many(&self, touches: &[(String, SystemTime, EngineState)]) -> Result<(), StoreError> {
        self.count("touch_many", self.inner.touch_many(touches))
    }

    fn changes(&self, service: Option<&str>, at: PageAt) -> Result<Page<Change>, StoreError> {
        self.count("changes", self.inner.changes(service, at))
    }

    fn load_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.count("load_alerts", self.inner.load_alerts())
    }

    fn save_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        self.count(
            "save_alerts",
            self.inner.save_alerts(alerts, outbox, forget_before_ms),
        )
    }

    fn outbox(&self, sink: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.count("outbox", self.inner.outbox(sink, limit))
    }

    fn outbox_done(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.count("outbox_done", self.inner.outbox_done(seqs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// A failing call is counted under its name and its error's class; a
    /// call that succeeds is not.
    #[test]
    fn failures_are_counted_by_call_and_class() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let inner: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let store = Counted::new(inner, Arc::clone(&metrics));
        store.load_hosts().unwrap();
        // The outbox's table dropped behind the open store's back: the
        // next read of it fails inside SQLite.
        rusqlite::Connection::open(dir.path().join("envparity.db"))
            .unwrap()
            .execute_batch("DROP TABLE alert_outbox")
            .unwrap();
        let failed = store.outbox("hook", 10);
        assert!(failed.is_err(), "{failed:?}");
        let text = metrics.render(&crate::metrics::Census::default());
        let line = text
            .lines()
            .find(|l| l.starts_with("envparity_store_errors_total{"))
            .unwrap_or_else(|| panic!("no store error counted in\n{text}"));
        assert_eq!(
            line,
            format!(
                "envparity_store_errors_total{{op=\"outbox\",error=\"{}\"}} 1",
                failed.unwrap_err().class()
            )
        );
        assert!(!text.contains("op=\"load_hosts\""), "{text}");
    }
}
