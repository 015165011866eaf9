//! The configuration file comparisons (`config_files.rs`) and their part of
//! replica drift.

use std::collections::BTreeMap;

use envparity_proto::fixtures;
use envparity_proto::v1::{ConfigFile, ConfigFileState, ConfigKey, ContainerConfigFiles};
use proptest::prelude::*;

use super::tests::Fleet;
use super::*;

const APP: &str = "/etc/app/app.yaml";

fn keyed(path: &str, keys: &[(&str, &str)]) -> ConfigFile {
    ConfigFile {
        path: path.to_owned(),
        format: "yaml".to_owned(),
        state: ConfigFileState::Read as i32,
        reason: String::new(),
        keys: keys
            .iter()
            .map(|(k, fp)| ConfigKey {
                path: (*k).to_owned(),
                fingerprint: (*fp).to_owned(),
                value: None,
            })
            .collect(),
        fingerprint: format!("whole-{path}"),
        secret: false,
    }
}

fn whole(path: &str, fingerprint: &str) -> ConfigFile {
    ConfigFile {
        path: path.to_owned(),
        format: "unknown".to_owned(),
        state: ConfigFileState::Read as i32,
        fingerprint: fingerprint.to_owned(),
        ..ConfigFile::default()
    }
}

/// A host of `env` running one `web` replica (container id `id`) with these
/// files; `None`: an agent that does not read files.
fn host(env: &str, id: &str, files: Option<Vec<ConfigFile>>) -> HostSnapshot {
    let c = fixtures::container("web")
        .id(id)
        .image("reg/web:1")
        .image_id("sha256:1")
        .build();
    let mut s = fixtures::snapshot("h", env)
        .fingerprint_key("k1")
        .containers(vec![c])
        .build();
    if let Some(files) = files {
        s.config_files = vec![ContainerConfigFiles {
            container_id: id.to_owned(),
            files,
        }];
    }
    s
}

fn pair(a: Option<Vec<ConfigFile>>, b: Option<Vec<ConfigFile>>) -> Fleet {
    Fleet::new()
        .host("s1", host("staging", "c1", a))
        .host("p1", host("production", "c2", b))
}

fn config_kinds(f: &[Finding]) -> Vec<(Kind, String)> {
    f.iter()
        .filter(|x| x.kind.as_str().starts_with("config_") || x.kind == Kind::ReplicaDrift)
        .map(|x| (x.kind, x.key.clone()))
        .collect()
}

#[test]
fn one_key_differing_is_exactly_one_config_value_naming_file_and_key_path() {
    let fleet = pair(
        Some(vec![keyed(
            APP,
            &[("server.port", "fp1"), ("feature.x", "on")],
        )]),
        Some(vec![keyed(
            APP,
            &[("server.port", "fp1"), ("feature.x", "off")],
        )]),
    );
    let found = fleet.findings("staging", "production");
    assert_eq!(
        config_kinds(&found),
        [(Kind::ConfigValue, format!("{APP}:feature.x"))]
    );
    let f = &found[0];
    assert!(
        f.summary.contains("feature.x") && f.summary.contains(APP),
        "{}",
        f.summary
    );
    assert_eq!(f.basis, Basis::Fingerprint);
    assert_eq!(f.a.values, ["fp:on"]);
}

#[test]
fn identical_files_have_parity() {
    let files = vec![keyed(APP, &[("a", "1"), ("b", "2")]), whole("/etc/x", "w")];
    let fleet = pair(Some(files.clone()), Some(files));
    assert!(config_kinds(&fleet.findings("staging", "production")).is_empty());
}

#[test]
fn a_side_whose_agent_read_no_files_is_unknown_not_missing() {
    let fleet = pair(Some(vec![keyed(APP, &[("a", "1")])]), None);
    assert!(config_kinds(&fleet.findings("staging", "production")).is_empty());
    // Read and empty is known: the file is missing there.
    let fleet = pair(Some(vec![keyed(APP, &[("a", "1")])]), Some(Vec::new()));
    assert_eq!(
        config_kinds(&fleet.findings("staging", "production")),
        [(Kind::ConfigFileMissing, APP.to_owned())]
    );
}

