//! Finding rows: each finding's lifetime, opened and resolved with the
//! report (or the tick) that caused it, read back at start-up and a page at
//! a time per service.

use rusqlite::params;

use super::{SqliteStore, sql_limit};
use crate::store::rows;
use crate::store::{FindingChanges, FindingRecord, Page, PageAt, StoreError};

impl SqliteStore {
    /// Writes the findings that opened and resolved inside the transaction
    /// `tx`.
    pub(super) fn write_findings(
        &self,
        tx: &rusqlite::Transaction<'_>,
        f: &FindingChanges,
    ) -> Result<(), StoreError> {
        let mut open = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO findings (id, kind, severity, service, environments, key,
                                                 host, summary, first_seen_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(self.db("prepare finding write"))?;
        for r in &f.opened {
            open.execute(params![
                r.id,
                r.kind,
                r.severity,
                r.service,
                rows::environments_text(&r.environments),
                r.key,
                r.host,
                r.summary,
                r.first_seen_ms,
                r.last_seen_ms,
            ])
            .map_err(self.db("write opened finding"))?;
        }
        let mut resolve = tx
            .prepare_cached(
                "UPDATE findings SET resolved_ms = ?2, last_seen_ms = MAX(last_seen_ms, ?3)
                 WHERE id = ?1 AND resolved_ms IS NULL",
            )
            .map_err(self.db("prepare finding resolution"))?;
        for r in &f.resolved {
            resolve
                .execute(params![r.id, r.resolved_ms, r.last_seen_ms])
                .map_err(self.db("write resolved finding"))?;
        }
        Ok(())
    }

    /// Finding rows selected by `tail` (the `WHERE … ORDER BY row_id DESC
    /// [LIMIT …]` part, over `args`), newest first, each with its row id.
    fn query_findings(
        &self,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<(i64, FindingRecord)>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT id, kind, severity, service, environments, key, host, summary,
                    first_seen_ms, last_seen_ms, resolved_ms, row_id
             FROM findings {tail}"
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(self.db("prepare finding query"))?;
        let rows = stmt
            .query_map(args, |r| {
                let environments: String = r.get(4)?;
                let record = FindingRecord {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    severity: r.get(2)?,
                    service: r.get(3)?,
                    environments: rows::environments_of(&environments),
                    key: r.get(5)?,
                    host: r.get(6)?,
                    summary: r.get(7)?,
                    first_seen_ms: r.get(8)?,
                    last_seen_ms: r.get(9)?,
                    resolved_ms: r.get(10)?,
                };
                Ok((r.get(11)?, record))
            })
            .map_err(self.db("query findings"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.db("query findings"))
    }

    /// Records findings that opened and resolved without a snapshot
    /// ([`Store::save_findings`]).
    ///
    /// [`Store::save_findings`]: crate::store::Store::save_findings
    pub(super) fn record_findings(&self, findings: &FindingChanges) -> Result<(), StoreError> {
        if findings.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.db("begin finding write"))?;
        self.write_findings(&tx, findings)?;
        tx.commit().map_err(self.db("commit finding write"))
    }

    /// The findings recorded as open, oldest first ([`Store::open_findings`]).
    ///
    /// [`Store::open_findings`]: crate::store::Store::open_findings
    pub(super) fn read_open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        let mut open = self.query_findings("WHERE resolved_ms IS NULL ORDER BY row_id DESC", [])?;
        open.reverse();
        Ok(open.into_iter().map(|(_, record)| record).collect())
    }

    /// One page of a service's findings, oldest first
    /// ([`Store::finding_records`]).
    ///
    /// [`Store::finding_records`]: crate::store::Store::finding_records
    pub(super) fn read_finding_records(
        &self,
        service: &str,
        at: PageAt,
    ) -> Result<Page<FindingRecord>, StoreError> {
        let rows = self.query_findings(
            "WHERE service = ?1 AND (?2 IS NULL OR row_id < ?2) ORDER BY row_id DESC LIMIT ?3",
            params![service, at.before, sql_limit(at.limit)],
        )?;
        Ok(Page::from_newest_first(rows, at.limit))
    }
}
