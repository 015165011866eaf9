//! The aggregator's gRPC API, driven through a real tonic client against a
//! real server and a real store: SQLite in a temporary directory, or, with
//! `ENVPARITY_API_STORE=postgres`, a database of its own on the PostgreSQL
//! server `ENVPARITY_TEST_POSTGRES` names (scripts/test.sh runs them both
//! ways).

use std::time::Duration;

use envparity_aggregator::server::{Background, ServeConfig};
use envparity_proto::fixtures;
use envparity_proto::hash::content_hash;
use envparity_proto::v1::query_service_client::QueryServiceClient;
use envparity_proto::v1::report_service_client::ReportServiceClient;
use envparity_proto::v1::*;
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::Channel;

struct Server {
    url: String,
    running: Background,
}

impl Server {
    async fn start(dir: &std::path::Path, stale_after: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = ServeConfig {
            stale_after,
            plaintext: envparity_proto::transport::Plaintext::Loopback,
            postgres: postgres_for(dir).await,
            ..ServeConfig::new(listener.local_addr().unwrap(), dir.to_owned())
        };
        let running = Background::spawn(listener, config).unwrap();
        Server {
            url: running.url(),
            running,
        }
    }

    async fn report(&self) -> ReportServiceClient<Channel> {
        ReportServiceClient::connect(self.url.clone())
            .await
            .unwrap()
    }

    async fn query(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::connect(self.url.clone()).await.unwrap()
    }

    async fn stop(self) {
        self.running.stop().await.unwrap();
    }
}

/// The PostgreSQL database that stands for data directory `dir` (the same
/// one each time, so that a restart reads back what was stored), created
/// when first asked, when `ENVPARITY_API_STORE=postgres`; `None` (SQLite in
/// `dir`) otherwise.
async fn postgres_for(dir: &std::path::Path) -> Option<envparity_aggregator::store::PgTarget> {
    use std::hash::{Hash, Hasher};
    use std::str::FromStr;
    match std::env::var("ENVPARITY_API_STORE").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Err(_) => return None,
        Ok(other) => panic!("ENVPARITY_API_STORE={other:?}: sqlite or postgres"),
    }
    let url = std::env::var("ENVPARITY_TEST_POSTGRES").expect(
        "ENVPARITY_API_STORE=postgres needs ENVPARITY_TEST_POSTGRES (scripts/test.sh sets both)",
    );
    let mut admin = tokio_postgres::Config::from_str(&url).expect("a PostgreSQL URL");
    let (client, connection) = admin
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let driver = tokio::spawn(connection);
    let mut hasher = std::hash::DefaultHasher::new();
    dir.hash(&mut hasher);
    let db = format!("api_{:016x}", hasher.finish());
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .unwrap()
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap_or_else(|e| panic!("create database {db}: {e}"));
    }
    drop(client);
    let _ = driver.await;
    admin.dbname(&db);
    Some(envparity_aggregator::store::PgTarget::new(admin))
}

/// A strict digest from a short hex name: `aaa` → `sha256:aaaa…` (64 digits).
fn digest(name: &str) -> String {
    format!("sha256:{}", &name.repeat(64)[..64])
}

/// The image id of the image [`digest`] names: another strict digest.
fn image_id(name: &str) -> String {
    digest(&format!("1d{name}"))
}

/// A container of `service` pinned to the image [`digest`] names.
fn container(service: &str, name: &str, env: &[(&str, &str)]) -> Container {
    let repo_digest = format!("127.0.0.1:5000/{service}@{}", digest(name));
    fixtures::container(service)
        .id(format!("{service}-id"))
        .image(&repo_digest)
        .image_id(image_id(name))
        .repo_digest(repo_digest)
        .envs(env.iter().copied())
        .build()
}

/// Report `seq` of `host` in `env`, its engine reachable.
fn snapshot(host: &str, env: &str, seq: u64, containers: Vec<Container>) -> HostSnapshot {
    fixtures::snapshot(host, env)
        .sequence(seq)
        .kernel("6.1.0")
        .engine_state(EngineState::Ok)
        .fingerprint_key("k1")
        .containers(containers)
        .build()
}

async fn push(
    client: &mut ReportServiceClient<Channel>,
    s: HostSnapshot,
) -> Result<PushSnapshotResponse, tonic::Status> {
    client
        .push_snapshot(PushSnapshotRequest { snapshot: Some(s) })
        .await
        .map(tonic::Response::into_inner)
}

