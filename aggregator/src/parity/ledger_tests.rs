use super::*;
use crate::parity::evaluate::tests::{Fleet, LAST_SEEN};
use crate::parity::policy::Waiver;
use crate::parity::{Kind, Scope, State, evaluate};
use envparity_proto::fixtures;
use envparity_proto::v1::{Container, HostSnapshot};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + LAST_SEEN + Duration::from_secs(secs)
}

fn container(service: &str, digest: &str, env: &[(&str, &str)]) -> Container {
    fixtures::container(service)
        .id(service)
        .image(format!("reg/{service}@{digest}"))
        .image_id(format!("id-{digest}"))
        .envs(env.iter().copied())
        .build()
}

/// A host of `env` (the fleet names it) running `containers`.
fn snapshot(env: &str, containers: Vec<Container>) -> HostSnapshot {
    fixtures::snapshot("h", env)
        .kernel("6.1.0")
        .fingerprint_key("k1")
        .containers(containers)
        .build()
}

fn full(fleet: &Fleet) -> Vec<Finding> {
    let envs: Vec<String> = fleet
        .hosts
        .iter()
        .map(|(_, s, _)| s.environment.clone())
        .collect();
    evaluate(
        &fleet.views(),
        &fleet.policy,
        &Scope::all(&fleet.policy, &envs),
    )
}

fn drifting(digest: &str) -> Fleet {
    Fleet::new()
        .host(
            "s1",
            snapshot(
                "staging",
                vec![container(
                    "shop",
                    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    &[],
                )],
            ),
        )
        .host(
            "p1",
            snapshot("production", vec![container("shop", digest, &[])]),
        )
}

#[test]
fn a_finding_opens_keeps_its_first_seen_and_resolves() {
    let mut ledger = Ledger::new();
    let delta = ledger.observe(
        full(&drifting(
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        )),
        Cover::Everything,
        at(10),
    );
    assert_eq!(delta.opened.len(), 1);
    assert_eq!(delta.opened[0].finding.kind, Kind::ImageDigest);
    assert!(delta.resolved.is_empty());

    // Production moves to yet another digest: the same finding (identity has
    // no digest), updated, not reopened.
    let delta = ledger.observe(
        full(&drifting(
            "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
        )),
        Cover::Everything,
        at(20),
    );
    assert!(delta.is_empty(), "{delta:?}");
    let entry = ledger.entries().next().unwrap();
    assert_eq!((entry.first_seen, entry.last_seen), (at(10), at(20)));
    assert_eq!(
        entry.finding.b.as_ref().unwrap().values,
        vec!["sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"]
    );

    let delta = ledger.observe(
        full(&drifting(
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )),
        Cover::Everything,
        at(30),
    );
    assert_eq!(delta.resolved.len(), 1);
    assert_eq!(delta.resolved[0].first_seen, at(10));
    assert_eq!(delta.resolved[0].last_seen, at(20));
    assert!(ledger.is_empty());
}

#[test]
fn a_partial_observation_leaves_what_it_did_not_cover() {
    let mut ledger = Ledger::new();
    ledger.observe(
        full(&drifting(
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        )),
        Cover::Everything,
        at(10),
    );
    // An evaluation of another service only: shop's finding stays open.
    let delta = ledger.observe(
        Vec::new(),
        Cover::Only {
            services: &BTreeSet::from(["cart".to_owned()]),
            host_level: HostLevel::No,
        },
        at(20),
    );
    assert!(delta.is_empty());
    assert_eq!(ledger.len(), 1);
}

#[test]
fn assessing_changes_nothing_until_applied() {
    let mut ledger = Ledger::new();
    ledger.observe(
        full(&drifting(
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        )),
        Cover::Everything,
        at(10),
    );
    let before: Vec<Entry> = ledger.entries().cloned().collect();
    let observation = ledger.assess(Vec::new(), Cover::Everything, at(20));
    assert_eq!(ledger.entries().cloned().collect::<Vec<_>>(), before);
    assert_eq!(observation.keys().count(), 1, "the resolved finding");
    let delta = ledger.apply(observation);
    assert_eq!(delta.resolved.len(), 1);
    assert!(ledger.is_empty());
}

#[test]
fn findings_remembered_from_a_previous_run_keep_their_first_seen() {
    let findings = full(&drifting(
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ));
    let id = findings[0].identity().id();
    let mut ledger = Ledger::remembering([
        (
            id.clone(),
            Seen {
                first_seen: at(1),
                last_seen: at(5),
            },
        ),
        (
            "gone|x||||".to_owned(),
            Seen {
                first_seen: at(2),
                last_seen: at(6),
            },
        ),
    ]);
    let delta = ledger.observe(findings, Cover::Everything, at(100));
    assert!(delta.opened.is_empty(), "already recorded as open");
    assert_eq!(ledger.entries().next().unwrap().first_seen, at(1));
    let forgotten: Vec<String> = ledger
        .forget_remembered()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(forgotten, vec!["gone|x||||".to_owned()]);
}

