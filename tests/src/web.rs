//! A small HTTP/1.1 client for the web view (`envparity serve
//! --web-listen`), written on `std::net` and rustls so the tests read the
//! view with code that shares nothing with it: over TLS with the fleet CA
//! and, if given, a client certificate, or in plain text.
//!
//! [`WebClient::get`] returns the status, every header and the body;
//! [`WebClient::alpn`] only shakes hands and says which protocol the server
//! chose; [`WebClient::events`] opens `/events` and reads its events one at
//! a time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::{Error, Result};

/// An answer of the view.
#[derive(Debug, Clone)]
pub struct Page {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The number in the element marked `data-counter="NAME"` after the
    /// first occurrence of `from` (`""`: from the start).
    pub fn counter(&self, from: &str, name: &str) -> Option<u32> {
        let start = self.body.find(from)?;
        let mark = format!("data-counter=\"{name}\">");
        let at = start + self.body[start..].find(&mark)? + mark.len();
        let end = at + self.body[at..].find('<')?;
        self.body[at..end].parse().ok()
    }
}

/// Who the client is: nobody (plain text, or TLS without a certificate) or
/// the holder of a certificate of the fleet CA.
#[derive(Debug, Clone)]
pub struct WebClient {
    /// `127.0.0.1:PORT`.
    addr: String,
    /// With TLS: the CA to trust and the client certificate and key.
    tls: Option<(PathBuf, Option<(PathBuf, PathBuf)>)>,
}

impl WebClient {
    /// A plain-text client of `addr`.
    pub fn plain(addr: impl Into<String>) -> Self {
        WebClient {
            addr: addr.into(),
            tls: None,
        }
    }

    /// A TLS client of `addr` trusting `pki/ca.pem`, presenting
    /// `pki/NAME.pem` (with `pki/NAME-key.pem`) when `certificate` is given.
    pub fn tls(addr: impl Into<String>, pki: &Path, certificate: Option<&str>) -> Self {
        WebClient {
            addr: addr.into(),
            tls: Some((
                pki.join("ca.pem"),
                certificate.map(|n| {
                    (
                        pki.join(format!("{n}.pem")),
                        pki.join(format!("{n}-key.pem")),
                    )
                }),
            )),
        }
    }