async fn findings(q: &mut QueryServiceClient<Channel>, a: &str, b: &str) -> Vec<Finding> {
    q.get_findings(GetFindingsRequest {
        env_a: a.into(),
        env_b: b.into(),
        service: String::new(),
        ..GetFindingsRequest::default()
    })
    .await
    .unwrap()
    .into_inner()
    .findings
}

/// The image id of every stored replica of `service`.
async fn image_ids(q: &mut QueryServiceClient<Channel>, service: &str) -> Vec<String> {
    q.get_service(GetServiceRequest {
        service: service.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .instances
    .iter()
    .filter_map(|i| i.container.as_ref()?.image.as_ref())
    .map(|image| image.image_id.clone())
    .collect()
}

#[tokio::test]
async fn reports_become_findings_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;

    push(
        &mut r,
        snapshot(
            "s1",
            "staging",
            1,
            vec![container("shop", "aaa", &[("A", "f1")])],
        ),
    )
    .await
    .unwrap();
    let prod = snapshot(
        "p1",
        "production",
        1,
        vec![container("shop", "bbb", &[("A", "f1")])],
    );
    let prod_hash = prod.content_hash.clone();
    let ack = push(&mut r, prod).await.unwrap();
    assert_eq!(ack.content_hash, prod_hash);
    assert!(!ack.duplicate);

    let f = findings(&mut q, "staging", "production").await;
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind(), FindingKind::ImageDigest);
    assert_eq!(f[0].severity(), Severity::Critical);
    assert_eq!(f[0].basis, "registry_digest");
    assert_eq!(f[0].state(), FindingState::Active);
    let first_seen = f[0].first_seen.expect("first_seen");

    server.stop().await;
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    // State came back from the store: the same finding, first seen when it
    // first was (not at the restart), and a heartbeat with the stored hash
    // needs no snapshot.
    let again = findings(&mut q, "staging", "production").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].first_seen, Some(first_seen));
    assert_eq!(again[0].id, f[0].id);
    let hb = |hash: &str| HeartbeatRequest {
        host_id: "p1".into(),
        environment: "production".into(),
        content_hash: hash.into(),
        boot_id: "boot-1".into(),
        sequence: 2,
        sent_at: None,
        engine_state: EngineState::Ok as i32,
    };
    assert!(
        !r.heartbeat(hb(&prod_hash))
            .await
            .unwrap()
            .into_inner()
            .snapshot_needed
    );
    assert!(
        r.heartbeat(hb("0000"))
            .await
            .unwrap()
            .into_inner()
            .snapshot_needed
    );
    let mut unknown = hb(&prod_hash);
    unknown.host_id = "never-seen".into();
    assert!(
        r.heartbeat(unknown)
            .await
            .unwrap()
            .into_inner()
            .snapshot_needed
    );
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_snapshot_is_rejected_whole_and_the_previous_state_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    push(
        &mut r,
        snapshot(
            "s1",
            "staging",
            1,
            vec![container("shop", "aaa", &[("A", "f1")])],
        ),
    )
    .await
    .unwrap();

    let mut bad = snapshot("s1", "staging", 2, vec![container("shop", "bbb", &[])]);
    bad.containers[0].service = None;
    let err = push(&mut r, bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("service is missing"),
        "{}",
        err.message()
    );

    let err = r
        .push_snapshot(PushSnapshotRequest { snapshot: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    assert_eq!(image_ids(&mut q, "shop").await, vec![image_id("aaa")]);
    server.stop().await;
}

async fn push_delta(
    client: &mut ReportServiceClient<Channel>,
    delta: PushDeltaRequest,
) -> Result<PushSnapshotResponse, tonic::Status> {
    client
        .push_delta(delta)
        .await
        .map(tonic::Response::into_inner)
}

/// A delta is stored as the snapshot it rebuilds (and judged as one); one
/// the aggregator cannot apply is FAILED_PRECONDITION and changes nothing;
/// one that rebuilds an invalid snapshot is refused as invalid.
#[tokio::test]
async fn a_delta_is_stored_as_the_snapshot_it_rebuilds_or_refused_whole() {
    use envparity_proto::delta;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    let mut cart = container("cart", "ccc", &[]);
    cart.id = "a-cart-id".into();
    let base = snapshot(
        "p1",
        "production",
        1,
        vec![cart.clone(), container("shop", "aaa", &[("A", "f1")])],
    );
    push(&mut r, base.clone()).await.unwrap();
    push(
        &mut r,
        snapshot(
            "s1",
            "staging",
            1,
            vec![container("shop", "aaa", &[("A", "f1")])],
        ),
    )
    .await
    .unwrap();

    // Unknown host: nothing to apply it to.
    let stranger = snapshot("x1", "production", 1, vec![]);
    let e = push_delta(&mut r, delta::between(&base, &stranger))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("send the full snapshot"), "{e:?}");

    // `shop` moves to bbb, `cart` goes: only `shop` travels.
    let next = snapshot(
        "p1",
        "production",
        2,
        vec![container("shop", "bbb", &[("A", "f1")])],
    );
    let d = delta::between(&base, &next);
    assert_eq!((d.upserted.len(), d.removed.len()), (1, 1));
    // Tampered with on the way (or built against something else): the
    // rebuilt snapshot is not the one hashed.
    let mut tampered = d.clone();
    tampered.upserted[0].name = "shop-2".into();
    let e = push_delta(&mut r, tampered).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("rebuilt from the delta"), "{e:?}");
    let mut other_base = d.clone();
    other_base.base_content_hash = "0".repeat(64);
    let e = push_delta(&mut r, other_base).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(image_ids(&mut q, "shop").await.len(), 2);
    assert_eq!(image_ids(&mut q, "cart").await, vec![image_id("ccc")]);

    let ack = push_delta(&mut r, d.clone()).await.unwrap();
    assert_eq!(ack.content_hash, next.content_hash);
    assert!(!ack.duplicate);
    assert!(ack.hashes_by_container, "agents may hash by container");
    let ids = image_ids(&mut q, "shop").await;
    assert!(ids.contains(&image_id("bbb")), "{ids:?}");
    let e = q
        .get_service(GetServiceRequest {
            service: "cart".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "cart went: {e:?}");
    let f = findings(&mut q, "staging", "production").await;
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind(), FindingKind::ImageDigest);

    // The same delta again (a retry whose answer was lost): a replay of
    // what is held, acknowledged as a duplicate as a whole snapshot would
    // be, changing nothing.
    let again = push_delta(&mut r, d).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.content_hash, next.content_hash);
    assert!(image_ids(&mut q, "shop").await.contains(&image_id("bbb")));

    // A delta that rebuilds an invalid snapshot is refused as one.
    let mut bad = container("shop", "ddd", &[]);
    bad.id = "x".repeat(254); // over the 253 of an id
    let invalid = snapshot("p1", "production", 3, vec![bad]);
    let e = push_delta(&mut r, delta::between(&next, &invalid))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let ids = image_ids(&mut q, "shop").await;
    assert!(
        ids.contains(&image_id("bbb")),
        "the last good state stays: {ids:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn replays_do_not_overwrite_newer_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    let old = snapshot("s1", "staging", 1, vec![container("shop", "aaa", &[])]);
    push(&mut r, old.clone()).await.unwrap();
    push(
        &mut r,
        snapshot("s1", "staging", 2, vec![container("shop", "bbb", &[])]),
    )
    .await
    .unwrap();
    let ack = push(&mut r, old).await.unwrap();
    assert!(ack.duplicate);
    assert_eq!(image_ids(&mut q, "shop").await, vec![image_id("bbb")]);
    server.stop().await;
}

