//! `service` as text: one row per replica, with its explicit env as
//! fingerprints, then its configuration files as keys × environments
//! (`config_files.rs`).

use super::Out;
use super::config_files::shown_fp;
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
                    None => format!("{}={}", e.name, shown_fp(&e.fingerprint)),
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
        let replicas: Vec<_> = service
            .instances
            .iter()
            .map(|i| (i.environment.as_str(), i.config_files.as_deref()))
            .collect();
        if let Some(files) = self.config_grid(&replicas) {
            s.push('\n');
            s.push_str(&files);
        }
        self.emit(&s)
    }
}
