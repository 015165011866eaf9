//! The database's schema: its tables, its version, and the upgrade of an
//! older database in place.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

/// The schema version this build writes and reads.
///
/// History: 1 — hosts and changes; 2 — findings (opened/resolved); 3 — alerts
/// and the notification outbox; 4 — liveness (last seen, engine state) in a
/// table of its own. An older database is upgraded in place on open (the new
/// tables are created, and `liveness` filled from `hosts`).
pub(super) const SCHEMA_VERSION: i64 = 4;

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

/// Creates what is missing of the schema in `conn` (the database file at
/// `path`), then checks its recorded version: a new database records this
/// build's, an older one is upgraded in place, and a newer one is refused.
pub(super) fn create_or_upgrade(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let db = |context: &'static str| {
        let path = path.to_owned();
        move |source| StoreError::Database {
            path,
            context,
            source,
        }
    };
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
                path: path.to_owned(),
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
                path: path.to_owned(),
                host_id: String::new(),
                reason: format!("schema version is not a number: {e}"),
            });
        }
    }
    Ok(())
}
