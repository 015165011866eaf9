//! Which service a container is a replica of.
//!
//! Parity compares services across environments, so every container needs a
//! service name that is the same for "the same thing" in staging and
//! production and different for different things. Container names rarely are
//! (`shop_web_1` vs `shop-web-7f9c`), so orchestrator labels come first and
//! the container name is the last resort. An explicit `envparity.service`
//! label beats everything: it is how an operator fixes a wrong guess.
//!
//! A container named by its name alone, whose name has the shape the engine
//! generates for a container run without `--name` (`naughty_wilson`), has
//! no identity at all: a one-off `docker run`, a debug shell. It is
//! reported *unmanaged* ([`is_unmanaged`]), so that the aggregator never
//! compares it across environments by a name nobody chose. The engine does
//! not say whether a name was generated, so the shape decides, and a name
//! an operator gave in that shape (`shop_web`) is taken for generated too:
//! the `envparity.service` label is the way out.

use std::collections::HashMap;

use envparity_proto::v1::{ServiceIdentity, ServiceSource};

/// Label an operator sets to name the service explicitly.
pub const SERVICE_LABEL: &str = "envparity.service";
/// Docker Compose project label.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
/// Docker Compose service label.
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
/// Kubernetes (dockershim / cri-dockerd) container name label.
pub const K8S_CONTAINER_LABEL: &str = "io.kubernetes.container.name";
/// Kubernetes namespace label.
pub const K8S_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// Kubernetes application labels, most specific first.
pub const K8S_APP_LABELS: &[&str] = &["app.kubernetes.io/name", "app"];
/// The container name Kubernetes gives pod sandbox ("pause") containers.
pub const K8S_POD_SANDBOX: &str = "POD";

