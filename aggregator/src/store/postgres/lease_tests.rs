//! Tests of leases on the tests' PostgreSQL server: who wins a claim, that
//! expiry is the database's clock, that a stale owner's writes fail, and
//! that a takeover waits for the writes that passed the fence.

use std::time::{Duration, Instant, SystemTime};

use envparity_proto::v1::EngineState;

use super::{Claim, PgStore, Term};
use crate::store::contract_tests::{Backend, Postgres};
use crate::store::{FindingChanges, FindingsToCome, HostWrite, Reported, Store, StoreError};

const LONG: Duration = Duration::from_secs(60);

fn won(claim: Claim) -> (Term, Option<(String, i64)>) {
    match claim {
        Claim::Won { term, previous } => (term, previous),
        Claim::Held { owner, epoch, .. } => panic!("held by {owner} in epoch {epoch}"),
    }
}

/// A write every replica makes: a heartbeat of a host never stored (it
/// changes no row, but runs the whole write transaction).
fn write(store: &PgStore) -> Result<(), StoreError> {
    store.touch("h1", SystemTime::now(), EngineState::Ok)
}

#[test]
fn a_lease_is_won_once_held_against_others_and_changes_hands_with_a_new_epoch() {
    let Some(backend) = Postgres::fresh("a_lease_is_won_once_held_against_others") else {
        return;
    };
    let store = backend.open();
    let (a, previous) = won(store.claim("writer", "a", "a:7600", LONG).unwrap());
    assert_eq!((a.epoch, previous), (1, None));
    match store.claim("writer", "b", "b:7600", LONG).unwrap() {
        Claim::Held {
            owner,
            address,
            epoch,
            expires_in,
        } => {
            assert_eq!(
                (owner.as_str(), address.as_str(), epoch),
                ("a", "a:7600", 1)
            );
            assert!(expires_in > Duration::from_secs(50), "{expires_in:?}");
        }
        won => panic!("b won a lease a holds: {won:?}"),
    }
    // Claimed again by its owner while live: kept, same epoch.
    assert_eq!(
        won(store.claim("writer", "a", "a:7600", LONG).unwrap()).0,
        a
    );
    assert!(store.renew(&a, LONG).unwrap());
    store.release(&a).unwrap();
    assert!(!store.renew(&a, LONG).unwrap(), "a released term renewed");
    let (b, previous) = won(store.claim("writer", "b", "b:7600", LONG).unwrap());
    assert_eq!(b.epoch, 2);
    assert_eq!(previous, Some(("a".to_owned(), 1)));
    // Another lease is another row.
    assert_eq!(
        won(store.claim("other", "a", "a:7600", LONG).unwrap())
            .0
            .epoch,
        1
    );
}

#[test]
fn a_lease_expires_by_the_database_clock_and_its_stale_owner_cannot_write() {
    let Some(backend) = Postgres::fresh("a_lease_expires_and_its_stale_owner") else {
        return;
    };
    let (old, new) = (backend.open(), backend.open());
    let (a, _) = won(old
        .claim("writer", "a", "a:7600", Duration::from_millis(300))
        .unwrap());
    old.hold(Some(a.clone()));
    write(&old).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // Expired but not taken: the owner's writes already fail.
    let err = write(&old).unwrap_err().to_string();
    assert!(
        err.contains("no longer holds the writer lease of epoch 1"),
        "{err}"
    );
    assert!(err.contains("it expired"), "{err}");
    assert!(!old.renew(&a, LONG).unwrap(), "an expired term renewed");
    let (b, previous) = won(new.claim("writer", "b", "b:7600", LONG).unwrap());
    assert_eq!((b.epoch, previous), (2, Some(("a".to_owned(), 1))));
    new.hold(Some(b));
    write(&new).unwrap();
    // Every kind of write of the stale owner fails, naming the new one.
    let errors = [
        write(&old).unwrap_err(),
        old.save_findings(&finding()).unwrap_err(),
        old.forget_host("h1").unwrap_err(),
        old.save_alerts(&[], &[], 0).unwrap_err(),
        old.outbox_done(&[1]).unwrap_err(),
        old.save_snapshot(
            &crate::store::contract_tests::host("h1", 1),
            &[],
            &finding(),
        )
        .unwrap_err(),
    ];
    for err in errors {
        let err = err.to_string();
        assert!(
            err.contains("replica \"b\" holds it in epoch 2")
                && err.contains("nothing was written"),
            "{err}"
        );
    }
    assert_eq!(backend.sql("SELECT COUNT(*) FROM findings"), 0);
    assert_eq!(backend.sql("SELECT COUNT(*) FROM hosts"), 0);
    // Without a term (one-shot commands) the store writes as before.
    old.hold(None);
    old.save_findings(&finding()).unwrap();
    assert_eq!(backend.sql("SELECT COUNT(*) FROM findings"), 1);
}

fn finding() -> FindingChanges {
    FindingChanges {
        opened: vec![crate::store::FindingRecord {
            id: "f1".into(),
            kind: "image_digest".into(),
            severity: "critical".into(),
            service: "api".into(),
            environments: vec!["prod".into(), "staging".into()],
            key: String::new(),
            host: String::new(),
            summary: "differs".into(),
            first_seen_ms: 1,
            last_seen_ms: 1,
            resolved_ms: None,
        }],
        resolved: vec![],
    }
}

#[test]
fn a_takeover_waits_for_the_write_that_passed_the_fence_and_then_sees_it() {
    let Some(backend) = Postgres::fresh("a_takeover_waits_for_the_write") else {
        return;
    };
    let (old, new) = (backend.open(), backend.open());
    let (a, _) = won(old
        .claim("writer", "a", "a:7600", Duration::from_millis(500))
        .unwrap());
    old.hold(Some(a));
    let host = crate::store::contract_tests::host("h1", 1);
    let (send, findings) = FindingsToCome::later();
    std::thread::scope(|s| {
        // The write passes the fence at once, then waits for its findings
        // past the term's end.
        let writing = s.spawn(|| {
            old.save_reports(
                &[Reported {
                    host: &HostWrite::whole(&host),
                    changes: &[],
                }],
                findings,
            )
        });
        std::thread::sleep(Duration::from_millis(700));
        let claiming = s.spawn(|| {
            let started = Instant::now();
            let claim = new.claim("writer", "b", "b:7600", LONG).unwrap();
            (claim, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(500));
        assert!(!claiming.is_finished(), "the takeover did not wait");
        send.send(finding());
        writing.join().unwrap().unwrap();
        let (claim, waited) = claiming.join().unwrap();
        assert_eq!(won(claim).0.epoch, 2);
        assert!(waited >= Duration::from_millis(400), "{waited:?}");
    });
    // What the new owner loads holds the write it waited for.
    assert_eq!(new.load_hosts().unwrap().len(), 1);
    assert_eq!(new.open_findings().unwrap().len(), 1);
}
