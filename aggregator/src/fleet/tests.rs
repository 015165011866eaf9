//! The fleet's tests, and the fixtures other modules' tests use.

use std::collections::BTreeSet;

use envparity_proto::fixtures;
use envparity_proto::hash::HashForm;
use envparity_proto::v1::{
    AgentInfo, Container, EngineState, HeartbeatRequest, HostFacts, HostSnapshot,
};

use super::*;
use crate::parity::{self, Finding, FindingKey, Scope};
use crate::store::{SqliteStore, StoredHost};

/// A container of `service` on image number `image`, with one explicit env
/// variable whose value is number `env`.
pub(crate) fn container(service: &str, image: u64, env: u64) -> Container {
    fixtures::container(service)
        .id(format!("{service}-{image}"))
        .image(format!("reg/{service}:{image}"))
        .image_id(format!("sha256:{image:064x}"))
        .env("MODE", format!("fp{env}"))
        .build()
}

/// A report of one of 9 hosts, the next in its sequence: up to 3 of 5
/// services with one of 3 images and 2 env values, mostly in the host's
/// own environment (sometimes it moves), sometimes with its engine
/// unreachable, one of 2 kernels, sometimes under another fleet key.
pub(crate) fn random_report(
    rng: &mut fastrand::Rng,
    sequence: &mut BTreeMap<String, u64>,
) -> HostSnapshot {
    let envs = ["dev", "staging", "production"];
    let host = format!("h{}", rng.u64(0..9));
    let seq = sequence.entry(host.clone()).or_insert(0u64);
    *seq += 1;
    // Ids unique on the host, as an engine gives them.
    let containers = (0..rng.usize(0..4))
        .map(|i| {
            let mut c = container(&format!("s{}", rng.u64(0..5)), rng.u64(0..3), rng.u64(0..2));
            c.id = format!("{}-{i}", c.id);
            c
        })
        .collect();
    let mut s = report(
        &host,
        envs[(rng.usize(0..12) + host.len()) % 3],
        *seq,
        containers,
    );
    s.host = Some(HostFacts {
        kernel_version: format!("6.{}.0", rng.u64(0..2)),
        ..Default::default()
    });
    s.engine_state = if rng.u8(0..10) == 0 { 2 } else { 1 };
    if rng.u8(0..8) == 0 {
        // The host's agent moved to another fleet key.
        s.fingerprint_key_id = "k2".into();
    }
    if rng.u8(0..5) == 0 {
        // A one-off `docker run`: unmanaged, under a name the engine made
        // up (the same name on several hosts now and then; now and then
        // the name of a service, which must not make that service drift).
        let name = ["naughty_wilson", "sad_wu", "s1"][rng.usize(0..3)];
        s.containers.push(
            fixtures::container(name)
                .image_id(format!("sha256:{}", "cd".repeat(32)))
                .unmanaged()
                .build(),
        );
    }
    random_config_files(rng, &mut s);
    s.content_hash = envparity_proto::hash::content_hash(&s);
    s
}

/// Configuration files for the containers of `s` (issue 20): none at all
/// now and then (an agent that does not read them), else per container one
/// or two files whose keys and values vary a little.
fn random_config_files(rng: &mut fastrand::Rng, s: &mut HostSnapshot) {
    use envparity_proto::v1::{ConfigFile, ConfigFileState, ConfigKey, ContainerConfigFiles};
    if rng.u8(0..4) == 0 {
        return;
    }
    let ids: BTreeSet<String> = s.containers.iter().map(|c| c.id.clone()).collect();
    for id in ids {
        let mut files = vec![ConfigFile {
            path: "/etc/app/app.yaml".into(),
            format: "yaml".into(),
            state: ConfigFileState::Read as i32,
            keys: (0..rng.usize(1..3))
                .map(|k| ConfigKey {
                    path: format!("key{k}"),
                    fingerprint: format!("cfp{}", rng.u64(0..2)),
                    value: None,
                })
                .collect(),
            fingerprint: "whole".into(),
            ..Default::default()
        }];
        if rng.bool() {
            files.push(ConfigFile {
                path: "/etc/app/raw.conf".into(),
                format: "unknown".into(),
                state: ConfigFileState::Read as i32,
                fingerprint: format!("raw{}", rng.u64(0..2)),
                ..Default::default()
            });
        }
        s.config_files.push(ContainerConfigFiles {
            container_id: id,
            files,
        });
    }
}

/// Report number `sequence` of `host` in `environment`, running
/// `containers`, its engine reachable.
pub(crate) fn report(
    host: &str,
    environment: &str,
    sequence: u64,
    containers: Vec<Container>,
) -> HostSnapshot {
    fixtures::snapshot(host, environment)
        .agent_version("t")
        .boot_id("b")
        .sequence(sequence)
        .host_facts(HostFacts::default())
        .engine_state(EngineState::Ok)
        .fingerprint_key("k")
        .containers(containers)
        .build()
}

/// A fleet with no hosts over a fresh SQLite store (kept alive by the
/// returned directory), and the time it was loaded at.
pub(crate) fn empty_fleet() -> (tempfile::TempDir, Arc<Fleet>, SystemTime) {
    empty_fleet_stale_after(Duration::from_secs(3600))
}

/// [`empty_fleet`] with hosts going stale after `stale_after`.
pub(super) fn empty_fleet_stale_after(
    stale_after: Duration,
) -> (tempfile::TempDir, Arc<Fleet>, SystemTime) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let fleet = Fleet::load(store, stale_after, LoadedPolicy::defaults(t0), t0).unwrap();
    (dir, Arc::new(fleet), t0)
}

/// The open findings, and what a full evaluation of the fleet finds.
fn held_and_full(fleet: &Fleet, now: SystemTime) -> (BTreeSet<FindingKey>, BTreeSet<FindingKey>) {
    let view = fleet.view(now);
    let held = view.open.iter().map(|e| e.finding.identity()).collect();
    let views = view.host_views();
    let environments = view.environments();
    let full = parity::evaluate(
        &views,
        view.policy(),
        &Scope::all(view.policy(), &environments),
    )
    .iter()
    .map(Finding::identity)
    .collect();
    (held, full)
}

