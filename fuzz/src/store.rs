//! An in-memory [`Store`] that stores snapshots as the SQLite store does —
//! as encoded protobuf — and checks that what it stored decodes back to what
//! it was given. SQLite itself is left out: opening a database per input
//! would cut the fuzzer's speed a hundredfold.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use envparity_aggregator::store::{
    AlertRow, Change, FindingChanges, FindingRecord, OutboxRow, Store, StoreError, StoredHost,
};
use envparity_proto::time::{from_unix_millis, unix_millis};
use envparity_proto::v1::{EngineState, HostSnapshot};
use prost::Message;

/// One stored host: the encoded snapshot and the columns beside it.
#[derive(Debug, Clone)]
struct Row {
    snapshot: Vec<u8>,
    received_at_ms: i64,
    last_seen_ms: i64,
    engine_state: EngineState,
}

#[derive(Debug, Default)]
struct State {
    hosts: BTreeMap<String, Row>,
    changes: Vec<Change>,
    findings: Vec<FindingRecord>,
    alerts: BTreeMap<String, AlertRow>,
    outbox: Vec<OutboxRow>,
    /// Calls that wrote something.
    writes: usize,
}

/// The in-memory store.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    state: Arc<Mutex<State>>,
}

impl MemStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A store holding `hosts`, received and last seen at `now`.
    pub fn with_hosts(hosts: &[HostSnapshot], now: SystemTime) -> Self {
        let store = MemStore::default();
        for h in hosts {
            store.state().hosts.insert(
                h.host_id.clone(),
                Row {
                    snapshot: h.encode_to_vec(),
                    received_at_ms: unix_millis(now),
                    last_seen_ms: unix_millis(now),
                    engine_state: EngineState::Ok,
                },
            );
        }
        store
    }

    /// How many calls wrote something.
    pub fn writes(&self) -> usize {
        self.state().writes
    }

    /// The stored snapshot of `host_id`, decoded.
    pub fn snapshot(&self, host_id: &str) -> Option<HostSnapshot> {
        let state = self.state();
        let row = state.hosts.get(host_id)?;
        Some(HostSnapshot::decode(row.snapshot.as_slice()).expect("a stored snapshot decodes"))
    }

    /// Every change recorded.
    pub fn changes_recorded(&self) -> Vec<Change> {
        self.state().changes.clone()
    }
}

impl Store for MemStore {
    fn load_hosts(&self) -> Result<Vec<StoredHost>, StoreError> {
        let state = self.state();
        Ok(state
            .hosts
            .values()
            .map(|row| StoredHost {
                snapshot: Arc::new(
                    HostSnapshot::decode(row.snapshot.as_slice())
                        .expect("a stored snapshot decodes"),
                ),
                received_at: from_unix_millis(row.received_at_ms),
                last_seen: from_unix_millis(row.last_seen_ms),
                engine_state: row.engine_state,
            })
            .collect())
    }

    fn save_snapshot(
        &self,
        host: &StoredHost,
        changes: &[Change],
        findings: &FindingChanges,
    ) -> Result<(), StoreError> {
        let bytes = host.snapshot.encode_to_vec();
        let back = HostSnapshot::decode(bytes.as_slice()).expect("an encoded snapshot decodes");
        assert_eq!(
            &back, &*host.snapshot,
            "a stored snapshot decodes to what was stored"
        );
        let mut state = self.state();
        state.hosts.insert(
            host.snapshot.host_id.clone(),
            Row {
                snapshot: bytes,
                received_at_ms: unix_millis(host.received_at),
                last_seen_ms: unix_millis(host.last_seen),
                engine_state: host.engine_state,
            },
        );
        state.changes.extend_from_slice(changes);
        write_findings(&mut state, findings);
        state.writes += 1;
        Ok(())
    }

    fn save_findings(&self, findings: &FindingChanges) -> Result<(), StoreError> {
        let mut state = self.state();
        write_findings(&mut state, findings);
        state.writes += 1;
        Ok(())
    }

    fn open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        Ok(self
            .state()
            .findings
            .iter()
            .rev()
            .filter(|r| r.resolved_ms.is_none())
            .cloned()
            .collect())
    }

    fn finding_records(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        let state = self.state();
        let mut out: Vec<FindingRecord> = state
            .findings
            .iter()
            .rev()
            .filter(|r| r.service == service)
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }

    fn touch(
        &self,
        host_id: &str,
        last_seen: SystemTime,
        engine_state: EngineState,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(row) = state.hosts.get_mut(host_id) {
            row.last_seen_ms = unix_millis(last_seen);
            row.engine_state = engine_state;
        }
        state.writes += 1;
        Ok(())
    }

    fn changes(&self, service: Option<&str>, limit: usize) -> Result<Vec<Change>, StoreError> {
        let state = self.state();
        let mut out: Vec<Change> = state
            .changes
            .iter()
            .rev()
            .filter(|c| service.is_none_or(|s| c.service == s))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }

    fn load_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        Ok(self.state().alerts.values().cloned().collect())
    }

    fn save_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for a in alerts {
            state.alerts.insert(a.id.clone(), a.clone());
        }
        state
            .alerts
            .retain(|_, a| a.resolved_ms.is_none_or(|r| r >= forget_before_ms));
        let first = state.outbox.last().map_or(1, |r| r.seq + 1);
        for (seq, o) in (first..).zip(outbox) {
            state.outbox.push(OutboxRow { seq, ..o.clone() });
        }
        state.writes += 1;
        Ok(())
    }

    fn outbox(&self, sink: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(self
            .state()
            .outbox
            .iter()
            .filter(|r| r.sink == sink)
            .take(limit)
            .cloned()
            .collect())
    }

    fn outbox_done(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.state().outbox.retain(|r| !seqs.contains(&r.seq));
        Ok(())
    }
}

fn write_findings(state: &mut State, findings: &FindingChanges) {
    state.findings.extend(findings.opened.iter().cloned());
    for r in &findings.resolved {
        if let Some(f) = state.findings.iter_mut().find(|f| f.id == r.id) {
            f.last_seen_ms = r.last_seen_ms;
            f.resolved_ms = Some(r.resolved_ms);
        }
    }
}
