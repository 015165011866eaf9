//! A report, as an agent (or anyone who can reach the port) sends it, through
//! the aggregator: decoding, validation, ingest into a fleet of three
//! environments, replay, heartbeat, and every query the CLI makes.
//!
//! Input: the first byte picks the form of the rest. Even: raw bytes, decoded
//! with prost as a `PushSnapshotRequest` and as a `HeartbeatRequest` (what
//! tonic decodes off the wire). Odd: a structured report whose strings are
//! often hostile, encoded and decoded the same way (so that deep paths are
//! reached without the fuzzer having to learn protobuf framing).
//!
//! Asserted, besides "never panics":
//! - validation decides: a report `validate::snapshot` refuses is answered
//!   `INVALID_ARGUMENT` with the same message and nothing is written; one it
//!   accepts is stored, and what is stored decodes back to what was sent;
//! - a replay of an accepted report is acknowledged as a duplicate with the
//!   same content hash, and its heartbeat says no snapshot is needed;
//! - a heartbeat is refused exactly when `validate::heartbeat` refuses it;
//! - every query answers (host list, status, findings for every pair,
//!   service, history, gate, alerts, policy), the host is listed, and the
//!   metrics render;
//! - what the CLI prints of those answers keeps the properties the `render`
//!   target checks (no escapes in tables, JSON parses back to the same
//!   values; YAML is left to the `render` target, it halved the speed here).
#![no_main]

use std::collections::BTreeSet;
use std::time::SystemTime;

use arbitrary::{Arbitrary, Unstructured};
use envparity_aggregator::cli::output;
use envparity_aggregator::cli::render::Out;
use envparity_aggregator::parity::Severity;
use envparity_aggregator::server::{self, validate};
use envparity_fuzz::fleet::{Aggregator, runtime};
use envparity_fuzz::render::{CHEAP, check_in};
use envparity_fuzz::report::{FuzzReport, baseline, heartbeat_for};
use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::report_service_server::ReportService;
use envparity_proto::v1::{
    EngineState, ExplainRequest, GateRequest, GetFindingsRequest, GetHistoryRequest,
    GetPolicyRequest, GetServiceRequest, GetStatusRequest, HeartbeatRequest, HostSnapshot,
    ListAlertsRequest, ListHostsRequest, PushSnapshotRequest,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::{Code, Request};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let wire: Vec<u8> = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(report) = FuzzReport::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        PushSnapshotRequest {
            snapshot: Some(report.resolve()),
        }
        .encode_to_vec()
    };
    runtime().block_on(async {
        if let Ok(request) = PushSnapshotRequest::decode(wire.as_slice()) {
            push(request).await;
        }
        if let Ok(hb) = HeartbeatRequest::decode(wire.as_slice()) {
            heartbeat(hb).await;
        }
    });
});

