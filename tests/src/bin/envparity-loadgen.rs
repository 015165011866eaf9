//! `envparity-loadgen`: simulates a fleet of hosts reporting to a real
//! `envparity serve` over the real gRPC API, and measures what the aggregator
//! sustains. Or, with `--echo`, drives a bare tonic server of the same report
//! API in this process (it answers every call at once), the framework's own
//! ceiling for the same messages, so the two can be compared in one run.
//!
//! Phases, run in the order given by `--phases`:
//! - `register`: every host pushes its first full snapshot (closed loop,
//!   `--concurrency` calls in flight);
//! - `heartbeat`: heartbeats as fast as they are answered, round-robin over
//!   the hosts, for `--duration`;
//! - `snapshot`: full snapshots as fast as they are answered, each changing
//!   the host's content (churn), for `--duration`;
//! - `steady`: what a fleet does: every host heartbeats every
//!   `--heartbeat-interval`, `--churn` hosts per second push a changed
//!   snapshot, and a `status` and a `diff` query run every
//!   `--query-interval`; latencies count from when a call was due, so a
//!   server that falls behind shows in them. Run it in the same process as
//!   `register`: a host's heartbeat vouches for the content hash this
//!   process last pushed for it (and the hosts report under a boot id of
//!   this process), so hosts it never pushed are answered `snapshot_needed`
//!   and stay un-heard-of, which is not a steady fleet.
//!
//! Each phase prints throughput, latency percentiles and errors by gRPC code,
//! with the CPU time and memory of the server (`--server-pid`) and of the
//! load generator itself; `--json FILE` appends the same as one JSON object
//! per phase. The fleet's make-up is [`envparity_tests::synthetic::Shape`].
//!
//! Benchmarks are never asserted on: docs/benchmarks.md says how the figures
//! are produced and read.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, ValueEnum};
use envparity_proto::transport::{ClientTls, Plaintext};
use envparity_proto::v1::query_service_client::QueryServiceClient;
use envparity_proto::v1::report_service_client::ReportServiceClient;
use envparity_proto::v1::{
    GetFindingsRequest, GetStatusRequest, HeartbeatRequest, HeartbeatResponse, HostSnapshot,
    PushDeltaRequest, PushSnapshotRequest, PushSnapshotResponse,
};
use envparity_tests::grpc;
use envparity_tests::synthetic::Shape;
use tonic::transport::Channel;

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[path = "envparity-loadgen/echo.rs"]
mod echo;
#[path = "envparity-loadgen/report.rs"]
mod report;

