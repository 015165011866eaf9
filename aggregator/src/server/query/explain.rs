//! `Explain`: why a service's images differ between two environments,
//! computed here as the gate is, so that every client gets the same answer,
//! with the configuration files the replicas of both read.

use envparity_proto::v1::{ExplainRequest, ExplainResponse, ReplicaConfigFiles};
use tonic::Status;

use super::checks::{known_environment, known_service, list};
use super::{Instance, instances_of};
use crate::fleet::Reading;
use crate::parity::explain;
use crate::server::convert;

/// The explanation `req` asks for.
pub(super) fn explain(
    reading: &Reading<'_>,
    req: ExplainRequest,
) -> Result<ExplainResponse, Status> {
    let service = req.service;
    if service.is_empty() {
        return Err(Status::invalid_argument("ExplainRequest.service is empty"));
    }
    if !reading.runs(&service) {
        known_service(&reading.services(), &service)?;
    }
    let all = instances_of(reading, &service);
    let present = reading
        .policy()
        .ordered(all.iter().map(|i| i.environment.as_str()));
    let (a, b) = match (req.env_a.is_empty(), req.env_b.is_empty()) {
        (true, true) => match present.as_slice() {
            [.., a, b] => (a.clone(), b.clone()),
            _ => {
                return Err(Status::failed_precondition(format!(
                    "{service} runs only in {}; give two environments with --env A --env B",
                    list(&present)
                )));
            }
        },
        (false, false) => {
            if req.env_a == req.env_b {
                return Err(Status::invalid_argument(format!(
                    "env_a and env_b are both {:?}; explain two different environments",
                    req.env_a
                )));
            }
            let known = reading.environments();
            for env in [&req.env_a, &req.env_b] {
                known_environment(&known, env)?;
                if !present.contains(env) {
                    return Err(Status::failed_precondition(format!(
                        "{service} does not run in {env:?}; it runs in: {}",
                        list(&present)
                    )));
                }
            }
            (req.env_a, req.env_b)
        }
        _ => {
            return Err(Status::invalid_argument(
                "give both env_a and env_b, or neither for the last two environments that run the service",
            ));
        }
    };
    let replicas = replicas(&all, &a, &b);
    let instances: Vec<_> = all
        .into_iter()
        .map(|i| (i.environment, i.host_id, i.container))
        .collect();
    let mut answer = convert::explanation(&explain::explain(&service, &a, &b, &instances));
    answer.replicas = replicas;
    Ok(answer)
}

