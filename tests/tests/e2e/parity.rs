//! envparity proper, end to end: real `dockerd` hosts and a real registry,
//! one real `envparity-agent` per host, the real `envparity serve`, and the
//! CLI's JSON and exit code (0 parity, 1 drift, 2 error).
//!
//! Every test asserts the complete set of findings — what must be flagged and
//! that nothing else is.

use std::time::Duration;

use envparity_tests::CliOutput;
use envparity_tests::answer::{Diff, Findings, Hosts, Service, Status};
use envparity_tests::{EXIT_MISMATCH, EXIT_PARITY, Fleet, ImageSpec, Result, Run};

/// Agents register within this time on a loaded 2-core CI machine.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "production"];

/// `(kind, severity, service, key, env_a, env_b)` of every finding.
type Summary = (String, String, String, String, String, String);

fn summaries(out: &CliOutput) -> Vec<Summary> {
    out.answer::<Findings>()
        .findings
        .into_iter()
        .map(|f| {
            let b = f.b.map(|b| b.environment).unwrap_or_default();
            (f.kind, f.severity, f.service, f.key, f.a.environment, b)
        })
        .collect()
}

fn summary(kind: &str, severity: &str, service: &str, key: &str, a: &str, b: &str) -> Summary {
    (
        kind.into(),
        severity.into(),
        service.into(),
        key.into(),
        a.into(),
        b.into(),
    )
}

/// dev, staging and production hosts; `shop:1` (which bakes `BAKED=1`) built
/// on dev, pushed, and pulled by the two others: one promoted artifact.
fn promoted_fleet() -> Result<Fleet> {
    let fleet = Fleet::builder()
        .host("dev")
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let registry = fleet.registry();
    let dev = fleet.host("dev");
    dev.import_image(
        "shop:1",
        ImageSpec::new().file("/app/version", "1").env("BAKED", "1"),
    )?;
    registry.push_from(dev, "shop:1")?;
    for name in ["staging", "production"] {
        registry.pull_to(fleet.host(name), "shop:1")?;
    }
    Ok(fleet)
}

/// `shop:1` by its registry digest: pinned, as production should run it.
fn pinned_shop(fleet: &Fleet) -> String {
    fleet
        .registry()
        .digest_of(fleet.host("dev"), "shop:1")
        .expect("shop:1 was pushed from dev")
}

fn shop(fleet: &Fleet) -> Run {
    Run::new(pinned_shop(fleet))
        .name("shop")
        .label("envparity.service", "shop")
        .env("MODE", "web")
}

/// Starts the aggregator and one agent per host, and waits until every host
/// is listed as fresh.
fn watch(fleet: &Fleet) -> Result<Vec<envparity_tests::Agent>> {
    let mut agents = Vec::new();
    for name in ENVIRONMENTS {
        agents.push(fleet.start_agent(fleet.host(name))?);
    }
    fleet.wait_for_hosts(&ENVIRONMENTS, REPORT_TIMEOUT)?;
    Ok(agents)
}

