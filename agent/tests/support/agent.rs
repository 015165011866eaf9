//! The agent, in-process: `envparity_agent::run` on a runtime of its own.

use std::time::Duration;

use envparity_agent::{Config, RunError, run};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::runtime;

/// How long a stopping agent may take to return.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running agent; [`Agent::stop`] shuts it down as SIGTERM would. Dropping
/// it without `stop` (a failing test) just cancels it.
pub struct Agent {
    runtime: Runtime,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl Agent {
    /// Starts the agent in daemon mode.
    pub fn start(config: Config) -> Self {
        let runtime = runtime();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(run(config, async {
            stopped.await.ok();
        }));
        Self {
            runtime,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown; panics unless the agent returns `Ok` promptly.
    pub fn stop(mut self) {
        let (Some(stop), Some(task)) = (self.stop.take(), self.task.take()) else {
            return;
        };
        // The agent may already have returned (then with an error, checked below).
        let _ = stop.send(());
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(STOP_TIMEOUT, task).await })
            .unwrap_or_else(|_| {
                panic!("agent did not stop within {STOP_TIMEOUT:?} of the shutdown signal")
            })
            .expect("agent task panicked");
        assert!(result.is_ok(), "agent stopped with {result:?}");
    }
}

/// Runs the agent with `--once`; panics if it does not return within `timeout`.
pub fn run_once(mut config: Config, timeout: Duration) -> Result<(), RunError> {
    config.once = true;
    runtime()
        .block_on(async {
            tokio::time::timeout(timeout, run(config, std::future::pending())).await
        })
        .unwrap_or_else(|_| panic!("--once did not return within {timeout:?}"))
}
