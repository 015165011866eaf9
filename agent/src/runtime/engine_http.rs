//! The agent's own HTTP client for the Docker engine API, reading every
//! answer in bounded memory.
//!
//! A general client (bollard) buffers each answer whole, then decodes it: a
//! 50 MiB container list took the agent to 293 MiB, and a 300 MiB one got
//! it killed. Here:
//! - the container list is read as it arrives and only the ids are kept
//!   ([`super::framing::IdScanner`]): memory does not follow its size;
//! - any other answer is read up to a cap ([`MAX_ANSWER_BYTES`] for an
//!   inspect, less for the small ones); over it the call fails with
//!   [`EngineError::TooLarge`], naming the call and the cap;
//! - the event stream is split into lines of at most [`MAX_EVENT_BYTES`];
//!   a longer one is skipped, logged, and turned into a "re-collect
//!   everything" event, since what it said is unknown.
//!
//! - an archive (`GET /containers/{id}/archive`, the configuration files)
//!   is handed over as it arrives and cut at the caller's cap.
//!
//! Connections are kept alive and reused. A collection makes hundreds of
//! calls (an inspect per container; a stat per mounted configuration file,
//! 500 with 100 containers of 5 files each), and a new Unix connection with
//! its HTTP/1 handshake and connection task per call put about half of the
//! agent's CPU in the kernel (connects, task switches). So:
//! - a connection whose answer was read to its end goes back to a small
//!   idle set once hyper says it is ready for another request; an answer
//!   not read whole (over a cap, a stream stopped early, an error) closes
//!   its connection instead, so no half-read answer is ever reused;
//! - a collection read over kept-alive connections counts only once a new
//!   connection is still taken after it ([`EngineHttp::accepts_connections`]):
//!   a stopping engine refuses new ones first, while the kept-alive ones
//!   still answer, with every container stopped (no false removals across
//!   an engine restart);
//! - at most [`MAX_IDLE`] idle connections are kept: the callers run at
//!   most [`CONCURRENT_CALLS`] calls at a time, so more would never be
//!   used, only held open in the engine;
//! - an idle connection older than [`IDLE_TIMEOUT`] is not reused: it is
//!   closed when the next call or return looks at the set (no timer runs
//!   for it, so up to [`MAX_IDLE`] idle connections stay open until the
//!   next call, a resync at the latest). Connections left idle between
//!   resyncs are thus never trusted again, whatever idle limit the engine
//!   or a socket proxy in front of it applies;
//! - one the engine closed (a restart, its own idle limit) is dropped
//!   unused when hyper has noticed; when it has not, the request fails on
//!   it before any answer, and then, once, it is sent again on a new
//!   connection (the agent only sends `GET` and `HEAD`, which may be
//!   repeated), and the other idle connections, likely as dead, are
//!   dropped too. A new connection that fails is not retried;
//! - the event stream, which holds its connection for as long as it runs,
//!   has a connection of its own, never taken from or given to the set.
//!
//! [`EngineHttp::connections_made`] and [`EngineHttp::requests_sent`] count
//! the connections opened and the requests sent, for tests and diagnostics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::framing::{IdScanner, Lines};

/// The most bytes read of one answer other than the container list and the
/// event stream: a container whose labels hold 18 MB (300 labels of 60 KB)
/// still fits; anything larger is refused rather than held.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// The most bytes read of `/version` and `/info`.
pub const MAX_FACTS_BYTES: usize = 1024 * 1024;
/// The longest event line kept.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// The most container ids kept from one list: four times what one report
/// may carry ([`envparity_proto::limits::MAX_CONTAINERS`]); the agent's
/// limiter leaves out and counts what is over that.
pub const MAX_LISTED: usize = 4 * envparity_proto::limits::MAX_CONTAINERS;