#[test]
fn one_promoted_image_with_the_same_config_everywhere_is_parity() -> Result<()> {
    let fleet = promoted_fleet()?;
    for name in ENVIRONMENTS {
        fleet.host(name).run(shop(&fleet))?;
    }
    let _aggregator = fleet.start_aggregator()?;
    let _agents = watch(&fleet)?;

    // By default, status sums the fleet up and shows only what drifts:
    // nothing here.
    let status = fleet.cli(&["status"])?;
    status.assert_code(EXIT_PARITY);
    assert_eq!(summaries(&status), vec![], "{status}");
    let answer: Status = status.answer();
    assert!(answer.services.is_empty(), "{status}");
    assert_eq!(answer.rows, "drifting", "{status}");
    let summary = answer.summary.expect("a summary");
    assert_eq!(
        (summary.services, summary.services_drifting, summary.hosts),
        (1, 0, 3),
        "{status}"
    );
    assert_eq!(answer.next_page, None, "{status}");
    // With --all, every service.
    let status = fleet.cli(&["status", "--all"])?;
    status.assert_code(EXIT_PARITY);
    assert_eq!(summaries(&status), vec![], "{status}");
    let answer: Status = status.answer();
    assert_eq!(answer.environments, ENVIRONMENTS);
    let [row] = &answer.services[..] else {
        panic!("one service expected: {status}");
    };
    assert_eq!(row.service, "shop");
    assert_eq!(row.cells.len(), 3);
    let digest = fleet.registry().digest_of(fleet.host("dev"), "shop:1")?;
    let digest = digest.split_once('@').expect("repo@digest").1;
    for cell in &row.cells {
        assert_eq!(cell.replicas, 1, "{status}");
        assert_eq!(cell.digests, [digest], "{status}");
        assert!(!cell.drift, "{status}");
    }
    for (a, b) in [("dev", "staging"), ("staging", "production")] {
        fleet.cli(&["diff", a, b])?.assert_code(EXIT_PARITY);
    }

    // The hosts are described by their real engines.
    let hosts = fleet.cli(&["hosts"])?;
    let answer: Hosts = hosts.answer();
    assert_eq!(answer.hosts.len(), 3, "{hosts}");
    for host in &answer.hosts {
        assert_eq!(host.engine["storage_driver"], "vfs", "{hosts}");
        assert_eq!(host.container_count, 1, "{hosts}");
        assert!(!host.host["kernel_version"].is_empty(), "{hosts}");
    }
    Ok(())
}

#[test]
fn production_on_a_different_digest_is_exactly_one_image_digest_finding() -> Result<()> {
    let fleet = promoted_fleet()?;
    let registry = fleet.registry();
    let prod = fleet.host("production");
    // Production runs a rebuild: other content, pushed under its own tag.
    prod.import_image(
        "shop:1-rebuilt",
        ImageSpec::new()
            .file("/app/version", "1b")
            .env("BAKED", "1"),
    )?;
    let rebuilt = registry.push_from(prod, "shop:1-rebuilt")?;
    let promoted = registry.digest_of(fleet.host("dev"), "shop:1")?;
    for name in ["dev", "staging"] {
        fleet.host(name).run(shop(&fleet))?;
    }
    prod.run(
        Run::new(rebuilt.clone())
            .name("shop")
            .label("envparity.service", "shop")
            .env("MODE", "web"),
    )?;
    let _aggregator = fleet.start_aggregator()?;
    let _agents = watch(&fleet)?;

    let diff = fleet.cli(&["diff", "staging", "production"])?;
    diff.assert_code(EXIT_MISMATCH);
    assert_eq!(
        summaries(&diff),
        vec![summary(
            "image_digest",
            "critical",
            "shop",
            "",
            "staging",
            "production"
        )],
        "{diff}"
    );
    let finding = &diff.answer::<Findings>().findings[0];
    assert_eq!(finding.basis, "registry_digest");
    let digest = |repo_digest: &str| {
        repo_digest
            .split_once('@')
            .expect("repo@digest")
            .1
            .to_owned()
    };
    assert_eq!(finding.a.values, [digest(&promoted)]);
    assert_eq!(finding.b().values, [digest(&rebuilt)]);
    assert_eq!(finding.a.hosts, ["staging"]);
    assert_eq!(finding.b().hosts, ["production"]);

    // dev and staging still agree; dev vs production is the earlier-stage
    // view of the same drift, so it is only info.
    fleet
        .cli(&["diff", "dev", "staging"])?
        .assert_code(EXIT_PARITY);
    let status = fleet.cli(&["status"])?;
    status.assert_code(EXIT_MISMATCH);
    assert_eq!(
        summaries(&status),
        vec![
            summary("image_digest", "info", "shop", "", "dev", "production"),
            summary(
                "image_digest",
                "critical",
                "shop",
                "",
                "staging",
                "production"
            ),
        ],
        "{status}"
    );
    Ok(())
}

