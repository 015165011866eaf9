//! The tests every backend passes, each body written once and run on each
//! backend: SQLite always; PostgreSQL on the server that
//! `ENVPARITY_TEST_POSTGRES` names (a `postgres://` URL of a superuser, as
//! `scripts/test.sh` sets it: tests/src/postgres.rs starts the server).
//! Without it the PostgreSQL variants pass after saying on stderr, past
//! the test harness's capture, that they were skipped.
//!
//! Each test gets a store of its own: a temp dir, or a database created
//! afresh under the test's name. "Reopen" opens the same place again, so
//! what a test reads after it was read back from the database, not from
//! memory.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use envparity_proto::fixtures;
use envparity_proto::v1::{EngineState, HostSnapshot};

use super::{
    AlertRow, Change, ChangeKind, ContainerRows, FindingChanges, FindingRecord, FindingsToCome,
    HostWrite, OutboxRow, Page, PageAt, PgStore, PgTarget, Reported, Resolved, SqliteStore, Store,
    StoreError, StoredHost,
};

/// The variable naming the PostgreSQL server of the tests.
pub(super) const POSTGRES_ENV: &str = "ENVPARITY_TEST_POSTGRES";

/// Where a test's store lives, opened as often as the test wants.
pub(super) trait Backend {
    /// The store.
    type S: Store;
    /// Opens (again) the test's store.
    fn open(&self) -> Self::S;
    /// Runs `sql` on the test's database and returns the first column of
    /// the first row as an integer (0 without one).
    fn sql(&self, sql: &str) -> i64;
    /// Records schema `version` as the database's, as a newer envparity
    /// would have.
    fn mark_schema(&self, version: i64);
    /// Opens the test's store, which must fail: the error.
    fn open_err(&self) -> String;
}

/// A SQLite store in a temp dir.
pub(super) struct Sqlite(tempfile::TempDir);

impl Sqlite {
    pub(super) fn fresh() -> Self {
        Sqlite(tempfile::tempdir().unwrap())
    }

    /// Its data directory.
    pub(super) fn dir(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Backend for Sqlite {
    type S = SqliteStore;
    fn open(&self) -> SqliteStore {
        SqliteStore::open(self.0.path()).unwrap()
    }
    fn sql(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.0.path().join("envparity.db")).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        match rows.next().unwrap() {
            Some(row) => row.get(0).unwrap(),
            None => 0,
        }
    }
    fn mark_schema(&self, version: i64) {
        self.sql(&format!(
            "UPDATE meta SET value = '{version}' WHERE key = 'schema_version' RETURNING 0"
        ));
    }
    fn open_err(&self) -> String {
        SqliteStore::open(self.0.path()).unwrap_err().to_string()
    }
}

/// A PostgreSQL database of its own on the tests' server.
pub(super) struct Postgres {
    target: PgTarget,
}

impl Postgres {
    /// A fresh database for `test` on the server of [`POSTGRES_ENV`];
    /// `None`, saying so on stderr, when the variable is not set.
    pub(super) fn fresh(test: &str) -> Option<Self> {
        let admin = admin_target()?;
        let db = database_name(test);
        run_sql(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        );
        // A natural-language collation (ICU's en-US), as most production
        // databases have: the store must answer in byte order all the same.
        run_sql(
            &admin,
            &format!(
                "CREATE DATABASE \"{db}\" TEMPLATE template0 LOCALE_PROVIDER icu \
                 ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            ),
        );
        let mut config = admin.config().clone();
        config.dbname(&db);
        Some(Postgres {
            target: PgTarget::new(config),
        })
    }

    /// The database's target.
    pub(super) fn target(&self) -> &PgTarget {
        &self.target
    }
}

impl Backend for Postgres {
    type S = PgStore;
    fn open(&self) -> PgStore {
        PgStore::open(&self.target).unwrap()
    }
    fn sql(&self, sql: &str) -> i64 {
        run_sql(&self.target, sql)
    }
    fn mark_schema(&self, version: i64) {
        self.sql(&format!(
            "INSERT INTO schema_version (version) VALUES ({version})"
        ));
    }
    fn open_err(&self) -> String {
        PgStore::open(&self.target).unwrap_err().to_string()
    }
}

/// The superuser's target on the tests' server; `None` (and a line on
/// stderr) without [`POSTGRES_ENV`].
pub(super) fn admin_target() -> Option<PgTarget> {
    let Ok(url) = std::env::var(POSTGRES_ENV) else {
        // Past libtest's capture: a skipped test must not look like a pass.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED on PostgreSQL: {POSTGRES_ENV} is not set (scripts/test.sh sets it; \
             docs/store.md says how to run these locally)"
        );
        return None;
    };
    Some(PgTarget::from_url(&url))
}

