//! The CLI's gRPC client side: one call per command.

use std::time::Duration;

use anyhow::Context;
use envparity_proto::v1;
use envparity_proto::v1::query_service_client::QueryServiceClient;
use envparity_proto::v1::{
    ExplainRequest, ForgetHostRequest, GateRequest, GetFindingsRequest, GetFindingsResponse,
    GetHistoryRequest, GetPolicyRequest, GetServiceRequest, GetStatusRequest, ListAlertsRequest,
    ListHostsRequest,
};
use std::path::{Path, PathBuf};

use envparity_proto::transport::ClientTls;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::render::Out;
use super::{Command, HostsAction, Outcome, PolicyAction, output};

/// How the CLI proves who it is: TLS settings and an optional token.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The fleet CA and the query client certificate.
    pub tls: ClientTls,
    /// File holding a bearer token.
    pub token_file: Option<PathBuf>,
}

/// Adds `authorization: Bearer …` to every call when a token is set.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

fn read(what: &str, path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// The most history rows of each kind the server returns per call.
const HISTORY_PAGE: u32 = 1000;

/// Findings asked for per call (the most an aggregator answers).
const FINDINGS_PAGE: u32 = 5000;

/// Where the CLI stands in reading one of a history's two lists.
#[derive(Debug)]
struct Paging {
    /// Rows still wanted.
    wanted: u32,
    /// The cursor of the next (older) page; 0 before the first.
    before: u64,
    /// Whether the last page read reached the list's first row.
    reached_first: bool,
}

impl Paging {
    fn new(limit: u32) -> Self {
        Paging {
            wanted: limit,
            before: 0,
            reached_first: false,
        }
    }

    /// Whether another page is needed.
    fn wants(&self) -> bool {
        self.wanted > 0 && !self.reached_first
    }

    /// The size of the next page.
    fn next_page(&self) -> u32 {
        if self.wants() {
            self.wanted.min(HISTORY_PAGE)
        } else {
            0
        }
    }

    /// Keeps what a page brought (at most what is still wanted) and moves
    /// the cursor; returns nothing when this list was not being read.
    fn take<T>(&mut self, mut rows: Vec<T>, older: u64) -> Vec<T> {
        if !self.wants() {
            return Vec::new();
        }
        // The page may be longer than this list asked for (the other list
        // set the page size): keep the newest rows, which come last.
        let keep = rows.len().min(self.wanted as usize);
        let cut = rows.len() - keep;
        let cursor_still_valid = cut == 0;
        rows.drain(..cut);
        self.wanted -= keep as u32;
        if older == 0 && cursor_still_valid {
            self.reached_first = true;
        } else if cursor_still_valid {
            self.before = older;
        } else {
            // Rows were dropped from this page: older ones exist.
            self.wanted = 0;
        }
        rows
    }

    /// Whether older rows exist that were not read.
    fn left_out(&self) -> bool {
        !self.reached_first
    }
}

/// A connected query client.
#[derive(Debug)]
pub struct Client {
    server: String,
    inner: QueryServiceClient<InterceptedService<Channel, Bearer>>,
}

impl Client {
    /// Connects to the aggregator at `server` with `credentials`.
    pub async fn connect(server: &str, credentials: &Credentials) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(server.to_owned())
            .with_context(|| format!("invalid --server address {server:?}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let endpoint = credentials.tls.apply(endpoint, server)?;
        let bearer = match &credentials.token_file {
            Some(path) => {
                let token = read("the token file", path)?;
                let value = format!("Bearer {}", token.trim()).parse().map_err(|_| {
                    anyhow::anyhow!("the token in {} is not valid text", path.display())
                })?;
                Bearer(Some(value))
            }
            None => Bearer(None),
        };
        let channel = endpoint.connect().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the aggregator at {server}: {}",
                error_chain(&e)
            )
        })?;
        Ok(Client {
            server: server.to_owned(),
            inner: QueryServiceClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(64 * 1024 * 1024),
        })
    }

    /// Up to `limit` of a service's most recent events and findings, read a
    /// page (at most [`HISTORY_PAGE`] rows) at a time.
    async fn history(&mut self, service: String, limit: u32) -> anyhow::Result<output::History> {
        let mut events = Paging::new(limit);
        let mut findings = Paging::new(limit);
        let mut pages = Vec::new();
        while events.wants() || findings.wants() {
            let resp = self
                .inner
                .get_history(GetHistoryRequest {
                    service: service.clone(),
                    limit: events.next_page().max(findings.next_page()),
                    events_before: events.before,
                    findings_before: findings.before,
                })
                .await
                .map_err(|s| self.failed(s))?
                .into_inner();
            // A list already complete is asked for again from the top when the
            // other needs another page: its rows then are not kept.
            let page = v1::GetHistoryResponse {
                events: events.take(resp.events, resp.older_events),
                findings: findings.take(resp.findings, resp.older_findings),
                ..resp
            };
            pages.push(page);
        }
        // Pages were read newest first; each is oldest first within.
        pages.reverse();
        let mut whole = v1::GetHistoryResponse {
            service,
            ..Default::default()
        };
        for page in pages {
            whole.events.extend(page.events);
            whole.findings.extend(page.findings);
        }
        let mut history = output::History::from_proto(&whole);
        history.older_events_left_out = events.left_out();
        history.older_findings_left_out = findings.left_out();
        Ok(history)
    }

    fn failed(&self, status: tonic::Status) -> anyhow::Error {
        match status.code() {
            tonic::Code::NotFound
            | tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::PermissionDenied
            | tonic::Code::Unauthenticated => {
                anyhow::anyhow!("{}", status.message())
            }
            tonic::Code::Unimplemented => anyhow::anyhow!(
                "the aggregator at {} does not answer this query: it is older than this CLI; upgrade it ({})",
                self.server,
                status.message()
            ),
            code => anyhow::anyhow!(
                "query to {} failed ({code:?}): {}",
                self.server,
                status.message()
            ),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        // Layers often repeat their cause's text; show each part once.
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// Runs one query command and prints its answer.
pub async fn execute(mut client: Client, command: Command, out: &Out) -> anyhow::Result<Outcome> {
    match command {
        Command::Serve(_)
        | Command::CheckConfig(_)
        | Command::Migrate(_)
        | Command::Certs { .. }
        | Command::QueryToken { .. }
        | Command::ImageDiff(_)
        | Command::Alerts { action: Some(_) } => {
            unreachable!("runs without a server")
        }
        Command::Alerts { action: None } => {
            let resp = client
                .inner
                .list_alerts(ListAlertsRequest {})
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            out.alerts(&output::Alerts::from_proto(&resp))?;
            Ok(Outcome::Parity)
        }
        Command::Hosts {
            action: Some(HostsAction::Forget { host }),
            ..
        } => {
            let resp = client
                .inner
                .forget_host(ForgetHostRequest { host_id: host })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            out.forgotten(&output::Forgotten::from_proto(&resp))?;
            Ok(Outcome::Parity)
        }
        Command::Hosts {
            environment,
            action: None,
        } => {
            let resp = client
                .inner
                .list_hosts(ListHostsRequest {
                    environment: environment.unwrap_or_default(),
                })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            out.hosts(&output::Hosts::from_proto(
                &resp,
                std::time::SystemTime::now(),
            ))?;
            Ok(Outcome::Parity)
        }
        Command::Diff {
            env_a,
            env_b,
            service,
            limit,
            page,
            all,
        } => {
            let req = GetFindingsRequest {
                env_a: env_a.clone(),
                env_b: env_b.clone(),
                service: service.clone().unwrap_or_default(),
                limit,
                page: page.unwrap_or_default(),
            };
            let resp = if all {
                client.every_finding(req).await?
            } else {
                client
                    .inner
                    .get_findings(req)
                    .await
                    .map_err(|s| client.failed(s))?
                    .into_inner()
            };
            let diff = output::Diff::from_proto(env_a, env_b, service, &resp);
            out.diff(&diff)?;
            Ok(diff.outcome())
        }
        Command::Status {
            service,
            all,
            environment,
            limit,
            page,
        } => {
            let resp = client
                .inner
                .get_status(GetStatusRequest {
                    service: service.unwrap_or_default(),
                    all,
                    environment: environment.unwrap_or_default(),
                    limit,
                    page: page.unwrap_or_default(),
                    ..GetStatusRequest::default()
                })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            let status = output::Status::from_proto(&resp, all);
            out.status(&status)?;
            Ok(status.outcome())
        }
        Command::Service { name } => {
            let resp = client
                .inner
                .get_service(GetServiceRequest { service: name })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            out.service(&output::Service::from_proto(&resp))?;
            Ok(Outcome::Parity)
        }
        Command::Findings {
            severity,
            kind,
            service,
        } => {
            let all = client.all_findings(service.clone()).await?;
            let findings = output::Findings::listing(all, severity, kind, service);
            out.findings(&findings)?;
            Ok(findings.outcome())
        }
        Command::Check { fail_on } => {
            let check = output::Findings::check(client.all_findings(None).await?, fail_on);
            out.findings(&check)?;
            Ok(check.outcome())
        }
        Command::Gate { service, to, image } => {
            let resp = client
                .inner
                .gate(GateRequest {
                    service: service.clone(),
                    to: to.clone(),
                    image: image.unwrap_or_default(),
                })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            let gate = output::Gate::from_proto(service, to, &resp);
            out.gate(&gate)?;
            Ok(gate.outcome())
        }
        Command::Explain { service, envs } => {
            let (env_a, env_b) = match envs.as_slice() {
                [] => (String::new(), String::new()),
                [a, b] => (a.clone(), b.clone()),
                _ => anyhow::bail!(
                    "give --env exactly twice (or not at all), e.g. --env staging --env production"
                ),
            };
            let resp = client
                .inner
                .explain(ExplainRequest {
                    service,
                    env_a,
                    env_b,
                })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            out.explain(&output::Explain::from_proto(&resp))?;
            Ok(Outcome::Parity)
        }
        Command::History { service, limit } => {
            let history = client.history(service, limit).await?;
            out.history(&history)?;
            Ok(Outcome::Parity)
        }
        Command::Policy { action } => match action {
            PolicyAction::Show => {
                let resp = client
                    .inner
                    .get_policy(GetPolicyRequest {})
                    .await
                    .map_err(|s| client.failed(s))?
                    .into_inner();
                out.policy(&output::PolicyShow::from_proto(&resp))?;
                Ok(Outcome::Parity)
            }
            PolicyAction::Check { .. } => unreachable!("policy check runs without a server"),
        },
    }
}

impl Client {
    /// Every finding between every pair, optionally for one service.
    async fn all_findings(
        &mut self,
        service: Option<String>,
    ) -> anyhow::Result<Vec<output::Finding>> {
        let resp = self
            .every_finding(GetFindingsRequest {
                service: service.unwrap_or_default(),
                ..GetFindingsRequest::default()
            })
            .await?;
        Ok(resp
            .findings
            .iter()
            .map(output::Finding::from_proto)
            .collect())
    }

    /// Every finding of the listing `req` asks for, [`FINDINGS_PAGE`] per
    /// call, as one answer (the last page's total, tally and time). An
    /// aggregator older than paging answers everything at once.
    async fn every_finding(
        &mut self,
        mut req: GetFindingsRequest,
    ) -> anyhow::Result<GetFindingsResponse> {
        req.limit = FINDINGS_PAGE;
        let mut merged: Option<GetFindingsResponse> = None;
        loop {
            let resp = self
                .inner
                .get_findings(req.clone())
                .await
                .map_err(|s| self.failed(s))?
                .into_inner();
            let next = resp.next_page.clone();
            match &mut merged {
                None => merged = Some(resp),
                Some(m) => {
                    m.findings.extend(resp.findings);
                    m.total = resp.total;
                    m.tally = resp.tally;
                    m.evaluated_at = resp.evaluated_at;
                }
            }
            if next.is_empty() {
                break;
            }
            if next == req.page {
                anyhow::bail!(
                    "the aggregator gave the same findings page token twice ({next:?}); stopping rather than asking forever"
                );
            }
            req.page = next;
        }
        let mut all = merged.unwrap_or_default();
        all.next_page.clear();
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of a list of `rows` (1..=rows, oldest first) as the server
    /// answers them: at most `limit` rows before `before`, and the cursor.
    fn serve(rows: u64, before: u64, limit: u32) -> (Vec<u64>, u64) {
        let end = if before == 0 { rows + 1 } else { before };
        let start = end
            .saturating_sub(u64::from(limit.min(HISTORY_PAGE)))
            .max(1);
        let page: Vec<u64> = (start..end).collect();
        let older = if start > 1 { start } else { 0 };
        (page, older)
    }

    fn read(rows: u64, limit: u32) -> (Vec<u64>, bool, usize) {
        let mut paging = Paging::new(limit);
        let mut pages = Vec::new();
        while paging.wants() {
            let (page, older) = serve(rows, paging.before, paging.next_page());
            pages.push(paging.take(page, older));
        }
        let calls = pages.len();
        pages.reverse();
        (pages.concat(), paging.left_out(), calls)
    }

    #[test]
    fn history_pages_back_to_the_limit_and_says_what_it_left_out() {
        // More than one page, fewer than asked: everything, in order.
        let (rows, left_out, calls) = read(2_500, 10_000);
        assert_eq!(rows, (1..=2_500).collect::<Vec<_>>());
        assert!(!left_out);
        assert_eq!(calls, 3);
        // Fewer asked than there are: the most recent, and it says so.
        let (rows, left_out, _) = read(2_500, 1_200);
        assert_eq!(rows, (1_301..=2_500).collect::<Vec<_>>());
        assert!(left_out);
        // Exactly as many as asked: nothing left out once the first row is
        // reached.
        let (rows, left_out, _) = read(1_000, 1_000);
        assert_eq!(rows.len(), 1_000);
        assert!(!left_out);
        // An empty history.
        assert_eq!(read(0, 200), (vec![], false, 1));
    }
}