/// Simulates N hosts reporting to `envparity serve` and measures it.
#[derive(Debug, Parser)]
#[command(name = "envparity-loadgen", version)]
struct Args {
    /// The aggregator: `http://127.0.0.1:PORT` (serve --insecure-plaintext)
    /// or `https://HOST:PORT` with --tls-dir.
    #[arg(long, required_unless_present = "echo", conflicts_with = "echo")]
    server: Option<String>,
    /// Drive a bare tonic server of the report API in this process instead
    /// (the baseline: it answers every call at once, nothing else).
    #[arg(long)]
    echo: bool,
    /// Worker threads of the --echo server (default: one per core, as
    /// `envparity serve`).
    #[arg(long)]
    echo_threads: Option<usize>,
    /// A PKI made by `envparity certs` (ca.pem, agent-HOST.pem, …): each
    /// simulated host connects with its own agent certificate, queries with
    /// client-<--query-client>.pem. Without it: plain text.
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// The query certificate's name in --tls-dir (client-NAME.pem).
    #[arg(long, default_value = "loadgen")]
    query_client: String,
    /// Simulated hosts.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Running containers per host.
    #[arg(long, default_value_t = 50)]
    containers: usize,
    /// Replicas of each service per environment.
    #[arg(long, default_value_t = 10)]
    replicas: usize,
    /// Explicit env variables per container.
    #[arg(long, default_value_t = 10)]
    env_vars: usize,
    /// How many of them go in clear (the others as fingerprints).
    #[arg(long, default_value_t = 2)]
    clear_env: usize,
    /// Bytes per clear env value.
    #[arg(long, default_value_t = 16)]
    env_value_bytes: usize,
    /// Labels per container.
    #[arg(long, default_value_t = 5)]
    labels: usize,
    /// Bytes per label value.
    #[arg(long, default_value_t = 32)]
    label_bytes: usize,
    /// Phases to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "register,heartbeat,snapshot"
    )]
    phases: Vec<Phase>,
    /// How long each timed phase (heartbeat, snapshot, steady) runs.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// How long the steady phase runs instead of --duration.
    #[arg(long, value_parser = humantime::parse_duration)]
    steady_duration: Option<Duration>,
    /// Create this file when the steady phase starts (a script timing the
    /// CLI during that phase alone waits for it).
    #[arg(long)]
    steady_mark: Option<PathBuf>,
    /// Calls in flight at once in the closed-loop phases.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the hosts share in plain text (with TLS each host
    /// has its own, as agents do).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Hosts whose snapshots the `snapshot` phase builds beforehand and
    /// pushes in turn (so the load generator spends its CPU on sending, not
    /// on building snapshots).
    #[arg(long, default_value_t = 256)]
    pool: usize,
    /// steady: each host's heartbeat interval (agents default to 15s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    heartbeat_interval: Duration,
    /// steady: changed snapshots pushed per second, across the fleet.
    #[arg(long, default_value_t = 1.0)]
    churn: f64,
    /// steady: run a `status` and a `diff` query this often (0s: never).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    query_interval: Duration,
    /// The two environments `diff` compares.
    #[arg(long, value_delimiter = ',', default_value = "staging,production")]
    diff: Vec<String>,
    /// How many findings the `diff` query asks for: its first page (the
    /// CLI's `diff` asks for 100 by default, `diff --all` 5,000 a call).
    #[arg(long, default_value_t = 100)]
    diff_limit: u32,
    /// snapshot: send each changed snapshot as a delta (`PushDelta`: the
    /// one changed container) against the one pushed before it, as agents
    /// do, instead of whole.
    #[arg(long)]
    deltas: bool,
    /// Hash every snapshot by container (the `v2:` form), as agents do
    /// once the aggregator acknowledges that it checks it; an aggregator
    /// older than that form refuses these snapshots. Default: the whole
    /// form, which every aggregator checks.
    #[arg(long)]
    hash_by_container: bool,
    /// The pid of `envparity serve`: its CPU time and memory are reported
    /// per phase.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Append each phase's figures to this file, one JSON object per line.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A free-form label copied into the JSON (e.g. the run number).
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Register,
    Heartbeat,
    Snapshot,
    Steady,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Register => "register",
            Phase::Heartbeat => "heartbeat",
            Phase::Snapshot => "snapshot",
            Phase::Steady => "steady",
        }
    }
}

/// The kinds of call measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Push,
    Heartbeat,
    Status,
    Diff,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Push => "push",
            Op::Heartbeat => "heartbeat",
            Op::Status => "status",
            Op::Diff => "diff",
        }
    }
}

/// What one kind of call did.
#[derive(Debug, Default)]
struct Tally {
    /// Latency of every acknowledged call, in microseconds.
    latencies_us: Vec<u32>,
    /// Failed calls by gRPC code.
    errors: BTreeMap<String, u64>,
    /// Heartbeats answered with `snapshot_needed`.
    snapshot_needed: u64,
    /// Pushes acknowledged as duplicates.
    duplicates: u64,
    /// Bytes of request messages sent (encoded).
    request_bytes: u64,
}

/// Every call of a phase, by kind; shared by its tasks.
#[derive(Debug, Default)]
struct Record(Mutex<BTreeMap<Op, Tally>>);

