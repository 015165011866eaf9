//! `envparity-agent check-config`, as systemd's `ExecStartPre` runs it: the
//! real binary, its exit code, stdout and stderr. Nothing here has an engine
//! or an aggregator to talk to, which is the point: the check must not need
//! them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fleet key the tests write: printable, so a test can prove it is
/// never printed.
const KEY: &str = "do-not-print-this-fleet-key-0123456789";

/// The example shipped in deploy/ (installed as /etc/envparity/agent.toml).
fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/agent.toml")
}

/// A temp dir holding a 0600 fleet key and a host root with a machine id.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        let dir = Self(tempfile::tempdir().expect("a temp dir"));
        dir.write("fleet.key", KEY);
        dir.chmod("fleet.key", 0o600);
        dir.write("root/etc/machine-id", "machine-42\n");
        // A real PKI, as `envparity certs` makes it: the example config
        // names TLS files and the check reads them.
        envparity_aggregator::certs::make(&envparity_aggregator::certs::Request {
            dir: dir.0.path().join("tls"),
            server_names: vec!["localhost".to_owned()],
            agents: vec!["machine-42".to_owned()],
            environment: None,
            admins: Vec::new(),
            clients: Vec::new(),
            valid_for: std::time::Duration::from_secs(86_400),
        })
        .expect("making the test PKI");
        dir
    }

    fn path(&self, rel: &str) -> String {
        self.0.path().join(rel).display().to_string()
    }

    fn write(&self, rel: &str, text: &str) -> String {
        let path = self.0.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        self.path(rel)
    }

    fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(
            self.0.path().join(rel),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap();
    }

    /// `envparity-agent ARGS`, with an empty environment plus `env` (so the
    /// caller's ENVPARITY_* and DOCKER_HOST cannot leak in).
    fn agent(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_envparity-agent"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(self.0.path())
            .output()
            .expect("running envparity-agent")
    }

    /// `check-config` with the example config, this dir's key and host root,
    /// and `extra` flags.
    fn check_example(&self, extra: &[&str]) -> Output {
        let config = example_config().display().to_string();
        let key = self.path("fleet.key");
        let root = self.path("root");
        let (ca, cert, tls_key) = (
            self.path("tls/ca.pem"),
            self.path("tls/agent-machine-42.pem"),
            self.path("tls/agent-machine-42-key.pem"),
        );
        let mut args = vec![
            "--config",
            &config,
            "--fingerprint-key-file",
            &key,
            "--host-root",
            &root,
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &tls_key,
        ];
        args.extend_from_slice(extra);
        args.push("check-config");
        self.agent(&args, &[])
    }
}

/// Whether `text` (a `check-config` summary) has the row of `key` with a
/// value starting with `value`.
fn has_row(text: &str, key: &str, value: &str) -> bool {
    row(text, key).is_some_and(|v| v.starts_with(value))
}

/// The value (and origin) of `key`'s row of a `check-config` summary.
fn row<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("  ")?.strip_prefix(key)?;
        rest.starts_with("  ").then(|| rest.trim_start())
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit 2 with one `error: ...` line on stderr containing every one
/// of `wanted`, and nothing on stdout.
fn assert_refused(out: &Output, wanted: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(out));
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    for w in wanted {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
}

