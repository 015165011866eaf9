//! Runtimes other than Docker, end to end: a real scratch containerd serving
//! the CRI (pods made through it as the kubelet makes them: sandbox labels,
//! the kubelet's container labels, the service-link env), a real
//! `envparity-agent --runtime containerd`, beside a real dockerd host and the
//! real aggregator. Staging runs on Docker, production on containerd, the
//! same images from one registry: the mixed fleet every scenario starts from.
//!
//! A mixed fleet's engine facts are not compared across runtimes (Docker's
//! version and containerd's are not two versions of one thing), so a Docker
//! staging and a containerd production running the same images show no
//! finding. The CRI has no restart policy (the kubelet restarts): the
//! aggregator leaves containerd replicas out of that comparison, with no
//! policy. The harness's pods are on the node's network while Docker's test
//! containers have none, so the tests' policy ignores the network mode
//! (docs/runtimes.md) except where a test compares it. Every test asserts
//! the complete set of findings.

use std::path::PathBuf;
use std::time::Duration;

use envparity_tests::answer::{Findings, Hosts, Status};
use envparity_tests::{
    Agent, CliOutput, ContainerdHost, Error, Fleet, ImageSpec, Pod, PodContainer, Result, Run,
    RunningPod,
};

/// Agents register and report within this time on a loaded 2-core CI
/// machine. Less than the agents' resync interval (1 min): a change seen in
/// time was seen through containerd's events.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The policy of a mixed fleet: the network mode (the harness's pods on the
/// node's network, Docker's test containers on none) is not compared. The
/// restart policy, which the CRI does not have, needs no rule: the
/// aggregator leaves containerd replicas out of its comparison.
const POLICY: &str = "[runtime]\nignored = [\"network_mode\"]\n";

type Finding = (String, String, String);

/// `(kind, service, key)` of every finding, sorted; `None` when the output
/// is no list of findings (yet).
fn findings(out: &CliOutput) -> Option<Vec<Finding>> {
    let mut found: Vec<Finding> = out
        .try_answer::<Findings>()?
        .findings
        .into_iter()
        .map(|f| (f.kind, f.service, f.key))
        .collect();
    found.sort();
    Some(found)
}

/// The runtime `hosts` names for `host_id`.
fn runtime_of(hosts: &CliOutput, host_id: &str) -> Option<String> {
    hosts
        .answer::<Hosts>()
        .hosts
        .into_iter()
        .find(|h| h.host_id == host_id)
        .and_then(|h| h.engine.get("runtime").cloned())
}

/// `service_findings`, sorted: the only findings of a mixed fleet (no
/// engine fact is compared between a Docker and a containerd host).
fn expect(service_findings: &[(&str, &str, &str)]) -> Vec<Finding> {
    let mut all: Vec<Finding> = service_findings
        .iter()
        .map(|(k, s, key)| ((*k).to_owned(), (*s).to_owned(), (*key).to_owned()))
        .collect();
    all.sort();
    all
}

/// A staging Docker host and a production containerd node; `shop:1` and
/// `shop:2` (both baking `BAKED=1`) built on staging and pushed.
struct Mixed {
    // Dropped before the fleet: the node lives in the fleet's dir.
    node: ContainerdHost,
    fleet: Fleet,
}

fn mixed() -> Result<Mixed> {
    let fleet = Fleet::builder()
        .host("staging")
        .identity("production")
        .registry()
        .start()?;
    let staging = fleet.host("staging");
    for version in ["1", "2"] {
        let tag = format!("shop:{version}");
        staging.import_image(
            &tag,
            ImageSpec::new()
                .file("/app/version", version)
                .env("BAKED", "1"),
        )?;
        fleet.registry().push_from(staging, &tag)?;
    }
    let node = fleet.start_containerd("production")?;
    Ok(Mixed { node, fleet })
}

impl Mixed {
    /// `tag` pinned by its registry digest, as production should run it.
    fn image(&self, tag: &str) -> String {
        self.fleet
            .registry()
            .digest_of(self.fleet.host("staging"), tag)
            .expect("pushed from staging")
    }

    /// `shop/web` on staging, named by label.
    fn run_on_docker(&self, tag: &str, env: &[(&str, &str)]) -> Result<String> {
        let mut run = Run::new(self.image(tag))
            .name("web-1")
            .label("envparity.service", "shop/web");
        for (k, v) in env {
            run = run.env(*k, *v);
        }
        self.fleet.host("staging").run(run)
    }

    /// `shop/web` on production: pod `pod` labelled
    /// `app.kubernetes.io/name=shop`, its container `web`.
    fn run_on_containerd(
        &mut self,
        pod: &str,
        tag: &str,
        env: &[(&str, &str)],
    ) -> Result<RunningPod> {
        let mut web = PodContainer::new("web", &self.image(tag));
        for (k, v) in env {
            web = web.env(k, v);
        }
        self.node.run_pod(
            Pod::new("shop", pod)
                .label("app.kubernetes.io/name", "shop")
                .container(web),
        )
    }

