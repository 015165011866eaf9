//! Validation of what agents send: a report is accepted whole or rejected
//! whole, with a message that names the offending part.

use envparity_proto::digest;
use envparity_proto::names::validate_environment;
use envparity_proto::v1::{HeartbeatRequest, HostSnapshot};

/// Limits on one snapshot (one definition, shared with the agent).
pub use envparity_proto::limits;

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report from host {host:?}: {reason}")]
pub struct InvalidReport {
    /// The host id as sent (escaped and truncated for display).
    pub host: String,
    /// What is wrong, naming the part.
    pub reason: String,
}

fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

fn check_id(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.len() > limits::MAX_ID_LEN {
        return Err(format!(
            "{what} is {} bytes long, over the limit of {}",
            value.len(),
            limits::MAX_ID_LEN
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{what} {:?} contains control characters",
            shown(value)
        ));
    }
    Ok(())
}

/// `{before} "{name}" {after}` (the name shortened), written only when an
/// error names it: validation runs on every report, and formatting each
/// label's and variable's name up front cost a tenth of a report's CPU.
struct Named<'a> {
    before: &'static str,
    name: &'a str,
    after: &'static str,
}

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}{}", self.before, shown(self.name), self.after)
    }
}

fn check_len(what: &dyn std::fmt::Display, value: &str) -> Result<(), String> {
    if value.len() > limits::MAX_TEXT_LEN {
        return Err(format!(
            "{what} {:?}… is {} bytes long, over the limit of {}",
            shown(value),
            value.len(),
            limits::MAX_TEXT_LEN
        ));
    }
    Ok(())
}

/// An image reference, id or digest: bounded, and free of characters that
/// could act on a terminal (these are identifiers, logged and shown as is).
fn check_image_name(what: &str, value: &str) -> Result<(), String> {
    check_len(&what, value)?;
    if value.chars().any(envparity_proto::names::is_hostile) {
        return Err(format!(
            "{what} {:?} contains control, bidi or zero-width characters",
            shown(value)
        ));
    }
    Ok(())
}

fn check_labels(labels: &[envparity_proto::v1::Label]) -> Result<(), String> {
    labels.iter().try_for_each(|l| {
        check_len(&"label key", &l.key)?;
        let what = Named {
            before: "label",
            name: &l.key,
            after: "",
        };
        check_len(&what, &l.value)
    })
}

