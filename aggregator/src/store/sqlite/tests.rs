//! Tests of what only the SQLite store has: upgrades of older databases,
//! file modes, the page cache bound, damaged files, rows written per
//! report. What every backend does is tested in `store/contract_tests.rs`,
//! on SQLite and on PostgreSQL.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use envparity_proto::v1::{EngineState, HostSnapshot};
use rusqlite::Connection;

use super::SqliteStore;
use super::open::PAGE_CACHE_KIB;
use super::schema::SCHEMA_VERSION;
use crate::store::contract_tests::{change, changed_report, host, paged_back_whole};
use crate::store::{Change, FindingChanges, PageAt, Store, StoredHost};

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
    let version = schema_version(&store.conn());
    assert_eq!(version, SCHEMA_VERSION.to_string());
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
    paged_back_whole(&store, &service(3), 7);
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

/// Counts the writes to container rows from now on (temporary triggers on
/// `conn`'s connection); read them with [`row_writes`].
fn count_row_writes(conn: &Connection) {
    conn.execute_batch(
        "CREATE TEMP TABLE row_writes (what TEXT NOT NULL);
         CREATE TEMP TRIGGER count_insert AFTER INSERT ON main.containers
           BEGIN INSERT INTO row_writes VALUES ('insert'); END;
         CREATE TEMP TRIGGER count_update AFTER UPDATE ON main.containers
           BEGIN INSERT INTO row_writes VALUES ('update'); END;
         CREATE TEMP TRIGGER count_delete AFTER DELETE ON main.containers
           BEGIN INSERT INTO row_writes VALUES ('delete'); END;",
    )
    .unwrap();
}

fn row_writes(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM row_writes", [], |r| r.get(0))
        .unwrap()
}

/// A report that changed one container, added one and removed one writes
/// those three rows and no other.
#[test]
fn a_report_writes_only_the_container_rows_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let first = host("h1", 12);
    store
        .save_snapshot(&first, &[], &FindingChanges::default())
        .unwrap();
    count_row_writes(&store.conn());
    let (write, expected) = changed_report(&first);
    store
        .save_report(&write, &[], &FindingChanges::default())
        .unwrap();
    assert_eq!(row_writes(&store.conn()), 3);
    // How it reads back: contract_tests.rs, on every backend.
    assert_eq!(store.load_hosts().unwrap(), vec![expected]);
}

/// Makes the database in `dir` look as version 4 left it: no container
/// rows and no order column, each host's snapshot whole in its row.
fn as_version_4(store: &SqliteStore, hosts: &[&StoredHost]) {
    let conn = store.conn();
    conn.execute_batch(
        "DROP TABLE containers; ALTER TABLE hosts DROP COLUMN container_order;
         UPDATE meta SET value = '4' WHERE key = 'schema_version';",
    )
    .unwrap();
    for h in hosts {
        conn.execute(
            "UPDATE hosts SET snapshot = ?2 WHERE host_id = ?1",
            rusqlite::params![
                h.snapshot.host_id,
                prost::Message::encode_to_vec(&*h.snapshot)
            ],
        )
        .unwrap();
    }
}

/// A version 4 store is upgraded in place: each host's containers move to
/// rows of their own and read back whole, in their order.
#[test]
fn a_version_4_store_moves_containers_to_rows_keeping_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let (h1, h2) = (host("h1", 12), host("h2", 0));
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        for h in [&h1, &h2] {
            store
                .save_snapshot(h, &[], &FindingChanges::default())
                .unwrap();
        }
        as_version_4(&store, &[&h1, &h2]);
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.load_hosts().unwrap(), vec![h1, h2]);
    let rows: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM containers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 12);
    let version = schema_version(&store.conn());
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

/// A version 4 snapshot that lists a container twice (which a report can
/// no longer do) stops the upgrade with an error naming the host and the
/// container, and leaves the database as it was.
#[test]
fn a_version_4_snapshot_listing_a_container_twice_stops_the_upgrade_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut twice = host("h1", 2);
    let mut s = HostSnapshot::clone(&twice.snapshot);
    s.containers[1].id = "c0".into();
    twice.snapshot = std::sync::Arc::new(s);
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .save_snapshot(&host("h1", 1), &[], &FindingChanges::default())
            .unwrap();
        as_version_4(&store, &[&twice]);
    }
    let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("\"h1\"") && err.contains("\"c0\" twice"),
        "{err}"
    );
    let conn = Connection::open(dir.path().join("envparity.db")).unwrap();
    let version = schema_version(&conn);
    assert_eq!(version, "4", "the upgrade rolled back");
}

/// The schema version the database of `conn` records.
fn schema_version(conn: &Connection) -> String {
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}
