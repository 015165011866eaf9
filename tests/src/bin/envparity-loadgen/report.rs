//! What the load generator prints after each phase: the throughput and
//! latencies of each kind of call, and the CPU and memory of the server
//! and of itself, sampled from /proc.

use std::fmt::Write as _;

use super::*;

/// CPU time (user + system) and memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ProcSample {
    cpu_s: f64,
    rss_kib: u64,
    hwm_kib: u64,
}

pub(super) fn proc_sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on every Linux this runs on.
    Some(ProcSample {
        cpu_s: ticks / 100.0,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Prints and returns (as JSON) what a phase measured.
pub(super) fn report(
    args: &Args,
    phase: Phase,
    elapsed: Duration,
    record: &Record,
    server: (Option<ProcSample>, Option<ProcSample>),
    me: (Option<ProcSample>, Option<ProcSample>),
    load: (String, String),
) -> serde_json::Value {
    let secs = elapsed.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "phase {} ({}): {:.2} s, load {} -> {}",
        phase.name(),
        if args.echo {
            "echo baseline"
        } else {
            "aggregator"
        },
        secs,
        load.0,
        load.1
    );
    let mut ops = serde_json::Map::new();
    let map = record
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (op, t) in map.iter() {
        let mut lat = t.latencies_us.clone();
        lat.sort_unstable();
        let ok = lat.len() as u64;
        let errors: u64 = t.errors.values().sum();
        let (p50, p90, p99, max) = (
            percentile(&lat, 50.0),
            percentile(&lat, 90.0),
            percentile(&lat, 99.0),
            lat.last().map_or(0.0, |&m| f64::from(m) / 1000.0),
        );
        let rate = ok as f64 / secs;
        let _ = writeln!(
            out,
            "  {:<9} {ok:>8} ok {rate:>10.1}/s  p50 {p50:>8.2} ms  p90 {p90:>8.2} ms  p99 {p99:>8.2} ms  max {max:>8.2} ms  errors {errors}{}{}{}",
            op.name(),
            if t.errors.is_empty() {
                String::new()
            } else {
                format!(" {:?}", t.errors)
            },
            if t.snapshot_needed > 0 {
                format!("  snapshot_needed {}", t.snapshot_needed)
            } else {
                String::new()
            },
            if t.duplicates > 0 {
                format!("  duplicates {}", t.duplicates)
            } else {
                String::new()
            },
        );
        ops.insert(
            op.name().to_owned(),
            serde_json::json!({
                "ok": ok,
                "per_second": rate,
                "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max,
                "errors": errors,
                "errors_by_code": t.errors,
                "snapshot_needed": t.snapshot_needed,
                "duplicates": t.duplicates,
                "mean_request_bytes": t.request_bytes.checked_div(ok + errors).unwrap_or(0),
            }),
        );
    }
    let cpu = |(a, b): (Option<ProcSample>, Option<ProcSample>)| match (a, b) {
        (Some(a), Some(b)) => serde_json::json!({
            "cpu_s": b.cpu_s - a.cpu_s,
            "cores": (b.cpu_s - a.cpu_s) / secs,
            "rss_kib": b.rss_kib,
            "hwm_kib": b.hwm_kib,
        }),
        _ => serde_json::Value::Null,
    };
    let (server_json, me_json) = (cpu(server), cpu(me));
    for (who, v) in [("server", &server_json), ("loadgen", &me_json)] {
        if !v.is_null() {
            let _ = writeln!(
                out,
                "  {who:<9} CPU {:.2} s ({:.2} cores), RSS {} MiB, peak {} MiB",
                v["cpu_s"].as_f64().unwrap_or_default(),
                v["cores"].as_f64().unwrap_or_default(),
                v["rss_kib"].as_u64().unwrap_or_default() / 1024,
                v["hwm_kib"].as_u64().unwrap_or_default() / 1024,
            );
        }
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
    serde_json::json!({
        "label": args.label,
        "phase": phase.name(),
        "target": if args.echo { "echo" } else { "aggregator" },
        "tls": args.tls_dir.is_some(),
        "hosts": args.hosts,
        "containers": args.containers,
        "concurrency": args.concurrency,
        "deltas": args.deltas,
        "seconds": secs,
        "load_before": load.0,
        "load_after": load.1,
        "ops": ops,
        "server": server_json,
        "loadgen": me_json,
    })
}
