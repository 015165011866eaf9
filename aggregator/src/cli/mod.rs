//! The `envparity` command line: `serve` runs the aggregator; every other
//! command is a gRPC client of one.
//!
//! Exit codes, as `kubectl diff` and `diff(1)`: 0 = parity (or success),
//! 1 = drift found, 2 = error (bad arguments, unreachable server, unknown
//! environment or service, …), with a one-line message on stderr.

mod client;
pub mod image_diff;
mod migrate;
pub mod output;
pub mod render;
mod yaml;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use envparity_settings::ProcessEnv;

use crate::parity::{Kind, Severity};
use crate::server;
use envparity_proto::transport::Plaintext;

/// envparity: prove that production runs what staging tested.
///
/// Agents on every host report what runs (image digests, explicit env, host
/// and engine facts); the aggregator stores the reports and flags every
/// mismatch between environments.
#[derive(Debug, Parser)]
#[command(name = "envparity", version, propagate_version = true)]
pub struct Cli {
    /// Aggregator to query (the address `envparity serve` listens on).
    #[arg(
        long,
        global = true,
        env = "ENVPARITY_SERVER",
        default_value = "https://127.0.0.1:7600"
    )]
    pub server: String,

    /// Allow plain-text gRPC (no TLS) on loopback only: an `http://`
    /// --server for queries, or `serve` without TLS files. Unencrypted and
    /// without certificate identities; for local trials only.
    #[arg(long, global = true, env = "ENVPARITY_INSECURE_PLAINTEXT")]
    pub insecure_plaintext: bool,

    /// Allow plain-text gRPC to or on any address, not just loopback. Only
    /// for networks trusted by other means (e.g. a service mesh that
    /// encrypts).
    #[arg(long, global = true, env = "ENVPARITY_INSECURE_PLAINTEXT_ANYWHERE")]
    pub insecure_plaintext_anywhere: bool,

    /// CA certificate (PEM) the aggregator's certificate must chain to; needed
    /// for an `https://` --server.
    #[arg(long, global = true, env = "ENVPARITY_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,

    /// Query client certificate (PEM, `OU=envparity-query`; see `envparity
    /// certs --client`).
    #[arg(
        long,
        global = true,
        env = "ENVPARITY_QUERY_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Key of --tls-cert (PEM).
    #[arg(
        long,
        global = true,
        env = "ENVPARITY_QUERY_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// File holding a query bearer token (see `envparity query-token`),
    /// instead of a client certificate.
    #[arg(long, global = true, env = "ENVPARITY_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Output format: `table` (default), `wide` (more columns), `json` or
    /// `yaml` (documented in docs/json-output.md, with `schema_version`).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The plain-text allowance of the global flags.
    pub fn plaintext(&self) -> Plaintext {
        Plaintext::from_flags(self.insecure_plaintext, self.insecure_plaintext_anywhere)
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people; coloured on a terminal unless NO_COLOR is set.
    Table,
    /// Like `table`, with hosts, full digests and comparison bases.
    Wide,
    /// Machine-readable JSON.
    Json,
    /// Machine-readable YAML (same fields as JSON).
    Yaml,
}