    fn policy(&self) -> Result<PathBuf> {
        let path = self.fleet.dir().join("policy.toml");
        std::fs::write(&path, POLICY).map_err(Error::io(format!("write {}", path.display())))?;
        Ok(path)
    }

    fn start_aggregator(&self) -> Result<envparity_tests::Aggregator> {
        self.fleet
            .aggregator()
            .arg("--policy")
            .arg(self.policy()?.display().to_string())
            .start()
    }

    fn watch(&self) -> Result<(Agent, Agent)> {
        let staging = self.fleet.start_agent(self.fleet.host("staging"))?;
        let production = self.fleet.containerd_agent(&self.node).start()?;
        self.fleet
            .wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
        Ok((staging, production))
    }

    /// Waits until `diff staging production` shows exactly `expected`.
    fn diff_until(&self, expected: &[Finding]) -> Result<CliOutput> {
        self.fleet.cli_until(
            REPORT_TIMEOUT,
            &format!("the findings {expected:?}"),
            &["diff", "staging", "production"],
            |out| findings(out).as_deref() == Some(expected),
        )
    }
}

#[test]
fn a_docker_staging_and_a_containerd_production_running_the_same_image_agree() -> Result<()> {
    let mut m = mixed()?;
    m.run_on_docker("shop:1", &[("LOG_LEVEL", "info")])?;
    m.run_on_containerd("web-7f9c", "shop:1", &[("LOG_LEVEL", "info")])?;
    let _aggregator = m.start_aggregator()?;
    let _agents = m.watch()?;

    // Same digest, same explicit env: no service finding. The image's
    // BAKED=1 is image env on both sides; the kubelet's service links and
    // containerd's HOSTNAME are injected, never compared.
    m.diff_until(&expect(&[]))?;

    // One service, one replica per side: the pod sandbox (pause) is none.
    let service = m.fleet.cli(&["service", "shop/web"])?;
    for absent in ["KUBERNETES_SERVICE_HOST", "\"POD\"", "pause"] {
        assert!(!service.stdout.contains(absent), "{absent} in {service}");
    }
    let status = m.fleet.cli(&["status", "--all"])?;
    let services: Vec<String> = status
        .answer::<Status>()
        .services
        .into_iter()
        .map(|row| row.service)
        .collect();
    assert_eq!(services, ["shop/web"], "{status}");

    // `hosts` names each host's runtime.
    let hosts = m.fleet.cli(&["hosts"])?;
    assert_eq!(
        runtime_of(&hosts, "production").as_deref(),
        Some("containerd"),
        "{hosts}"
    );
    assert_eq!(
        runtime_of(&hosts, "staging").as_deref(),
        Some("docker"),
        "{hosts}"
    );
    Ok(())
}

#[test]
fn drift_on_containerd_is_found_through_its_events_and_injected_env_never() -> Result<()> {
    let mut m = mixed()?;
    m.run_on_docker("shop:1", &[("LOG_LEVEL", "info")])?;
    let pod = m.run_on_containerd(
        "web-7f9c",
        "shop:2",
        &[("LOG_LEVEL", "debug"), ("EXTRA", "1")],
    )?;
    let _aggregator = m.start_aggregator()?;
    let _agents = m.watch()?;

    // Other content, another value, a key more: each found once; BAKED
    // (baked into both images) and the service links are not.
    m.diff_until(&expect(&[
        ("env_extra_key", "shop/web", "EXTRA"),
        ("env_value", "shop/web", "LOG_LEVEL"),
        ("image_digest", "shop/web", ""),
    ]))?;

    // Redeployed as staging runs it: parity again, seen through
    // containerd's events (the agents' resync is slower than the wait).
    m.node.remove_pod(&pod)?;
    m.run_on_containerd("web-5d8b", "shop:1", &[("LOG_LEVEL", "info")])?;
    m.diff_until(&expect(&[]))?;

    // A second production replica with another value: replica drift.
    m.run_on_containerd("web-9a1c", "shop:1", &[("LOG_LEVEL", "debug")])?;
    m.diff_until(&expect(&[
        ("env_value", "shop/web", "LOG_LEVEL"),
        ("replica_drift", "shop/web", "env:LOG_LEVEL"),
    ]))?;
    Ok(())
}