impl Record {
    fn with(&self, op: Op, f: impl FnOnce(&mut Tally)) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(op).or_default());
    }

    fn merge(&self, op: Op, local: Tally) {
        self.with(op, |t| {
            t.latencies_us.extend(local.latencies_us);
            for (code, n) in local.errors {
                *t.errors.entry(code).or_default() += n;
            }
            t.snapshot_needed += local.snapshot_needed;
            t.duplicates += local.duplicates;
            t.request_bytes += local.request_bytes;
        });
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn code_name(status: &tonic::Status) -> String {
    format!("{:?}", status.code())
}

/// Where the calls go: one channel per host (TLS: each host has its own
/// certificate), or a few shared ones (plain text).
#[derive(Debug, Clone)]
struct Channels(Arc<Vec<Channel>>);

impl Channels {
    fn of(&self, host: usize) -> Channel {
        self.0[host % self.0.len()].clone()
    }
}

/// Per-host state: the churn count (the next push sends `churn + 1` steps),
/// the content hash the aggregator holds, and a turn: a host's delta is
/// sent only once its previous push is answered, as an agent does.
#[derive(Debug)]
struct Hosts {
    churn: Vec<AtomicU64>,
    hash: Vec<Mutex<String>>,
    turn: Vec<tokio::sync::Mutex<()>>,
}

impl Hosts {
    fn new(n: usize) -> Self {
        Hosts {
            churn: (0..n).map(|_| AtomicU64::new(0)).collect(),
            hash: (0..n).map(|_| Mutex::new(String::new())).collect(),
            turn: (0..n).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn set_hash(&self, i: usize, hash: String) {
        *self.hash[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = hash;
    }

    fn hash(&self, i: usize) -> String {
        self.hash[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

struct Run {
    args: Args,
    shape: Shape,
    channels: Channels,
    query: Option<Channel>,
    hosts: Hosts,
}

impl Run {
    /// Host `i`'s snapshot after `churn` changes, hashed in the form asked.
    fn snapshot(&self, i: usize, churn: u64) -> HostSnapshot {
        let mut s = self.shape.snapshot(i, churn);
        if self.args.hash_by_container {
            s.content_hash = envparity_proto::hash::content_hash_in(
                envparity_proto::hash::HashForm::ByContainer,
                &s,
            );
        }
        s
    }
}

/// Pushes `snapshot` for host `i`, recording it: as a delta against
/// `base` when given, else whole.
async fn push(
    run: &Run,
    i: usize,
    snapshot: HostSnapshot,
    base: Option<&HostSnapshot>,
    due: Instant,
    tally: &mut Tally,
) {
    use prost::Message as _;
    if let Some(base) = base {
        let request = envparity_proto::delta::between(base, &snapshot);
        return send_delta(run, i, request, due, tally).await;
    }
    let hash = snapshot.content_hash.clone();
    let request = PushSnapshotRequest {
        snapshot: Some(snapshot),
    };
    tally.request_bytes += request.encoded_len() as u64;
    let answer = report_client(run, i).push_snapshot(request).await;
    answered(run, i, hash, answer, due, tally);
}

/// Sends a delta of host `i`, recording it.
async fn send_delta(
    run: &Run,
    i: usize,
    request: PushDeltaRequest,
    due: Instant,
    tally: &mut Tally,
) {
    use prost::Message as _;
    let hash = request
        .snapshot
        .as_ref()
        .map(|s| s.content_hash.clone())
        .unwrap_or_default();
    tally.request_bytes += request.encoded_len() as u64;
    let answer = report_client(run, i).push_delta(request).await;
    answered(run, i, hash, answer, due, tally);
}

/// A report client for host `i`, taking snapshots of any size.
fn report_client(run: &Run, i: usize) -> ReportServiceClient<Channel> {
    ReportServiceClient::new(run.channels.of(i))
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX)
}

/// Records the answer to a report of host `i` whose content is `hash`.
fn answered(
    run: &Run,
    i: usize,
    hash: String,
    answer: Result<tonic::Response<PushSnapshotResponse>, tonic::Status>,
    due: Instant,
    tally: &mut Tally,
) {
    match answer {
        Ok(response) => {
            tally.latencies_us.push(micros(due.elapsed()));
            let PushSnapshotResponse { duplicate, .. } = response.into_inner();
            tally.duplicates += u64::from(duplicate);
            run.hosts.set_hash(i, hash);
        }
        Err(status) => *tally.errors.entry(code_name(&status)).or_default() += 1,
    }
}

/// Sends host `i`'s heartbeat, recording it.
async fn heartbeat(run: &Run, i: usize, request: HeartbeatRequest, due: Instant, t: &mut Tally) {
    use prost::Message as _;
    let mut client = ReportServiceClient::new(run.channels.of(i));
    t.request_bytes += request.encoded_len() as u64;
    match client.heartbeat(request).await {
        Ok(response) => {
            t.latencies_us.push(micros(due.elapsed()));
            let HeartbeatResponse { snapshot_needed } = response.into_inner();
            t.snapshot_needed += u64::from(snapshot_needed);
        }
        Err(status) => *t.errors.entry(code_name(&status)).or_default() += 1,
    }
}

/// The next churned snapshot of host `i` (the churn count advances).
fn churned(run: &Run, i: usize, prebuilt: Option<&[HostSnapshot; 2]>) -> HostSnapshot {
    let churn = run.hosts.churn[i].fetch_add(1, Ordering::Relaxed) + 1;
    match prebuilt {
        Some(variants) => {
            let mut s = variants[(churn % 2) as usize].clone();
            s.sequence = churn + 1;
            s
        }
        None => run.snapshot(i, churn),
    }
}

/// Runs `work` on `--concurrency` tasks, each taking the next call number in
/// turn, until it says to stop (`false`); merges what each task recorded.
async fn closed_loop<F, Fut>(run: &Arc<Run>, op: Op, record: &Arc<Record>, work: F)
where
    F: Fn(Arc<Run>, usize, Tally) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (Tally, bool)> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..run.args.concurrency.max(1) {
        let (run, next, record, work) = (
            Arc::clone(run),
            Arc::clone(&next),
            Arc::clone(record),
            work.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let (t, more) = work(Arc::clone(&run), n, tally).await;
                tally = t;
                if !more {
                    break;
                }
            }
            record.merge(op, tally);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn register(run: &Arc<Run>, record: &Arc<Record>) {
    closed_loop(run, Op::Push, record, |run, n, mut tally| async move {
        if n >= run.shape.hosts {
            return (tally, false);
        }
        let snapshot = run.snapshot(n, 0);
        push(&run, n, snapshot, None, Instant::now(), &mut tally).await;
        (tally, true)
    })
    .await;
}

async fn heartbeat_flood(run: &Arc<Run>, record: &Arc<Record>) {
    let prebuilt: Arc<Vec<HeartbeatRequest>> = Arc::new(
        (0..run.shape.hosts)
            .map(|i| run.shape.heartbeat(i, &run.hosts.hash(i), 1))
            .collect(),
    );
    let deadline = Instant::now() + run.args.duration;
    closed_loop(run, Op::Heartbeat, record, move |run, n, mut tally| {
        let prebuilt = Arc::clone(&prebuilt);
        async move {
            if Instant::now() >= deadline {
                return (tally, false);
            }
            let i = n % run.shape.hosts;
            heartbeat(&run, i, prebuilt[i].clone(), Instant::now(), &mut tally).await;
            (tally, true)
        }
    })
    .await;
}

async fn snapshot_flood(run: &Arc<Run>, record: &Arc<Record>) {
    let pool = run.args.pool.clamp(1, run.shape.hosts);
    // Spread the pool over the fleet (every environment and pool of hosts).
    let members: Vec<usize> = (0..pool).map(|k| k * run.shape.hosts / pool).collect();
    let prebuilt: Arc<Vec<(usize, [HostSnapshot; 2])>> = Arc::new(
        members
            .iter()
            .map(|&i| (i, [run.snapshot(i, 0), run.snapshot(i, 1)]))
            .collect(),
    );
    // With --deltas, each variant's delta against the other, made once: a
    // push then costs the client a copy of one container, not a comparison
    // of two whole snapshots, so that the server is what is measured.
    let deltas: Arc<Vec<[PushDeltaRequest; 2]>> = Arc::new(if run.args.deltas {
        prebuilt
            .iter()
            .map(|(_, [a, b])| {
                [
                    envparity_proto::delta::between(b, a),
                    envparity_proto::delta::between(a, b),
                ]
            })
            .collect()
    } else {
        Vec::new()
    });
    let deadline = Instant::now() + run.args.duration;
    closed_loop(run, Op::Push, record, move |run, n, mut tally| {
        let (prebuilt, deltas) = (Arc::clone(&prebuilt), Arc::clone(&deltas));
        async move {
            if Instant::now() >= deadline {
                return (tally, false);
            }
            let (i, variants) = &prebuilt[n % prebuilt.len()];
            let _turn = if run.args.deltas {
                Some(run.hosts.turn[*i].lock().await)
            } else {
                None
            };
            if let Some(both) = deltas.get(n % prebuilt.len()) {
                // As churned(): the variants alternate, the sequence grows.
                let churn = run.hosts.churn[*i].fetch_add(1, Ordering::Relaxed) + 1;
                let mut request = both[(churn % 2) as usize].clone();
                if let Some(header) = request.snapshot.as_mut() {
                    header.sequence = churn + 1;
                }
                send_delta(&run, *i, request, Instant::now(), &mut tally).await;
                return (tally, true);
            }
            let snapshot = churned(&run, *i, Some(variants));
            // The variants alternate: the other one is what the aggregator
            // holds (the first push after registration changes variant 0).
            let base = run.args.deltas.then(|| {
                let mut base = variants[usize::from(snapshot.sequence % 2 == 1)].clone();
                base.sequence = snapshot.sequence - 1;
                base
            });
            push(
                &run,
                *i,
                snapshot,
                base.as_ref(),
                Instant::now(),
                &mut tally,
            )
            .await;
            (tally, true)
        }
    })
    .await;
}

async fn steady(run: &Arc<Run>, record: &Arc<Record>) {
    let start = Instant::now();
    let deadline = start + run.args.steady_duration.unwrap_or(run.args.duration);
    let limit = Arc::new(tokio::sync::Semaphore::new(run.args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();

    // Queries: one status (its default view) and one diff (its first page
    // of --diff-limit findings) per interval, one after the other, as a
    // person or a CI job would run them.
    if let (Some(channel), false) = (run.query.clone(), run.args.query_interval.is_zero()) {
        let (interval, record) = (run.args.query_interval, Arc::clone(record));
        let diff_limit = run.args.diff_limit;
        let (a, b) = (
            run.args.diff.first().cloned().unwrap_or_default(),
            run.args.diff.get(1).cloned().unwrap_or_default(),
        );
        tasks.spawn(async move {
            let mut client = QueryServiceClient::new(channel).max_decoding_message_size(usize::MAX);
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                tick.tick().await;
                let t0 = Instant::now();
                let status = client.get_status(GetStatusRequest::default()).await;
                let t1 = Instant::now();
                let diff = client
                    .get_findings(GetFindingsRequest {
                        env_a: a.clone(),
                        env_b: b.clone(),
                        service: String::new(),
                        // One page, as the CLI asks for it.
                        limit: diff_limit,
                        ..GetFindingsRequest::default()
                    })
                    .await;
                let t2 = Instant::now();
                for (op, result, took) in [
                    (Op::Status, status.map(drop), t1 - t0),
                    (Op::Diff, diff.map(drop), t2 - t1),
                ] {
                    record.with(op, |t| match result {
                        Ok(()) => t.latencies_us.push(micros(took)),
                        Err(e) => *t.errors.entry(code_name(&e)).or_default() += 1,
                    });
                }
            }
        });
    }

    // Reports: a schedule of (due time, host, kind), dispatched as they fall
    // due; a call waits for a free slot when `--concurrency` are in flight.
    let hosts = run.shape.hosts;
    let beat = run.args.heartbeat_interval.as_secs_f64();
    let churn_every = (run.args.churn > 0.0).then(|| 1.0 / run.args.churn);
    let mut next_beat: Vec<f64> = (0..hosts).map(|i| beat * i as f64 / hosts as f64).collect();
    let mut order: BinaryHeapByTime = (0..hosts).map(|i| (next_beat[i], i)).collect();
    let mut next_churn = churn_every.unwrap_or(f64::INFINITY);
    let mut churn_host = 0usize;
    loop {
        let beat_due = order.peek_time();
        let due = beat_due.min(next_churn);
        let due_at = start + Duration::from_secs_f64(due);
        if due_at >= deadline {
            break;
        }
        tokio::time::sleep_until(due_at.into()).await;
        let permit = Arc::clone(&limit)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let run2 = Arc::clone(run);
        let record2 = Arc::clone(record);
        if next_churn <= beat_due {
            let i = (churn_host * 7919) % hosts;
            churn_host += 1;
            next_churn += churn_every.unwrap_or(f64::INFINITY);
            tasks.spawn(async move {
                let mut t = Tally::default();
                let snapshot = churned(&run2, i, None);
                push(&run2, i, snapshot, None, due_at, &mut t).await;
                record2.merge(Op::Push, t);
                drop(permit);
            });
        } else {
            let i = order.pop_host();
            next_beat[i] += beat;
            order.push(next_beat[i], i);
            tasks.spawn(async move {
                let mut t = Tally::default();
                let request = run2.shape.heartbeat(i, &run2.hosts.hash(i), 1);
                heartbeat(&run2, i, request, due_at, &mut t).await;
                record2.merge(Op::Heartbeat, t);
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// A min-heap of (due second, host).
struct BinaryHeapByTime(std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>>);

impl FromIterator<(f64, usize)> for BinaryHeapByTime {
    fn from_iter<I: IntoIterator<Item = (f64, usize)>>(iter: I) -> Self {
        let mut h = BinaryHeapByTime(std::collections::BinaryHeap::new());
        for (t, i) in iter {
            h.push(t, i);
        }
        h
    }
}

impl BinaryHeapByTime {
    fn push(&mut self, t: f64, i: usize) {
        // Nanoseconds keep the order exact without float comparisons.
        self.0.push(std::cmp::Reverse(((t * 1e9) as u64, i)));
    }
    fn peek_time(&self) -> f64 {
        self.0.peek().map_or(f64::INFINITY, |r| r.0.0 as f64 / 1e9)
    }
    fn pop_host(&mut self) -> usize {
        self.0.pop().map(|r| r.0.1).unwrap_or_default()
    }
}

async fn connect_all(args: &Args, server: &str, shape: &Shape) -> BoxResult<Channels> {
    let plain = ClientTls {
        plaintext: Plaintext::Loopback,
        ..ClientTls::default()
    };
    let started = Instant::now();
    let channels = match &args.tls_dir {
        None => {
            let mut v = Vec::new();
            for _ in 0..args.connections.max(1) {
                v.push(grpc::connect(server, &plain).await?);
            }
            v
        }
        Some(dir) => {
            // One connection per host, each with its own certificate, opened
            // a few at a time.
            let limit = Arc::new(tokio::sync::Semaphore::new(32));
            let mut tasks = Vec::new();
            for id in shape.host_ids() {
                let (dir, server, limit) = (dir.clone(), server.to_owned(), Arc::clone(&limit));
                tasks.push(tokio::spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    grpc::connect(&server, &grpc::agent_tls(&dir, &id)).await
                }));
            }
            let mut v = Vec::new();
            for t in tasks {
                v.push(t.await??);
            }
            v
        }
    };
    println!(
        "connected {} connection(s) to {server} in {:.2} s",
        channels.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Channels(Arc::new(channels)))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("envparity-loadgen: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> BoxResult<()> {
    let boot = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let shape = Shape {
        hosts: args.hosts,
        containers: args.containers,
        replicas: args.replicas,
        env_vars: args.env_vars,
        clear_env: args.clear_env.min(args.env_vars),
        env_value_bytes: args.env_value_bytes,
        labels: args.labels,
        label_bytes: args.label_bytes,
        boot_id: format!("loadgen-{}-{boot}", std::process::id()),
        ..Shape::default()
    };
    if shape.hosts == 0 {
        return Err("--hosts must be at least 1".into());
    }
    let server = match (&args.server, args.echo) {
        (_, true) => {
            let threads = args.echo_threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
            });
            echo::start_echo(threads, args.tls_dir.as_deref())?
        }
        (Some(s), false) => s.clone(),
        (None, false) => return Err("give --server URL or --echo".into()),
    };
    {
        use prost::Message as _;
        println!(
            "fleet: {} hosts × {} containers, {} services, {} environments; snapshot {} bytes; {}",
            shape.hosts,
            shape.containers,
            shape.services(),
            shape.environments.len(),
            shape.snapshot(0, 0).encoded_len(),
            if args.tls_dir.is_some() {
                "mutual TLS, one connection per host"
            } else {
                "plain text"
            }
        );
    }
    let channels = connect_all(&args, &server, &shape).await?;
    let query = match (&args.tls_dir, args.echo) {
        (_, true) => None,
        (Some(dir), false) => Some(
            grpc::connect(
                &server,
                &grpc::pki_tls(dir, &format!("client-{}", args.query_client)),
            )
            .await?,
        ),
        (None, false) => Some(
            grpc::connect(
                &server,
                &ClientTls {
                    plaintext: Plaintext::Loopback,
                    ..ClientTls::default()
                },
            )
            .await?,
        ),
    };
    let server_pid = args.server_pid.map(|p| p.to_string());
    let run = Arc::new(Run {
        hosts: Hosts::new(shape.hosts),
        shape,
        channels,
        query,
        args,
    });
    let phases = run.args.phases.clone();
    let mut any_error = false;
    for phase in phases {
        let record = Arc::new(Record::default());
        let sample = || {
            (
                server_pid.as_deref().and_then(report::proc_sample),
                report::proc_sample("self"),
            )
        };
        let load_before = report::loadavg();
        let (server0, me0) = sample();
        let started = Instant::now();
        match phase {
            Phase::Register => register(&run, &record).await,
            Phase::Heartbeat => heartbeat_flood(&run, &record).await,
            Phase::Snapshot => snapshot_flood(&run, &record).await,
            Phase::Steady => {
                if let Some(mark) = &run.args.steady_mark {
                    std::fs::write(mark, b"").map_err(|e| {
                        format!("cannot create --steady-mark {}: {e}", mark.display())
                    })?;
                }
                steady(&run, &record).await
            }
        }
        let elapsed = started.elapsed();
        let (server1, me1) = sample();
        any_error |= record
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .any(|t| !t.errors.is_empty());
        let json = report::report(
            &run.args,
            phase,
            elapsed,
            &record,
            (server0, server1),
            (me0, me1),
            (load_before, report::loadavg()),
        );
        if let Some(path) = &run.args.json {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{json}")?;
        }
    }
    if any_error {
        return Err("some calls failed (see errors above)".into());
    }
    Ok(())
}
