//! An aggregator downgraded under a running agent: one that predates
//! content hashes made by container (`v2:`). The agent met the current
//! aggregator first, so it hashes by container; the older one refuses such
//! a hash as invalid, and the agent must hash whole again rather than leave
//! its host unseen.
//!
//! The older aggregator is a release CI cannot build (this checkout holds
//! only the current one), so [`Older`] stands in for it over the real gRPC
//! API, doing what it did and nothing else: it takes only hex SHA-256
//! content hashes (`InvalidArgument` otherwise, as its validation did),
//! checks that a snapshot makes its hash, answers heartbeats with
//! `snapshot_needed` when the content differs from what it holds, never
//! says `hashes_by_container`, and applies no delta (it answers
//! `FailedPrecondition`, as an aggregator that holds another base does, so
//! the agent sends the snapshot whole).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use envparity_proto::hash::{HashForm, content_hash, makes_its_hash};
use envparity_proto::v1::report_service_server::{ReportService, ReportServiceServer};
use envparity_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, HostSnapshot, PushDeltaRequest, PushSnapshotRequest,
    PushSnapshotResponse,
};
use envparity_tests::{DockerHost, ImageSpec, Result, Run, wait_for};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::support::agent::Agent;
use crate::support::serve::Aggregator;
use crate::support::{config, runtime};

/// The image the containers here run.
const IMAGE: &str = "envparity-test:1";

/// What the older aggregator saw.
#[derive(Debug, Default)]
struct Seen {
    /// The snapshot it holds (the last one it took).
    stored: Option<HostSnapshot>,
    /// Every snapshot it took, in order.
    taken: Vec<HostSnapshot>,
    /// The content hashes it refused as invalid, in order.
    refused: Vec<String>,
    /// Heartbeats answered since it last took a snapshot.
    heartbeats_since: u32,
}

/// The report API as an aggregator before `v2:` hashes answered it.
#[derive(Debug, Clone, Default)]
struct OlderApi {
    seen: Arc<Mutex<Seen>>,
}

impl OlderApi {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        // A failed test panics holding it; what it saw is still worth showing.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its validation of a content hash: a hex SHA-256, nothing else.
    fn check_hash(&self, snapshot: &HostSnapshot) -> std::result::Result<(), Status> {
        let hash = &snapshot.content_hash;
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(());
        }
        self.seen().refused.push(hash.clone());
        Err(Status::invalid_argument(format!(
            "invalid snapshot from host {:?}: content_hash {hash:?} is not a hex SHA-256",
            snapshot.host_id
        )))
    }
}

#[tonic::async_trait]
impl ReportService for OlderApi {
    async fn push_snapshot(
        &self,
        request: Request<PushSnapshotRequest>,
    ) -> std::result::Result<Response<PushSnapshotResponse>, Status> {
        let snapshot = request
            .into_inner()
            .snapshot
            .ok_or_else(|| Status::invalid_argument("invalid snapshot: none sent"))?;
        self.check_hash(&snapshot)?;
        let made = content_hash(&snapshot);
        if made != snapshot.content_hash {
            return Err(Status::invalid_argument(format!(
                "invalid snapshot: its content hashes to {made}, not {} as sent",
                snapshot.content_hash
            )));
        }
        let mut seen = self.seen();
        let duplicate = seen
            .stored
            .as_ref()
            .is_some_and(|s| s.content_hash == snapshot.content_hash);
        seen.stored = Some(snapshot.clone());
        seen.taken.push(snapshot.clone());
        seen.heartbeats_since = 0;
        Ok(Response::new(PushSnapshotResponse {
            content_hash: snapshot.content_hash,
            duplicate,
            hashes_by_container: false,
        }))
    }