#[test]
fn an_extra_and_a_changed_explicit_env_var_are_exactly_their_env_findings() -> Result<()> {
    let fleet = promoted_fleet()?;
    for name in ["dev", "staging"] {
        fleet
            .host(name)
            .run(shop(&fleet).env("DB_PASSWORD", "staging-secret-1"))?;
    }
    fleet.host("production").run(
        shop(&fleet)
            .env("DB_PASSWORD", "prod-secret-2")
            .env("FEATURE_FLAG", "on"),
    )?;
    let aggregator = fleet.start_aggregator()?;
    let agents = watch(&fleet)?;

    let diff = fleet.cli(&["diff", "staging", "production", "--service", "shop"])?;
    diff.assert_code(EXIT_MISMATCH);
    assert_eq!(
        summaries(&diff),
        vec![
            summary(
                "env_extra_key",
                "warning",
                "shop",
                "FEATURE_FLAG",
                "staging",
                "production"
            ),
            summary(
                "env_value",
                "warning",
                "shop",
                "DB_PASSWORD",
                "staging",
                "production"
            ),
        ],
        "{diff}"
    );
    let value = &diff.answer::<Findings>().findings[1];
    assert_eq!(value.basis, "fingerprint");
    for side in [&value.a, value.b()] {
        assert!(side.values[0].starts_with("fp:"), "{diff}");
    }
    // The values never left the hosts: in no output format, log or stored byte.
    let mut seen = vec![("diff output".to_owned(), diff.stdout.clone().into_bytes())];
    for format in ["json", "yaml", "table", "wide"] {
        let out = fleet
            .cli_command()?
            .args(["-o", format, "service", "shop"])
            .output()
            .expect("run envparity service");
        assert!(out.status.success(), "service -o {format} failed");
        seen.push((format!("service -o {format}"), out.stdout));
    }
    seen.push(("aggregator log".into(), aggregator.log().into_bytes()));
    for (i, agent) in agents.iter().enumerate() {
        seen.push((format!("agent {i} log"), agent.log().into_bytes()));
    }
    seen.extend(aggregator.stored().expect("what the store holds"));
    assert!(seen.len() >= 10, "checked too few places: {}", seen.len());
    // Control: the search does find what is stored (the name, not its value).
    let stored = seen
        .iter()
        .filter(|(place, _)| place.starts_with("store: "));
    assert!(
        stored
            .flat_map(|(_, bytes)| bytes.windows(b"FEATURE_FLAG".len()))
            .any(|w| w == b"FEATURE_FLAG"),
        "the store holds no snapshot: the search below would prove nothing"
    );
    for secret in ["staging-secret-1", "prod-secret-2"] {
        for (place, bytes) in &seen {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "secret value {secret:?} found in {place}");
        }
    }
    // The same environments in the other order: the sides swap.
    let back = fleet.cli(&["diff", "production", "staging", "--service", "shop"])?;
    assert_eq!(
        summaries(&back),
        vec![
            summary(
                "env_missing_key",
                "warning",
                "shop",
                "FEATURE_FLAG",
                "production",
                "staging"
            ),
            summary(
                "env_value",
                "warning",
                "shop",
                "DB_PASSWORD",
                "production",
                "staging"
            ),
        ],
        "{back}"
    );
    Ok(())
}

#[test]
fn env_that_only_the_image_bakes_in_is_never_drift() -> Result<()> {
    let fleet = promoted_fleet()?;
    // Production passes BAKED=1 explicitly, identical to the image's own
    // value: it is still the image's env, not configuration. A checker that
    // took the container's whole env would report it as set only there.
    fleet.host("dev").run(shop(&fleet))?;
    fleet.host("staging").run(shop(&fleet))?;
    fleet
        .host("production")
        .run(shop(&fleet).env("BAKED", "1"))?;
    let _aggregator = fleet.start_aggregator()?;
    let _agents = watch(&fleet)?;

    let status = fleet.cli(&["status"])?;
    status.assert_code(EXIT_PARITY);
    assert_eq!(summaries(&status), vec![], "{status}");
    let service = fleet.cli(&["service", "shop"])?;
    let instances = service.answer::<Service>().instances;
    assert!(!instances.is_empty(), "{service}");
    for instance in instances {
        let names: Vec<String> = instance.explicit_env.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["MODE"], "{service}");
    }
    Ok(())
}

