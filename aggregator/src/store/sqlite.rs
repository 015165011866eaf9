//! The embedded store: one SQLite database in WAL mode under the data
//! directory.
//!
//! Durability: `synchronous = FULL` makes every committed transaction survive
//! a crash or power loss, which is what "acknowledged after commit" needs.
//! Snapshots are stored as their protobuf encoding — the versioned wire
//! contract is also the storage format, so a newer agent's fields survive a
//! round trip through an older table layout.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use envparity_proto::time::{from_unix_millis, unix_millis};
use envparity_proto::v1::{EngineState, HostSnapshot};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AlertRow, Change, ChangeKind, FindingChanges, FindingRecord, OutboxRow, Page, PageAt, Store,
    StoreError, StoredHost,
};

/// The schema version this build writes and reads.
///
/// History: 1 — hosts and changes; 2 — findings (opened/resolved); 3 — alerts
/// and the notification outbox; 4 — liveness (last seen, engine state) in a
/// table of its own. An older database is upgraded in place on open (the new
/// tables are created, and `liveness` filled from `hosts`).
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
    host_id        TEXT PRIMARY KEY,
    environment    TEXT NOT NULL,
    snapshot       BLOB NOT NULL,
    content_hash   TEXT NOT NULL,
    boot_id        TEXT NOT NULL,
    sequence       INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    engine_state   INTEGER NOT NULL
);
-- A host's current liveness; `hosts` keeps the values of its last snapshot.
-- Its own table because SQLite rewrites a whole row to change one column:
-- in `hosts` every heartbeat rewrote the snapshot (about 94 KB at 50
-- containers, in overflow pages) to change two integers.
CREATE TABLE IF NOT EXISTS liveness (
    host_id        TEXT PRIMARY KEY,
    last_seen_ms   INTEGER NOT NULL,
    engine_state   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id        TEXT NOT NULL,
    environment    TEXT NOT NULL,
    service        TEXT NOT NULL,
    container      TEXT NOT NULL,
    what           TEXT NOT NULL,
    old_image      TEXT NOT NULL,
    new_image      TEXT NOT NULL,
    observed_at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_service ON changes (service, id);
CREATE TABLE IF NOT EXISTS findings (
    row_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    severity       TEXT NOT NULL,
    service        TEXT NOT NULL,
    environments   TEXT NOT NULL,
    key            TEXT NOT NULL,
    host           TEXT NOT NULL,
    summary        TEXT NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    resolved_ms    INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS findings_open ON findings (id) WHERE resolved_ms IS NULL;
CREATE INDEX IF NOT EXISTS findings_by_service ON findings (service, row_id);
CREATE TABLE IF NOT EXISTS alerts (
    id             TEXT PRIMARY KEY,
    body           TEXT NOT NULL,
    resolved_ms    INTEGER
);
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    sink           TEXT NOT NULL,
    event          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_outbox_by_sink ON alert_outbox (sink, seq);
";

/// The most memory SQLite's page cache may take, in KiB (`PRAGMA
/// cache_size` takes a negative number as KiB).
///
/// SQLite's default (2000 KiB per connection) is reached only once the file
/// is that large, so the aggregator's memory grew with its history for hours
/// or days before it settled (the soak in docs/reliability.md measured about
/// 4.4 KiB per database page). 256 KiB (about 60 pages of 4 KiB) holds what
/// every report touches — the interior pages of each table and index, the
/// hosts, the open findings and the tail of the history — and is full once
/// the file passes 256 KiB (minutes into the soak, not days), after which the
/// cache no longer grows. Reads of older history
/// (`history`, `gate`) go to the OS page cache instead, which costs a
/// system call per page, not a disk read.
const PAGE_CACHE_KIB: u32 = 256;

/// The SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// Checks, without creating or changing anything, that an existing store
/// under `data_dir` can be written (`check-config`). A store that does not
/// exist yet passes: `serve` creates it, and says so if it cannot.
pub fn check_writable(data_dir: &Path) -> Result<(), StoreError> {
    let path = data_dir.join("envparity.db");
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|source| StoreError::Database {
            path: path.clone(),
            context: "open",
            source,
        })?;
    match conn.is_readonly(rusqlite::MAIN_DB) {
        Ok(false) => Ok(()),
        Ok(true) => Err(StoreError::ReadOnly { path }),
        Err(source) => Err(StoreError::Database {
            path,
            context: "check it is writable",
            source,
        }),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `envparity.db` under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        // Owner only, as the systemd unit makes it (StateDirectoryMode=0700):
        // the store holds every host's configuration. An existing dir keeps
        // its mode; the operator chose it.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(data_dir)
            .map_err(|source| StoreError::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
        let path = data_dir.join("envparity.db");
        // SQLite gives its -wal and -shm files the database file's mode, so a
        // new database is created 0600 here before SQLite opens it.
        match std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create_new(true),
            0o600,
        )
        .open(&path)
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::DataDir {
                    path: path.clone(),
                    source: e,
                });
            }
            _ => {}
        }
        let db = |context: &'static str| {
            let path = path.clone();
            move |source| StoreError::Database {
                path,
                context,
                source,
            }
        };
        let conn = Connection::open(&path).map_err(db("open"))?;
        // SQLite falls back to read-only when it cannot open the file for
        // writing; then every report would fail after the server said ready.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(db("check it is writable"))?
        {
            return Err(StoreError::ReadOnly { path });
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db("set busy timeout"))?;
        // `journal_mode` answers with a row, so it is queried, not executed.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db("enable WAL (is this an SQLite database?)"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "SQLite refused WAL mode");
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{PAGE_CACHE_KIB};"
        ))
        .map_err(db("set pragmas"))?;
        conn.execute_batch(SCHEMA).map_err(db("create schema"))?;
        let found: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("read schema version"))?;
        match found.map(|v| v.parse::<i64>()) {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(db("write schema version"))?;
            }
            Some(Ok(v)) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    path,
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(Ok(v)) if v < SCHEMA_VERSION => {
                // The schema batch above created what is new; fill it, then
                // record it (a crash in between fills it again next time).
                conn.execute(
                    "INSERT OR IGNORE INTO liveness (host_id, last_seen_ms, engine_state)
                     SELECT host_id, last_seen_ms, engine_state FROM hosts",
                    [],
                )
                .map_err(db("fill liveness from hosts"))?;
                conn.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(db("upgrade schema version"))?;
                tracing::info!(path = %path.display(), from = v, to = SCHEMA_VERSION, "upgraded the store's schema");
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                return Err(StoreError::Corrupt {
                    path,
                    host_id: String::new(),
                    reason: format!("schema version is not a number: {e}"),
                });
            }
        }
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: self.path.clone(),
            context,
            source,
        }
    }

    fn write_findings(
        &self,
        tx: &rusqlite::Transaction<'_>,
        f: &FindingChanges,
    ) -> Result<(), StoreError> {
        let mut open = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO findings (id, kind, severity, service, environments, key,
                                                 host, summary, first_seen_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(self.db("prepare finding write"))?;
        for r in &f.opened {
            open.execute(params![
                r.id,
                r.kind,
                r.severity,
                r.service,
                r.environments.join(","),
                r.key,
                r.host,
                r.summary,
                r.first_seen_ms,
                r.last_seen_ms,
            ])
            .map_err(self.db("write opened finding"))?;
        }
        let mut resolve = tx
            .prepare_cached(
                "UPDATE findings SET resolved_ms = ?2, last_seen_ms = MAX(last_seen_ms, ?3)
                 WHERE id = ?1 AND resolved_ms IS NULL",
            )
            .map_err(self.db("prepare finding resolution"))?;
        for r in &f.resolved {
            resolve
                .execute(params![r.id, r.resolved_ms, r.last_seen_ms])
                .map_err(self.db("write resolved finding"))?;
        }
        Ok(())
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The SQL `LIMIT` that reads one row more than a page holds (see
/// [`Page::from_newest_first`]).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Finding rows selected by `tail` (the `WHERE … ORDER BY row_id DESC
    /// [LIMIT …]` part, over `args`), newest first, each with its row id.
    fn query_findings(
        &self,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<(i64, FindingRecord)>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT id, kind, severity, service, environments, key, host, summary,
                    first_seen_ms, last_seen_ms, resolved_ms, row_id
             FROM findings {tail}"
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(self.db("prepare finding query"))?;
        let rows = stmt
            .query_map(args, |r| {
                let environments: String = r.get(4)?;
                let record = FindingRecord {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    severity: r.get(2)?,
                    service: r.get(3)?,
                    environments: environments
                        .split(',')
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    key: r.get(5)?,
                    host: r.get(6)?,
                    summary: r.get(7)?,
                    first_seen_ms: r.get(8)?,
                    last_seen_ms: r.get(9)?,
                    resolved_ms: r.get(10)?,
                };
                Ok((r.get(11)?, record))
            })
            .map_err(self.db("query findings"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.db("query findings"))
    }
}

impl Store for SqliteStore {
    fn load_hosts(&self) -> Result<Vec<StoredHost>, StoreError> {
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

    fn save_snapshot(
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
        tx.prepare_cached(
            "INSERT INTO liveness (host_id, last_seen_ms, engine_state) VALUES (?1, ?2, ?3)
             ON CONFLICT (host_id) DO UPDATE SET
                last_seen_ms = excluded.last_seen_ms, engine_state = excluded.engine_state",
        )
        .and_then(|mut upsert| {
            upsert.execute(params![
                s.host_id,
                unix_millis(host.last_seen),
                host.engine_state as i32
            ])
        })
        .map_err(self.db("write host liveness"))?;
        {
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
        }
        self.write_findings(&tx, findings)?;
        tx.commit().map_err(self.db("commit snapshot write"))
    }

    fn save_findings(&self, findings: &FindingChanges) -> Result<(), StoreError> {
        if findings.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.db("begin finding write"))?;
        self.write_findings(&tx, findings)?;
        tx.commit().map_err(self.db("commit finding write"))
    }

    fn open_findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        let mut open = self.query_findings("WHERE resolved_ms IS NULL ORDER BY row_id DESC", [])?;
        open.reverse();
        Ok(open.into_iter().map(|(_, record)| record).collect())
    }

    fn finding_records(
        &self,
        service: &str,
        at: PageAt,
    ) -> Result<Page<FindingRecord>, StoreError> {
        let rows = self.query_findings(
            "WHERE service = ?1 AND (?2 IS NULL OR row_id < ?2) ORDER BY row_id DESC LIMIT ?3",
            params![service, at.before, sql_limit(at.limit)],
        )?;
        Ok(Page::from_newest_first(rows, at.limit))
    }

    fn forget_host(&self, host_id: &str) -> Result<bool, StoreError> {
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

    fn touch(
        &self,
        host_id: &str,
        last_seen: SystemTime,
        engine_state: EngineState,
    ) -> Result<(), StoreError> {
        self.touch_many(&[(host_id.to_owned(), last_seen, engine_state)])
    }

    fn touch_many(&self, touches: &[(String, SystemTime, EngineState)]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.db("begin heartbeat write"))?;
        {
            // A host without a snapshot has no liveness row: nothing to do.
            let mut update = tx
                .prepare_cached(
                    "UPDATE liveness SET last_seen_ms = ?2, engine_state = ?3 WHERE host_id = ?1",
                )
                .map_err(self.db("prepare heartbeat write"))?;
            for (host_id, last_seen, engine_state) in touches {
                update
                    .execute(params![
                        host_id,
                        unix_millis(*last_seen),
                        *engine_state as i32
                    ])
                    .map_err(self.db("record heartbeat"))?;
            }
        }
        tx.commit().map_err(self.db("commit heartbeat write"))
    }

    fn load_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
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

    fn save_alerts(
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

    fn outbox(&self, sink: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
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

    fn outbox_done(&self, seqs: &[i64]) -> Result<(), StoreError> {
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

    fn changes(&self, service: Option<&str>, at: PageAt) -> Result<Page<Change>, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Resolved;
    use envparity_proto::v1::{AgentInfo, Container};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_new_data_dir_and_its_database_are_the_owners_only() {
        let parent = tempfile::tempdir().unwrap();
        let data = parent.path().join("a/data");
        let store = SqliteStore::open(&data).unwrap();
        store
            .save_snapshot(&host("h1", 1), &[], &FindingChanges::default())
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }

    fn host(id: &str, containers: usize) -> StoredHost {
        StoredHost {
            snapshot: std::sync::Arc::new(HostSnapshot {
                host_id: id.into(),
                environment: "staging".into(),
                sequence: 3,
                content_hash: format!("hash-{containers}"),
                agent: Some(AgentInfo {
                    version: "0.1.0".into(),
                    boot_id: "b1".into(),
                }),
                containers: (0..containers)
                    .map(|i| Container {
                        id: format!("c{i}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            received_at: UNIX_EPOCH + Duration::from_millis(1_000),
            last_seen: UNIX_EPOCH + Duration::from_millis(2_000),
            engine_state: EngineState::Ok,
        }
    }

    fn change(service: &str, at: i64) -> Change {
        Change {
            host_id: "h1".into(),
            environment: "staging".into(),
            service: service.into(),
            container: "c".into(),
            what: ChangeKind::ImageChanged,
            old_image: "sha256:a".into(),
            new_image: "sha256:b".into(),
            observed_at_ms: at,
            received_at_ms: at + 1,
        }
    }

    fn record(id: &str, service: &str, first: i64) -> FindingRecord {
        FindingRecord {
            id: id.into(),
            kind: "image_digest".into(),
            severity: "critical".into(),
            service: service.into(),
            environments: vec!["production".into(), "staging".into()],
            key: String::new(),
            host: String::new(),
            summary: format!("{service} differs"),
            first_seen_ms: first,
            last_seen_ms: first,
            resolved_ms: None,
        }
    }

    #[test]
    fn findings_open_and_resolve_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let opened = FindingChanges {
                opened: vec![record("a", "shop", 10), record("b", "cart", 11)],
                resolved: vec![],
            };
            store.save_snapshot(&host("h1", 1), &[], &opened).unwrap();
            // Opening an id that is already open changes nothing.
            store
                .save_findings(&FindingChanges {
                    opened: vec![record("a", "shop", 99)],
                    resolved: vec![],
                })
                .unwrap();
            store
                .save_findings(&FindingChanges {
                    opened: vec![],
                    resolved: vec![Resolved {
                        id: "a".into(),
                        last_seen_ms: 15,
                        resolved_ms: 20,
                    }],
                })
                .unwrap();
            // The same identity can open again after it resolved.
            store
                .save_findings(&FindingChanges {
                    opened: vec![record("a", "shop", 30)],
                    resolved: vec![],
                })
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let open: Vec<(String, i64)> = store
            .open_findings()
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.first_seen_ms))
            .collect();
        assert_eq!(open, vec![("b".to_owned(), 11), ("a".to_owned(), 30)]);
        let shop = store.finding_records("shop", PageAt::newest(10)).unwrap();
        assert_eq!(shop.older, None);
        let shop = shop.rows;
        assert_eq!(shop.len(), 2);
        assert_eq!(shop[0].resolved_ms, Some(20));
        assert_eq!(shop[0].last_seen_ms, 15);
        assert_eq!(shop[1].resolved_ms, None);
        assert_eq!(shop[0].environments, vec!["production", "staging"]);
        let newest = store.finding_records("shop", PageAt::newest(1)).unwrap();
        assert_eq!(newest.rows[0].first_seen_ms, 30);
        let before = store
            .finding_records(
                "shop",
                PageAt {
                    before: newest.older,
                    limit: 1,
                },
            )
            .unwrap();
        assert_eq!(before.rows[0].resolved_ms, Some(20));
        assert_eq!(before.older, None);
    }

    #[test]
    fn a_version_1_store_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .save_snapshot(&host("h1", 1), &[], &FindingChanges::default())
                .unwrap();
            let conn = store.conn();
            conn.execute_batch(
                "DROP TABLE findings; DROP TABLE liveness; \
                 UPDATE meta SET value = '1' WHERE key = 'schema_version';",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.load_hosts().unwrap(), vec![host("h1", 1)]);
        assert!(store.open_findings().unwrap().is_empty());
        // Liveness recorded after the upgrade is what a reopen finds.
        let seen = UNIX_EPOCH + Duration::from_millis(9_000);
        store.touch("h1", seen, EngineState::Unreachable).unwrap();
        let reopened = SqliteStore::open(dir.path()).unwrap().load_hosts().unwrap();
        assert_eq!(
            (reopened[0].last_seen, reopened[0].engine_state),
            (seen, EngineState::Unreachable)
        );
        let version: String = store
            .conn()
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());
    }

    #[test]
    fn alerts_and_queued_notifications_survive_a_reopen_and_old_resolutions_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let alert = |id: &str, resolved_ms: Option<i64>| AlertRow {
            id: id.into(),
            body: format!("{{\"id\":\"{id}\"}}"),
            resolved_ms,
        };
        let queued = |sink: &str, event: &str| OutboxRow {
            seq: 0,
            sink: sink.into(),
            event: event.into(),
        };
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .save_alerts(
                    &[
                        alert("firing", None),
                        alert("old", Some(100)),
                        alert("recent", Some(900)),
                    ],
                    &[
                        queued("hook", "e1"),
                        queued("slack", "e1"),
                        queued("hook", "e2"),
                    ],
                    500,
                )
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let ids: Vec<String> = store
            .load_alerts()
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["firing", "recent"]);
        let hook = store.outbox("hook", 10).unwrap();
        assert_eq!(
            hook.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
            ["e1", "e2"]
        );
        assert!(hook[0].seq < hook[1].seq);
        assert_eq!(store.outbox("hook", 1).unwrap().len(), 1);
        store.outbox_done(&[hook[0].seq]).unwrap();
        assert_eq!(store.outbox("hook", 10).unwrap()[0].event, "e2");
        assert_eq!(store.outbox("slack", 10).unwrap().len(), 1);
        // An update replaces the row.
        store
            .save_alerts(&[alert("firing", Some(1000))], &[], 0)
            .unwrap();
        let firing = store
            .load_alerts()
            .unwrap()
            .into_iter()
            .find(|a| a.id == "firing");
        assert_eq!(firing.unwrap().resolved_ms, Some(1000));
    }

    #[test]
    fn a_forgotten_host_leaves_its_snapshot_and_liveness_and_keeps_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .save_snapshot(
                &host("h1", 2),
                &[change("shop", 5)],
                &FindingChanges::default(),
            )
            .unwrap();
        store
            .save_snapshot(&host("h2", 1), &[], &FindingChanges::default())
            .unwrap();
        store
            .touch(
                "h1",
                UNIX_EPOCH + Duration::from_millis(9_000),
                EngineState::Ok,
            )
            .unwrap();
        assert!(store.forget_host("h1").unwrap());
        assert!(!store.forget_host("h1").unwrap(), "already forgotten");
        assert!(!store.forget_host("nobody").unwrap());
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let ids: Vec<String> = store
            .load_hosts()
            .unwrap()
            .iter()
            .map(|h| h.snapshot.host_id.clone())
            .collect();
        assert_eq!(ids, ["h2"]);
        let liveness: i64 = store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM liveness WHERE host_id = 'h1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(liveness, 0);
        let history = store.changes(Some("shop"), PageAt::newest(10)).unwrap();
        assert_eq!(history.rows, vec![change("shop", 5)]);
    }

    #[test]
    fn snapshots_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .save_snapshot(
                    &host("h1", 2),
                    &[change("shop", 5)],
                    &FindingChanges::default(),
                )
                .unwrap();
            store
                .save_snapshot(
                    &host("h1", 3),
                    &[change("shop", 6)],
                    &FindingChanges::default(),
                )
                .unwrap();
            store
                .save_snapshot(&host("h2", 1), &[], &FindingChanges::default())
                .unwrap();
            store
                .touch(
                    "h2",
                    UNIX_EPOCH + Duration::from_millis(9_000),
                    EngineState::Unreachable,
                )
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let hosts = store.load_hosts().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0], host("h1", 3));
        assert_eq!(
            hosts[1].last_seen,
            UNIX_EPOCH + Duration::from_millis(9_000)
        );
        assert_eq!(hosts[1].engine_state, EngineState::Unreachable);
        let changes = store.changes(Some("shop"), PageAt::newest(10)).unwrap();
        assert_eq!(changes.rows, vec![change("shop", 5), change("shop", 6)]);
        assert_eq!(
            store.changes(Some("other"), PageAt::newest(10)).unwrap(),
            Page {
                rows: vec![],
                older: None
            }
        );
        let newest = store.changes(None, PageAt::newest(1)).unwrap();
        assert_eq!(newest.rows, vec![change("shop", 6)]);
        assert!(newest.older.is_some());
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("envparity.db"),
            b"this is not sqlite, just garbage bytes....",
        )
        .unwrap();
        let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("envparity.db"), "{err}");
        assert!(err.contains("database"), "{err}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("envparity.db")).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }

    #[test]
    fn the_page_cache_is_bounded_and_history_larger_than_it_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let cache: i64 = store
            .conn()
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -i64::from(PAGE_CACHE_KIB));
        // One transaction dirtying several times more pages than the cache
        // holds (SQLite spills them to the WAL before the commit), then many
        // small ones, as under steady ingest.
        let service = |i: usize| format!("svc-{:0>200}", i % 7);
        let big: Vec<Change> = (0..4000).map(|i| change(&service(i), i as i64)).collect();
        store
            .save_snapshot(&host("h1", 200), &big, &FindingChanges::default())
            .unwrap();
        for i in 0..200 {
            store
                .save_snapshot(
                    &host("h1", i % 13),
                    &[change(&service(i), 10_000 + i as i64)],
                    &FindingChanges::default(),
                )
                .unwrap();
        }
        let pages: i64 = store
            .conn()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let page_size: i64 = store
            .conn()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert!(
            pages * page_size > 4 * 1024 * i64::from(PAGE_CACHE_KIB),
            "{pages} pages"
        );
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let all = store.changes(None, PageAt::newest(usize::MAX)).unwrap();
        assert_eq!((all.rows.len(), all.older), (4200, None));
        assert_eq!(
            store
                .changes(Some(&service(3)), PageAt::newest(10))
                .unwrap()
                .rows
                .len(),
            10
        );
        // Paging back from the newest reads every change of a service
        // exactly once, oldest first within each page.
        let mut pages = Vec::new();
        let mut at = PageAt::newest(7);
        loop {
            let page = store.changes(Some(&service(3)), at).unwrap();
            pages.push(page.rows);
            match page.older {
                Some(before) => at.before = Some(before),
                None => break,
            }
        }
        pages.reverse();
        let paged: Vec<Change> = pages.into_iter().flatten().collect();
        let whole = store
            .changes(Some(&service(3)), PageAt::newest(usize::MAX))
            .unwrap();
        assert!(paged.len() > 7, "{} changes", paged.len());
        assert_eq!(paged, whole.rows);
        assert_eq!(
            store.load_hosts().unwrap()[0].snapshot.containers.len(),
            199 % 13
        );
    }

    #[test]
    fn a_damaged_snapshot_row_names_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .save_snapshot(&host("h1", 1), &[], &FindingChanges::default())
            .unwrap();
        store
            .conn()
            .execute("UPDATE hosts SET snapshot = x'ffffffff'", [])
            .unwrap();
        let err = store.load_hosts().unwrap_err().to_string();
        assert!(err.contains("\"h1\""), "{err}");
    }
}
