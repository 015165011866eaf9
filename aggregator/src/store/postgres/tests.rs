//! Tests of what only the PostgreSQL store has: migrations under the lock,
//! connection errors by name, `check-config`'s checks, and calls from the
//! blocking pool. What every backend does is in `store/contract_tests.rs`.
//! Each needs the server of `ENVPARITY_TEST_POSTGRES` and says on stderr
//! that it was skipped without it.

use std::sync::{Arc, Barrier};

use super::PgStore;
use crate::store::contract_tests::{Backend, Postgres, host, run_sql};
use crate::store::{FindingChanges, Migrated, PgTarget, Store};

/// `backend`'s database as `user` (with `password`, if any).
fn as_user(backend: &Postgres, user: &str, password: Option<&str>) -> PgTarget {
    let mut config = backend.target().config().clone();
    config.user(user);
    if let Some(password) = password {
        config.password(password);
    }
    PgTarget::new(config)
}

/// Creates login role `role` (trusted unless it is the harness's password
/// role) if it is missing, with `password`.
fn create_role(backend: &Postgres, role: &str, password: &str) {
    backend.sql(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
         ALTER ROLE {role} PASSWORD '{password}'"
    ));
}

#[test]
fn replicas_opening_at_once_migrate_once_and_all_work() {
    let Some(backend) = Postgres::fresh("replicas_opening_at_once_migrate_once") else {
        return;
    };
    let target = backend.target().clone();
    let start = Arc::new(Barrier::new(4));
    let openers: Vec<_> = (0..4)
        .map(|i| {
            let (target, start) = (target.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let store = PgStore::open(&target).unwrap();
                store
                    .save_snapshot(&host(&format!("h{i}"), 1), &[], &FindingChanges::default())
                    .unwrap();
            })
        })
        .collect();
    for opener in openers {
        opener.join().unwrap();
    }
    let migrations = super::schema::SCHEMA_VERSION;
    assert_eq!(
        backend.sql("SELECT COUNT(*) FROM schema_version"),
        migrations
    );
    assert_eq!(backend.open().load_hosts().unwrap().len(), 4);
    // Once current, migrating again finds nothing to do.
    assert_eq!(
        PgStore::migrate(&target).unwrap(),
        Migrated {
            from: Some(migrations),
            to: migrations
        }
    );
    assert_eq!(
        backend.sql("SELECT COUNT(*) FROM schema_version"),
        migrations
    );
}

#[test]
fn a_version_1_database_gains_leases_and_keeps_its_rows() {
    let Some(backend) = Postgres::fresh("a_version_1_database_gains_leases") else {
        return;
    };
    backend.sql(&format!(
        "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); {} \
         INSERT INTO schema_version (version) VALUES (1); \
         INSERT INTO alerts (id, body) VALUES ('a1', '{{}}')",
        super::schema::MIGRATIONS[0]
    ));
    assert_eq!(PgStore::check(backend.target()).unwrap(), Some(1));
    assert_eq!(
        PgStore::migrate(backend.target()).unwrap(),
        Migrated {
            from: Some(1),
            to: 2
        }
    );
    assert_eq!(backend.sql("SELECT COUNT(*) FROM alerts"), 1);
    assert_eq!(backend.sql("SELECT COUNT(*) FROM leases"), 0);
}

#[test]
fn an_empty_database_is_migrated_from_version_0() {
    let Some(backend) = Postgres::fresh("an_empty_database_is_migrated_from_0") else {
        return;
    };
    assert_eq!(PgStore::check(backend.target()).unwrap(), None);
    assert_eq!(
        PgStore::migrate(backend.target()).unwrap(),
        Migrated {
            from: Some(0),
            to: super::schema::SCHEMA_VERSION
        }
    );
    assert_eq!(
        PgStore::check(backend.target()).unwrap(),
        Some(super::schema::SCHEMA_VERSION)
    );
}

#[test]
fn a_wrong_password_is_a_clear_error_naming_the_user() {
    let Some(backend) = Postgres::fresh("a_wrong_password_is_a_clear_error") else {
        return;
    };
    let role = envparity_tests_password_role();
    create_role(&backend, role, "right");
    let err = PgStore::open(&as_user(&backend, role, Some("Tr0ub4dor")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(err.contains(role), "{err}");
    assert!(
        !err.contains("Tr0ub4dor"),
        "the password is never shown: {err}"
    );
    // The right one works, given the database.
    let db = backend.target().config().get_dbname().unwrap().to_owned();
    backend.sql(&format!("ALTER DATABASE \"{db}\" OWNER TO {role}"));
    PgStore::open(&as_user(&backend, role, Some("right"))).unwrap();
}

/// The role `tests/src/postgres.rs` makes log in with a password
/// (`PASSWORD_ROLE` there; this crate cannot depend on the harness).
fn envparity_tests_password_role() -> &'static str {
    "envparity_pw"
}

#[test]
fn an_unreachable_socket_is_a_clear_error_naming_it() {
    let Some(backend) = Postgres::fresh("an_unreachable_socket_is_a_clear_error") else {
        return;
    };
    let db = backend.target().config().get_dbname().unwrap().to_owned();
    let url = format!("postgres://postgres@/{db}?host=/nonexistent/envparity");
    let target = PgTarget::from_url(&url);
    let err = PgStore::check(&target).unwrap_err().to_string();
    assert!(err.contains("host=/nonexistent/envparity"), "{err}");
    assert!(err.contains("connect"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn check_refuses_a_newer_schema_and_a_user_who_cannot_write() {
    let Some(backend) = Postgres::fresh("check_refuses_a_newer_schema_and_a_reader") else {
        return;
    };
    drop(backend.open());
    assert_eq!(
        PgStore::check(backend.target()).unwrap(),
        Some(super::schema::SCHEMA_VERSION)
    );
    // A role that may connect but not create or write tables.
    create_role(&backend, "envparity_reader", "unused");
    let err = PgStore::check(&as_user(&backend, "envparity_reader", None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("envparity_reader"), "{err}");
    backend.mark_schema(7);
    let err = PgStore::check(backend.target()).unwrap_err().to_string();
    assert!(
        err.contains("schema version 7")
            && err.contains(&format!("({})", super::schema::SCHEMA_VERSION)),
        "{err}"
    );
}

/// As `serve` uses it: opened and called on tokio's blocking pool, the
/// last owner dropped in an async task.
#[test]
fn calls_from_the_blocking_pool_work_and_the_store_may_be_dropped_in_a_task() {
    let Some(backend) = Postgres::fresh("calls_from_the_blocking_pool_work") else {
        return;
    };
    let target = backend.target().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store: Arc<dyn Store> =
            tokio::task::spawn_blocking(move || Arc::new(PgStore::open(&target).unwrap()) as _)
                .await
                .unwrap();
        let writer = Arc::clone(&store);
        tokio::task::spawn_blocking(move || {
            writer
                .save_snapshot(&host("h1", 3), &[], &FindingChanges::default())
                .unwrap();
        })
        .await
        .unwrap();
        let reader = Arc::clone(&store);
        let hosts = tokio::task::spawn_blocking(move || reader.load_hosts().unwrap())
            .await
            .unwrap();
        assert_eq!(hosts, vec![host("h1", 3)]);
        drop(store);
    });
    assert_eq!(run_sql(backend.target(), "SELECT COUNT(*) FROM hosts"), 1);
}
