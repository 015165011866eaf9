//! `envparity serve`: the gRPC server that ingests reports and answers
//! queries.

mod convert;
mod query;
mod report;
mod state;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use envparity_proto::v1::query_service_server::QueryServiceServer;
use envparity_proto::v1::report_service_server::ReportServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use query::QueryApi;
pub use report::ReportApi;
pub use state::{Fleet, FleetView, IngestError, PushOutcome};

use crate::store::SqliteStore;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// A host not heard from for this long is stale.
    pub stale_after: Duration,
}

/// A server running in the background on the current tokio runtime: for
/// embedding the aggregator (tests, load generators) without a process.
#[derive(Debug)]
pub struct Background {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Background {
    /// Starts serving on `listener`; must be called within a tokio runtime.
    pub fn spawn(listener: TcpListener, config: ServeConfig) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("listener address")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async {
            stopped.await.ok();
        }));
        Ok(Background { addr, stop, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully (in-flight requests finish) and returns how the
    /// server ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        // The server may already have ended (then its result says why).
        let _ = self.stop.send(());
        self.task.await.context("server task")?
    }
}

/// Binds `config.listen` and serves until `shutdown` resolves.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve(listener, config, shutdown).await
}

/// Opens the store and serves on `listener` until `shutdown` resolves.
/// In-flight requests finish before this returns.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&data_dir))
        .await
        .context("store task")??;
    let db_path = store.path().to_owned();
    let fleet = Arc::new(Fleet::load(Arc::new(store), config.stale_after)?);
    let local = listener.local_addr().context("listener address")?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ReportServiceServer<ReportApi>>().await;
    health.set_serving::<QueryServiceServer<QueryApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(envparity_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("gRPC reflection service")?;

    let max = validate::limits::MAX_MESSAGE_BYTES;
    let report =
        ReportServiceServer::new(ReportApi::new(Arc::clone(&fleet))).max_decoding_message_size(max);
    let query = QueryServiceServer::new(QueryApi::new(Arc::clone(&fleet)))
        .max_encoding_message_size(64 * 1024 * 1024);

    tracing::info!(
        listen = %local,
        database = %db_path.display(),
        hosts = fleet.host_count(),
        stale_after = %humantime::format_duration(config.stale_after),
        "envparity aggregator listening"
    );
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(report)
        .add_service(query)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .context("gRPC server")?;
    tracing::info!("envparity aggregator stopped");
    Ok(())
}
