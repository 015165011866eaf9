//! `envparity-attack`: holds what a client without credentials can throw at
//! the aggregator's gRPC port for a while, so that the aggregator can be
//! measured under it (docs/security.md, `scripts/bench-attack.sh`):
//! - `--idle` TLS connections that never speak HTTP/2, each reopened as soon
//!   as the server closes it;
//! - `--slow-streams` report calls that declare a 16 MiB message and trickle
//!   its bytes, never ending the stream, each reopened once answered,
//!   `MAX_STREAMS_PER_CONNECTION` per connection;
//!
//! both spread over `--sources` loopback addresses (127.1.0.1, 127.1.0.2, …),
//! as many attacking machines would be, so that per-peer caps do not stop
//! them all at once. It samples the server's resident memory (`--server-pid`)
//! every 250 ms and prints, at the end, what the server did: connections
//! accepted and closed, calls answered by gRPC status, the baseline and
//! peak RSS. A benchmark tool: it asserts nothing.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use envparity_tests::h2client::{
    Answer, Connection, anonymous_tls, closed_within, raise_open_files, rss_kib,
};
use tokio::net::TcpSocket;

/// The report call every slow stream opens.
const PUSH: &str = "/envparity.v1.ReportService/PushSnapshot";
/// Streams opened on one attacking connection (the aggregator allows 32).
const MAX_STREAMS_PER_CONNECTION: usize = 32;

/// Holds unauthenticated idle connections and slow report streams against
/// an aggregator, and reports what it did to it.
#[derive(Debug, Parser)]
#[command(name = "envparity-attack", version)]
struct Args {
    /// The aggregator's gRPC address (TLS), e.g. 127.0.0.1:7600.
    #[arg(long)]
    server: SocketAddr,
    /// The fleet CA (to complete TLS handshakes; no client certificate is
    /// presented).
    #[arg(long)]
    ca: PathBuf,
    /// Idle TLS connections to hold.
    #[arg(long, default_value_t = 2_000)]
    idle: usize,
    /// Unfinished report streams to hold.
    #[arg(long, default_value_t = 1_000)]
    slow_streams: usize,
    /// Loopback source addresses to spread over (127.1.0.1 …).
    #[arg(long, default_value_t = 64)]
    sources: usize,
    /// How long to hold it all.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    duration: Duration,
    /// The aggregator's pid, to sample its resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Append the result as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What happened, counted from every task.
#[derive(Debug, Default)]
struct Counts {
    idle_opened: AtomicU64,
    idle_closed_by_server: AtomicU64,
    idle_held: AtomicU64,
    idle_held_peak: AtomicU64,
    connect_failed: AtomicU64,
    streams_opened: AtomicU64,
    answers: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn answer(&self, what: String) {
        *self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(what)
            .or_default() += 1;
    }

    fn held(&self, delta: i64) {
        let now = if delta >= 0 {
            self.idle_held
                .fetch_add(delta.unsigned_abs(), Ordering::Relaxed)
                + delta.unsigned_abs()
        } else {
            self.idle_held
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed)
                - delta.unsigned_abs()
        };
        self.idle_held_peak.fetch_max(now, Ordering::Relaxed);
    }
}

/// The `i`-th loopback source address.
fn source(i: usize, sources: usize) -> IpAddr {
    let n = i % sources.max(1);
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + u8::try_from(n / 250).unwrap_or(u8::MAX),
        0,
        1 + u8::try_from(n % 250).unwrap_or(0),
    ))
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(
    args: &Args,
    from: IpAddr,
    config: &Arc<rustls::ClientConfig>,
) -> Result<Tls, Box<dyn std::error::Error + Send + Sync>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(args.server).await?;
    let name = rustls_pki_types::ServerName::try_from(args.server.ip().to_string())?;
    Ok(tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await?)
}

