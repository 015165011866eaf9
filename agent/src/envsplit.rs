//! Telling explicit env apart from env baked into the image, and from env the
//! engine or the orchestrator injected.
//!
//! Docker merges an image's `Config.Env` into every container's env, so a
//! container's env alone cannot say which entries an operator chose. Parity is
//! about operator choices: an image upgrade that changes a baked default shows
//! up as an image difference, not as configuration drift. Hence the split.
//!
//! A third bucket holds what nobody chose: `HOSTNAME` and `container` set by
//! Podman and the CRI runtimes, Podman's default `PATH` and `TERM`, and
//! Kubernetes' service-link variables (`KUBERNETES_SERVICE_HOST`,
//! `<SVC>_PORT_80_TCP_ADDR`, …), which differ per cluster by nature. They are
//! reported (fingerprinted like every value) but never compared: without the
//! bucket, every service on every cluster would show env drift.

use envparity_proto::v1::EnvVar;

use crate::clear_env::ClearEnvPolicy;
use crate::fingerprint::FleetKey;

/// One env entry, split into name and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvEntry {
    /// The variable name.
    pub name: String,
    /// The value (empty for an entry without `=`).
    pub value: String,
}

impl EnvEntry {
    /// Parses a Docker env entry `NAME=value`, splitting at the first `=`.
    /// An entry without `=` has an empty value.
    pub fn parse(entry: &str) -> Self {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// A container's env, split by origin. Every list is sorted by name (then
/// value, so duplicates still order deterministically).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitEnv {
    /// Entries passed to the container that the image does not provide
    /// byte-for-byte and that nobody injected: new variables and overridden
    /// values.
    pub explicit: Vec<EnvEntry>,
    /// The image's own `Config.Env` entries.
    pub image: Vec<EnvEntry>,
    /// Entries the engine or the orchestrator injected ([`Injection`]).
    pub injected: Vec<EnvEntry>,
}

/// Which env a runtime injects by itself, so that [`split_env`] can set it
/// apart. The rules are narrow on purpose: an entry an operator set by hand
/// that a rule also matches is not compared, so each rule matches only what
/// the injector really writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injection {
    /// `HOSTNAME` and `container`, which Podman and the CRI runtimes set.
    pub engine: bool,
    /// Podman's defaults when the image sets none: `TERM=xterm` and
    /// [`PODMAN_DEFAULT_PATH`].
    pub podman_defaults: bool,
    /// Kubernetes' service links: for each service `SVC` whose
    /// `SVC_SERVICE_HOST` is set and whose `SVC_PORT` reads
    /// `tcp|udp|sctp://host:port`, every `SVC_SERVICE_*`, `SVC_PORT` and
    /// `SVC_PORT_*` entry.
    pub service_links: bool,
}

/// The `PATH` Podman sets when the image sets none.
pub const PODMAN_DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Injection {
    /// Nothing injected (Docker).
    pub const NONE: Self = Self {
        engine: false,
        podman_defaults: false,
        service_links: false,
    };

    /// Service links for a container that Kubernetes runs (it carries
    /// `io.kubernetes.container.name`), whatever the engine.
    pub fn for_labels(labels: &std::collections::HashMap<String, String>) -> Self {
        Self {
            service_links: labels.contains_key(crate::identity::K8S_CONTAINER_LABEL),
            ..Self::NONE
        }
    }

    /// Both rule sets.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self {
            engine: self.engine || other.engine,
            podman_defaults: self.podman_defaults || other.podman_defaults,
            service_links: self.service_links || other.service_links,
        }
    }

    /// Whether `entry`, one of `env` (the container's entries that are not
    /// the image's), was injected; `image_names` are the names the image
    /// sets.
    fn injected(self, entry: &EnvEntry, env: &[EnvEntry], image_names: &[&str]) -> bool {
        let name = entry.name.as_str();
        if self.engine && matches!(name, "HOSTNAME" | "container") {
            return true;
        }
        if self.podman_defaults
            && !image_names.contains(&name)
            && ((name == "TERM" && entry.value == "xterm")
                || (name == "PATH" && entry.value == PODMAN_DEFAULT_PATH))
        {
            return true;
        }
        self.service_links && is_service_link(name, env)
    }
}

