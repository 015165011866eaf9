//! Podman beside Docker, end to end: a real scratch Podman service read by a
//! real `envparity-agent` through its Docker-compatible socket, which the
//! agent must recognise as Podman by itself (`--runtime auto`). Staging runs
//! on Docker, production on Podman, the same images from one registry.

use std::time::Duration;

use envparity_tests::answer::{Findings, Hosts};
use envparity_tests::{CliOutput, Fleet, ImageSpec, PodmanHost, Result, Run};

/// Agents register and report within this time on a loaded 2-core CI
/// machine; less than the agents' resync interval (1 min), so a change seen
/// in time was seen through Podman's events.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Podman's engine version differs from Docker's, and says so; then
/// `service_findings`.
fn expect(service_findings: &[(&str, &str, &str)]) -> Vec<Finding> {
    let mut all: Vec<Finding> = [("engine_version", "", "")]
        .iter()
        .chain(service_findings)
        .map(|(k, s, key)| ((*k).to_owned(), (*s).to_owned(), (*key).to_owned()))
        .collect();
    all.sort();
    all
}

fn diff_until(fleet: &Fleet, expected: &[Finding]) -> Result<CliOutput> {
    fleet.cli_until(
        REPORT_TIMEOUT,
        &format!("the findings {expected:?}"),
        &["diff", "staging", "production"],
        |out| findings(out).as_deref() == Some(expected),
    )
}

#[test]
fn a_docker_staging_and_a_podman_production_agree_and_drift_is_seen_through_podman_events()
-> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .identity("production")
        .registry()
        .start()?;
    let staging = fleet.host("staging");
    staging.import_image(
        "shop:1",
        ImageSpec::new().file("/app/version", "1").env("BAKED", "1"),
    )?;
    let image = fleet.registry().push_from(staging, "shop:1")?;
    // Dropped before the fleet: it lives in the fleet's dir.
    let podman: PodmanHost = fleet.start_podman("production")?;
    podman.pull(&image)?;
    let web = |level: &str| {
        Run::new(&image)
            .name("web-1")
            .label("envparity.service", "shop/web")
            .env("LOG_LEVEL", level)
    };
    staging.run(web("info"))?;
    podman.run(web("info"))?;

    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(staging)?;
    let production = fleet.podman_agent(&podman).start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    // Same digest, same explicit env, same settings: Podman's container,
    // HOSTNAME, PATH and TERM are injected, its working directory `/` is
    // Docker's none.
    diff_until(&fleet, &expect(&[]))?;
    let hosts = fleet.cli(&["hosts"])?;
    let runtime = hosts
        .answer::<Hosts>()
        .hosts
        .into_iter()
        .find(|h| h.host_id == "production")
        .and_then(|h| h.engine.get("runtime").cloned());
    assert_eq!(runtime.as_deref(), Some("podman"), "{hosts}");
    assert!(
        production.log().contains("runtime=podman"),
        "auto-detection did not say it found Podman: {}",
        production.log()
    );

    // Redeployed with another value: found, through Podman's events.
    podman.rm("web-1")?;
    podman.run(web("debug"))?;
    diff_until(&fleet, &expect(&[("env_value", "shop/web", "LOG_LEVEL")]))?;
    Ok(())
}