/// A random fleet changing one report at a time: after every report the
/// ledger, kept by incremental re-evaluation (only the services the
/// report touches, host-level kinds only when the host's facts or state
/// changed), holds exactly what a full evaluation finds.
#[tokio::test]
async fn incremental_ingest_matches_a_full_evaluation() {
    let (_dir, fleet, t0) = empty_fleet();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut sequence = BTreeMap::new();
    for step in 0..150u64 {
        let s = random_report(&mut rng, &mut sequence);
        let now = t0 + Duration::from_secs(step);
        fleet.push(s, now).await.unwrap();

        let (held, full) = held_and_full(&fleet, now);
        assert_eq!(held, full, "after step {step}");
    }
}

/// Small changes, as agents send them: one container's image or env value,
/// a rename, a container more or less, another fleet key, another kernel,
/// a new host joining (with a kernel its environment may or may not run
/// already, while a kernel finding may be open), or nothing new. After each, the ledger, re-evaluated for the services
/// the change touched only, holds exactly what a full evaluation finds,
/// sides and summaries included.
#[tokio::test]
async fn small_changes_re_evaluate_what_they_touch_and_no_less() {
    let (_dir, fleet, t0) = empty_fleet();
    let mut rng = fastrand::Rng::with_seed(17);
    let environments = ["staging", "production"];
    let mut hosts: Vec<HostSnapshot> = (0..6)
        .map(|i| {
            let containers = (0..4).map(|s| container(&format!("s{s}"), 1, 0)).collect();
            report(&format!("h{i}"), environments[i % 2], 1, containers)
        })
        .collect();
    for h in &hosts {
        fleet.push(h.clone(), t0).await.unwrap();
    }
    let comparable = |mut f: Finding| {
        f.status = parity::Status::default();
        f
    };
    let kernels = ["", "6.1.0", "6.2.0"];
    for step in 1..300u64 {
        let now = t0 + Duration::from_secs(step);
        let joining = hosts.len() < 14 && rng.u8(0..10) == 0;
        if joining {
            let containers = (0..4).map(|s| container(&format!("s{s}"), 1, 0)).collect();
            let mut h = report(
                &format!("h{}", hosts.len()),
                environments[rng.usize(0..2)],
                1,
                containers,
            );
            h.host.get_or_insert_default().kernel_version = kernels[rng.usize(0..3)].into();
            hosts.push(h);
        }
        let which = if joining {
            hosts.len() - 1
        } else {
            rng.usize(0..hosts.len())
        };
        let s = &mut hosts[which];
        s.sequence += u64::from(!joining);
        let n = s.containers.len();
        let pick = rng.usize(0..n.max(1));
        let change = if joining { 7 } else { rng.u8(0..8) };
        match (change, s.containers.get_mut(pick)) {
            (0, Some(c)) => {
                c.image.as_mut().unwrap().image_id = format!("sha256:{:064x}", rng.u64(0..3));
            }
            (1, Some(c)) => c.explicit_env[0].fingerprint = format!("fp{}", rng.u64(0..2)),
            (2, Some(c)) => c.name = format!("renamed-{}", rng.u8(0..2)),
            (3, Some(_)) => {
                s.containers.remove(pick);
            }
            (4, _) => {
                let mut c = container(&format!("s{}", rng.u64(0..5)), rng.u64(0..3), rng.u64(0..2));
                c.id = format!("{}-{step}", c.id);
                s.containers.push(c);
            }
            (5, _) => {
                s.fingerprint_key_id = if s.fingerprint_key_id == "k" {
                    "k2"
                } else {
                    "k"
                }
                .into();
            }
            (6, _) => {
                let kernel = &mut s.host.get_or_insert_default().kernel_version;
                *kernel = if kernel == "6.1.0" { "6.2.0" } else { "6.1.0" }.into();
            }
            _ => {}
        }
        s.content_hash = envparity_proto::hash::content_hash(s);
        fleet.push(s.clone(), now).await.unwrap();

        let view = fleet.view(now);
        let held: BTreeSet<Finding> = view
            .open
            .iter()
            .map(|e| comparable(e.finding.clone()))
            .collect();
        let views = view.host_views();
        let environments = view.environments();
        let full: BTreeSet<Finding> = parity::evaluate(
            &views,
            view.policy(),
            &Scope::all(view.policy(), &environments),
        )
        .into_iter()
        .map(comparable)
        .collect();
        assert_eq!(held, full, "after step {step}");
    }
}

/// What `/metrics` counts without copying the fleet ([`Fleet::census`]) is
/// what the copying view shows: every host's shown state, every open
/// finding's judged state, over a random fleet with a grace period, refused
/// hosts, and hosts going stale.
#[tokio::test]
async fn the_census_counts_what_the_view_shows() {
    type Class = (
        parity::Kind,
        parity::Severity,
        parity::State,
        String,
        Option<String>,
    );
    let (_dir, fleet, t0) = empty_fleet_stale_after(Duration::from_secs(30));
    let mut policy = LoadedPolicy::defaults(t0);
    policy.policy.grace = Duration::from_secs(20);
    fleet.set_policy(policy, t0).await.unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut sequence = BTreeMap::new();
    let (mut pending, mut stale, mut refused) = (0, 0, 0);
    for step in 0..150u64 {
        let now = t0 + Duration::from_secs(step);
        let s = random_report(&mut rng, &mut sequence);
        if rng.u8(0..8) == 0 {
            fleet.refused(&s.host_id, "a test refusal", now);
        } else {
            fleet.push(s, now).await.unwrap();
        }
        let later = now + Duration::from_secs(rng.u64(0..45));
        let view = fleet.view(later);
        let mut want_hosts: BTreeMap<(String, HostState), u32> = BTreeMap::new();
        for (h, state) in &view.hosts {
            *want_hosts
                .entry((h.snapshot.environment.clone(), *state))
                .or_default() += 1;
        }
        let mut want_findings: BTreeMap<Class, u32> = BTreeMap::new();
        for f in view.findings(None) {
            let env_b = f.b.as_ref().map(|b| b.environment.clone());
            let class = (f.kind, f.severity, f.status.state, f.a.environment, env_b);
            *want_findings.entry(class).or_default() += 1;
        }
        let mut got_hosts: BTreeMap<(String, HostState), u32> = BTreeMap::new();
        let mut got_findings: BTreeMap<Class, u32> = BTreeMap::new();
        fleet.census(
            later,
            |environment, state| {
                *got_hosts
                    .entry((environment.to_owned(), state))
                    .or_default() += 1
            },
            |f, state| {
                let env_b = f.b.as_ref().map(|b| b.environment.clone());
                let class = (f.kind, f.severity, state, f.a.environment.clone(), env_b);
                *got_findings.entry(class).or_default() += 1;
            },
        );
        assert_eq!(got_hosts, want_hosts, "hosts after step {step}");
        assert_eq!(got_findings, want_findings, "findings after step {step}");
        pending += want_findings
            .keys()
            .filter(|c| c.2 == parity::State::Pending)
            .count();
        stale += want_hosts
            .keys()
            .filter(|k| k.1 == HostState::Stale)
            .count();
        refused += want_hosts
            .keys()
            .filter(|k| k.1 == HostState::Refused)
            .count();
    }
    // The run went through what it is meant to compare.
    assert!(
        pending > 0 && stale > 0 && refused > 0,
        "{pending} {stale} {refused}"
    );
}

