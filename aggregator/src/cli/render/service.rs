//! `service` as text: one row per replica, with its explicit env as
//! fingerprints.

use super::Out;
use super::table::Table;
use super::text::{sanitize, short};
use crate::cli::output::Service;

impl Out {
    /// `envparity service`.
    pub fn service(&self, service: &Service) -> anyhow::Result<()> {
        if self.structured(service)? {
            return Ok(());
        }
        let mut headers = vec![
            "ENVIRONMENT",
            "HOST",
            "CONTAINER",
            "IMAGE",
            "DIGEST",
            "EXPLICIT ENV",
        ];
        if self.wide() {
            headers.extend(["IMAGE ID", "STATE"]);
        }
        let mut table = Table::new(&headers);
        for i in &service.instances {
            let env = i
                .explicit_env
                .iter()
                .map(|e| match &e.value {
                    Some(v) => format!("{}={v}", e.name),
                    None => format!(
                        "{}=fp:{}",
                        e.name,
                        &e.fingerprint[..e.fingerprint.len().min(12)]
                    ),
                })
                .collect::<Vec<_>>()
                .join(" ");
            let digest = i.repo_digests.first().map_or_else(
                || "-".to_owned(),
                |d| {
                    let d = d.rsplit_once('@').map_or(d.as_str(), |(_, d)| d);
                    if self.wide() { d.to_owned() } else { short(d) }
                },
            );
            let mut row = vec![
                i.environment.clone(),
                i.host_id.clone(),
                if i.unmanaged {
                    format!("{} (unmanaged)", i.container_name)
                } else {
                    i.container_name.clone()
                },
                i.image_reference.clone(),
                digest,
                env,
            ];
            if self.wide() {
                row.extend([i.image_id.clone(), i.host_state.to_string()]);
            }
            table.row(row, |_, text, _| text.to_owned());
        }
        let mut s = table.render(self);
        s.push_str(&format!(
            "{}: {} replica(s)\n",
            sanitize(&service.service),
            service.instances.len()
        ));
        if let Some(files) = self.config_grid(service) {
            s.push('\n');
            s.push_str(&files);
        }
        self.emit(&s)
    }

    /// The replicas' configuration files as keys × environments: one row
    /// per file and key path, one column per environment holding the values
    /// its replicas have (`fp:` and 12 hex digits, or the clear value; `-`
    /// when absent; `?` when no replica there was read). A file not read or
    /// not parsed is one row with the reason. `None` when no replica was
    /// read.
    fn config_grid(&self, service: &Service) -> Option<String> {
        use std::collections::{BTreeMap, BTreeSet};
        let mut envs: Vec<&str> = Vec::new();
        for i in &service.instances {
            if !envs.contains(&i.environment.as_str()) {
                envs.push(&i.environment);
            }
        }
        // (file, key) -> environment -> shown values
        let mut grid: BTreeMap<(&str, String), BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
        let mut read: BTreeSet<&str> = BTreeSet::new();
        for i in &service.instances {
            let Some(files) = &i.config_files else {
                continue;
            };
            read.insert(&i.environment);
            for f in files {
                let mut cell = |key: String, value: String| {
                    grid.entry((f.path.as_str(), key))
                        .or_default()
                        .entry(i.environment.as_str())
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
        if read.is_empty() {
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

fn shown_fp(fingerprint: &str) -> String {
    format!("fp:{}", &fingerprint[..fingerprint.len().min(12)])
}
