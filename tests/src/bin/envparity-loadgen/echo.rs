//! The baseline the load generator measures the aggregator against: a
//! bare tonic server of the same report API (`--server echo`), which
//! acknowledges every call and does nothing else.

use std::path::Path;

use envparity_proto::v1::report_service_server::{ReportService, ReportServiceServer};
use envparity_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, HostSnapshot, PushDeltaRequest, PushSnapshotRequest,
    PushSnapshotResponse,
};

use super::BoxResult;

/// A bare tonic server of the report API: it acknowledges every call at once,
/// with the response the aggregator would give, and does nothing else (no
/// authorisation, validation, store or evaluation).
#[derive(Debug, Clone, Copy)]
struct Echo;

#[tonic::async_trait]
impl ReportService for Echo {
    async fn push_snapshot(
        &self,
        request: tonic::Request<PushSnapshotRequest>,
    ) -> Result<tonic::Response<PushSnapshotResponse>, tonic::Status> {
        Ok(acknowledged(request.into_inner().snapshot))
    }

    async fn push_delta(
        &self,
        request: tonic::Request<PushDeltaRequest>,
    ) -> Result<tonic::Response<PushSnapshotResponse>, tonic::Status> {
        Ok(acknowledged(request.into_inner().snapshot))
    }

    async fn heartbeat(
        &self,
        _request: tonic::Request<HeartbeatRequest>,
    ) -> Result<tonic::Response<HeartbeatResponse>, tonic::Status> {
        Ok(tonic::Response::new(HeartbeatResponse {
            snapshot_needed: false,
        }))
    }
}

/// What the aggregator answers for a stored `snapshot` (whole, or a delta's
/// header).
fn acknowledged(snapshot: Option<HostSnapshot>) -> tonic::Response<PushSnapshotResponse> {
    tonic::Response::new(PushSnapshotResponse {
        content_hash: snapshot.map(|s| s.content_hash).unwrap_or_default(),
        duplicate: false,
        hashes_by_container: false,
    })
}

/// Starts the echo server on its own runtime and threads; returns its address.
pub(super) fn start_echo(threads: usize, tls_dir: Option<&Path>) -> BoxResult<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let tls = match tls_dir {
        Some(dir) => {
            let read = |f: &str| std::fs::read_to_string(dir.join(f));
            Some(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(
                        read("server.pem")?,
                        read("server-key.pem")?,
                    ))
                    .client_ca_root(tonic::transport::Certificate::from_pem(read("ca.pem")?)),
            )
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("echo")
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                builder = builder.tls_config(tls).expect("echo server TLS");
            }
            let service =
                ReportServiceServer::new(Echo).max_decoding_message_size(16 * 1024 * 1024);
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            if let Err(e) = builder
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
            {
                eprintln!("echo server: {e}");
            }
        });
    });
    let scheme = if tls_dir.is_some() { "https" } else { "http" };
    Ok(format!("{scheme}://127.0.0.1:{port}"))
}
