//! The alert book and the notification outbox: alerts as JSON rows,
//! written together with the notifications they imply, and the queue each
//! sink drains.

use super::PgStore;
use crate::store::{AlertRow, OutboxRow, StoreError};

impl PgStore {
    /// The alerts recorded, by id ([`Store::load_alerts`]).
    ///
    /// [`Store::load_alerts`]: crate::store::Store::load_alerts
    pub(super) async fn read_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT id, body, resolved_ms FROM alerts ORDER BY id", &[])
            .await
            .map_err(self.db("read alerts"))?;
        rows.iter()
            .map(|r| {
                Ok(AlertRow {
                    id: r.try_get(0)?,
                    body: r.try_get(1)?,
                    resolved_ms: r.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(self.db("read alerts"))
    }

    /// Records alerts, queues their notifications and forgets old
    /// resolutions, in one transaction ([`Store::save_alerts`]).
    ///
    /// [`Store::save_alerts`]: crate::store::Store::save_alerts
    pub(super) async fn write_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin alert write"))?;
        self.fenced(&tx).await?;
        let upsert = tx
            .prepare_cached(
                "INSERT INTO alerts (id, body, resolved_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body,
                                                resolved_ms = excluded.resolved_ms",
            )
            .await
            .map_err(self.db("prepare alert write"))?;
        for a in alerts {
            tx.execute(&upsert, &[&a.id, &a.body, &a.resolved_ms])
                .await
                .map_err(self.db("write alert"))?;
        }
        let queue = tx
            .prepare_cached("INSERT INTO alert_outbox (sink, event) VALUES ($1, $2)")
            .await
            .map_err(self.db("prepare outbox write"))?;
        for o in outbox {
            tx.execute(&queue, &[&o.sink, &o.event])
                .await
                .map_err(self.db("queue notification"))?;
        }
        tx.execute(
            "DELETE FROM alerts WHERE resolved_ms IS NOT NULL AND resolved_ms < $1",
            &[&forget_before_ms],
        )
        .await
        .map_err(self.db("forget old alerts"))?;
        tx.commit().await.map_err(self.db("commit alert write"))
    }

    /// The oldest `limit` notifications queued for `sink`
    /// ([`Store::outbox`]).
    ///
    /// [`Store::outbox`]: crate::store::Store::outbox
    pub(super) async fn read_outbox(
        &self,
        sink: &str,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, sink, event FROM alert_outbox WHERE sink = $1 ORDER BY seq LIMIT $2",
                &[&sink, &limit],
            )
            .await
            .map_err(self.db("read outbox"))?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: r.try_get(0)?,
                    sink: r.try_get(1)?,
                    event: r.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(self.db("read outbox"))
    }

    /// Removes delivered (or given up) notifications
    /// ([`Store::outbox_done`]).
    ///
    /// [`Store::outbox_done`]: crate::store::Store::outbox_done
    pub(super) async fn delete_outbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin removing delivered notifications"))?;
        self.fenced(&tx).await?;
        tx.execute("DELETE FROM alert_outbox WHERE seq = ANY($1)", &[&seqs])
            .await
            .map_err(self.db("delete delivered notifications"))?;
        tx.commit()
            .await
            .map_err(self.db("commit removing delivered notifications"))
    }
}