/// Hosts going stale while others report: a report re-evaluates the
/// staleness of its own host only (the others' depends on time alone,
/// which the tick re-evaluates), so its own stale finding resolves at
/// once, and after the tick that follows the ledger holds exactly what
/// a full evaluation finds.
#[tokio::test]
async fn a_report_judges_its_own_staleness_and_the_tick_everyone_elses() {
    let (_dir, fleet, t0) = empty_fleet_stale_after(Duration::from_secs(3));
    let mut rng = fastrand::Rng::with_seed(11);
    let mut sequence = BTreeMap::new();
    let mut now = t0;
    let mut stale_seen = 0;
    for step in 0..150u64 {
        let s = random_report(&mut rng, &mut sequence);
        let host = s.host_id.clone();
        now += Duration::from_millis(rng.u64(0..2500));
        fleet.push(s, now).await.unwrap();
        let (held, _) = held_and_full(&fleet, now);
        assert!(
            !held
                .iter()
                .any(|k| k.kind == parity::Kind::StaleHost && k.host == host),
            "step {step}: {host} reported but is still held stale"
        );

        fleet.tick(now).await.unwrap();
        let (held, full) = held_and_full(&fleet, now);
        stale_seen += held
            .iter()
            .filter(|k| k.kind == parity::Kind::StaleHost)
            .count();
        assert_eq!(held, full, "after step {step}");
    }
    assert!(
        stale_seen > 0,
        "no host ever went stale: the test tests nothing"
    );
}

/// The tick re-evaluates only when a host's state moved since its last
/// pass (stale, fresh again, engine unreachable); otherwise it leaves the
/// ledger as it is, which is then what a full evaluation finds.
#[tokio::test]
async fn the_tick_re_evaluates_only_when_a_host_state_moved() {
    let (_dir, fleet, t0) = empty_fleet_stale_after(Duration::from_secs(3));
    let s = one_host(&fleet, t0).await;
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let stale_held = |now| {
        let (held, full) = held_and_full(&fleet, now);
        assert_eq!(held, full, "the ledger at {now:?}");
        held.iter().any(|k| k.kind == parity::Kind::StaleHost)
    };
    assert!(
        fleet.tick(at(500)).await.unwrap(),
        "the first tick evaluates"
    );
    assert!(!fleet.tick(at(1_000)).await.unwrap(), "nothing moved");
    assert!(!stale_held(at(1_000)));
    assert!(
        fleet.tick(at(4_000)).await.unwrap(),
        "the host turned stale"
    );
    assert!(stale_held(at(4_000)));
    assert!(!fleet.tick(at(5_000)).await.unwrap(), "still stale");
    assert!(stale_held(at(5_000)));
    fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(5_500))
        .await
        .unwrap();
    assert!(fleet.tick(at(6_000)).await.unwrap(), "fresh again");
    assert!(!stale_held(at(6_000)));
    assert!(!fleet.tick(at(6_500)).await.unwrap());
    fleet
        .heartbeat(&beat(&s, EngineState::Unreachable), at(7_000))
        .await
        .unwrap();
    assert!(
        fleet.tick(at(7_500)).await.unwrap(),
        "its engine went unreachable"
    );
    assert!(!fleet.tick(at(8_000)).await.unwrap());
}

/// The change a report makes is computed against the current state and
/// applied only once the store has it: when the store fails, queries
/// see the fleet and its findings as they were.
#[tokio::test]
async fn a_report_the_store_refuses_changes_nothing_in_memory() {
    let (dir, fleet, t0) = empty_fleet();
    let report = |host: &str, environment: &str, image: u64, sequence: u64| {
        let mut s = HostSnapshot {
            host_id: host.into(),
            environment: environment.into(),
            agent: Some(AgentInfo {
                version: "t".into(),
                boot_id: "b".into(),
            }),
            sequence,
            engine_state: 1,
            containers: vec![container("shop", image, 0)],
            fingerprint_key_id: "k".into(),
            ..Default::default()
        };
        s.content_hash = envparity_proto::hash::content_hash(&s);
        s
    };
    fleet.push(report("s1", "staging", 1, 1), t0).await.unwrap();
    fleet
        .push(report("p1", "production", 1, 1), t0)
        .await
        .unwrap();
    let before = fleet.view(t0);

    let db = rusqlite::Connection::open(dir.path().join("envparity.db")).unwrap();
    db.execute_batch("DROP TABLE changes").unwrap();
    // A new image (a finding would open) and a new environment.
    assert!(
        fleet
            .push(report("p1", "production", 2, 2), t0)
            .await
            .is_err()
    );
    assert!(fleet.push(report("d1", "dev", 1, 1), t0).await.is_err());

    let after = fleet.view(t0);
    let hosts = |v: &FleetView| -> Vec<(String, String)> {
        v.hosts
            .iter()
            .map(|(h, _)| (h.snapshot.host_id.clone(), h.snapshot.content_hash.clone()))
            .collect()
    };
    assert_eq!(hosts(&after), hosts(&before));
    assert_eq!(after.open, before.open);
    assert_eq!(after.environments(), ["staging", "production"]);
}

