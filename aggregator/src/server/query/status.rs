//! `GetStatus`: a page of the services × environments grid, with the
//! findings of its rows and the summary of the whole scope.

use std::collections::{BTreeMap, BTreeSet};

use envparity_proto::v1::{
    EnvironmentSummary, GetStatusRequest, GetStatusResponse, HostState, HostStateCount, StatusCell,
    StatusRow, StatusSummary,
};
use tonic::Status;

use super::checks::{known_environment, known_service, non_empty};
use crate::fleet::{Listing, Reading};
use crate::server::convert::{self, count};
use crate::server::page::{self, RowPlace};

/// A page of the status grid (a row per service, a cell per environment)
/// with the findings of its services, and the summary of the whole: by
/// default the services that drift only; with `all`, every service, those
/// that drift first.
pub(super) fn status(
    reading: &Reading<'_>,
    req: GetStatusRequest,
) -> Result<GetStatusResponse, Status> {
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
    let needle = name_filter(&req.name_contains, service.is_some())?.map(str::to_lowercase);
    let skip = skip_of(req.skip, after.is_some())?;
    let columns = match &environment {
        Some(e) => vec![e.clone()],
        None => known_environments,
    };
    let scope = Listing {
        service: service.as_deref(),
        pair: None,
        environment: environment.as_deref(),
    };
    let weight = reading.weigh(&scope, req.by_environment);
    let (tally, drifting) = (weight.tally, weight.drifting);
    let drifts = |svc: &str| drifting.get(svc).is_some_and(|envs| !envs.is_empty());
    // A service is in the scope when it runs (it is the one asked for, or
    // any) and, with an environment, has a cell there or drifts there.
    let in_scope = |svc: &str| {
        environment.as_deref().is_none_or(|env| {
            reading.has_cell(svc, env) || drifting.get(svc).is_some_and(|e| e.contains(env))
        })
    };
    // The services with a row: a managed replica runs them somewhere (an
    // unmanaged container is no service; its finding is listed apart, as
    // the host-level ones are).
    let names = || -> Box<dyn Iterator<Item = &str> + '_> {
        match &service {
            Some(s) => Box::new(std::iter::once(s.as_str()).filter(|s| reading.has_row(s))),
            None => Box::new(reading.row_names()),
        }
    };
    // Which rows the answer holds: the drifting ones, then (with `all`) the
    // calm ones, or (`calm_only`) the calm ones alone; of the services
    // whose name holds the needle, if any.
    let named = |svc: &str| {
        needle
            .as_deref()
            .is_none_or(|n| svc.to_lowercase().contains(n))
    };
    let (show_drifting, show_calm) = (!req.calm_only, req.all || req.calm_only);
    // Counted without copying a name: the scope can hold every service.
    let (mut services_total, mut services_drifting, mut rows_total) = (0, 0, 0);
    for svc in names().filter(|s| in_scope(s)) {
        let drifting = drifts(svc);
        services_total += 1;
        services_drifting += usize::from(drifting);
        if named(svc) && (if drifting { show_drifting } else { show_calm }) {
            rows_total += 1;
        }
    }
    // The rows in order, drifting ones first (each group by name), read
    // from the page's place on; only the page's rows are copied. A service
    // that drifts is in the scope: with an environment, the findings
    // weighed all involve it.
    let drifting_rows = drifting
        .keys()
        .copied()
        .filter(|s| {
            drifts(s) && reading.has_row(s) && service.as_deref().is_none_or(|only| only == *s)
        })
        .map(|s| (false, s));
    let calm_rows = names()
        .filter(|s| in_scope(s) && !drifts(s))
        .map(|s| (true, s));
    let drifting_rows = show_drifting.then_some(drifting_rows).into_iter().flatten();
    let calm_rows = show_calm.then_some(calm_rows).into_iter().flatten();
    let mut rows: Vec<RowPlace> = drifting_rows
        .chain(calm_rows)
        .filter(|&(_, s)| named(s))
        .filter(|&(calm, s)| {
            after
                .as_ref()
                .is_none_or(|a| (a.calm, a.service.as_str()) < (calm, s))
        })
        .skip(skip)
        .take(limit.saturating_add(1))
        .map(|(calm, s)| RowPlace {
            calm,
            service: s.to_owned(),
        })
        .collect();
    let next_page = if rows.len() > limit {
        page::status_token(&rows[limit - 1])
    } else {
        String::new()
    };
    rows.truncate(limit);
    let shown: BTreeSet<String> = rows.iter().map(|r| r.service.clone()).collect();
    let findings = reading.findings_of(&scope, &shown, after.is_none() && skip == 0);
    let environment_summaries = if req.by_environment {
        columns
            .iter()
            .map(|env| EnvironmentSummary {
                environment: env.clone(),
                host_states: host_state_counts(reading.host_states(Some(env))),
                findings: Some(convert::tally(
                    &weight
                        .environments
                        .get(env.as_str())
                        .copied()
                        .unwrap_or_default(),
                )),
            })
            .collect()
    } else {
        Vec::new()
    };
    let host_states = reading.host_states(environment.as_deref());
    let hosts: usize = host_states.values().sum();
    let hosts_not_current = hosts - host_states.get(&HostState::Fresh).copied().unwrap_or(0);
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
                        .get(row.service.as_str())
                        .is_some_and(|envs| envs.contains(env.as_str()));
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
            host_states: host_state_counts(host_states),
        }),
        environment_summaries,
    })
}

/// Host counts by state, as the API sends them.
fn host_state_counts(states: BTreeMap<HostState, usize>) -> Vec<HostStateCount> {
    states
        .into_iter()
        .map(|(state, hosts)| HostStateCount {
            state: state as i32,
            hosts: count(hosts),
        })
        .collect()
}

/// The rows a status request skips; refused with a `page` (which resumes
/// after a row, where `skip` counts rows from the first).
pub(super) fn skip_of(skip: u32, with_page: bool) -> Result<usize, Status> {
    if skip > 0 && with_page {
        return Err(Status::invalid_argument(
            "GetStatusRequest.skip and GetStatusRequest.page cannot be given together: a page resumes after a row, skip counts rows from the first",
        ));
    }
    Ok(skip as usize)
}

/// The name filter of a status request: `None` when empty; refused with
/// `service` (one service is asked for by name) or over an identifier's
/// length.
pub(super) fn name_filter(needle: &str, with_service: bool) -> Result<Option<&str>, Status> {
    if needle.is_empty() {
        return Ok(None);
    }
    if with_service {
        return Err(Status::invalid_argument(
            "GetStatusRequest.name_contains and GetStatusRequest.service cannot be given together",
        ));
    }
    if needle.len() > envparity_proto::limits::MAX_ID_LEN {
        return Err(Status::invalid_argument(format!(
            "GetStatusRequest.name_contains is {} bytes long, over the limit of {}",
            needle.len(),
            envparity_proto::limits::MAX_ID_LEN
        )));
    }
    Ok(Some(needle))
}
