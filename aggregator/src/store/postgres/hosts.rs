//! Host rows: each host's latest snapshot header, its container rows and
//! liveness, read at start-up, written with what each report changed (with
//! the changes and findings it brought), removed when a host is forgotten.
//! The rows are SQLite's (`sqlite/hosts.rs`); `store::rows` assembles them.

use envparity_proto::time::unix_millis;
use envparity_proto::v1::Container;
use prost::Message;

use super::PgStore;
use crate::store::rows::{self, ContainerRow, HostRow};
use crate::store::{
    Change, ContainerRows, FindingsToCome, HostWrite, Reported, StoreError, StoredHost,
};

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// Rows fetched per round trip when loading hosts: enough to keep the
/// round trips few, few enough that a chunk of container rows stays small.
const LOAD_CHUNK: i32 = 500;

impl PgStore {
    /// Every stored host, with its liveness, handed to `each` as it is
    /// read ([`Store::each_host`]). Blocks the caller's thread.
    ///
    /// Both row streams are read through portals, [`LOAD_CHUNK`] rows at a
    /// time, in one read-only transaction: memory holds a chunk of each and
    /// the host being assembled, whatever the fleet's size, and a report
    /// committing meanwhile cannot pair a host with another version's
    /// containers.
    ///
    /// [`Store::each_host`]: crate::store::Store::each_host
    pub(super) fn read_hosts(&self, each: &mut dyn FnMut(StoredHost)) -> Result<(), StoreError> {
        let mut client = self.block_on(self.client())?;
        let tx = self
            .block_on(
                client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start(),
            )
            .map_err(self.db("begin host load"))?;
        let hosts = self
            .block_on(tx.bind(
                "SELECT h.host_id, h.snapshot, h.container_order, h.received_at_ms,
                        COALESCE(l.last_seen_ms, h.last_seen_ms),
                        COALESCE(l.engine_state, h.engine_state)
                 FROM hosts h LEFT JOIN liveness l ON l.host_id = h.host_id
                 ORDER BY h.host_id",
                &[],
            ))
            .map_err(self.db("load hosts"))?;
        let containers = self
            .block_on(tx.bind(
                "SELECT host_id, container_id, body FROM containers
                 ORDER BY host_id, container_id",
                &[],
            ))
            .map_err(self.db("load containers"))?;
        let hosts = self.fetched(&tx, &hosts).map(|r| {
            let r = r?;
            Ok::<_, tokio_postgres::Error>(HostRow {
                host_id: r.try_get(0)?,
                snapshot: r.try_get(1)?,
                order: r.try_get(2)?,
                received_ms: r.try_get(3)?,
                seen_ms: r.try_get(4)?,
                engine_state: r.try_get(5)?,
            })
        });
        let containers = self.fetched(&tx, &containers).map(|r| {
            let r = r?;
            Ok(ContainerRow {
                host_id: r.try_get(0)?,
                container_id: r.try_get(1)?,
                body: r.try_get(2)?,
            })
        });
        for host in rows::assemble(hosts, containers) {
            each(
                host.map_err(self.db("load hosts"))?
                    .map_err(|d| StoreError::Postgres {
                        store: self.name().to_owned(),
                        context: "load hosts",
                        reason: format!(
                            "stored snapshot of host {:?} is unreadable: {}",
                            d.host_id, d.reason
                        ),
                    })?,
            );
        }
        self.block_on(tx.commit()).map_err(self.db("end host load"))
    }