#[test]
fn the_deploy_example_config_passes_and_prints_its_settings() {
    let dir = Dir::new();
    let out = dir.check_example(&[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.starts_with(&format!(
            "configuration is valid (config file {})",
            example_config().display()
        )),
        "{text}"
    );
    for (key, value) in [
        ("environment", "production"),
        ("host_id", "machine-42"),
        (
            "aggregator",
            "https://envparity-aggregator.example.internal:7600",
        ),
        ("docker_host", "unix:///var/run/docker.sock"),
        ("labels", "region=eu-west"),
        ("clear_env", "LOG_LEVEL, FEATURE_*"),
        ("heartbeat_interval", "15s"),
        ("once", "false"),
    ] {
        assert!(
            has_row(&text, key, value),
            "{key} {value:?} missing from:\n{text}"
        );
    }
    assert!(
        has_row(&text, "fingerprint_key_file", &dir.path("fleet.key"))
            && has_row(&text, "fingerprint_key_id", "k"),
        "the key's path and id, not the key:\n{text}"
    );
    assert!(
        has_row(&text, "environment", "production  (config file, line "),
        "each value says where it came from:\n{text}"
    );
    assert!(
        !text.contains(KEY) && !stderr(&out).contains(KEY),
        "the key was printed"
    );
}

#[test]
fn check_config_contacts_neither_engine_nor_aggregator() {
    // Neither address answers; a run would report the engine unreachable
    // and retry the aggregator forever. The check is done at once.
    let dir = Dir::new();
    let started = std::time::Instant::now();
    let out = dir.check_example(&[
        "--docker-host",
        "unix:///nonexistent/docker.sock",
        "--aggregator",
        "https://127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(out.stderr.is_empty(), "no logging: {}", stderr(&out));
}

#[test]
fn flags_go_before_or_after_check_config_and_env_counts_too() {
    let dir = Dir::new();
    let config = dir.write(
        "agent.toml",
        "environment = \"staging\"\nfingerprint_key_file = \"fleet.key\"\nhost_root = \"root\"\ntls_ca = \"tls/ca.pem\"\n",
    );
    let after = dir.agent(
        &["check-config", "--config", &config, "--label", "zone=b"],
        &[],
    );
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    assert!(
        has_row(&stdout(&after), "labels", "zone=b  (--label)"),
        "{}",
        stdout(&after)
    );

    let from_env = dir.agent(
        &["check-config"],
        &[
            ("ENVPARITY_CONFIG", &config),
            ("ENVPARITY_ENVIRONMENT", "dev"),
        ],
    );
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));
    assert!(
        has_row(
            &stdout(&from_env),
            "environment",
            "dev  (ENVPARITY_ENVIRONMENT)"
        ),
        "the variable wins over the file: {}",
        stdout(&from_env)
    );
}

#[test]
fn plain_text_is_refused_unless_asked_for_and_then_only_on_loopback() {
    let dir = Dir::new();
    let config = dir.write(
        "agent.toml",
        "environment = \"dev\"\nfingerprint_key_file = \"fleet.key\"\nhost_root = \"root\"\n",
    );
    let check = |extra: &[&str]| {
        let mut args = vec!["--config", config.as_str()];
        args.extend_from_slice(extra);
        args.push("check-config");
        dir.agent(&args, &[])
    };
    let out = check(&["--aggregator", "http://127.0.0.1:7600"]);
    assert_refused(
        &out,
        &[
            "http://127.0.0.1:7600",
            "plain text",
            "--insecure-plaintext",
        ],
    );
    let out = check(&[
        "--aggregator",
        "http://10.9.8.7:7600",
        "--insecure-plaintext",
    ]);
    assert_refused(&out, &["non-loopback", "--insecure-plaintext-anywhere"]);
    let out = check(&["--aggregator", "https://10.9.8.7:7600"]);
    assert_refused(&out, &["--tls-ca"]);
    let out = dir.agent(
        &[
            "--config",
            &config,
            "--aggregator",
            "http://127.0.0.1:7600",
            "check-config",
        ],
        &[("ENVPARITY_INSECURE_PLAINTEXT", "true")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        has_row(
            &stdout(&out),
            "transport",
            "off: plain text, loopback only (insecure)"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unreadable_tls_files_fail_naming_the_file() {
    let dir = Dir::new();
    let missing = dir.path("tls/nope.pem");
    let config = dir.write(
        "agent.toml",
        &format!(
            "environment = \"dev\"\nfingerprint_key_file = \"fleet.key\"\nhost_root = \"root\"\ntls_ca = \"tls/ca.pem\"\ntls_cert = \"{missing}\"\ntls_key = \"tls/agent-machine-42-key.pem\"\n"
        ),
    );
    let out = dir.agent(&["--config", &config, "check-config"], &[]);
    assert_refused(&out, &["cannot read the client certificate", &missing]);
}

#[test]
fn unknown_config_key_fails_naming_file_line_and_key() {
    let dir = Dir::new();
    let config = dir.write(
        "agent.toml",
        "environment = \"dev\"\nfingerprint_key_file = \"fleet.key\"\nheartbeat = \"5s\"\n",
    );
    let out = dir.agent(&["--config", &config, "check-config"], &[]);
    assert_refused(
        &out,
        &[
            &format!("config file {config}, line 3"),
            "unknown field `heartbeat`",
        ],
    );
}

#[test]
fn bad_duration_fails_naming_the_value() {
    let dir = Dir::new();
    let config = dir.write(
        "agent.toml",
        "environment = \"dev\"\nfingerprint_key_file = \"fleet.key\"\nresync_interval = \"soon\"\n",
    );
    let out = dir.agent(&["--config", &config, "check-config"], &[]);
    assert_refused(&out, &[&config, "line 3", "invalid duration \"soon\""]);

    let out = dir.check_example(&["--heartbeat-interval", "0s"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad flag is a usage error too"
    );
    assert!(
        stderr(&out).contains("--heartbeat-interval"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn world_readable_key_file_fails_naming_file_and_mode() {
    let dir = Dir::new();
    dir.chmod("fleet.key", 0o644);
    let out = dir.check_example(&[]);
    assert_refused(&out, &[&dir.path("fleet.key"), "mode 0644", "chmod 600"]);
}

#[test]
fn missing_required_settings_fail_naming_flag_variable_and_key() {
    let dir = Dir::new();
    let out = dir.agent(
        &[
            "check-config",
            "--fingerprint-key-file",
            &dir.path("fleet.key"),
        ],
        &[],
    );
    assert_refused(
        &out,
        &["--environment", "ENVPARITY_ENVIRONMENT", "`environment`"],
    );
}
