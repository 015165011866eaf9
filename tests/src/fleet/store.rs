//! Which store the e2e aggregators serve from: their own `--data-dir`
//! (SQLite, the default), or, with `ENVPARITY_E2E_STORE=postgres`, a
//! database of their own on the PostgreSQL server `ENVPARITY_TEST_POSTGRES`
//! names (`scripts/test.sh` starts it and runs the e2e suite both ways,
//! docs/store.md); and what such a store holds, as bytes, for the tests
//! that search it for secrets.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::tools::PSQL;

/// The variable that puts the e2e aggregators on PostgreSQL.
pub const E2E_STORE_ENV: &str = "ENVPARITY_E2E_STORE";
/// The variable naming the PostgreSQL server of the tests, as a superuser's
/// `postgres://` URL.
pub const TEST_POSTGRES_ENV: &str = "ENVPARITY_TEST_POSTGRES";

/// A fresh database for an aggregator whose scratch dir is `dir`, when
/// [`E2E_STORE_ENV`] asks for PostgreSQL: its URL; `None` for SQLite.
pub fn fresh_database_for(dir: &Path) -> Result<Option<String>> {
    match std::env::var(E2E_STORE_ENV).as_deref() {
        Err(_) | Ok("sqlite") => return Ok(None),
        Ok("postgres") => {}
        Ok(other) => {
            return Err(store_error(format!(
                "{E2E_STORE_ENV}={other:?}: it is sqlite or postgres"
            )));
        }
    }
    let admin = std::env::var(TEST_POSTGRES_ENV).map_err(|_| {
        store_error(format!(
            "{E2E_STORE_ENV}=postgres needs {TEST_POSTGRES_ENV} (scripts/test.sh sets both)"
        ))
    })?;
    // Named after the scratch dir's whole path, unique in the run.
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(dir, &mut hasher);
    let db = format!("e2e_{:016x}", std::hash::Hasher::finish(&hasher));
    psql(&admin, &format!("CREATE DATABASE {db}"))?;
    Ok(Some(with_database(&admin, &db)?))
}

/// What the PostgreSQL database at `url` holds, table by table, as raw
/// bytes (`COPY … TO STDOUT (FORMAT binary)`: a `bytea` value as it is, not
/// in hex), each named `store: TABLE of DB`.
pub fn database_contents(url: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let tables = psql(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )?;
    let mut out = Vec::new();
    for table in tables.lines() {
        let mut copy = Command::new(PSQL.require()?);
        copy.args(["-XqAt", "-v", "ON_ERROR_STOP=1", "-d", url, "-c"])
            .arg(format!("COPY {table} TO STDOUT (FORMAT binary)"));
        let done = copy
            .output()
            .map_err(Error::io(format!("run {}", PSQL.path)))?;
        if !done.status.success() {
            return Err(store_error(format!(
                "COPY {table} from {url}: {}",
                String::from_utf8_lossy(&done.stderr)
            )));
        }
        out.push((format!("store: {table} of {url}"), done.stdout));
    }
    Ok(out)
}

/// An error of the e2e store's set-up.
fn store_error(detail: String) -> Error {
    Error::Unexpected {
        what: "the e2e store".into(),
        detail,
    }
}

/// Runs `sql` with psql on the database `url` names: its output.
fn psql(url: &str, sql: &str) -> Result<String> {
    let mut psql = Command::new(PSQL.require()?);
    psql.args(["-XqAt", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]);
    crate::command::checked(psql)
}

/// `url` (`postgres://USER@HOST/DB?…`) naming database `db` instead.
fn with_database(url: &str, db: &str) -> Result<String> {
    let bad = || store_error(format!("{url:?} is not a postgres://USER@HOST/DB URL"));
    let authority = url.find("://").ok_or_else(bad)? + 3;
    let path = authority + url[authority..].find('/').ok_or_else(bad)?;
    let end = url[path..].find('?').map_or(url.len(), |q| path + q);
    Ok(format!("{}/{db}{}", &url[..path], &url[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            with_database("postgres://postgres@/postgres?host=/tmp/x", "e2e_1").unwrap(),
            "postgres://postgres@/e2e_1?host=/tmp/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5/d", "e").unwrap(),
            "postgres://u@h:5/e"
        );
        assert!(with_database("nonsense", "e").is_err());
    }
}