/// A database name for `test`: PostgreSQL keeps 63 bytes of a name, so a
/// long test name is cut and a hash of the whole keeps it unique.
fn database_name(test: &str) -> String {
    let hash = test.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let cut: String = test.chars().take(40).collect();
    format!("t_{cut}_{:08x}", hash as u32)
}

/// Runs `sql` on `target` on a runtime of its own (tests are plain
/// threads); the first column of the first row as an integer, 0 without.
pub(super) fn run_sql(target: &PgTarget, sql: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = target
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e:?}", target.name()));
        let driver = tokio::spawn(connection);
        let messages = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        drop(client);
        let _ = driver.await;
        messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some(row.get(0).map_or(0, |v| v.parse().unwrap_or(0)))
                }
                _ => None,
            })
            .unwrap_or(0)
    })
}

/// Runs each test body on every backend: `sqlite::NAME` and
/// `postgres::NAME`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Sqlite::fresh()); } )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(backend) = super::Postgres::fresh(stringify!($name)) {
                        super::$name(&backend);
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    findings_open_and_resolve_across_a_reopen,
    alerts_and_queued_notifications_survive_a_reopen_and_old_resolutions_are_forgotten,
    a_forgotten_host_leaves_its_snapshot_and_liveness_and_keeps_its_history,
    snapshots_survive_a_reopen,
    a_newer_schema_is_refused_naming_both_versions,
    paging_back_reads_every_change_once_in_order,
    a_report_of_changed_containers_reads_back_whole_in_its_order,
    reports_written_together_are_stored_all_or_none,
    reports_whose_findings_never_come_are_not_stored,
    opening_twice_changes_nothing,
    rows_written_together_keep_the_order_and_the_semantics_of_one_by_one,
    hosts_load_one_by_one_in_order_and_stop_at_a_damaged_one,
);

/// A host `id` in staging with `containers` containers `c0`, `c1`, ….
/// Pages back from the newest change of `service`, `per_page` at a time,
/// and checks that the pages read every change exactly once: together,
/// oldest first, they are the whole history read at once (more than one
/// page of it), which is returned.
pub(super) fn paged_back_whole(store: &impl Store, service: &str, per_page: usize) -> Page<Change> {
    let mut pages = Vec::new();
    let mut at = PageAt::newest(per_page);
    loop {
        let page = store.changes(Some(service), at).unwrap();
        assert!(page.rows.len() <= per_page);
        pages.push(page.rows);
        match page.older {
            Some(before) => at.before = Some(before),
            None => break,
        }
    }
    pages.reverse();
    let paged: Vec<Change> = pages.into_iter().flatten().collect();
    let whole = store
        .changes(Some(service), PageAt::newest(usize::MAX))
        .unwrap();
    assert!(paged.len() > per_page, "{} changes", paged.len());
    assert_eq!(paged, whole.rows);
    whole
}

