//! Opening the database: the data directory and the file, owner only;
//! refusing a read-only one; WAL, durability and the page cache; then the
//! schema. Also the writability check of `check-config`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

use super::SqliteStore;
use super::schema;
use crate::store::StoreError;

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
pub(super) const PAGE_CACHE_KIB: u32 = 256;

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
        schema::create_or_upgrade(&conn, &path)?;
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }
}
