//! The query answers against the whole-fleet computations they replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use envparity_proto::time::to_timestamp;
use envparity_proto::v1::{
    EnvironmentSummary, GetFindingsRequest, GetFindingsResponse, GetServiceRequest,
    GetServiceResponse, GetStatusRequest, GetStatusResponse, HeartbeatRequest, HostState,
    HostStateCount, ListHostsRequest, ListHostsResponse, ServiceInstance, StatusCell, StatusRow,
    StatusSummary,
};
use tonic::Status;

use super::checks::{known_environment, known_service, non_empty};
use super::findings::findings;
use super::listing::{hosts, service};
use super::status::{name_filter, skip_of, status};
use crate::fleet::tests::{empty_fleet, random_report};
use crate::fleet::{FleetView, Interner, LoadedPolicy};
use crate::history::content_identity;
use crate::parity::{self, Finding, FindingKey, Kind, Policy, Scope, judge};
use crate::server::convert::{self, count};
use crate::server::page::{self, RowPlace};

// The whole-fleet computations `status` and `diff` made before the
// status grid and the ledger answered them, kept as the oracle: every
// cell from every container of a copy of the fleet, every pair
// evaluated afresh over every host.

fn cells_by_service(view: &FleetView) -> BTreeMap<(String, String), StatusCell> {
    let mut cells: BTreeMap<(String, String), StatusCell> = BTreeMap::new();
    for (h, state) in &view.hosts {
        let environment = &h.snapshot.environment;
        for c in h.snapshot.containers.iter().filter(|c| !c.unmanaged) {
            let Some(service) = c.service.as_ref() else {
                continue;
            };
            let cell = cells
                .entry((service.name.clone(), environment.clone()))
                .or_insert_with(|| StatusCell {
                    environment: environment.clone(),
                    ..StatusCell::default()
                });
            cell.replicas += 1;
            cell.stale |= *state != HostState::Fresh;
            cell.digests.push(content_identity(c));
            if let Some(v) = c.image.as_ref().and_then(|i| {
                i.oci_labels
                    .iter()
                    .find(|l| l.key == "org.opencontainers.image.version")
            }) {
                cell.versions.push(v.value.clone());
            }
        }
    }
    for cell in cells.values_mut() {
        cell.digests.sort();
        cell.digests.dedup();
        cell.versions.sort();
        cell.versions.dedup();
    }
    cells
}

fn known_service_in(view: &FleetView, s: &str) -> Result<(), Status> {
    known_service(&view.services(), s)
}

