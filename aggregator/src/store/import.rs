//! Moving an embedded store to PostgreSQL (`envparity migrate --from-sqlite
//! DIR`, docs/store.md): every row of every table, with its ids, so that
//! nothing stored is lost and paging, history and alert sequences go on
//! where they were.
//!
//! Both backends keep the same tables and columns (SQLite's version 5 is
//! PostgreSQL's version 1), declared once in `tables.rs`, in the order
//! they are copied. The SQLite side reads them in one read transaction
//! ([`SqliteStore::export`]); the PostgreSQL side writes them in one
//! transaction that first checks that the database is empty, then compares
//! the counts, and commits only if every row arrived ([`PgStore::import`]).
//! A failure anywhere leaves the target as it was.

use std::path::Path;

use super::{PgStore, PgTarget, SqliteStore, StoreError};

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
