//! The aggregator's real store, [`SqliteStore`], one per fuzzing process.
//!
//! Opening a database per input would cost more than the input itself, so the
//! process opens one (on tmpfs when there is one: `fsync` is then free) and
//! [`FuzzStore::reset`] empties it and writes the baseline fleet back through
//! the store's own write path before each input. A second connection to the
//! same file does the emptying and watches `PRAGMA data_version`, which moves
//! exactly when another connection (the store's) commits: that is how a
//! target proves a refused report wrote nothing.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use envparity_aggregator::store::{FindingChanges, SqliteStore, Store, StoredHost};
use envparity_proto::v1::{EngineState, HostSnapshot};
use rusqlite::Connection;

/// Every table the store writes, emptied between inputs (`meta` keeps the
/// schema version and is left alone).
const TABLES: &[&str] = &[
    "hosts",
    "containers",
    "liveness",
    "changes",
    "findings",
    "alerts",
    "alert_outbox",
];

/// The process's store and the connection that resets and watches it.
#[derive(Debug)]
pub struct FuzzStore {
    store: Arc<SqliteStore>,
    watch: Mutex<Connection>,
    _dir: tempfile::TempDir,
}

impl FuzzStore {
    /// The process's store, opened on first use.
    pub fn get() -> &'static FuzzStore {
        static STORE: OnceLock<FuzzStore> = OnceLock::new();
        STORE.get_or_init(|| {
            let shm = Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                tempfile::Builder::new()
                    .prefix("envparity-fuzz-")
                    .tempdir_in(shm)
            } else {
                tempfile::Builder::new().prefix("envparity-fuzz-").tempdir()
            }
            .expect("a temporary directory for the fuzz store");
            let store = SqliteStore::open(dir.path()).expect("the fuzz store opens");
            let watch = Connection::open(store.path()).expect("a second connection to the store");
            watch
                .busy_timeout(std::time::Duration::from_secs(5))
                .expect("busy timeout");
            FuzzStore {
                store: Arc::new(store),
                watch: Mutex::new(watch),
                _dir: dir,
            }
        })
    }

    fn watch(&self) -> MutexGuard<'_, Connection> {
        self.watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store, as the aggregator's services take it.
    pub fn store(&self) -> Arc<SqliteStore> {
        Arc::clone(&self.store)
    }

    /// Empties the store and writes `hosts` into it, received and last seen
    /// at `now`, through [`Store::save_snapshot`].
    pub fn reset(&self, hosts: &[HostSnapshot], now: SystemTime) {
        {
            let watch = self.watch();
            let sql: String = TABLES.iter().map(|t| format!("DELETE FROM {t};")).collect();
            watch
                .execute_batch(&format!("BEGIN IMMEDIATE; {sql} COMMIT;"))
                .expect("the fuzz store empties");
        }
        for h in hosts {
            self.store
                .save_snapshot(
                    &StoredHost {
                        snapshot: Arc::new(h.clone()),
                        received_at: now,
                        last_seen: now,
                        engine_state: EngineState::Ok,
                    },
                    &[],
                    &FindingChanges::default(),
                )
                .expect("the baseline is stored");
        }
    }

    /// A number that changes whenever the store commits a write (SQLite's
    /// `data_version`, as seen from the watching connection).
    pub fn version(&self) -> i64 {
        self.watch()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .expect("data_version")
    }

    /// The stored snapshot of `host_id`, read back from SQLite.
    pub fn snapshot(&self, host_id: &str) -> Option<HostSnapshot> {
        self.store
            .load_hosts()
            .expect("the stored hosts load")
            .into_iter()
            .find(|h| h.snapshot.host_id == host_id)
            .map(|h| HostSnapshot::clone(&h.snapshot))
    }
}
