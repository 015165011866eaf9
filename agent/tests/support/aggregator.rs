//! An in-process aggregator that records what agents send.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envparity_proto::v1::report_service_server::{ReportService, ReportServiceServer};
use envparity_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, HostSnapshot, PushSnapshotRequest, PushSnapshotResponse,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Recorded {
    pushes: Vec<HostSnapshot>,
    heartbeats: Vec<HeartbeatRequest>,
}

#[derive(Clone, Default)]
struct Service {
    recorded: Arc<Mutex<Recorded>>,
    snapshot_needed: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl ReportService for Service {
    async fn push_snapshot(
        &self,
        request: Request<PushSnapshotRequest>,
    ) -> Result<Response<PushSnapshotResponse>, Status> {
        let snapshot = request
            .into_inner()
            .snapshot
            .ok_or_else(|| Status::invalid_argument("snapshot is required"))?;
        let content_hash = snapshot.content_hash.clone();
        self.snapshot_needed.store(false, Ordering::SeqCst);
        self.recorded.lock().unwrap().pushes.push(snapshot);
        Ok(Response::new(PushSnapshotResponse {
            content_hash,
            duplicate: false,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.recorded
            .lock()
            .unwrap()
            .heartbeats
            .push(request.into_inner());
        Ok(Response::new(HeartbeatResponse {
            snapshot_needed: self.snapshot_needed.load(Ordering::SeqCst),
        }))
    }
}

/// A running fake aggregator; stops when dropped.
pub struct FakeAggregator {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    service: Service,
    _stop: oneshot::Sender<()>,
}

impl FakeAggregator {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("binding the fake aggregator");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = Service::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(ReportServiceServer::new(service.clone()))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                stopped.await.ok();
            });
        tokio::spawn(server);
        Self {
            url,
            service,
            _stop: stop,
        }
    }

    /// Every snapshot pushed so far, in arrival order.
    pub fn pushes(&self) -> Vec<HostSnapshot> {
        self.service.recorded.lock().unwrap().pushes.clone()
    }

    /// Every heartbeat so far, in arrival order.
    pub fn heartbeats(&self) -> Vec<HeartbeatRequest> {
        self.service.recorded.lock().unwrap().heartbeats.clone()
    }

    /// Answers the next heartbeats with `snapshot_needed` until a push.
    pub fn ask_for_snapshot(&self) {
        self.service.snapshot_needed.store(true, Ordering::SeqCst);
    }

    /// Waits up to `timeout` for a push matching `wanted`; panics naming
    /// `what` otherwise.
    pub async fn wait_for_push(
        &self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&HostSnapshot) -> bool,
    ) -> HostSnapshot {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.pushes().into_iter().find(|s| wanted(s)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no push with {what} within {timeout:?}; got {} pushes",
                self.pushes().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `timeout` until at least `n` heartbeats arrived.
    pub async fn wait_for_heartbeats(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.heartbeats().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} heartbeats within {timeout:?}",
                self.heartbeats().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
