//! A raw HTTP/2 client over TLS without a client certificate: what an
//! attacker who can reach the aggregator's port, and holds no credentials,
//! can do to it. It opens connections and streams, declares gRPC messages
//! it never finishes sending and sits on idle connections — things no
//! well-behaved gRPC client library would do, so the tests of the
//! aggregator's bounds use this instead of tonic.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

/// Something went wrong on the attacking side.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A TLS client configuration trusting the fleet CA in `ca_pem`, offering
/// `h2`, presenting no certificate.
pub fn anonymous_tls(ca_pem: &Path) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca_pem)?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS connection to `addr` (the server certificate names 127.0.0.1),
/// handshake done, no HTTP/2 yet.
pub async fn tls_connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(addr.ip().to_string())?;
    Ok(tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await?)
}

/// An HTTP/2 connection whose driver runs in the background.
#[derive(Debug)]
pub struct Connection {
    send: h2::client::SendRequest<Bytes>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// What the server answered on one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Response headers with this `grpc-status` (`None`: none in the
    /// headers; a trailers-only answer carries it there).
    Status(Option<String>),
    /// The stream or the connection was reset or closed.
    Reset(String),
}

impl Connection {
    /// HTTP/2 over `io`.
    pub async fn handshake<IO>(io: IO) -> Result<Self, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = h2::client::handshake(io).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { send, driver })
    }

    /// Whether the server closed the connection within `within` (a GOAWAY
    /// with no stream left open, or the socket closed).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, &mut self.driver).await.is_ok()
    }

    /// Opens a stream to the gRPC method `path`, sends a message header
    /// declaring `declared` bytes, then `sent` bytes of it (as flow control
    /// allows, within `send_for`), and never ends the stream. Returns what
    /// the server answered within `answer_within`.
    pub async fn unfinished_call(
        &self,
        path: &str,
        declared: u32,
        sent: usize,
        send_for: Duration,
        answer_within: Duration,
    ) -> Result<(Answer, h2::SendStream<Bytes>), Error> {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("https://127.0.0.1{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let mut ready = self.send.clone().ready().await?;
        let (response, mut stream) = ready.send_request(request, false)?;
        let mut header = vec![0u8];
        header.extend_from_slice(&declared.to_be_bytes());
        stream.send_data(Bytes::from(header), false)?;
        let chunk = Bytes::from(vec![0x42u8; 16 * 1024]);
        let sending = async {
            let mut left = sent;
            while left > 0 {
                let n = left.min(chunk.len());
                stream.reserve_capacity(n);
                match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                    Some(Ok(granted)) if granted > 0 => {
                        let n = n.min(granted);
                        if stream.send_data(chunk.slice(..n), false).is_err() {
                            return;
                        }
                        left -= n;
                    }
                    _ => return,
                }
            }
        };
        let _ = tokio::time::timeout(send_for, sending).await;
        let answer = match tokio::time::timeout(answer_within, response).await {
            Ok(Ok(r)) => Answer::Status(
                r.headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Ok(Err(e)) => Answer::Reset(e.to_string()),
            Err(_) => Answer::Reset("no answer in time".to_owned()),
        };
        Ok((answer, stream))
    }
}

/// Whether the server closed `io` within `within`: reading gives end of
/// stream or an error (rather than nothing, which is what an open idle
/// connection gives).
pub async fn closed_within<IO: AsyncRead + Unpin>(io: &mut IO, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// The resident set size of process `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Raises this process's soft limit on open files to its hard limit, so a
/// test can hold thousands of connections. Returns the new soft limit.
pub fn raise_open_files() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
