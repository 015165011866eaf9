//! `envparity-webbench`: loads a page of the web view in Debian's headless
//! Chromium, driven over WebDriver by the harness's own client
//! ([`envparity_tests::browser`]), `--samples` times, and reports what the
//! browser measured: first contentful paint (`performance.getEntriesByName(
//! 'first-contentful-paint')`), time to the first byte of the page, and the
//! bytes transferred (the page, its style sheet and script).
//!
//! Each sample is two loads in a fresh tab state (`about:blank` between):
//! *cold*, after the browser's cache is cleared (a first visit: the page,
//! the style sheet and the script all come over the wire), then *warm* (a
//! later visit: the immutable assets come from the cache, the page is
//! fetched again). With 20 samples the statistics are the median and the
//! slowest of 20, not a p99. `scripts/bench.sh` (part `web`) runs it
//! against `envparity serve` with 10,000 simulated hosts reporting.
//!
//! Benchmarks are never asserted on: docs/benchmarks.md says how the figures
//! are produced and read.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use envparity_tests::ScratchDir;
use envparity_tests::browser::{Browser, BrowserOptions};
use serde_json::{Value, json};

/// Loads a web view page in headless Chromium and reports its paint timing.
#[derive(Debug, Parser)]
#[command(name = "envparity-webbench", version)]
struct Args {
    /// The page: `http://127.0.0.1:WEBPORT/` (a plain-text loopback web
    /// listener; the browser trusts no test CA).
    #[arg(long)]
    url: String,
    /// Samples (each a cold and a warm load).
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// How long one load may take to show its first contentful paint.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    timeout: Duration,
    /// Append one JSON object per load and one for the run to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The run's name in the JSON lines.
    #[arg(long, default_value = "web")]
    label: String,
}

/// What the page itself says of one load (JavaScript in the page). The
/// assets are what the page loaded (style sheet, script), not what the live
/// script asked for after (the `/events` stream, and the page fetched again
/// when an event came: under ingest that can happen within a load).
const MEASURE: &str = "\
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];\
    if (!fcp) return null;\
    const nav = performance.getEntriesByType('navigation')[0];\
    const assets = performance.getEntriesByType('resource')\
      .filter(r => r.initiatorType !== 'fetch' && !r.name.endsWith('/events'));\
    return {\
      fcp_ms: fcp.startTime,\
      ttfb_ms: nav.responseStart,\
      dom_content_loaded_ms: nav.domContentLoadedEventEnd,\
      page_bytes: nav.decodedBodySize,\
      page_transferred: nav.transferSize,\
      assets: assets.map(r => r.name.replace(/^.*\\//, '')),\
      assets_bytes: assets.reduce((n, r) => n + r.decodedBodySize, 0),\
      assets_transferred: assets.reduce((n, r) => n + r.transferSize, 0),\
    };";

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("envparity-webbench: {}: {e}", args.url);
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let browser = Browser::start_in(ScratchDir::new()?, BrowserOptions::default())?;
    let mut json = match &args.json {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut loads: Vec<(&str, Value)> = Vec::new();
    for sample in 1..=args.samples {
        for cache in ["cold", "warm"] {
            if cache == "cold" {
                browser.devtools("Network.clearBrowserCache", json!({}))?;
            }
            browser.goto("about:blank")?;
            browser.goto(&args.url)?;
            let started = Instant::now();
            let measured = loop {
                let value = browser.execute(MEASURE)?;
                if !value.is_null() {
                    break value;
                }
                if started.elapsed() > args.timeout {
                    return Err(
                        format!("no first contentful paint after {:?}", args.timeout).into(),
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            println!(
                "sample {sample:>3} {cache}: first contentful paint {:7.1} ms, first byte {:7.1} ms, page {} B, transferred {} B",
                measured["fcp_ms"].as_f64().unwrap_or(f64::NAN),
                measured["ttfb_ms"].as_f64().unwrap_or(f64::NAN),
                measured["page_bytes"],
                transferred(&measured),
            );
            if let Some(file) = json.as_mut() {
                let line = json!({ "label": args.label, "sample": sample, "cache": cache, "load": measured });
                writeln!(file, "{line}")?;
            }
            loads.push((cache, measured));
        }
    }
    for cache in ["cold", "warm"] {
        let of = |key: &str| -> Vec<f64> {
            let mut v: Vec<f64> = loads
                .iter()
                .filter(|(c, _)| *c == cache)
                .filter_map(|(_, m)| m[key].as_f64())
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (fcp, ttfb) = (of("fcp_ms"), of("ttfb_ms"));
        let mut bytes: Vec<u64> = loads
            .iter()
            .filter(|(c, _)| *c == cache)
            .map(|(_, m)| transferred(m))
            .collect();
        bytes.sort_unstable();
        let n = fcp.len();
        let summary = json!({
            "label": args.label,
            "cache": cache,
            "loads": n,
            "fcp_ms_median": median(&fcp),
            "fcp_ms_max": fcp.last(),
            "ttfb_ms_median": median(&ttfb),
            "ttfb_ms_max": ttfb.last(),
            "transferred_bytes_median": bytes.get(n / 2),
        });
        println!(
            "{cache}, {n} loads: first contentful paint median {:.1} ms, slowest {:.1} ms; first byte median {:.1} ms, slowest {:.1} ms; transferred median {} B",
            median(&fcp),
            fcp.last().copied().unwrap_or(f64::NAN),
            median(&ttfb),
            ttfb.last().copied().unwrap_or(f64::NAN),
            bytes.get(n / 2).copied().unwrap_or_default(),
        );
        if let Some(file) = json.as_mut() {
            writeln!(file, "{summary}")?;
        }
    }
    Ok(())
}

/// The bytes one load moved over the wire: the page and its assets
/// (headers included; 0 for what came from the cache).
fn transferred(load: &Value) -> u64 {
    load["page_transferred"].as_u64().unwrap_or(0)
        + load["assets_transferred"].as_u64().unwrap_or(0)
}

/// The middle value of `sorted` (the mean of the two middle ones for an
/// even count).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