pub(super) fn host(id: &str, containers: usize) -> StoredHost {
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

/// A change of `service` on h1 observed at `at`.
pub(super) fn change(service: &str, at: i64) -> Change {
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

/// An alert `id`, resolved at `resolved_ms` if given.
pub(super) fn alert(id: &str, resolved_ms: Option<i64>) -> AlertRow {
    AlertRow {
        id: id.into(),
        body: format!("{{\"id\":\"{id}\"}}"),
        resolved_ms,
    }
}

/// A notification of `event` queued for `sink`.
pub(super) fn queued(sink: &str, event: &str) -> OutboxRow {
    OutboxRow {
        seq: 0,
        sink: sink.into(),
        event: event.into(),
    }
}

/// An open finding `id` of `service` first seen at `first`.
pub(super) fn record(id: &str, service: &str, first: i64) -> FindingRecord {
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

/// The report after `first` (12 containers) that renamed `c2`, removed
/// `c5` and added `c99` — written as those three rows — and the host it
/// leaves, whose containers are not in id order ("c10" sorts before "c2").
pub(super) fn changed_report(first: &StoredHost) -> (HostWrite, StoredHost) {
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
    let expected = StoredHost {
        snapshot: std::sync::Arc::new(next),
        ..first.clone()
    };
    (write, expected)
}

fn findings_open_and_resolve_across_a_reopen(b: &impl Backend) {
    {
        let store = b.open();
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
    let store = b.open();
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

fn alerts_and_queued_notifications_survive_a_reopen_and_old_resolutions_are_forgotten(
    b: &impl Backend,
) {
    {
        let store = b.open();
        store
            .save_alerts(
                &[
                    alert("firing", None),
                    alert("old", Some(100)),
                    alert("recent", Some(900)),
                    // Byte order, as SQLite compares: upper case first.
                    alert("Zulu", None),
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
    let store = b.open();
    let ids: Vec<String> = store
        .load_alerts()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["Zulu", "firing", "recent"]);
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

fn a_forgotten_host_leaves_its_snapshot_and_liveness_and_keeps_its_history(b: &impl Backend) {
    let store = b.open();
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
    let store = b.open();
    let ids: Vec<String> = store
        .load_hosts()
        .unwrap()
        .iter()
        .map(|h| h.snapshot.host_id.clone())
        .collect();
    assert_eq!(ids, ["h2"]);
    for table in ["liveness", "containers"] {
        let left = b.sql(&format!(
            "SELECT COUNT(*) FROM {table} WHERE host_id = 'h1'"
        ));
        assert_eq!(left, 0, "{table}");
    }
    let history = store.changes(Some("shop"), PageAt::newest(10)).unwrap();
    assert_eq!(history.rows, vec![change("shop", 5)]);
}

fn snapshots_survive_a_reopen(b: &impl Backend) {
    {
        let store = b.open();
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
        // Hosts read back in byte order of their ids, as SQLite compares.
        for id in ["h2", "H3", "h-4"] {
            store
                .save_snapshot(&host(id, 1), &[], &FindingChanges::default())
                .unwrap();
        }
        store
            .touch(
                "h2",
                UNIX_EPOCH + Duration::from_millis(9_000),
                EngineState::Unreachable,
            )
            .unwrap();
    }
    let store = b.open();
    let hosts = store.load_hosts().unwrap();
    let ids: Vec<&str> = hosts.iter().map(StoredHost::host_id).collect();
    assert_eq!(ids, ["H3", "h-4", "h1", "h2"]);
    assert_eq!(hosts[2], host("h1", 3));
    assert_eq!(
        hosts[3].last_seen,
        UNIX_EPOCH + Duration::from_millis(9_000)
    );
    assert_eq!(hosts[3].engine_state, EngineState::Unreachable);
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

fn a_newer_schema_is_refused_naming_both_versions(b: &impl Backend) {
    drop(b.open());
    b.mark_schema(99);
    let err = b.open_err();
    assert!(err.contains("schema version 99"), "{err}");
    assert!(err.contains("upgrade envparity"), "{err}");
}

fn paging_back_reads_every_change_once_in_order(b: &impl Backend) {
    let store = b.open();
    let service = |i: usize| format!("svc-{}", i % 7);
    let many: Vec<Change> = (0..300).map(|i| change(&service(i), i as i64)).collect();
    store
        .save_snapshot(&host("h1", 2), &many, &FindingChanges::default())
        .unwrap();
    for i in 0..20 {
        store
            .save_snapshot(
                &host("h1", i % 5),
                &[change(&service(i), 1_000 + i as i64)],
                &FindingChanges::default(),
            )
            .unwrap();
    }
    let all = store.changes(None, PageAt::newest(usize::MAX)).unwrap();
    assert_eq!((all.rows.len(), all.older), (320, None));
    let whole = paged_back_whole(&store, &service(3), 7);
    assert!(
        whole
            .rows
            .windows(2)
            .all(|w| w[0].observed_at_ms < w[1].observed_at_ms),
        "oldest first"
    );
}

fn a_report_of_changed_containers_reads_back_whole_in_its_order(b: &impl Backend) {
    let store = b.open();
    let first = host("h1", 12);
    store
        .save_snapshot(&first, &[], &FindingChanges::default())
        .unwrap();
    let (write, expected) = changed_report(&first);
    store
        .save_report(&write, &[], &FindingChanges::default())
        .unwrap();
    assert_eq!(store.load_hosts().unwrap(), vec![expected.clone()]);
    drop(store);
    assert_eq!(b.open().load_hosts().unwrap(), vec![expected]);
}

/// Several reports written together (group commit) are one transaction:
/// when one of them cannot be written, none of them is stored, nor the
/// findings that came with them; written together, each reads back.
fn reports_written_together_are_stored_all_or_none(b: &impl Backend) {
    let store = b.open();
    let (a, c) = (host("h1", 3), host("h2", 2));
    let (wa, wc) = (HostWrite::whole(&a), HostWrite::whole(&c));
    let mut broken = HostWrite::whole(&c);
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
                    changes: &[change("shop", 1)],
                },
                Reported {
                    host: second,
                    changes: &[],
                },
            ],
            FindingsToCome::ready(opened.clone()),
        )
    };
    assert!(together(&broken).is_err());
    assert_eq!(store.load_hosts().unwrap(), Vec::<StoredHost>::new());
    assert!(store.open_findings().unwrap().is_empty());
    assert!(
        store
            .changes(None, PageAt::newest(10))
            .unwrap()
            .rows
            .is_empty()
    );

    together(&wc).unwrap();
    assert_eq!(store.load_hosts().unwrap(), vec![a, c]);
    assert_eq!(store.open_findings().unwrap().len(), 1);
}

/// The findings of a group commit come from the evaluation that runs while
/// its reports are written: given late, all of it is stored; never given
/// (the evaluation failed), none of it, and the store goes on.
fn reports_whose_findings_never_come_are_not_stored(b: &impl Backend) {
    let store = b.open();
    let a = host("h1", 3);
    let wa = HostWrite::whole(&a);
    let reported = [Reported {
        host: &wa,
        changes: &[change("shop", 1)],
    }];
    let (sender, findings) = FindingsToCome::later();
    drop(sender);
    let error = store.save_reports(&reported, findings).unwrap_err();
    assert!(matches!(error, StoreError::Abandoned), "{error}");
    assert_eq!(store.load_hosts().unwrap(), Vec::<StoredHost>::new());
    assert!(
        store
            .changes(None, PageAt::newest(10))
            .unwrap()
            .rows
            .is_empty()
    );

    let (sender, findings) = FindingsToCome::later();
    let giving = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        sender.send(FindingChanges {
            opened: vec![record("f1", "shop", 1)],
            resolved: Vec::new(),
        });
    });
    store.save_reports(&reported, findings).unwrap();
    giving.join().unwrap();
    assert_eq!(store.load_hosts().unwrap(), vec![a]);
    assert_eq!(store.open_findings().unwrap().len(), 1);
    assert_eq!(
        store.changes(None, PageAt::newest(10)).unwrap().rows.len(),
        1
    );
}

/// Opening a store again (a restart) neither fails nor changes what it
/// holds: creating or migrating the schema is idempotent.
fn opening_twice_changes_nothing(b: &impl Backend) {
    let store = b.open();
    store
        .save_snapshot(
            &host("h1", 2),
            &[change("shop", 1)],
            &FindingChanges::default(),
        )
        .unwrap();
    drop(store);
    let (again, and_again) = (b.open(), b.open());
    assert_eq!(again.load_hosts().unwrap(), vec![host("h1", 2)]);
    assert_eq!(
        and_again
            .changes(None, PageAt::newest(5))
            .unwrap()
            .rows
            .len(),
        1
    );
}

/// What one call writes together (PostgreSQL passes its rows as arrays, one
/// statement for many) means what writing them one by one means: changes
/// keep the order given across the reports of a group commit; of a host
/// heard twice the last heartbeat wins, and a host never stored is no
/// error; an id opened twice is opened once, and of two resolutions of one
/// finding the first holds.
fn rows_written_together_keep_the_order_and_the_semantics_of_one_by_one(b: &impl Backend) {
    let store = b.open();
    let (a, c) = (host("h1", 3), host("h2", 2));
    let (wa, wc) = (HostWrite::whole(&a), HostWrite::whole(&c));
    let first: Vec<Change> = (0..40).map(|i| change("shop", 100 - i)).collect();
    let second: Vec<Change> = (0..40).map(|i| change("shop", 50 - i)).collect();
    store
        .save_reports(
            &[
                Reported {
                    host: &wa,
                    changes: &first,
                },
                Reported {
                    host: &wc,
                    changes: &second,
                },
            ],
            FindingsToCome::ready(FindingChanges {
                opened: vec![
                    record("f1", "shop", 1),
                    record("f2", "shop", 2),
                    record("f1", "shop", 3),
                ],
                resolved: Vec::new(),
            }),
        )
        .unwrap();
    let written: Vec<Change> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        store
            .changes(None, PageAt::newest(usize::MAX))
            .unwrap()
            .rows,
        written
    );
    let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
    store
        .touch_many(&[
            ("h1".to_owned(), at(5_000), EngineState::Ok),
            ("never".to_owned(), at(6_000), EngineState::Ok),
            ("h2".to_owned(), at(7_000), EngineState::Ok),
            ("h1".to_owned(), at(9_000), EngineState::Unreachable),
        ])
        .unwrap();
    store
        .save_findings(&FindingChanges {
            opened: Vec::new(),
            resolved: vec![
                Resolved {
                    id: "f1".into(),
                    last_seen_ms: 15,
                    resolved_ms: 20,
                },
                Resolved {
                    id: "f1".into(),
                    last_seen_ms: 25,
                    resolved_ms: 30,
                },
            ],
        })
        .unwrap();
    drop(store);
    let store = b.open();
    let hosts = store.load_hosts().unwrap();
    let seen: Vec<(&str, SystemTime, EngineState)> = hosts
        .iter()
        .map(|h| (h.host_id(), h.last_seen, h.engine_state))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("h1", at(9_000), EngineState::Unreachable),
            ("h2", at(7_000), EngineState::Ok)
        ]
    );
    let records = store
        .finding_records("shop", PageAt::newest(10))
        .unwrap()
        .rows;
    let found: Vec<(&str, i64, Option<i64>)> = records
        .iter()
        .map(|r| (r.id.as_str(), r.first_seen_ms, r.resolved_ms))
        .collect();
    assert_eq!(found, vec![("f1", 1, Some(20)), ("f2", 2, None)]);
    assert_eq!(records[0].last_seen_ms, 15);
}

