//! Bounds before authentication, against the real mTLS aggregator: a client
//! without a certificate cannot grow its memory with unfinished reports, nor
//! take its file descriptors with idle connections, and agents and the CLI
//! keep working meanwhile. The attacker is the raw HTTP/2 client of
//! `envparity_tests::h2client` (tonic would never misbehave like this).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envparity_tests::grpc::{ReportClient, container, snapshot};
use envparity_tests::h2client::{
    Answer, Connection, anonymous_tls, closed_within, raise_open_files, rss_kib, tls_connect,
};
use envparity_tests::{Fleet, Result, free_port};

const TIMEOUT: Duration = Duration::from_secs(30);
const PUSH: &str = "/envparity.v1.ReportService/PushSnapshot";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn unfinished_reports_without_a_certificate_are_refused_before_their_bodies_are_read() -> Result<()>
{
    const CONNECTIONS: usize = 8;
    const STREAMS: usize = 16;
    let fleet = Fleet::builder().host("staging").start()?;
    let metrics_port = free_port()?;
    let mut aggregator = fleet
        .aggregator()
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .start()?;
    let _agent = fleet.start_agent(fleet.host("staging"))?;
    fleet.wait_for_hosts(&["staging"], TIMEOUT)?;
    let pid = aggregator.process().expect("the aggregator runs").pid();
    let before = rss_kib(pid).expect("the aggregator's RSS");
    let addr = SocketAddr::from(([127, 0, 0, 1], aggregator.port()));
    let ca = fleet.pki()?.join("ca.pem");

    // 128 streams, each declaring a 16 MiB report and sending 1 MiB of it,
    // none ever ending: 2 GiB declared, 128 MiB sent.
    let rt = runtime();
    let (answers, _held) = rt.block_on(async {
        let config = anonymous_tls(&ca).expect("client TLS config");
        let mut calls = tokio::task::JoinSet::new();
        let mut connections = Vec::new();
        for _ in 0..CONNECTIONS {
            let tls = tls_connect(addr, &config)
                .await
                .expect("TLS without a certificate");
            let conn = Arc::new(Connection::handshake(tls).await.expect("HTTP/2"));
            for _ in 0..STREAMS {
                let conn = Arc::clone(&conn);
                calls.spawn(async move {
                    conn.unfinished_call(
                        PUSH,
                        16 << 20,
                        1 << 20,
                        Duration::from_secs(3),
                        Duration::from_secs(5),
                    )
                    .await
                    .map_err(|e| e.to_string())
                });
            }
            connections.push(conn);
        }
        let mut answers = Vec::new();
        let mut streams = Vec::new();
        while let Some(done) = calls.join_next().await {
            match done.expect("call task") {
                Ok((answer, stream)) => {
                    answers.push(answer);
                    streams.push(stream);
                }
                Err(e) => answers.push(Answer::Reset(e)),
            }
        }
        (answers, (connections, streams))
    });
    let during = rss_kib(pid).expect("the aggregator's RSS");

    // Every call was answered UNAUTHENTICATED (16), on its headers alone.
    assert_eq!(answers.len(), CONNECTIONS * STREAMS);
    let unauthenticated = Answer::Status(Some("16".to_owned()));
    assert!(
        answers.iter().all(|a| *a == unauthenticated),
        "not every unfinished call was refused as unauthenticated: {:?}",
        answers
            .iter()
            .filter(|a| **a != unauthenticated)
            .take(5)
            .collect::<Vec<_>>()
    );
    // The memory did not follow the bytes sent (128 MiB) or declared (2 GiB).
    let grown_mib = during.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "the aggregator grew {grown_mib} MiB under unauthenticated unfinished reports"
    );
    // Agents and the CLI are served meanwhile.
    let hosts = fleet.cli(&["hosts"])?;
    hosts.assert_code(0);
    assert!(hosts.stdout.contains("staging"), "{hosts}");
    // 128 refusals: counted one by one, logged a few times with the peer.
    let metrics =
        envparity_tests::http::get(&format!("http://127.0.0.1:{metrics_port}/metrics"))?.body;
    let unauthorized: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("envparity_reports_rejected_total{reason=\"unauthorized\"} "))
        .and_then(|v| v.parse().ok())
        .expect("the unauthorized rejections counter");
    assert!(
        unauthorized >= 128.0,
        "counted {unauthorized} refusals\n{metrics}"
    );
    let log = aggregator.log();
    let logged = lines_with(&log, "report without a client certificate refused");
    assert!(
        (1..=3).contains(&logged),
        "{logged} lines for 128 refusals (throttled lines expected)"
    );
    assert!(log.contains("peer=127.0.0.1:"), "refusals name the peer");
    drop(rt);
    Ok(())
}

