//! `envparity.v1.QueryService`: where verdicts leave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::{from_unix_millis, to_timestamp};
use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{
    Container, ForgetHostRequest, ForgetHostResponse, GateRequest, GateResponse,
    GetFindingsRequest, GetFindingsResponse, GetHistoryRequest, GetHistoryResponse,
    GetPolicyRequest, GetPolicyResponse, GetServiceRequest, GetServiceResponse, GetStatusRequest,
    GetStatusResponse, HostState, ListAlertsRequest, ListAlertsResponse, ListHostsRequest,
    ListHostsResponse, ServiceInstance, StatusCell, StatusRow, StatusSummary,
};
use tonic::{Request, Response, Status};

use super::auth::Auth;
use super::convert;
use super::page::{self, RowPlace};
use crate::alert::Alerting;
use crate::fleet::{Fleet, Listing, Reading, Window};
use crate::history::content_identity;
use crate::parity::digest::registry_digest;
use crate::parity::gate::{self, GateInput, StageReplica};
use crate::store::PageAt;

/// The query API over a shared [`Fleet`].
#[derive(Debug, Clone)]
pub struct QueryApi {
    fleet: Arc<Fleet>,
    alerting: Arc<Alerting>,
    /// Who may change what the aggregator holds ([`Auth::admin`]); every
    /// call already passed [`Auth::query`] in the interceptor.
    auth: Arc<Auth>,
}

impl QueryApi {
    /// Serves queries from `fleet` and its `alerting`, in plain text (no
    /// roles: whoever may query may forget hosts) until [`QueryApi::with_auth`].
    pub fn new(fleet: Arc<Fleet>, alerting: Arc<Alerting>) -> Self {
        QueryApi {
            fleet,
            alerting,
            auth: Arc::new(Auth::default()),
        }
    }

    /// Checks admin calls with `auth`.
    pub fn with_auth(mut self, auth: Arc<Auth>) -> Self {
        self.auth = auth;
        self
    }

    /// Since when each (host, container) of a service runs its current
    /// image, from the stored history (aggregator's clock: immune to agent
    /// clock skew).
    async fn running_since(
        &self,
        service: &str,
    ) -> Result<BTreeMap<(String, String), SystemTime>, Status> {
        let store = self.fleet.store();
        let service = service.to_owned();
        let changes = tokio::task::spawn_blocking(move || {
            store.changes(Some(&service), PageAt::newest(GATE_HISTORY))
        })
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(|e| Status::unavailable(format!("cannot read history: {e}")))?;
        let mut since = BTreeMap::new();
        for c in changes.rows {
            // Oldest first: the last change of a container is what it runs now.
            since.insert((c.host_id, c.container), from_unix_millis(c.received_at_ms));
        }
        Ok(since)
    }
}

/// History rows returned when the request gives no limit, and at most.
const MAX_HISTORY_ROWS: usize = 1000;

/// A history cursor from the wire: 0 means "from the most recent"; a row id
/// beyond `i64` is past every row, so the same.
fn cursor(before: u64) -> Option<i64> {
    match before {
        0 => None,
        n => i64::try_from(n).ok(),
    }
}

/// A store cursor on the wire: 0 when nothing older exists.
fn wire_cursor(older: Option<i64>) -> u64 {
    older.and_then(|id| u64::try_from(id).ok()).unwrap_or(0)
}

/// The rows of each kind a history call reads: what it asks for (0: the
/// default), never more than [`MAX_HISTORY_ROWS`], so one call cannot make the
/// server read a whole table into memory.
fn history_rows(asked: u32) -> usize {
    match asked {
        0 => MAX_HISTORY_ROWS,
        n => (n as usize).min(MAX_HISTORY_ROWS),
    }
}

/// History rows the gate reads to date the previous stage's replicas.
const GATE_HISTORY: usize = 100_000;

