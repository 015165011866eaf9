//! The database's schema: its tables, its version, and the upgrade of an
//! older database in place.

use std::path::Path;

use envparity_proto::v1::HostSnapshot;
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{StoreError, order_of};

/// The schema version this build writes and reads.
///
/// History: 1 — hosts and changes; 2 — findings (opened/resolved); 3 — alerts
/// and the notification outbox; 4 — liveness (last seen, engine state) in a
/// table of its own; 5 — containers in rows of their own (`containers`),
/// the host row keeping the snapshot's header and, when it is not by id,
/// the containers' order. An older database is upgraded in place on open,
/// in one transaction (the new tables are created, `liveness` filled from
/// `hosts`, and each host's containers moved out of its snapshot).
pub(crate) const SCHEMA_VERSION: i64 = 5;

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
    engine_state   INTEGER NOT NULL,
    container_order TEXT
);
-- One row per container of a host's latest snapshot (its protobuf
-- encoding), so that a report writes only the containers it changed.
CREATE TABLE IF NOT EXISTS containers (
    host_id        TEXT NOT NULL,
    container_id   TEXT NOT NULL,
    body           BLOB NOT NULL,
    PRIMARY KEY (host_id, container_id)
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
                store: path.display().to_string(),
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        Some(Ok(v)) if v < SCHEMA_VERSION => {
            // The schema batch above created the new tables; fill them and
            // record the version in one transaction, so that a crash
            // leaves the old version to upgrade again.
            let tx = conn
                .unchecked_transaction()
                .map_err(db("begin schema upgrade"))?;
            tx.execute(
                "INSERT OR IGNORE INTO liveness (host_id, last_seen_ms, engine_state)
                 SELECT host_id, last_seen_ms, engine_state FROM hosts",
                [],
            )
            .map_err(db("fill liveness from hosts"))?;
            if v < 5 {
                split_containers(&tx, path)?;
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                params![SCHEMA_VERSION.to_string()],
            )
            .map_err(db("upgrade schema version"))?;
            tx.commit().map_err(db("commit schema upgrade"))?;
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

/// Version 5: moves each host's containers out of its snapshot into rows
/// of their own, keeping their order when it is not by id.
fn split_containers(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    let db = |context: &'static str| {
        let path = path.to_owned();
        move |source| StoreError::Database {
            path,
            context,
            source,
        }
    };
    let has_order: bool = tx
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('hosts') WHERE name = 'container_order'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db("read the hosts table's columns"))?
        > 0;
    if !has_order {
        tx.execute("ALTER TABLE hosts ADD COLUMN container_order TEXT", [])
            .map_err(db("add the container order column"))?;
    }
    let hosts: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx
            .prepare("SELECT host_id, snapshot FROM hosts ORDER BY host_id")
            .map_err(db("read hosts to upgrade"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db("read hosts to upgrade"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db("read hosts to upgrade"))?
    };
    for (host_id, blob) in hosts {
        let mut header =
            HostSnapshot::decode(blob.as_slice()).map_err(|e| StoreError::Corrupt {
                path: path.to_owned(),
                host_id: host_id.clone(),
                reason: format!("while moving its containers to rows of their own: {e}"),
            })?;
        let containers = std::mem::take(&mut header.containers);
        let order = order_of(containers.iter().map(|c| c.id.as_str()))
            .map(|ids| serde_json::to_string(&ids).expect("a list of strings serializes"));
        for c in &containers {
            tx.execute(
                "INSERT INTO containers (host_id, container_id, body) VALUES (?1, ?2, ?3)",
                params![host_id, c.id, c.encode_to_vec()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Corrupt {
                        path: path.to_owned(),
                        host_id: host_id.clone(),
                        reason: format!(
                            "its snapshot lists container {:?} twice; forget the host \
                             (envparity hosts forget) with the previous version, then upgrade",
                            c.id
                        ),
                    }
                }
                e => db("move a container to its row")(e),
            })?;
        }
        tx.execute(
            "UPDATE hosts SET snapshot = ?2, container_order = ?3 WHERE host_id = ?1",
            params![host_id, header.encode_to_vec(), order],
        )
        .map_err(db("rewrite a host's snapshot header"))?;
    }
    Ok(())
}
