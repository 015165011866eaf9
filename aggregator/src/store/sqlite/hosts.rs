//! Host rows: each host's latest snapshot, read at start-up, updated with
//! what each report changed (with the changes and findings it brought), and
//! removed when the host is forgotten.
//!
//! A host is a `hosts` row, its snapshot's header (every field but the
//! containers, as their protobuf encoding), and one `containers` row per
//! container (its encoding, keyed by the host and the container id), so
//! that a report that changed one container writes one row.

use envparity_proto::time::unix_millis;
use envparity_proto::v1::Container;
use prost::Message;
use rusqlite::{Transaction, params};

use super::SqliteStore;
use crate::store::rows::{self, ContainerRow, HostRow};
use crate::store::{ContainerRows, FindingsToCome, HostWrite, Reported, StoreError, StoredHost};

impl SqliteStore {
    /// Every stored host, with its liveness, handed to `each` as it is
    /// read ([`Store::each_host`]).
    ///
    /// [`Store::each_host`]: crate::store::Store::each_host
    pub(super) fn read_hosts(&self, each: &mut dyn FnMut(StoredHost)) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT h.host_id, h.snapshot, h.container_order, h.received_at_ms,
                        COALESCE(l.last_seen_ms, h.last_seen_ms),
                        COALESCE(l.engine_state, h.engine_state)
                 FROM hosts h LEFT JOIN liveness l ON l.host_id = h.host_id
                 ORDER BY h.host_id",
            )
            .map_err(self.db("prepare host load"))?;
        let mut rows_of_containers = conn
            .prepare(
                "SELECT host_id, container_id, body FROM containers
                 ORDER BY host_id, container_id",
            )
            .map_err(self.db("prepare container load"))?;
        // Both are read in host order: the containers of each host follow
        // one another, and are streamed, not collected: one host at a time
        // is whole.
        let containers = rows_of_containers
            .query_map([], |r| {
                Ok(ContainerRow {
                    host_id: r.get(0)?,
                    container_id: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .map_err(self.db("load containers"))?;
        let hosts = stmt
            .query_map([], |r| {
                Ok(HostRow {
                    host_id: r.get(0)?,
                    snapshot: r.get(1)?,
                    order: r.get(2)?,
                    received_ms: r.get(3)?,
                    seen_ms: r.get(4)?,
                    engine_state: r.get(5)?,
                })
            })
            .map_err(self.db("load hosts"))?;
        for host in rows::assemble(hosts, containers) {
            each(
                host.map_err(self.db("load hosts"))?
                    .map_err(|d| StoreError::Corrupt {
                        path: self.path.clone(),
                        host_id: d.host_id,
                        reason: d.reason,
                    })?,
            );
        }
        Ok(())
    }

    /// Writes what each of `reports` changed of its host (its header,
    /// liveness and container rows) and appends its changes, then records
    /// `findings`, in one transaction ([`Store::save_reports`]): one commit
    /// (one `fsync`) for the batch.
    ///
    /// [`Store::save_reports`]: crate::store::Store::save_reports
    pub(super) fn write_reports(
        &self,
        reports: &[Reported<'_>],
        findings: FindingsToCome,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.db("begin snapshot write"))?;
        for report in reports {
            self.write_host(&tx, report.host)?;
            self.write_changes(&tx, report.changes)?;
        }
        // Dropping the transaction unwritten rolls it back.
        self.write_findings(&tx, &findings.wait()?)?;
        tx.commit().map_err(self.db("commit snapshot write"))
    }

    /// Writes a host's header, container rows and liveness.
    fn write_host(&self, tx: &Transaction<'_>, w: &HostWrite) -> Result<(), StoreError> {
        let s = &w.header;
        let boot_id = s.agent.as_ref().map_or("", |a| a.boot_id.as_str());
        let order = rows::order_text(w.order.as_ref());
        tx.prepare_cached(
            "INSERT INTO hosts (host_id, environment, snapshot, content_hash, boot_id, sequence,
                                received_at_ms, last_seen_ms, engine_state, container_order)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (host_id) DO UPDATE SET
                environment = excluded.environment, snapshot = excluded.snapshot,
                content_hash = excluded.content_hash, boot_id = excluded.boot_id,
                sequence = excluded.sequence, received_at_ms = excluded.received_at_ms,
                last_seen_ms = excluded.last_seen_ms, engine_state = excluded.engine_state,
                container_order = excluded.container_order",
        )
        .and_then(|mut upsert| {
            upsert.execute(params![
                s.host_id,
                s.environment,
                s.encode_to_vec(),
                s.content_hash,
                boot_id,
                i64::try_from(s.sequence).unwrap_or(i64::MAX),
                unix_millis(w.received_at),
                unix_millis(w.last_seen),
                w.engine_state as i32,
                order,
            ])
        })
        .map_err(self.db("write host snapshot"))?;
        self.write_containers(tx, &s.host_id, &w.containers)?;
        self.write_liveness(tx, &s.host_id, w.last_seen, w.engine_state)
    }

    /// Writes a host's container rows: all of them afresh, or only those a
    /// report changed. Writing a container id twice in one snapshot fails
    /// (ids are unique on an engine; the gRPC edge refuses such a report).
    fn write_containers(
        &self,
        tx: &Transaction<'_>,
        host_id: &str,
        rows: &ContainerRows,
    ) -> Result<(), StoreError> {
        let (upserted, removed): (&[Container], &[String]) = match rows {
            ContainerRows::All(all) => {
                tx.execute(
                    "DELETE FROM containers WHERE host_id = ?1",
                    params![host_id],
                )
                .map_err(self.db("replace container rows"))?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO containers (host_id, container_id, body) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(self.db("prepare container write"))?;
                for c in all {
                    insert
                        .execute(params![host_id, c.id, c.encode_to_vec()])
                        .map_err(self.db("write container row"))?;
                }
                return Ok(());
            }
            ContainerRows::Changed { upserted, removed } => (upserted, removed),
        };
        let mut delete = tx
            .prepare_cached("DELETE FROM containers WHERE host_id = ?1 AND container_id = ?2")
            .map_err(self.db("prepare container removal"))?;
        for id in removed {
            delete
                .execute(params![host_id, id])
                .map_err(self.db("remove container row"))?;
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO containers (host_id, container_id, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (host_id, container_id) DO UPDATE SET body = excluded.body",
            )
            .map_err(self.db("prepare container write"))?;
        for c in upserted {
            upsert
                .execute(params![host_id, c.id, c.encode_to_vec()])
                .map_err(self.db("write container row"))?;
        }
        Ok(())
    }

    /// Removes a host's snapshot and liveness, keeping its history
    /// ([`Store::forget_host`]); whether the host was stored.
    ///
    /// [`Store::forget_host`]: crate::store::Store::forget_host
    pub(super) fn delete_host(&self, host_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.db("begin forgetting a host"))?;
        let removed = tx
            .execute("DELETE FROM hosts WHERE host_id = ?1", params![host_id])
            .map_err(self.db("forget a host"))?;
        tx.execute(
            "DELETE FROM containers WHERE host_id = ?1",
            params![host_id],
        )
        .map_err(self.db("forget a host's containers"))?;
        tx.execute("DELETE FROM liveness WHERE host_id = ?1", params![host_id])
            .map_err(self.db("forget a host's liveness"))?;
        tx.commit().map_err(self.db("commit forgetting a host"))?;
        Ok(removed > 0)
    }
}
