//! The change history: containers added, removed or given new image
//! content, appended with each snapshot and read a page at a time.

use rusqlite::params;

use super::{SqliteStore, sql_limit};
use crate::store::{Change, ChangeKind, Page, PageAt, StoreError};

impl SqliteStore {
    /// Appends a snapshot's changes inside its transaction `tx`.
    pub(super) fn write_changes(
        &self,
        tx: &rusqlite::Transaction<'_>,
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO changes (host_id, environment, service, container, what,
                                      old_image, new_image, observed_at_ms, received_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(self.db("prepare change write"))?;
        for c in changes {
            insert
                .execute(params![
                    c.host_id,
                    c.environment,
                    c.service,
                    c.container,
                    c.what.as_str(),
                    c.old_image,
                    c.new_image,
                    c.observed_at_ms,
                    c.received_at_ms,
                ])
                .map_err(self.db("write change"))?;
        }
        Ok(())
    }

    /// One page of the changes of a service, or of every service, oldest
    /// first ([`Store::changes`]).
    ///
    /// [`Store::changes`]: crate::store::Store::changes
    pub(super) fn read_changes(
        &self,
        service: Option<&str>,
        at: PageAt,
    ) -> Result<Page<Change>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT host_id, environment, service, container, what, old_image, new_image,
                        observed_at_ms, received_at_ms, id
                 FROM changes WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(self.db("prepare change query"))?;
        let rows = stmt
            .query_map(params![service, at.before, sql_limit(at.limit)], |r| {
                Ok((
                    Change {
                        host_id: r.get(0)?,
                        environment: r.get(1)?,
                        service: r.get(2)?,
                        container: r.get(3)?,
                        what: ChangeKind::Added,
                        old_image: r.get(5)?,
                        new_image: r.get(6)?,
                        observed_at_ms: r.get(7)?,
                        received_at_ms: r.get(8)?,
                    },
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(9)?,
                ))
            })
            .map_err(self.db("query changes"))?;
        let mut out = Vec::new();
        for row in rows {
            let (mut change, what, id) = row.map_err(self.db("query changes"))?;
            change.what = ChangeKind::parse(&what).ok_or_else(|| StoreError::Corrupt {
                path: self.path.clone(),
                host_id: change.host_id.clone(),
                reason: format!("unknown change kind {what:?}"),
            })?;
            out.push((id, change));
        }
        Ok(Page::from_newest_first(out, at.limit))
    }
}