#[test]
fn idle_connections_without_a_certificate_are_closed_and_never_lock_out_agents() -> Result<()> {
    const IDLE: usize = 1_100;
    raise_open_files();
    let fleet = Fleet::builder().host("staging").start()?;
    let metrics_port = free_port()?;
    let aggregator = fleet
        .aggregator()
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .start()?;
    let _agent = fleet.start_agent(fleet.host("staging"))?;
    fleet.wait_for_hosts(&["staging"], TIMEOUT)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], aggregator.port()));
    let ca = fleet.pki()?.join("ca.pem");

    let rt = runtime();
    let (mut idle, mut half_sent) = rt.block_on(async {
        let config = anonymous_tls(&ca).expect("client TLS config");
        let mut idle = Vec::new();
        for _ in 0..IDLE {
            // Handshakes the server closes at once count as closed below.
            if let Ok(tls) = tls_connect(addr, &config).await {
                idle.push(tls);
            }
        }
        // Requests to the metrics port that never finish their headers.
        let mut half_sent = Vec::new();
        for _ in 0..5 {
            use tokio::io::AsyncWriteExt;
            let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", metrics_port))
                .await
                .expect("metrics port");
            tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("half a request");
            half_sent.push(tcp);
        }
        (idle, half_sent)
    });
    assert!(
        idle.len() > 1_000,
        "only {} handshakes completed",
        idle.len()
    );

    // With all of them open, agents and the CLI are still served.
    let hosts = fleet.cli(&["hosts"])?;
    hosts.assert_code(0);
    assert!(hosts.stdout.contains("staging"), "{hosts}");

    // Every idle connection is closed by the server within its idle time
    // (10 s for anonymous connections and the metrics port), with margin.
    let (still_open, metrics_open) = rt.block_on(async {
        let within = Duration::from_secs(25);
        let mut open = 0;
        let checks = idle
            .iter_mut()
            .map(|c| closed_within(c, within))
            .collect::<Vec<_>>();
        for closed in futures_join(checks).await {
            open += usize::from(!closed);
        }
        let mut metrics_open = 0;
        for c in &mut half_sent {
            metrics_open += usize::from(!closed_within(c, within).await);
        }
        (open, metrics_open)
    });
    assert_eq!(
        still_open, 0,
        "idle TLS connections left open by the server"
    );
    assert_eq!(metrics_open, 0, "half-sent metrics requests left open");

    // The refusals were counted, and logged a few times, not a thousand.
    let metrics =
        envparity_tests::http::get(&format!("http://127.0.0.1:{metrics_port}/metrics"))?.body;
    assert!(
        metrics.contains("envparity_connections_refused_total{limit=\"anonymous_per_peer\"}"),
        "{metrics}"
    );
    let log = aggregator.log();
    let logged = lines_with(&log, "connection refused: over a connection limit");
    assert!((1..=5).contains(&logged), "{logged} refusal lines");
    // And the agent kept reporting throughout.
    let hosts = fleet.cli(&["hosts", "-o", "json"])?;
    assert!(hosts.stdout.contains("\"fresh\""), "{hosts}");
    Ok(())
}

/// With `--max-connection-age`, a connection is told to go (GOAWAY) once
/// it is that old: an idle one without a certificate closes at its age,
/// long before its 10 s idle bound; and a client carries on across its
/// connections' ages without a failed call (it reconnects).
#[test]
fn connections_close_gracefully_at_their_max_age_and_clients_carry_on() -> Result<()> {
    const AGE: Duration = Duration::from_secs(2);
    let fleet = Fleet::builder().host("edge").start()?;
    let aggregator = fleet
        .aggregator()
        .arg("--max-connection-age")
        .arg("2s")
        .start()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], aggregator.port()));
    let ca = fleet.pki()?.join("ca.pem");
    let rt = runtime();
    let closed_after = rt.block_on(async {
        let config = anonymous_tls(&ca).expect("client TLS config");
        let tls = tls_connect(addr, &config).await.expect("TLS");
        let mut conn = Connection::handshake(tls).await.expect("HTTP/2");
        let opened = std::time::Instant::now();
        conn.closed_within(Duration::from_secs(8))
            .await
            .then(|| opened.elapsed())
    });
    let closed_after = closed_after.expect("the idle connection was not closed within 8 s");
    assert!(
        closed_after >= AGE - Duration::from_millis(100) && closed_after < Duration::from_secs(6),
        "closed after {closed_after:?}, not at its age ({AGE:?})"
    );

    // Three ages of one client's channel: every call answered.
    let client = ReportClient::connect_as(&fleet, "edge")?;
    let started = std::time::Instant::now();
    let mut sequence = 0;
    while started.elapsed() < 3 * AGE + Duration::from_millis(500) {
        sequence += 1;
        client
            .push(snapshot(
                "edge",
                "production",
                sequence,
                vec![container("shop")],
            ))
            .unwrap_or_else(|status| panic!("push {sequence} failed: {status}"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(sequence >= 25, "{sequence} pushes");
    let hosts = fleet.cli(&["hosts", "-o", "json"])?;
    assert!(hosts.stdout.contains("\"edge\""), "{hosts}");
    Ok(())
}

/// Awaits every future, concurrently, in order.
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("ready")).collect()
}
