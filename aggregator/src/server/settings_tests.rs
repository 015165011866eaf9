//! `serve`'s settings, as `serve` resolves them (here, above both `config`
//! and the CLI that parses them): the file with every sink type, errors naming the
//! line, key and sink, precedence over the file, and the summary.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, FromArgMatches, Parser};
use envparity_proto::transport::Plaintext;

use crate::config::alerts::Target;
use crate::config::serve;
use crate::config::*;
use crate::parity::Severity;
use crate::server::{self, Serve};

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A temp dir holding secret files (and an open one) and a policy, and the
/// config file `text` in it.
fn dir_with(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "slack-url",
        "https://hooks.slack.test/T/B/X\n",
        0o600,
    );
    write(dir.path(), "pd-key", "R0UTINGKEY", 0o600);
    write(
        dir.path(),
        "wh-secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        0o600,
    );
    write(
        dir.path(),
        "open-secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        0o644,
    );
    write(dir.path(), "policy.toml", "", 0o644);
    let path = write(dir.path(), "aggregator.toml", text, 0o644);
    (dir, path)
}

fn load(text: &str) -> (tempfile::TempDir, Result<FileConfig, ConfigError>) {
    let (dir, path) = dir_with(text);
    let loaded = FileConfig::load(&path);
    (dir, loaded)
}

