//! Tests of the SQLite store: what survives a reopen, upgrades of older
//! databases, file modes, the page cache bound, and damaged files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use envparity_proto::fixtures;
use envparity_proto::v1::{EngineState, HostSnapshot};
use rusqlite::Connection;

use super::SqliteStore;
use super::open::PAGE_CACHE_KIB;
use super::schema::SCHEMA_VERSION;
use crate::store::{
    AlertRow, Change, ChangeKind, ContainerRows, FindingChanges, FindingRecord, HostWrite,
    OutboxRow, Page, PageAt, Reported, Resolved, Store, StoredHost,
};

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

fn host(id: &str, containers: usize) -> StoredHost {
    StoredHost {
        snapshot: std::sync::Arc::new(
            fixtures::snapshot(id, "staging")
                .sequence(3)
                .agent_version("0.1.0")
                .boot_id("b1")
                .containers(
                    (0..containers)
                        .map(|i| fixtures::container("shop").id(format!("c{i}")).build()),
                )
                .build(),
        ),
        received_at: UNIX_EPOCH + Duration::from_millis(1_000),
        last_seen: UNIX_EPOCH + Duration::from_millis(2_000),
        engine_state: EngineState::Ok,
    }
}

fn change(service: &str, at: i64) -> Change {
    Change {
        host_id: "h1".into(),
        environment: "staging".into(),
        service: service.into(),
        container: "c".into(),
        what: ChangeKind::ImageChanged,
        old_image: "sha256:a".into(),
        new_image: "sha256:b".into(),
        observed_at_ms: at,
        received_at_ms: at + 1,
    }
}

fn record(id: &str, service: &str, first: i64) -> FindingRecord {
    FindingRecord {
        id: id.into(),
        kind: "image_digest".into(),
        severity: "critical".into(),
        service: service.into(),
        environments: vec!["production".into(), "staging".into()],
        key: String::new(),
        host: String::new(),
        summary: format!("{service} differs"),
        first_seen_ms: first,
        last_seen_ms: first,
        resolved_ms: None,
    }
}

#[test]
fn findings_open_and_resolve_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let opened = FindingChanges {
            opened: vec![record("a", "shop", 10), record("b", "cart", 11)],
            resolved: vec![],
        };
        store.save_snapshot(&host("h1", 1), &[], &opened).unwrap();
        // Opening an id that is already open changes nothing.
        store
            .save_findings(&FindingChanges {
                opened: vec![record("a", "shop", 99)],
                resolved: vec![],
            })
            .unwrap();
        store
            .save_findings(&FindingChanges {
                opened: vec![],
                resolved: vec![Resolved {
                    id: "a".into(),
                    last_seen_ms: 15,
                    resolved_ms: 20,
                }],
            })
            .unwrap();
        // The same identity can open again after it resolved.
        store
            .save_findings(&FindingChanges {
                opened: vec![record("a", "shop", 30)],
                resolved: vec![],
            })
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let open: Vec<(String, i64)> = store
        .open_findings()
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.first_seen_ms))
        .collect();
    assert_eq!(open, vec![("b".to_owned(), 11), ("a".to_owned(), 30)]);
    let shop = store.finding_records("shop", PageAt::newest(10)).unwrap();
    assert_eq!(shop.older, None);
    let shop = shop.rows;
    assert_eq!(shop.len(), 2);
    assert_eq!(shop[0].resolved_ms, Some(20));
    assert_eq!(shop[0].last_seen_ms, 15);
    assert_eq!(shop[1].resolved_ms, None);
    assert_eq!(shop[0].environments, vec!["production", "staging"]);
    let newest = store.finding_records("shop", PageAt::newest(1)).unwrap();
    assert_eq!(newest.rows[0].first_seen_ms, 30);
    let before = store
        .finding_records(
            "shop",
            PageAt {
                before: newest.older,
                limit: 1,
            },
        )
        .unwrap();
    assert_eq!(before.rows[0].resolved_ms, Some(20));
    assert_eq!(before.older, None);
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
fn alerts_and_queued_notifications_survive_a_reopen_and_old_resolutions_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let alert = |id: &str, resolved_ms: Option<i64>| AlertRow {
        id: id.into(),
        body: format!("{{\"id\":\"{id}\"}}"),
        resolved_ms,
    };
    let queued = |sink: &str, event: &str| OutboxRow {
        seq: 0,
        sink: sink.into(),
        event: event.into(),
    };
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .save_alerts(
                &[
                    alert("firing", None),
                    alert("old", Some(100)),
                    alert("recent", Some(900)),
                ],
                &[
                    queued("hook", "e1"),
                    queued("slack", "e1"),
                    queued("hook", "e2"),
                ],
                500,
            )
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let ids: Vec<String> = store
        .load_alerts()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["firing", "recent"]);
    let hook = store.outbox("hook", 10).unwrap();
    assert_eq!(
        hook.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
        ["e1", "e2"]
    );
    assert!(hook[0].seq < hook[1].seq);
    assert_eq!(store.outbox("hook", 1).unwrap().len(), 1);
    store.outbox_done(&[hook[0].seq]).unwrap();
    assert_eq!(store.outbox("hook", 10).unwrap()[0].event, "e2");
    assert_eq!(store.outbox("slack", 10).unwrap().len(), 1);
    // An update replaces the row.
    store
        .save_alerts(&[alert("firing", Some(1000))], &[], 0)
        .unwrap();
    let firing = store
        .load_alerts()
        .unwrap()
        .into_iter()
        .find(|a| a.id == "firing");
    assert_eq!(firing.unwrap().resolved_ms, Some(1000));
}

