//! Replicas' configuration files as keys × environments, the one grid that
//! `service` and `explain` print under their own text.

use std::collections::{BTreeMap, BTreeSet};

use super::Out;
use super::table::Table;
use crate::cli::output::ConfigFile;

/// One replica's files for [`Out::config_grid`]: its environment, and its
/// files when its agent read them.
pub(super) type ReplicaFiles<'a> = (&'a str, Option<&'a [ConfigFile]>);

impl Out {
    /// The replicas' configuration files as keys × environments: one row
    /// per file and key path, one column per environment (in the order the
    /// replicas come) holding the values its replicas have (`fp:` and 12 hex
    /// digits, or the clear value the agent allowlisted; `-` when absent;
    /// `?` when no replica there was read). A file not read or not parsed is
    /// one row with the reason. `None` when no replica was read, or none
    /// has a file (a grid of headers alone says nothing).
    pub(super) fn config_grid(&self, replicas: &[ReplicaFiles<'_>]) -> Option<String> {
        let mut envs: Vec<&str> = Vec::new();
        for (env, _) in replicas {
            if !envs.contains(env) {
                envs.push(env);
            }
        }
        // (file, key) -> environment -> shown values
        let mut grid: BTreeMap<(&str, String), BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
        let mut read: BTreeSet<&str> = BTreeSet::new();
        for &(env, files) in replicas {
            let Some(files) = files else {
                continue;
            };
            read.insert(env);
            for f in files {
                let mut cell = |key: String, value: String| {
                    grid.entry((f.path.as_str(), key))
                        .or_default()
                        .entry(env)
                        .or_default()
                        .insert(value);
                };
                if f.state != "read" {
                    cell(format!("({})", f.state.replace('_', " ")), f.reason.clone());
                } else if f.keys.is_empty() {
                    cell("$file".to_owned(), shown_fp(&f.fingerprint));
                }
                for k in &f.keys {
                    let value = match &k.value {
                        Some(v) => v.clone(),
                        None => shown_fp(&k.fingerprint),
                    };
                    cell(k.name.clone(), value);
                }
            }
        }
        if read.is_empty() || grid.is_empty() {
            return None;
        }
        let mut headers = vec!["FILE", "KEY"];
        headers.extend(envs.iter().copied());
        let mut table = Table::new(&headers);
        for ((file, key), by_env) in &grid {
            let mut row = vec![(*file).to_owned(), key.clone()];
            for env in &envs {
                row.push(match by_env.get(env) {
                    Some(values) => values.iter().cloned().collect::<Vec<_>>().join(", "),
                    None if read.contains(env) => "-".to_owned(),
                    None => "?".to_owned(),
                });
            }
            table.row(row, |_, text, _| text.to_owned());
        }
        Some(table.render(self))
    }
}

/// A fingerprint as tables show it: `fp:` and its first 12 characters
/// (characters, not bytes: the answer is the server's, and may hold any
/// text).
pub(super) fn shown_fp(fingerprint: &str) -> String {
    let head: String = fingerprint.chars().take(12).collect();
    format!("fp:{head}")
}

#[cfg(test)]
mod tests {
    use envparity_proto::v1;

    use super::*;
    use crate::cli::Format;
    use crate::cli::output::{Explain, Service};

    /// A replica's `/etc/app/app.yaml` with `features.checkout` as a
    /// fingerprint of `checkout` and `log.level` in clear when given, and a
    /// file that did not parse.
    fn files(checkout: char, level: Option<&str>) -> v1::ContainerConfigFiles {
        let key = |path: &str, fp: char, value: Option<&str>| v1::ConfigKey {
            path: path.into(),
            fingerprint: fp.to_string().repeat(64),
            value: value.map(str::to_owned),
        };
        v1::ContainerConfigFiles {
            container_id: "c".into(),
            files: vec![
                v1::ConfigFile {
                    path: "/etc/app/app.yaml".into(),
                    format: "yaml".into(),
                    state: v1::ConfigFileState::Read as i32,
                    keys: vec![
                        key("features.checkout", checkout, None),
                        key("log.level", 'c', level),
                    ],
                    fingerprint: "f".repeat(64),
                    ..v1::ConfigFile::default()
                },
                v1::ConfigFile {
                    path: "/etc/app/bad.yaml".into(),
                    state: v1::ConfigFileState::NotParsed as i32,
                    reason: "yaml: mapping values are not allowed".into(),
                    ..v1::ConfigFile::default()
                },
            ],
        }
    }