#[test]
fn files_and_keys_on_one_side_only_are_missing_or_extra() {
    let fleet = pair(
        Some(vec![
            keyed(APP, &[("a", "1"), ("gone", "2")]),
            whole("/etc/only-a", "w"),
        ]),
        Some(vec![
            keyed(APP, &[("a", "1"), ("new", "3")]),
            whole("/etc/only-b", "w"),
        ]),
    );
    assert_eq!(
        config_kinds(&fleet.findings("staging", "production")),
        [
            (Kind::ConfigFileMissing, "/etc/only-a".to_owned()),
            (Kind::ConfigFileExtra, "/etc/only-b".to_owned()),
            (Kind::ConfigKeyMissing, format!("{APP}:gone")),
            (Kind::ConfigKeyExtra, format!("{APP}:new")),
        ]
    );
}

#[test]
fn a_key_expected_to_differ_is_not_compared_but_must_still_be_there() {
    let mut policy = Fleet::new().policy;
    policy
        .config
        .expected_to_differ
        .insert("/etc/app/*.yaml:database.url".to_owned());
    let fleet = pair(
        Some(vec![keyed(
            APP,
            &[("database.url", "d1"), ("database.pool", "5")],
        )]),
        Some(vec![keyed(APP, &[("database.url", "d2")])]),
    )
    .policy(policy.clone());
    assert_eq!(
        config_kinds(&fleet.findings("staging", "production")),
        [(Kind::ConfigKeyMissing, format!("{APP}:database.pool"))]
    );
    // Missing, it is still flagged.
    let fleet = pair(
        Some(vec![keyed(APP, &[("database.url", "d1")])]),
        Some(vec![keyed(APP, &[])]),
    )
    .policy(policy);
    assert_eq!(
        config_kinds(&fleet.findings("staging", "production")),
        [(Kind::ConfigKeyMissing, format!("{APP}:database.url"))]
    );
}

#[test]
fn ignored_keys_and_files_are_not_compared_per_service_too() {
    let mut policy = Fleet::new().policy;
    policy.config.ignored.insert(format!("{APP}:build.*"));
    policy
        .services
        .entry("web".to_owned())
        .or_default()
        .ignored_config
        .insert("/etc/extra*:*".to_owned());
    let fleet = pair(
        Some(vec![
            keyed(APP, &[("build.id", "1")]),
            whole("/etc/extra.conf", "w"),
        ]),
        Some(vec![keyed(APP, &[("build.id", "2")])]),
    )
    .policy(policy);
    assert!(config_kinds(&fleet.findings("staging", "production")).is_empty());
}

#[test]
fn a_file_in_no_known_format_is_compared_whole() {
    let fleet = pair(
        Some(vec![whole("/etc/app/nginx.conf", "w1")]),
        Some(vec![whole("/etc/app/nginx.conf", "w2")]),
    );
    assert_eq!(
        config_kinds(&fleet.findings("staging", "production")),
        [(Kind::ConfigValue, "/etc/app/nginx.conf:$file".to_owned())]
    );
}