fn waiver(expires: u64) -> Waiver {
    Waiver {
        kind: Kind::ImageDigest,
        service: "shop".into(),
        key: String::new(),
        host: String::new(),
        environments: ["production".to_owned(), "staging".to_owned()].into(),
        reason: "canary".into(),
        owner: "team-shop".into(),
        expires: at(expires),
    }
}

#[test]
fn grace_keeps_a_new_finding_pending_until_it_has_persisted() {
    let f = full(&drifting(
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ))
    .remove(0);
    let policy = Policy::default();
    let grace = Duration::from_secs(60);
    let pending = judge(f.clone(), Some((at(0), at(30))), &policy, grace, at(30));
    assert_eq!(pending.status.state, State::Pending);
    assert!(!pending.counts());
    let active = judge(f, Some((at(0), at(60))), &policy, grace, at(60));
    assert_eq!(active.status.state, State::Active);
    assert_eq!(active.status.first_seen, Some(at(0)));
}

#[test]
fn a_waiver_applies_until_it_expires_and_then_says_so() {
    let f = full(&drifting(
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ))
    .remove(0);
    let mut policy = Policy::default();
    policy.waivers.push(waiver(100));
    let waived = judge(f.clone(), None, &policy, Duration::ZERO, at(99));
    assert_eq!(waived.status.state, State::Waived);
    let note = waived.status.waiver.as_ref().unwrap();
    assert_eq!((note.owner.as_str(), note.expired), ("team-shop", false));

    let expired = judge(f.clone(), None, &policy, Duration::ZERO, at(100));
    assert_eq!(expired.status.state, State::Active);
    assert!(expired.status.waiver.as_ref().unwrap().expired);

    // A waiver for another pair or service does not match.
    let mut other = waiver(1_000);
    other.environments = ["dev".to_owned(), "staging".to_owned()].into();
    let policy = Policy {
        waivers: vec![other],
        ..Policy::default()
    };
    let f = judge(f, None, &policy, Duration::ZERO, at(1));
    assert_eq!(f.status.state, State::Active);
    assert!(f.status.waiver.is_none());
}

proptest! {
    /// What `/metrics` counts is what `judge` says: the same state, over
    /// waivers that hold, have expired or do not match, and any grace.
    #[test]
    fn judged_state_is_the_state_judge_gives(
        expires in 0u64..200,
        matching in any::<bool>(),
        first in 0u64..200,
        after in 0u64..200,
        grace in 0u64..120,
    ) {
        let f = full(&drifting(
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        ))
        .remove(0);
        let mut w = waiver(expires);
        if !matching {
            w.environments = ["dev".to_owned(), "staging".to_owned()].into();
        }
        let policy = Policy { waivers: vec![w], ..Policy::default() };
        let (grace, now) = (Duration::from_secs(grace), at(first + after));
        let judged = judge(f.clone(), Some((at(first), now)), &policy, grace, now);
        prop_assert_eq!(judged_state(&f, at(first), &policy, grace, now), judged.status.state);
    }
}

// ---- incremental == full ----

/// A step: host `host` now runs these (service, digest, env value).
type Step = (usize, Vec<(usize, usize, usize)>);

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0..4usize,
            prop::collection::vec((0..3usize, 0..2usize, 0..2usize), 0..3),
        ),
        1..12,
    )
}

const HOSTS: [(&str, &str); 4] = [
    ("d1", "dev"),
    ("s1", "staging"),
    ("p1", "production"),
    ("p2", "production"),
];

fn host_snapshot(env: &str, containers: &[(usize, usize, usize)]) -> HostSnapshot {
    let services = ["shop", "cart", "auth"];
    let mut seen = BTreeSet::new();
    let cs = containers
        .iter()
        .filter(|(s, _, _)| seen.insert(*s))
        .map(|(s, d, v)| {
            container(
                services[*s],
                &format!("sha256:{d:064x}"),
                &[("A", &format!("f{v}"))],
            )
        })
        .collect();
    snapshot(env, cs)
}

