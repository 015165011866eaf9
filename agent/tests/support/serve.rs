//! The real aggregator (`envparity serve`), in-process on a loopback port,
//! with a real SQLite store in a temp dir. Tests see what the agent
//! delivered the way an operator does: through `QueryService`. What the
//! query API does not show (sequence numbers, boot id, content hash) is read
//! from the aggregator's own store once it has stopped.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use envparity_aggregator::server::{Background, ServeConfig};
use envparity_aggregator::store::{SqliteStore, Store};
use envparity_proto::time::from_timestamp;
use envparity_proto::v1::query_service_client::QueryServiceClient;
use envparity_proto::v1::{
    GetServiceRequest, HostSnapshot, HostSummary, ListHostsRequest, ServiceInstance,
};
use prost_types::Timestamp;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint};

use super::{HOST_ID, runtime};

/// Long enough that a host never turns stale during a test: freshness is
/// not what these tests are about.
const STALE_AFTER: Duration = Duration::from_secs(300);

/// How long a stopping aggregator may take to drain.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running aggregator. Dropping it drops its runtime, which ends the
/// server at once, and deletes its data.
pub struct Aggregator {
    runtime: Runtime,
    addr: SocketAddr,
    data_dir: tempfile::TempDir,
    running: Option<Background>,
    query: QueryServiceClient<Channel>,
}

impl Aggregator {
    /// Starts on a free loopback port with an empty store.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts on `127.0.0.1:port` with an empty store, e.g. where an agent
    /// is already configured to report, or where a previous aggregator ran
    /// (a new one that has lost all state).
    pub fn start_on(port: u16) -> Self {
        let runtime = runtime();
        let listener = runtime
            .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .unwrap_or_else(|e| panic!("binding the aggregator to 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().expect("the aggregator's address");
        let data_dir = tempfile::tempdir().expect("creating the aggregator's data dir");
        let config = ServeConfig {
            stale_after: STALE_AFTER,
            plaintext: envparity_proto::transport::Plaintext::Loopback,
            ..ServeConfig::new(addr, data_dir.path().to_owned())
        };
        let running = {
            let _in_runtime = runtime.enter();
            Background::spawn(listener, config).expect("starting the aggregator")
        };
        let query = {
            let _in_runtime = runtime.enter();
            let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("a valid URL");
            QueryServiceClient::new(endpoint.connect_lazy())
        };
        Self {
            runtime,
            addr,
            data_dir,
            running: Some(running),
            query,
        }
    }

    /// `http://127.0.0.1:PORT`, what agents report to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The test host as `ListHosts` shows it, if it is known.
    pub fn host(&self) -> Option<HostSummary> {
        let mut query = self.query.clone();
        let hosts = self
            .runtime
            .block_on(query.list_hosts(ListHostsRequest::default()))
            .unwrap_or_else(|status| panic!("ListHosts on {}: {status}", self.url()))
            .into_inner()
            .hosts;
        hosts.into_iter().find(|h| h.host_id == HOST_ID)
    }

    /// Polls `ListHosts` until the test host is listed and matches `wanted`;
    /// panics naming `what` and the last listing otherwise.
    pub fn wait_for_host(
        &self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&HostSummary) -> bool,
    ) -> HostSummary {
        let mut last = None;
        envparity_tests::wait_for(timeout, what, || {
            last = self.host();
            Ok(last.clone().filter(&wanted))
        })
        .unwrap_or_else(|error| panic!("{error}; the host was last listed as {last:#?}"))
    }

    /// Every running replica of `service` the aggregator holds (`GetService`),
    /// each with its container as stored; empty for an unknown service.
    pub fn replicas(&self, service: &str) -> Vec<ServiceInstance> {
        let mut query = self.query.clone();
        let request = GetServiceRequest {
            service: service.to_owned(),
        };
        match self.runtime.block_on(query.get_service(request)) {
            Ok(response) => response.into_inner().instances,
            Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
            Err(status) => panic!("GetService {service} on {}: {status}", self.url()),
        }
    }

    /// Polls `GetService` until `service` has a replica on the test host;
    /// returns it.
    pub fn wait_for_replica(&self, service: &str, timeout: Duration) -> ServiceInstance {
        envparity_tests::wait_for(
            timeout,
            format!("the aggregator to list a replica of {service} on {HOST_ID}"),
            || {
                Ok(self
                    .replicas(service)
                    .into_iter()
                    .find(|r| r.host_id == HOST_ID))
            },
        )
        .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Shuts it down gracefully (in-flight requests finish); its store stays
    /// readable through [`Aggregator::stored`]. Panics if serving failed.
    pub fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.runtime
            .block_on(async { tokio::time::timeout(STOP_TIMEOUT, running.stop()).await })
            .unwrap_or_else(|_| panic!("the aggregator did not stop within {STOP_TIMEOUT:?}"))
            .unwrap_or_else(|error| panic!("the aggregator failed: {error:#}"));
    }

    /// The test host's snapshot exactly as the aggregator stored it. Only
    /// after [`Aggregator::stop`], so nothing changes while it is read.
    pub fn stored(&self) -> HostSnapshot {
        assert!(
            self.running.is_none(),
            "read the store after stopping the aggregator"
        );
        let store =
            SqliteStore::open(self.data_dir.path()).expect("opening the aggregator's store");
        let hosts = store.load_hosts().expect("loading the stored hosts");
        let host = hosts
            .into_iter()
            .find(|h| h.host_id() == HOST_ID)
            .unwrap_or_else(|| panic!("the aggregator stored nothing for {HOST_ID}"));
        (*host.snapshot).clone()
    }
}

/// A timestamp of a query answer as a `SystemTime`; panics when absent.
pub fn time(timestamp: Option<&Timestamp>) -> SystemTime {
    timestamp
        .and_then(from_timestamp)
        .expect("the aggregator always sets this timestamp")
}
