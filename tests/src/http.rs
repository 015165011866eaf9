//! Plain HTTP/1.1 on loopback, written against `std::net` so the tests check
//! envparity's HTTP with code that shares nothing with it: [`get`] for
//! Alertmanager's, Prometheus' and envparity's own endpoints, and
//! [`Receiver`], a recording webhook receiver with scripted answers, and
//! [`answers_h2c`], whether a server also takes HTTP/2 without TLS.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// `GET http://ADDR/path` (`url` without the scheme's host part is
/// rejected), with `Connection: close`.
pub fn get(url: &str) -> Result<Response> {
    request("GET", url, None)
}

/// `POST` a JSON body.
pub fn post_json(url: &str, body: &str) -> Result<Response> {
    request("POST", url, Some(body))
}

fn request(method: &str, url: &str, body: Option<&str>) -> Result<Response> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| unexpected(url, "only http:// URLs are supported".to_owned()))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let io = |what: &str| Error::io(format!("{method} {url}: {what}"));
    let mut stream = TcpStream::connect(host).map_err(io("connect"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io("set timeout"))?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(io("send"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io("read"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| unexpected(url, format!("{method}: no HTTP header in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unexpected(url, format!("{method}: bad status line in {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    Ok(Response { status, body })
}

/// Whether the HTTP server at `addr` speaks HTTP/2 without TLS (h2c, with
/// prior knowledge): it is sent the HTTP/2 connection preface and an empty
/// SETTINGS frame. An HTTP/2 server answers with its own SETTINGS frame
/// (frame type 4, the header's 4th byte); an HTTP/1-only server answers
/// with an HTTP/1 error or closes. Anything else is an error.
pub fn answers_h2c(addr: SocketAddr) -> Result<bool> {
    let url = format!("http://{addr}/");
    let io = |what: &str| Error::io(format!("h2c preface to {addr}: {what}"));
    let mut stream = TcpStream::connect(addr).map_err(io("connect"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io("set timeout"))?;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .map_err(io("send"))?;
    let mut answer = [0; 64];
    let n = match stream.read(&mut answer) {
        Ok(n) => n,
        // Reset by a server that refused the bytes: not HTTP/2.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
        Err(e) => return Err(io("read")(e)),
    };
    let answer = &answer[..n];
    if answer.is_empty() || answer.starts_with(b"HTTP/1.") {
        Ok(false)
    } else if answer.len() >= 9 && answer[3] == 4 {
        Ok(true)
    } else {
        Err(unexpected(
            &url,
            format!("neither HTTP/1 nor an HTTP/2 SETTINGS frame: {answer:?}"),
        ))
    }
}

fn unexpected(url: &str, detail: String) -> Error {
    Error::Unexpected {
        what: format!("HTTP {url}"),
        detail,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived (test clock).
    pub at: Instant,
    /// The path, e.g. `/hook`.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} got a body that is not JSON ({e}): {}",
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A scripted answer: status and extra headers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// How long to wait before answering (a slow receiver).
    pub delay: Duration,
    /// Extra headers, e.g. `("Retry-After", "1")`.
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// A status without extra headers.
    pub fn status(status: u16) -> Self {
        Answer {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Vec<Received>,
    /// Per path: answers to give in order; when empty, 200.
    script: BTreeMap<String, VecDeque<Answer>>,
    /// Per path: the answer once the script is spent (default 200).
    always: BTreeMap<String, Answer>,
}

/// A webhook receiver on 127.0.0.1 that records every request and answers
/// as scripted (200 by default). Stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts listening on a free port.
    pub fn start() -> Result<Self> {
        Self::start_on(0)
    }

    /// Starts listening on `port` (a sink configured before its receiver
    /// came up).
    pub fn start_on(port: u16) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(Error::io(
            format!("bind the webhook receiver to port {port}"),
        ))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::io("set the receiver non-blocking"))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("receiver address"))?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let shared = Arc::clone(&shared);
                            std::thread::spawn(move || serve(stream, &shared));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(Receiver {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests to `path` with `answers`, in order.
    pub fn script(&self, path: &str, answers: impl IntoIterator<Item = Answer>) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.script.entry(path.to_owned()).or_default().extend(answers);
    }

    /// Answers every request to `path` (after any script) with `answer`.
    pub fn always(&self, path: &str, answer: Answer) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.always.insert(path.to_owned(), answer);
    }

    /// Every request to `path` so far.
    pub fn requests(&self, path: &str) -> Vec<Received> {
        let s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Mutex<Shared>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    // Keep-alive: serve requests until the client closes.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            let scripted = s.script.get_mut(&path).and_then(VecDeque::pop_front);
            let answer = scripted
                .or_else(|| s.always.get(&path).cloned())
                .unwrap_or_else(|| Answer::status(200));
            s.received.push(Received {
                at: Instant::now(),
                path,
                headers,
                body,
                answered: answer.status,
            });
            answer
        };
        std::thread::sleep(answer.delay);
        let mut response = format!(
            "HTTP/1.1 {} scripted\r\nContent-Length: 2\r\n",
            answer.status
        );
        for (k, v) in &answer.headers {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str("\r\nok");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