    async fn push_delta(
        &self,
        request: Request<PushDeltaRequest>,
    ) -> std::result::Result<Response<PushSnapshotResponse>, Status> {
        let delta = request.into_inner();
        let header = delta
            .snapshot
            .ok_or_else(|| Status::invalid_argument("invalid delta: no snapshot header"))?;
        self.check_hash(&header)?;
        Err(Status::failed_precondition(format!(
            "the delta's base {} is not the content held for {:?}; send the snapshot whole",
            delta.base_content_hash, header.host_id
        )))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> std::result::Result<Response<HeartbeatResponse>, Status> {
        let heartbeat = request.into_inner();
        let mut seen = self.seen();
        seen.heartbeats_since += 1;
        let held = seen.stored.as_ref().map(|s| s.content_hash.as_str());
        Ok(Response::new(HeartbeatResponse {
            snapshot_needed: held != Some(heartbeat.content_hash.as_str()),
        }))
    }
}

/// The older aggregator, serving on a loopback port of its own runtime.
struct Older {
    /// Runs the server; dropping it ends the server.
    _runtime: Runtime,
    api: OlderApi,
    stop: Option<oneshot::Sender<()>>,
}

impl Older {
    /// Serves on `127.0.0.1:port` (where the current aggregator ran).
    fn start_on(port: u16) -> Self {
        let runtime = runtime();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .unwrap_or_else(|e| panic!("binding the older aggregator to 127.0.0.1:{port}: {e}"));
        let api = OlderApi::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(ReportServiceServer::new(api.clone()))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    stopped.await.ok();
                },
            );
        runtime.spawn(server);
        Self {
            _runtime: runtime,
            api,
            stop: Some(stop),
        }
    }

    /// Polls what it saw until `wanted` returns something; panics naming
    /// `what` and what it saw otherwise.
    fn wait<T>(&self, what: &str, wanted: impl Fn(&Seen) -> Option<T>) -> T {
        wait_for(Duration::from_secs(15), what, || {
            Ok(wanted(&self.api.seen()))
        })
        .unwrap_or_else(|error| panic!("{error}; the older aggregator saw {:#?}", self.seen()))
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.api.seen()
    }
}

impl Drop for Older {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn is_whole_and_made(snapshot: &HostSnapshot) -> bool {
    HashForm::of(&snapshot.content_hash) == Some(HashForm::Whole) && makes_its_hash(snapshot)
}

/// The agent hashes by container for the current aggregator; downgraded to
/// one that refuses such hashes, it reports the same content hashed whole
/// (after one refusal, not at every heartbeat), and its next change too.
#[test]
fn an_agent_hashes_whole_again_for_an_older_aggregator() -> Result<()> {
    let engine = DockerHost::start("downgrade")?;
    engine.import_image(IMAGE, ImageSpec::new())?;
    engine.run(Run::new(IMAGE).name("web"))?;
    let mut current = Aggregator::start();
    let port = current.port();
    let agent = Agent::start(config(&current.url(), &engine.docker_host()));
    current.wait_for_host("the first snapshot", Duration::from_secs(10), |h| {
        h.container_count == 1
    });
    // The first acknowledgement says hashes_by_container: the next change
    // travels hashed so.
    engine.run(Run::new(IMAGE).name("api"))?;
    current.wait_for_host("the second container", Duration::from_secs(10), |h| {
        h.container_count == 2
    });
    current.stop();
    let held = current.stored();
    assert_eq!(
        HashForm::of(&held.content_hash),
        Some(HashForm::ByContainer),
        "the agent did not hash by container for the current aggregator: {}",
        held.content_hash
    );
    drop(current);

    let older = Older::start_on(port);
    let taken = older.wait(
        "the older aggregator to take the agent's content hashed whole",
        |seen| seen.stored.clone(),
    );
    assert!(
        is_whole_and_made(&taken),
        "taken: {:?} with {} containers",
        taken.content_hash,
        taken.containers.len()
    );
    assert_eq!(taken.containers.len(), 2);
    assert_eq!(
        older.seen().refused.first().map(|h| HashForm::of(h)),
        Some(Some(HashForm::ByContainer)),
        "the older aggregator refused no hash made by container, so the fallback was not what reported the host: {:#?}",
        older.seen()
    );
    // Settled: heartbeats of the content it holds, no refusal since.
    let refused = older.seen().refused.len();
    older.wait("three heartbeats of the content held", |seen| {
        (seen.heartbeats_since >= 3).then_some(())
    });
    assert_eq!(older.seen().refused.len(), refused, "{:#?}", older.seen());
    assert_eq!(older.seen().taken.len(), 1, "{:#?}", older.seen().taken);

    // The next change goes hashed whole at once.
    engine.run(Run::new(IMAGE).name("worker"))?;
    let changed = older.wait("the third container", |seen| {
        seen.stored.clone().filter(|s| s.containers.len() == 3)
    });
    assert!(is_whole_and_made(&changed), "{:?}", changed.content_hash);
    assert_eq!(older.seen().refused.len(), refused, "{:#?}", older.seen());
    agent.stop();
    Ok(())
}