async fn push(request: PushSnapshotRequest) {
    let agg = Aggregator::with_baseline();
    let version = agg.store.version();
    let verdict = request.snapshot.as_ref().map(validate::snapshot);
    let answer = agg
        .report
        .push_snapshot(Request::new(request.clone()))
        .await;
    let accepted = match (verdict, answer) {
        (None, Err(status)) => {
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(agg.store.version(), version, "a refused report wrote");
            return;
        }
        (Some(Err(invalid)), Err(status)) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert_eq!(status.message(), invalid.to_string());
            assert_eq!(agg.store.version(), version, "a refused report wrote");
            return;
        }
        (Some(Ok(())), Ok(answer)) => (request.snapshot.expect("validated"), answer.into_inner()),
        (verdict, answer) => panic!("validation said {verdict:?}, the service {answer:?}"),
    };
    let (snapshot, answer) = accepted;

    // A report of a baseline host from the same agent run with a sequence
    // already seen is a replay: acknowledged, nothing changes.
    let known = baseline()
        .into_iter()
        .find(|h| h.host_id == snapshot.host_id);
    let boot = |s: &HostSnapshot| s.agent.as_ref().map(|a| a.boot_id.clone());
    let replayed = known
        .as_ref()
        .is_some_and(|k| boot(k) == boot(&snapshot) && snapshot.sequence <= k.sequence);
    let stored = agg
        .store
        .snapshot(&snapshot.host_id)
        .expect("an accepted report is stored");
    if replayed {
        let known = known.expect("replayed");
        assert!(
            answer.duplicate,
            "a replay of a known report is not a duplicate"
        );
        assert_eq!(answer.content_hash, known.content_hash);
        assert_eq!(stored, known, "a replay changed the stored snapshot");
        query(&agg, &stored).await;
        return;
    }
    assert!(!answer.duplicate, "a new report is taken for a duplicate");
    assert_eq!(answer.content_hash, snapshot.content_hash);

    // What is stored is what was sent (except containers and engine facts
    // when the engine was unreachable and the host already known: the last
    // observed ones are kept).
    match (&known, EngineState::try_from(snapshot.engine_state)) {
        (Some(prev), Ok(EngineState::Unreachable)) => {
            assert_eq!(stored.containers, prev.containers);
            assert_eq!(stored.engine, prev.engine);
        }
        _ => assert_eq!(stored, snapshot, "the stored snapshot differs"),
    }

    // A replay is a duplicate; its heartbeat needs no snapshot.
    let replay = agg
        .report
        .push_snapshot(Request::new(PushSnapshotRequest {
            snapshot: Some(snapshot.clone()),
        }))
        .await
        .expect("a replay is acknowledged")
        .into_inner();
    assert!(replay.duplicate, "a replay is not a duplicate");
    assert_eq!(replay.content_hash, snapshot.content_hash);
    let hb = heartbeat_for(&snapshot);
    validate::heartbeat(&hb).expect("the heartbeat of a valid report is valid");
    let needed = agg
        .report
        .heartbeat(Request::new(hb))
        .await
        .expect("the heartbeat of an accepted report is accepted")
        .into_inner()
        .snapshot_needed;
    assert!(
        !needed,
        "a heartbeat right after the snapshot asks for it again"
    );

    query(&agg, &stored).await;
}

/// The CLI's rendering checks that fit this target's budget.
fn check<T: serde::Serialize>(
    value: &T,
    placed: &[String],
    render: impl Fn(&Out, &T) -> anyhow::Result<()>,
) {
    check_in(CHEAP, value, placed, render);
}

