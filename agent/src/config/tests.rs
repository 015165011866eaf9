//! The agent's settings through the shared mechanism: precedence, the
//! file's forms, errors naming their source, and the `check-config` summary.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::*;
use envparity_proto::transport::Plaintext;
use envparity_settings::Setting;

/// The variable of `setting`.
fn var<T, I>(setting: &Setting<T, I>) -> &'static str {
    setting.var_name().expect("a variable")
}

/// A self-signed CA certificate (openssl, P-256), only parsed here: the
/// default https:// aggregator needs one.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBkDCCATWgAwIBAgIUa8KsaSW7mUUAhDqOnRPCVw6xCK8wCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRZW52cGFyaXR5IHRlc3QgQ0EwIBcNMjYxMTIzMTY1MjI4WhgP\nMjEyNjEwMzAxNjUyMjhaMBwxGjAYBgNVBAMMEWVudnBhcml0eSB0ZXN0IENBMFkw\nEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyHDKZwsUpr8MkgxVT6Yd4lrjE7g1BPKt\nWP6z8T/S1BtB32OXKip2vNcXHhnjI0eNOYL0mbog2RBA9hzCXA/s1qNTMFEwHQYD\nVR0OBBYEFG53c8cB6ECgUGvXrp9Ss/6qeaRQMB8GA1UdIwQYMBaAFG53c8cB6ECg\nUGvXrp9Ss/6qeaRQMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\nAICkuzCZf53psD7Jn6d9f5CvtfS/b3rWinGXg6eNkqNfAiEAlb3w/iV2FP38HppC\nj3+qIJMKVknwFG/YUG10yPmEDs8=\n-----END CERTIFICATE-----\n";

/// A temp dir holding a valid 0600 key file, a host root with a machine id
/// and a CA certificate.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fleet.key");
        std::fs::write(&key, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::create_dir_all(dir.path().join("root/etc")).unwrap();
        std::fs::write(dir.path().join("root/etc/machine-id"), "machine-123\n").unwrap();
        std::fs::write(dir.path().join("ca.pem"), TEST_CA_PEM).unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    fn write(&self, rel: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(rel), text).unwrap();
        self.path(rel)
    }

    /// Args with the required settings, plus `extra`.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "envparity-agent".to_owned(),
            "--fingerprint-key-file".to_owned(),
            self.path("fleet.key"),
            "--host-root".to_owned(),
            self.path("root"),
            "--tls-ca".to_owned(),
            self.path("ca.pem"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    fn resolve(&self, extra: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<&str, &str> = env.iter().copied().collect();
        Config::resolve(parse_args(self.args(extra)).unwrap(), &env)
    }
}

#[test]
fn flags_beat_env_beat_file() {
    let fx = Fixture::new();
    let file = fx.write(
        "agent.toml",
        "environment = \"from-file\"\naggregator = \"https://file:1\"\nheartbeat_interval = \"7s\"\n",
    );
    let env = [
        (var(&s::CONFIG), file.as_str()),
        (var(&s::ENVIRONMENT), "from-env"),
        (var(&s::AGGREGATOR), "https://env:2"),
    ];

    let c = fx.resolve(&["--environment", "from-flag"], &env).unwrap();
    assert_eq!(c.environment, "from-flag", "flag beats env and file");
    assert_eq!(c.aggregator, "https://env:2", "env beats file");
    assert_eq!(
        c.heartbeat_interval,
        Duration::from_secs(7),
        "file beats default"
    );
    assert_eq!(
        c.resync_interval, DEFAULT_RESYNC_INTERVAL,
        "default when unset"
    );

    let c = fx.resolve(&[], &env).unwrap();
    assert_eq!(c.environment, "from-env");
}