/// Files fingerprinted under another fleet key on one side cannot be
/// compared by value: one `key_mismatch` names the keys (with the env keys
/// that could not be compared either: one finding per service and pair),
/// never a `config_value` per key; presence is still compared.
#[test]
fn files_under_another_fleet_key_are_one_key_mismatch_with_the_env() {
    let env = |fingerprint: &str| {
        fixtures::container("web")
            .env("LEVEL", fingerprint)
            .build()
            .explicit_env
    };
    let rekeyed = |files: Vec<ConfigFile>| {
        let mut s = host("production", "c2", Some(files));
        s.fingerprint_key_id = "k2".to_owned();
        for f in &mut s.config_files[0].files {
            f.fingerprint = format!("k2-{}", f.fingerprint);
            for k in &mut f.keys {
                k.fingerprint = format!("k2-{}", k.fingerprint);
            }
        }
        s.containers[0].explicit_env = env("k2-fp");
        s
    };
    let mut staging = host(
        "staging",
        "c1",
        Some(vec![
            keyed(APP, &[("a", "1"), ("b", "2")]),
            whole("/etc/x", "w"),
        ]),
    );
    staging.containers[0].explicit_env = env("fp");
    let production = rekeyed(vec![keyed(APP, &[("a", "1")]), whole("/etc/x", "w")]);
    let fleet = Fleet::new()
        .host("s1", staging.clone())
        .host("p1", production.clone());
    let found = fleet.findings("staging", "production");
    let mismatches: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == Kind::KeyMismatch)
        .collect();
    assert_eq!(mismatches.len(), 1, "{found:#?}");
    assert!(
        mismatches[0].summary.ends_with(&format!(
            "3 keys could not be compared: LEVEL, {APP}:a, /etc/x:$file"
        )),
        "{}",
        mismatches[0].summary
    );
    assert_eq!(
        config_kinds(&found),
        [(Kind::ConfigKeyMissing, format!("{APP}:b"))],
        "presence is compared, values are not"
    );

    // Positive control: under one fleet key, the same fingerprints are
    // compared, and differ.
    let mut one_key = production;
    one_key.fingerprint_key_id = "k1".to_owned();
    let found = Fleet::new()
        .host("s1", staging)
        .host("p1", one_key)
        .findings("staging", "production");
    assert!(
        !found.iter().any(|f| f.kind == Kind::KeyMismatch),
        "{found:#?}"
    );
    assert_eq!(
        config_kinds(&found),
        [
            (Kind::ConfigKeyMissing, format!("{APP}:b")),
            (Kind::ConfigValue, format!("{APP}:a")),
            (Kind::ConfigValue, "/etc/x:$file".to_owned()),
        ]
    );
}

#[test]
fn replicas_with_different_config_values_drift_under_a_config_key() {
    let mut second = host("production", "c3", Some(vec![keyed(APP, &[("a", "2")])]));
    second.host_id = "p2".to_owned();
    let fleet = Fleet::new()
        .host(
            "p1",
            host("production", "c2", Some(vec![keyed(APP, &[("a", "1")])])),
        )
        .host("p2", second);
    let scope = Scope::all(&fleet.policy, &["production".to_owned()]);
    let drift: Vec<_> = evaluate(&fleet.views(), &fleet.policy, &scope)
        .into_iter()
        .filter(|f| f.kind == Kind::ReplicaDrift)
        .collect();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].key, format!("config:{APP}:a"));
}

proptest! {
    /// Against an oracle written as set arithmetic: one finding per key on
    /// one side only, one config_value per key on both sides with another
    /// fingerprint, nothing else.
    #[test]
    fn key_findings_match_the_set_oracle(
        a in prop::collection::btree_map("[a-d]\\\\.[a-c]", "[0-2]", 0..8),
        b in prop::collection::btree_map("[a-d]\\\\.[a-c]", "[0-2]", 0..8),
    ) {
        let file = |m: &BTreeMap<String, String>| {
            let keys: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            vec![keyed(APP, &keys)]
        };
        let fleet = pair(Some(file(&a)), Some(file(&b)));
        let mut got = config_kinds(&fleet.findings("staging", "production"));
        got.sort();
        let mut want = Vec::new();
        for (k, v) in &a {
            match b.get(k) {
                None => want.push((Kind::ConfigKeyMissing, format!("{APP}:{k}"))),
                Some(w) if w != v => want.push((Kind::ConfigValue, format!("{APP}:{k}"))),
                Some(_) => {}
            }
        }
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            want.push((Kind::ConfigKeyExtra, format!("{APP}:{k}")));
        }
        want.sort();
        prop_assert_eq!(got, want);
    }
}
