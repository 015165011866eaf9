//! The database's schema: its tables, its version (`schema_version`), and
//! the migrations that bring an older database to this build's.
//!
//! Migrations run in one transaction that first takes a transaction-scoped
//! advisory lock ([`MIGRATION_LOCK`]): replicas starting at once queue on
//! it, the first migrates and commits, the others then find the version
//! current and do nothing. A crash mid-migration rolls everything back.
//! A database whose version is newer than this build's is refused, naming
//! both versions (an older envparity must not write a newer layout).
//!
//! The tables are SQLite's (`sqlite/schema.rs`, version 5 there), in
//! PostgreSQL's types. Ids that answers are sorted by are `COLLATE "C"`:
//! byte order, as SQLite compares, so both backends list hosts, containers
//! and alerts in the same order.

use tokio_postgres::GenericClient;

use super::PgStore;
use crate::store::{Migrated, StoreError};

/// The schema version this build writes and reads.
///
/// History: 1 — hosts with their container rows and liveness, changes,
/// findings, alerts and the notification outbox (SQLite's version 5);
/// 2 — leases (`lease.rs`).
pub const SCHEMA_VERSION: i64 = 2;

/// The key of the advisory lock migrations hold (`pg_advisory_xact_lock`):
/// "envparit" in ASCII, so that it does not collide with another
/// application's lock on a shared database by accident.
pub(super) const MIGRATION_LOCK: i64 = 0x656e_7670_6172_6974;

/// Migration `n` (from 1) brings version `n - 1` to `n`.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2];

const V1: &str = r#"
CREATE TABLE hosts (
    host_id         TEXT COLLATE "C" PRIMARY KEY,
    environment     TEXT NOT NULL,
    snapshot        BYTEA NOT NULL,
    content_hash    TEXT NOT NULL,
    boot_id         TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    last_seen_ms    BIGINT NOT NULL,
    engine_state    INTEGER NOT NULL,
    container_order TEXT
);
CREATE TABLE containers (
    host_id         TEXT COLLATE "C" NOT NULL,
    container_id    TEXT COLLATE "C" NOT NULL,
    body            BYTEA NOT NULL,
    PRIMARY KEY (host_id, container_id)
);
CREATE TABLE liveness (
    host_id         TEXT COLLATE "C" PRIMARY KEY,
    last_seen_ms    BIGINT NOT NULL,
    engine_state    INTEGER NOT NULL
);
CREATE TABLE changes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id         TEXT NOT NULL,
    environment     TEXT NOT NULL,
    service         TEXT NOT NULL,
    container       TEXT NOT NULL,
    what            TEXT NOT NULL,
    old_image       TEXT NOT NULL,
    new_image       TEXT NOT NULL,
    observed_at_ms  BIGINT NOT NULL,
    received_at_ms  BIGINT NOT NULL
);
CREATE INDEX changes_by_service ON changes (service, id);
CREATE TABLE findings (
    row_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    service         TEXT NOT NULL,
    environments    TEXT NOT NULL,
    key             TEXT NOT NULL,
    host            TEXT NOT NULL,
    summary         TEXT NOT NULL,
    first_seen_ms   BIGINT NOT NULL,
    last_seen_ms    BIGINT NOT NULL,
    resolved_ms     BIGINT
);
CREATE UNIQUE INDEX findings_open ON findings (id) WHERE resolved_ms IS NULL;
CREATE INDEX findings_by_service ON findings (service, row_id);
CREATE TABLE alerts (
    id              TEXT COLLATE "C" PRIMARY KEY,
    body            TEXT NOT NULL,
    resolved_ms     BIGINT
);
CREATE TABLE alert_outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink            TEXT NOT NULL,
    event           TEXT NOT NULL
);
CREATE INDEX alert_outbox_by_sink ON alert_outbox (sink, seq);
"#;

/// Leases: which replica may write (`lease.rs`), and where it serves.
/// `expires_at` is on the database's clock.
const V2: &str = r#"
CREATE TABLE leases (
    name            TEXT COLLATE "C" PRIMARY KEY,
    owner           TEXT NOT NULL,
    address         TEXT NOT NULL,
    epoch           BIGINT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
"#;

/// The schema version recorded in the database of `client`; `None` when
/// there is no `schema_version` table (an empty database).
pub(super) async fn version(
    client: &impl GenericClient,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: Option<i64> = client
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .await?
        .get(0);
    Ok(Some(v.unwrap_or(0)))
}

impl PgStore {
    /// Brings the schema to [`SCHEMA_VERSION`] in one transaction under the
    /// migration lock; refuses a newer one.
    pub(super) async fn migrate_schema(&self) -> Result<Migrated, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin the schema migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(self.db("take the migration lock"))?;
        // No NOTICE "already exists, skipping" in the log at every start.
        tx.batch_execute(
            "SET LOCAL client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS schema_version (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(self.db("create the schema version table"))?;
        let from = version(&*tx)
            .await
            .map_err(self.db("read the schema version"))?
            .unwrap_or(0);
        if from > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                store: self.name().to_owned(),
                found: from,
                supported: SCHEMA_VERSION,
            });
        }
        for (n, sql) in (1_i64..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(from).unwrap_or(0))
        {
            tx.batch_execute(sql)
                .await
                .map_err(self.db("migrate the schema"))?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&n])
                .await
                .map_err(self.db("record the schema version"))?;
        }
        tx.commit()
            .await
            .map_err(self.db("commit the schema migration"))?;
        Ok(Migrated {
            from: Some(from),
            to: SCHEMA_VERSION,
        })
    }
}