    fn config(&self, alpn: &[&str]) -> Result<Option<Arc<rustls::ClientConfig>>> {
        let Some((ca, identity)) = &self.tls else {
            return Ok(None);
        };
        let bad = |what: String| Error::Unexpected {
            what: "web client TLS".to_owned(),
            detail: what,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(ca).map_err(|e| bad(format!("{}: {e}", ca.display())))?
        {
            roots
                .add(cert.map_err(|e| bad(format!("{}: {e}", ca.display())))?)
                .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| bad(format!("{}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad(format!("{}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(e.to_string()))?
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(Some(Arc::new(config)))
    }

    fn connect(&self, alpn: &[&str]) -> Result<Conn> {
        let tcp = TcpStream::connect(&self.addr).map_err(Error::io(format!(
            "connect to the web view at {}",
            self.addr
        )))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(Error::io("set timeout"))?;
        match self.config(alpn)? {
            None => Ok(Conn::Plain(tcp)),
            Some(config) => {
                let name = ServerName::try_from("127.0.0.1").expect("an IP address");
                let conn =
                    rustls::ClientConnection::new(config, name).map_err(|e| Error::Unexpected {
                        what: format!("TLS to {}", self.addr),
                        detail: e.to_string(),
                    })?;
                Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
            }
        }
    }

    /// Shakes hands offering `alpn` and returns the protocol the server
    /// chose (`None`: none).
    pub fn alpn(&self, alpn: &[&str]) -> Result<Option<String>> {
        let Conn::Tls(mut stream) = self.connect(alpn)? else {
            return Ok(None);
        };
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(Error::io(format!("TLS handshake with {}", self.addr)))?;
        }
        Ok(stream
            .conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()))
    }

    /// `GET path` over HTTP/1.1 (`Connection: close`).
    pub fn get(&self, path: &str) -> Result<Page> {
        let what = format!("GET {path} from the web view at {}", self.addr);
        let mut conn = self.connect(&["http/1.1"])?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut raw = Vec::new();
        match &mut conn {
            Conn::Plain(s) => {
                s.write_all(request.as_bytes())
                    .map_err(Error::io(format!("{what}: send")))?;
                s.read_to_end(&mut raw)
                    .map_err(Error::io(format!("{what}: read")))?;
            }
            Conn::Tls(s) => {
                s.write_all(request.as_bytes())
                    .map_err(Error::io(format!("{what}: send")))?;
                match s.read_to_end(&mut raw) {
                    Ok(_) => {}
                    // A server that closes without close_notify after the
                    // whole answer: what was read is the answer.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                    Err(e) => return Err(Error::io(format!("{what}: read"))(e)),
                }
            }
        }
        parse(&what, &raw)
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl WebClient {
    /// Opens `GET path` as a stream of server-sent events over HTTP/1.1
    /// (the connection stays open while the stream is held).
    pub fn events(&self, path: &str) -> Result<Events> {
        let what = format!("GET {path} (events) from the web view at {}", self.addr);
        let mut conn = self.connect(&["http/1.1"])?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        );
        conn.stream()
            .write_all(request.as_bytes())
            .map_err(Error::io(format!("{what}: send")))?;
        let mut events = Events {
            conn,
            what,
            text: String::new(),
            status: 0,
            content_type: String::new(),
        };
        while !events.text.contains("\r\n\r\n") {
            events.read_more()?;
        }
        let end = events.text.find("\r\n\r\n").expect("just found") + 4;
        let head: String = events.text.drain(..end).collect();
        events.status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        events.content_type = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        Ok(events)
    }
}

/// An open stream of server-sent events ([`WebClient::events`]).
pub struct Events {
    conn: Conn,
    what: String,
    /// Read and not yet taken (the chunked framing's size lines included:
    /// they never start with `data:`).
    text: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's `Content-Type`.
    pub content_type: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("what", &self.what)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Events {
    fn read_more(&mut self) -> Result<()> {
        let mut buf = [0u8; 4096];
        let n = self
            .conn
            .stream()
            .read(&mut buf)
            .map_err(Error::io(format!("{}: read", self.what)))?;
        if n == 0 {
            return Err(Error::Unexpected {
                what: self.what.clone(),
                detail: format!("the stream ended; unread: {:?}", self.text),
            });
        }
        self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
        Ok(())
    }

    /// The `data` of the next event (keep-alive comments skipped), or
    /// `None` once `deadline` passed (checked whenever bytes come: the view
    /// sends a keep-alive every 15 s); an error when the stream ends or
    /// nothing at all comes within the connection's read timeout (30 s).
    pub fn next_data(&mut self, deadline: std::time::Instant) -> Result<Option<String>> {
        loop {
            let found = self
                .text
                .find("\ndata: ")
                .map(|at| at + 1)
                .or_else(|| self.text.starts_with("data: ").then_some(0));
            if let Some(at) = found
                && let Some(len) = self.text[at..].find('\n')
            {
                let data = self.text[at + "data: ".len()..at + len]
                    .trim_end()
                    .to_owned();
                self.text.drain(..at + len + 1);
                return Ok(Some(data));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            self.read_more()?;
        }
    }
}

fn parse(what: &str, raw: &[u8]) -> Result<Page> {
    let text = String::from_utf8_lossy(raw);
    let unexpected = |detail: String| Error::Unexpected {
        what: what.to_owned(),
        detail,
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| unexpected(format!("no HTTP header in {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unexpected(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        return Err(unexpected(
            "a chunked answer: the view sends every page with its length".to_owned(),
        ));
    }
    Ok(Page {
        status,
        headers,
        body: body.to_owned(),
    })
}
