//! Finding rows: each finding's lifetime, opened and resolved with the
//! report (or the tick) that caused it, read back at start-up and a page at
//! a time per service.

use super::{PgStore, column, sql_limit};
use crate::store::rows;
use crate::store::{FindingChanges, FindingRecord, Page, PageAt, StoreError};

/// The columns a finding is read from, its row id last.
const COLUMNS: &str = "id, kind, severity, service, environments, key, host, summary,
                       first_seen_ms, last_seen_ms, resolved_ms, row_id";

fn record(r: &tokio_postgres::Row) -> Result<(i64, FindingRecord), tokio_postgres::Error> {
    let environments: String = r.try_get(4)?;
    Ok((
        r.try_get(11)?,
        FindingRecord {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            severity: r.try_get(2)?,
            service: r.try_get(3)?,
            environments: rows::environments_of(&environments),
            key: r.try_get(5)?,
            host: r.try_get(6)?,
            summary: r.try_get(7)?,
            first_seen_ms: r.try_get(8)?,
            last_seen_ms: r.try_get(9)?,
            resolved_ms: r.try_get(10)?,
        },
    ))
}

impl PgStore {
    /// Writes the findings that opened and resolved inside the transaction
    /// `tx`. Opening an id that is open changes nothing.
    pub(super) async fn write_findings(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        f: &FindingChanges,
    ) -> Result<(), StoreError> {
        // One statement each, the rows passed as arrays; opened rows get
        // their row ids in the order given.
        if !f.opened.is_empty() {
            let o = &f.opened;
            let open = tx
                .prepare_cached(
                    "INSERT INTO findings (id, kind, severity, service, environments, key,
                                           host, summary, first_seen_ms, last_seen_ms)
                     SELECT i, k, sv, s, e, ky, h, sm, f, l
                     FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[])
                          WITH ORDINALITY AS u(i, k, sv, s, e, ky, h, sm, f, l, ord)
                     ORDER BY ord
                     ON CONFLICT (id) WHERE resolved_ms IS NULL DO NOTHING",
                )
                .await
                .map_err(self.db("prepare finding write"))?;
            tx.execute(
                &open,
                &[
                    &column(o, |r| r.id.as_str()),
                    &column(o, |r| r.kind.as_str()),
                    &column(o, |r| r.severity.as_str()),
                    &column(o, |r| r.service.as_str()),
                    &column(o, |r| rows::environments_text(&r.environments)),
                    &column(o, |r| r.key.as_str()),
                    &column(o, |r| r.host.as_str()),
                    &column(o, |r| r.summary.as_str()),
                    &column(o, |r| r.first_seen_ms),
                    &column(o, |r| r.last_seen_ms),
                ],
            )
            .await
            .map_err(self.db("write opened finding"))?;
        }
        if !f.resolved.is_empty() {
            // An id resolved twice: the first resolution holds, as when
            // they were written one after the other.
            let mut seen = std::collections::HashSet::new();
            let first: Vec<_> = f.resolved.iter().filter(|r| seen.insert(&r.id)).collect();
            let rows = || first.iter().copied();
            let ids = column(rows(), |r| r.id.as_str());
            let resolved = column(rows(), |r| r.resolved_ms);
            let last_seen = column(rows(), |r| r.last_seen_ms);
            let resolve = tx
                .prepare_cached(
                    "UPDATE findings f
                     SET resolved_ms = u.resolved, last_seen_ms = GREATEST(f.last_seen_ms, u.seen)
                     FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) AS u(id, resolved, seen)
                     WHERE f.id = u.id AND f.resolved_ms IS NULL",
                )
                .await
                .map_err(self.db("prepare finding resolution"))?;
            tx.execute(&resolve, &[&ids, &resolved, &last_seen])
                .await
                .map_err(self.db("write resolved finding"))?;
        }
        Ok(())
    }

    /// Records findings that opened and resolved without a snapshot
    /// ([`Store::save_findings`]).
    ///
    /// [`Store::save_findings`]: crate::store::Store::save_findings
    pub(super) async fn record_findings(
        &self,
        findings: &FindingChanges,
    ) -> Result<(), StoreError> {
        if findings.is_empty() {
            return Ok(());
        }
        let _appending = self.appends.lock().await;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin finding write"))?;
        self.fenced(&tx).await?;
        self.write_findings(&tx, findings).await?;
        tx.commit().await.map_err(self.db("commit finding write"))
    }

    /// The findings recorded as open, oldest first ([`Store::open_findings`]).
    ///
    /// [`Store::open_findings`]: crate::store::Store::open_findings
    pub(super) async fn read_open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM findings WHERE resolved_ms IS NULL ORDER BY row_id"
                ),
                &[],
            )
            .await
            .map_err(self.db("query findings"))?;
        rows.iter()
            .map(|r| record(r).map(|(_, record)| record))
            .collect::<Result<_, _>>()
            .map_err(self.db("query findings"))
    }

    /// One page of a service's findings, oldest first
    /// ([`Store::finding_records`]).
    ///
    /// [`Store::finding_records`]: crate::store::Store::finding_records
    pub(super) async fn read_finding_records(
        &self,
        service: &str,
        at: PageAt,
    ) -> Result<Page<FindingRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM findings
                     WHERE service = $1 AND ($2::BIGINT IS NULL OR row_id < $2)
                     ORDER BY row_id DESC LIMIT $3"
                ),
                &[&service, &at.before, &sql_limit(at.limit)],
            )
            .await
            .map_err(self.db("query findings"))?;
        let rows = rows
            .iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.db("query findings"))?;
        Ok(Page::from_newest_first(rows, at.limit))
    }
}
