//! `envparity serve`: the gRPC server that ingests reports and answers
//! queries.

pub mod auth;
pub mod budget;
pub mod conn;
pub mod convert;
mod forward;
pub mod page;
mod query;
pub mod rate;
mod report;
mod scrape;
mod start;
pub mod throttle;
pub mod tls;
pub mod validate;
mod web_view;
mod writer;

#[cfg(test)]
mod settings_tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use envparity_proto::v1::query_service_server::QueryServiceServer;
use envparity_proto::v1::report_service_server::ReportServiceServer;
use tokio::net::TcpListener;

pub use query::QueryApi;
pub use report::ReportApi;

use envparity_settings::{EnvSource, Report};

use crate::alert::Alerting;
use crate::config::{AlertsConfig, ConfigError, LogFormat, ServeArgs};
use crate::fleet::{Fleet, LoadedPolicy};
use crate::metrics;
use crate::parity::PolicyError;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded store (used when `postgres` is `None`).
    pub data_dir: PathBuf,
    /// The PostgreSQL database of `--store postgres://…`; `None`: the
    /// embedded store under `data_dir`.
    pub postgres: Option<crate::store::PgTarget>,
    /// A host not heard from for this long is stale.
    pub stale_after: Duration,
    /// On PostgreSQL, how long the writer lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// On PostgreSQL, where the other replicas reach this one; `None`: the
    /// listen address (the host name when it listens on every address).
    pub advertise: Option<String>,
    /// Connections older than this are closed gracefully (GOAWAY), so
    /// that clients reconnect through the load balancer; `None`: never.
    pub max_connection_age: Option<Duration>,
    /// The policy file; `None` for the built-in defaults. Reloaded on SIGHUP;
    /// a bad file at reload is logged and the last good policy stays.
    pub policy: Option<PathBuf>,
    /// Where to serve Prometheus metrics; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Where to serve the web view (docs/web.md); `None`: not served.
    pub web_listen: Option<SocketAddr>,
    /// Alerting: the alerting severity and the sinks.
    pub alerts: AlertsConfig,
    /// TLS 1.3 with client certificates; `None`: plain text, which
    /// `plaintext` must allow.
    pub tls: Option<tls::TlsFiles>,
    /// Whether serving plain text (without `tls`) is allowed, and where.
    pub plaintext: envparity_proto::transport::Plaintext,
    /// Query tokens (`NAME sha256:HEX` lines); `None`: no tokens.
    pub tokens_file: Option<PathBuf>,
    /// How fast each host may report.
    pub report_rate: rate::RateLimit,
    /// In plain text, the most hosts accepted.
    pub max_plaintext_hosts: usize,
}

impl ServeConfig {
    /// Where the store lives.
    pub fn store(&self) -> crate::store::Location {
        match &self.postgres {
            Some(target) => crate::store::Location::Postgres(Box::new(target.clone())),
            None => crate::store::Location::Sqlite(self.data_dir.clone()),
        }
    }

    /// `listen` and `data_dir` with every other setting at its default.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        ServeConfig {
            listen,
            data_dir,
            postgres: None,
            stale_after: crate::config::defaults::STALE_AFTER,
            lease_ttl: crate::config::defaults::LEASE_TTL,
            advertise: None,
            max_connection_age: None,
            policy: None,
            metrics_listen: None,
            web_listen: None,
            alerts: AlertsConfig::default(),
            tls: None,
            plaintext: envparity_proto::transport::Plaintext::Refused,
            tokens_file: None,
            report_rate: rate::RateLimit::default(),
            max_plaintext_hosts: crate::config::defaults::MAX_PLAINTEXT_HOSTS,
        }
    }
}

/// What `serve` runs with, and how `check-config` sums it up.
#[derive(Debug, Clone)]
pub struct Serve {
    /// The server's configuration.
    pub config: ServeConfig,
    /// The log format.
    pub log_format: LogFormat,
    /// Every setting and where it came from (`check-config`).
    pub report: Report,
}