/// Whether `name` is a Kubernetes service-link variable of a service the
/// env really links: `SVC_SERVICE_HOST` is present and `SVC_PORT` is a
/// `proto://host:port` address. A lone `DB_PORT=5432` is not one.
fn is_service_link(name: &str, env: &[EnvEntry]) -> bool {
    // `_PORT_` before the `_PORT` suffix: `SVC_PORT_443_TCP_PORT` is SVC's.
    let service = if let Some((svc, _)) = name.split_once("_SERVICE_") {
        svc
    } else if let Some((svc, _)) = name.split_once("_PORT_") {
        svc
    } else if let Some(svc) = name.strip_suffix("_PORT") {
        svc
    } else {
        return false;
    };
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return false;
    }
    let value = |wanted: &str| {
        env.iter()
            .find(|e| e.name == wanted)
            .map(|e| e.value.as_str())
    };
    let linked_port = value(&format!("{service}_PORT")).is_some_and(|v| {
        ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|scheme| v.starts_with(scheme))
    });
    linked_port && value(&format!("{service}_SERVICE_HOST")).is_some()
}

/// Splits a container's env against its image's `Config.Env`, setting apart
/// what `injection` says the runtime injected.
///
/// A container entry byte-identical to an image entry is the image's default
/// and not explicit; anything else (a new name, or a name whose value
/// differs from the image's) is explicit, unless injected. Comparing whole
/// entries, not names, is what makes an override of a baked default count as
/// explicit.
pub fn split_env(container_env: &[String], image_env: &[String], injection: Injection) -> SplitEnv {
    let rest: Vec<EnvEntry> = container_env
        .iter()
        .filter(|entry| !image_env.contains(entry))
        .map(|entry| EnvEntry::parse(entry))
        .collect();
    let mut image: Vec<EnvEntry> = image_env.iter().map(|e| EnvEntry::parse(e)).collect();
    let image_names: Vec<&str> = image.iter().map(|e| e.name.as_str()).collect();
    let (mut injected, mut explicit): (Vec<EnvEntry>, Vec<EnvEntry>) = rest
        .iter()
        .cloned()
        .partition(|e| injection.injected(e, &rest, &image_names));
    explicit.sort();
    injected.sort();
    image.sort();
    SplitEnv {
        explicit,
        image,
        injected,
    }
}