/// How many calls a collection makes at once (container and image
/// inspects, configuration-file reads): enough to hide latency on a host
/// with hundreds of containers, few enough not to load a busy engine.
pub const CONCURRENT_CALLS: usize = 4;
/// The most idle connections kept for reuse (see the module doc).
pub const MAX_IDLE: usize = CONCURRENT_CALLS;
/// How long an idle connection may wait to be reused (see the module doc).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection whose answer was read whole may take to be ready
/// for another request before it is closed instead of kept.
const READY_WAIT: Duration = Duration::from_secs(1);

/// Why a call to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The engine could not be reached or the connection broke.
    #[error("{0}")]
    Connection(String),
    /// No answer (headers) within the engine timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The engine answered an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// The engine's message (bounded).
        message: String,
    },
    /// The answer is over the cap for this call.
    #[error("the answer is over {cap} bytes, the agent's limit for it; not read further")]
    TooLarge {
        /// The cap, in bytes.
        cap: usize,
    },
    /// The answer is not what the API documents.
    #[error("unexpected answer: {0}")]
    Malformed(String),
}

impl HttpError {
    /// Whether the engine answered 404 (the object is gone).
    pub fn is_not_found(&self) -> bool {
        matches!(self, HttpError::Status { status: 404, .. })
    }
}

/// Where the engine listens.
#[derive(Debug, Clone)]
enum Address {
    Unix(PathBuf),
    Tcp(String),
}

/// The sending half of one HTTP/1 connection to the engine.
type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>;

/// The idle connections kept for reuse, shared by a client's clones.
#[derive(Debug, Default)]
struct Pool {
    /// Most recently returned last, with when it was returned.
    idle: Mutex<Vec<(Sender, Instant)>>,
    /// Connections opened so far.
    made: AtomicU64,
    /// Requests sent so far (a retried one twice).
    sent: AtomicU64,
}

