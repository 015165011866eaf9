//! The change history: containers added, removed or given new image
//! content, appended with each report and read a page at a time.

use super::{PgStore, column, sql_limit};
use crate::store::{Change, ChangeKind, Page, PageAt, StoreError};

impl PgStore {
    /// Appends changes inside the transaction `tx`, in one statement: their
    /// ids follow the order given (the rows are inserted in their ordinal
    /// order), which readers page by.
    pub(super) async fn write_changes(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        changes: &[&Change],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows = || changes.iter().copied();
        let insert = tx
            .prepare_cached(
                "INSERT INTO changes (host_id, environment, service, container, what,
                                      old_image, new_image, observed_at_ms, received_at_ms)
                 SELECT h, e, s, c, w, o, n, ob, r
                 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                             $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[])
                      WITH ORDINALITY AS u(h, e, s, c, w, o, n, ob, r, ord)
                 ORDER BY ord",
            )
            .await
            .map_err(self.db("prepare change write"))?;
        tx.execute(
            &insert,
            &[
                &column(rows(), |c| c.host_id.as_str()),
                &column(rows(), |c| c.environment.as_str()),
                &column(rows(), |c| c.service.as_str()),
                &column(rows(), |c| c.container.as_str()),
                &column(rows(), |c| c.what.as_str()),
                &column(rows(), |c| c.old_image.as_str()),
                &column(rows(), |c| c.new_image.as_str()),
                &column(rows(), |c| c.observed_at_ms),
                &column(rows(), |c| c.received_at_ms),
            ],
        )
        .await
        .map_err(self.db("write change"))?;
        Ok(())
    }

    /// One page of the changes of a service, or of every service, oldest
    /// first ([`Store::changes`]).
    ///
    /// [`Store::changes`]: crate::store::Store::changes
    pub(super) async fn read_changes(
        &self,
        service: Option<&str>,
        at: PageAt,
    ) -> Result<Page<Change>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT host_id, environment, service, container, what, old_image, new_image,
                        observed_at_ms, received_at_ms, id
                 FROM changes
                 WHERE ($1::TEXT IS NULL OR service = $1) AND ($2::BIGINT IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
                &[&service, &at.before, &sql_limit(at.limit)],
            )
            .await
            .map_err(self.db("query changes"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let decode = || -> Result<(Change, String, i64), tokio_postgres::Error> {
                Ok((
                    Change {
                        host_id: r.try_get(0)?,
                        environment: r.try_get(1)?,
                        service: r.try_get(2)?,
                        container: r.try_get(3)?,
                        what: ChangeKind::Added,
                        old_image: r.try_get(5)?,
                        new_image: r.try_get(6)?,
                        observed_at_ms: r.try_get(7)?,
                        received_at_ms: r.try_get(8)?,
                    },
                    r.try_get(4)?,
                    r.try_get(9)?,
                ))
            };
            let (mut change, what, id) = decode().map_err(self.db("query changes"))?;
            change.what = ChangeKind::parse(&what).ok_or_else(|| StoreError::Postgres {
                store: self.name().to_owned(),
                context: "query changes",
                reason: format!(
                    "a change of host {:?} has an unknown kind {what:?}",
                    change.host_id
                ),
            })?;
            out.push((id, change));
        }
        Ok(Page::from_newest_first(out, at.limit))
    }
}
