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
        self.emit(&s)
    }
}