#[test]
fn plain_text_needs_the_flag_and_a_loopback_address_unless_forced() {
    let fx = Fixture::new();
    // The fixture's --tls-ca would contradict http://; a plain-text agent
    // has no CA, so resolve without it.
    let resolve = |extra: &[&str]| {
        let mut args = fx.args(&["--environment", "dev"]);
        let ca = args.iter().position(|a| a == "--tls-ca").unwrap();
        args.drain(ca..ca + 2);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Config::resolve(parse_args(args).unwrap(), &BTreeMap::<&str, &str>::new())
    };
    let err = resolve(&["--aggregator", "http://127.0.0.1:7600"]).unwrap_err();
    assert!(err.to_string().contains("--insecure-plaintext"), "{err}");
    let c = resolve(&[
        "--aggregator",
        "http://127.0.0.1:7600",
        "--insecure-plaintext",
    ])
    .expect("loopback plain text when asked");
    assert_eq!(c.tls.plaintext, Plaintext::Loopback);
    let err = resolve(&[
        "--aggregator",
        "http://10.0.0.9:7600",
        "--insecure-plaintext",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("non-loopback"), "{err}");
    let c = resolve(&[
        "--aggregator",
        "http://10.0.0.9:7600",
        "--insecure-plaintext-anywhere",
    ])
    .expect("forced");
    assert_eq!(c.tls.plaintext, Plaintext::Anywhere);
    let err = resolve(&["--aggregator", "https://10.0.0.9:7600"]).unwrap_err();
    assert!(err.to_string().contains("--tls-ca"), "{err}");
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let fx = Fixture::new();
    let c = fx.resolve(&["--environment", "dev"], &[]).unwrap();
    assert_eq!(c.aggregator, DEFAULT_AGGREGATOR);
    assert_eq!(c.docker_host, DEFAULT_DOCKER_HOST);
    assert_eq!(c.heartbeat_interval, Duration::from_secs(15));
    assert_eq!(c.host_id, "machine-123", "from <host-root>/etc/machine-id");
    assert!(c.fingerprint_key_id.starts_with('k') && c.fingerprint_key_id.len() == 13);
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(!c.once);
}

#[test]
fn docker_host_falls_back_to_docker_host_variable() {
    let fx = Fixture::new();
    let c = fx
        .resolve(
            &["--environment", "dev"],
            &[("DOCKER_HOST", "unix:///x.sock")],
        )
        .unwrap();
    assert_eq!(c.docker_host, "unix:///x.sock");
    let c = fx
        .resolve(
            &["--environment", "dev"],
            &[
                ("DOCKER_HOST", "unix:///x.sock"),
                (var(&s::DOCKER_HOST), "unix:///y.sock"),
            ],
        )
        .unwrap();
    assert_eq!(c.docker_host, "unix:///y.sock");
}

#[test]
fn missing_environment_names_flag_variable_and_key() {
    let fx = Fixture::new();
    let msg = fx.resolve(&[], &[]).unwrap_err().to_string();
    assert!(
        msg.contains("--environment") && msg.contains(var(&s::ENVIRONMENT)),
        "{msg}"
    );
}

#[test]
fn invalid_environment_names_its_source() {
    let fx = Fixture::new();
    let msg = fx
        .resolve(&[], &[(var(&s::ENVIRONMENT), "Prod")])
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with(var(&s::ENVIRONMENT)), "{msg}");
    assert!(msg.contains("invalid environment name"), "{msg}");
}

#[test]
fn labels_are_sorted_and_duplicates_refused() {
    let fx = Fixture::new();
    let c = fx
        .resolve(
            &[
                "--environment",
                "dev",
                "--label",
                "zone=b",
                "--label",
                "region=eu",
            ],
            &[],
        )
        .unwrap();
    assert_eq!(
        c.labels,
        [("region".into(), "eu".into()), ("zone".into(), "b".into())]
    );
    let msg = fx
        .resolve(
            &["--environment", "dev"],
            &[(var(&s::LABELS), "a=1, b=2,a=3")],
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(var(&s::LABELS)) && msg.contains("duplicate label key \"a\""),
        "{msg}"
    );
}