/// `serve`'s settings (`config::serve`) resolved: flags over the
/// environment over the file over the defaults. Reads and validates the
/// file, the policy, every secret file and the TLS files; each error names
/// where its value came from, or the settings to change.
pub fn resolve(args: &ServeArgs, env: &dyn EnvSource) -> anyhow::Result<Serve> {
    use crate::config::serve::*;
    let sources = args.sources(env)?;
    let path = |setting| Ok::<_, ConfigError>(sources.get(setting)?.map(|p| p.value));
    let tls = match (path(&TLS_CERT)?, path(&TLS_KEY)?, path(&TLS_CLIENT_CA)?) {
        (Some(cert), Some(key), Some(client_ca)) => {
            let files = tls::TlsFiles {
                cert,
                key,
                client_ca,
            };
            tls::server_config(&files)?;
            Some(files)
        }
        // Plain text, if allowed (`check_transport`).
        (None, None, None) => None,
        _ => anyhow::bail!(
            "TLS needs all of tls_cert, tls_key and tls_client_ca (--tls-cert, --tls-key, --tls-client-ca)"
        ),
    };
    let tokens_file = match sources.get(&QUERY_TOKENS_FILE)? {
        Some(file) => {
            auth::read_tokens(&file.value).map_err(|m| file.invalid(m))?;
            Some(file.value)
        }
        None => None,
    };
    let (rate, burst) = (sources.value(&REPORT_RATE)?, sources.value(&REPORT_BURST)?);
    let report_rate = rate::RateLimit {
        rate: rate.value,
        burst: burst.value,
    };
    // Each half checked alone, so that the error names its own setting.
    rate::RateLimit {
        burst: 1,
        ..report_rate
    }
    .validate()
    .map_err(|m| rate.invalid(m))?;
    rate::RateLimit {
        rate: 1.0,
        ..report_rate
    }
    .validate()
    .map_err(|m| burst.invalid(m))?;
    let (data_dir, postgres) = crate::config::serve::resolve_store(&sources, env)?;
    let config = ServeConfig {
        postgres,
        stale_after: sources.value(&STALE_AFTER)?.value,
        lease_ttl: sources.value(&LEASE_TTL)?.value,
        advertise: sources.get(&ADVERTISE)?.map(|a| a.value),
        max_connection_age: sources.get(&MAX_CONNECTION_AGE)?.map(|a| a.value),
        policy: path(&POLICY)?,
        metrics_listen: sources.get(&METRICS_LISTEN)?.map(|a| a.value),
        web_listen: sources.get(&WEB_LISTEN)?.map(|a| a.value),
        alerts: alerts_of(&sources)?,
        tls,
        plaintext: envparity_proto::transport::Plaintext::from_flags(
            sources.value(&INSECURE_PLAINTEXT)?.value,
            sources.value(&INSECURE_PLAINTEXT_ANYWHERE)?.value,
        ),
        tokens_file,
        report_rate,
        max_plaintext_hosts: sources.value(&MAX_PLAINTEXT_HOSTS)?.value,
        ..ServeConfig::new(sources.value(&LISTEN)?.value, data_dir)
    };
    Ok(Serve {
        config,
        log_format: sources.value(&LOG_FORMAT)?.value,
        report: sources.report(),
    })
}

/// Reads and validates a policy file.
pub fn load_policy(path: &Path) -> Result<LoadedPolicy, PolicyError> {
    Ok(LoadedPolicy {
        policy: crate::config::serve::read_policy(path)?,
        source: path.display().to_string(),
        loaded_at: SystemTime::now(),
    })
}

/// The policy of `config`: its file, or the defaults.
fn initial_policy(config: &ServeConfig) -> Result<LoadedPolicy, PolicyError> {
    match &config.policy {
        Some(path) => load_policy(path),
        None => Ok(LoadedPolicy::defaults(SystemTime::now())),
    }
}

/// Concurrent streams (calls) one connection may have open: an agent uses
/// one or two, a CLI one.
const MAX_STREAMS_PER_CONNECTION: u32 = 32;
/// The longest a call may take, from its headers to its answer, reading the
/// body included: a client that sends a body slowly is cut off.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// HTTP/2 pings on a connection, and how long an answer may take: a peer
/// that is gone is noticed within their sum.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest header block a call may send.
const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// How long in-flight calls may take to finish once the server stops.
const STOP_GRACE: Duration = Duration::from_secs(8);

/// How often time-dependent findings (stale hosts) are re-evaluated.
const TICK: Duration = Duration::from_secs(1);

/// Re-evaluates stale hosts every [`TICK`] and reloads the policy on SIGHUP,
/// until the fleet is dropped by the server.
async fn background(fleet: std::sync::Weak<Fleet>, policy_path: Option<PathBuf>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; policy reload is disabled");
            None
        }
    };
    loop {
        let reload = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        let Some(fleet) = fleet.upgrade() else {
            return;
        };
        if reload {
            reload_policy(&fleet, policy_path.as_deref()).await;
        } else if let Err(e) = fleet.tick(SystemTime::now()).await {
            tracing::error!(error = %e, "storing liveness or re-evaluating stale hosts failed");
        }
    }
}