#[test]
fn a_forgotten_host_leaves_its_snapshot_and_liveness_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .save_snapshot(
            &host("h1", 2),
            &[change("shop", 5)],
            &FindingChanges::default(),
        )
        .unwrap();
    store
        .save_snapshot(&host("h2", 1), &[], &FindingChanges::default())
        .unwrap();
    store
        .touch(
            "h1",
            UNIX_EPOCH + Duration::from_millis(9_000),
            EngineState::Ok,
        )
        .unwrap();
    assert!(store.forget_host("h1").unwrap());
    assert!(!store.forget_host("h1").unwrap(), "already forgotten");
    assert!(!store.forget_host("nobody").unwrap());
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    let ids: Vec<String> = store
        .load_hosts()
        .unwrap()
        .iter()
        .map(|h| h.snapshot.host_id.clone())
        .collect();
    assert_eq!(ids, ["h2"]);
    let liveness: i64 = store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM liveness WHERE host_id = 'h1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(liveness, 0);
    let history = store.changes(Some("shop"), PageAt::newest(10)).unwrap();
    assert_eq!(history.rows, vec![change("shop", 5)]);
}

#[test]
fn snapshots_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .save_snapshot(
                &host("h1", 2),
                &[change("shop", 5)],
                &FindingChanges::default(),
            )
            .unwrap();
        store
            .save_snapshot(
                &host("h1", 3),
                &[change("shop", 6)],
                &FindingChanges::default(),
            )
            .unwrap();
        store
            .save_snapshot(&host("h2", 1), &[], &FindingChanges::default())
            .unwrap();
        store
            .touch(
                "h2",
                UNIX_EPOCH + Duration::from_millis(9_000),
                EngineState::Unreachable,
            )
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let hosts = store.load_hosts().unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0], host("h1", 3));
    assert_eq!(
        hosts[1].last_seen,
        UNIX_EPOCH + Duration::from_millis(9_000)
    );
    assert_eq!(hosts[1].engine_state, EngineState::Unreachable);
    let changes = store.changes(Some("shop"), PageAt::newest(10)).unwrap();
    assert_eq!(changes.rows, vec![change("shop", 5), change("shop", 6)]);
    assert_eq!(
        store.changes(Some("other"), PageAt::newest(10)).unwrap(),
        Page {
            rows: vec![],
            older: None
        }
    );
    let newest = store.changes(None, PageAt::newest(1)).unwrap();
    assert_eq!(newest.rows, vec![change("shop", 6)]);
    assert!(newest.older.is_some());
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
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("envparity.db")).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("schema version 99"), "{err}");
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
    let mut pages = Vec::new();
    let mut at = PageAt::newest(7);
    loop {
        let page = store.changes(Some(&service(3)), at).unwrap();
        pages.push(page.rows);
        match page.older {
            Some(before) => at.before = Some(before),
            None => break,
        }
    }
    pages.reverse();
    let paged: Vec<Change> = pages.into_iter().flatten().collect();
    let whole = store
        .changes(Some(&service(3)), PageAt::newest(usize::MAX))
        .unwrap();
    assert!(paged.len() > 7, "{} changes", paged.len());
    assert_eq!(paged, whole.rows);
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
/// those three rows and no other, and the host reads back whole, in the
/// snapshot's order (here not by id: "c10" sorts before "c2").
#[test]
fn a_report_writes_only_the_container_rows_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let first = host("h1", 12);
    store
        .save_snapshot(&first, &[], &FindingChanges::default())
        .unwrap();
    count_row_writes(&store.conn());

    let mut next = HostSnapshot::clone(&first.snapshot);
    next.sequence = 4;
    next.containers[2].name = "renamed".into();
    next.containers.remove(5);
    next.containers
        .push(fixtures::container("web").id("c99").build());
    let mut header = next.clone();
    let containers = std::mem::take(&mut header.containers);
    let write = HostWrite {
        header: std::sync::Arc::new(header),
        received_at: first.received_at,
        last_seen: first.last_seen,
        engine_state: EngineState::Ok,
        order: crate::store::order_of(containers.iter().map(|c| c.id.as_str())),
        containers: ContainerRows::Changed {
            upserted: vec![containers[2].clone(), containers[11].clone()],
            removed: vec!["c5".into()],
        },
    };
    assert!(write.order.is_some(), "the order is not by id");
    store
        .save_report(&write, &[], &FindingChanges::default())
        .unwrap();
    assert_eq!(row_writes(&store.conn()), 3);

    let expected = StoredHost {
        snapshot: std::sync::Arc::new(next),
        ..first
    };
    assert_eq!(store.load_hosts().unwrap(), vec![expected.clone()]);
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(reopened.load_hosts().unwrap(), vec![expected]);
}

