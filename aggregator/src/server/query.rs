//! `envparity.v1.QueryService`: where verdicts leave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::{from_unix_millis, to_timestamp};
use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{
    Container, GateRequest, GateResponse, GetFindingsRequest, GetFindingsResponse,
    GetHistoryRequest, GetHistoryResponse, GetPolicyRequest, GetPolicyResponse, GetServiceRequest,
    GetServiceResponse, GetStatusRequest, GetStatusResponse, HostState, ListAlertsRequest,
    ListAlertsResponse, ListHostsRequest, ListHostsResponse, ServiceInstance, StatusCell,
    StatusRow,
};
use tonic::{Request, Response, Status};

use super::convert;
use super::state::{Fleet, FleetView};
use crate::alert::Alerting;
use crate::history::content_identity;
use crate::parity::Scope;
use crate::parity::digest::registry_digest;
use crate::parity::gate::{self, GateInput, StageReplica};

/// The query API over a shared [`Fleet`].
#[derive(Debug, Clone)]
pub struct QueryApi {
    fleet: Arc<Fleet>,
    alerting: Arc<Alerting>,
}

impl QueryApi {
    /// Serves queries from `fleet` and its `alerting`.
    pub fn new(fleet: Arc<Fleet>, alerting: Arc<Alerting>) -> Self {
        QueryApi { fleet, alerting }
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
        let changes =
            tokio::task::spawn_blocking(move || store.changes(Some(&service), GATE_HISTORY))
                .await
                .map_err(|e| Status::internal(format!("store task failed: {e}")))?
                .map_err(|e| Status::unavailable(format!("cannot read history: {e}")))?;
        let mut since = BTreeMap::new();
        for c in changes {
            // Oldest first: the last change of a container is what it runs now.
            since.insert((c.host_id, c.container), from_unix_millis(c.received_at_ms));
        }
        Ok(since)
    }
}

/// History rows returned when the request gives no limit.
const DEFAULT_HISTORY_LIMIT: usize = 1000;

/// History rows the gate reads to date the previous stage's replicas.
const GATE_HISTORY: usize = 100_000;

