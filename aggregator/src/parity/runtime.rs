//! Runtime settings as comparable, human-readable strings.
//!
//! Each setting renders to one canonical string: lists that the engine
//! treats as sets (mounts, ports, capabilities) are sorted, so order never
//! counts as drift; argument lists (cmd, entrypoint) keep their order,
//! because order changes meaning.

use envparity_proto::v1::RuntimeConfig;

use super::policy::RuntimeField;

/// The canonical rendering of one setting (`(none)` when unset).
pub fn render(config: Option<&RuntimeConfig>, field: RuntimeField) -> String {
    let default = RuntimeConfig::default();
    let c = config.unwrap_or(&default);
    let text = match field {
        RuntimeField::Cmd => args(&c.cmd),
        RuntimeField::Entrypoint => args(&c.entrypoint),
        RuntimeField::User => c.user.clone(),
        RuntimeField::WorkingDir => c.working_dir.clone(),
        RuntimeField::Mounts => set(c.mounts.iter().map(|m| {
            let mode = if m.read_only { "ro" } else { "rw" };
            format!("{}:{mode} ({})", m.destination, m.r#type)
        })),
        RuntimeField::Ports => set(c.ports.iter().map(|p| {
            let inside = format!("{}/{}", p.container_port, p.protocol);
            if p.host_port == 0 {
                inside
            } else {
                format!("{inside}->{}:{}", p.host_ip, p.host_port)
            }
        })),
        RuntimeField::Privileged => c.privileged.to_string(),
        RuntimeField::CapAdd => set(c.cap_add.iter().cloned()),
        RuntimeField::CapDrop => set(c.cap_drop.iter().cloned()),
        RuntimeField::ReadOnlyRootfs => c.read_only_rootfs.to_string(),
        RuntimeField::NetworkMode => c.network_mode.clone(),
        RuntimeField::RestartPolicy => c.restart_policy.clone(),
    };
    if text.is_empty() {
        "(none)".to_owned()
    } else {
        text
    }
}

/// Arguments, quoted where they need it, in order.
fn args(list: &[String]) -> String {
    list.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) || a.contains('"') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn set(items: impl Iterator<Item = String>) -> String {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.dedup();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::v1::{Mount, Port};

    #[test]
    fn sets_ignore_order_and_argument_lists_keep_it() {
        let a = RuntimeConfig {
            cmd: vec!["serve".into(), "--port".into(), "80".into()],
            cap_add: vec!["NET_ADMIN".into(), "CHOWN".into()],
            ports: vec![
                Port {
                    container_port: 443,
                    protocol: "tcp".into(),
                    ..Default::default()
                },
                Port {
                    container_port: 80,
                    protocol: "tcp".into(),
                    host_ip: "0.0.0.0".into(),
                    host_port: 8080,
                },
            ],
            mounts: vec![Mount {
                r#type: "volume".into(),
                destination: "/data".into(),
                read_only: true,
            }],
            ..Default::default()
        };
        let mut b = a.clone();
        b.cap_add.reverse();
        b.ports.reverse();
        for field in RuntimeField::ALL {
            assert_eq!(
                render(Some(&a), field),
                render(Some(&b), field),
                "{field:?}"
            );
        }
        assert_eq!(
            render(Some(&a), RuntimeField::Ports),
            "443/tcp, 80/tcp->0.0.0.0:8080"
        );
        assert_eq!(render(Some(&a), RuntimeField::Mounts), "/data:ro (volume)");
        b.cmd.reverse();
        assert_ne!(
            render(Some(&a), RuntimeField::Cmd),
            render(Some(&b), RuntimeField::Cmd)
        );
    }

    #[test]
    fn unset_settings_render_as_none_and_spaces_are_quoted() {
        assert_eq!(render(None, RuntimeField::User), "(none)");
        let c = RuntimeConfig {
            cmd: vec!["sh".into(), "-c".into(), "sleep 1".into()],
            ..Default::default()
        };
        assert_eq!(render(Some(&c), RuntimeField::Cmd), "sh -c \"sleep 1\"");
    }
}