async fn reload_policy(fleet: &Fleet, path: Option<&Path>) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no --policy file; the built-in defaults stay");
        return;
    };
    match load_policy(path) {
        Ok(policy) => {
            let source = policy.source.clone();
            match fleet.set_policy(policy, SystemTime::now()).await {
                Ok(()) => tracing::info!(policy = %source, "policy reloaded"),
                Err(e) => {
                    tracing::error!(policy = %source, error = %e, "policy reloaded, but recording the re-evaluation failed")
                }
            }
        }
        Err(e) => tracing::error!(
            error = %e,
            kept = %fleet.policy().source,
            "policy reload refused; the last good policy stays in force"
        ),
    }
}

/// A server running in the background on the current tokio runtime: for
/// embedding the aggregator (tests, load generators) without a process.
#[derive(Debug)]
pub struct Background {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Background {
    /// Starts serving on `listener`; must be called within a tokio runtime.
    pub fn spawn(listener: TcpListener, config: ServeConfig) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("listener address")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async {
            stopped.await.ok();
        }));
        Ok(Background { addr, stop, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully (in-flight requests get 8 s to finish) and returns how the
    /// server ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        // The server may already have ended (then its result says why).
        let _ = self.stop.send(());
        self.task.await.context("server task")?
    }
}

/// Binds `config.listen` and serves until `shutdown` resolves.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve(listener, config, shutdown).await
}

/// What `/metrics` shows of the fleet and the alerts at `now`, counted
/// without copying either.
pub fn census(fleet: &Fleet, alerting: &Alerting, now: SystemTime) -> metrics::Census {
    // Both counters fill the one census, in turn.
    let census = std::cell::RefCell::new(metrics::Census::default());
    fleet.census(
        now,
        |environment, state| census.borrow_mut().host(environment, state),
        |f, state| {
            let env_b = f.b.as_ref().map_or("", |b| b.environment.as_str());
            census.borrow_mut().finding(
                f.kind.as_str(),
                f.severity.as_str(),
                state.as_str(),
                &f.a.environment,
                env_b,
            );
        },
    );
    let mut census = census.into_inner();
    for (severity, count) in alerting.firing_by_severity() {
        census.alerts(severity.as_str(), count);
    }
    census
}

/// Tells systemd `state` when it started us with `$NOTIFY_SOCKET`.
pub(super) fn sd_notify(state: &str) {
    if let Err(error) = envparity_proto::systemd::notify(state) {
        tracing::warn!(%error, state, "cannot notify systemd");
    }
}

/// Refuses plain text unless `config.plaintext` allows it on `local` (and
/// on the web view's address, if any: the same rule), and TLS together
/// with a plain-text allowance (which one was meant?).
pub(crate) fn check_transport(config: &ServeConfig, local: SocketAddr) -> anyhow::Result<()> {
    check_address(config, "listen address", local)?;
    match config.web_listen {
        Some(web) => check_address(config, "web listen address", web),
        None => Ok(()),
    }
}

/// [`check_transport`] for one address, `what` naming it.
pub(crate) fn check_address(
    config: &ServeConfig,
    what: &str,
    local: SocketAddr,
) -> anyhow::Result<()> {
    match (&config.tls, config.plaintext.allowed()) {
        (Some(_), true) => anyhow::bail!(
            "both TLS files and --insecure-plaintext are set; choose one (docs/security.md)"
        ),
        (Some(_), false) => Ok(()),
        (None, _) => config
            .plaintext
            .check(&format!("{what} {local}"), &local.ip().to_string())
            .map_err(|message| {
                anyhow::anyhow!(
                    "{message} (the server's TLS settings are tls_cert, tls_key and tls_client_ca)"
                )
            }),
    }
}

/// Opens the store and serves on `listener` until `shutdown` resolves.
/// In-flight requests get 8 s to finish before this returns. On PostgreSQL, waits as a
/// standby (passing its connections to the replica that serves) until this
/// replica holds the writer lease.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("listener address")?;
    check_transport(&config, local)?;
    let mut shutdown = std::pin::pin!(shutdown);
    let Some((loaded, scrape)) = start::load(&config, &listener, &mut shutdown).await? else {
        return Ok(());
    };
    serve_loaded(listener, config, loaded, scrape, shutdown).await
}

