//! Minimal HTTP/1.0 GETs for readiness checks, over TCP or a unix socket.
//! Spawning `docker version` in a poll loop costs ~50 ms a try; this costs
//! well under one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP status code of `GET path` on a unix socket.
pub(crate) fn unix_get_status(socket: &Path, path: &str) -> std::io::Result<u16> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    get_status(stream, path)
}

/// The HTTP status code of `GET path` on a TCP address.
pub(crate) fn tcp_get_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    get_status(stream, path)
}

fn get_status(mut stream: impl Read + Write, path: &str) -> std::io::Result<u16> {
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 32];
    let mut len = 0;
    // "HTTP/1.x NNN" is 12 bytes; read until we have them or the peer closes.
    while len < 12 {
        match stream.read(&mut head[len..])? {
            0 => break,
            n => len += n,
        }
    }
    std::str::from_utf8(&head[..len])
        .ok()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.get(..3)?.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "not an HTTP response: {:?}",
                    String::from_utf8_lossy(&head[..len])
                ),
            )
        })
}
