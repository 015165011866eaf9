//! The `envparity` command line: `serve` runs the aggregator; every other
//! command is a gRPC client of one.
//!
//! Exit codes, as `kubectl diff` and `diff(1)`: 0 = parity (or success),
//! 1 = drift found, 2 = error (bad arguments, unreachable server, unknown
//! environment or service, …), with a one-line message on stderr.

mod client;
mod output;
mod render;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::parity::{Kind, Severity};
use crate::server::{self, ServeConfig};

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
        default_value = "http://127.0.0.1:7600"
    )]
    pub server: String,

    /// Output format: `table` (default), `wide` (more columns), `json` or
    /// `yaml` (documented in docs/json-output.md, with `schema_version`).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
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

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the aggregator: receive agents' reports over gRPC, store them and
    /// answer queries.
    Serve(ServeArgs),
    /// List the hosts that report, with their freshness and host facts.
    Hosts {
        /// Only hosts of this environment.
        #[arg(long)]
        environment: Option<String>,
    },
    /// Show every service in every environment, marking drift, then every
    /// finding. Exits 1 when any finding counts (pending and waived ones do
    /// not).
    Status {
        /// Only this service (host-level findings are always shown).
        #[arg(long)]
        service: Option<String>,
    },
    /// Compare two environments. Exits 1 when any finding counts.
    Diff {
        /// The first environment, e.g. `staging`.
        env_a: String,
        /// The second environment, e.g. `production`.
        env_b: String,
        /// Only this service (host-level findings are always shown).
        #[arg(long)]
        service: Option<String>,
    },
    /// Show one service in every environment: image, digests and explicit
    /// env (as fingerprints) of every replica.
    Service {
        /// The service name.
        name: String,
    },
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
    /// (revision, version, created, base digest) and shared layers.
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
        /// At most this many recent changes and findings.
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
    /// The policy: `show` prints the one the aggregator applies; `check FILE`
    /// validates a file locally (exit 0 valid, 2 invalid) without a server.
    Policy {
        /// What to do.
        #[command(subcommand)]
        action: PolicyAction,
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

/// Options of `envparity serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for the gRPC API (reports, queries, health, reflection).
    #[arg(long, env = "ENVPARITY_LISTEN", default_value = "127.0.0.1:7600")]
    pub listen: SocketAddr,

    /// Directory of the embedded store (SQLite, WAL mode). Created if missing.
    #[arg(long, env = "ENVPARITY_DATA_DIR", default_value = "./envparity-data")]
    pub data_dir: PathBuf,

    /// A host not heard from for this long is shown as stale.
    #[arg(long, env = "ENVPARITY_STALE_AFTER", default_value = "90s", value_parser = humantime::parse_duration)]
    pub stale_after: Duration,

    /// The policy file (TOML; see docs/findings.md). Without it the built-in
    /// defaults apply (`envparity policy show` prints them). Reloaded on
    /// SIGHUP; a bad file then is logged and the last good policy stays.
    #[arg(long, env = "ENVPARITY_POLICY")]
    pub policy: Option<PathBuf>,

    /// Log format on stderr. The level comes from RUST_LOG (default `info`).
    #[arg(long, env = "ENVPARITY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

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
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Parity) => ExitCode::SUCCESS,
        Ok(Outcome::Drift) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", render::sanitize(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            let config = ServeConfig {
                listen: args.listen,
                data_dir: args.data_dir,
                stale_after: args.stale_after,
                policy: args.policy,
            };
            server::run(config, shutdown_signal()).await?;
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
        command => {
            let client = client::Client::connect(&cli.server).await?;
            let out = render::Out::new(cli.output);
            client::execute(client, command, &out).await
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
