//! Host rows: each host's latest snapshot, read at start-up, replaced with
//! the changes and findings it brought, and removed when the host is
//! forgotten.

use envparity_proto::time::{from_unix_millis, unix_millis};
use envparity_proto::v1::{EngineState, HostSnapshot};
use prost::Message;
use rusqlite::params;

use super::SqliteStore;
use crate::store::{Change, FindingChanges, StoreError, StoredHost};

impl SqliteStore {
    /// Every stored host, with its liveness ([`Store::load_hosts`]).
    ///
    /// [`Store::load_hosts`]: crate::store::Store::load_hosts
    pub(super) fn read_hosts(&self) -> Result<Vec<StoredHost>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT h.host_id, h.snapshot, h.received_at_ms,
                        COALESCE(l.last_seen_ms, h.last_seen_ms),
                        COALESCE(l.engine_state, h.engine_state)
                 FROM hosts h LEFT JOIN liveness l ON l.host_id = h.host_id
                 ORDER BY h.host_id",
            )
            .map_err(self.db("prepare host load"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i32>(4)?,
                ))
            })
            .map_err(self.db("load hosts"))?;
        let mut hosts = Vec::new();
        for row in rows {
            let (host_id, blob, received, seen, engine) = row.map_err(self.db("load hosts"))?;
            let snapshot =
                HostSnapshot::decode(blob.as_slice()).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    host_id: host_id.clone(),
                    reason: e.to_string(),
                })?;
            if snapshot.host_id != host_id {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    host_id,
                    reason: format!("row holds the snapshot of host {:?}", snapshot.host_id),
                });
            }
            hosts.push(StoredHost {
                snapshot: std::sync::Arc::new(snapshot),
                received_at: from_unix_millis(received),
                last_seen: from_unix_millis(seen),
                engine_state: EngineState::try_from(engine).unwrap_or(EngineState::Unspecified),
            });
        }
        Ok(hosts)
    }

    /// Replaces a host's snapshot and liveness, appends its changes and
    /// records its findings, in one transaction ([`Store::save_snapshot`]).
    ///
    /// [`Store::save_snapshot`]: crate::store::Store::save_snapshot
    pub(super) fn write_snapshot(
        &self,
        host: &StoredHost,
        changes: &[Change],
        findings: &FindingChanges,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.db("begin snapshot write"))?;
        let s = &host.snapshot;
        let boot_id = s.agent.as_ref().map_or("", |a| a.boot_id.as_str());
        tx.execute(
            "INSERT INTO hosts (host_id, environment, snapshot, content_hash, boot_id, sequence,
                                received_at_ms, last_seen_ms, engine_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (host_id) DO UPDATE SET
                environment = excluded.environment, snapshot = excluded.snapshot,
                content_hash = excluded.content_hash, boot_id = excluded.boot_id,
                sequence = excluded.sequence, received_at_ms = excluded.received_at_ms,
                last_seen_ms = excluded.last_seen_ms, engine_state = excluded.engine_state",
            params![
                s.host_id,
                s.environment,
                s.encode_to_vec(),
                s.content_hash,
                boot_id,
                i64::try_from(s.sequence).unwrap_or(i64::MAX),
                unix_millis(host.received_at),
                unix_millis(host.last_seen),
                host.engine_state as i32,
            ],
        )
        .map_err(self.db("write host snapshot"))?;
        self.write_liveness(&tx, &s.host_id, host.last_seen, host.engine_state)?;
        self.write_changes(&tx, changes)?;
        self.write_findings(&tx, findings)?;
        tx.commit().map_err(self.db("commit snapshot write"))
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
        tx.execute("DELETE FROM liveness WHERE host_id = ?1", params![host_id])
            .map_err(self.db("forget a host's liveness"))?;
        tx.commit().map_err(self.db("commit forgetting a host"))?;
        Ok(removed > 0)
    }
}