proptest! {
    #[test]
    fn incremental_observation_matches_a_full_one(steps in arb_steps()) {
        // Start with every host present (so the set of environments is fixed,
        // as in the server's incremental path), then apply the steps.
        let mut snapshots: Vec<HostSnapshot> = HOSTS.iter().map(|(_, env)| host_snapshot(env, &[])).collect();
        let build = |snaps: &[HostSnapshot]| {
            HOSTS.iter().zip(snaps).fold(Fleet::new(), |f, ((id, _), s)| f.host(id, s.clone()))
        };
        let mut incremental = Ledger::new();
        incremental.observe(full(&build(&snapshots)), Cover::Everything, at(0));
        for (i, (host, containers)) in steps.iter().enumerate() {
            let before: BTreeSet<String> = snapshots[*host]
                .containers
                .iter()
                .filter_map(|c| c.service.as_ref().map(|s| s.name.clone()))
                .collect();
            snapshots[*host] = host_snapshot(HOSTS[*host].1, containers);
            let after: BTreeSet<String> = snapshots[*host]
                .containers
                .iter()
                .filter_map(|c| c.service.as_ref().map(|s| s.name.clone()))
                .collect();
            let touched: BTreeSet<String> = before.union(&after).cloned().collect();
            let fleet = build(&snapshots);
            let envs: Vec<String> = HOSTS.iter().map(|(_, e)| e.to_string()).collect();
            let scope = Scope::all(&fleet.policy, &envs).with_services(touched.clone());
            let partial = evaluate(&fleet.views(), &fleet.policy, &scope);
            let now = at(i as u64 + 1);
            incremental.observe(partial, Cover::Only { services: &touched, host_level: HostLevel::All }, now);

            let mut reference = Ledger::new();
            reference.observe(full(&fleet), Cover::Everything, now);
            let got: Vec<&Finding> = incremental.entries().map(|e| &e.finding).collect();
            let want: Vec<&Finding> = reference.entries().map(|e| &e.finding).collect();
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn replicas_mid_rollout_stay_pending_within_the_grace_period() {
    // Two production replicas on different digests: a rolling update.
    let fleet = Fleet::new()
        .host(
            "p1",
            snapshot(
                "production",
                vec![container(
                    "shop",
                    "sha256:6f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c",
                    &[],
                )],
            ),
        )
        .host(
            "p2",
            snapshot(
                "production",
                vec![container(
                    "shop",
                    "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
                    &[],
                )],
            ),
        );
    let mut ledger = Ledger::new();
    ledger.observe(full(&fleet), Cover::Everything, at(0));
    let entry = ledger.entries().next().expect("replica_drift").clone();
    assert_eq!(entry.finding.kind, Kind::ReplicaDrift);
    let policy = Policy {
        grace: Duration::from_secs(120),
        ..Policy::default()
    };
    let seen = Some((entry.first_seen, at(90)));
    let mid = judge(entry.finding.clone(), seen, &policy, policy.grace, at(90));
    assert_eq!(
        mid.status.state,
        State::Pending,
        "a rollout under way does not fire"
    );
    // The rollout finishes: the finding resolves without ever counting.
    let done = Fleet::new()
        .host(
            "p1",
            snapshot(
                "production",
                vec![container(
                    "shop",
                    "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
                    &[],
                )],
            ),
        )
        .host(
            "p2",
            snapshot(
                "production",
                vec![container(
                    "shop",
                    "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
                    &[],
                )],
            ),
        );
    let delta = ledger.observe(full(&done), Cover::Everything, at(100));
    assert_eq!(delta.resolved.len(), 1);
    assert!(ledger.is_empty());
    // Stuck past the grace period, it counts.
    let stuck = judge(
        entry.finding.clone(),
        Some((at(0), at(121))),
        &policy,
        policy.grace,
        at(121),
    );
    assert_eq!(stuck.status.state, State::Active);
}

fn arb_key() -> impl Strategy<Value = FindingKey> {
    let names = || prop::sample::select(vec!["", "a", "a ", "ab", "b", "shop/web"]);
    (
        prop::sample::select(Kind::ALL.to_vec()),
        names(),
        prop::collection::vec(prop::sample::select(vec!["dev", "production"]), 0..3),
        names(),
        names(),
    )
        .prop_map(|(kind, service, environments, key, host)| FindingKey {
            kind,
            service: service.to_owned(),
            environments: environments.into_iter().map(str::to_owned).collect(),
            key: key.to_owned(),
            host: host.to_owned(),
        })
}

proptest! {
    /// Reading the covered findings as ranges of keys selects exactly what
    /// testing every key would, in the same order.
    #[test]
    fn cover_reads_exactly_the_covered_keys(
        keys in prop::collection::btree_set(arb_key(), 0..60),
        services in prop::collection::btree_set(
            prop::sample::select(vec!["", "a", "ab", "b", "c", "shop/web"]).prop_map(str::to_owned),
            0..4,
        ),
        host_level in 0..4u8,
        stale_of in prop::collection::btree_set(
            prop::sample::select(vec!["", "a", "ab", "b"]).prop_map(str::to_owned),
            0..3,
        ),
    ) {
        let open: BTreeMap<FindingKey, ()> = keys.into_iter().map(|k| (k, ())).collect();
        let host_level = match host_level {
            0 => HostLevel::No,
            1 => HostLevel::All,
            2 => HostLevel::StaleOf(&stale_of),
            _ => HostLevel::OnlyStaleOf(&stale_of),
        };
        for cover in [Cover::Everything, Cover::Only { services: &services, host_level }] {
            let want: Vec<&FindingKey> = open.keys().filter(|k| cover.covers(k)).collect();
            let got: Vec<&FindingKey> = cover.open_in(&open).into_iter().map(|(k, _)| k).collect();
            prop_assert_eq!(got, want);
        }
    }
}
