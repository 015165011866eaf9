//! `ListHosts` and `GetService`: the hosts, and one service's replicas,
//! read from a [`Reading`].

use envparity_proto::v1::{
    GetServiceRequest, GetServiceResponse, ListHostsRequest, ListHostsResponse, ServiceInstance,
};
use tonic::Status;

use super::checks::{known_environment, known_service};
use super::instances_of;
use crate::fleet::Reading;
use crate::server::convert;

/// The hosts (of one environment, or all), in promotion order then by id.
pub(super) fn hosts(
    reading: &Reading<'_>,
    req: ListHostsRequest,
) -> Result<ListHostsResponse, Status> {
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
pub(super) fn service(
    reading: &Reading<'_>,
    req: GetServiceRequest,
) -> Result<GetServiceResponse, Status> {
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
            config_files: i.config_files,
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
