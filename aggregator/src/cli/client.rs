//! The CLI's gRPC client side: one call per command.

use std::time::Duration;

use anyhow::Context;
use envparity_proto::v1::query_service_client::QueryServiceClient;
use envparity_proto::v1::{
    GetFindingsRequest, GetServiceRequest, GetStatusRequest, ListHostsRequest,
};
use tonic::transport::{Channel, Endpoint};

use super::render::Out;
use super::{Command, Outcome, output};

/// A connected query client.
#[derive(Debug)]
pub struct Client {
    server: String,
    inner: QueryServiceClient<Channel>,
}

impl Client {
    /// Connects to the aggregator at `server`.
    pub async fn connect(server: &str) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(server.to_owned())
            .with_context(|| format!("invalid --server address {server:?}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let channel = endpoint.connect().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the aggregator at {server}: {}",
                error_chain(&e)
            )
        })?;
        Ok(Client {
            server: server.to_owned(),
            inner: QueryServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
        })
    }

    fn failed(&self, status: tonic::Status) -> anyhow::Error {
        match status.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                anyhow::anyhow!("{}", status.message())
            }
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
        Command::Serve(_) => unreachable!("serve is not a query"),
        Command::Hosts { environment } => {
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
        } => {
            let resp = client
                .inner
                .get_findings(GetFindingsRequest {
                    env_a: env_a.clone(),
                    env_b: env_b.clone(),
                    service: service.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            let diff = output::Diff::from_proto(env_a, env_b, service, &resp);
            out.diff(&diff)?;
            Ok(if diff.parity {
                Outcome::Parity
            } else {
                Outcome::Drift
            })
        }
        Command::Status { service } => {
            let resp = client
                .inner
                .get_status(GetStatusRequest {
                    service: service.unwrap_or_default(),
                })
                .await
                .map_err(|s| client.failed(s))?
                .into_inner();
            let status = output::Status::from_proto(&resp);
            out.status(&status)?;
            Ok(if status.parity {
                Outcome::Parity
            } else {
                Outcome::Drift
            })
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
    }
}
