//! `envparity migrate --from-sqlite DIR`: an embedded store copied into
//! PostgreSQL (`store::sqlite_into_postgres`).

use std::path::PathBuf;

use super::Outcome;
use crate::store::{Location, StoreError};

/// Imports the embedded store of `dir` into `location`, which must be a
/// PostgreSQL database; prints what was copied.
pub(super) async fn import(dir: PathBuf, location: Location) -> anyhow::Result<Outcome> {
    let Location::Postgres(target) = location else {
        anyhow::bail!(
            "--from-sqlite copies an embedded store into PostgreSQL, but the store is {}: give --store postgres://USER@HOST/DB (or ENVPARITY_STORE)",
            location.name()
        );
    };
    let imported =
        tokio::task::spawn_blocking(move || crate::store::sqlite_into_postgres(&dir, &target))
            .await
            .map_err(StoreError::task)??;
    let rows: Vec<String> = imported
        .rows
        .iter()
        .map(|(table, n)| format!("{n} {table}"))
        .collect();
    println!(
        "imported {} into {}: {} rows ({})",
        imported.from,
        imported.to,
        imported.rows.iter().map(|(_, n)| n).sum::<u64>(),
        rows.join(", ")
    );
    Ok(Outcome::Parity)
}