/// Checks a snapshot before anything of it is stored.
pub fn snapshot(s: &HostSnapshot) -> Result<(), InvalidReport> {
    let fail = |reason: String| InvalidReport {
        host: shown(&s.host_id),
        reason,
    };
    check_id("host_id", &s.host_id).map_err(&fail)?;
    validate_environment(&s.environment).map_err(|e| fail(e.to_string()))?;
    let agent = s
        .agent
        .as_ref()
        .ok_or_else(|| fail("agent is missing".into()))?;
    if agent.boot_id.is_empty() {
        return Err(fail("agent.boot_id is empty".into()));
    }
    if s.sequence == 0 {
        return Err(fail("sequence is 0; sequences start at 1".into()));
    }
    if envparity_proto::hash::HashForm::of(&s.content_hash).is_none() {
        return Err(fail(format!(
            "content_hash {:?} is neither a hex SHA-256 nor one made by container (\"v2:\" and a hex SHA-256)",
            shown(&s.content_hash)
        )));
    }
    if s.labels.len() > limits::MAX_LABELS {
        return Err(fail(format!(
            "{} host labels, over the limit of {}",
            s.labels.len(),
            limits::MAX_LABELS
        )));
    }
    check_labels(&s.labels).map_err(|r| fail(format!("host {r}")))?;
    if s.containers.len() > limits::MAX_CONTAINERS {
        return Err(fail(format!(
            "{} containers, over the limit of {}",
            s.containers.len(),
            limits::MAX_CONTAINERS
        )));
    }
    let mut ids = std::collections::HashSet::with_capacity(s.containers.len());
    for (i, c) in s.containers.iter().enumerate() {
        let at = |reason: String| fail(format!("container {i} ({:?}): {reason}", shown(&c.name)));
        check_id("id", &c.id).map_err(&at)?;
        if !ids.insert(c.id.as_str()) {
            return Err(at(format!(
                "id {:?} is listed twice; a snapshot lists each container once",
                shown(&c.id)
            )));
        }
        check_id("name", &c.name).map_err(&at)?;
        let service = c
            .service
            .as_ref()
            .ok_or_else(|| at("service is missing".into()))?;
        check_id("service name", &service.name).map_err(&at)?;
        let image = c
            .image
            .as_ref()
            .ok_or_else(|| at("image is missing".into()))?;
        if image.image_id.is_empty() {
            return Err(at("image.image_id is empty".into()));
        }
        check_image_name("image reference", &image.reference).map_err(&at)?;
        check_image_name("image id", &image.image_id).map_err(&at)?;
        // An id that says sha256 is one; other algorithms are opaque.
        if image.image_id.starts_with(digest::SHA256_PREFIX) {
            digest::parse_digest(&image.image_id).map_err(|e| at(format!("image id: {e}")))?;
        }
        image
            .repo_digests
            .iter()
            .try_for_each(|d| {
                check_image_name("repo digest", d)?;
                digest::split_repo_digest(d)
                    .map(drop)
                    .map_err(|e| format!("repo digest: {e}; expected REPOSITORY@sha256:…"))
            })
            .map_err(&at)?;
        // The injected bucket is never compared, but it is stored and
        // shown: bounded and checked like the others.
        let env = c.explicit_env.len() + c.image_env.len() + c.injected_env.len();
        if env > limits::MAX_ENV_ENTRIES {
            return Err(at(format!(
                "{env} env entries, over the limit of {}",
                limits::MAX_ENV_ENTRIES
            )));
        }
        if c.labels.len() > limits::MAX_LABELS {
            return Err(at(format!(
                "{} labels, over the limit of {}",
                c.labels.len(),
                limits::MAX_LABELS
            )));
        }
        check_labels(&c.labels).map_err(&at)?;
        for var in c
            .explicit_env
            .iter()
            .chain(&c.image_env)
            .chain(&c.injected_env)
        {
            if var.name.is_empty() {
                return Err(at("an env entry has an empty name".into()));
            }
            check_len(&"env name", &var.name).map_err(&at)?;
            let named = |after| Named {
                before: "env",
                name: &var.name,
                after,
            };
            check_len(&named(" fingerprint"), &var.fingerprint).map_err(&at)?;
            if let Some(value) = &var.value {
                check_len(&named(" value"), value).map_err(&at)?;
            }
            if var.fingerprint.is_empty() {
                return Err(at(format!("env {:?} has no fingerprint", shown(&var.name))));
            }
        }
        check_cut(&c.cut).map_err(&at)?;
    }
    check_config_files(s).map_err(fail)?;
    Ok(())
}

