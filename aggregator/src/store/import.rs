//! Moving an embedded store to PostgreSQL (`envparity migrate --from-sqlite
//! DIR`, docs/store.md): every row of every table, with its ids, so that
//! nothing stored is lost and paging, history and alert sequences go on
//! where they were.
//!
//! Both backends keep the same tables and columns (SQLite's version 5 is
//! PostgreSQL's version 1), declared once here, in the order they are
//! copied. The SQLite side reads them in one read transaction
//! ([`SqliteStore::export`]); the PostgreSQL side writes them in one
//! transaction that first checks that the database is empty, then compares
//! the counts, and commits only if every row arrived ([`PgStore::import`]).
//! A failure anywhere leaves the target as it was.

use std::path::Path;

use super::{PgStore, PgTarget, SqliteStore, StoreError};

/// What a column holds, on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `TEXT NOT NULL`.
    Text,
    /// `TEXT`, possibly null.
    OptText,
    /// `BIGINT NOT NULL` (SQLite's `INTEGER`).
    Int8,
    /// `BIGINT`, possibly null.
    OptInt8,
    /// PostgreSQL's `INTEGER NOT NULL` (SQLite's `INTEGER`).
    Int4,
    /// `BYTEA NOT NULL` (SQLite's `BLOB`).
    Bytes,
}

/// A table as both backends have it.
#[derive(Debug)]
pub(super) struct Table {
    /// Its name.
    pub name: &'static str,
    /// Its columns, in the order they are read and written.
    pub columns: &'static [(&'static str, Kind)],
    /// The column PostgreSQL numbers by itself (`GENERATED ALWAYS AS
    /// IDENTITY`), whose sequence goes on after the rows copied; the first
    /// column is the one rows are read in order of.
    pub identity: Option<&'static str>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// A text, or null.
    Text(Option<String>),
    /// A 64-bit integer, or null.
    Int8(Option<i64>),
    /// A 32-bit integer.
    Int4(i32),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// Every table, in the order it is copied.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "hosts",
        columns: &[
            ("host_id", Kind::Text),
            ("environment", Kind::Text),
            ("snapshot", Kind::Bytes),
            ("content_hash", Kind::Text),
            ("boot_id", Kind::Text),
            ("sequence", Kind::Int8),
            ("received_at_ms", Kind::Int8),
            ("last_seen_ms", Kind::Int8),
            ("engine_state", Kind::Int4),
            ("container_order", Kind::OptText),
        ],
        identity: None,
    },
    Table {
        name: "containers",
        columns: &[
            ("host_id", Kind::Text),
            ("container_id", Kind::Text),
            ("body", Kind::Bytes),
        ],
        identity: None,
    },
    Table {
        name: "liveness",
        columns: &[
            ("host_id", Kind::Text),
            ("last_seen_ms", Kind::Int8),
            ("engine_state", Kind::Int4),
        ],
        identity: None,
    },
    Table {
        name: "changes",
        columns: &[
            ("id", Kind::Int8),
            ("host_id", Kind::Text),
            ("environment", Kind::Text),
            ("service", Kind::Text),
            ("container", Kind::Text),
            ("what", Kind::Text),
            ("old_image", Kind::Text),
            ("new_image", Kind::Text),
            ("observed_at_ms", Kind::Int8),
            ("received_at_ms", Kind::Int8),
        ],
        identity: Some("id"),
    },
    Table {
        name: "findings",
        columns: &[
            ("row_id", Kind::Int8),
            ("id", Kind::Text),
            ("kind", Kind::Text),
            ("severity", Kind::Text),
            ("service", Kind::Text),
            ("environments", Kind::Text),
            ("key", Kind::Text),
            ("host", Kind::Text),
            ("summary", Kind::Text),
            ("first_seen_ms", Kind::Int8),
            ("last_seen_ms", Kind::Int8),
            ("resolved_ms", Kind::OptInt8),
        ],
        identity: Some("row_id"),
    },
    Table {
        name: "alerts",
        columns: &[
            ("id", Kind::Text),
            ("body", Kind::Text),
            ("resolved_ms", Kind::OptInt8),
        ],
        identity: None,
    },
    Table {
        name: "alert_outbox",
        columns: &[
            ("seq", Kind::Int8),
            ("sink", Kind::Text),
            ("event", Kind::Text),
        ],
        identity: Some("seq"),
    },
];

/// How many rows travel together.
pub(super) const BATCH_ROWS: usize = 1_000;

/// What an import copied: rows per table, in [`TABLES`]' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The source, as errors name it.
    pub from: String,
    /// The target, as errors name it.
    pub to: String,
    /// Each table's name and the rows copied.
    pub rows: Vec<(&'static str, u64)>,
}

/// Copies the embedded store of data directory `dir` into the PostgreSQL
/// database `target`, which must hold no rows (its schema is created or
/// migrated first). The source's schema is upgraded in place first, as
/// `serve` would. Blocks. Stop every aggregator on either store first.
pub fn sqlite_into_postgres(dir: &Path, target: &PgTarget) -> Result<Imported, StoreError> {
    let file = dir.join("envparity.db");
    if !file.is_file() {
        return Err(StoreError::Import {
            from: file.display().to_string(),
            to: target.name().to_owned(),
            reason: "there is no store there (the file does not exist); name the data directory the aggregator ran with (--data-dir)".into(),
        });
    }
    let source = SqliteStore::open(dir)?;
    let sink = PgStore::open(target)?;
    let rows = sink.import(&source.path().display().to_string(), |copy| {
        source.export(copy)
    })?;
    Ok(Imported {
        from: source.path().display().to_string(),
        to: target.name().to_owned(),
        rows,
    })
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