/// One host `h1` in staging with its engine answering, reported at `t0`.
/// A forgotten host leaves memory and the store, and the findings it
/// took part in resolve, in memory and in the store.
#[tokio::test]
async fn a_forgotten_host_leaves_and_its_findings_resolve() {
    let (dir, fleet, t0) = empty_fleet();
    let report = |host: &str, environment: &str, image: u64| {
        let mut s = HostSnapshot {
            host_id: host.into(),
            environment: environment.into(),
            agent: Some(AgentInfo {
                version: "t".into(),
                boot_id: "b".into(),
            }),
            sequence: 1,
            engine_state: 1,
            containers: vec![container("shop", image, 0)],
            fingerprint_key_id: "k".into(),
            ..Default::default()
        };
        s.content_hash = envparity_proto::hash::content_hash(&s);
        s
    };
    fleet.push(report("s1", "staging", 1), t0).await.unwrap();
    fleet.push(report("p1", "production", 2), t0).await.unwrap();
    let digest = |fleet: &Fleet| {
        fleet
            .view(t0)
            .open
            .iter()
            .any(|e| e.finding.kind == parity::Kind::ImageDigest)
    };
    assert!(digest(&fleet), "two images: a finding");

    let forgotten = fleet.forget("p1", t0).await.unwrap().expect("known");
    assert_eq!(forgotten.snapshot.environment, "production");
    assert!(fleet.forget("p1", t0).await.unwrap().is_none());
    assert!(!fleet.knows("p1"));
    assert!(!digest(&fleet), "the finding resolved");
    let reading = fleet.reading(t0);
    assert_eq!(reading.environments(), ["staging"]);
    drop(reading);
    drop(fleet);
    // Durable: a restart finds neither the host nor the finding open.
    let store = crate::store::SqliteStore::open(dir.path()).unwrap();
    let hosts: Vec<String> = store
        .load_hosts()
        .unwrap()
        .iter()
        .map(|h| h.snapshot.host_id.clone())
        .collect();
    assert_eq!(hosts, ["s1"]);
    assert!(
        store
            .open_findings()
            .unwrap()
            .iter()
            .all(|f| f.kind != "image_digest")
    );
}

/// A known host whose report the edge refused as invalid is shown
/// refused, with why, until one of its reports is stored; an unknown
/// host's refusal is not held. (The e2e suite checks that the gRPC edge
/// notes an invalid report here: `limits.rs`.)
#[tokio::test]
async fn a_refused_report_shows_its_host_refused_until_one_is_stored() {
    let (_dir, fleet, t0) = empty_fleet();
    let s = one_host(&fleet, t0).await;
    fleet.refused("h1", "HostSnapshot.content_hash is not a hash", t0);
    let view = fleet.view(t0);
    assert_eq!(view.hosts[0].1, HostState::Refused);
    let refusal = &view.refusals["h1"];
    assert!(refusal.reason.contains("content_hash"), "{refusal:?}");
    assert_eq!(refusal.at, t0);
    assert!(fleet.reading(t0).not_current.contains("h1"));

    fleet.refused("h2", "HostSnapshot.content_hash is not a hash", t0);
    assert!(!fleet.view(t0).refusals.contains_key("h2"));

    let mut good = s;
    good.sequence = 3;
    good.containers[0].name = "shop-2".into();
    good.content_hash = envparity_proto::hash::content_hash(&good);
    fleet.push(good, t0).await.unwrap();
    let view = fleet.view(t0);
    assert_eq!(view.hosts[0].1, HostState::Fresh);
    assert!(view.refusals.is_empty());
}

async fn one_host(fleet: &Arc<Fleet>, t0: SystemTime) -> HostSnapshot {
    let mut s = HostSnapshot {
        host_id: "h1".into(),
        environment: "staging".into(),
        agent: Some(AgentInfo {
            version: "t".into(),
            boot_id: "b".into(),
        }),
        sequence: 1,
        engine_state: EngineState::Ok as i32,
        containers: vec![container("shop", 1, 0)],
        fingerprint_key_id: "k".into(),
        ..Default::default()
    };
    s.content_hash = envparity_proto::hash::content_hash(&s);
    fleet.push(s.clone(), t0).await.unwrap();
    s
}

fn beat(s: &HostSnapshot, engine_state: EngineState) -> HeartbeatRequest {
    HeartbeatRequest {
        host_id: s.host_id.clone(),
        environment: s.environment.clone(),
        content_hash: s.content_hash.clone(),
        boot_id: "b".into(),
        sequence: 2,
        sent_at: None,
        engine_state: engine_state as i32,
    }
}

/// What the store holds for `h1` (read through a connection of its
/// own, as the next process would after a crash): last seen, engine
/// state.
fn stored(dir: &tempfile::TempDir) -> (SystemTime, EngineState) {
    let hosts = SqliteStore::open(dir.path()).unwrap().load_hosts().unwrap();
    let h = hosts.iter().find(|h| h.snapshot.host_id == "h1").unwrap();
    (h.last_seen, h.engine_state)
}

/// Heartbeats that change nothing but liveness are acknowledged from
/// memory only within LIVENESS_BOUND after the last liveness commit
/// (each tick makes one); later ones wait for a commit of their own. A
/// crash (the fleet dropped with no tick and no shutdown) then finds in
/// the store a last_seen at most LIVENESS_BOUND older than the last
/// acknowledged heartbeat.
#[tokio::test]
async fn a_crash_loses_at_most_the_liveness_bound_of_heartbeats() {
    let (dir, fleet, t0) = empty_fleet();
    let s = one_host(&fleet, t0).await;
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert!(fleet.liveness_bound == LIVENESS_BOUND);

    assert!(
        !fleet
            .heartbeat(&beat(&s, EngineState::Ok), at(2_000))
            .await
            .unwrap()
    );
    assert_eq!(stored(&dir).0, t0, "acknowledged from memory");
    assert_eq!(fleet.view(at(2_000)).hosts[0].0.last_seen, at(2_000));
    fleet.tick(at(3_000)).await.unwrap();
    assert_eq!(stored(&dir).0, at(2_000), "committed by the tick");

    // 4 s after the tick's commit: from memory; 5.5 s: stored first.
    fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(7_000))
        .await
        .unwrap();
    assert_eq!(stored(&dir).0, at(2_000));
    fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(8_500))
        .await
        .unwrap();
    assert_eq!(stored(&dir).0, at(8_500), "older than the bound: stored");
    let last = at(9_000);
    fleet
        .heartbeat(&beat(&s, EngineState::Ok), last)
        .await
        .unwrap();
    drop(fleet);

    let (seen, state) = stored(&dir);
    assert_eq!(seen, at(8_500));
    assert!(last.duration_since(seen).unwrap() <= LIVENESS_BOUND);
    assert_eq!(state, EngineState::Ok);
}