/// Serves what was loaded on `listener` until `shutdown` resolves or, on
/// PostgreSQL, another replica took the writer lease (an error then).
async fn serve_loaded(
    listener: TcpListener,
    config: ServeConfig,
    loaded: start::Loaded,
    scrape: scrape::Scrape,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("listener address")?;
    let start::Loaded {
        fleet,
        alerting,
        metrics,
        db_name,
        policy_source,
        mut writer,
    } = loaded;
    let ticker = tokio::spawn(background(Arc::downgrade(&fleet), config.policy.clone()));
    let mut tasks = alerting.spawn(Arc::downgrade(&fleet));
    tasks.push(ticker);
    scrape.serving(&fleet, &alerting);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ReportServiceServer<ReportApi>>().await;
    health.set_serving::<QueryServiceServer<QueryApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(envparity_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("gRPC reflection service")?;

    let tls_config = config.tls.as_ref().map(tls::server_config).transpose()?;
    let tokens = match &config.tokens_file {
        Some(path) => Some(auth::read_tokens(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let auth = Arc::new(auth::Auth {
        tls: tls_config.is_some(),
        tokens,
        tokens_file: config.tokens_file.clone(),
    });
    let max = validate::limits::MAX_MESSAGE_BYTES;
    config.report_rate.validate().map_err(anyhow::Error::msg)?;
    // Who may report is decided on the headers, before the body is read.
    let (report_auth, report_metrics) = (Arc::clone(&auth), Arc::clone(&metrics));
    let report = tonic::service::interceptor::InterceptedService::new(
        ReportServiceServer::new(
            ReportApi::new(
                Arc::clone(&fleet),
                Arc::clone(&metrics),
                Arc::clone(&auth),
                Arc::new(rate::RateLimiter::new(config.report_rate)),
            )
            .with_host_cap((!auth.tls).then_some(config.max_plaintext_hosts)),
        )
        .max_decoding_message_size(max),
        move |request: tonic::Request<()>| {
            report_auth.reporter(&request).inspect_err(|_| {
                report_metrics.rejected(metrics::Rejection::Unauthorized);
            })?;
            Ok(request)
        },
    );
    let query_auth = Arc::clone(&auth);
    let query = tonic::service::interceptor::InterceptedService::new(
        QueryServiceServer::new(
            QueryApi::new(Arc::clone(&fleet), Arc::clone(&alerting)).with_auth(Arc::clone(&auth)),
        )
        .max_encoding_message_size(64 * 1024 * 1024),
        move |request: tonic::Request<()>| {
            query_auth.query(&request)?;
            Ok(request)
        },
    );

    let web = web_view::start(&config, &fleet, &alerting, &auth, tls_config.as_deref()).await?;

    tracing::info!(
        listen = %local,
        database = %db_name,
        hosts = fleet.host_count(),
        stale_after = %humantime::format_duration(config.stale_after),
        policy = %policy_source,
        alert_sinks = alerting.sinks().len(),
        tls = auth.tls,
        query_tokens = auth.tokens.as_ref().map_or(0, Vec::len),
        report_rate = config.report_rate.rate,
        report_burst = config.report_rate.burst,
        "envparity aggregator listening"
    );
    if !auth.tls {
        tracing::warn!(
            listen = %local,
            plaintext = ?config.plaintext,
            "serving plain-text gRPC as asked (--insecure-plaintext): reports and queries are neither encrypted nor authenticated by certificate; configure tls_cert, tls_key and tls_client_ca (docs/security.md)"
        );
    }
    // systemd (Type=notify): serving from here on; stopping when asked.
    sd_notify(envparity_proto::systemd::READY);
    metrics.serving(writer.as_ref().map_or(0, |w| w.term().epoch));
    let lost = std::sync::Mutex::new(None);
    let stopping = tokio::sync::Notify::new();
    let shutdown = async {
        match &mut writer {
            Some(writer) => tokio::select! {
                () = shutdown => {}
                gone = writer.lost() => {
                    tracing::error!(error = %gone, "stopping: the writer lease went to another replica");
                    *lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(gone);
                }
            },
            None => shutdown.await,
        }
        sd_notify(envparity_proto::systemd::STOPPING);
        stopping.notify_one();
    };
    let nofile = conn::raise_nofile_limit();
    let limits = conn::ConnLimits::for_nofile(nofile);
    let conns = conn::Conns::new(limits, Arc::clone(&metrics));
    let budget = budget::Budget::new(budget::DEFAULT_BYTES, max, Arc::clone(&metrics));
    tracing::info!(
        open_files = nofile,
        max_connections = limits.max_connections,
        max_anonymous = limits.max_anonymous,
        request_budget_bytes = budget::DEFAULT_BYTES,
        "connection limits"
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(age) = config.max_connection_age {
        // A GOAWAY at that age; calls in flight then finish, each within
        // REQUEST_TIMEOUT. (tonic's max_connection_age_grace is not set:
        // with it, tonic 0.14 sends no GOAWAY and closes the connection at
        // age + grace, calls and all.)
        builder = builder.max_connection_age(age);
    }
    let router = builder
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .timeout(REQUEST_TIMEOUT)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .layer(conn::Track(Arc::clone(&conns)))
        .layer(budget::Meter(budget))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(report)
        .add_service(query);
    let served = async {
        match tls_config {
            Some(tls_config) => {
                router
                    .serve_with_incoming_shutdown(
                        tls::incoming(listener, tls_config, conns, Arc::clone(&metrics)),
                        shutdown,
                    )
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(conn::incoming_plain(listener, conns), shutdown)
                    .await
            }
        }
    };
    // Once stopping, in-flight calls get STOP_GRACE to finish; a client
    // that keeps its connection open without reading (and so never sees
    // the server's GOAWAY) does not hold the stop up longer.
    let served = tokio::select! {
        served = served => served.context("gRPC server"),
        () = async {
            stopping.notified().await;
            tokio::time::sleep(STOP_GRACE).await;
        } => {
            tracing::warn!(
                grace_s = STOP_GRACE.as_secs(),
                "connections still open after the stop grace; closing them"
            );
            Ok(())
        }
    };
    for t in tasks {
        t.abort();
    }
    // Heartbeats acknowledged since the last tick are in memory only.
    if let Err(e) = fleet.store_liveness(SystemTime::now()).await {
        tracing::error!(error = %e, "storing the liveness of the last heartbeats failed");
    }
    if let Some(web) = web {
        web.stop().await;
    }
    scrape.stop().await;
    served?;
    if let Some(gone) = lost.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(gone.into());
    }
    if let Some(writer) = writer {
        writer.release().await;
    }
    tracing::info!("envparity aggregator stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::transport::Plaintext;

    fn config(tls: bool, plaintext: Plaintext) -> ServeConfig {
        ServeConfig {
            tls: tls.then(|| tls::TlsFiles {
                cert: "server.pem".into(),
                key: "server-key.pem".into(),
                client_ca: "ca.pem".into(),
            }),
            plaintext,
            ..ServeConfig::new("127.0.0.1:0".parse().unwrap(), "data".into())
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_text_is_refused_by_default_naming_the_address() {
        let err = check_transport(&config(false, Plaintext::Refused), addr("127.0.0.1:7600"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen address 127.0.0.1:7600"), "{err}");
        assert!(err.contains("--insecure-plaintext"), "{err}");
        assert!(err.contains("tls_cert"), "{err}");
    }

    #[test]
    fn plain_text_when_asked_is_loopback_only_unless_forced() {
        let loopback = config(false, Plaintext::Loopback);
        check_transport(&loopback, addr("127.0.0.1:7600")).expect("loopback");
        check_transport(&loopback, addr("[::1]:7600")).expect("IPv6 loopback");
        for listen in ["0.0.0.0:7600", "10.0.0.1:7600", "[::]:7600"] {
            let err = check_transport(&loopback, addr(listen))
                .unwrap_err()
                .to_string();
            assert!(err.contains("--insecure-plaintext-anywhere"), "{err}");
        }
        check_transport(&config(false, Plaintext::Anywhere), addr("0.0.0.0:7600")).expect("forced");
    }

    #[test]
    fn the_web_view_follows_the_plain_text_rule_of_grpc() {
        let web = |listen: &str, plaintext| ServeConfig {
            web_listen: Some(addr(listen)),
            ..config(false, plaintext)
        };
        check_transport(
            &web("127.0.0.1:7700", Plaintext::Loopback),
            addr("127.0.0.1:7600"),
        )
        .expect("loopback");
        let err = check_transport(
            &web("0.0.0.0:7700", Plaintext::Loopback),
            addr("127.0.0.1:7600"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("web listen address 0.0.0.0:7700"), "{err}");
        assert!(err.contains("--insecure-plaintext-anywhere"), "{err}");
        check_transport(
            &web("0.0.0.0:7700", Plaintext::Anywhere),
            addr("127.0.0.1:7600"),
        )
        .expect("forced");
        let tls = ServeConfig {
            web_listen: Some(addr("0.0.0.0:7700")),
            ..config(true, Plaintext::Refused)
        };
        check_transport(&tls, addr("0.0.0.0:7600")).expect("TLS");
    }

    #[test]
    fn tls_with_a_plain_text_allowance_is_ambiguous() {
        check_transport(&config(true, Plaintext::Refused), addr("0.0.0.0:7600")).expect("TLS");
        let err = check_transport(&config(true, Plaintext::Loopback), addr("127.0.0.1:1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("choose one"), "{err}");
    }
}