    /// The rows of `portal`, fetched [`LOAD_CHUNK`] at a time as they are
    /// asked for; after an error, nothing.
    fn fetched<'a>(
        &'a self,
        tx: &'a Tx<'_>,
        portal: &'a tokio_postgres::Portal,
    ) -> impl Iterator<Item = Result<tokio_postgres::Row, tokio_postgres::Error>> + 'a {
        let mut chunk = std::collections::VecDeque::new();
        let mut done = false;
        std::iter::from_fn(move || {
            if chunk.is_empty() && !done {
                match self.block_on(tx.query_portal(portal, LOAD_CHUNK)) {
                    Ok(rows) => {
                        // A short chunk is the last one.
                        done = rows.len() < LOAD_CHUNK as usize;
                        chunk.extend(rows);
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
            }
            chunk.pop_front().map(Ok)
        })
    }

    /// Writes what each of `reports` changed of its host and appends its
    /// changes, then records `findings`, in one transaction
    /// ([`Store::save_reports`]): all of it, or none.
    ///
    /// [`Store::save_reports`]: crate::store::Store::save_reports
    pub(super) async fn write_reports(
        &self,
        reports: &[Reported<'_>],
        findings: FindingsToCome,
    ) -> Result<(), StoreError> {
        let _appending = self.appends.lock().await;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin snapshot write"))?;
        self.fenced(&tx).await?;
        for report in reports {
            self.write_host(&tx, report.host).await?;
        }
        // Every report's changes in one statement, in the reports' order.
        let changes: Vec<&Change> = reports.iter().flat_map(|r| r.changes).collect();
        self.write_changes(&tx, &changes).await?;
        // Blocks this (blocking-pool) thread until the findings come; the
        // connection is driven by the store's runtime meanwhile. Dropping
        // the transaction unwritten rolls it back.
        self.write_findings(&tx, &findings.wait()?).await?;
        tx.commit().await.map_err(self.db("commit snapshot write"))
    }

    /// Writes a host's header, container rows and liveness.
    async fn write_host(&self, tx: &Tx<'_>, w: &HostWrite) -> Result<(), StoreError> {
        let s = &w.header;
        let boot_id = s.agent.as_ref().map_or("", |a| a.boot_id.as_str());
        let order = rows::order_text(w.order.as_ref());
        let upsert = tx
            .prepare_cached(
                "INSERT INTO hosts (host_id, environment, snapshot, content_hash, boot_id,
                                    sequence, received_at_ms, last_seen_ms, engine_state,
                                    container_order)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (host_id) DO UPDATE SET
                    environment = excluded.environment, snapshot = excluded.snapshot,
                    content_hash = excluded.content_hash, boot_id = excluded.boot_id,
                    sequence = excluded.sequence, received_at_ms = excluded.received_at_ms,
                    last_seen_ms = excluded.last_seen_ms, engine_state = excluded.engine_state,
                    container_order = excluded.container_order",
            )
            .await
            .map_err(self.db("prepare host write"))?;
        tx.execute(
            &upsert,
            &[
                &s.host_id,
                &s.environment,
                &s.encode_to_vec(),
                &s.content_hash,
                &boot_id,
                &i64::try_from(s.sequence).unwrap_or(i64::MAX),
                &unix_millis(w.received_at),
                &unix_millis(w.last_seen),
                &(w.engine_state as i32),
                &order,
            ],
        )
        .await
        .map_err(self.db("write host snapshot"))?;
        self.write_containers(tx, &s.host_id, &w.containers).await?;
        self.write_liveness(tx, &s.host_id, w.last_seen, w.engine_state)
            .await
    }

    /// Writes a host's container rows: all of them afresh, or only those a
    /// report changed. A container id twice in one write fails (the key).
    /// At most one statement of each kind per host, the rows passed as
    /// arrays: a round trip per statement, not per container.
    async fn write_containers(
        &self,
        tx: &Tx<'_>,
        host_id: &str,
        rows: &ContainerRows,
    ) -> Result<(), StoreError> {
        let (upserted, removed): (&[Container], &[String]) = match rows {
            ContainerRows::All(all) => {
                tx.execute("DELETE FROM containers WHERE host_id = $1", &[&host_id])
                    .await
                    .map_err(self.db("replace container rows"))?;
                if all.is_empty() {
                    return Ok(());
                }
                let (ids, bodies) = id_body_arrays(all);
                let insert = tx
                    .prepare_cached(
                        "INSERT INTO containers (host_id, container_id, body)
                         SELECT $1, id, body FROM UNNEST($2::TEXT[], $3::BYTEA[]) AS u(id, body)",
                    )
                    .await
                    .map_err(self.db("prepare container write"))?;
                tx.execute(&insert, &[&host_id, &ids, &bodies])
                    .await
                    .map_err(self.db("write container row"))?;
                return Ok(());
            }
            ContainerRows::Changed { upserted, removed } => (upserted, removed),
        };
        if !removed.is_empty() {
            let delete = tx
                .prepare_cached(
                    "DELETE FROM containers WHERE host_id = $1 AND container_id = ANY($2::TEXT[])",
                )
                .await
                .map_err(self.db("prepare container removal"))?;
            tx.execute(&delete, &[&host_id, &removed])
                .await
                .map_err(self.db("remove container row"))?;
        }
        if !upserted.is_empty() {
            let (ids, bodies) = id_body_arrays(upserted);
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO containers (host_id, container_id, body)
                     SELECT $1, id, body FROM UNNEST($2::TEXT[], $3::BYTEA[]) AS u(id, body)
                     ON CONFLICT (host_id, container_id) DO UPDATE SET body = excluded.body",
                )
                .await
                .map_err(self.db("prepare container write"))?;
            tx.execute(&upsert, &[&host_id, &ids, &bodies])
                .await
                .map_err(self.db("write container row"))?;
        }
        Ok(())
    }

    /// Removes a host's snapshot and liveness, keeping its history
    /// ([`Store::forget_host`]); whether the host was stored.
    ///
    /// [`Store::forget_host`]: crate::store::Store::forget_host
    pub(super) async fn delete_host(&self, host_id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin forgetting a host"))?;
        self.fenced(&tx).await?;
        let removed = tx
            .execute("DELETE FROM hosts WHERE host_id = $1", &[&host_id])
            .await
            .map_err(self.db("forget a host"))?;
        tx.execute("DELETE FROM containers WHERE host_id = $1", &[&host_id])
            .await
            .map_err(self.db("forget a host's containers"))?;
        tx.execute("DELETE FROM liveness WHERE host_id = $1", &[&host_id])
            .await
            .map_err(self.db("forget a host's liveness"))?;
        tx.commit()
            .await
            .map_err(self.db("commit forgetting a host"))?;
        Ok(removed > 0)
    }
}

/// The ids and encoded bodies of `containers`, as the arrays a statement
/// takes.
fn id_body_arrays(containers: &[Container]) -> (Vec<&str>, Vec<Vec<u8>>) {
    containers
        .iter()
        .map(|c| (c.id.as_str(), c.encode_to_vec()))
        .unzip()
}