/// The digest a gate request names: `REF@sha256:…`, a bare `sha256:…`, or
/// nothing (`Ok(None)`: what the target runs now).
fn candidate(image: &str) -> Result<Option<String>, String> {
    if image.is_empty() {
        return Ok(None);
    }
    let digest = image.rsplit_once('@').map_or(image, |(_, d)| d);
    match envparity_proto::digest::parse_digest(digest) {
        Ok(digest) => Ok(Some(digest.to_owned())),
        Err(_) => Err(format!(
            "--image {:?} is not pinned: give REF@sha256:<64 lower-case hex digits> or sha256:<64 lower-case hex digits>; a tag can move, so the gate only checks digests",
            envparity_proto::names::escape_hostile(image)
        )),
    }
}

fn chain_names(policy: &crate::parity::Policy) -> String {
    policy
        .chain
        .iter()
        .map(|s| s.0.join("/"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// A container of a service, where it runs.
#[derive(Debug)]
struct Instance {
    environment: String,
    host_id: String,
    host_state: HostState,
    container: Container,
}

/// Every container of `service`, by host.
fn instances_of(reading: &Reading<'_>, service: &str) -> Vec<Instance> {
    reading
        .hosts_running(service)
        .flat_map(|(h, host_state)| {
            h.containers
                .iter()
                .filter(|c| {
                    c.content
                        .service
                        .as_ref()
                        .is_some_and(|s| s.name == service)
                })
                .map(move |c| Instance {
                    environment: h.snapshot.environment.clone(),
                    host_id: h.snapshot.host_id.clone(),
                    host_state,
                    container: c.whole(),
                })
        })
        .collect()
}

/// `name` when it is one of the `known` environments, else NOT_FOUND
/// listing them.
fn known_environment(known: &[String], name: &str) -> Result<(), Status> {
    if known.iter().any(|e| e == name) {
        return Ok(());
    }
    Err(Status::not_found(format!(
        "environment {name:?} is unknown; known environments: {}",
        list(known)
    )))
}

/// `name` when it is one of the `known` services, else NOT_FOUND listing
/// them.
fn known_service(known: &[String], name: &str) -> Result<(), Status> {
    if known.iter().any(|s| s == name) {
        return Ok(());
    }
    Err(Status::not_found(format!(
        "service {name:?} is not running in any environment; known services: {}",
        list(known)
    )))
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none (no agent has reported yet)".to_owned()
    } else {
        names.join(", ")
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        hosts(&reading, request.into_inner()).map(Response::new)
    }

    async fn get_findings(
        &self,
        request: Request<GetFindingsRequest>,
    ) -> Result<Response<GetFindingsResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        findings(&reading, request.into_inner()).map(Response::new)
    }

    async fn get_service(
        &self,
        request: Request<GetServiceRequest>,
    ) -> Result<Response<GetServiceResponse>, Status> {
        let req = request.into_inner();
        if req.service.is_empty() {
            return Err(Status::invalid_argument(
                "GetServiceRequest.service is empty",
            ));
        }
        let reading = self.fleet.reading(SystemTime::now());
        service(&reading, req).map(Response::new)
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        status(&reading, request.into_inner()).map(Response::new)
    }

    async fn get_history(
        &self,
        request: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let req = request.into_inner();
        if req.service.is_empty() {
            return Err(Status::invalid_argument(
                "GetHistoryRequest.service is empty",
            ));
        }
        let limit = history_rows(req.limit);
        let at = |before: u64| PageAt {
            before: cursor(before),
            limit,
        };
        let (events_at, findings_at) = (at(req.events_before), at(req.findings_before));
        let store = self.fleet.store();
        let service = req.service.clone();
        let (changes, records) = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.changes(Some(&service), events_at)?,
                store.finding_records(&service, findings_at)?,
            ))
        })
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(|e| Status::unavailable(format!("cannot read history: {e}")))?;
        let first_page = req.events_before == 0 && req.findings_before == 0;
        if first_page && changes.rows.is_empty() && records.rows.is_empty() {
            let reading = self.fleet.reading(SystemTime::now());
            if !reading.runs(&req.service) {
                known_service(&reading.services(), &req.service)?;
            }
        }
        Ok(Response::new(GetHistoryResponse {
            service: req.service,
            events: changes.rows.iter().map(convert::history_event).collect(),
            findings: records.rows.iter().map(convert::finding_record).collect(),
            older_events: wire_cursor(changes.older),
            older_findings: wire_cursor(records.older),
        }))
    }

    async fn forget_host(
        &self,
        request: Request<ForgetHostRequest>,
    ) -> Result<Response<ForgetHostResponse>, Status> {
        let by = self.auth.admin(&request)?;
        let host_id = request.into_inner().host_id;
        if host_id.is_empty() {
            return Err(Status::invalid_argument(
                "ForgetHostRequest.host_id is empty",
            ));
        }
        let forgotten = self
            .fleet
            .forget(&host_id, SystemTime::now())
            .await
            .map_err(|e| {
                Status::unavailable(format!(
                    "cannot forget host {:?}: {e}",
                    host_id.escape_debug().to_string()
                ))
            })?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no host {:?} is known (`envparity hosts` lists them)",
                    host_id.escape_debug().to_string()
                ))
            })?;
        let snapshot = &forgotten.snapshot;
        tracing::warn!(
            audit = "forget_host",
            host = %host_id.escape_debug(),
            environment = %snapshot.environment,
            containers = forgotten.containers.len(),
            by = %by.escape_debug(),
            "host forgotten"
        );
        Ok(Response::new(ForgetHostResponse {
            host_id,
            environment: snapshot.environment.clone(),
            container_count: u32::try_from(forgotten.containers.len()).unwrap_or(u32::MAX),
            last_seen: Some(to_timestamp(forgotten.last_seen)),
        }))
    }

    async fn list_alerts(
        &self,
        _request: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsResponse>, Status> {
        Ok(Response::new(ListAlertsResponse {
            alerts: self.alerting.firing().iter().map(convert::alert).collect(),
            min_severity: convert::severity(self.alerting.min_severity()).into(),
            sinks: self.alerting.sinks(),
        }))
    }

    async fn get_policy(
        &self,
        _request: Request<GetPolicyRequest>,
    ) -> Result<Response<GetPolicyResponse>, Status> {
        let loaded = self.fleet.policy();
        Ok(Response::new(GetPolicyResponse {
            toml: loaded.policy.to_toml(),
            source: loaded.source.clone(),
            loaded_at: Some(to_timestamp(loaded.loaded_at)),
        }))
    }

    async fn gate(&self, request: Request<GateRequest>) -> Result<Response<GateResponse>, Status> {
        let req = request.into_inner();
        if req.service.is_empty() || req.to.is_empty() {
            return Err(Status::invalid_argument(
                "GateRequest needs a service and a target environment (`to`)",
            ));
        }
        let now = SystemTime::now();
        // What the gate needs of the fleet, read at once: the reading is
        // not held across the history read below.
        let (policy, previous, instances, findings) = {
            let reading = self.fleet.reading(now);
            if !reading.runs(&req.service) {
                known_service(&reading.services(), &req.service)?;
            }
            let environments = reading.environments();
            let policy = reading.loaded_policy();
            if policy.policy.stage_of(&req.to).is_none() {
                return Err(Status::failed_precondition(format!(
                    "{:?} is not a stage of the promotion chain ({}); the gate needs a previous stage to compare with",
                    req.to,
                    chain_names(&policy.policy)
                )));
            }
            let Some(previous) = policy.policy.previous_stage(&req.to, &environments) else {
                return Err(Status::failed_precondition(format!(
                    "no environment of an earlier stage than {:?} has reported; known environments: {}",
                    req.to,
                    list(&environments)
                )));
            };
            let instances = instances_of(&reading, &req.service);
            let findings = reading.findings(Some(&req.service));
            (policy, previous, instances, findings)
        };
        let policy = &policy.policy;
        let candidate = match candidate(&req.image) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let running: BTreeSet<String> = instances
                    .iter()
                    .filter(|i| i.environment == req.to)
                    .map(|i| content_identity(&i.container))
                    .collect();
                match running.len() {
                    1 => running.into_iter().next().unwrap_or_default(),
                    0 => {
                        return Err(Status::invalid_argument(format!(
                            "{} does not run in {} yet; give the image to promote (--image REF@sha256:...)",
                            req.service, req.to
                        )));
                    }
                    _ => {
                        return Err(Status::invalid_argument(format!(
                            "{} runs several digests in {} ({}); give the image to promote (--image REF@sha256:...)",
                            req.service,
                            req.to,
                            running.into_iter().collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
            }
            Err(e) => return Err(Status::invalid_argument(e)),
        };
        let since = self.running_since(&req.service).await?;
        let replicas: Vec<StageReplica> = instances
            .iter()
            .filter(|i| i.environment == previous)
            .map(|i| {
                let image = i.container.image.clone().unwrap_or_default();
                StageReplica {
                    host: i.host_id.clone(),
                    digest: registry_digest(&image).unwrap_or_default().to_owned(),
                    image_id: image.image_id.clone(),
                    current: i.host_state == HostState::Fresh,
                    since: since
                        .get(&(i.host_id.clone(), i.container.name.clone()))
                        .copied(),
                }
            })
            .collect();
        let verdict = gate::decide(&GateInput {
            service: &req.service,
            to: &req.to,
            previous: &previous,
            candidate: &candidate,
            replicas: &replicas,
            findings: &findings,
            policy,
            now,
        });
        tracing::info!(
            service = %req.service.escape_debug(),
            to = %req.to.escape_debug(),
            previous = %previous.escape_debug(),
            candidate = %candidate.escape_debug(),
            allowed = verdict.allowed(),
            "gate decided"
        );
        Ok(Response::new(GateResponse {
            allowed: verdict.allowed(),
            previous_environment: previous,
            candidate,
            running_since: verdict.running_since.map(to_timestamp),
            reasons: verdict.reasons,
            blocking: verdict.blocking.iter().map(convert::finding).collect(),
            min_time_in_previous: prost_types::Duration::try_from(policy.gate.min_time_in_previous)
                .ok(),
        }))
    }
}

/// The hosts (of one environment, or all), in promotion order then by id.
fn hosts(reading: &Reading<'_>, req: ListHostsRequest) -> Result<ListHostsResponse, Status> {
    let of_environment: Box<dyn Iterator<Item = _>> = if req.environment.is_empty() {
        Box::new(reading.hosts())
    } else {
        known_environment(&reading.environments(), &req.environment)?;
        Box::new(reading.hosts_in(&req.environment))
    };
    let mut hosts: Vec<_> = of_environment
        .map(|(h, state)| convert::host_summary(h, state, reading.refusal(&h.snapshot.host_id)))
        .collect();
    hosts.sort_by(|a, b| {
        reading
            .policy()
            .compare(&a.environment, &b.environment)
            .then_with(|| a.host_id.cmp(&b.host_id))
    });
    Ok(ListHostsResponse { hosts })
}

/// Every container of a service, in promotion order, by host and name.
fn service(reading: &Reading<'_>, req: GetServiceRequest) -> Result<GetServiceResponse, Status> {
    if !reading.runs(&req.service) {
        known_service(&reading.services(), &req.service)?;
    }
    let mut instances: Vec<ServiceInstance> = instances_of(reading, &req.service)
        .into_iter()
        .map(|i| ServiceInstance {
            environment: i.environment,
            host_id: i.host_id,
            host_state: i.host_state as i32,
            container: Some(i.container),
        })
        .collect();
    instances.sort_by(|a, b| {
        reading
            .policy()
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

/// A page of the open findings (every pair, or those of `env_a` against
/// `env_b` in that orientation), optionally for one service.
fn findings(reading: &Reading<'_>, req: GetFindingsRequest) -> Result<GetFindingsResponse, Status> {
    let service = non_empty(req.service);
    if let Some(s) = &service
        && !reading.runs(s)
    {
        known_service(&reading.services(), s)?;
    }
    let limit = page::limit(req.limit, page::MAX_FINDINGS, "GetFindingsRequest.limit")?;
    let after = page::findings_position(&req.page)?;
    // 0 without a page: every finding, as clients before paging expect.
    let window = (limit > 0 || after.is_some()).then_some(Window {
        after,
        limit: if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        },
    });
    let (listing, environments) = match (req.env_a.is_empty(), req.env_b.is_empty()) {
        (true, true) => (
            Listing::every_pair(service.as_deref()),
            reading.environments(),
        ),
        (false, false) => {
            if req.env_a == req.env_b {
                return Err(Status::invalid_argument(format!(
                    "env_a and env_b are both {:?}; compare two different environments",
                    req.env_a
                )));
            }
            let known = reading.environments();
            known_environment(&known, &req.env_a)?;
            known_environment(&known, &req.env_b)?;
            (
                Listing::pair(&req.env_a, &req.env_b, service.as_deref()),
                vec![req.env_a.clone(), req.env_b.clone()],
            )
        }
        _ => {
            return Err(Status::invalid_argument(
                "give both env_a and env_b, or neither for every pair",
            ));
        }
    };
    let found = reading.page(&listing, window.as_ref());
    Ok(GetFindingsResponse {
        findings: found.findings.iter().map(convert::finding).collect(),
        environments,
        evaluated_at: Some(to_timestamp(reading.now())),
        total: count(found.total),
        next_page: found
            .next
            .as_ref()
            .map(page::findings_token)
            .unwrap_or_default(),
        tally: Some(convert::tally(&found.tally)),
    })
}

/// A page of the status grid (a row per service, a cell per environment)
/// with the findings of its services, and the summary of the whole: by
/// default the services that drift only; with `all`, every service, those
/// that drift first.
fn status(reading: &Reading<'_>, req: GetStatusRequest) -> Result<GetStatusResponse, Status> {
    let service = non_empty(req.service);
    if let Some(s) = &service
        && !reading.runs(s)
    {
        known_service(&reading.services(), s)?;
    }
    let environment = non_empty(req.environment);
    let known_environments = reading.environments();
    if let Some(e) = &environment {
        known_environment(&known_environments, e)?;
    }
    let limit = match page::limit(req.limit, page::MAX_ROWS, "GetStatusRequest.limit")? {
        0 => page::DEFAULT_STATUS_ROWS,
        n => n,
    } as usize;
    let after = page::status_place(&req.page)?;
    let columns = match &environment {
        Some(e) => vec![e.clone()],
        None => known_environments,
    };
    let scope = Listing {
        service: service.as_deref(),
        pair: None,
        environment: environment.as_deref(),
    };
    let (tally, drifting) = reading.weigh(&scope);
    let drifts = |svc: &str| drifting.get(svc).is_some_and(|envs| !envs.is_empty());
    // Every row of the scope, in order: those that drift first.
    let mut rows: Vec<RowPlace> = match &service {
        Some(s) => vec![s.clone()],
        None => reading.services(),
    }
    .into_iter()
    .filter(|svc| {
        environment.as_ref().is_none_or(|env| {
            reading.cell(svc, env).is_some() || drifting.get(svc).is_some_and(|e| e.contains(env))
        })
    })
    .map(|svc| RowPlace {
        calm: !drifts(&svc),
        service: svc,
    })
    .collect();
    rows.sort();
    let services_total = rows.len();
    let services_drifting = rows.iter().filter(|r| !r.calm).count();
    if !req.all {
        rows.retain(|r| !r.calm);
    }
    let rows_total = rows.len();
    rows.retain(|r| after.as_ref().is_none_or(|a| a < r));
    let next_page = if rows.len() > limit {
        page::status_token(&rows[limit - 1])
    } else {
        String::new()
    };
    rows.truncate(limit);
    let shown: BTreeSet<String> = rows.iter().map(|r| r.service.clone()).collect();
    let findings = reading.findings_of(&scope, &shown, after.is_none());
    let (hosts, hosts_not_current) = reading.host_counts(environment.as_deref());
    let rows = rows
        .into_iter()
        .map(|row| StatusRow {
            cells: columns
                .iter()
                .map(|env| {
                    let mut cell = reading
                        .cell(&row.service, env)
                        .unwrap_or_else(|| StatusCell {
                            environment: env.clone(),
                            ..StatusCell::default()
                        });
                    cell.drift = drifting
                        .get(&row.service)
                        .is_some_and(|envs| envs.contains(env));
                    cell
                })
                .collect(),
            service: row.service,
        })
        .collect();
    Ok(GetStatusResponse {
        environments: columns,
        rows,
        findings: findings.iter().map(convert::finding).collect(),
        rows_total: count(rows_total),
        next_page,
        summary: Some(StatusSummary {
            services: count(services_total),
            services_drifting: count(services_drifting),
            hosts: count(hosts),
            hosts_not_current: count(hosts_not_current),
            findings: Some(convert::tally(&tally)),
        }),
    })
}

/// `n` on the wire (saturating: no listing holds 4 billion items).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use envparity_proto::v1::HeartbeatRequest;

    use super::*;
    use crate::fleet::tests::{empty_fleet, random_report};
    use crate::fleet::{FleetView, Interner, LoadedPolicy};
    use crate::parity::{self, Finding, FindingKey, Policy, Scope, judge};

    #[test]
    fn a_history_call_reads_at_most_a_thousand_rows_whatever_it_asks() {
        assert_eq!(history_rows(0), 1000);
        assert_eq!(history_rows(10), 10);
        assert_eq!(history_rows(1000), 1000);
        assert_eq!(history_rows(1_000_000), 1000);
        assert_eq!(history_rows(u32::MAX), 1000);
    }

    // The whole-fleet computations `status` and `diff` made before the
    // status grid and the ledger answered them, kept as the oracle: every
    // cell from every container of a copy of the fleet, every pair
    // evaluated afresh over every host.

    fn cells_by_service(view: &FleetView) -> BTreeMap<(String, String), StatusCell> {
        let mut cells: BTreeMap<(String, String), StatusCell> = BTreeMap::new();
        for (h, state) in &view.hosts {
            let environment = &h.snapshot.environment;
            for c in &h.snapshot.containers {
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
    /// every cell from every container; the rows that drift first, then
    /// (with `all`) the others; the findings of the rows of the page and
    /// (on the first page) the host-level ones.
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
            .filter(|f| !f.service.is_empty() && f.counts())
            .flat_map(|f| f.environments().map(|e| (f.service.as_str(), e)))
            .collect();
        let columns = match &environment {
            Some(e) => vec![e.clone()],
            None => view.environments(),
        };
        let mut cells = cells_by_service(view);
        let mut rows: Vec<RowPlace> = view
            .services()
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
        if !req.all {
            rows.retain(|r| !r.calm);
        }
        let rows_total = rows.len();
        let rest: Vec<RowPlace> = rows
            .into_iter()
            .filter(|r| after.as_ref().is_none_or(|a| a < r))
            .collect();
        let next_page = rest
            .get(limit)
            .map(|_| page::status_token(&rest[limit - 1]))
            .unwrap_or_default();
        let shown: Vec<RowPlace> = rest.into_iter().take(limit).collect();
        let page_findings: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                if f.kind.is_host_level() {
                    after.is_none()
                } else {
                    shown.iter().any(|r| r.service == f.service)
                }
            })
            .collect();
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
            }),
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
            .filter(|(h, _)| {
                req.environment.is_empty() || h.snapshot.environment == req.environment
            })
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
                for (all, environment) in
                    [(false, ""), (true, ""), (false, "staging"), (true, "qa")]
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
}