/// `migrate`'s flags: serve's, and an embedded store to import.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Copy every row of the embedded store of this data directory (its
    /// envparity.db, as `serve --data-dir DIR` kept it) into the PostgreSQL
    /// database --store names, which must hold no rows: hosts and their
    /// containers, liveness, history, findings, alerts and queued
    /// notifications, ids kept, in one transaction (all of it, or nothing).
    /// Stop every aggregator using either store first (docs/store.md).
    #[arg(long, value_name = "DIR")]
    from_sqlite: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the aggregator: receive agents' reports over gRPC, store them and
    /// answer queries.
    Serve(ServeArgs),
    /// List the hosts that report, with their freshness and host facts,
    /// and each host's unmanaged containers (no identity label, a name the
    /// engine generated), which are never compared.
    Hosts {
        /// Only hosts of this environment.
        #[arg(long)]
        environment: Option<String>,
        /// `forget HOST`: forget a decommissioned host.
        #[command(subcommand)]
        action: Option<HostsAction>,
    },
    /// Sum up the fleet, then show the services that drift in every
    /// environment, marking the cells that drift, then their findings. Exits
    /// 1 when any finding counts (pending and waived ones do not), in the
    /// whole fleet, not only the rows shown.
    Status {
        /// Only this service (host-level findings are always shown).
        #[arg(long)]
        service: Option<String>,
        /// Every service, those that drift first (default: only those that
        /// drift).
        #[arg(long)]
        all: bool,
        /// Only this environment's column, and the findings that involve it.
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// At most this many services per answer (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// The page after a previous answer: the token it printed.
        #[arg(long, value_name = "TOKEN")]
        page: Option<String>,
    },
    /// Compare two environments: a page of their findings, then the
    /// verdict. Exits 1 when any finding counts, among all of them, not
    /// only those shown.
    Diff {
        /// The first environment, e.g. `staging`.
        env_a: String,
        /// The second environment, e.g. `production`.
        env_b: String,
        /// Only this service (host-level findings are always shown).
        #[arg(long)]
        service: Option<String>,
        /// At most this many findings per answer (1 to 5000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5000))]
        limit: u32,
        /// The page after a previous answer: the token it printed.
        #[arg(long, value_name = "TOKEN", conflicts_with = "all")]
        page: Option<String>,
        /// Every finding, in one answer (read a page of 5,000 at a time).
        #[arg(long)]
        all: bool,
    },
    /// Show one service in every environment: image, digests and explicit
    /// env (as fingerprints) of every replica, then its mounted
    /// configuration files as keys × environments with fingerprints.
    Service {
        /// The service name.
        name: String,
    },
    /// What differs inside two images (files, packages, runtimes, layers)
    /// and by how much, with no aggregator: from two `docker save` archives
    /// (--archive) or the local engine. Exits 0 within the thresholds, 1
    /// beyond (with none set: when anything differs), 2 on an error. See
    /// docs/image-diff.md.
    ImageDiff(image_diff::ImageDiffArgs),
    /// List every finding between every pair of environments, filtered.
    /// Exits 1 when any listed finding counts.
    Findings {
        /// Only findings at or above this severity.
        #[arg(long, value_parser = parse_severity)]
        severity: Option<Severity>,
        /// Only findings of this kind (e.g. `image_digest`; see
        /// docs/findings.md).
        #[arg(long, value_parser = parse_kind)]
        kind: Option<Kind>,
        /// Only findings of this service (host-level ones are kept).
        #[arg(long)]
        service: Option<String>,
    },
    /// CI check: exit 1 when any finding that counts is at or above
    /// `--fail-on`, else 0. Pending and waived findings never fail it.
    Check {
        /// The lowest severity that fails the check.
        #[arg(long, value_parser = parse_severity, default_value = "warning")]
        fail_on: Severity,
    },
    /// The promotion gate, for CI: exit 0 only when the digest about to go to
    /// `--to` is what every replica of the previous stage runs (for at least
    /// the policy's minimum time) and no blocking finding stands; else 1 with
    /// the reasons.
    Gate {
        /// The service to promote.
        #[arg(long)]
        service: String,
        /// The environment it is promoted to, e.g. `production`.
        #[arg(long)]
        to: String,
        /// The image about to be deployed, pinned: `REF@sha256:<hex>` or
        /// `sha256:<hex>`. Without it, what `--to` runs now is checked.
        #[arg(long)]
        image: Option<String>,
    },
    /// Why two environments run different images of a service: OCI labels
    /// (revision, version, created, base digest) and shared layers, as the
    /// aggregator explains them; then the replicas' mounted configuration
    /// files as keys × the two environments, with fingerprints (clear values
    /// only where the agents allowlist them).
    Explain {
        /// The service.
        service: String,
        /// The two environments (give `--env` twice); default: the last two
        /// environments, in promotion order, that run the service.
        #[arg(long = "env", num_args = 1)]
        envs: Vec<String>,
    },
    /// A service's history: when each environment moved to what, and when
    /// each finding opened and resolved.
    History {
        /// The service.
        service: String,
        /// At most this many recent changes, and as many findings; read
        /// 1,000 per call. The output says when older ones were left out.
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
    /// Validate the aggregator's configuration as `serve` would (the file,
    /// the policy it names, every secret file and its permissions) without
    /// starting anything; print every effective setting and where it came
    /// from (never a secret). Exit 0 valid, 2 invalid.
    CheckConfig(ServeArgs),
    /// Bring the store's schema to this version and exit (what `serve` does
    /// on start): with --store postgres://…, in one transaction under an
    /// advisory lock, so that replicas starting at once cannot both
    /// migrate; a newer schema is refused. Takes serve's settings (--store,
    /// --config, …). With --from-sqlite DIR, then copies an embedded store
    /// into that PostgreSQL database. Exit 0 done, 2 failed.
    Migrate(MigrateArgs),
    /// List the alerts firing now (findings active past the policy's
    /// `alert_grace` at or above the alerting severity) and the sinks;
    /// `alerts test SINK` sends a test notification.
    Alerts {
        /// What to do; without one, list.
        #[command(subcommand)]
        action: Option<AlertsAction>,
    },
    /// Make a fleet CA (or reuse the one in --dir) and certificates: the
    /// aggregator's (--server-name), one per agent host (--agent HOST_ID)
    /// and query clients (--client NAME). Keys are written mode 0600.
    Certs {
        /// Where the files go (`ca.pem`, `server.pem`, `agent-HOST.pem`,
        /// `client-NAME.pem` and their `-key.pem`).
        #[arg(long)]
        dir: PathBuf,
        /// A DNS name or IP address of the aggregator (repeat for several).
        #[arg(long = "server-name")]
        server_names: Vec<String>,
        /// A host id to make an agent certificate for (repeat).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Bind the agent certificates made to this environment: the
        /// aggregator refuses their reports for any other (without it, an
        /// agent certificate may report for any environment).
        #[arg(long, requires = "agents")]
        environment: Option<String>,
        /// A name to make a query certificate for (repeat).
        #[arg(long = "client")]
        clients: Vec<String>,
        /// A name to make an admin certificate for (repeat): it may query
        /// and forget hosts (`envparity hosts forget`).
        #[arg(long = "admin")]
        admins: Vec<String>,
        /// Validity of new certificates, in days.
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
    /// Make a query bearer token: prints the token (once: give it to the
    /// client) and the line to add to the aggregator's query_tokens_file
    /// (which holds only its SHA-256).
    QueryToken {
        /// Who will hold it (shown in logs).
        name: String,
    },
    /// The policy: `show` prints the one the aggregator applies; `check FILE`
    /// validates a file locally (exit 0 valid, 2 invalid) without a server.
    Policy {
        /// What to do.
        #[command(subcommand)]
        action: PolicyAction,
    },
}

/// `envparity alerts` actions.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Send a test notification to one sink of the configuration file,
    /// from this machine, with the sink's retry rules; exit 0 when the sink
    /// accepted it, 2 otherwise (with its answer). PagerDuty gets a trigger
    /// then a resolve; Alertmanager an info alert that ends in a minute.
    Test {
        /// The sink's `name` in the configuration file.
        sink: String,
        /// The configuration (as for `serve`).
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// `envparity hosts` actions.
#[derive(Debug, Subcommand)]
pub enum HostsAction {
    /// Forget a decommissioned host: its last snapshot and liveness leave
    /// the aggregator (its history stays) and its findings resolve. Needs an
    /// admin certificate (`envparity certs --admin NAME`) when TLS is on;
    /// logged with who asked. Stop the host's agent first: a host that
    /// reports again comes back.
    Forget {
        /// The host id.
        host: String,
    },
}

/// `envparity policy` actions.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Print the effective policy of the aggregator, defaults included.
    Show,
    /// Validate a policy file; print it with defaults filled in.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
        .map_err(|e: crate::parity::UnknownName| e.to_string())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
        .map_err(|e: crate::parity::UnknownName| e.to_string())
}

pub use crate::config::LogFormat;
pub use crate::config::ServeArgs;

/// The outcome of a successful command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing differs (or the command does not judge parity).
    Parity,
    /// Something differs.
    Drift,
}

