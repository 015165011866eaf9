//! Text as a policy (`Policy::from_toml`), as the aggregator's config file
//! (`FileConfig::load`) and as the agent's (`Config::check` with `--config`).
//!
//! The config parsers take a path, so the input is written to `config.toml`
//! in a directory that also holds owner-only secret files (`slack-url`,
//! `routing-key`, `webhook-secret`) for sinks to name. The agent's fleet key
//! and host root come from flags (which win over the file), so that the
//! agent never reads a file the input names; the aggregator reads the secret
//! files the input names, as `serve` does.
//!
//! Asserted, besides "never panics":
//! - a policy that parses renders (`to_toml`, what `policy show` prints) to
//!   TOML that parses to an equal policy;
//! - an agent configuration that checks renders its `check-config` summary;
//! - an aggregator configuration that loads has sinks with unique, plain
//!   names.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use envparity_agent::config::{Config, parse_args};
use envparity_aggregator::config::FileConfig;
use envparity_aggregator::parity::Policy;
use libfuzzer_sys::fuzz_target;

struct Dir {
    _keep: tempfile::TempDir,
    config: PathBuf,
    key: PathBuf,
    root: PathBuf,
}

fn secret(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write a secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("chmod a secret file");
}

fn dir() -> &'static Dir {
    static DIR: OnceLock<Dir> = OnceLock::new();
    DIR.get_or_init(|| {
        let keep = tempfile::tempdir().expect("a temporary directory");
        let at = |name: &str| keep.path().join(name);
        secret(
            &at("slack-url"),
            "https://hooks.slack.example/services/T/B/x\n",
        );
        secret(&at("routing-key"), "0123456789abcdef0123456789abcdef\n");
        secret(
            &at("webhook-secret"),
            "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
        );
        secret(&at("fleet.key"), "fleet-key-of-at-least-16-bytes\n");
        std::fs::create_dir_all(at("root/etc")).expect("a host root");
        std::fs::write(at("root/etc/machine-id"), "0123456789abcdef\n").expect("a machine id");
        Dir {
            config: at("config.toml"),
            key: at("fleet.key"),
            root: at("root"),
            _keep: keep,
        }
    })
}

const ENVIRONMENTS: &[&str] = &["dev", "staging", "stage", "production", "prod", "qa"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(policy) = Policy::from_toml(&text, "fuzz.toml") {
        let shown = policy.to_toml();
        let back = Policy::from_toml(&shown, "policy show")
            .unwrap_or_else(|e| panic!("`policy show` output does not parse: {e}\n{shown}"));
        assert_eq!(back, policy, "the policy changed through to_toml:\n{shown}");
        let fleet: Vec<String> = policy.ordered(ENVIRONMENTS.iter().copied());
        for a in &fleet {
            let _ = policy.previous_stage(a, &fleet);
            let _ = policy.unpinned_severity(a, &fleet);
            for b in &fleet {
                let _ = policy.level(a, b, &fleet);
            }
        }
    }

    let dir = dir();
    std::fs::write(&dir.config, text.as_bytes()).expect("write the config file");

    if let Ok(config) = FileConfig::load(&dir.config) {
        let names: BTreeSet<&str> = config
            .alerts
            .sinks
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            names.len(),
            config.alerts.sinks.len(),
            "duplicate sink names"
        );
        for name in names {
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
                "sink name {name:?}"
            );
        }
    }

    let cli = parse_args([
        OsStr::new("envparity-agent"),
        OsStr::new("--config"),
        dir.config.as_os_str(),
        OsStr::new("--fingerprint-key-file"),
        dir.key.as_os_str(),
        OsStr::new("--host-root"),
        dir.root.as_os_str(),
    ])
    .expect("the agent's fixed flags parse");
    if let Ok(checked) = Config::check(cli, &BTreeMap::<String, String>::new()) {
        let _ = checked.to_string();
    }
});
