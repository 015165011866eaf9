//! `envparity.v1.QueryService`: where verdicts leave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::to_timestamp;
use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{
    GetFindingsRequest, GetFindingsResponse, GetServiceRequest, GetServiceResponse,
    GetStatusRequest, GetStatusResponse, HostState, ListHostsRequest, ListHostsResponse,
    ServiceInstance, StatusCell, StatusRow,
};
use tonic::{Request, Response, Status};

use super::convert;
use super::state::{Fleet, FleetView};
use crate::history::content_identity;
use crate::parity::Scope;

/// The query API over a shared [`Fleet`].
#[derive(Debug, Clone)]
pub struct QueryApi {
    fleet: Arc<Fleet>,
}

impl QueryApi {
    /// Serves queries from `fleet`.
    pub fn new(fleet: Arc<Fleet>) -> Self {
        QueryApi { fleet }
    }
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
            crate::parity::environments::compare(&a.environment, &b.environment)
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
        let scope = match (req.env_a.is_empty(), req.env_b.is_empty()) {
            (true, true) => Scope::all_pairs(&view.environments()),
            (false, false) => {
                if req.env_a == req.env_b {
                    return Err(Status::invalid_argument(format!(
                        "env_a and env_b are both {:?}; compare two different environments",
                        req.env_a
                    )));
                }
                known_environment(&view, &req.env_a)?;
                known_environment(&view, &req.env_b)?;
                Scope::pair(req.env_a.clone(), req.env_b.clone())
            }
            _ => {
                return Err(Status::invalid_argument(
                    "give both env_a and env_b, or neither for every pair",
                ));
            }
        };
        if !req.service.is_empty() {
            known_service(&view, &req.service)?;
        }
        let mut environments: Vec<String> = scope
            .pairs
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        environments.sort_by(|a, b| crate::parity::environments::compare(a, b));
        let findings = view
            .findings(&scope.with_service(non_empty(req.service)))
            .iter()
            .map(convert::finding)
            .collect();
        Ok(Response::new(GetFindingsResponse {
            findings,
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
            crate::parity::environments::compare(&a.environment, &b.environment)
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
        let findings =
            view.findings(&Scope::all_pairs(&environments).with_service(service.clone()));
        let drifting: BTreeSet<(&str, &str)> = findings
            .iter()
            .filter(|f| !f.service.is_empty())
            .flat_map(|f| {
                [
                    (f.service.as_str(), f.a.environment.as_str()),
                    (f.service.as_str(), f.b.environment.as_str()),
                ]
            })
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