/// An engine state change is never held in memory only: the heartbeat
/// carrying it is acknowledged once the store has it (a host whose
/// engine is unreachable changes findings), even right after a commit.
#[tokio::test]
async fn an_engine_state_change_is_stored_before_its_heartbeat_is_acknowledged() {
    let (dir, fleet, t0) = empty_fleet();
    let s = one_host(&fleet, t0).await;
    let at = |ms: u64| t0 + Duration::from_millis(ms);

    fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(500))
        .await
        .unwrap();
    fleet
        .heartbeat(&beat(&s, EngineState::Unreachable), at(1_000))
        .await
        .unwrap();
    assert_eq!(stored(&dir), (at(1_000), EngineState::Unreachable));
    let view = fleet.view(at(1_000));
    assert_eq!(view.hosts[0].1, HostState::EngineUnreachable);

    fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(1_500))
        .await
        .unwrap();
    drop(fleet);
    assert_eq!(stored(&dir), (at(1_500), EngineState::Ok));
}

/// A failing store still reaches heartbeats as an error: at once for an
/// engine state change, at the tick for the liveness held in memory, and
/// for every heartbeat once the last commit is older than the bound.
/// The held liveness is kept and stored once the store works again.
#[tokio::test]
async fn heartbeats_see_a_failing_store_once_liveness_cannot_be_stored() {
    let (dir, fleet, t0) = empty_fleet();
    let s = one_host(&fleet, t0).await;
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let db = rusqlite::Connection::open(dir.path().join("envparity.db")).unwrap();
    db.execute_batch("ALTER TABLE liveness RENAME TO liveness_away")
        .unwrap();

    fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(1_000))
        .await
        .unwrap();
    let err = fleet
        .heartbeat(&beat(&s, EngineState::Unreachable), at(1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::Store(_)), "{err}");
    assert!(err.to_string().contains("heartbeat"), "{err}");
    assert!(err.to_string().contains("envparity.db"), "{err}");
    assert!(fleet.tick(at(2_000)).await.is_err());
    let err = fleet
        .heartbeat(&beat(&s, EngineState::Ok), at(6_000))
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::Store(_)), "{err}");
    assert_eq!(
        fleet.view(at(6_000)).hosts[0].0.engine_state,
        EngineState::Ok,
        "a change the store refused is not in memory either"
    );

    db.execute_batch("ALTER TABLE liveness_away RENAME TO liveness")
        .unwrap();
    fleet.tick(at(7_000)).await.unwrap();
    assert_eq!(stored(&dir), (at(1_000), EngineState::Ok));
}

/// The engine over hosts held compact (containers split from their ids and
/// names, identical contents shared) finds exactly what it finds over the
/// whole snapshots it read before: for random fleets (random services,
/// images, env, kernels, engines down, stale hosts, cut containers) and
/// for the synthetic fleets of the benchmarks, every pair and the
/// host-level kinds.
#[test]
fn the_engine_finds_the_same_over_compact_hosts_as_over_whole_snapshots() {
    use envparity_tests::synthetic::Shape;

    let policy = Policy::default();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let check = |snapshots: Vec<HostSnapshot>, stale: &dyn Fn(usize) -> bool, what: &str| {
        let mut interner = Interner::default();
        let records: Vec<StoredHost> = snapshots
            .into_iter()
            .map(|s| StoredHost {
                snapshot: Arc::new(s),
                received_at: t0,
                last_seen: t0,
                engine_state: EngineState::Ok,
            })
            .collect();
        let held: Vec<HeldHost> = records.iter().map(|r| interner.hold(r.clone())).collect();
        fn view<'a>(
            stale: bool,
            t0: SystemTime,
            snapshot: &'a HostSnapshot,
        ) -> parity::HostView<'a> {
            parity::HostView {
                host_id: &snapshot.host_id,
                environment: &snapshot.environment,
                current: !stale,
                stale,
                last_seen: t0,
                snapshot,
                held: None,
                only: None,
            }
        }
        let whole: Vec<parity::HostView<'_>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| view(stale(i), t0, &r.snapshot))
            .collect();
        let compact: Vec<parity::HostView<'_>> = held
            .iter()
            .enumerate()
            .map(|(i, h)| parity::HostView {
                held: Some(&h.containers),
                ..view(stale(i), t0, &h.snapshot)
            })
            .collect();
        let environments = policy.ordered(records.iter().map(|r| r.snapshot.environment.as_str()));
        let scope = Scope::all(&policy, &environments);
        let expected = parity::evaluate(&whole, &policy, &scope);
        assert_eq!(
            parity::evaluate(&compact, &policy, &scope),
            expected,
            "{what}"
        );
        for (a, b) in &scope.pairs {
            let pair = Scope::pair(a, b);
            assert_eq!(
                parity::evaluate(&compact, &policy, &pair),
                parity::evaluate(&whole, &policy, &pair),
                "{what}: {a} against {b}"
            );
        }
        // A scope of some services reads only their containers
        // (`HeldHost::running`) and finds what it finds reading all.
        let services: BTreeSet<String> = held
            .iter()
            .flat_map(HeldHost::services)
            .map(str::to_owned)
            .collect();
        for chosen in services.iter().step_by(2).collect::<Vec<_>>().chunks(2) {
            let chosen: BTreeSet<String> = chosen.iter().map(|s| (*s).clone()).collect();
            let running: Vec<Vec<u32>> = held
                .iter()
                .map(|h| {
                    let mut at: Vec<u32> =
                        chosen.iter().flat_map(|s| h.running(s)).copied().collect();
                    at.sort_unstable();
                    at
                })
                .collect();
            let only: Vec<parity::HostView<'_>> = compact
                .iter()
                .zip(&running)
                .map(|(v, at)| parity::HostView {
                    only: Some(at),
                    ..*v
                })
                .collect();
            let scope = scope.clone().with_services(chosen.clone());
            assert_eq!(
                parity::evaluate(&only, &policy, &scope),
                parity::evaluate(&whole, &policy, &scope),
                "{what}: services {chosen:?}"
            );
        }
        expected.len()
    };

    let mut found = 0;
    for seed in 0..200u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut sequence = BTreeMap::new();
        let mut latest: BTreeMap<String, HostSnapshot> = BTreeMap::new();
        for _ in 0..rng.usize(1..30) {
            let mut s = random_report(&mut rng, &mut sequence);
            if rng.u8(0..8) == 0
                && let Some(c) = s.containers.first_mut()
            {
                c.cut = vec!["labels: 3 of 900 kept".into()];
            }
            latest.insert(s.host_id.clone(), s);
        }
        let stale_every = rng.usize(2..6);
        found += check(
            latest.into_values().collect(),
            &|i| i % stale_every == 0,
            &format!("random fleet {seed}"),
        );
    }
    for hosts in [3, 30, 120] {
        let shape = Shape {
            hosts,
            ..Shape::default()
        };
        let snapshots = (0..hosts).map(|i| shape.snapshot(i, 1)).collect();
        found += check(
            snapshots,
            &|_| false,
            &format!("synthetic fleet of {hosts}"),
        );
    }
    // The fleets drift: the comparison covers findings, not just silence.
    assert!(found > 1_000, "only {found} findings compared");
}