impl Outcome {
    /// `Parity` when `parity` holds, else `Drift`.
    pub fn judged(parity: bool) -> Self {
        if parity {
            Outcome::Parity
        } else {
            Outcome::Drift
        }
    }
}

/// Entry point of the binary: parses arguments, runs, maps the result to an
/// exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(Outcome::Parity) => ExitCode::SUCCESS,
        Ok(Outcome::Drift) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", render::sanitize(&format!("{e:#}")));
            ExitCode::from(2)
        }
    };
    // Dropping the runtime would wait for every blocking task; one still
    // waiting on the database (a replica that lost the writer lease, a
    // dead server) must not keep the process from exiting.
    runtime.shutdown_timeout(EXIT_GRACE);
    code
}

/// How long blocking tasks may go on once a command is done.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let plaintext = cli.plaintext();
    match cli.command {
        Command::Serve(args) => {
            let serve = server::resolve(&args, &ProcessEnv)?;
            let config = serve.config;
            // Before binding anything: a refused transport opens no port.
            server::check_transport(&config, config.listen)?;
            init_logging(serve.log_format);
            server::run(config, shutdown_signal()).await?;
            Ok(Outcome::Parity)
        }
        Command::CheckConfig(args) => {
            let serve = server::resolve(&args, &ProcessEnv)?;
            server::check_transport(&serve.config, serve.config.listen)?;
            let location = serve.config.store();
            let store = tokio::task::spawn_blocking(move || crate::store::check(&location))
                .await
                .map_err(crate::store::StoreError::task)??;
            let source = serve.report.file().map_or_else(
                || "no --config file".to_owned(),
                |p| p.display().to_string(),
            );
            let check = output::ConfigCheck::new(source, &serve.config, serve.log_format, store);
            render::Out::new(cli.output).config_check(&check, serve.report)?;
            Ok(Outcome::Parity)
        }
        Command::Migrate(MigrateArgs { from_sqlite, serve }) => {
            let serve = server::resolve(&serve, &ProcessEnv)?;
            let location = serve.config.store();
            let name = location.name();
            if let Some(dir) = from_sqlite {
                return migrate::import(dir, location).await;
            }
            let migrated = tokio::task::spawn_blocking(move || crate::store::migrate(&location))
                .await
                .map_err(crate::store::StoreError::task)??;
            match migrated.from {
                Some(from) if from != migrated.to => {
                    println!(
                        "store {name}: schema migrated from version {from} to {}",
                        migrated.to
                    );
                }
                Some(_) => println!("store {name}: schema already at version {}", migrated.to),
                None => println!(
                    "store {name}: schema at version {} (SQLite upgrades in place on open)",
                    migrated.to
                ),
            }
            Ok(Outcome::Parity)
        }
        Command::Alerts {
            action: Some(AlertsAction::Test { sink, serve }),
        } => {
            let config = server::resolve(&serve, &ProcessEnv)?.config;
            crate::alert::Sender::new(&config.alerts)
                .test(&config.alerts, &sink)
                .await
                .map_err(|e| anyhow::anyhow!("sink {sink}: {e}"))?;
            println!("test notification accepted by sink {sink}");
            Ok(Outcome::Parity)
        }
        Command::Policy {
            action: PolicyAction::Check { file },
        } => {
            let loaded = server::load_policy(&file)?;
            let out = render::Out::new(cli.output);
            out.policy(&output::PolicyShow {
                schema_version: output::SCHEMA_VERSION,
                source: loaded.source,
                loaded_at: None,
                toml: loaded.policy.to_toml(),
            })?;
            Ok(Outcome::Parity)
        }
        Command::Certs {
            dir,
            server_names,
            agents,
            environment,
            clients,
            admins,
            days,
        } => {
            let written = crate::certs::make(&crate::certs::Request {
                dir,
                server_names,
                agents,
                environment,
                clients,
                admins,
                valid_for: Duration::from_secs(days.saturating_mul(86_400)),
            })?;
            for path in written {
                println!("wrote {}", path.display());
            }
            Ok(Outcome::Parity)
        }
        Command::ImageDiff(args) => image_diff::run(args, cli.output).await,
        Command::QueryToken { name } => {
            let (token, line) = crate::certs::new_token(&name)?;
            println!(
                "token (shown once; give it to {name}, e.g. in a file for --token-file):\n{token}"
            );
            println!("line for the aggregator's query_tokens_file:\n{line}");
            Ok(Outcome::Parity)
        }
        command => {
            let credentials = client::Credentials {
                tls: envparity_proto::transport::ClientTls {
                    ca: cli.tls_ca.clone(),
                    cert: cli.tls_cert.clone(),
                    key: cli.tls_key.clone(),
                    plaintext,
                },
                token_file: cli.token_file.clone(),
            };
            let client = client::Client::connect(&cli.server, &credentials).await?;
            let out = render::Out::new(cli.output);
            client::execute(client, command, &out).await
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal who did not ask for none.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