#[test]
fn file_labels_accept_a_table_or_a_list() {
    let fx = Fixture::new();
    let table = fx.write(
        "t.toml",
        "environment = \"dev\"\n[labels]\nregion = \"eu\"\n",
    );
    let c = fx.resolve(&["--config", &table], &[]).unwrap();
    assert_eq!(c.labels, [("region".into(), "eu".into())]);
    let list = fx.write(
        "l.toml",
        "environment = \"dev\"\nlabels = [\"b=2\", \"a=1\"]\n",
    );
    let c = fx.resolve(&["--config", &list], &[]).unwrap();
    assert_eq!(
        c.labels,
        [("a".into(), "1".into()), ("b".into(), "2".into())]
    );
}

#[test]
fn clear_env_comes_whole_from_one_source() {
    let fx = Fixture::new();
    let c = fx
        .resolve(
            &["--environment", "dev", "--clear-env", "LOG_LEVEL"],
            &[(var(&s::CLEAR_ENV), "FEATURE_*,OTHER")],
        )
        .unwrap();
    assert_eq!(c.clear_env.patterns(), ["LOG_LEVEL"]);
    let c = fx
        .resolve(
            &["--environment", "dev"],
            &[(var(&s::CLEAR_ENV), "FEATURE_*, OTHER")],
        )
        .unwrap();
    assert_eq!(c.clear_env.patterns(), ["FEATURE_*", "OTHER"]);
}

#[test]
fn clear_env_flag_takes_a_comma_separated_list_like_the_variable() {
    let fx = Fixture::new();
    let c = fx
        .resolve(
            &[
                "--environment",
                "dev",
                "--clear-env",
                "LOG_LEVEL,FEATURE_*",
                "--clear-env",
                "X",
            ],
            &[],
        )
        .unwrap();
    assert_eq!(c.clear_env.patterns(), ["LOG_LEVEL", "FEATURE_*", "X"]);
}