/// What the store holds after any sequence of reports — whole new
/// contents, one container changed, renamed, added or removed, an engine
/// unreachable (its containers kept), containers in an order other than by
/// id — is exactly what memory holds: a reopened store loads every host
/// whole, although each report wrote only the container rows it changed.
#[tokio::test]
async fn the_store_holds_what_memory_holds_after_any_reports() {
    let (dir, fleet, t0) = empty_fleet();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut sequence = BTreeMap::new();
    let mut now = t0;
    for step in 0..300u64 {
        now += Duration::from_secs(1);
        let mut s = random_report(&mut rng, &mut sequence);
        if let Some(held) = fleet.held(&s.host_id)
            && rng.u8(0..4) != 0
        {
            // A small change to what the host holds.
            let (sequence, engine_state) = (s.sequence, s.engine_state);
            s.containers = held.containers;
            s.engine_state = engine_state;
            s.sequence = sequence;
            let n = s.containers.len();
            match rng.u8(0..5) {
                0 if n > 0 => {
                    let image = s.containers[rng.usize(0..n)].image.as_mut().unwrap();
                    image.reference = format!("reg/changed:{step}");
                }
                1 if n > 0 => s.containers[rng.usize(0..n)].name = format!("renamed-{step}"),
                2 if n > 0 => {
                    s.containers.remove(rng.usize(0..n));
                }
                3 => {
                    let mut c = container("s9", step % 3, 0);
                    c.id = format!("new-{step}");
                    s.containers.insert(rng.usize(0..=n), c);
                }
                _ => s.containers.reverse(),
            }
            s.content_hash = envparity_proto::hash::content_hash(&s);
        }
        fleet.push(s, now).await.unwrap();
        fleet
            .read()
            .assert_indexes_rebuild(&format!("after step {step}"));
        if step % 50 == 49 {
            let memory: Vec<StoredHost> = fleet.view(now).hosts.into_iter().map(|h| h.0).collect();
            let reopened = SqliteStore::open(dir.path()).unwrap().load_hosts().unwrap();
            assert_eq!(reopened, memory, "after step {step}");
        }
    }
}