/// The replicas of `a`, then of `b`, each side by host and container name,
/// with their configuration files as last reported.
fn replicas(all: &[Instance], a: &str, b: &str) -> Vec<ReplicaConfigFiles> {
    let mut replicas = Vec::new();
    for env in [a, b] {
        let mut side: Vec<_> = all
            .iter()
            .filter(|i| i.environment == env)
            .map(|i| ReplicaConfigFiles {
                environment: i.environment.clone(),
                host_id: i.host_id.clone(),
                container_name: i.container.name.clone(),
                config_files: i.config_files.clone(),
            })
            .collect();
        side.sort_by(|x, y| (&x.host_id, &x.container_name).cmp(&(&y.host_id, &y.container_name)));
        replicas.extend(side);
    }
    replicas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::{container, empty_fleet, report};

    #[tokio::test]
    async fn explains_the_last_two_environments_or_those_named_and_refuses_what_it_cannot() {
        let (_dir, fleet, t0) = empty_fleet();
        for (host, env, image) in [
            ("d1", "dev", 1),
            ("s1", "staging", 1),
            ("p1", "production", 2),
        ] {
            let mut containers = vec![container("shop", image, 0)];
            if env == "dev" {
                containers.push(container("cart", 3, 0));
            }
            fleet
                .push(report(host, env, 1, containers), t0)
                .await
                .unwrap();
        }
        let reading = fleet.reading(t0);
        let ask = |service: &str, env_a: &str, env_b: &str| {
            explain(
                &reading,
                ExplainRequest {
                    service: service.into(),
                    env_a: env_a.into(),
                    env_b: env_b.into(),
                },
            )
        };

        let last_two = ask("shop", "", "").unwrap();
        assert_eq!(last_two.service, "shop");
        let side = |s: &Option<envparity_proto::v1::ExplainSide>| {
            let s = s.as_ref().unwrap();
            let ids: Vec<_> = s.images.iter().map(|i| i.image_id.clone()).collect();
            let hosts: Vec<_> = s.images.iter().map(|i| i.hosts.clone()).collect();
            (s.environment.clone(), ids, hosts)
        };
        assert_eq!(
            side(&last_two.a),
            (
                "staging".into(),
                vec![format!("sha256:{:064x}", 1)],
                vec![vec!["s1".to_owned()]]
            )
        );
        assert_eq!(
            side(&last_two.b),
            (
                "production".into(),
                vec![format!("sha256:{:064x}", 2)],
                vec![vec!["p1".to_owned()]]
            )
        );
        assert!(!last_two.same_content);
        // No side lists its layers: nothing to compare.
        assert_eq!(last_two.shared_layers, None);

        let named = ask("shop", "dev", "staging").unwrap();
        assert!(named.same_content, "{named:?}");
        assert_eq!(side(&named.a).0, "dev");

        let refused = |service: &str, a: &str, b: &str| {
            let e = ask(service, a, b).unwrap_err();
            (e.code(), e.message().to_owned())
        };
        let (code, message) = refused("nope", "", "");
        assert_eq!(code, tonic::Code::NotFound);
        assert!(message.contains("known services: cart, shop"), "{message}");
        let (code, message) = refused("cart", "", "");
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(message.contains("cart runs only in dev"), "{message}");
        let (code, message) = refused("cart", "dev", "production");
        assert_eq!(code, tonic::Code::FailedPrecondition);
        assert!(
            message.contains("does not run in \"production\""),
            "{message}"
        );
        let (code, message) = refused("shop", "dev", "qa");
        assert_eq!(code, tonic::Code::NotFound);
        assert!(
            message.contains("environment \"qa\" is unknown"),
            "{message}"
        );
        assert_eq!(
            refused("shop", "dev", "dev").0,
            tonic::Code::InvalidArgument
        );
        assert_eq!(refused("shop", "dev", "").0, tonic::Code::InvalidArgument);
        assert_eq!(refused("", "", "").0, tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn explain_carries_the_config_files_of_both_sides_replicas_and_no_others() {
        use envparity_proto::v1::{
            ConfigFile, ConfigFileState, ConfigKey, ContainerConfigFiles, ExplainSide,
        };
        let (_dir, fleet, t0) = empty_fleet();
        let files = |id: &str, value: &str| ContainerConfigFiles {
            container_id: id.to_owned(),
            files: vec![ConfigFile {
                path: "/etc/app/app.yaml".into(),
                format: "yaml".into(),
                state: ConfigFileState::Read as i32,
                keys: vec![ConfigKey {
                    path: "features.checkout".into(),
                    fingerprint: value.repeat(64),
                    value: None,
                }],
                fingerprint: "f".repeat(64),
                ..ConfigFile::default()
            }],
        };
        // dev is not asked for; p2's agent did not read its files.
        for (host, env, read) in [
            ("d1", "dev", Some("d")),
            ("s1", "staging", Some("a")),
            ("p2", "production", None),
            ("p1", "production", Some("b")),
        ] {
            let mut snapshot = report(host, env, 1, vec![container("shop", 1, 0)]);
            snapshot.config_files = read.map(|v| files("shop-1", v)).into_iter().collect();
            fleet.push(snapshot, t0).await.unwrap();
        }
        let answer = explain(
            &fleet.reading(t0),
            ExplainRequest {
                service: "shop".into(),
                env_a: "staging".into(),
                env_b: "production".into(),
            },
        )
        .unwrap();
        let seen: Vec<_> = answer
            .replicas
            .iter()
            .map(|r| {
                let key = r
                    .config_files
                    .as_ref()
                    .map(|c| c.files[0].keys[0].fingerprint[..1].to_owned());
                (r.environment.as_str(), r.host_id.as_str(), key)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("staging", "s1", Some("a".to_owned())),
                ("production", "p1", Some("b".to_owned())),
                ("production", "p2", None),
            ]
        );
        assert!(answer.replicas.iter().all(|r| r.container_name == "shop"));
        // The images are explained as before.
        let side = |s: &Option<ExplainSide>| s.as_ref().unwrap().environment.clone();
        assert_eq!(
            (side(&answer.a), side(&answer.b)),
            ("staging".into(), "production".into())
        );
    }
}
