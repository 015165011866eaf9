//! `Explain`: why a service's images differ between two environments,
//! computed here as the gate is, so that every client gets the same answer.

use envparity_proto::v1::{ExplainRequest, ExplainResponse};
use tonic::Status;

use super::checks::{known_environment, known_service, list};
use super::instances_of;
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
    let instances: Vec<_> = instances_of(reading, &service)
        .into_iter()
        .map(|i| (i.environment, i.host_id, i.container))
        .collect();
    let present = reading
        .policy()
        .ordered(instances.iter().map(|(env, _, _)| env.as_str()));
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
    Ok(convert::explanation(&explain::explain(
        &service, &a, &b, &instances,
    )))
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
}