/// Turns entries into wire `EnvVar`s: every value fingerprinted under `key`,
/// and the value itself added only where `policy` allows it in clear.
pub fn protect(entries: &[EnvEntry], key: &FleetKey, policy: &ClearEnvPolicy) -> Vec<EnvVar> {
    entries
        .iter()
        .map(|e| EnvVar {
            name: e.name.clone(),
            fingerprint: key.fingerprint(&e.name, &e.value),
            value: policy.allows(&e.name, &e.value).then(|| e.value.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn names(entries: &[EnvEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn image_baked_entry_is_not_explicit() {
        let split = split_env(
            &strings(&["PATH=/usr/bin", "BAKED=1", "FOO=bar"]),
            &strings(&["PATH=/usr/bin", "BAKED=1"]),
            Injection::NONE,
        );
        assert_eq!(names(&split.explicit), ["FOO"]);
        assert_eq!(names(&split.image), ["BAKED", "PATH"]);
    }

    #[test]
    fn overridden_image_value_is_explicit() {
        let split = split_env(
            &strings(&["BAKED=2"]),
            &strings(&["BAKED=1"]),
            Injection::NONE,
        );
        assert_eq!(split.explicit, [EnvEntry::parse("BAKED=2")]);
        assert_eq!(split.image, [EnvEntry::parse("BAKED=1")]);
    }

    #[test]
    fn entry_without_equals_has_empty_value() {
        assert_eq!(
            EnvEntry::parse("LONELY"),
            EnvEntry {
                name: "LONELY".into(),
                value: String::new()
            }
        );
        let split = split_env(&strings(&["LONELY"]), &[], Injection::NONE);
        assert_eq!(split.explicit[0].value, "");
    }

    #[test]
    fn value_is_split_at_the_first_equals_only() {
        let e = EnvEntry::parse("OPTS=a=b=c");
        assert_eq!((e.name.as_str(), e.value.as_str()), ("OPTS", "a=b=c"));
    }

    #[test]
    fn both_lists_are_sorted_by_name() {
        let split = split_env(
            &strings(&["Z=1", "A=1", "M=1"]),
            &strings(&["Y=1", "B=1"]),
            Injection::NONE,
        );
        assert_eq!(names(&split.explicit), ["A", "M", "Z"]);
        assert_eq!(names(&split.image), ["B", "Y"]);
    }

    #[test]
    fn protect_fingerprints_everything_and_discloses_only_allowed() {
        let key = FleetKey::from_bytes(*b"0123456789abcdef");
        let policy = ClearEnvPolicy::new(["LOG_LEVEL", "API_TOKEN"]);
        let entries = [
            EnvEntry::parse("API_TOKEN=s3cr3t"),
            EnvEntry::parse("LOG_LEVEL=debug"),
            EnvEntry::parse("OTHER=x"),
        ];
        let vars = protect(&entries, &key, &policy);
        assert_eq!(vars.len(), 3);
        assert_eq!(vars[0].value, None, "secret-looking name stays hidden");
        assert_eq!(vars[1].value.as_deref(), Some("debug"));
        assert_eq!(vars[2].value, None, "not allowlisted");
        assert_eq!(vars[0].fingerprint, key.fingerprint("API_TOKEN", "s3cr3t"));
    }

    const KUBERNETES: Injection = Injection {
        engine: true,
        podman_defaults: false,
        service_links: true,
    };

    #[test]
    fn service_links_and_engine_env_are_injected_not_explicit() {
        let env = strings(&[
            "HOSTNAME=web-7f9c",
            "KUBERNETES_SERVICE_HOST=10.96.0.1",
            "KUBERNETES_SERVICE_PORT=443",
            "KUBERNETES_SERVICE_PORT_HTTPS=443",
            "KUBERNETES_PORT=tcp://10.96.0.1:443",
            "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
            "KUBERNETES_PORT_443_TCP_PROTO=tcp",
            "KUBERNETES_PORT_443_TCP_PORT=443",
            "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
            "REDIS_MASTER_SERVICE_HOST=10.0.0.11",
            "REDIS_MASTER_PORT=tcp://10.0.0.11:6379",
            "REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11",
            "LOG_LEVEL=info",
        ]);
        let split = split_env(&env, &[], KUBERNETES);
        assert_eq!(names(&split.explicit), ["LOG_LEVEL"]);
        assert_eq!(split.injected.len(), 12);
    }

    #[test]
    fn a_port_variable_without_its_service_is_explicit() {
        // No DB_SERVICE_HOST, and DB_PORT is a number: an operator's choice.
        let env = strings(&["DB_PORT=5432", "DB_PORT_OVERRIDE=1", "API_SERVICE_NAME=x"]);
        let split = split_env(&env, &[], KUBERNETES);
        assert_eq!(
            names(&split.explicit),
            ["API_SERVICE_NAME", "DB_PORT", "DB_PORT_OVERRIDE"]
        );
        assert!(split.injected.is_empty());
        // The same with a host but a plain port is still explicit.
        let env = strings(&["DB_SERVICE_HOST=db", "DB_PORT=5432"]);
        assert_eq!(split_env(&env, &[], KUBERNETES).injected, []);
    }

    #[test]
    fn nothing_is_injected_for_docker() {
        let env = strings(&["HOSTNAME=x", "container=podman", "TERM=xterm"]);
        let split = split_env(&env, &[], Injection::NONE);
        assert_eq!(names(&split.explicit), ["HOSTNAME", "TERM", "container"]);
    }

    #[test]
    fn podman_defaults_are_injected_only_when_the_image_sets_none() {
        let podman = Injection {
            engine: true,
            podman_defaults: true,
            service_links: false,
        };
        let path = format!("PATH={PODMAN_DEFAULT_PATH}");
        let env = strings(&["container=podman", "TERM=xterm", &path, "A=1"]);
        let split = split_env(&env, &[], podman);
        assert_eq!(names(&split.explicit), ["A"]);
        assert_eq!(names(&split.injected), ["PATH", "TERM", "container"]);
        // The image sets PATH (to something else) and TERM: overriding
        // them is the operator's choice.
        let split = split_env(&env, &strings(&["PATH=/bin", "TERM=dumb"]), podman);
        assert_eq!(names(&split.explicit), ["A", "PATH", "TERM"]);
        // TERM set to something else than Podman's default is explicit.
        let split = split_env(&strings(&["TERM=vt100"]), &[], podman);
        assert_eq!(names(&split.explicit), ["TERM"]);
    }

    fn env_list() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[A-D]{1,2}(=[a-c]{0,2})?", 0..8)
    }

    proptest! {
        /// Nothing is lost, invented or counted twice: the explicit entries
        /// plus the container entries byte-identical to an image entry are
        /// exactly the container env (as a multiset).
        #[test]
        fn explicit_and_image_covered_entries_make_up_the_container_env(
            container in env_list(),
            image in env_list(),
        ) {
            let split = split_env(&container, &image, Injection::NONE);
            let covered: Vec<EnvEntry> = container
                .iter()
                .filter(|e| image.contains(e))
                .map(|e| EnvEntry::parse(e))
                .collect();
            let mut union: Vec<EnvEntry> = split.explicit.iter().cloned().chain(covered).collect();
            union.sort();
            let mut all: Vec<EnvEntry> = container.iter().map(|e| EnvEntry::parse(e)).collect();
            all.sort();
            prop_assert_eq!(union, all);
        }
    }
}