/// `envparity ARGS` as the binary parses it, `serve`'s settings resolved
/// with `env` as the environment.
fn serve_with(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Serve> {
    let cli =
        crate::cli::Cli::try_parse_from(std::iter::once("envparity").chain(args.iter().copied()))?;
    let crate::cli::Command::Serve(serve) = cli.command else {
        panic!("not serve: {args:?}");
    };
    let env: BTreeMap<&str, &str> = env.iter().copied().collect();
    server::resolve(&serve, &env)
}

/// `serve --config FILE`, FILE holding `text`.
fn resolve(text: &str) -> (tempfile::TempDir, anyhow::Result<Serve>) {
    let (dir, path) = dir_with(text);
    let serve = serve_with(&["serve", "--config", path.to_str().unwrap()], &[]);
    (dir, serve)
}

#[test]
fn a_full_file_loads_with_every_sink_type() {
    let (dir, cfg) = resolve(
        r#"
listen = "0.0.0.0:7600"
data_dir = "data"
stale_after = "2m"
policy = "policy.toml"
log_format = "json"
metrics_listen = "127.0.0.1:9600"
[alerts]
base_url = "https://envparity.example.com"
[[alerts.sinks]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"
resend_interval = "30s"
[[alerts.sinks]]
name = "slack"
type = "slack"
url_file = "slack-url"
min_severity = "critical"
environments = ["production"]
[[alerts.sinks]]
name = "pd"
type = "pagerduty"
routing_key_file = "pd-key"
[[alerts.sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:1/hook"
secret_file = "wh-secret"
max_attempts = 3
backoff = "100ms"
"#,
    );
    let serve = cfg.unwrap();
    let cfg = &serve.config;
    assert_eq!(cfg.listen, "0.0.0.0:7600".parse().unwrap());
    assert_eq!(cfg.data_dir, dir.path().join("data"));
    assert_eq!(cfg.stale_after, Duration::from_secs(120));
    assert_eq!(cfg.policy, Some(dir.path().join("policy.toml")));
    assert_eq!(serve.log_format, LogFormat::Json);
    let names: Vec<_> = cfg.alerts.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["am", "slack", "pd", "hook"]);
    let slack = &cfg.alerts.sinks[1];
    assert_eq!(slack.route.min_severity, Severity::Critical);
    assert!(
        slack
            .route
            .admits(Severity::Critical, ["staging", "production"].into_iter())
    );
    assert!(
        !slack
            .route
            .admits(Severity::Critical, ["dev", "staging"].into_iter())
    );
    assert!(
        !slack
            .route
            .admits(Severity::Warning, ["production"].into_iter())
    );
    match &cfg.alerts.sinks[2].target {
        Target::PagerDuty { url, routing_key } => {
            assert_eq!(url, defaults::PAGERDUTY_URL);
            assert_eq!(routing_key.expose(), "R0UTINGKEY");
        }
        other => panic!("pd is {other:?}"),
    }
    assert_eq!(cfg.alerts.sinks[3].max_attempts, 3);
    assert_eq!(cfg.alerts.sinks[3].backoff, Duration::from_millis(100));
    // Secrets never show in Debug output.
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains("R0UTINGKEY") && !debug.contains("hooks.slack.test"),
        "{debug}"
    );
}

#[test]
fn errors_name_the_line_key_and_sink() {
    let cases = [
        ("lisen = \"x\"", "line 1"),
        ("stale_after = \"soon\"", "invalid duration"),
        ("listen = \"nowhere\"", "line 1"),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"",
            "`url` is required",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"carrier-pigeon\"\nurl = \"http://x\"",
            "carrier-pigeon",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"slack\"\nurl = \"http://x\"",
            "`url` does not apply",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://x\"\nsecret_file = \"open-secret\"",
            "chmod 600",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://x\"\nsecret_file = \"missing\"",
            "secret_file",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"ftp://x\"",
            "http:// or https://",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"http://x\"\n[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"http://y\"",
            "used by another sink",
        ),
        (
            "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"http://x\"\nmin_severity = \"panic\"",
            "panic",
        ),
    ];
    for (text, expected) in cases {
        let (_dir, result) = load(text);
        let err = result.expect_err(text).to_string();
        assert!(err.contains("aggregator.toml"), "{err}");
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn flags_beat_the_environment_beat_the_file_beat_the_defaults() {
    let (dir, path) =
        dir_with("listen = \"127.0.0.1:1\"\nreport_burst = 7\nstale_after = \"2m\"\n");
    let config = path.to_str().unwrap();
    let serve = serve_with(
        &["serve", "--config", config, "--listen", "127.0.0.1:3"],
        &[
            ("ENVPARITY_LISTEN", "127.0.0.1:2"),
            ("ENVPARITY_STALE_AFTER", "5s"),
        ],
    )
    .unwrap();
    assert_eq!(serve.config.listen, "127.0.0.1:3".parse().unwrap(), "flag");
    assert_eq!(serve.config.stale_after, Duration::from_secs(5), "variable");
    assert_eq!(serve.config.report_rate.burst, 7, "file");
    assert_eq!(serve.config.report_rate.rate, 5.0, "default");
    assert_eq!(
        serve.config.data_dir,
        Path::new(defaults::DATA_DIR),
        "default"
    );
    let origin = |key: &str| serve.report.row(key).unwrap().origin.clone();
    assert_eq!(origin("listen").as_deref(), Some("--listen"));
    assert_eq!(
        origin("stale_after").as_deref(),
        Some("ENVPARITY_STALE_AFTER")
    );
    assert_eq!(
        origin("report_burst").as_deref(),
        Some("config file, line 2")
    );
    assert_eq!(origin("report_rate").as_deref(), Some("default"));
    assert_eq!(serve.report.file(), Some(path.as_path()));
    for setting in serve::TABLE.settings() {
        assert!(
            serve.report.row(setting.key()).is_some(),
            "{} missing",
            setting.key()
        );
    }
    drop(dir);
}

#[test]
fn bad_values_name_their_flag_variable_or_file_line_and_key() {
    let (_dir, path) = dir_with("\nmax_plaintext_hosts = 0\n");
    let config = path.to_str().unwrap();
    let err = serve_with(&["serve", "--config", config], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "config file {config}, line 2: max_plaintext_hosts: is 0"
        )),
        "{err}"
    );
    let err = serve_with(&["serve"], &[("ENVPARITY_REPORT_RATE", "-1")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ENVPARITY_REPORT_RATE: report rate must be a positive"),
        "{err}"
    );
    let err = serve_with(&["serve", "--report-burst", "0"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("--report-burst: report burst must be at least 1"),
        "{err}"
    );
    let err = serve_with(&["serve"], &[("ENVPARITY_LISTEN", "nowhere")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ENVPARITY_LISTEN: invalid address \"nowhere\""),
        "{err}"
    );
    let err = serve_with(&["serve", "--policy", "/nonexistent/policy.toml"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("--policy: ") && err.contains("/nonexistent/policy.toml"),
        "{err}"
    );
    let err = serve_with(&["serve", "--tls-cert", "a.pem"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("TLS needs all of tls_cert, tls_key and tls_client_ca"),
        "{err}"
    );
    for bad in ["10.0.0.7", "10.0.0.7:0", ":7600", "pod:port"] {
        let err = serve_with(&["serve"], &[("ENVPARITY_ADVERTISE", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("ENVPARITY_ADVERTISE: {bad:?} is not HOST:PORT")),
            "{err}"
        );
    }
    for bad in ["500ms", "11m"] {
        let err = serve_with(&["serve", "--lease-ttl", bad], &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--lease-ttl: is "), "{err}");
        assert!(err.contains("between 1s"), "{err}");
    }
    let serve = serve_with(
        &["serve", "--lease-ttl", "3s"],
        &[("ENVPARITY_ADVERTISE", "[fd00::7]:7600")],
    )
    .unwrap();
    assert_eq!(serve.config.lease_ttl, Duration::from_secs(3));
    assert_eq!(serve.config.advertise.as_deref(), Some("[fd00::7]:7600"));
}

#[test]
fn a_max_connection_age_is_off_unless_set_and_at_least_a_second() {
    assert_eq!(
        serve_with(&["serve"], &[])
            .unwrap()
            .config
            .max_connection_age,
        None
    );
    let err = serve_with(&["serve"], &[("ENVPARITY_MAX_CONNECTION_AGE", "500ms")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ENVPARITY_MAX_CONNECTION_AGE: is 500ms: give at least 1s"),
        "{err}"
    );
    let serve = serve_with(&["serve", "--max-connection-age", "30m"], &[]).unwrap();
    assert_eq!(
        serve.config.max_connection_age,
        Some(Duration::from_secs(30 * 60))
    );
}

#[test]
fn plain_text_comes_from_the_global_flag_the_variable_or_the_file() {
    let plaintext =
        |args: &[&str], env: &[(&str, &str)]| serve_with(args, env).unwrap().config.plaintext;
    assert_eq!(plaintext(&["serve"], &[]), Plaintext::Refused);
    assert_eq!(
        plaintext(&["--insecure-plaintext", "serve"], &[]),
        Plaintext::Loopback
    );
    assert_eq!(
        plaintext(&["serve", "--insecure-plaintext"], &[]),
        Plaintext::Loopback
    );
    assert_eq!(
        plaintext(
            &["serve"],
            &[("ENVPARITY_INSECURE_PLAINTEXT_ANYWHERE", "true")]
        ),
        Plaintext::Anywhere
    );
    let (_dir, path) = dir_with("insecure_plaintext = true\n");
    let config = path.to_str().unwrap();
    assert_eq!(
        plaintext(&["serve", "--config", config], &[]),
        Plaintext::Loopback
    );
    assert_eq!(
        plaintext(
            &["serve", "--config", config],
            &[("ENVPARITY_INSECURE_PLAINTEXT", "false")]
        ),
        Plaintext::Refused,
        "the variable wins over the file"
    );
}

#[test]
fn every_flag_of_serve_names_its_variable_in_help() {
    let help = ServeArgs::augment_args(clap::Command::new("serve"))
        .render_long_help()
        .to_string();
    // One line: clap wraps the help.
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for setting in serve::TABLE.settings() {
        if let (envparity_settings::Flag::Long(flag), Some(var)) = (setting.flag(), setting.var()) {
            assert!(
                help.contains(&format!("--{flag}")),
                "--{flag} missing:\n{help}"
            );
            assert!(
                help.contains(&format!("[env: {var}]")),
                "{var} missing:\n{help}"
            );
        }
    }
    assert!(help.contains("[default: 127.0.0.1:7600]"), "{help}");
    let matches = ServeArgs::augment_args(clap::Command::new("serve"))
        .try_get_matches_from(["serve", "--listen", "127.0.0.1:9"])
        .unwrap();
    let args = ServeArgs::from_arg_matches(&matches).unwrap();
    let serve = server::resolve(&args, &BTreeMap::<&str, &str>::new()).unwrap();
    assert_eq!(serve.config.listen, "127.0.0.1:9".parse().unwrap());
}

proptest::proptest! {
    /// The report burst from whichever of flag, variable and file sets it,
    /// the first in that order, and the summary says which.
    #[test]
    fn report_burst_comes_from_the_first_source_that_sets_it(
        flag in proptest::option::of(1u32..1000),
        env in proptest::option::of(1u32..1000),
        file in proptest::option::of(1u32..1000),
    ) {
        let text = file.map_or_else(String::new, |n| format!("report_burst = {n}\n"));
        let (_dir, path) = dir_with(&text);
        let config = path.to_str().unwrap().to_owned();
        let flag_text = flag.map(|n| n.to_string());
        let env_text = env.map(|n| n.to_string());
        let mut args = vec!["serve", "--config", config.as_str()];
        if let Some(n) = &flag_text {
            args.extend(["--report-burst", n.as_str()]);
        }
        let mut vars = Vec::new();
        if let Some(n) = &env_text {
            vars.push(("ENVPARITY_REPORT_BURST", n.as_str()));
        }
        let serve = serve_with(&args, &vars).unwrap();
        let (want, origin) = match (flag, env, file) {
            (Some(n), _, _) => (n, "--report-burst"),
            (None, Some(n), _) => (n, "ENVPARITY_REPORT_BURST"),
            (None, None, Some(n)) => (n, "config file, line 1"),
            (None, None, None) => (50, "default"),
        };
        proptest::prop_assert_eq!(serve.config.report_rate.burst, want);
        proptest::prop_assert_eq!(
            serve.report.row("report_burst").unwrap().origin.as_deref(),
            Some(origin)
        );
    }
}

#[test]
fn docs_list_every_setting_as_declared() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    serve::TABLE.check_doc(&doc, "serve").unwrap();
}

#[test]
fn check_config_in_text_is_each_setting_with_its_origin_then_what_they_add_up_to() {
    let (_dir, serve) = resolve(
        "listen = \"127.0.0.1:7611\"\ninsecure_plaintext = true\n\
         [[alerts.sinks]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\n",
    );
    let serve = serve.unwrap();
    let found = "PostgreSQL envparity@db/envparity, schema version 1".to_owned();
    let check =
        crate::cli::output::ConfigCheck::new("f".into(), &serve.config, serve.log_format, found);
    let out = crate::cli::render::Out::buffered(crate::cli::Format::Table, false);
    out.config_check(&check, serve.report).unwrap();
    let text = out.take();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("configuration is valid (config file "),
        "{text}"
    );
    let row = |key: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} row in {text}"))
            .to_string()
    };
    assert!(row("store_found").contains("schema version 1"), "{text}");
    assert!(
        row("listen").contains("127.0.0.1:7611") && row("listen").contains("line 1"),
        "{text}"
    );
    assert!(
        row("transport").contains("plain text, loopback only"),
        "{text}"
    );
    assert!(row("sink").contains("am"), "{text}");
    let transport = lines.iter().position(|l| l.contains("transport")).unwrap();
    assert!(transport > lines.iter().position(|l| l.contains("log_format")).unwrap());
}