/// Holds one idle connection until `deadline`, reopening it whenever the
/// server closes it.
async fn hold_idle(
    args: Arc<Args>,
    i: usize,
    config: Arc<rustls::ClientConfig>,
    counts: Arc<Counts>,
    deadline: Instant,
) {
    let from = source(i, args.sources);
    while Instant::now() < deadline {
        match connect(&args, from, &config).await {
            Ok(mut tls) => {
                counts.idle_opened.fetch_add(1, Ordering::Relaxed);
                counts.held(1);
                let left = deadline.saturating_duration_since(Instant::now());
                let closed = closed_within(&mut tls, left).await;
                counts.held(-1);
                if closed {
                    counts.idle_closed_by_server.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Holds `streams` unfinished report calls on one connection at a time
/// until `deadline`, opening a new call whenever one is answered and a new
/// connection whenever the server drops this one.
async fn hold_streams(
    args: Arc<Args>,
    i: usize,
    streams: usize,
    config: Arc<rustls::ClientConfig>,
    counts: Arc<Counts>,
    deadline: Instant,
) {
    let from = source(i, args.sources);
    while Instant::now() < deadline {
        let conn = match connect(&args, from, &config).await {
            Ok(tls) => match Connection::handshake(tls).await {
                Ok(c) => Arc::new(c),
                Err(_) => {
                    counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
            Err(_) => {
                counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..streams {
            let (conn, counts) = (Arc::clone(&conn), Arc::clone(&counts));
            calls.spawn(async move {
                while Instant::now() < deadline {
                    counts.streams_opened.fetch_add(1, Ordering::Relaxed);
                    let left = deadline.saturating_duration_since(Instant::now());
                    // 16 MiB declared, 1 MiB trickled over up to 10 s.
                    let call = conn.unfinished_call(
                        PUSH,
                        16 << 20,
                        1 << 20,
                        left.min(Duration::from_secs(10)),
                        left.min(Duration::from_secs(10)),
                    );
                    match call.await {
                        Ok((Answer::Status(code), _stream)) => {
                            counts.answer(format!("grpc-status {}", code.unwrap_or_default()));
                        }
                        Ok((Answer::Reset(why), _)) => {
                            counts.answer(format!("reset: {why}"));
                            return;
                        }
                        Err(e) => {
                            counts.answer(format!("error: {e}"));
                            return;
                        }
                    }
                }
            });
        }
        while calls.join_next().await.is_some() {}
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Arc::new(Args::parse());
    let open_files = raise_open_files();
    let config = match anonymous_tls(&args.ca) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("envparity-attack: {}: {e}", args.ca.display());
            return std::process::ExitCode::from(2);
        }
    };
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let deadline = started + args.duration;
    let baseline = args.server_pid.and_then(rss_kib);
    let peak = Arc::new(AtomicU64::new(baseline.unwrap_or(0)));
    if let Some(pid) = args.server_pid {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            while let Some(rss) = rss_kib(pid) {
                peak.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.idle {
        tasks.spawn(hold_idle(
            Arc::clone(&args),
            i,
            Arc::clone(&config),
            Arc::clone(&counts),
            deadline,
        ));
    }
    let mut left = args.slow_streams;
    let mut i = 0;
    while left > 0 {
        let streams = left.min(MAX_STREAMS_PER_CONNECTION);
        tasks.spawn(hold_streams(
            Arc::clone(&args),
            args.idle + i,
            streams,
            Arc::clone(&config),
            Arc::clone(&counts),
            deadline,
        ));
        left -= streams;
        i += 1;
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let final_rss = args.server_pid.and_then(rss_kib);
    let answers = counts
        .answers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let result = serde_json::json!({
        "duration_s": elapsed.as_secs_f64(),
        "idle_target": args.idle,
        "slow_stream_target": args.slow_streams,
        "sources": args.sources,
        "own_open_files_limit": open_files,
        "idle_opened": load(&counts.idle_opened),
        "idle_closed_by_server": load(&counts.idle_closed_by_server),
        "idle_held_peak": load(&counts.idle_held_peak),
        "connect_failed": load(&counts.connect_failed),
        "streams_opened": load(&counts.streams_opened),
        "answers": answers,
        "server_rss_baseline_kib": baseline,
        "server_rss_peak_kib": args.server_pid.map(|_| load(&peak)),
        "server_rss_final_kib": final_rss,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
    if let Some(path) = &args.json {
        use std::io::Write as _;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{result}"));
        if let Err(e) = written {
            eprintln!("envparity-attack: {}: {e}", path.display());
            return std::process::ExitCode::from(2);
        }
    }
    std::process::ExitCode::SUCCESS
}
