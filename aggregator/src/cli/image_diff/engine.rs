//! The local engine, for `image-diff`: one image inspect per name, then one
//! export (`GET /images/get?names=A&names=B`) whose body is handed over as
//! it arrives, so that shared layers cross once and nothing is held or
//! written but what the content reader keeps.
//!
//! Plain HTTP/1.1 over the engine's socket (`unix://`) or TCP (`tcp://`,
//! no TLS), synchronous because the reader is: the answer's body is a
//! [`Read`]. Only GET is sent, which a read-only socket proxy allows.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{Context, bail};

/// The longest status line and headers read.
const MAX_HEAD: usize = 64 * 1024;
/// The largest inspect answer read.
const MAX_INSPECT: u64 = 32 * 1024 * 1024;
/// How long the engine may take to start an answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the engine listens.
#[derive(Debug, Clone)]
pub struct Engine {
    address: String,
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Unix(String),
    Tcp(String),
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl Engine {
    /// The engine at `docker_host` (`unix:///path` or `tcp://host:port`).
    pub fn new(docker_host: &str) -> anyhow::Result<Self> {
        let target = if let Some(path) = docker_host.strip_prefix("unix://") {
            Target::Unix(path.to_owned())
        } else if let Some(addr) = docker_host.strip_prefix("tcp://") {
            Target::Tcp(addr.trim_end_matches('/').to_owned())
        } else {
            bail!("DOCKER_HOST {docker_host:?}: only unix:// and tcp:// engines are supported");
        };
        Ok(Engine {
            address: docker_host.to_owned(),
            target,
        })
    }

    /// Its address, for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Stream>> {
        let what = || format!("engine {}: cannot connect", self.address);
        Ok(match &self.target {
            Target::Unix(path) => {
                let s = UnixStream::connect(path).with_context(what)?;
                s.set_read_timeout(Some(TIMEOUT))?;
                Box::new(s)
            }
            Target::Tcp(addr) => {
                let s = TcpStream::connect(addr).with_context(what)?;
                s.set_read_timeout(Some(TIMEOUT))?;
                Box::new(s)
            }
        })
    }

    /// `GET path`: the status and the body, as it arrives.
    fn get(&self, path: &str) -> anyhow::Result<(u16, Box<dyn Read + Send>)> {
        let mut stream = self.connect()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: envparity\r\nConnection: close\r\n\r\n"
        )
        .with_context(|| format!("engine {}: cannot send the request", self.address))?;
        let mut reader = BufReader::with_capacity(256 * 1024, stream);
        let head = read_head(&mut reader)
            .with_context(|| format!("engine {}: GET {path}", self.address))?;
        let body: Box<dyn Read + Send> = if head.chunked {
            Box::new(Chunked::new(reader))
        } else if let Some(len) = head.length {
            Box::new(reader.take(len))
        } else {
            Box::new(reader)
        };
        Ok((head.status, body))
    }

    /// The id of image `name`; an error naming it when the engine has none.
    pub fn image_id(&self, name: &str) -> anyhow::Result<String> {
        let path = format!("/images/{}/json", encode(name));
        let (status, body) = self.get(&path)?;
        let mut text = String::new();
        body.take(MAX_INSPECT)
            .read_to_string(&mut text)
            .with_context(|| format!("image {name}: reading the engine's answer"))?;
        if status == 404 {
            bail!("image {name}: not found in the engine at {}", self.address);
        }
        if status != 200 {
            bail!(
                "image {name}: the engine at {} answered {status}: {}",
                self.address,
                message(&text)
            );
        }
        #[derive(serde::Deserialize)]
        struct Inspect {
            #[serde(rename = "Id")]
            id: String,
        }
        let inspect: Inspect = serde_json::from_str(&text)
            .with_context(|| format!("image {name}: the engine's inspect answer has no Id"))?;
        Ok(inspect.id)
    }

    /// The export of `names` in one archive, streamed.
    pub fn export(&self, names: &[&str]) -> anyhow::Result<Box<dyn Read + Send>> {
        let query: String = names
            .iter()
            .map(|n| format!("names={}", encode(n)))
            .collect::<Vec<_>>()
            .join("&");
        let (status, body) = self.get(&format!("/images/get?{query}"))?;
        if status != 200 {
            let mut text = String::new();
            body.take(64 * 1024).read_to_string(&mut text).ok();
            bail!(
                "export of {}: the engine at {} answered {status}: {}",
                names.join(", "),
                self.address,
                message(&text)
            );
        }
        Ok(body)
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The engine's `{"message": ...}`, or the text.
fn message(text: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    serde_json::from_str::<Message>(text)
        .map_or_else(|_| text.trim().chars().take(500).collect(), |m| m.message)
}

struct Head {
    status: u16,
    chunked: bool,
    length: Option<u64>,
}

fn read_head(r: &mut impl BufRead) -> anyhow::Result<Head> {
    let mut read = 0usize;
    let mut line = String::new();
    let mut next_line = |r: &mut dyn BufRead, line: &mut String| -> anyhow::Result<()> {
        line.clear();
        let n = r.take((MAX_HEAD - read) as u64).read_line(line)?;
        read += n;
        if n == 0 || !line.ends_with('\n') {
            bail!("the answer's head is cut short or over {MAX_HEAD} bytes");
        }
        Ok(())
    };
    next_line(r, &mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: {:?}", line.trim()))?;
    let mut head = Head {
        status,
        chunked: false,
        length: None,
    };
    loop {
        next_line(r, &mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(head);
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                head.chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                head.length = v.parse().ok();
            }
        }
    }
}

/// A chunked body, decoded as it is read.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }

    fn size_line(&mut self) -> io::Result<u64> {
        let mut line = String::new();
        (&mut self.inner).take(1024).read_line(&mut line)?;
        let hex = line.trim().split(';').next().unwrap_or("");
        u64::from_str_radix(hex, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {:?}", line.trim()),
            )
        })
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            self.left = self.size_line()?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the engine's answer is cut short",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = String::new();
            (&mut self.inner).take(2).read_line(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_decoded_as_it_is_read() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n";
        let mut r = BufReader::new(&wire[..]);
        let head = read_head(&mut r).unwrap();
        assert_eq!(head.status, 200);
        assert!(head.chunked);
        let mut body = String::new();
        Chunked::new(r).read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello, world");
    }

    #[test]
    fn a_cut_chunk_is_an_error_not_a_short_body() {
        let mut body = Vec::new();
        let err = Chunked::new(&b"a\r\nhello"[..])
            .read_to_end(&mut body)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(Engine::new("ssh://x").is_err());
        assert_eq!(
            message("{\"message\":\"reference does not exist\"}"),
            "reference does not exist"
        );
    }
}