/// Hosts are handed one by one, in order, each whole, across more rows
/// than one read fetches (PostgreSQL reads 500 rows at a time); a damaged
/// host stops the load with an error naming it, after the hosts before it.
fn hosts_load_one_by_one_in_order_and_stop_at_a_damaged_one(b: &impl Backend) {
    let store = b.open();
    // 1,200 hosts of 0 to 3 containers: 1,800 container rows.
    let hosts: Vec<StoredHost> = (0..1_200)
        .map(|i| host(&format!("h{i:04}"), i % 4))
        .collect();
    let writes: Vec<HostWrite> = hosts.iter().map(HostWrite::whole).collect();
    let reported: Vec<Reported<'_>> = writes
        .iter()
        .map(|w| Reported {
            host: w,
            changes: &[],
        })
        .collect();
    store
        .save_reports(&reported, FindingsToCome::ready(FindingChanges::default()))
        .unwrap();
    drop(store);
    let mut handed = Vec::new();
    b.open().each_host(&mut |h| handed.push(h)).unwrap();
    assert!(
        handed == hosts,
        "{} hosts handed, not those written",
        handed.len()
    );

    // The row of h0703's first container now holds another id's body.
    b.sql(
        "UPDATE containers SET container_id = 'zz' \
           WHERE host_id = 'h0703' AND container_id = 'c0' RETURNING 0",
    );
    let mut handed = Vec::new();
    let err = b
        .open()
        .each_host(&mut |h| handed.push(h.host_id().to_owned()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("h0703") && err.contains("zz"), "{err}");
    let before: Vec<String> = hosts[..703]
        .iter()
        .map(|h| h.host_id().to_owned())
        .collect();
    assert_eq!(handed, before);
}