/// Several reports written together (group commit) are one transaction:
/// when one of them cannot be written, none of them is stored, nor the
/// findings that came with them; written together, each reads back.
#[test]
fn reports_written_together_are_stored_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (a, b) = (host("h1", 3), host("h2", 2));
    let (wa, wb) = (HostWrite::whole(&a), HostWrite::whole(&b));
    let mut broken = HostWrite::whole(&b);
    // Two rows under one container id: the second violates the key.
    if let ContainerRows::All(all) = &mut broken.containers {
        all[1].id = all[0].id.clone();
    }
    let opened = FindingChanges {
        opened: vec![record("f1", "shop", 1)],
        resolved: Vec::new(),
    };
    let together = |second: &HostWrite| {
        store.save_reports(
            &[
                Reported {
                    host: &wa,
                    changes: &[],
                },
                Reported {
                    host: second,
                    changes: &[],
                },
            ],
            &opened,
        )
    };
    assert!(together(&broken).is_err());
    assert_eq!(store.load_hosts().unwrap(), Vec::<StoredHost>::new());
    assert!(store.open_findings().unwrap().is_empty());

    together(&wb).unwrap();
    assert_eq!(store.load_hosts().unwrap(), vec![a, b]);
    assert_eq!(store.open_findings().unwrap().len(), 1);
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
