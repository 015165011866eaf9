//! `GetStatus`: a page of the services × environments grid, with the
//! findings of its rows and the summary of the whole scope.

use std::collections::BTreeSet;

use envparity_proto::v1::{
    GetStatusRequest, GetStatusResponse, StatusCell, StatusRow, StatusSummary,
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
    // Counted without copying a name: the scope can hold every service.
    let (mut services_total, mut services_drifting) = (0, 0);
    for svc in names().filter(|s| in_scope(s)) {
        services_total += 1;
        services_drifting += usize::from(drifts(svc));
    }
    let rows_total = if req.all {
        services_total
    } else {
        services_drifting
    };
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
    let calm_rows = req.all.then_some(calm_rows).into_iter().flatten();
    let mut rows: Vec<RowPlace> = drifting_rows
        .chain(calm_rows)
        .filter(|&(calm, s)| {
            after
                .as_ref()
                .is_none_or(|a| (a.calm, a.service.as_str()) < (calm, s))
        })
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
        }),
    })
}