#[test]
fn a_container_started_after_the_agents_is_reported_and_judged() -> Result<()> {
    let fleet = promoted_fleet()?;
    fleet.host("staging").run(shop(&fleet))?;
    fleet.host("production").run(shop(&fleet))?;
    fleet.host("dev").run(shop(&fleet))?;
    let aggregator = fleet.start_aggregator()?;
    let _agents = watch(&fleet)?;
    fleet.cli(&["status"])?.assert_code(EXIT_PARITY);

    // A second service appears in staging and production with different env:
    // the agents push on the Docker event, no restart or resync needed.
    let worker = |mode: &str| {
        Run::new(pinned_shop(&fleet))
            .name("worker")
            .label("envparity.service", "worker")
            .env("QUEUE", mode)
    };
    fleet.host("staging").run(worker("a"))?;
    fleet.host("production").run(worker("b"))?;
    let diff = fleet.cli_until(
        Duration::from_secs(10),
        "the worker's env drift to be reported",
        &["diff", "staging", "production"],
        // Until production's worker is reported too, the worker is (rightly)
        // a missing_service; wait for the settled state.
        |out| summaries(out).iter().any(|s| s.0 == "env_value"),
    )?;
    assert_eq!(
        summaries(&diff),
        vec![summary(
            "env_value",
            "warning",
            "worker",
            "QUEUE",
            "staging",
            "production"
        )],
        "{diff}"
    );
    // The change travelled as a delta (only the new container), unless the
    // agents run as before deltas (ENVPARITY_E2E_FULL_SNAPSHOTS).
    let log = aggregator.log();
    let deltas = log.matches("received=\"delta\"").count();
    if envparity_tests::full_snapshots() {
        assert_eq!(
            deltas, 0,
            "agents with --full-snapshots sent deltas:\n{log}"
        );
    } else {
        assert!(
            deltas >= 2,
            "the worker's arrival was not sent as deltas:\n{log}"
        );
    }
    Ok(())
}

#[test]
fn bad_queries_and_a_dead_server_are_errors_with_exit_2() -> Result<()> {
    let fleet = promoted_fleet()?;
    fleet.host("staging").run(shop(&fleet))?;
    let aggregator = fleet.start_aggregator()?;
    let _agent = fleet.start_agent(fleet.host("staging"))?;
    fleet.wait_for_hosts(&["staging"], REPORT_TIMEOUT)?;

    let unknown = fleet.cli(&["diff", "staging", "prodction"])?;
    unknown.assert_code(2);
    assert!(
        unknown.stderr.contains("\"prodction\" is unknown"),
        "{unknown}"
    );
    assert!(
        unknown.stderr.contains("known environments: staging"),
        "{unknown}"
    );
    assert!(unknown.stdout.is_empty(), "{unknown}");

    let service = fleet.cli(&["service", "nope"])?;
    service.assert_code(2);
    assert!(service.stderr.contains("\"nope\""), "{service}");

    let url = fleet.server()?;
    drop(aggregator);
    let dead = fleet.cli(&["status"])?;
    dead.assert_code(2);
    assert!(
        dead.stderr
            .contains(&format!("cannot reach the aggregator at {url}")),
        "{dead}"
    );
    Ok(())
}