#[test]
fn unknown_file_key_names_path_key_and_line() {
    let fx = Fixture::new();
    let file = fx.write("bad.toml", "environment = \"dev\"\n\nheartbeat = \"5s\"\n");
    let err = fx.resolve(&["--config", &file], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            ConfigError::Setting(SettingError::FileParse { line: 3, .. })
        ),
        "{msg}"
    );
    assert!(msg.contains(&file) && msg.contains("heartbeat"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn corrupt_file_is_a_clear_error() {
    let fx = Fixture::new();
    let file = fx.write("corrupt.toml", "environment = \"dev\nx");
    let msg = fx
        .resolve(&["--config", &file], &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(&format!("config file {file}, line ")),
        "{msg}"
    );
}

#[test]
fn bad_file_duration_names_the_line() {
    let fx = Fixture::new();
    let file = fx.write(
        "d.toml",
        "environment = \"dev\"\nresync_interval = \"soon\"\n",
    );
    let err = fx.resolve(&["--config", &file], &[]).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Setting(SettingError::Invalid {
                origin: Origin::File {
                    line: 2,
                    key: "resync_interval",
                    ..
                },
                ..
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("invalid duration \"soon\""),
        "{err}"
    );
}

#[test]
fn missing_config_file_names_the_path() {
    let fx = Fixture::new();
    let path = fx.path("nope.toml");
    let msg = fx
        .resolve(&["--config", &path, "--environment", "dev"], &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&path), "{msg}");
}

#[test]
fn relative_key_path_in_file_is_relative_to_the_file() {
    let fx = Fixture::new();
    let file = fx.write(
        "rel.toml",
        "environment = \"dev\"\nfingerprint_key_file = \"fleet.key\"\ntls_ca = \"ca.pem\"\n",
    );
    let args = vec![
        "envparity-agent".to_owned(),
        "--config".to_owned(),
        file,
        "--host-root".to_owned(),
        fx.path("root"),
    ];
    let c = Config::resolve(parse_args(args).unwrap(), &BTreeMap::<&str, &str>::new()).unwrap();
    assert_eq!(c.environment, "dev");
}

#[test]
fn bad_env_values_name_the_variable() {
    let fx = Fixture::new();
    for (var, value) in [
        (var(&s::HEARTBEAT_INTERVAL), "fast"),
        (var(&s::RESYNC_INTERVAL), "0s"),
        (var(&s::ONCE), "maybe"),
        (var(&s::LOG_FORMAT), "xml"),
        (var(&s::LABELS), "novalue"),
        (var(&s::AGGREGATOR), "grpc://agg:443"),
        (var(&s::DOCKER_HOST), "ssh://host"),
    ] {
        let msg = fx
            .resolve(&["--environment", "dev"], &[(var, value)])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with(var), "{var}: {msg}");
    }
}

#[test]
fn log_format_comes_from_the_file_under_env() {
    let fx = Fixture::new();
    let file = fx.write("log.toml", "environment = \"dev\"\nlog_format = \"json\"\n");
    let c = fx.resolve(&["--config", &file], &[]).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    let c = fx
        .resolve(&["--config", &file], &[(var(&s::LOG_FORMAT), "text")])
        .unwrap();
    assert_eq!(c.log_format, LogFormat::Text);
    let bad = fx.write(
        "bad-log.toml",
        "environment = \"dev\"\nlog_format = \"xml\"\n",
    );
    let msg = fx
        .resolve(&["--config", &bad], &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 2") && msg.contains("invalid log format"),
        "{msg}"
    );
}

#[test]
fn env_can_switch_on_once_and_json_logs() {
    let fx = Fixture::new();
    let c = fx
        .resolve(
            &["--environment", "dev"],
            &[(var(&s::ONCE), "true"), (var(&s::LOG_FORMAT), "json")],
        )
        .unwrap();
    assert!(c.once);
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn key_file_readable_by_others_refuses_to_start() {
    let fx = Fixture::new();
    let key = fx.path("fleet.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let msg = fx
        .resolve(&["--environment", "dev"], &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&key) && msg.contains("0644"), "{msg}");
}

#[test]
fn missing_key_file_setting_is_an_error() {
    let msg = Config::resolve(
        parse_args(["envparity-agent", "--environment", "dev"]).unwrap(),
        &BTreeMap::<&str, &str>::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("--fingerprint-key-file"), "{msg}");
}

#[test]
fn explicit_key_id_wins_over_the_derived_one() {
    let fx = Fixture::new();
    let c = fx
        .resolve(
            &["--environment", "dev", "--fingerprint-key-id", "fleet-2024"],
            &[],
        )
        .unwrap();
    assert_eq!(c.fingerprint_key_id, "fleet-2024");
}

#[test]
fn host_id_defaults_to_machine_id_then_hostname() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(
        default_host_id(root.path(), Some("box".into())).unwrap(),
        "box"
    );
    let err = default_host_id(root.path(), None).unwrap_err().to_string();
    assert!(err.contains("etc/machine-id"), "{err}");
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/machine-id"), " m-1 \n").unwrap();
    assert_eq!(
        default_host_id(root.path(), Some("box".into())).unwrap(),
        "m-1"
    );
}

#[test]
fn every_flag_has_help_naming_its_variable() {
    let help = command().render_long_help().to_string();
    for setting in s::TABLE.settings() {
        let var = setting.var().expect("every agent setting has a variable");
        assert!(
            help.contains(var),
            "{}: {var} missing from --help",
            setting.key()
        );
    }
    for arg in command().get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        assert!(arg.get_help().is_some(), "{id} has no help");
        assert!(
            s::TABLE
                .settings()
                .iter()
                .any(|s| s.key() == id && s.var().is_some()),
            "{id} has no variable"
        );
    }
}

