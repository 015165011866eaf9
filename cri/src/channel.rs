//! A gRPC channel over a unix socket, the way runtimes serve the CRI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// A socket that could not be connected to, naming it.
#[derive(Debug, thiserror::Error)]
#[error("connect to {}: {source}", path.display())]
pub struct ConnectError {
    /// The socket.
    pub path: PathBuf,
    /// Why.
    pub source: tonic::transport::Error,
}

/// A channel to the gRPC server on the unix socket at `path`, connected now
/// (so a missing socket is an error here, not at the first call), within
/// `connect_timeout`. `call_timeout` bounds every call made on it, up to its
/// answer's headers: leave it `None` for a channel that carries a long-lived
/// stream (containerd's events), which it would otherwise cut.
pub async fn connect_unix(
    path: &Path,
    connect_timeout: Duration,
    call_timeout: Option<Duration>,
) -> Result<Channel, ConnectError> {
    let socket = path.to_owned();
    // The URI is required by the endpoint but never dialled: the connector
    // below opens the socket.
    let mut endpoint = Endpoint::from_static("http://localhost").connect_timeout(connect_timeout);
    if let Some(timeout) = call_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    endpoint
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .map_err(|source| ConnectError {
            path: path.to_owned(),
            source,
        })
}

/// `request` with the containerd namespace header set to `namespace`.
pub fn in_namespace<T>(request: T, namespace: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    if let Ok(value) = namespace.parse() {
        request
            .metadata_mut()
            .insert(crate::NAMESPACE_HEADER, value);
    }
    request
}
