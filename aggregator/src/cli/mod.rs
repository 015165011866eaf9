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
    /// finding. Exits 1 when there is any finding.
    Status {
        /// Only this service (host-level findings are always shown).
        #[arg(long)]
        service: Option<String>,
    },
    /// Compare two environments. Exits 1 when they differ.
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
            };
            server::run(config, shutdown_signal()).await?;
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
