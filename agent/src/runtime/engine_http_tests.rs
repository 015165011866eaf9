//! The kept-alive connections of [`EngineHttp`], against a scripted engine
//! on a Unix socket: what is reused, what is closed, what is sent again.
//! (The same against a real dockerd, restarts included: `agent/tests/`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// What the scripted engine does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Answers `{}` and keeps the connection.
    Answer,
    /// Answers a body of 64 KiB of JSON (a string) and keeps the connection.
    Large,
    /// Closes the connection without answering.
    Close,
}

/// A scripted engine: `script(connection, request)` (each from 0, the
/// request counted on its connection) says what to do.
struct Scripted {
    _dir: tempfile::TempDir,
    http: EngineHttp,
    requests: Arc<AtomicUsize>,
}

fn scripted(script: fn(usize, usize) -> Act) -> Scripted {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let socket = dir.path().join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("binding the socket");
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut connection = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            let index = connection;
            connection += 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut request = 0;
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        seen.fetch_add(1, Ordering::SeqCst);
                        let body = match script(index, request) {
                            Act::Answer => "{}".to_owned(),
                            Act::Large => format!("\"{}\"", "x".repeat(64 * 1024)),
                            Act::Close => return,
                        };
                        request += 1;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let http = EngineHttp::new(
        &format!("unix://{}", socket.display()),
        Duration::from_secs(5),
    )
    .expect("a unix address");
    Scripted {
        _dir: dir,
        http,
        requests,
    }
}

async fn call(http: &EngineHttp) -> Result<serde_json::Value, HttpError> {
    http.get_json("/version", MAX_FACTS_BYTES).await
}

#[tokio::test]
async fn sequential_calls_share_one_connection() {
    let engine = scripted(|_, _| Act::Answer);
    for _ in 0..50 {
        call(&engine.http).await.expect("answered");
    }
    assert_eq!(engine.http.connections_made(), 1);
    // Clones share the idle connections.
    call(&engine.http.clone()).await.expect("answered");
    assert_eq!(engine.http.connections_made(), 1);
}

#[tokio::test]
async fn concurrent_calls_keep_at_most_max_idle_connections() {
    let engine = scripted(|_, _| Act::Answer);
    for _ in 0..3 {
        let calls = (0..2 * MAX_IDLE).map(|_| call(&engine.http));
        for answer in futures_util::future::join_all(calls).await {
            answer.expect("answered");
        }
    }
    let idle = engine.http.pool.idle.lock().unwrap().len();
    assert!(idle <= MAX_IDLE, "{idle} idle connections kept");
    assert!(
        engine.http.connections_made() <= (4 * MAX_IDLE) as u64,
        "{} connections for {} calls in 3 rounds",
        engine.http.connections_made(),
        6 * MAX_IDLE
    );
}

#[tokio::test]
async fn a_request_the_engine_closes_unanswered_on_a_reused_connection_is_sent_once_on_a_new_one() {
    // Every connection answers its first request and closes on the next,
    // as an engine that closed it while the request was on its way.
    let engine = scripted(|_, request| {
        if request == 0 {
            Act::Answer
        } else {
            Act::Close
        }
    });
    for _ in 0..5 {
        call(&engine.http)
            .await
            .expect("answered, on a new connection");
    }
    assert_eq!(engine.http.connections_made(), 5);
    // One request on each connection but the first was sent twice.
    assert_eq!(engine.requests.load(Ordering::SeqCst), 9);
}

#[tokio::test]
async fn a_request_that_fails_on_a_new_connection_is_not_sent_again() {
    // The first connection answers once; every later request is closed.
    let engine = scripted(|connection, request| {
        if connection == 0 && request == 0 {
            Act::Answer
        } else {
            Act::Close
        }
    });
    call(&engine.http).await.expect("answered");
    // Reused, closed: once more on a new one, closed too: an error.
    let error = call(&engine.http).await.expect_err("no answer");
    assert!(matches!(error, HttpError::Connection(_)), "{error:?}");
    assert_eq!(engine.http.connections_made(), 2);
    // A fresh call: a new connection, not retried.
    call(&engine.http).await.expect_err("no answer");
    assert_eq!(engine.http.connections_made(), 3);
    assert_eq!(engine.requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn an_answer_not_read_whole_closes_its_connection() {
    let engine = scripted(|_, _| Act::Large);
    let error = engine
        .http
        .get_json::<serde_json::Value>("/version", 1024)
        .await
        .expect_err("over the cap");
    assert!(
        matches!(error, HttpError::TooLarge { cap: 1024 }),
        "{error:?}"
    );
    engine
        .http
        .get_json::<serde_json::Value>("/version", MAX_ANSWER_BYTES)
        .await
        .expect("answered");
    assert_eq!(
        engine.http.connections_made(),
        2,
        "the half-read answer's connection was not reused"
    );
    // Read whole: reused.
    engine
        .http
        .get_json::<serde_json::Value>("/version", MAX_ANSWER_BYTES)
        .await
        .expect("answered");
    assert_eq!(engine.http.connections_made(), 2);
}

#[tokio::test]
async fn the_event_stream_has_a_connection_of_its_own() {
    let engine = scripted(|_, _| Act::Answer);
    call(&engine.http).await.expect("answered");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    engine.http.stream_lines("/events", &tx).await;
    drop(tx);
    assert!(rx.recv().await.is_none(), "no complete record");
    assert_eq!(engine.http.connections_made(), 2);
    // The idle one is still there; the stream's was not given to it.
    call(&engine.http).await.expect("answered");
    call(&engine.http).await.expect("answered");
    assert_eq!(engine.http.connections_made(), 2);
    assert_eq!(engine.http.pool.idle.lock().unwrap().len(), 1);
}
