//! `envparity.v1.QueryService`: where verdicts leave. Each answer has its
//! own file; this one holds the service, which reads the fleet and hands
//! the reading to them.

mod checks;
mod explain;
mod findings;
mod gate;
mod history;
mod listing;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::time::to_timestamp;
use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{
    Container, ExplainRequest, ExplainResponse, ForgetHostRequest, ForgetHostResponse, GateRequest,
    GateResponse, GetFindingsRequest, GetFindingsResponse, GetHistoryRequest, GetHistoryResponse,
    GetPolicyRequest, GetPolicyResponse, GetServiceRequest, GetServiceResponse, GetStatusRequest,
    GetStatusResponse, HostState, ListAlertsRequest, ListAlertsResponse, ListHostsRequest,
    ListHostsResponse,
};
use tonic::{Request, Response, Status};

use super::auth::Auth;
use super::convert;
use crate::alert::Alerting;
use crate::fleet::{Fleet, Reading};

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
}

/// A container of a service, where it runs.
#[derive(Debug)]
struct Instance {
    environment: String,
    host_id: String,
    host_state: HostState,
    container: Container,
    /// Its configuration files, when its agent read them.
    config_files: Option<envparity_proto::v1::ContainerConfigFiles>,
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
                    config_files: c.config_files(),
                })
        })
        .collect()
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        listing::hosts(&reading, request.into_inner()).map(Response::new)
    }

    async fn get_findings(
        &self,
        request: Request<GetFindingsRequest>,
    ) -> Result<Response<GetFindingsResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        findings::findings(&reading, request.into_inner()).map(Response::new)
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
        listing::service(&reading, req).map(Response::new)
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        status::status(&reading, request.into_inner()).map(Response::new)
    }

    async fn get_history(
        &self,
        request: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        history::history(&self.fleet, request.into_inner())
            .await
            .map(Response::new)
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

    async fn explain(
        &self,
        request: Request<ExplainRequest>,
    ) -> Result<Response<ExplainResponse>, Status> {
        let reading = self.fleet.reading(SystemTime::now());
        explain::explain(&reading, request.into_inner()).map(Response::new)
    }

    async fn gate(&self, request: Request<GateRequest>) -> Result<Response<GateResponse>, Status> {
        gate::gate(&self.fleet, request.into_inner())
            .await
            .map(Response::new)
    }
}