/// Every query the CLI makes must answer, and what the CLI prints of the
/// answers keeps its properties (`envparity_fuzz::render`).
async fn query(agg: &Aggregator, snapshot: &HostSnapshot) {
    let q = &agg.query;
    let hosts = q
        .list_hosts(Request::new(ListHostsRequest::default()))
        .await
        .expect("hosts")
        .into_inner();
    assert!(hosts.hosts.iter().any(|h| h.host_id == snapshot.host_id));
    let hosts = output::Hosts::from_proto(&hosts, SystemTime::now());
    check(&hosts, std::slice::from_ref(&snapshot.host_id), |o, v| {
        o.hosts(v)
    });

    let status = q
        .get_status(Request::new(GetStatusRequest::default()))
        .await
        .expect("status")
        .into_inner();
    let envs = status.environments.clone();
    check(&output::Status::from_proto(&status, false), &[], |o, v| {
        o.status(v)
    });
    let all = q
        .get_findings(Request::new(GetFindingsRequest::default()))
        .await
        .expect("all findings")
        .into_inner();
    let findings = output::Findings {
        schema_version: output::SCHEMA_VERSION,
        min_severity: None,
        kind: None,
        service: None,
        fail_on: Some(Severity::Warning),
        passed: false,
        findings: all
            .findings
            .iter()
            .map(output::Finding::from_proto)
            .collect(),
    };
    check(&findings, &[], |o, v| o.findings(v));
    for a in &envs {
        for b in &envs {
            if a != b {
                let resp = q
                    .get_findings(Request::new(GetFindingsRequest {
                        env_a: a.clone(),
                        env_b: b.clone(),
                        service: String::new(),
                        ..GetFindingsRequest::default()
                    }))
                    .await
                    .expect("findings between present environments")
                    .into_inner();
                // Rendered for the reporting host's environment only: the
                // other pairs hold the baseline's strings, checked already.
                if *a == snapshot.environment {
                    let diff = output::Diff::from_proto(a.clone(), b.clone(), None, &resp);
                    check(&diff, &[], |o, v| o.diff(v));
                }
            }
        }
    }
    let services: BTreeSet<String> = snapshot
        .containers
        .iter()
        .filter_map(|c| c.service.as_ref().map(|s| s.name.clone()))
        .chain(["shop".to_owned()])
        .collect();
    for service in &services {
        let resp = q
            .get_service(Request::new(GetServiceRequest {
                service: service.clone(),
            }))
            .await
            .expect("a running service is known")
            .into_inner();
        check(
            &output::Service::from_proto(&resp),
            std::slice::from_ref(service),
            |o, v| o.service(v),
        );
        for (a, b) in envs.iter().zip(envs.iter().skip(1)) {
            // Explained by the aggregator, as the CLI asks; a service that
            // does not run on both sides is refused, never a panic.
            match q
                .explain(Request::new(ExplainRequest {
                    service: service.clone(),
                    env_a: a.clone(),
                    env_b: b.clone(),
                }))
                .await
            {
                Ok(e) => check(&output::Explain::from_proto(e.get_ref()), &[], |o, v| {
                    o.explain(v)
                }),
                Err(s) => assert!(
                    matches!(s.code(), Code::FailedPrecondition | Code::NotFound),
                    "explain refused with {s:?}"
                ),
            }
        }
        q.get_status(Request::new(GetStatusRequest {
            service: service.clone(),
            all: true,
            ..GetStatusRequest::default()
        }))
        .await
        .expect("status of a running service");
        let history = q
            .get_history(Request::new(GetHistoryRequest {
                service: service.clone(),
                limit: 0,
                events_before: 0,
                findings_before: 0,
            }))
            .await
            .expect("history")
            .into_inner();
        check(&output::History::from_proto(&history), &[], |o, v| {
            o.history(v)
        });
        // The gate may refuse, or not know the target: it must answer.
        for to in [snapshot.environment.as_str(), "production"] {
            if let Ok(gate) = q
                .gate(Request::new(GateRequest {
                    service: service.clone(),
                    to: to.to_owned(),
                    image: String::new(),
                }))
                .await
            {
                let gate = output::Gate::from_proto(service.clone(), to.to_owned(), gate.get_ref());
                check(&gate, &[], |o, v| o.gate(v));
            }
        }
    }
    let alerts = q
        .list_alerts(Request::new(ListAlertsRequest {}))
        .await
        .expect("alerts")
        .into_inner();
    check(&output::Alerts::from_proto(&alerts), &[], |o, v| {
        o.alerts(v)
    });
    q.get_policy(Request::new(GetPolicyRequest {}))
        .await
        .expect("policy");
    let census = server::census(&agg.fleet, &agg.alerting, SystemTime::now());
    let _ = agg.metrics.render(&census);
}

async fn heartbeat(hb: HeartbeatRequest) {
    let agg = Aggregator::with_baseline();
    let verdict = validate::heartbeat(&hb);
    let answer = agg.report.heartbeat(Request::new(hb.clone())).await;
    match (verdict, answer) {
        (Err(invalid), Err(status)) => {
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(status.message(), invalid.to_string());
        }
        (Ok(()), Ok(answer)) => {
            let known = baseline().into_iter().find(|h| {
                h.host_id == hb.host_id
                    && h.content_hash == hb.content_hash
                    && h.environment == hb.environment
            });
            assert_eq!(answer.into_inner().snapshot_needed, known.is_none());
        }
        (verdict, answer) => panic!("validation said {verdict:?}, the service {answer:?}"),
    }
}