#[test]
fn a_host_whose_agent_goes_silent_turns_stale_and_findings_say_so() -> Result<()> {
    let fleet = promoted_fleet()?;
    fleet.host("staging").run(shop(&fleet))?;
    fleet
        .host("production")
        .run(shop(&fleet).env("EXTRA", "1"))?;
    let _aggregator = fleet.aggregator().stale_after("3s").start()?;
    let _staging = fleet
        .agent(fleet.host("staging"))
        .heartbeat_interval("1s")
        .start()?;
    let mut prod = fleet
        .agent(fleet.host("production"))
        .heartbeat_interval("1s")
        .start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    // Heartbeats keep a quiet but live host fresh past the stale window.
    std::thread::sleep(Duration::from_secs(4));
    fleet.wait_for_hosts(&["staging", "production"], Duration::from_secs(1))?;

    prod.stop()?;
    let hosts = fleet.cli_until(
        Duration::from_secs(15),
        "production to be listed as stale",
        &["hosts"],
        |out| {
            out.try_answer::<Hosts>().is_some_and(|a| {
                a.hosts
                    .iter()
                    .any(|h| h.host_id == "production" && h.state == "stale")
            })
        },
    )?;
    let answer: Hosts = hosts.answer();
    let staging = answer
        .hosts
        .iter()
        .find(|h| h.host_id == "staging")
        .expect("staging listed");
    assert_eq!(staging.state, "fresh", "{hosts}");

    // Its last known data still counts, and says it is not current; the
    // silence is a finding of its own. `diff` answers from the ledger, where
    // the aggregator's tick records the silence within a second of the host
    // turning stale (as `status` always has), so it may take one tick.
    let diff = fleet.cli_until(
        Duration::from_secs(5),
        "the diff to name production's silence",
        &["diff", "staging", "production"],
        |out| {
            out.try_answer::<Findings>()
                .is_some_and(|a| a.findings.iter().any(|f| f.kind == "stale_host"))
        },
    )?;
    diff.assert_code(EXIT_MISMATCH);
    assert_eq!(
        summaries(&diff),
        vec![
            summary(
                "env_extra_key",
                "warning",
                "shop",
                "EXTRA",
                "staging",
                "production"
            ),
            summary("stale_host", "warning", "", "", "production", ""),
        ],
        "{diff}"
    );
    let findings = diff.answer::<Findings>().findings;
    let stale = &findings[1];
    assert_eq!(stale.host, "production", "{diff}");
    assert!(stale.b.is_none(), "{diff}");
    assert!(stale.a.values[0].ends_with('Z'), "{diff}");
    let finding = &findings[0];
    assert_eq!(finding.b().stale_hosts, ["production"]);
    assert!(finding.a.stale_hosts.is_empty());

    // A page at a time: each says what it leaves out, and the exit code is
    // the whole pair's, whichever page is shown.
    let first = fleet.cli(&["diff", "staging", "production", "--limit", "1"])?;
    first.assert_code(EXIT_MISMATCH);
    let page = first.answer::<Diff>();
    assert_eq!(page.findings.len(), 1, "{first}");
    assert_eq!(page.findings[0].id, findings[0].id, "{first}");
    assert_eq!(
        (page.findings_total, page.findings_left_out),
        (2, 1),
        "{first}"
    );
    assert_eq!((page.tally.warning, page.parity), (2, false), "{first}");
    let token = page.next_page.expect("a next page");
    let second = fleet.cli(&[
        "diff",
        "staging",
        "production",
        "--limit",
        "1",
        "--page",
        &token,
    ])?;
    second.assert_code(EXIT_MISMATCH);
    let page = second.answer::<Diff>();
    assert_eq!(page.findings.len(), 1, "{second}");
    assert_eq!(page.findings[0].id, findings[1].id, "{second}");
    assert_eq!(page.next_page, None, "{second}");
    let every = fleet.cli(&["diff", "staging", "production", "--all", "--limit", "1"])?;
    let all = every.answer::<Diff>();
    assert_eq!((all.findings.len(), all.next_page), (2, None), "{every}");
    Ok(())
}