#[tokio::test]
async fn unknown_names_in_queries_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    push(
        &mut r,
        snapshot(
            "s1",
            "staging",
            1,
            vec![container("shop", "aaa", &[("A", "f1")])],
        ),
    )
    .await
    .unwrap();
    let err = q
        .get_findings(GetFindingsRequest {
            env_a: "staging".into(),
            env_b: "prodd".into(),
            service: String::new(),
            ..GetFindingsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message()
            .contains("\"prodd\" is unknown; known environments: staging"),
        "{}",
        err.message()
    );

    let err = q
        .get_service(GetServiceRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("known services: shop"),
        "{}",
        err.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn engine_loss_keeps_the_last_known_containers_and_marks_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    push(
        &mut r,
        snapshot(
            "s1",
            "staging",
            1,
            vec![container("shop", "aaa", &[("A", "f1")])],
        ),
    )
    .await
    .unwrap();
    let mut lost = snapshot("s1", "staging", 2, vec![]);
    lost.engine_state = EngineState::Unreachable as i32;
    lost.content_hash = content_hash(&lost);
    push(&mut r, lost).await.unwrap();
    let hosts = q
        .list_hosts(ListHostsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .hosts;
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].state(), HostState::EngineUnreachable);
    assert_eq!(hosts[0].container_count, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_host_turns_stale() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_millis(300)).await;
    let mut r = server.report().await;
    let mut q = server.query().await;
    push(&mut r, snapshot("s1", "staging", 1, vec![]))
        .await
        .unwrap();
    let state = |hosts: Vec<HostSummary>| hosts[0].state();
    assert_eq!(
        state(
            q.list_hosts(ListHostsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .hosts
        ),
        HostState::Fresh
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        state(
            q.list_hosts(ListHostsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .hosts
        ),
        HostState::Stale
    );
    server.stop().await;
}

#[tokio::test]
async fn standard_health_and_reflection_services_answer() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(60)).await;

    let channel = Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["envparity.v1.ReportService", "envparity.v1.QueryService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for wanted in [
        "envparity.v1.QueryService",
        "envparity.v1.ReportService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in {names:?}"
        );
    }
    server.stop().await;
}

