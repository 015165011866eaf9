//! The `envparity-agent` binary: parse, set up logging, run. Everything else
//! is in the library, where tests can drive it.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use envparity_agent::config::{self, Action, Config, ProcessEnv};
use envparity_agent::{logging, run, shutdown_signal};

fn main() -> ExitCode {
    // clap prints help, version and usage errors itself, with its own exit
    // codes (0 for help, 2 for usage).
    let cli = config::parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn try_main(cli: config::Cli) -> anyhow::Result<()> {
    if cli.action == Some(Action::CheckConfig) {
        // Exactly the resolution a run does, then stop: no logging, no
        // runtime, no engine, no aggregator.
        print!("{}", Config::check(cli, &ProcessEnv)?);
        return Ok(());
    }
    let config = Config::resolve(cli, &ProcessEnv)?;
    logging::init(config.log_format);
    // The agent is light: two workers are plenty on hosts with many cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config, shutdown_signal()))?;
    Ok(())
}
