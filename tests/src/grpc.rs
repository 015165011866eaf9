//! [`ReportClient`]: the report API driven directly over real gRPC and mutual
//! TLS, as a (possibly hostile) agent would, for what a well-behaved agent
//! never sends: oversize, malformed or flooding reports.

use std::time::Duration;

use bytes::{Buf, BufMut};
use envparity_proto::fixtures;
use envparity_proto::transport::ClientTls;
use envparity_proto::v1::report_service_client::ReportServiceClient;
use envparity_proto::v1::{
    Container, HeartbeatRequest, HostSnapshot, PushSnapshotRequest, PushSnapshotResponse,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};
use crate::fleet::Fleet;

/// A synchronous report client with its own runtime, presenting the agent
/// certificate of one fleet host.
#[derive(Debug)]
pub struct ReportClient {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

fn setup(what: &str, e: impl std::fmt::Display) -> Error {
    Error::unexpected(what, e.to_string())
}

impl ReportClient {
    /// Connects to the fleet's (TLS) aggregator as the agent of `host`
    /// (its certificate from [`Fleet::pki`]).
    pub fn connect_as(fleet: &Fleet, host: &str) -> Result<Self> {
        Self::connect_to(fleet, host, &fleet.server()?)
    }

    /// [`ReportClient::connect_as`] to the aggregator at `server` rather
    /// than the fleet's (one replica of several, say).
    pub fn connect_to(fleet: &Fleet, host: &str, server: &str) -> Result<Self> {
        let pki = fleet.pki()?;
        let server = server.to_owned();
        let tls = agent_tls(pki, host);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| setup("a runtime for the report client", e))?;
        let channel = runtime.block_on(connect(&server, &tls))?;
        Ok(Self { runtime, channel })
    }

    /// `PushSnapshot`.
    pub fn push(&self, snapshot: HostSnapshot) -> std::result::Result<(), tonic::Status> {
        self.push_acked(snapshot).map(drop)
    }

    /// `PushSnapshot`, with the aggregator's answer (`duplicate`: it already
    /// held that sequence of that boot).
    pub fn push_acked(
        &self,
        snapshot: HostSnapshot,
    ) -> std::result::Result<PushSnapshotResponse, tonic::Status> {
        let mut client =
            ReportServiceClient::new(self.channel.clone()).max_encoding_message_size(usize::MAX);
        self.runtime
            .block_on(client.push_snapshot(PushSnapshotRequest {
                snapshot: Some(snapshot),
            }))
            .map(tonic::Response::into_inner)
    }

    /// `Heartbeat`.
    pub fn heartbeat(&self, heartbeat: HeartbeatRequest) -> std::result::Result<(), tonic::Status> {
        let mut client = ReportServiceClient::new(self.channel.clone());
        self.runtime.block_on(client.heartbeat(heartbeat)).map(drop)
    }

    /// `PushSnapshot` with `body` as the request message's bytes, as is.
    pub fn push_raw(&self, body: Vec<u8>) -> std::result::Result<(), tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        self.runtime.block_on(async {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                "/envparity.v1.ReportService/PushSnapshot",
            );
            grpc.unary(tonic::Request::new(body), path, RawCodec)
                .await
                .map(drop)
        })
    }
}

/// The client TLS settings of the agent of `host` in a PKI directory made by
/// `envparity certs` (`ca.pem`, `agent-HOST.pem`, `agent-HOST-key.pem`).
pub fn agent_tls(pki: &std::path::Path, host: &str) -> ClientTls {
    pki_tls(pki, &format!("agent-{host}"))
}

/// The client TLS settings of `NAME.pem`/`NAME-key.pem` in a PKI directory
/// (`agent-HOST`, `client-NAME`).
pub fn pki_tls(pki: &std::path::Path, name: &str) -> ClientTls {
    ClientTls {
        ca: Some(pki.join("ca.pem")),
        cert: Some(pki.join(format!("{name}.pem"))),
        key: Some(pki.join(format!("{name}-key.pem"))),
        ..ClientTls::default()
    }
}

/// Connects to the aggregator at `server` (`https://…` with `tls`, or
/// `http://…`), with a 30-second deadline per call. Async, for callers that
/// drive many hosts at once (`envparity-loadgen`).
pub async fn connect(server: &str, tls: &ClientTls) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| setup(&format!("aggregator address {server}"), e))?
        .timeout(Duration::from_secs(30));
    let endpoint = tls
        .apply(endpoint, server)
        .map_err(|e| setup("report client TLS", e))?;
    endpoint
        .connect()
        .await
        .map_err(|e| setup(&format!("connecting to {server}"), e))
}

/// A well-formed snapshot of `host` in `environment` with `containers`
/// (see [`container`]), `sequence` and a correct content hash.
pub fn snapshot(
    host: &str,
    environment: &str,
    sequence: u64,
    containers: Vec<Container>,
) -> HostSnapshot {
    fixtures::snapshot(host, environment)
        .boot_id("boot-test")
        .sequence(sequence)
        .fingerprint_key("ktest")
        .containers(containers)
        .build()
}

/// Reports `host` in `environment` until `done`: one snapshot after another,
/// each with one container of service `svc-HOST` on a new image id, each
/// sent again until acknowledged (a push that a crash interrupted is
/// retried as is). Returns the image ids acknowledged, in order: the
/// acked log that crash tests check the store against.
pub fn push_until(
    client: &ReportClient,
    host: &str,
    environment: &str,
    done: &std::sync::atomic::AtomicBool,
) -> Vec<String> {
    let mut acked = Vec::new();
    for sequence in 1.. {
        let mut c = container(&format!("svc-{host}"));
        let image = format!("sha256:{sequence:064x}");
        if let Some(i) = c.image.as_mut() {
            i.image_id.clone_from(&image);
        }
        let s = snapshot(host, environment, sequence, vec![c]);
        loop {
            if done.load(std::sync::atomic::Ordering::Relaxed) {
                return acked;
            }
            if client.push_acked(s.clone()).is_ok() {
                acked.push(image.clone());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    acked
}

/// Recomputes `content_hash` after a change.
pub fn rehash(s: &mut HostSnapshot) {
    s.content_hash = envparity_proto::hash::content_hash(s);
}

/// A running container of `service` with a made-up image id.
pub fn container(service: &str) -> Container {
    fixtures::container(service).build()
}

/// Bytes in, bytes out: a codec that sends exactly what it is given.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut EncodeBuf<'_>,
    ) -> std::result::Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> std::result::Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