    /// Staging's replica allowlists `log.level`; production's two do not,
    /// and the second one's agent read no files.
    fn replicas() -> Vec<(&'static str, &'static str, Option<v1::ContainerConfigFiles>)> {
        vec![
            ("staging", "s1", Some(files('a', Some("info")))),
            ("production", "p1", Some(files('b', None))),
            ("production", "p2", None),
        ]
    }

    #[test]
    fn explain_prints_the_configuration_grid_that_service_prints() {
        let service = v1::GetServiceResponse {
            service: "shop".into(),
            instances: replicas()
                .into_iter()
                .map(|(environment, host, files)| v1::ServiceInstance {
                    environment: environment.into(),
                    host_id: host.into(),
                    container: Some(v1::Container {
                        name: "shop".into(),
                        ..v1::Container::default()
                    }),
                    config_files: files,
                    ..v1::ServiceInstance::default()
                })
                .collect(),
        };
        let explained = v1::ExplainResponse {
            service: "shop".into(),
            replicas: replicas()
                .into_iter()
                .map(|(environment, host, files)| v1::ReplicaConfigFiles {
                    environment: environment.into(),
                    host_id: host.into(),
                    container_name: "shop".into(),
                    config_files: files,
                })
                .collect(),
            ..v1::ExplainResponse::default()
        };
        let out = Out::buffered(Format::Table, false);
        out.service(&Service::from_proto(&service)).unwrap();
        let listed = out.take();
        out.explain(&Explain::from_proto(&explained)).unwrap();
        let text = out.take();

        let grid = listed.split_once("replica(s)\n\n").unwrap().1;
        assert!(
            text.ends_with(&format!("keys × environments:\n{grid}")),
            "{text}\n---\n{grid}"
        );
        let row = |key: &str| -> Vec<String> {
            let line = grid.lines().find(|l| l.contains(key)).unwrap();
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(row("KEY"), ["FILE", "KEY", "staging", "production"]);
        assert_eq!(
            row("features.checkout"),
            [
                "/etc/app/app.yaml",
                "features.checkout",
                "fp:aaaaaaaaaaaa",
                "fp:bbbbbbbbbbbb"
            ]
        );
        // In clear only where the agent allowlisted it.
        assert_eq!(
            row("log.level"),
            ["/etc/app/app.yaml", "log.level", "info", "fp:cccccccccccc"]
        );
        assert_eq!(
            row("(not parsed)"),
            [
                "/etc/app/bad.yaml",
                "(not parsed)",
                "yaml: mapping values are not allowed",
                "yaml: mapping values are not allowed"
            ]
        );

        let json = Out::buffered(Format::Json, false);
        json.explain(&Explain::from_proto(&explained)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json.take()).unwrap();
        let replicas = v["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 3);
        assert_eq!(replicas[0]["environment"], "staging");
        assert_eq!(replicas[0]["host_id"], "s1");
        let level = |r: &serde_json::Value| r["config_files"][0]["keys"][1].clone();
        assert_eq!(level(&replicas[0])["value"], "info");
        assert_eq!(level(&replicas[1])["fingerprint"], "c".repeat(64));
        assert!(level(&replicas[1]).get("value").is_none(), "{v}");
        assert_eq!(replicas[1]["config_files"][1]["state"], "not_parsed");
        assert!(replicas[2].get("config_files").is_none(), "{v}");
    }

    #[test]
    fn a_fingerprint_of_wide_characters_is_shortened_not_a_panic() {
        // The answer is the server's: a fingerprint may hold any text, and
        // cutting it at byte 12 fell inside a character and panicked.
        assert_eq!(shown_fp(&"é".repeat(20)), format!("fp:{}", "é".repeat(12)));
        assert_eq!(shown_fp("abc"), "fp:abc");
    }

    /// Replicas read but mounting no file, or not read at all: no grid
    /// (headers alone would say nothing).
    #[test]
    fn no_file_anywhere_is_no_grid() {
        let out = Out::buffered(Format::Table, false);
        let none: &[ConfigFile] = &[];
        assert_eq!(
            out.config_grid(&[("staging", Some(none)), ("production", Some(none))]),
            None
        );
        assert_eq!(out.config_grid(&[("staging", None)]), None);
    }
}