#[test]
fn a_pods_host_network_and_ports_are_read_from_its_sandbox() -> Result<()> {
    let mut m = mixed()?;
    m.run_on_docker("shop:1", &[])?;
    let web = PodContainer::new("web", &m.image("shop:1"));
    let pod = m.node.run_pod(
        Pod::new("shop", "web-7f9c")
            .label("app.kubernetes.io/name", "shop")
            .port(8080, 18080)
            .container(web),
    )?;
    // What containerd answers, for the recorded answer of the agent's unit
    // tests (agent/src/runtime/cri_container_tests.rs); see it with
    // --nocapture.
    eprintln!(
        "PodSandboxStatus(verbose) info: {}",
        m.node.sandbox_status_info(&pod)?
    );
    // Every setting compared, by the default policy: the restart policy,
    // which the CRI does not have, is left out by the aggregator itself.
    let policy = m.fleet.dir().join("policy-network.toml");
    std::fs::write(&policy, "").map_err(Error::io(format!("write {}", policy.display())))?;
    let _aggregator = m
        .fleet
        .aggregator()
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    let _agents = m.watch()?;

    // The harness's pods are on the node's network; staging's container has
    // none (`--network=none`) and publishes no port.
    let out = m.diff_until(&expect(&[
        ("runtime_config", "shop/web", "network_mode"),
        ("runtime_config", "shop/web", "ports"),
    ]))?;
    let found = out.answer::<Findings>().findings;
    let values = |key: &str| {
        found
            .iter()
            .find(|f| f.key == key)
            .map(|f| (f.a.values.clone(), f.b().values.clone()))
    };
    assert_eq!(
        values("network_mode"),
        Some((vec!["none".to_owned()], vec!["host".to_owned()])),
        "{out}"
    );
    assert_eq!(
        values("ports"),
        Some((
            vec!["(none)".to_owned()],
            vec!["8080/tcp->:18080".to_owned()]
        )),
        "{out}"
    );
    Ok(())
}

/// Waits until `hosts` shows production in `state` with `containers`.
fn wait_for_production(m: &Mixed, state: &str, containers: u64) -> Result<()> {
    m.fleet
        .cli_until(
            REPORT_TIMEOUT,
            &format!("production {state} with {containers} container(s)"),
            &["hosts"],
            |out| {
                out.try_answer::<Hosts>().is_some_and(|answer| {
                    answer.hosts.iter().any(|h| {
                        h.host_id == "production"
                            && h.state == state
                            && u64::from(h.container_count) == containers
                    })
                })
            },
        )
        .map(drop)
}

#[test]
fn a_containerd_restart_is_an_outage_survived_and_its_events_followed_again() -> Result<()> {
    let mut m = mixed()?;
    m.run_on_docker("shop:1", &[])?;
    m.run_on_containerd("web-7f9c", "shop:1", &[])?;
    let _aggregator = m.start_aggregator()?;
    let (_staging, production) = m.watch()?;
    m.diff_until(&expect(&[]))?;

    // containerd stops: unreachable, not "no containers"; the last known
    // one stays.
    m.node.stop_engine()?;
    wait_for_production(&m, "engine_unreachable", 1)?;
    // Back, its container still running as on a node: fresh again.
    m.node.start_engine()?;
    wait_for_production(&m, "fresh", 1)?;
    // A deploy now is seen: the agent subscribed to containerd's events
    // again.
    m.run_on_containerd("web-2b3c", "shop:2", &[])?;
    let out = m.diff_until(&expect(&[
        ("image_digest", "shop/web", ""),
        ("replica_drift", "shop/web", "image"),
    ]))?;
    let log = production.log();
    assert!(
        log.contains("container event stream ended")
            || log.contains("container event stream failed"),
        "the agent did not see containerd go: {log}\n{out}"
    );
    Ok(())
}

#[test]
fn through_the_cri_allowlist_the_agent_reads_and_a_write_is_refused() -> Result<()> {
    let mut m = mixed()?;
    m.run_on_docker("shop:1", &[])?;
    let pod = m.run_on_containerd("web-7f9c", "shop:1", &[])?;
    let proxy = envparity_tests::CriReadOnlyProxy::start(&m.fleet, &m.node)?;
    let _aggregator = m.start_aggregator()?;
    let _staging = m.fleet.start_agent(m.fleet.host("staging"))?;
    let production = m.fleet.cri_agent(&m.node, proxy.socket()).start()?;
    m.fleet
        .wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    m.diff_until(&expect(&[]))?;
    // Its events pass too, and the stream outlives the agent's per-call
    // timeout (10 s; it once cut the subscription, which then fell back to
    // a full read at each resubscription): a deploy after it is seen.
    std::thread::sleep(Duration::from_secs(11));
    m.run_on_containerd("web-2b3c", "shop:2", &[])?;
    m.diff_until(&expect(&[
        ("image_digest", "shop/web", ""),
        ("replica_drift", "shop/web", "image"),
    ]))?;
    let log = production.log();
    assert!(
        log.contains("runtime=containerd"),
        "auto-detection did not say it found containerd: {log}"
    );
    // Through its event stream, not through resubscriptions (each of which
    // reads everything, and would hide a refused subscription).
    assert!(
        !log.contains("event stream failed") && !log.contains("event stream ended"),
        "the event subscription did not pass the allowlist: {log}"
    );
    // The pods' sandbox status (network mode, ports) passes too.
    assert!(
        !log.contains("pod sandbox status unreadable"),
        "PodSandboxStatus did not pass the allowlist: {log}"
    );

    // A write through the allowlist is refused; the pod is still there.
    let code = m.node.remove_pod_code(proxy.socket(), &pod)?;
    assert_eq!(code, tonic::Code::PermissionDenied);
    m.diff_until(&expect(&[
        ("image_digest", "shop/web", ""),
        ("replica_drift", "shop/web", "image"),
    ]))?;
    Ok(())
}