/// The containers' configuration files: each entry names a reported
/// container once, and every count and string is bounded. Paths, key paths
/// and values are only bounded, not refused for odd characters: a hostile
/// key in one file must not make its host unreportable, and every output
/// makes them inert.
fn check_config_files(s: &HostSnapshot) -> Result<(), String> {
    let ids: std::collections::BTreeSet<&str> =
        s.containers.iter().map(|c| c.id.as_str()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for entry in &s.config_files {
        let id = entry.container_id.as_str();
        if !ids.contains(id) || !seen.insert(id) {
            return Err(format!(
                "config_files names container {:?}, which is not reported or named twice",
                shown(id)
            ));
        }
        let at = |reason: String| format!("config files of container {:?}: {reason}", shown(id));
        if entry.files.len() > limits::MAX_CONFIG_FILES {
            return Err(at(format!(
                "{} files, over the limit of {}",
                entry.files.len(),
                limits::MAX_CONFIG_FILES
            )));
        }
        for f in &entry.files {
            check_len(&"config file path", &f.path).map_err(&at)?;
            check_len(&"config file format", &f.format).map_err(&at)?;
            check_len(&"config file reason", &f.reason).map_err(&at)?;
            check_len(&"config file fingerprint", &f.fingerprint).map_err(&at)?;
            if f.keys.len() > limits::MAX_CONFIG_KEYS {
                return Err(at(format!(
                    "{:?} has {} keys, over the limit of {}",
                    shown(&f.path),
                    f.keys.len(),
                    limits::MAX_CONFIG_KEYS
                )));
            }
            for k in &f.keys {
                check_len(&"config key path", &k.path).map_err(&at)?;
                check_len(&"config key fingerprint", &k.fingerprint).map_err(&at)?;
                if let Some(v) = &k.value {
                    check_len(&"config key value", v).map_err(&at)?;
                }
                if k.fingerprint.is_empty() {
                    return Err(at(format!(
                        "a key of {:?} has no fingerprint",
                        shown(&f.path)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A container's `cut` list: the agent's reasons, shown in findings and
/// logs, so bounded and inert.
fn check_cut(cut: &[String]) -> Result<(), String> {
    if cut.len() > limits::MAX_CUTS {
        return Err(format!(
            "{} cut reasons, over the limit of {}",
            cut.len(),
            limits::MAX_CUTS
        ));
    }
    for reason in cut {
        if reason.len() > limits::MAX_CUT_LEN {
            return Err(format!(
                "cut reason {:?}… is {} bytes long, over the limit of {}",
                shown(reason),
                reason.len(),
                limits::MAX_CUT_LEN
            ));
        }
        if reason.is_empty() || reason.chars().any(envparity_proto::names::is_hostile) {
            return Err(format!(
                "cut reason {:?} is empty or contains control, bidi or zero-width characters",
                shown(reason)
            ));
        }
    }
    Ok(())
}

/// Checks a heartbeat.
pub fn heartbeat(h: &HeartbeatRequest) -> Result<(), InvalidReport> {
    let fail = |reason: String| InvalidReport {
        host: shown(&h.host_id),
        reason,
    };
    check_id("host_id", &h.host_id).map_err(&fail)?;
    validate_environment(&h.environment).map_err(|e| fail(e.to_string()))?;
    if h.boot_id.is_empty() {
        return Err(fail("boot_id is empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::v1::{AgentInfo, Container, EnvVar, ImageInfo, Label, ServiceIdentity};

    fn label(key: &str, value: &str) -> Label {
        Label {
            key: key.into(),
            value: value.into(),
        }
    }

    fn good() -> HostSnapshot {
        HostSnapshot {
            host_id: "h1".into(),
            environment: "staging".into(),
            agent: Some(AgentInfo {
                version: "0.1.0".into(),
                boot_id: "b".into(),
            }),
            sequence: 1,
            content_hash: "a".repeat(64),
            containers: vec![Container {
                id: "c1".into(),
                name: "shop".into(),
                service: Some(ServiceIdentity {
                    name: "shop".into(),
                    source: 1,
                }),
                image: Some(ImageInfo {
                    image_id:
                        "sha256:1111111111111111111111111111111111111111111111111111111111111111"
                            .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_snapshot_passes() {
        assert_eq!(snapshot(&good()), Ok(()));
    }

    #[test]
    fn each_defect_is_named() {
        type Mutation = Box<dyn Fn(&mut HostSnapshot)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|s| s.host_id.clear()), "host_id is empty"),
            (
                Box::new(|s| s.host_id = "a\u{1b}[2J".into()),
                "control characters",
            ),
            (
                Box::new(|s| s.environment = "Prod!".into()),
                "invalid environment name",
            ),
            (Box::new(|s| s.agent = None), "agent is missing"),
            (Box::new(|s| s.sequence = 0), "sequence is 0"),
            (Box::new(|s| s.content_hash = "x".into()), "content_hash"),
            (
                Box::new(|s| {
                    let again = s.containers[0].clone();
                    s.containers.push(again);
                }),
                "is listed twice; a snapshot lists each container once",
            ),
            (
                Box::new(|s| {
                    // A digest followed by a window title, a clear screen
                    // and an OSC 52 clipboard write.
                    s.containers[0].image.as_mut().unwrap().repo_digests = vec![format!(
                        "reg/shop@sha256:{}\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}",
                        "a".repeat(64)
                    )];
                }),
                "repo digest",
            ),
            (
                Box::new(|s| {
                    s.containers[0].image.as_mut().unwrap().reference = "shop:1\u{202e}".into();
                }),
                "image reference \"shop:1\\u{202e}\" contains control, bidi or zero-width",
            ),
            (
                Box::new(|s| {
                    s.containers[0].image.as_mut().unwrap().image_id = "sha256:1111111111111111111111111111111111111111111111111111111111111111\u{9b}2J".into();
                }),
                "image id",
            ),
            (
                Box::new(|s| s.containers[0].service = None),
                "container 0 (\"shop\"): service is missing",
            ),
            (
                Box::new(|s| s.containers[0].image = None),
                "image is missing",
            ),
            (
                Box::new(|s| s.containers[0].name = "n".repeat(300)),
                "over the limit of 253",
            ),
            (
                Box::new(|s| {
                    let c = s.containers[0].clone();
                    s.containers = vec![c; limits::MAX_CONTAINERS + 1];
                }),
                "containers, over the limit",
            ),
            (
                Box::new(|s| {
                    s.containers[0].explicit_env = vec![
                        EnvVar {
                            name: "A".into(),
                            fingerprint: "f".into(),
                            value: None,
                        };
                        limits::MAX_ENV_ENTRIES + 1
                    ];
                }),
                "4097 env entries, over the limit of 4096",
            ),
            (
                Box::new(|s| {
                    let var = EnvVar {
                        name: "A".into(),
                        fingerprint: "f".into(),
                        value: None,
                    };
                    s.containers[0].explicit_env = vec![var.clone(); limits::MAX_ENV_ENTRIES];
                    s.containers[0].injected_env = vec![var];
                }),
                "4097 env entries, over the limit of 4096",
            ),
            (
                Box::new(|s| {
                    s.containers[0].injected_env = vec![EnvVar {
                        name: "HOSTNAME".into(),
                        fingerprint: String::new(),
                        value: None,
                    }];
                }),
                "env \"HOSTNAME\" has no fingerprint",
            ),
            (
                Box::new(|s| {
                    s.containers[0].labels = vec![label("k", "v"); limits::MAX_LABELS + 1]
                }),
                "1025 labels, over the limit of 1024",
            ),
            (
                Box::new(|s| s.labels = vec![label("k", "v"); limits::MAX_LABELS + 1]),
                "1025 host labels, over the limit of 1024",
            ),
            (
                Box::new(|s| s.labels = vec![label("team", &"x".repeat(limits::MAX_TEXT_LEN + 1))]),
                "host label \"team\"",
            ),
            (
                Box::new(|s| {
                    s.containers[0].labels = vec![label(&"k".repeat(limits::MAX_TEXT_LEN + 1), "v")]
                }),
                "label key",
            ),
            (
                Box::new(|s| {
                    s.containers[0].explicit_env = vec![EnvVar {
                        name: "BIG".into(),
                        fingerprint: "f".into(),
                        value: Some("v".repeat(limits::MAX_TEXT_LEN + 1)),
                    }];
                }),
                "env \"BIG\" value",
            ),
            (
                Box::new(|s| {
                    s.containers[0].image.as_mut().unwrap().reference =
                        "r".repeat(limits::MAX_TEXT_LEN + 1);
                }),
                "image reference",
            ),
            (
                Box::new(|s| s.containers[0].cut = vec!["label \u{1b}]0;x\u{7}".into()]),
                "cut reason \"label \\u{1b}]0;x\\u{7}\" is empty or contains control",
            ),
            (
                Box::new(|s| s.containers[0].cut = vec!["x".into(); limits::MAX_CUTS + 1]),
                "9 cut reasons, over the limit of 8",
            ),
            (
                Box::new(|s| s.containers[0].cut = vec!["x".repeat(limits::MAX_CUT_LEN + 1)]),
                "over the limit of 256",
            ),
        ];
        for (mutate, expected) in cases {
            let mut s = good();
            mutate(&mut s);
            let err = snapshot(&s).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    mod agent_limits {
        use super::*;
        use proptest::prelude::*;

        fn text(max: usize) -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9]{1,12}",
                "[\\x00-\\x7f\\u{80}-\\u{9f}\\u{200b}-\\u{200f}\\u{202a}-\\u{202e}a-z]{0,40}",
                (1..max).prop_map(|n| "x".repeat(n)),
            ]
        }

        fn container() -> impl Strategy<Value = Container> {
            (
                text(400),
                text(400),
                prop::collection::vec((text(300), text(70_000)), 0..1_100),
                prop::collection::vec((text(300), text(70_000)), 0..20),
                prop::collection::vec((text(300), text(70_000)), 0..20),
                text(300),
            )
                .prop_map(|(name, service, labels, env, injected, reference)| {
                    Container {
                        id: format!("{name}-id"),
                        name,
                        service: Some(ServiceIdentity {
                            name: service,
                            source: 1,
                        }),
                        image: Some(ImageInfo {
                            image_id: format!("sha256:{}", "a".repeat(64)),
                            reference,
                            repo_digests: vec![format!(
                                "r@sha256:{}\u{1b}]0;x\u{7}",
                                "b".repeat(64)
                            )],
                            ..Default::default()
                        }),
                        labels: labels
                            .into_iter()
                            .map(|(key, value)| Label { key, value })
                            .collect(),
                        explicit_env: env
                            .into_iter()
                            .map(|(name, value)| EnvVar {
                                name,
                                fingerprint: "f".repeat(64),
                                value: Some(value),
                            })
                            .collect(),
                        injected_env: injected
                            .into_iter()
                            .map(|(name, value)| EnvVar {
                                name,
                                fingerprint: "f".repeat(64),
                                value: Some(value),
                            })
                            .collect(),
                        ..Default::default()
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]
            /// Whatever the engine reports, what the agent sends after
            /// applying the shared limits is accepted.
            #[test]
            fn what_the_agent_cuts_down_always_passes_validation(
                containers in prop::collection::vec(container(), 0..4),
            ) {
                let mut s = good();
                s.containers = containers;
                // Ids are unique on an engine.
                for (i, c) in s.containers.iter_mut().enumerate() {
                    c.id = format!("c{i}-{}", c.id);
                }
                envparity_agent::limit::apply(&mut s);
                prop_assert_eq!(snapshot(&s), Ok(()));
                prop_assert!(
                    prost::Message::encoded_len(&s) <= limits::MAX_SNAPSHOT_BYTES,
                    "{} bytes",
                    prost::Message::encoded_len(&s)
                );
            }
        }
    }

    #[test]
    fn config_files_must_name_a_reported_container_and_stay_within_the_limits() {
        use envparity_proto::v1::{ConfigFile, ContainerConfigFiles};
        let mut s = good();
        let id = s.containers[0].id.clone();
        let entry = |id: &str, files: usize| ContainerConfigFiles {
            container_id: id.to_owned(),
            files: vec![ConfigFile::default(); files],
        };
        s.config_files = vec![entry(&id, 2)];
        assert!(snapshot(&s).is_ok());
        s.config_files = vec![entry("nope", 1)];
        assert!(
            snapshot(&s)
                .unwrap_err()
                .to_string()
                .contains("not reported")
        );
        s.config_files = vec![entry(&id, 1), entry(&id, 1)];
        assert!(
            snapshot(&s)
                .unwrap_err()
                .to_string()
                .contains("named twice")
        );
        s.config_files = vec![entry(&id, limits::MAX_CONFIG_FILES + 1)];
        assert!(
            snapshot(&s)
                .unwrap_err()
                .to_string()
                .contains("over the limit")
        );
    }
}