/// Status as the whole-fleet copy answers it: every finding judged,
/// every cell from every managed container; a row per service a managed
/// container runs, those that drift first, then (with `all`) the others;
/// the findings of the rows of the page and (on the first page) the
/// host-level and unmanaged-container ones.
fn status_over_the_fleet(
    view: &FleetView,
    req: GetStatusRequest,
) -> Result<GetStatusResponse, Status> {
    let service = non_empty(req.service);
    if let Some(s) = &service {
        known_service_in(view, s)?;
    }
    let environment = non_empty(req.environment);
    if let Some(e) = &environment {
        known_environment(&view.environments(), e)?;
    }
    let limit = match page::limit(req.limit, page::MAX_ROWS, "GetStatusRequest.limit")? {
        0 => page::DEFAULT_STATUS_ROWS,
        n => n,
    } as usize;
    let after = page::status_place(&req.page)?;
    let needle = name_filter(&req.name_contains, service.is_some())?.map(str::to_lowercase);
    let skip = skip_of(req.skip, after.is_some())?;
    let involves = |f: &Finding| {
        environment
            .as_deref()
            .is_none_or(|env| f.environments().any(|e| e == env))
    };
    let findings: Vec<Finding> = view
        .findings(service.as_deref())
        .into_iter()
        .filter(|f| involves(f))
        .collect();
    let mut tally = crate::parity::Tally::default();
    for f in &findings {
        tally.add(f.severity, f.status.state);
    }
    let drifting: BTreeSet<(&str, &str)> = findings
        .iter()
        .filter(|f| !f.service.is_empty() && f.kind != Kind::UnmanagedContainer && f.counts())
        .flat_map(|f| f.environments().map(|e| (f.service.as_str(), e)))
        .collect();
    let columns = match &environment {
        Some(e) => vec![e.clone()],
        None => view.environments(),
    };
    let mut cells = cells_by_service(view);
    let managed: BTreeSet<String> = cells.keys().map(|(s, _)| s.clone()).collect();
    let mut rows: Vec<RowPlace> = managed
        .into_iter()
        .filter(|s| service.as_ref().is_none_or(|wanted| wanted == s))
        .filter(|s| {
            environment.as_ref().is_none_or(|env| {
                cells.contains_key(&(s.clone(), env.clone()))
                    || drifting.contains(&(s.as_str(), env.as_str()))
            })
        })
        .map(|s| RowPlace {
            calm: !drifting.iter().any(|(d, _)| *d == s),
            service: s,
        })
        .collect();
    rows.sort();
    let services = rows.len();
    let services_drifting = rows.iter().filter(|r| !r.calm).count();
    if req.calm_only {
        rows.retain(|r| r.calm);
    } else if !req.all {
        rows.retain(|r| !r.calm);
    }
    if let Some(needle) = &needle {
        rows.retain(|r| r.service.to_lowercase().contains(needle.as_str()));
    }
    let rows_total = rows.len();
    let rest: Vec<RowPlace> = rows
        .into_iter()
        .filter(|r| after.as_ref().is_none_or(|a| a < r))
        .skip(skip)
        .collect();
    let next_page = rest
        .get(limit)
        .map(|_| page::status_token(&rest[limit - 1]))
        .unwrap_or_default();
    let shown: Vec<RowPlace> = rest.into_iter().take(limit).collect();
    let page_findings: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            if f.kind.is_host_level() || f.kind == Kind::UnmanagedContainer {
                after.is_none() && skip == 0
            } else {
                shown.iter().any(|r| r.service == f.service)
            }
        })
        .collect();
    let states_in = |env: Option<&str>| -> Vec<HostStateCount> {
        let mut states: BTreeMap<HostState, u32> = BTreeMap::new();
        for (h, state) in &view.hosts {
            if env.is_none_or(|e| h.snapshot.environment == e) {
                *states.entry(*state).or_default() += 1;
            }
        }
        states
            .into_iter()
            .map(|(state, hosts)| HostStateCount {
                state: state as i32,
                hosts,
            })
            .collect()
    };
    let environment_summaries = if req.by_environment {
        columns
            .iter()
            .map(|env| {
                let mut tally = crate::parity::Tally::default();
                for f in findings
                    .iter()
                    .filter(|f| f.environments().any(|e| e == env))
                {
                    tally.add(f.severity, f.status.state);
                }
                EnvironmentSummary {
                    environment: env.clone(),
                    host_states: states_in(Some(env)),
                    findings: Some(convert::tally(&tally)),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut host_states: BTreeMap<HostState, u32> = BTreeMap::new();
    for (h, state) in &view.hosts {
        if environment
            .as_ref()
            .is_none_or(|e| h.snapshot.environment == *e)
        {
            *host_states.entry(*state).or_default() += 1;
        }
    }
    let hosts: Vec<&HostState> = view
        .hosts
        .iter()
        .filter(|(h, _)| {
            environment
                .as_ref()
                .is_none_or(|e| h.snapshot.environment == *e)
        })
        .map(|(_, s)| s)
        .collect();
    Ok(GetStatusResponse {
        rows: shown
            .iter()
            .map(|row| StatusRow {
                service: row.service.clone(),
                cells: columns
                    .iter()
                    .map(|env| {
                        let key = (row.service.clone(), env.clone());
                        let mut cell = cells.remove(&key).unwrap_or_else(|| StatusCell {
                            environment: env.clone(),
                            ..StatusCell::default()
                        });
                        cell.drift = drifting.contains(&(row.service.as_str(), env.as_str()));
                        cell
                    })
                    .collect(),
            })
            .collect(),
        environments: columns,
        findings: page_findings.into_iter().map(convert::finding).collect(),
        rows_total: count(rows_total),
        next_page,
        summary: Some(StatusSummary {
            services: count(services),
            services_drifting: count(services_drifting),
            hosts: count(hosts.len()),
            hosts_not_current: count(hosts.iter().filter(|s| ***s != HostState::Fresh).count()),
            findings: Some(convert::tally(&tally)),
            host_states: host_states
                .into_iter()
                .map(|(state, hosts)| HostStateCount {
                    state: state as i32,
                    hosts,
                })
                .collect(),
        }),
        environment_summaries,
    })
}

fn evaluate_over_the_fleet(view: &FleetView, scope: &Scope) -> Vec<Finding> {
    let views = view.host_views();
    let seen: BTreeMap<FindingKey, (SystemTime, SystemTime)> = view
        .open
        .iter()
        .map(|e| (e.finding.identity(), (e.first_seen, e.last_seen)))
        .collect();
    parity::evaluate(&views, view.policy(), scope)
        .into_iter()
        .map(|f| {
            let s = seen.get(&f.identity()).copied();
            judge(f, s, view.policy(), view.policy().grace, view.now)
        })
        .collect()
}

fn findings_over_the_fleet(
    view: &FleetView,
    req: GetFindingsRequest,
) -> Result<GetFindingsResponse, Status> {
    let service = non_empty(req.service);
    if let Some(s) = &service {
        known_service_in(view, s)?;
    }
    let (findings, environments) = match (req.env_a.is_empty(), req.env_b.is_empty()) {
        (true, true) => (view.findings(service.as_deref()), view.environments()),
        (false, false) => {
            if req.env_a == req.env_b {
                return Err(Status::invalid_argument(format!(
                    "env_a and env_b are both {:?}; compare two different environments",
                    req.env_a
                )));
            }
            known_environment(&view.environments(), &req.env_a)?;
            known_environment(&view.environments(), &req.env_b)?;
            let scope = Scope::pair(req.env_a.clone(), req.env_b.clone()).with_service(service);
            (
                evaluate_over_the_fleet(view, &scope),
                vec![req.env_a, req.env_b],
            )
        }
        _ => {
            return Err(Status::invalid_argument(
                "give both env_a and env_b, or neither for every pair",
            ));
        }
    };
    let mut tally = crate::parity::Tally::default();
    for f in &findings {
        tally.add(f.severity, f.status.state);
    }
    Ok(GetFindingsResponse {
        findings: findings.iter().map(convert::finding).collect(),
        environments,
        evaluated_at: Some(to_timestamp(view.now)),
        total: count(findings.len()),
        next_page: String::new(),
        tally: Some(convert::tally(&tally)),
    })
}

fn hosts_over_the_fleet(
    view: &FleetView,
    req: ListHostsRequest,
) -> Result<ListHostsResponse, Status> {
    if !req.environment.is_empty() {
        known_environment(&view.environments(), &req.environment)?;
    }
    let mut hosts: Vec<_> = view
        .hosts
        .iter()
        .filter(|(h, _)| req.environment.is_empty() || h.snapshot.environment == req.environment)
        .map(|(h, state)| {
            let held = Interner::default().hold(h.clone());
            convert::host_summary(&held, *state, view.refusals.get(&h.snapshot.host_id))
        })
        .collect();
    hosts.sort_by(|a, b| {
        view.policy()
            .compare(&a.environment, &b.environment)
            .then_with(|| a.host_id.cmp(&b.host_id))
    });
    Ok(ListHostsResponse { hosts })
}

fn service_over_the_fleet(
    view: &FleetView,
    req: GetServiceRequest,
) -> Result<GetServiceResponse, Status> {
    known_service(&view.services(), &req.service)?;
    let mut instances: Vec<ServiceInstance> = view
        .hosts
        .iter()
        .flat_map(|(h, state)| {
            h.snapshot
                .containers
                .iter()
                .filter(|c| c.service.as_ref().is_some_and(|s| s.name == req.service))
                .map(|c| ServiceInstance {
                    environment: h.snapshot.environment.clone(),
                    host_id: h.snapshot.host_id.clone(),
                    host_state: *state as i32,
                    container: Some(c.clone()),
                    config_files: h
                        .snapshot
                        .config_files
                        .iter()
                        .find(|f| f.container_id == c.id)
                        .cloned(),
                })
        })
        .collect();
    instances.sort_by(|a, b| {
        view.policy()
            .compare(&a.environment, &b.environment)
            .then_with(|| a.host_id.cmp(&b.host_id))
            .then_with(|| {
                let name = |i: &ServiceInstance| i.container.as_ref().map(|c| c.name.clone());
                name(a).cmp(&name(b))
            })
    });
    Ok(GetServiceResponse {
        service: req.service,
        instances,
    })
}

/// An answer with its error reduced to what a client sees.
fn seen<T>(answer: Result<T, Status>) -> Result<T, (tonic::Code, String)> {
    answer.map_err(|s| (s.code(), s.message().to_owned()))
}

/// A policy that orders a fourth environment (`qa`, outside the chain)
/// alphabetically, ignores one pair, waives one finding and keeps
/// findings pending for 20 minutes.
fn strict_policy(t0: SystemTime) -> LoadedPolicy {
    let policy = Policy::from_toml(
        r#"
grace = "20m"
chain = ["dev", "staging", "production"]

[[pairs]]
environments = ["dev", "production"]
level = "ignore"

[[waivers]]
kind = "image_digest"
service = "s1"
environments = ["staging", "production"]
reason = "canary"
owner = "team"
expires = 2030-01-01
"#,
        "test",
    )
    .unwrap();
    LoadedPolicy {
        policy,
        source: "test".to_owned(),
        loaded_at: t0,
    }
}

/// Random reports (some moving a host to `qa`), heartbeats that change
/// only a host's liveness or engine state, and time passing so that
/// hosts turn stale, each followed by the server's tick: after every
/// step, `hosts` (every environment, and an unknown one), `service`
/// (each, and an unknown one), `status` (for the fleet, each service
/// and an unknown one; only the rows that drift or all; for an
/// environment; whole, and page by page) and the findings (whole, and
/// page by page) (every pair, and `diff` of every two environments in
/// both orientations, for the fleet and each service, and with unknown
/// names) answer exactly as the whole-fleet computation does.
async fn answers_match_the_whole_fleet(policy: Option<LoadedPolicy>, seed: u64) {
    let (_dir, fleet, t0) = empty_fleet();
    if let Some(p) = policy {
        fleet.set_policy(p, t0).await.unwrap();
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut sequence = BTreeMap::new();
    for step in 0..120u64 {
        // 5 minutes a step: a host not heard from for 12 steps is stale.
        let now = t0 + Duration::from_secs(300 * step);
        let known: Vec<_> = fleet.view(now).hosts.into_iter().map(|(h, _)| h).collect();
        if !known.is_empty() && rng.u8(0..4) == 0 {
            let h = &known[rng.usize(0..known.len())];
            let hb = HeartbeatRequest {
                host_id: h.snapshot.host_id.clone(),
                environment: h.snapshot.environment.clone(),
                content_hash: h.snapshot.content_hash.clone(),
                boot_id: "b".into(),
                sequence: h.snapshot.sequence,
                sent_at: None,
                engine_state: if rng.u8(0..3) == 0 { 2 } else { 1 },
            };
            assert!(!fleet.heartbeat(&hb, now).await.unwrap());
        } else {
            let mut s = random_report(&mut rng, &mut sequence);
            if rng.u8(0..10) == 0 {
                s.environment = "qa".into();
                s.content_hash = envparity_proto::hash::content_hash(&s);
            }
            fleet.push(s, now).await.unwrap();
        }
        fleet.tick(now).await.unwrap();

        let view = fleet.view(now);
        let mut services: Vec<String> = view.services();
        services.push(String::new());
        services.push("nope".into());
        let mut environments = view.environments();
        environments.push("nowhere".into());
        if rng.u8(0..6) == 0 {
            // A known host's report refused at the edge.
            if let Some((h, _)) = view.hosts.get(rng.usize(0..view.hosts.len().max(1))) {
                fleet.refused(&h.snapshot.host_id, "refused in a test", now);
            }
        }
        let (view, reading) = (fleet.view(now), fleet.reading(now));
        for environment in &environments {
            let req = ListHostsRequest {
                environment: environment.clone(),
            };
            assert_eq!(
                seen(hosts(&reading, req.clone())),
                seen(hosts_over_the_fleet(&view, req)),
                "hosts of {environment:?} after step {step}"
            );
        }
        let req = ListHostsRequest::default();
        assert_eq!(
            seen(hosts(&reading, req.clone())),
            seen(hosts_over_the_fleet(&view, req)),
            "hosts after step {step}"
        );
        for service in &services {
            if !service.is_empty() {
                let req = GetServiceRequest {
                    service: service.clone(),
                };
                assert_eq!(
                    seen(self::service(&reading, req.clone())),
                    seen(service_over_the_fleet(&view, req)),
                    "service {service:?} after step {step}"
                );
            }
            for (all, environment) in [(false, ""), (true, ""), (false, "staging"), (true, "qa")]
                .into_iter()
                .chain(environments.iter().map(|e| (true, e.as_str())))
            {
                let req = GetStatusRequest {
                    service: service.clone(),
                    all,
                    environment: environment.to_owned(),
                    ..GetStatusRequest::default()
                };
                let what = format!("status of {service:?} in {environment:?} (all: {all})");
                assert_eq!(
                    seen(status(&reading, req.clone())),
                    seen(status_over_the_fleet(&view, req.clone())),
                    "{what} after step {step}"
                );
                // Page by page, two rows at a time: the same pages.
                let mut req = GetStatusRequest { limit: 2, ..req };
                for _ in 0..100 {
                    let got = seen(status(&reading, req.clone()));
                    assert_eq!(
                        got,
                        seen(status_over_the_fleet(&view, req.clone())),
                        "{what}, page {:?}, after step {step}",
                        req.page
                    );
                    match got {
                        Ok(r) if !r.next_page.is_empty() => req.page = r.next_page,
                        _ => break,
                    }
                }
                // The web view's filters and numbered pages: a name (any
                // case), the calm rows only, rows skipped; refused with a
                // service, or a skip with a page.
                for (needle, calm_only, skip, page) in [
                    ("", false, 0, ""),
                    ("S1", false, 0, ""),
                    ("", true, 0, ""),
                    ("", false, 1, ""),
                    ("s", true, 2, ""),
                    ("zz", false, 0, ""),
                    ("", false, 1, "s1.d.7331"),
                ] {
                    let req = GetStatusRequest {
                        name_contains: needle.into(),
                        calm_only,
                        skip,
                        page: page.into(),
                        limit: 2,
                        by_environment: skip != 1,
                        ..req.clone()
                    };
                    assert_eq!(
                        seen(status(&reading, req.clone())),
                        seen(status_over_the_fleet(&view, req.clone())),
                        "{what}, {needle:?} calm_only {calm_only} skip {skip} page {page:?}, after step {step}"
                    );
                }
            }
            let mut pairs = vec![(String::new(), String::new())];
            for a in &environments {
                for b in &environments {
                    pairs.push((a.clone(), b.clone()));
                }
            }
            pairs.push(("dev".into(), String::new()));
            for (a, b) in pairs {
                let req = GetFindingsRequest {
                    service: service.clone(),
                    env_a: a.clone(),
                    env_b: b.clone(),
                    ..GetFindingsRequest::default()
                };
                let whole = seen(findings_over_the_fleet(&view, req.clone()));
                assert_eq!(
                    seen(findings(&reading, req.clone())),
                    whole,
                    "findings of {a:?} against {b:?} for {service:?} after step {step}"
                );
                // Page by page, three at a time: the whole list, in
                // order, each page with the whole's total and tally.
                let Ok(whole) = whole else { continue };
                let mut req = GetFindingsRequest { limit: 3, ..req };
                let mut walked = Vec::new();
                for _ in 0..1000 {
                    let page = findings(&reading, req.clone()).unwrap();
                    assert!(page.findings.len() <= 3);
                    assert_eq!((page.total, &page.tally), (whole.total, &whole.tally));
                    walked.extend(page.findings);
                    if page.next_page.is_empty() {
                        break;
                    }
                    req.page = page.next_page;
                }
                assert_eq!(
                    walked, whole.findings,
                    "pages of {a:?} against {b:?} for {service:?} after step {step}"
                );
            }
        }
    }
}

#[tokio::test]
async fn status_and_diff_answer_as_the_whole_fleet_does() {
    answers_match_the_whole_fleet(None, 7).await;
}

#[tokio::test]
async fn status_and_diff_answer_as_the_whole_fleet_does_under_a_policy() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    answers_match_the_whole_fleet(Some(strict_policy(t0)), 11).await;
}

/// An unmanaged container that carries the name of a service running the
/// same everywhere: `status` shows no row and no drift for that service
/// (with `all`, a calm row whose cells count the managed replicas only),
/// and lists the container's finding on the first page, apart from the
/// rows; the finding counts in the tally.
#[tokio::test]
async fn an_unmanaged_container_is_no_row_and_makes_no_service_drift() {
    let (_dir, fleet, t0) = empty_fleet();
    let digest = format!("reg/shop@sha256:{}", "cd".repeat(32));
    let shop = |id: &str| {
        envparity_proto::fixtures::container("shop")
            .id(id)
            .image(digest.clone())
            .repo_digest(digest.clone())
            .build()
    };
    let one_off = envparity_proto::fixtures::container("shop")
        .id("c9")
        .unmanaged()
        .build();
    let report = crate::fleet::tests::report;
    fleet
        .push(report("s1", "staging", 1, vec![shop("c1")]), t0)
        .await
        .unwrap();
    fleet
        .push(report("p1", "production", 1, vec![shop("c2"), one_off]), t0)
        .await
        .unwrap();
    let reading = fleet.reading(t0);

    let answer = status(&reading, GetStatusRequest::default()).unwrap();
    assert!(answer.rows.is_empty(), "{:?}", answer.rows);
    let summary = answer.summary.unwrap();
    assert_eq!((summary.services, summary.services_drifting), (1, 0));
    let kinds: Vec<_> = answer.findings.iter().map(|f| f.kind()).collect();
    assert_eq!(
        kinds,
        vec![envparity_proto::v1::FindingKind::UnmanagedContainer]
    );
    assert_eq!(summary.findings.unwrap().info, 1);

    let all = status(
        &reading,
        GetStatusRequest {
            all: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.rows.len(), 1);
    let production = &all.rows[0].cells[1];
    assert_eq!(
        (
            production.environment.as_str(),
            production.replicas,
            production.drift
        ),
        ("production", 1, false)
    );
}