/// The digest a gate request names: `REF@sha256:…`, a bare `sha256:…`, or
/// nothing (`Ok(None)`: what the target runs now).
fn candidate(image: &str) -> Result<Option<String>, String> {
    if image.is_empty() {
        return Ok(None);
    }
    let digest = image.rsplit_once('@').map_or(image, |(_, d)| d);
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(Some(digest.to_owned()))
    } else {
        Err(format!(
            "--image {image:?} is not pinned: give REF@sha256:<64 hex digits> or sha256:<64 hex digits>; a tag can move, so the gate only checks digests"
        ))
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

/// Every container of `service`: (environment, host, container).
fn instances_in(view: &FleetView, service: &str) -> Vec<(String, String, Container)> {
    view.hosts
        .iter()
        .flat_map(|(h, _)| {
            h.snapshot
                .containers
                .iter()
                .filter(|c| c.service.as_ref().is_some_and(|s| s.name == service))
                .map(|c| {
                    (
                        h.snapshot.environment.clone(),
                        h.snapshot.host_id.clone(),
                        c.clone(),
                    )
                })
        })
        .collect()
}

fn known_environment(view: &FleetView, name: &str) -> Result<(), Status> {
    let known = view.environments();
    if known.iter().any(|e| e == name) {
        return Ok(());
    }
    Err(Status::not_found(format!(
        "environment {name:?} is unknown; known environments: {}",
        list(&known)
    )))
}

fn known_service(view: &FleetView, name: &str) -> Result<(), Status> {
    let known = view.services();
    if known.iter().any(|s| s == name) {
        return Ok(());
    }
    Err(Status::not_found(format!(
        "service {name:?} is not running in any environment; known services: {}",
        list(&known)
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
        let req = request.into_inner();
        let view = self.fleet.view(SystemTime::now());
        if !req.environment.is_empty() {
            known_environment(&view, &req.environment)?;
        }
        let mut hosts: Vec<_> = view
            .hosts
            .iter()
            .filter(|(h, _)| {
                req.environment.is_empty() || h.snapshot.environment == req.environment
            })
            .map(|(h, state)| convert::host_summary(h, *state))
            .collect();
        hosts.sort_by(|a, b| {
            view.policy()
                .compare(&a.environment, &b.environment)
                .then_with(|| a.host_id.cmp(&b.host_id))
        });
        Ok(Response::new(ListHostsResponse { hosts }))
    }

    async fn get_findings(
        &self,
        request: Request<GetFindingsRequest>,
    ) -> Result<Response<GetFindingsResponse>, Status> {
        let req = request.into_inner();
        let now = SystemTime::now();
        let view = self.fleet.view(now);
        let service = non_empty(req.service);
        if let Some(s) = &service {
            known_service(&view, s)?;
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
                known_environment(&view, &req.env_a)?;
                known_environment(&view, &req.env_b)?;
                let scope = Scope::pair(req.env_a.clone(), req.env_b.clone()).with_service(service);
                (view.evaluate(&scope), vec![req.env_a, req.env_b])
            }
            _ => {
                return Err(Status::invalid_argument(
                    "give both env_a and env_b, or neither for every pair",
                ));
            }
        };
        Ok(Response::new(GetFindingsResponse {
            findings: findings.iter().map(convert::finding).collect(),
            environments,
            evaluated_at: Some(to_timestamp(now)),
        }))
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
        let view = self.fleet.view(SystemTime::now());
        known_service(&view, &req.service)?;
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
        Ok(Response::new(GetServiceResponse {
            service: req.service,
            instances,
        }))
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let req = request.into_inner();
        let view = self.fleet.view(SystemTime::now());
        let service = non_empty(req.service);
        if let Some(s) = &service {
            known_service(&view, s)?;
        }
        let environments = view.environments();
        let findings = view.findings(service.as_deref());
        let drifting: BTreeSet<(&str, &str)> = findings
            .iter()
            .filter(|f| !f.service.is_empty() && f.counts())
            .flat_map(|f| f.environments().map(|e| (f.service.as_str(), e)))
            .collect();
        let services: Vec<String> = view
            .services()
            .into_iter()
            .filter(|s| service.as_ref().is_none_or(|wanted| wanted == s))
            .collect();
        let mut cells = cells_by_service(&view);
        let rows = services
            .iter()
            .map(|svc| StatusRow {
                service: svc.clone(),
                cells: environments
                    .iter()
                    .map(|env| {
                        let key = (svc.clone(), env.clone());
                        let mut cell = cells.remove(&key).unwrap_or_else(|| StatusCell {
                            environment: env.clone(),
                            ..StatusCell::default()
                        });
                        cell.drift = drifting.contains(&(svc.as_str(), env.as_str()));
                        cell
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(GetStatusResponse {
            environments,
            rows,
            findings: findings.iter().map(convert::finding).collect(),
        }))
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
        let limit = match req.limit {
            0 => DEFAULT_HISTORY_LIMIT,
            n => n as usize,
        };
        let store = self.fleet.store();
        let service = req.service.clone();
        let (changes, records) = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.changes(Some(&service), limit)?,
                store.finding_records(&service, limit)?,
            ))
        })
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(|e| Status::unavailable(format!("cannot read history: {e}")))?;
        if changes.is_empty() && records.is_empty() {
            let view = self.fleet.view(SystemTime::now());
            known_service(&view, &req.service)?;
        }
        Ok(Response::new(GetHistoryResponse {
            service: req.service,
            events: changes.iter().map(convert::history_event).collect(),
            findings: records.iter().map(convert::finding_record).collect(),
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
        let view = self.fleet.view(now);
        known_service(&view, &req.service)?;
        let environments = view.environments();
        let policy = view.policy();
        if policy.stage_of(&req.to).is_none() {
            return Err(Status::failed_precondition(format!(
                "{:?} is not a stage of the promotion chain ({}); the gate needs a previous stage to compare with",
                req.to,
                chain_names(policy)
            )));
        }
        let Some(previous) = policy.previous_stage(&req.to, &environments) else {
            return Err(Status::failed_precondition(format!(
                "no environment of an earlier stage than {:?} has reported; known environments: {}",
                req.to,
                list(&environments)
            )));
        };
        let instances = instances_in(&view, &req.service);
        let candidate = match candidate(&req.image) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let running: BTreeSet<String> = instances
                    .iter()
                    .filter(|(env, _, _)| *env == req.to)
                    .map(|(_, _, c)| content_identity(c))
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
            .filter(|(env, _, _)| *env == previous)
            .map(|(_, host, c)| {
                let image = c.image.clone().unwrap_or_default();
                let state = view
                    .hosts
                    .iter()
                    .find(|(h, _)| h.snapshot.host_id == *host)
                    .map(|(_, s)| *s);
                StageReplica {
                    host: host.clone(),
                    digest: registry_digest(&image).unwrap_or_default().to_owned(),
                    image_id: image.image_id.clone(),
                    current: state == Some(HostState::Fresh),
                    since: since.get(&(host.clone(), c.name.clone())).copied(),
                }
            })
            .collect();
        let findings = view.findings(Some(&req.service));
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
            service = %req.service,
            to = %req.to,
            previous = %previous,
            candidate = %candidate,
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

/// Every (service, environment) cell with replicas, in one pass over the
/// fleet; `drift` is left for the caller, which knows the findings.
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