impl Pool {
    /// The most recently returned idle connection that hyper says is ready
    /// and that has not waited past [`IDLE_TIMEOUT`]; those passed over
    /// are closed.
    fn take(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((sender, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps `sender` for reuse unless [`MAX_IDLE`] are kept already;
    /// closes those that waited too long or that the engine closed.
    fn put(&self, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|(s, since)| since.elapsed() < IDLE_TIMEOUT && !s.is_closed());
        if idle.len() < MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }

    /// Closes every idle connection.
    fn clear(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// A connection lent to one call: back to the pool by [`Lease::release`]
/// once its answer was read to the end; closed when dropped.
struct Lease {
    sender: Sender,
    pool: Arc<Pool>,
}

impl Lease {
    /// Returns the connection for reuse once hyper says it is ready for
    /// another request (it is not while the answer's end is in flight, and
    /// never again after the engine said `Connection: close`).
    async fn release(mut self) {
        if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, self.sender.ready()).await {
            self.pool.put(self.sender);
        }
    }
}

/// Whether a call may take a kept-alive connection and give it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reuse {
    /// From and to the pool: every call that reads its answer whole.
    Pooled,
    /// A connection of its own, closed after: the event stream.
    Own,
}

/// A client for one engine, speaking the API version it negotiated. Its
/// clones share one set of idle connections.
#[derive(Debug, Clone)]
pub struct EngineHttp {
    address: Address,
    /// `/v1.41`, or empty before negotiation.
    prefix: String,
    timeout: Duration,
    pool: Arc<Pool>,
}

impl EngineHttp {
    /// A client for `addr` (`unix:///path`, `tcp://host:port` or
    /// `http://host:port`), not yet negotiated.
    pub fn new(addr: &str, timeout: Duration) -> Result<Self, HttpError> {
        let address = if let Some(path) = addr.strip_prefix("unix://") {
            Address::Unix(PathBuf::from(path))
        } else if let Some(hostport) = addr
            .strip_prefix("tcp://")
            .or_else(|| addr.strip_prefix("http://"))
        {
            Address::Tcp(hostport.trim_end_matches('/').to_owned())
        } else {
            return Err(HttpError::Connection(format!(
                "unsupported engine address {addr:?}: use unix:///path, tcp://host:port or http://host:port"
            )));
        };
        Ok(EngineHttp {
            address,
            prefix: String::new(),
            timeout,
            pool: Arc::default(),
        })
    }

    /// How many connections to the engine this client and its clones have
    /// opened: with connections reused, far fewer than calls made.
    pub fn connections_made(&self) -> u64 {
        self.pool.made.load(Ordering::Relaxed)
    }

    /// How many requests this client and its clones have sent (one sent
    /// again after a kept-alive connection failed counts twice).
    pub fn requests_sent(&self) -> u64 {
        self.pool.sent.load(Ordering::Relaxed)
    }

    /// A new connection to the engine.
    async fn connect(&self) -> Result<Sender, HttpError> {
        let sender = match &self.address {
            Address::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
                    HttpError::Connection(format!("connect to {}: {e}", socket.display()))
                })?;
                handshake(stream).await?
            }
            Address::Tcp(hostport) => {
                let stream = tokio::net::TcpStream::connect(hostport.as_str())
                    .await
                    .map_err(|e| HttpError::Connection(format!("connect to {hostport}: {e}")))?;
                handshake(stream).await?
            }
        };
        self.pool.made.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    /// Asks the engine which API version it speaks (`GET /version`, which
    /// every version answers unprefixed) and uses it from then on, so that
    /// older engines, which refuse newer clients, work too.
    pub async fn negotiate(mut self) -> Result<Self, HttpError> {
        #[derive(serde::Deserialize)]
        struct Version {
            #[serde(rename = "ApiVersion")]
            api_version: Option<String>,
        }
        let v: Version = self.get_json("/version", MAX_FACTS_BYTES).await?;
        let api = v
            .api_version
            .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| HttpError::Malformed("/version names no ApiVersion".to_owned()))?;
        self.prefix = format!("/v{api}");
        Ok(self)
    }

    /// Sends `GET path` and returns the answer's head and body once the
    /// headers arrived (within the timeout), with the connection to release
    /// once the body was read whole. An error status is read (its message
    /// bounded) and returned as [`HttpError::Status`].
    async fn get(&self, path: &str) -> Result<(hyper::Response<Incoming>, Lease), HttpError> {
        self.send(hyper::Method::GET, path, Reuse::Pooled).await
    }

    /// [`Self::get`] with another read-only method (`HEAD`): the agent never
    /// sends anything else, so the read-only socket proxy suffices. With
    /// [`Reuse::Pooled`] a kept-alive connection is used when one is ready,
    /// and a request that fails on it before any answer is sent once more
    /// on a new connection (see the module doc).
    async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        reuse: Reuse,
    ) -> Result<(hyper::Response<Incoming>, Lease), HttpError> {
        let uri = format!("{}{path}", self.prefix);
        let request = || {
            self.pool.sent.fetch_add(1, Ordering::Relaxed);
            hyper::Request::builder()
                .method(method.clone())
                .uri(uri.as_str())
                .header(hyper::header::HOST, "docker")
                .body(http_body_util::Empty::<Bytes>::new())
                .map_err(|e| HttpError::Connection(format!("request {uri}: {e}")))
        };
        let call = async {
            if reuse == Reuse::Pooled
                && let Some(mut sender) = self.pool.take()
            {
                match sender.send_request(request()?).await {
                    Ok(response) => return Ok((response, sender)),
                    Err(error) => {
                        // No answer on it: the engine closed it, so the
                        // others idle since are likely closed too.
                        tracing::debug!(%error, %method, "a kept-alive connection to the engine failed before answering; sending again on a new one");
                        self.pool.clear();
                    }
                }
            }
            let mut sender = self.connect().await?;
            let response = sender
                .send_request(request()?)
                .await
                .map_err(|e| HttpError::Connection(format!("{method} {uri}: {e}")))?;
            Ok((response, sender))
        };
        let (response, sender) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))??;
        let lease = Lease {
            sender,
            pool: self.pool.clone(),
        };
        let status = response.status();
        if status.is_success() {
            return Ok((response, lease));
        }
        let body = read_capped(response.into_body(), 4096).await;
        let message = match body {
            Ok(bytes) => {
                if reuse == Reuse::Pooled {
                    lease.release().await;
                }
                message_of(&bytes)
            }
            Err(HttpError::TooLarge { .. }) => "(an error message over 4 KiB)".to_owned(),
            Err(e) => e.to_string(),
        };
        Err(HttpError::Status {
            status: status.as_u16(),
            message,
        })
    }

    /// `GET path`, its body read up to `cap` bytes and decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        cap: usize,
    ) -> Result<T, HttpError> {
        let (response, lease) = self.get(path).await?;
        let body = tokio::time::timeout(self.timeout, read_capped(response.into_body(), cap))
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))??;
        lease.release().await;
        serde_json::from_slice(&body).map_err(|e| HttpError::Malformed(format!("{path}: {e}")))
    }

    /// Whether the engine still takes new connections (`GET /_ping` on a
    /// connection of its own): a stopping dockerd closes its socket first,
    /// then stops every container while it still answers the connections
    /// it holds, so what was read over kept-alive ones counts only if a new
    /// one is still taken after it.
    pub async fn accepts_connections(&self) -> Result<(), HttpError> {
        let (response, lease) = self.send(hyper::Method::GET, "/_ping", Reuse::Own).await?;
        read_capped(response.into_body(), 1024).await?;
        lease.release().await;
        Ok(())
    }

    /// The ids of the running containers (`GET /containers/json`), read as
    /// they arrive; at most [`MAX_LISTED`].
    pub async fn running_container_ids(&self) -> Result<Vec<String>, HttpError> {
        let path = r#"/containers/json?filters=%7B%22status%22%3A%5B%22running%22%5D%7D"#;
        let (response, lease) = self.get(path).await?;
        let mut body = response.into_body();
        let mut scanner = IdScanner::default();
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame
                    .map_err(|e| HttpError::Connection(format!("read the container list: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    scanner.feed(data);
                    if scanner.ids().len() > MAX_LISTED {
                        return Err(HttpError::TooLarge { cap: MAX_LISTED });
                    }
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))??;
        lease.release().await;
        scanner
            .finish()
            .map_err(|e| HttpError::Malformed(e.to_owned()))
    }

    /// `GET path` as a stream of newline-delimited JSON records, each of at
    /// most [`MAX_EVENT_BYTES`], sent to `tx` as they complete (a longer one
    /// as [`Line::Skipped`]), waiting for room: nothing is dropped. Ends when
    /// the engine ends the stream or `tx`'s receiver goes; a broken stream is
    /// sent as an error.
    pub async fn stream_lines(
        &self,
        path: &str,
        tx: &tokio::sync::mpsc::Sender<Result<Line, HttpError>>,
    ) {
        // Its own connection, closed when the stream ends: held for as long
        // as the agent watches, it is never one a call could reuse.
        let response = match self.send(hyper::Method::GET, path, Reuse::Own).await {
            Ok((r, _own)) => r,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut body = response.into_body();
        let mut lines = Lines::new(MAX_EVENT_BYTES);
        let mut skipped = 0;
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(frame) => frame.into_data().unwrap_or_default(),
                Err(e) => {
                    let _ = tx
                        .send(Err(HttpError::Connection(format!("read {path}: {e}"))))
                        .await;
                    return;
                }
            };
            for line in lines.feed(&data) {
                if tx.send(Ok(Line::Record(line))).await.is_err() {
                    return;
                }
            }
            while skipped < lines.skipped() {
                skipped += 1;
                if tx.send(Ok(Line::Skipped)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// `HEAD /containers/{id}/archive?path=PATH`: what the engine's
    /// single-path archive API says of one path in a container (its
    /// `X-Docker-Container-Path-Stat` header), without reading it.
    pub async fn path_stat(&self, id: &str, path: &str) -> Result<PathStat, HttpError> {
        let uri = archive_uri(id, path);
        let (response, lease) = self.send(hyper::Method::HEAD, &uri, Reuse::Pooled).await?;
        let (head, body) = response.into_parts();
        // A `HEAD` answer has no body; its end frees the connection.
        tokio::time::timeout(self.timeout, read_capped(body, 0))
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))??;
        lease.release().await;
        let header = head
            .headers
            .get("X-Docker-Container-Path-Stat")
            .ok_or_else(|| HttpError::Malformed(format!("{uri}: no path stat header")))?;
        PathStat::from_header(header.as_bytes())
            .ok_or_else(|| HttpError::Malformed(format!("{uri}: unreadable path stat header")))
    }

    /// `GET /containers/{id}/archive?path=PATH`: the path as a tar stream,
    /// each chunk handed to `feed` as it arrives; at most `cap` bytes are
    /// read (then [`HttpError::TooLarge`]), and `feed` returning `false`
    /// stops reading. The whole read is bounded by the engine timeout.
    pub async fn archive(
        &self,
        id: &str,
        path: &str,
        cap: usize,
        mut feed: impl FnMut(&[u8]) -> bool + Send,
    ) -> Result<(), HttpError> {
        let uri = archive_uri(id, path);
        let (response, lease) = self.get(&uri).await?;
        let mut body = response.into_body();
        let read = async {
            let mut total = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| HttpError::Connection(format!("read {uri}: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    total += data.len();
                    if total > cap {
                        return Err(HttpError::TooLarge { cap });
                    }
                    if !feed(data) {
                        // Stopped early: the connection closes with
                        // the rest unread.
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        };
        let whole = tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))??;
        if whole {
            lease.release().await;
        }
        Ok(())
    }
}

/// The archive API's URI for one path of one container.
fn archive_uri(id: &str, path: &str) -> String {
    let path: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/containers/{id}/archive?path={path}")
}

/// What the archive API says of a path: the engine's `lstat` of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
pub struct PathStat {
    /// Its base name.
    #[serde(default)]
    pub name: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Go's `os.FileMode`: permission bits and type bits
    /// ([`PathStat::is_dir`], [`PathStat::is_symlink`]).
    #[serde(default)]
    pub mode: u32,
    /// Its modification time, RFC 3339 as the engine writes it; compared,
    /// never parsed.
    #[serde(default)]
    pub mtime: String,
    /// Where a symlink points, empty otherwise.
    #[serde(default, rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// Decodes the header: base64 of a JSON object.
    pub fn from_header(value: &[u8]) -> Option<Self> {
        use base64::Engine as _;
        let json = base64::engine::general_purpose::STANDARD
            .decode(value)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(value))
            .ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// Go's `os.ModeDir`.
    pub fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }

    /// Go's `os.ModeSymlink`.
    pub fn is_symlink(&self) -> bool {
        self.mode & (1 << 27) != 0
    }
}

/// One record of a newline-delimited stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete record, without its newline.
    Record(Vec<u8>),
    /// A record over the length limit, dropped.
    Skipped,
}

async fn handshake<IO>(
    io: IO,
) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>, HttpError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| HttpError::Connection(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        // Ends when the answer was read (or dropped); its error, if any,
        // reaches the caller through the body.
        let _ = connection.await;
    });
    Ok(sender)
}

/// The body, read whole as long as it stays within `cap` bytes.
async fn read_capped(mut body: Incoming, cap: usize) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HttpError::Connection(format!("read the answer: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > cap {
                return Err(HttpError::TooLarge { cap });
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

/// The engine's error message (`{"message": …}`), or the body as text,
/// bounded and made inert.
fn message_of(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    let text = serde_json::from_slice::<Message>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    envparity_proto::names::escape_hostile(&text.chars().take(300).collect::<String>())
}

#[cfg(test)]
#[path = "engine_http_tests.rs"]
mod tests;
