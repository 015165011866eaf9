//! An embedded store moved to PostgreSQL reads back exactly, numbering
//! goes on after it, and an import that cannot be whole writes nothing.

use std::time::{Duration, UNIX_EPOCH};

use envparity_proto::v1::EngineState;

use super::sqlite_into_postgres;
use crate::store::contract_tests::{
    Backend, Postgres, Sqlite, alert, change, changed_report, host, queued, record,
};
use crate::store::{FindingChanges, PageAt, Resolved, Store, StoreError};

/// Everything a store holds, as its reads answer it.
fn everything(store: &impl Store) -> String {
    let all = PageAt::newest(usize::MAX);
    let mut out = format!("{:#?}\n", store.load_hosts().unwrap());
    out += &format!("{:#?}\n", store.open_findings().unwrap());
    for service in ["shop", "cart", "web"] {
        out += &format!("{:#?}\n", store.finding_records(service, all).unwrap());
        out += &format!("{:#?}\n", store.changes(Some(service), all).unwrap());
    }
    out += &format!("{:#?}\n", store.changes(None, all).unwrap());
    out += &format!("{:#?}\n", store.load_alerts().unwrap());
    for sink in ["hook", "slack"] {
        out += &format!("{:#?}\n", store.outbox(sink, usize::MAX).unwrap());
    }
    out
}

/// A store with a bit of everything: two hosts (one written as a report
/// of changed containers, its order not by id; one whose engine went
/// unreachable after), history, findings open and resolved, alerts firing
/// and resolved, notifications queued and one sent.
fn fill(store: &impl Store) {
    let first = host("h1", 12);
    let opened = FindingChanges {
        opened: vec![record("a", "shop", 10), record("b", "cart", 11)],
        resolved: vec![],
    };
    store
        .save_snapshot(&first, &[change("shop", 5), change("cart", 6)], &opened)
        .unwrap();
    let (write, _) = changed_report(&first);
    let resolved = FindingChanges {
        opened: vec![record("c", "web", 12)],
        resolved: vec![Resolved {
            id: "a".into(),
            last_seen_ms: 15,
            resolved_ms: 20,
        }],
    };
    store
        .save_report(&write, &[change("shop", 7)], &resolved)
        .unwrap();
    let second = host("h2", 3);
    store
        .save_snapshot(&second, &[change("web", 8)], &FindingChanges::default())
        .unwrap();
    store
        .touch(
            "h2",
            UNIX_EPOCH + Duration::from_millis(9_000),
            EngineState::Unreachable,
        )
        .unwrap();
    store
        .save_alerts(
            &[alert("firing", None), alert("recent", Some(900))],
            &[
                queued("hook", "e1"),
                queued("slack", "e1"),
                queued("hook", "e2"),
            ],
            500,
        )
        .unwrap();
    let sent = store.outbox("hook", 1).unwrap();
    store.outbox_done(&[sent[0].seq]).unwrap();
}

#[test]
fn an_embedded_store_moves_to_postgres_whole_and_goes_on_there() {
    let Some(pg) = Postgres::fresh("an_embedded_store_moves_to_postgres_whole") else {
        return;
    };
    let sqlite = Sqlite::fresh();
    fill(&sqlite.open());
    let before = everything(&sqlite.open());

    let imported = sqlite_into_postgres(sqlite.dir(), pg.target()).unwrap();
    let rows: Vec<(&str, u64)> = imported.rows.clone();
    assert_eq!(
        rows,
        [
            ("hosts", 2),
            ("containers", 15),
            ("liveness", 2),
            ("changes", 4),
            ("findings", 3),
            ("alerts", 2),
            ("alert_outbox", 2),
        ]
    );
    assert!(imported.from.ends_with("envparity.db"), "{imported:?}");
    let target = pg.open();
    assert_eq!(
        everything(&target),
        before,
        "PostgreSQL answers as SQLite did"
    );
    // The source is read, not changed.
    assert_eq!(everything(&sqlite.open()), before);

    // Numbering goes on after the rows imported: a new change pages as the
    // newest, a new notification comes after the queued one.
    target
        .save_snapshot(
            &host("h3", 1),
            &[change("shop", 50)],
            &FindingChanges::default(),
        )
        .unwrap();
    let newest = target.changes(None, PageAt::newest(1)).unwrap();
    assert_eq!(newest.rows[0].observed_at_ms, 50);
    assert_eq!(
        target
            .changes(None, PageAt::newest(usize::MAX))
            .unwrap()
            .rows
            .len(),
        5
    );
    target
        .save_alerts(&[], &[queued("hook", "e3")], 500)
        .unwrap();
    let hook = target.outbox("hook", 10).unwrap();
    let events: Vec<&str> = hook.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, ["e2", "e3"]);
    assert!(hook[0].seq < hook[1].seq);
    target
        .save_findings(&FindingChanges {
            opened: vec![record("d", "shop", 60)],
            resolved: vec![],
        })
        .unwrap();
    let shop = target.finding_records("shop", PageAt::newest(1)).unwrap();
    assert_eq!(shop.rows[0].id, "d");

    // A second import finds rows there: refused, and nothing changes.
    let after = everything(&target);
    let err = sqlite_into_postgres(sqlite.dir(), pg.target()).unwrap_err();
    assert!(matches!(err, StoreError::Import { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("already holds 3 row(s) in hosts")
            && message.contains("only into an empty database"),
        "{message}"
    );
    assert_eq!(everything(&pg.open()), after);
}

#[test]
fn an_import_that_cannot_be_whole_writes_nothing() {
    let Some(pg) = Postgres::fresh("an_import_that_cannot_be_whole") else {
        return;
    };
    // No store in the directory named: said so, nothing created there.
    let empty = tempfile::tempdir().unwrap();
    let message = sqlite_into_postgres(empty.path(), pg.target())
        .unwrap_err()
        .to_string();
    assert!(message.contains("there is no store there"), "{message}");
    assert!(!empty.path().join("envparity.db").exists());

    // A damaged value (text where a number belongs) half-way through the
    // tables: the rows copied before it are rolled back with it.
    let sqlite = Sqlite::fresh();
    fill(&sqlite.open());
    sqlite.sql("UPDATE findings SET first_seen_ms = 'soon' WHERE id = 'b' RETURNING 0");
    let message = sqlite_into_postgres(sqlite.dir(), pg.target())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("findings.first_seen_ms holds a value of type Text"),
        "{message}"
    );
    assert_eq!(pg.sql("SELECT COUNT(*) FROM hosts"), 0);
    assert_eq!(pg.sql("SELECT COUNT(*) FROM changes"), 0);
}