/// Reports that arrive together are stored in one batch, one transaction
/// (group commit). After each batch of random reports — several of one
/// host among them, a retry of one, hosts moving environment, kernel,
/// engine state or fleet key, new hosts — the ledger holds exactly what a
/// full evaluation finds, each report is answered as if it came alone (the
/// retry as a duplicate of what its host holds), memory holds each host's
/// last report, and a reopened store holds what memory holds.
#[tokio::test]
async fn a_batch_of_reports_is_stored_and_evaluated_as_if_they_came_one_by_one() {
    let (dir, fleet, t0) = empty_fleet();
    let mut rng = fastrand::Rng::with_seed(23);
    let mut sequence = BTreeMap::new();
    let mut batched = 0;
    for round in 0..80u64 {
        let now = t0 + Duration::from_secs(round);
        let mut reports: Vec<HostSnapshot> = (0..rng.usize(1..10))
            .map(|_| random_report(&mut rng, &mut sequence))
            .collect();
        let retried = rng.u8(0..3) == 0;
        if retried {
            reports.push(reports[0].clone());
        }
        // Holding the ingest lock keeps the lane's task from starting
        // until every report waits, so that they make one batch; each is
        // queued before the next is sent, so that they wait in order.
        let lock = fleet.ingest.lock().await;
        let mut pushes = Vec::new();
        for (i, s) in reports.iter().enumerate() {
            let (sender, s) = (Arc::clone(&fleet), s.clone());
            pushes.push(tokio::spawn(async move { sender.push(s, now).await }));
            while fleet.lane.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        batched += reports.len();
        drop(lock);
        let mut last: BTreeMap<&str, &HostSnapshot> = BTreeMap::new();
        for (i, (s, push)) in reports.iter().zip(pushes).enumerate() {
            let outcome = push.await.unwrap().unwrap();
            let retry = retried && i == reports.len() - 1;
            assert_eq!(outcome.duplicate, retry, "round {round}, report {i}");
            let holds = if retry { last[s.host_id.as_str()] } else { s };
            assert_eq!(
                outcome.content_hash, holds.content_hash,
                "round {round}, report {i}"
            );
            if !retry {
                last.insert(&s.host_id, s);
            }
        }
        assert_eq!(fleet.lane.waiting(), 0);

        let (held, full) = held_and_full(&fleet, now);
        assert_eq!(held, full, "after round {round}");
        fleet
            .read()
            .assert_indexes_rebuild(&format!("after round {round}"));
        for (host, s) in &last {
            let held = fleet.held(host).unwrap();
            assert_eq!(
                held.content_hash, s.content_hash,
                "round {round}, host {host}"
            );
            assert_eq!(held.sequence, s.sequence, "round {round}, host {host}");
        }
        if round % 10 == 9 {
            let memory: Vec<StoredHost> = fleet.view(now).hosts.into_iter().map(|h| h.0).collect();
            let reopened = SqliteStore::open(dir.path()).unwrap().load_hosts().unwrap();
            assert_eq!(reopened, memory, "after round {round}");
        }
    }
    assert!(batched > 300, "{batched} reports in 80 batches");
}

/// A delta applied to the compact host held ([`Fleet::push_delta`]) leaves
/// exactly what its whole snapshot leaves: after any sequence of small
/// changes (a container changed, renamed, added or removed, a new
/// kernel, another fleet key), a fleet fed deltas holds the same hosts,
/// open findings and history as one fed the snapshots, and its store
/// reopens to the same hosts.
#[tokio::test]
async fn a_delta_leaves_what_its_whole_snapshot_leaves() {
    let (whole_dir, whole, t0) = empty_fleet();
    let (delta_dir, deltas, _) = empty_fleet();
    let mut rng = fastrand::Rng::with_seed(29);
    let environments = ["staging", "production"];
    let mut hosts: Vec<HostSnapshot> = (0..5)
        .map(|i| {
            let containers = (0..6)
                .map(|s| container(&format!("s{}", s % 4), 1, 0))
                .collect();
            let mut h = report(&format!("h{i}"), environments[i % 2], 1, containers);
            for (n, c) in h.containers.iter_mut().enumerate() {
                c.id = format!("c{n}");
            }
            h.content_hash = envparity_proto::hash::content_hash(&h);
            h
        })
        .collect();
    for h in &hosts {
        whole.push(h.clone(), t0).await.unwrap();
        deltas.push(h.clone(), t0).await.unwrap();
    }
    let mut sent = 0;
    for step in 1..200u64 {
        let now = t0 + Duration::from_secs(step);
        let which = rng.usize(0..hosts.len());
        let base = hosts[which].clone();
        let s = &mut hosts[which];
        s.sequence += 1;
        let n = s.containers.len();
        let pick = rng.usize(0..n.max(1));
        match (rng.u8(0..6), s.containers.get_mut(pick)) {
            (0, Some(c)) => {
                c.image.as_mut().unwrap().image_id = format!("sha256:{:064x}", rng.u64(0..3));
            }
            (1, Some(c)) => c.name = format!("renamed-{}", rng.u8(0..3)),
            (2, Some(_)) => {
                s.containers.remove(pick);
            }
            (3, _) => {
                let mut c = container(&format!("s{}", rng.u64(0..5)), rng.u64(0..3), 0);
                c.id = format!("n{step}");
                s.containers.push(c);
            }
            (4, _) => {
                s.host.get_or_insert_default().kernel_version = format!("6.{}.0", rng.u8(0..2));
            }
            _ => s.fingerprint_key_id = ["k", "k2"][rng.usize(0..2)].into(),
        }
        // Agents send containers by id, hashed in either form (by
        // container once the aggregator acknowledged it).
        s.containers.sort_by(|a, b| a.id.cmp(&b.id));
        let form = [HashForm::Whole, HashForm::ByContainer][rng.usize(0..2)];
        s.content_hash = envparity_proto::hash::content_hash_in(form, s);
        let delta = envparity_proto::delta::between(&base, s);
        sent += delta.upserted.len() + delta.removed.len();
        assert!(deltas.takes_delta(&delta));
        let a = whole.push(s.clone(), now).await.unwrap();
        let b = match deltas.push_delta(delta.clone(), now).await {
            Ok(b) => b,
            Err(e) => panic!("step {step}: {e}\nbase {base:#?}\ndelta {delta:#?}"),
        };
        assert_eq!(a, b, "step {step}");

        for h in &hosts {
            assert_eq!(
                deltas.held(&h.host_id),
                whole.held(&h.host_id),
                "step {step}"
            );
        }
        let open = |fleet: &Fleet| -> Vec<Finding> {
            fleet
                .view(now)
                .open
                .into_iter()
                .map(|e| e.finding)
                .collect()
        };
        assert_eq!(open(&deltas), open(&whole), "step {step}");
        deltas
            .read()
            .assert_indexes_rebuild(&format!("deltas, step {step}"));
        whole
            .read()
            .assert_indexes_rebuild(&format!("snapshots, step {step}"));
    }
    assert!(sent > 80, "{sent} containers sent in deltas");
    let changes = |dir: &tempfile::TempDir| {
        SqliteStore::open(dir.path())
            .unwrap()
            .changes(None, crate::store::PageAt::newest(10_000))
            .unwrap()
            .rows
    };
    assert_eq!(changes(&delta_dir), changes(&whole_dir));
    let reopened =
        |dir: &tempfile::TempDir| SqliteStore::open(dir.path()).unwrap().load_hosts().unwrap();
    let (a, b) = (reopened(&whole_dir), reopened(&delta_dir));
    assert_eq!(
        a.iter().map(|h| &h.snapshot).collect::<Vec<_>>(),
        b.iter().map(|h| &h.snapshot).collect::<Vec<_>>()
    );
}

/// Host h1 in staging running shop and web (by id, as agents send them),
/// stored.
async fn shop_and_web(fleet: &Arc<Fleet>, t0: SystemTime) -> HostSnapshot {
    let mut s = report(
        "h1",
        "staging",
        1,
        vec![container("shop", 1, 0), container("web", 1, 0)],
    );
    s.containers.sort_by(|a, b| a.id.cmp(&b.id));
    s.content_hash = envparity_proto::hash::content_hash(&s);
    fleet.push(s.clone(), t0).await.unwrap();
    s
}

/// A delta that does not apply changes nothing and says why: against
/// another base, removing a container not held, naming one twice, or
/// claiming a content it does not make; and none is applied to a host that
/// is not held.
#[tokio::test]
async fn a_delta_that_does_not_apply_changes_nothing_and_says_why() {
    let (_dir, fleet, t0) = empty_fleet();
    let base = shop_and_web(&fleet, t0).await;
    let mut next = base.clone();
    next.sequence = 2;
    next.containers[0].image.as_mut().unwrap().image_id = format!("sha256:{:064x}", 7);
    next.content_hash = envparity_proto::hash::content_hash(&next);
    let good = envparity_proto::delta::between(&base, &next);

    let refused = |delta: envparity_proto::v1::PushDeltaRequest| {
        let fleet = Arc::clone(&fleet);
        async move {
            match fleet.push_delta(delta, t0).await {
                Err(IngestError::Delta(why)) => why,
                other => panic!("expected a refused delta, got {other:?}"),
            }
        }
    };
    let mut other_base = good.clone();
    other_base.base_content_hash = "f".repeat(64);
    assert!(refused(other_base).await.contains("is against content"));
    let mut unknown = good.clone();
    unknown.removed.push("nope".into());
    assert!(
        refused(unknown)
            .await
            .contains("\"nope\" is removed but the base does not run it")
    );
    let mut twice = good.clone();
    twice.upserted.push(twice.upserted[0].clone());
    assert!(refused(twice).await.contains("upserted twice"));
    let mut lying = good.clone();
    lying.snapshot.as_mut().unwrap().content_hash = "a".repeat(64);
    let why = refused(lying).await;
    assert!(why.contains("rebuilt from the delta has content"), "{why}");
    assert!(why.ends_with("send the full snapshot"), "{why}");
    // By container too: the content hash of a snapshot where an unchanged
    // container (the one the delta does not carry) holds another content.
    let mut elsewhere = next.clone();
    elsewhere.containers[1].unmanaged = !elsewhere.containers[1].unmanaged;
    let mut lying = good.clone();
    lying.snapshot.as_mut().unwrap().content_hash =
        envparity_proto::hash::content_hash_in(HashForm::ByContainer, &elsewhere);
    let why = refused(lying).await;
    assert!(
        why.contains("rebuilt from the delta has content v2:"),
        "{why}"
    );
    let mut stranger = good.clone();
    stranger.snapshot.as_mut().unwrap().host_id = "h9".into();
    assert!(
        refused(stranger)
            .await
            .contains("holds no snapshot of host \"h9\"")
    );
    assert_eq!(fleet.held("h1").unwrap(), base, "nothing changed");

    assert!(!fleet.push_delta(good, t0).await.unwrap().duplicate);
    assert_eq!(fleet.held("h1").unwrap(), next);
    // The same change hashed by container applies as well.
    let mut by_container = base.clone();
    by_container.sequence = 3;
    by_container.containers[1].image.as_mut().unwrap().image_id = format!("sha256:{:064x}", 8);
    by_container.containers[0] = next.containers[0].clone();
    by_container.content_hash =
        envparity_proto::hash::content_hash_in(HashForm::ByContainer, &by_container);
    let delta = envparity_proto::delta::between(&next, &by_container);
    assert_eq!(
        delta.upserted.len(),
        1,
        "only the changed container travels"
    );
    assert!(!fleet.push_delta(delta, t0).await.unwrap().duplicate);
    assert_eq!(fleet.held("h1").unwrap(), by_container);
}

/// A delta waits in the lane applied to the host held when it came; when
/// another report of the host is stored before it, in the same batch, it
/// is applied again to the host as that report left it, and checked again:
/// it applies when that host is its base and it makes the content it
/// claims, and is refused otherwise.
#[tokio::test]
async fn a_delta_behind_another_report_of_its_host_is_applied_to_what_that_one_left() {
    let (_dir, fleet, t0) = empty_fleet();
    // `s` at `sequence`, its first container running image `image`.
    let step = |s: &HostSnapshot, sequence: u64, image: u64| {
        let mut next = s.clone();
        next.sequence = sequence;
        next.containers[0].image.as_mut().unwrap().image_id = format!("sha256:{image:064x}");
        next.content_hash = envparity_proto::hash::content_hash(&next);
        next
    };
    // Stores `first` and `second` in one batch, in that order; answers
    // whether `first` was stored and `second`'s outcome.
    let batch = |first: HostSnapshot, second: PushDeltaRequest| {
        let fleet = Arc::clone(&fleet);
        async move {
            let lock = fleet.ingest.lock().await;
            let pusher = Arc::clone(&fleet);
            let first = tokio::spawn(async move { pusher.push(first, t0).await });
            while fleet.lane.waiting() < 1 {
                tokio::task::yield_now().await;
            }
            let pusher = Arc::clone(&fleet);
            let second = tokio::spawn(async move { pusher.push_delta(second, t0).await });
            while fleet.lane.waiting() < 2 {
                tokio::task::yield_now().await;
            }
            drop(lock);
            assert!(!first.await.unwrap().unwrap().duplicate);
            second.await.unwrap()
        }
    };
    let refused = |outcome: Result<PushOutcome, IngestError>| match outcome {
        Err(IngestError::Delta(why)) => why,
        other => panic!("expected a refused delta, got {other:?}"),
    };

    let a = shop_and_web(&fleet, t0).await;

    // A delta from b, which is not held when it comes (a is): applied to
    // b, which the batch stores first, and found not to make the content
    // it claims.
    let b = step(&a, 2, 7);
    let mut lying = envparity_proto::delta::between(&b, &step(&b, 3, 8));
    lying.snapshot.as_mut().unwrap().content_hash = "a".repeat(64);
    let why = refused(batch(b.clone(), lying).await);
    assert!(why.contains("rebuilt from the delta has content"), "{why}");
    assert_eq!(fleet.held("h1").unwrap(), b);

    // A delta from b, prepared against b as held, behind another report
    // of the same content: applied to that one.
    let mut b_again = b.clone();
    b_again.sequence = 4;
    let c = step(&b, 5, 8);
    let outcome = batch(b_again, envparity_proto::delta::between(&b, &c)).await;
    assert!(!outcome.unwrap().duplicate);
    assert_eq!(fleet.held("h1").unwrap(), c);

    // A delta from c, prepared against c as held, behind a report that
    // replaces c: refused, and the other report stays.
    let d = step(&c, 6, 9);
    let e = step(&c, 7, 10);
    let why = refused(batch(d.clone(), envparity_proto::delta::between(&c, &e)).await);
    assert!(why.contains("is against content"), "{why}");
    assert_eq!(fleet.held("h1").unwrap(), d);
}
