//! Liveness rows: when each host was last heard from and its engine state,
//! in a table of their own, as on SQLite.

use std::time::SystemTime;

use envparity_proto::time::unix_millis;
use envparity_proto::v1::EngineState;

use super::PgStore;
use crate::store::StoreError;

impl PgStore {
    /// Records a host's liveness as of its snapshot, inside the snapshot's
    /// transaction `tx`.
    pub(super) async fn write_liveness(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        host_id: &str,
        last_seen: SystemTime,
        engine_state: EngineState,
    ) -> Result<(), StoreError> {
        let upsert = tx
            .prepare_cached(
                "INSERT INTO liveness (host_id, last_seen_ms, engine_state) VALUES ($1, $2, $3)
                 ON CONFLICT (host_id) DO UPDATE SET
                    last_seen_ms = excluded.last_seen_ms, engine_state = excluded.engine_state",
            )
            .await
            .map_err(self.db("prepare liveness write"))?;
        tx.execute(
            &upsert,
            &[&host_id, &unix_millis(last_seen), &(engine_state as i32)],
        )
        .await
        .map_err(self.db("write host liveness"))?;
        Ok(())
    }

    /// Records heartbeats in one transaction ([`Store::touch_many`]), in
    /// order (the last of a host's wins).
    ///
    /// [`Store::touch_many`]: crate::store::Store::touch_many
    pub(super) async fn record_heartbeats(
        &self,
        touches: &[(String, SystemTime, EngineState)],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin heartbeat write"))?;
        self.fenced(&tx).await?;
        // One statement for all; of a host heard twice, the last wins. A
        // host without a snapshot has no liveness row: nothing to do.
        let mut last = std::collections::HashMap::with_capacity(touches.len());
        for (i, (host_id, _, _)) in touches.iter().enumerate() {
            last.insert(host_id.as_str(), i);
        }
        let kept = touches
            .iter()
            .enumerate()
            .filter(|(i, (host_id, _, _))| last.get(host_id.as_str()) == Some(i))
            .map(|(_, t)| t);
        let mut ids = Vec::with_capacity(last.len());
        let mut seen = Vec::with_capacity(last.len());
        let mut states = Vec::with_capacity(last.len());
        for (host_id, last_seen, engine_state) in kept {
            ids.push(host_id.as_str());
            seen.push(unix_millis(*last_seen));
            states.push(*engine_state as i32);
        }
        let update = tx
            .prepare_cached(
                "UPDATE liveness l SET last_seen_ms = u.seen, engine_state = u.state
                 FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::INT[]) AS u(host_id, seen, state)
                 WHERE l.host_id = u.host_id",
            )
            .await
            .map_err(self.db("prepare heartbeat write"))?;
        tx.execute(&update, &[&ids, &seen, &states])
            .await
            .map_err(self.db("record heartbeat"))?;
        tx.commit().await.map_err(self.db("commit heartbeat write"))
    }
}