/// The service identity of a container, from its labels and name, trying in
/// order: the `envparity.service` label; Compose `<project>/<service>`;
/// Kubernetes `<app>/<container>` (app = `app.kubernetes.io/name`, else
/// `app`, else the namespace; just `<container>` if none is set); the
/// container name.
///
/// Returns `None` for Kubernetes pod sandbox containers (`POD`): they hold
/// namespaces, run no workload and are not services. Empty label values
/// count as absent.
pub fn service_identity(
    labels: &HashMap<String, String>,
    container_name: &str,
) -> Option<ServiceIdentity> {
    let label = |key: &str| {
        labels
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let identity = |name: String, source: ServiceSource| {
        Some(ServiceIdentity {
            name,
            source: source as i32,
        })
    };

    if let Some(name) = label(SERVICE_LABEL) {
        return identity(name.to_owned(), ServiceSource::Label);
    }
    if let (Some(project), Some(service)) =
        (label(COMPOSE_PROJECT_LABEL), label(COMPOSE_SERVICE_LABEL))
    {
        return identity(format!("{project}/{service}"), ServiceSource::Compose);
    }
    if let Some(container) = label(K8S_CONTAINER_LABEL) {
        if container == K8S_POD_SANDBOX {
            return None;
        }
        let app = K8S_APP_LABELS
            .iter()
            .find_map(|key| label(key))
            .or_else(|| label(K8S_NAMESPACE_LABEL));
        let name = match app {
            Some(app) => format!("{app}/{container}"),
            None => container.to_owned(),
        };
        return identity(name, ServiceSource::Kubernetes);
    }
    identity(container_name.to_owned(), ServiceSource::ContainerName)
}

/// Whether a container with this identity has none of its own: it was
/// named by its container name ([`ServiceSource::ContainerName`]: no
/// `envparity.service`, Compose or Kubernetes label) and that name has the
/// shape of an engine-generated one ([`looks_generated`]).
pub fn is_unmanaged(identity: &ServiceIdentity) -> bool {
    identity.source() == ServiceSource::ContainerName && looks_generated(&identity.name)
}

/// Whether `name` has the shape Docker's names generator gives a container
/// created without a name, which Podman uses too: `adjective_surname`, two
/// runs of lower-case ASCII letters joined by one underscore (at least
/// three letters before it, two after: `sad_wu`), optionally followed by
/// one digit (added when the first pick was taken: `naughty_wilson3`).
///
/// The shape, not the engine's word lists: the rule errs towards
/// "unmanaged" for a hand-given name in this shape, which its
/// `envparity.service` label corrects, and never takes a name with a
/// dash, a dot, an upper-case letter, more than one underscore or a longer
/// number (`shop-web`, `shop_web_1`, `web-1`) for generated.
pub fn looks_generated(name: &str) -> bool {
    let name = name
        .strip_suffix(|c: char| c.is_ascii_digit())
        .unwrap_or(name);
    let letters = |part: &str, at_least: usize| {
        part.len() >= at_least && part.bytes().all(|b| b.is_ascii_lowercase())
    };
    name.split_once('_')
        .is_some_and(|(adjective, surname)| letters(adjective, 3) && letters(surname, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn id(pairs: &[(&str, &str)]) -> (String, ServiceSource) {
        let identity = service_identity(&labels(pairs), "web-1").expect("a service");
        (identity.name.clone(), identity.source())
    }

    const COMPOSE: [(&str, &str); 2] = [
        (COMPOSE_PROJECT_LABEL, "shop"),
        (COMPOSE_SERVICE_LABEL, "web"),
    ];

    #[test]
    fn explicit_label_names_the_service() {
        assert_eq!(
            id(&[(SERVICE_LABEL, "checkout")]),
            ("checkout".into(), ServiceSource::Label)
        );
    }

    #[test]
    fn explicit_label_beats_compose_and_kubernetes() {
        let mut pairs = COMPOSE.to_vec();
        pairs.push((K8S_CONTAINER_LABEL, "api"));
        pairs.push((SERVICE_LABEL, "checkout"));
        assert_eq!(id(&pairs), ("checkout".into(), ServiceSource::Label));
    }

    #[test]
    fn compose_labels_give_project_slash_service() {
        assert_eq!(id(&COMPOSE), ("shop/web".into(), ServiceSource::Compose));
    }

    #[test]
    fn compose_beats_kubernetes() {
        let mut pairs = COMPOSE.to_vec();
        pairs.push((K8S_CONTAINER_LABEL, "api"));
        assert_eq!(id(&pairs), ("shop/web".into(), ServiceSource::Compose));
    }

    #[test]
    fn half_a_compose_pair_is_ignored() {
        assert_eq!(
            id(&[(COMPOSE_PROJECT_LABEL, "shop")]),
            ("web-1".into(), ServiceSource::ContainerName)
        );
    }

    #[test]
    fn kubernetes_prefers_app_kubernetes_io_name_then_app_then_namespace() {
        let base = [(K8S_CONTAINER_LABEL, "api"), (K8S_NAMESPACE_LABEL, "prod")];
        assert_eq!(id(&base), ("prod/api".into(), ServiceSource::Kubernetes));

        let mut with_app = base.to_vec();
        with_app.push(("app", "shop"));
        assert_eq!(
            id(&with_app),
            ("shop/api".into(), ServiceSource::Kubernetes)
        );

        with_app.push(("app.kubernetes.io/name", "storefront"));
        assert_eq!(
            id(&with_app),
            ("storefront/api".into(), ServiceSource::Kubernetes)
        );
    }

    #[test]
    fn kubernetes_without_app_or_namespace_uses_the_container_name_label() {
        assert_eq!(
            id(&[(K8S_CONTAINER_LABEL, "api")]),
            ("api".into(), ServiceSource::Kubernetes)
        );
    }

    #[test]
    fn kubernetes_pause_container_is_not_a_service() {
        let pairs = labels(&[(K8S_CONTAINER_LABEL, "POD"), (K8S_NAMESPACE_LABEL, "prod")]);
        assert_eq!(service_identity(&pairs, "k8s_POD_x"), None);
    }

    #[test]
    fn explicit_label_on_a_pause_container_still_counts() {
        assert_eq!(
            id(&[(K8S_CONTAINER_LABEL, "POD"), (SERVICE_LABEL, "sandbox")]),
            ("sandbox".into(), ServiceSource::Label)
        );
    }

    #[test]
    fn container_name_is_the_fallback() {
        assert_eq!(id(&[]), ("web-1".into(), ServiceSource::ContainerName));
    }

    #[test]
    fn empty_label_values_count_as_absent() {
        assert_eq!(
            id(&[(SERVICE_LABEL, "")]),
            ("web-1".into(), ServiceSource::ContainerName)
        );
    }

    #[test]
    fn engine_generated_names_are_recognised_by_their_shape() {
        for name in [
            "naughty_wilson",
            "sad_wu",
            "naughty_wilson3",
            "xenodochial_mclean",
        ] {
            assert!(looks_generated(name), "{name}");
        }
        for name in [
            "web-1",
            "shop_web_1",
            "shop-web",
            "my_app",
            "naughty_wilson12",
            "Naughty_wilson",
            "naughty_",
            "_wilson",
            "naughty",
            "shop/web",
            "naughty_wilson.1",
        ] {
            assert!(!looks_generated(name), "{name}");
        }
    }

    #[test]
    fn only_a_generated_name_without_identity_labels_is_unmanaged() {
        let unmanaged = |pairs: &[(&str, &str)], name: &str| {
            is_unmanaged(&service_identity(&labels(pairs), name).expect("a service"))
        };
        assert!(unmanaged(&[], "naughty_wilson"));
        assert!(unmanaged(&[("maintainer", "someone")], "naughty_wilson"));
        assert!(!unmanaged(&[(SERVICE_LABEL, "debug")], "naughty_wilson"));
        // A label naming the service in that shape is still an identity.
        assert!(!unmanaged(&[(SERVICE_LABEL, "sad_wu")], "sad_wu"));
        assert!(!unmanaged(&COMPOSE, "naughty_wilson"));
        assert!(!unmanaged(
            &[(K8S_CONTAINER_LABEL, "api")],
            "naughty_wilson"
        ));
        assert!(!unmanaged(&[], "web-1"));
    }
}
