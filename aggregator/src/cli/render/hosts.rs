//! `hosts` and `hosts forget` as text: the hosts table and the refusals
//! under it; the host forgotten.

use super::Out;
use super::paint::Tone;
use super::table::Table;
use super::text::sanitize_lines;
use crate::cli::output::{Forgotten, Host, Hosts, Named};
use envparity_proto::v1;

/// The CONTAINERS cell: the count, how many of them are unmanaged, and
/// how many more the agent left out.
fn containers(h: &Host) -> String {
    let mut cell = h.container_count.to_string();
    if !h.unmanaged.is_empty() {
        cell.push_str(&format!(" ({} unmanaged)", h.unmanaged.len()));
    }
    if h.containers_dropped > 0 {
        cell.push_str(&format!(" (+{} left out)", h.containers_dropped));
    }
    cell
}

impl Out {
    /// `envparity hosts`.
    pub fn hosts(&self, hosts: &Hosts) -> anyhow::Result<()> {
        if self.structured(hosts)? {
            return Ok(());
        }
        let mut headers = vec![
            "HOST",
            "ENVIRONMENT",
            "STATE",
            "LAST SEEN",
            "CONTAINERS",
            "KERNEL",
            "OS",
            "ENGINE",
        ];
        if self.wide() {
            headers.extend(["ARCH", "STORAGE", "CGROUP", "AGENT", "LABELS"]);
        }
        let mut table = Table::new(&headers);
        for h in &hosts.hosts {
            let mut row = vec![
                h.host_id.clone(),
                h.environment.clone(),
                h.state.to_string(),
                h.last_seen_age_seconds
                    .map_or_else(|| "never".to_owned(), |s| format!("{s}s ago")),
                containers(h),
                h.host.kernel_version.clone(),
                format!("{} {}", h.host.os_id, h.host.os_version)
                    .trim()
                    .to_owned(),
                // The runtime named unless it is Docker (or unknown: an
                // agent from before runtimes), so Docker rows read as before.
                match h.engine.runtime.as_str() {
                    "" | "docker" => h.engine.server_version.clone(),
                    runtime => format!("{runtime} {}", h.engine.server_version),
                },
            ];
            if self.wide() {
                row.extend([
                    h.host.architecture.clone(),
                    h.engine.storage_driver.clone(),
                    format!("{} v{}", h.engine.cgroup_driver, h.engine.cgroup_version),
                    h.agent_version.clone(),
                    h.labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            let fresh = h.state == Named::Known(v1::HostState::Fresh);
            table.row(row, move |col, text, out: &Out| {
                if col == 2 && !fresh {
                    out.paint(text, Tone::Warning)
                } else {
                    text.to_owned()
                }
            });
        }
        let mut s = table.render(self);
        s.push_str(&format!("{} host(s)\n", hosts.hosts.len()));
        for h in hosts.hosts.iter().filter(|h| !h.unmanaged.is_empty()) {
            s.push_str(&sanitize_lines(&format!(
                "{}: unmanaged, not compared (no identity label, a name the engine generated): {}\n",
                h.host_id,
                h.unmanaged.join(", ")
            )));
        }
        for h in &hosts.hosts {
            if let Some(reason) = &h.refused_reason {
                s.push_str(&sanitize_lines(&format!(
                    "{}: latest report refused at {}: {reason}\n",
                    h.host_id,
                    h.refused_at.as_deref().unwrap_or("?")
                )));
            }
        }
        self.emit(&s)
    }

    /// `envparity hosts forget`.
    pub fn forgotten(&self, f: &Forgotten) -> anyhow::Result<()> {
        if self.structured(f)? {
            return Ok(());
        }
        self.emit(&sanitize_lines(&format!(
            "forgot host {} ({}, {} container(s), last seen {}); if its agent still runs, it comes back at its next report\n",
            f.host_id,
            f.environment,
            f.container_count,
            f.last_seen.as_deref().unwrap_or("never")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;
    use std::time::SystemTime;

    /// A host's unmanaged containers are counted in its CONTAINERS cell and
    /// named under the table, escaped like every name; a host without any
    /// reads as before.
    #[test]
    fn unmanaged_containers_are_counted_and_named_under_the_table() {
        let host = |id: &str, count: u32, unmanaged: &[&str]| v1::HostSummary {
            host_id: id.into(),
            environment: "staging".into(),
            container_count: count,
            unmanaged: unmanaged.iter().map(|&n| n.to_owned()).collect(),
            ..Default::default()
        };
        let resp = v1::ListHostsResponse {
            hosts: vec![
                host("s1", 3, &["naughty_wilson", "sad_wu\u{1b}[2J"]),
                host("s2", 1, &[]),
            ],
        };
        let out = Out::buffered(Format::Table, false);
        out.hosts(&Hosts::from_proto(&resp, SystemTime::UNIX_EPOCH))
            .unwrap();
        let text = out.take();
        assert!(text.contains("3 (2 unmanaged)"), "{text}");
        let named: Vec<&str> = text.lines().filter(|l| l.contains("unmanaged,")).collect();
        assert_eq!(
            named,
            [
                "s1: unmanaged, not compared (no identity label, a name the engine generated): naughty_wilson, sad_wu\\u{1b}[2J"
            ],
            "{text}"
        );
    }
}
