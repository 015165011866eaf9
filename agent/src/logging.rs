//! Log setup: stderr, text or JSON, level from `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::config::LogFormat;

/// A container inspect body holds every env value in clear, and the agent
/// must never log one, whatever `RUST_LOG` asks for. Its own engine client
/// (`collect/engine_http.rs`) logs no body; bollard, whose API models it
/// still uses, logs whole bodies at debug level when its client runs, so
/// user directives for bollard are dropped and bollard is capped at info,
/// should its client code ever run in the agent again.
const QUIET_TARGET: &str = "bollard";

/// Whether a `RUST_LOG` directive targets bollard (or one of its modules).
fn targets_quiet(directive: &str) -> bool {
    let target = directive
        .trim()
        .split(['=', '['])
        .next()
        .unwrap_or_default();
    target == QUIET_TARGET
        || target
            .strip_prefix(QUIET_TARGET)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// The log filter: `RUST_LOG` (default `info`), with bollard capped at info.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let kept: Vec<&str> = rust_log
        .unwrap_or_default()
        .split(',')
        .filter(|d| !targets_quiet(d))
        .collect();
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(kept.join(","))
        .add_directive(
            format!("{QUIET_TARGET}=info")
                .parse()
                .expect("valid built-in directive"),
        )
}

/// Installs the global subscriber writing to stderr.
pub fn init(format: LogFormat) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(rust_log.as_deref()))
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        );
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Whether an event at `level` from `target` passes `filter`.
    fn enabled(filter: EnvFilter, target: &'static str, level: Level) -> bool {
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || match (target, level) {
            ("bollard::docker", Level::DEBUG) => {
                tracing::enabled!(target: "bollard::docker", Level::DEBUG)
            }
            ("envparity_agent", Level::DEBUG) => {
                tracing::enabled!(target: "envparity_agent", Level::DEBUG)
            }
            ("envparity_agent", Level::INFO) => {
                tracing::enabled!(target: "envparity_agent", Level::INFO)
            }
            _ => unreachable!("add the case"),
        })
    }

    #[test]
    fn default_level_is_info() {
        assert!(enabled(filter(None), "envparity_agent", Level::INFO));
        assert!(!enabled(filter(None), "envparity_agent", Level::DEBUG));
    }

    #[test]
    fn bollard_debug_stays_off_even_when_asked_for() {
        assert!(enabled(
            filter(Some("debug")),
            "envparity_agent",
            Level::DEBUG
        ));
        for asked in [
            "debug",
            "trace",
            "bollard=trace",
            "bollard::docker=debug",
            "bollard",
            "info,bollard::docker[x]=trace",
        ] {
            assert!(
                !enabled(filter(Some(asked)), "bollard::docker", Level::DEBUG),
                "RUST_LOG={asked} let bollard's response bodies through"
            );
        }
    }
}
