//! The alert book and the notification outbox: alerts as JSON rows,
//! written together with the notifications they imply, and the queue each
//! sink drains.

use rusqlite::params;

use super::SqliteStore;
use crate::store::{AlertRow, OutboxRow, StoreError};

impl SqliteStore {
    /// The alerts recorded, by id ([`Store::load_alerts`]).
    ///
    /// [`Store::load_alerts`]: crate::store::Store::load_alerts
    pub(super) fn read_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, body, resolved_ms FROM alerts ORDER BY id")
            .map_err(self.db("prepare alert read"))?;
        stmt.query_map([], |r| {
            Ok(AlertRow {
                id: r.get(0)?,
                body: r.get(1)?,
                resolved_ms: r.get(2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(self.db("read alerts"))
    }

    /// Records alerts, queues their notifications and forgets old
    /// resolutions, in one transaction ([`Store::save_alerts`]).
    ///
    /// [`Store::save_alerts`]: crate::store::Store::save_alerts
    pub(super) fn write_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.db("begin alert write"))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO alerts (id, body, resolved_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET body = ?2, resolved_ms = ?3",
                )
                .map_err(self.db("prepare alert write"))?;
            for a in alerts {
                upsert
                    .execute(params![a.id, a.body, a.resolved_ms])
                    .map_err(self.db("write alert"))?;
            }
            let mut queue = tx
                .prepare_cached("INSERT INTO alert_outbox (sink, event) VALUES (?1, ?2)")
                .map_err(self.db("prepare outbox write"))?;
            for o in outbox {
                queue
                    .execute(params![o.sink, o.event])
                    .map_err(self.db("queue notification"))?;
            }
            tx.execute(
                "DELETE FROM alerts WHERE resolved_ms IS NOT NULL AND resolved_ms < ?1",
                params![forget_before_ms],
            )
            .map_err(self.db("forget old alerts"))?;
        }
        tx.commit().map_err(self.db("commit alert write"))
    }

    /// The oldest `limit` notifications queued for `sink`
    /// ([`Store::outbox`]).
    ///
    /// [`Store::outbox`]: crate::store::Store::outbox
    pub(super) fn read_outbox(
        &self,
        sink: &str,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, sink, event FROM alert_outbox WHERE sink = ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(self.db("prepare outbox read"))?;
        stmt.query_map(params![sink, limit], |r| {
            Ok(OutboxRow {
                seq: r.get(0)?,
                sink: r.get(1)?,
                event: r.get(2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(self.db("read outbox"))
    }

    /// Removes delivered (or given up) notifications
    /// ([`Store::outbox_done`]).
    ///
    /// [`Store::outbox_done`]: crate::store::Store::outbox_done
    pub(super) fn delete_outbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.db("begin outbox delete"))?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM alert_outbox WHERE seq = ?1")
                .map_err(self.db("prepare outbox delete"))?;
            for seq in seqs {
                delete
                    .execute(params![seq])
                    .map_err(self.db("delete delivered notification"))?;
            }
        }
        tx.commit().map_err(self.db("commit outbox delete"))
    }
}