#[test]
fn the_summary_has_a_row_per_setting_and_never_the_key() {
    let fx = Fixture::new();
    let file = fx.write("s.toml", "environment = \"dev\"\nfull_snapshots = true\n");
    let env: BTreeMap<&str, &str> = [(var(&s::HEARTBEAT_INTERVAL), "20s")].into();
    let checked = Config::check(
        parse_args(fx.args(&["--config", &file, "--label", "a=1"])).unwrap(),
        &env,
    )
    .unwrap();
    for setting in s::TABLE.settings() {
        assert!(
            checked.report.row(setting.key()).is_some(),
            "{} missing from:\n{checked}",
            setting.key()
        );
    }
    let origin = |key: &str| checked.report.row(key).unwrap().origin.clone();
    assert_eq!(origin("labels").as_deref(), Some("--label"));
    assert_eq!(
        origin("heartbeat_interval").as_deref(),
        Some("ENVPARITY_HEARTBEAT_INTERVAL")
    );
    assert_eq!(
        origin("full_snapshots").as_deref(),
        Some("config file, line 2")
    );
    assert_eq!(origin("resync_interval").as_deref(), Some("default"));
    assert_eq!(
        origin("fingerprint_key_id").as_deref(),
        Some("derived from the key")
    );
    let text = checked.to_string();
    assert!(
        !text.contains("0123456789abcdef0123"),
        "the key was printed:\n{text}"
    );
}

#[test]
fn a_variable_set_to_false_turns_off_what_the_file_turns_on() {
    // Flags > environment > file holds for switches too: the first source
    // that says true or false decides (a flag can only say true).
    let fx = Fixture::new();
    let file = fx.write("f.toml", "environment = \"dev\"\nfull_snapshots = true\n");
    let c = fx.resolve(&["--config", &file], &[]).unwrap();
    assert!(c.full_snapshots);
    let off = [(var(&s::FULL_SNAPSHOTS), "false")];
    let c = fx.resolve(&["--config", &file], &off).unwrap();
    assert!(!c.full_snapshots, "the variable wins over the file");
    let c = fx
        .resolve(&["--config", &file, "--full-snapshots"], &off)
        .unwrap();
    assert!(c.full_snapshots, "the flag wins over the variable");
}

proptest::proptest! {
    /// For any of the agent's duration settings, whichever of flag,
    /// variable and file set it, the first in that order wins, and a bad
    /// value names the source it came from.
    #[test]
    fn intervals_come_from_the_first_source_that_sets_them(
        flag in proptest::option::of(1u64..10_000),
        env in proptest::option::of(1u64..10_000),
        file in proptest::option::of(1u64..10_000),
        bad in proptest::option::of(1usize..3),
    ) {
        let fx = Fixture::new();
        let setting = &s::RESYNC_INTERVAL;
        let mut text = "environment = \"dev\"\n".to_owned();
        if let Some(n) = file {
            text.push_str(&format!("resync_interval = \"{n}s\"\n"));
        }
        if bad == Some(2) {
            text.push_str("resync_interval = \"0s\"\n");
        }
        let path = fx.write("p.toml", &text);
        let mut args = vec!["--config".to_owned(), path.clone()];
        if let Some(n) = flag {
            args.extend(["--resync-interval".to_owned(), format!("{n}s")]);
        }
        let env_value = match (bad, env) {
            (Some(1), _) => Some("never".to_owned()),
            (_, Some(n)) => Some(format!("{n}s")),
            _ => None,
        };
        let mut vars = Vec::new();
        if let Some(v) = &env_value {
            vars.push((var(setting), v.as_str()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = fx.resolve(&args, &vars);
        match bad {
            Some(1) if flag.is_none() => {
                let msg = result.unwrap_err().to_string();
                proptest::prop_assert!(msg.starts_with("ENVPARITY_RESYNC_INTERVAL: "), "{}", msg);
            }
            Some(2) => {
                // A duplicate key in the file is TOML's error, with its line;
                // a bad file value is refused whatever overrides it.
                let msg = result.unwrap_err().to_string();
                proptest::prop_assert!(msg.starts_with(&format!("config file {path}, line ")), "{}", msg);
            }
            _ => {
                // A bad variable under a flag is never read.
                let env = if bad.is_some() { None } else { env };
                let want = flag
                    .or(env)
                    .or(file)
                    .map_or(DEFAULT_RESYNC_INTERVAL, Duration::from_secs);
                proptest::prop_assert_eq!(result.unwrap().resync_interval, want);
            }
        }
    }
}

#[test]
fn docs_list_every_setting_as_declared() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    s::TABLE.check_doc(&doc, "agent").unwrap();
}
