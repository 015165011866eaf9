//! `envparity-loadgen` against a real aggregator, briefly: the load generator
//! and its synthetic fleet are what docs/benchmarks.md measures with, so they
//! must keep speaking the current API. Only that reports and queries were
//! acknowledged is asserted — never how fast (benchmarks are not tests).

use std::process::Command;
use std::time::Duration;

use envparity_tests::{Fleet, Result, cargo_bin, output};

#[test]
fn loadgen_reports_are_acknowledged_over_mutual_tls() -> Result<()> {
    let hosts = ["host-00000", "host-00001", "host-00002"];
    let fleet = hosts
        .iter()
        .fold(Fleet::builder(), |b, h| b.identity(h))
        .start()?;
    let _aggregator = fleet.start_aggregator()?;
    let json = fleet.dir().join("loadgen.jsonl");
    let mut loadgen = Command::new(cargo_bin("envparity-loadgen")?);
    loadgen
        .arg("--server")
        .arg(fleet.server()?)
        .arg("--tls-dir")
        .arg(fleet.pki()?)
        .args(["--query-client", "cli", "--hosts", "3", "--containers", "5"])
        .args(["--phases", "register,steady", "--duration", "2s"])
        .args(["--heartbeat-interval", "1s", "--churn", "1"])
        .args(["--query-interval", "1s"])
        .arg("--json")
        .arg(&json);
    let out = output(loadgen, Duration::from_secs(60))?;
    assert!(out.status.success(), "envparity-loadgen failed: {out:?}");

    let text = std::fs::read_to_string(&json).expect("the loadgen wrote its JSON");
    let phases: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let [register, steady] = &phases[..] else {
        panic!("expected two phases: {text}");
    };
    assert_eq!(register["ops"]["push"]["ok"], 3, "{register}");
    for op in ["heartbeat", "status", "diff"] {
        assert!(
            steady["ops"][op]["ok"].as_u64().is_some_and(|n| n > 0),
            "no acknowledged {op}: {steady}"
        );
    }
    for phase in &phases {
        for (op, figures) in phase["ops"].as_object().expect("ops") {
            assert_eq!(figures["errors"], 0, "{op} errors: {phase}");
        }
    }
    Ok(())
}