/// Heartbeats that arrive together are each stored: those that change the
/// engine state share commits and are acknowledged after them, the others
/// are acknowledged from memory and committed by the next tick or, at the
/// latest, when the server stops. After a restart every host shows the
/// time and engine state of its heartbeat. (What a crash may lose is
/// bounded: `server::state`'s tests.)
#[tokio::test]
async fn concurrent_heartbeats_are_each_stored_by_a_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::from_secs(3600)).await;
    let mut r = server.report().await;
    let hosts: Vec<String> = (0..40).map(|i| format!("h{i:02}")).collect();
    let mut hashes = Vec::new();
    for h in &hosts {
        let s = snapshot(h, "staging", 1, vec![container("shop", "aaa", &[])]);
        hashes.push(s.content_hash.clone());
        push(&mut r, s).await.unwrap();
    }
    // Two rounds: in the first every other host says its engine is
    // unreachable (a change: stored before the answer, with whatever
    // liveness is held); the second repeats each host's state (liveness
    // alone: held in memory until a commit). Both fields of each row must
    // come from the host's own heartbeats.
    let mut before = std::time::SystemTime::now();
    for _round in 0..2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        before = std::time::SystemTime::now();
        let mut beats = tokio::task::JoinSet::new();
        for (i, (h, hash)) in hosts.iter().zip(&hashes).enumerate() {
            let mut r = r.clone();
            let request = HeartbeatRequest {
                host_id: h.clone(),
                environment: "staging".into(),
                content_hash: hash.clone(),
                boot_id: "boot-1".into(),
                sequence: 2,
                sent_at: None,
                engine_state: if i.is_multiple_of(2) {
                    EngineState::Ok
                } else {
                    EngineState::Unreachable
                } as i32,
            };
            beats.spawn(async move { r.heartbeat(request).await.map(|_| ()) });
        }
        while let Some(acked) = beats.join_next().await {
            acked.unwrap().unwrap();
        }
    }
    server.stop().await;

    let server = Server::start(dir.path(), Duration::from_secs(3600)).await;
    let listed = server
        .query()
        .await
        .list_hosts(ListHostsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .hosts;
    assert_eq!(listed.len(), hosts.len());
    let before_ms = envparity_proto::time::unix_millis(before);
    for h in &listed {
        let seen = h.last_seen.expect("last_seen");
        let seen_ms = seen.seconds * 1000 + i64::from(seen.nanos / 1_000_000);
        assert!(
            seen_ms >= before_ms,
            "{}: last seen before its last heartbeat",
            h.host_id
        );
        let index: usize = h.host_id[1..].parse().unwrap();
        let expected = if index.is_multiple_of(2) {
            HostState::Fresh
        } else {
            HostState::EngineUnreachable
        };
        assert_eq!(h.state(), expected, "{}", h.host_id);
    }
    server.stop().await;
}
