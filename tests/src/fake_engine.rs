//! [`FakeEngine`]: a Docker engine API on a unix socket that answers with
//! containers far larger than a real host would run, to measure what the
//! agent holds while reading them. It is a stand-in for a hostile or broken
//! engine, not for dockerd: every test of normal behaviour runs against a
//! real dockerd ([`crate::DockerHost`]).
//!
//! It serves, over HTTP/1.1 with one answer per connection:
//! - `/version` and `/info`: a plausible engine; `/_ping`: `OK`;
//! - `/containers/json`: `containers` containers, each carrying labels of
//!   `label_bytes` in total, written as it is generated (never held whole);
//! - `/containers/{id}/json` and `/images/{id}/json`: the same containers
//!   and their image;
//! - `/events`: an open stream that says nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use crate::error::{Error, Result};

/// What the fake engine runs.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Running containers.
    pub containers: usize,
    /// Label bytes per container (split into labels of 60,000 bytes).
    pub label_bytes: usize,
}

/// A fake engine serving in a background thread until dropped.
#[derive(Debug)]
pub struct FakeEngine {
    socket: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The id of container `i`.
pub fn container_id(i: usize) -> String {
    format!("{i:064x}")
}

impl FakeEngine {
    /// Serves `shape` on a new socket in `dir`.
    pub fn start(dir: &Path, shape: Shape) -> Result<Self> {
        let socket = dir.join("fake-engine.sock");
        let _ = std::fs::remove_file(&socket);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::unexpected("fake engine runtime", e.to_string()))?;
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&socket).map_err(|e| {
                Error::unexpected(format!("bind {}", socket.display()), e.to_string())
            })?
        };
        let shape = Arc::new(shape);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shape = Arc::clone(&shape);
                tokio::spawn(async move {
                    let _ = serve(stream, &shape).await;
                });
            }
        });
        Ok(FakeEngine {
            socket,
            runtime: Some(runtime),
        })
    }

    /// The agent's `--docker-host` for it.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

fn labels(shape: &Shape, i: usize) -> String {
    let mut out = format!("\"envparity.service\":\"svc-{i}\"");
    let mut left = shape.label_bytes;
    let mut n = 0;
    while left > 0 {
        let len = left.min(60_000);
        out.push_str(&format!(",\"l{n:04}\":\""));
        out.extend(std::iter::repeat_n('x', len));
        out.push('"');
        left -= len;
        n += 1;
    }
    out
}

fn summary(shape: &Shape, i: usize) -> String {
    format!(
        "{{\"Id\":\"{}\",\"Names\":[\"/c-{i}\"],\"Image\":\"app:1\",\"ImageID\":\"{IMAGE}\",\"State\":\"running\",\"Labels\":{{{}}}}}",
        container_id(i),
        labels(shape, i)
    )
}

fn inspect(shape: &Shape, i: usize) -> String {
    format!(
        "{{\"Id\":\"{}\",\"Name\":\"/c-{i}\",\"Image\":\"{IMAGE}\",\"Config\":{{\"Image\":\"app:1\",\"Env\":[],\"Labels\":{{{}}}}},\"State\":{{\"Running\":true,\"Paused\":false,\"Restarting\":false}},\"HostConfig\":{{}},\"Mounts\":[]}}",
        container_id(i),
        labels(shape, i)
    )
}

async fn write_head(stream: &mut tokio::net::UnixStream, status: &str) -> std::io::Result<()> {
    stream
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
}

async fn serve(stream: tokio::net::UnixStream, shape: &Shape) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" {
            break;
        }
    }
    let mut stream = reader.into_inner();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let path = path.split('?').next().unwrap_or_default();
    // Without the `/v1.41` prefix, if any.
    let path = match path.strip_prefix("/v") {
        Some(rest) => rest.find('/').map_or(path, |slash| &rest[slash..]),
        None => path,
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["version"] => {
            write_head(&mut stream, "200 OK").await?;
            stream
                .write_all(br#"{"ApiVersion":"1.41","Version":"20.10.24","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0"}"#)
                .await?;
        }
        ["_ping"] => {
            write_head(&mut stream, "200 OK").await?;
            stream.write_all(b"OK").await?;
        }
        ["info"] => {
            write_head(&mut stream, "200 OK").await?;
            stream
                .write_all(br#"{"ID":"fake","ServerVersion":"20.10.24","Driver":"vfs","CgroupDriver":"cgroupfs","CgroupVersion":"1","OperatingSystem":"fake engine","OSType":"linux","Architecture":"x86_64","KernelVersion":"6.1.0"}"#)
                .await?;
        }
        ["containers", "json"] => {
            write_head(&mut stream, "200 OK").await?;
            stream.write_all(b"[").await?;
            for i in 0..shape.containers {
                if i > 0 {
                    stream.write_all(b",").await?;
                }
                stream.write_all(summary(shape, i).as_bytes()).await?;
            }
            stream.write_all(b"]").await?;
        }
        ["containers", id, "json"] => {
            match (0..shape.containers).find(|i| container_id(*i) == *id) {
                Some(i) => {
                    write_head(&mut stream, "200 OK").await?;
                    stream.write_all(inspect(shape, i).as_bytes()).await?;
                }
                None => {
                    write_head(&mut stream, "404 Not Found").await?;
                    stream
                        .write_all(br#"{"message":"No such container"}"#)
                        .await?;
                }
            }
        }
        ["images", _, "json"] => {
            write_head(&mut stream, "200 OK").await?;
            stream
                .write_all(format!("{{\"Id\":\"{IMAGE}\",\"RepoDigests\":[],\"Config\":{{\"Env\":[]}},\"RootFS\":{{\"Type\":\"layers\",\"Layers\":[]}},\"Os\":\"linux\",\"Architecture\":\"amd64\"}}").as_bytes())
                .await?;
        }
        ["events"] => {
            write_head(&mut stream, "200 OK").await?;
            // An open stream with nothing to say, until the agent hangs up.
            let mut buf = [0u8; 1];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        }
        _ => {
            write_head(&mut stream, "404 Not Found").await?;
            stream.write_all(br#"{"message":"page not found"}"#).await?;
        }
    }
    stream.shutdown().await
}
