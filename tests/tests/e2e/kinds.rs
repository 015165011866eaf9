//! The finding kinds beyond the core slice, from real engines and a real
//! registry: a tag rebuilt between stages, unpinned images, replicas that
//! disagree, runtime settings, a service missing from a stage, another OS and
//! cgroup driver,
//! and the policy (expected-to-differ keys, waivers, reload) — plus the
//! commands built on them: `gate`, `check`, `explain`, `history`, `policy`.
//!
//! As in `parity.rs`, every test asserts the complete set of findings.

use std::time::Duration;

use envparity_tests::CliOutput;
use envparity_tests::answer::{
    Explain, Findings, Gate, History, Hosts, PolicyShow, SharedLayers, Status,
};
use envparity_tests::{EXIT_MISMATCH, EXIT_PARITY, Error, Fleet, ImageSpec, Result, Run};

const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// `(kind, severity, state, service, key, env_a, env_b)` of every finding.
type Summary = (String, String, String, String, String, String, String);

fn summaries(out: &CliOutput) -> Vec<Summary> {
    out.answer::<Findings>()
        .findings
        .into_iter()
        .map(|f| {
            let b = f.b.map(|b| b.environment).unwrap_or_default();
            (
                f.kind,
                f.severity,
                f.state,
                f.service,
                f.key,
                f.a.environment,
                b,
            )
        })
        .collect()
}

fn summary(kind: &str, severity: &str, service: &str, key: &str, a: &str, b: &str) -> Summary {
    (
        kind.into(),
        severity.into(),
        "active".into(),
        service.into(),
        key.into(),
        a.into(),
        b.into(),
    )
}

fn digest(repo_digest: &str) -> String {
    repo_digest
        .split_once('@')
        .expect("repo@digest")
        .1
        .to_owned()
}

#[test]
fn a_tag_rebuilt_between_stages_is_caught_and_the_gate_promotes_only_what_staging_ran() -> Result<()>
{
    let fleet = Fleet::builder()
        .host("build")
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let registry = fleet.registry();
    let build = fleet.host("build");
    // shop:2 is built and pushed; staging pulls it. Later the same tag is
    // rebuilt from other sources and pushed again; production pulls that.
    let image = |revision: &str| {
        ImageSpec::new()
            .file("/app/revision", revision)
            .label("org.opencontainers.image.revision", revision)
            .label("org.opencontainers.image.version", "2")
    };
    build.import_image("shop:2", image("r1"))?;
    let tested = registry.push_from(build, "shop:2")?;
    registry.pull_to(fleet.host("staging"), "shop:2")?;
    build.import_image("shop:2", image("r2"))?;
    let rebuilt = registry.push_from(build, "shop:2")?;
    assert_ne!(tested, rebuilt);
    registry.pull_to(fleet.host("production"), "shop:2")?;
    for name in ["staging", "production"] {
        fleet.host(name).run(
            Run::new(registry.reference("shop:2"))
                .name("shop")
                .label("envparity.service", "shop"),
        )?;
    }
    let _aggregator = fleet.start_aggregator()?;
    let _agents = [
        fleet.start_agent(fleet.host("staging"))?,
        fleet.start_agent(fleet.host("production"))?,
    ];
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    let status = fleet.cli(&["status"])?;
    status.assert_code(EXIT_MISMATCH);
    let tag = registry.reference("shop:2");
    assert_eq!(
        summaries(&status),
        vec![
            summary(
                "same_tag_different_digest",
                "critical",
                "shop",
                &tag,
                "staging",
                "production"
            ),
            summary(
                "image_digest",
                "critical",
                "shop",
                "",
                "staging",
                "production"
            ),
            summary("unpinned_image", "info", "shop", "", "staging", ""),
            summary("unpinned_image", "warning", "shop", "", "production", ""),
        ],
        "{status}"
    );
    let findings = status.answer::<Findings>().findings;
    let rebuilt_finding = &findings[0];
    assert_eq!(rebuilt_finding.a.values, [digest(&tested)]);
    assert_eq!(rebuilt_finding.b().values, [digest(&rebuilt)]);
    assert_eq!(rebuilt_finding.basis, "registry_digest");
    assert!(rebuilt_finding.first_seen.is_some(), "{status}");
    assert_eq!(findings[3].a.values, [tag.as_str()]);

    // check fails on warnings by default and on criticals when asked.
    fleet.cli(&["check"])?.assert_code(EXIT_MISMATCH);
    let critical = fleet.cli(&["check", "--fail-on", "critical"])?;
    critical.assert_code(EXIT_MISMATCH);
    assert_eq!(
        critical.answer::<Findings>().findings.len(),
        2,
        "{critical}"
    );
    let kinds = fleet.cli(&["findings", "--kind", "unpinned_image"])?;
    assert_eq!(kinds.answer::<Findings>().findings.len(), 2, "{kinds}");

    // explain: the two images' own labels, and no layer in common.
    let explain = fleet.cli(&["explain", "shop"])?;
    explain.assert_code(EXIT_PARITY);
    let answer: Explain = explain.answer();
    assert!(!answer.same_content, "{explain}");
    assert_eq!(answer.a.environment, "staging");
    assert_eq!(answer.a.images[0].revision, "r1", "{explain}");
    assert_eq!(answer.b.images[0].revision, "r2", "{explain}");
    assert_eq!(answer.a.images[0].digest, digest(&tested));
    assert_eq!(
        answer.shared_layers,
        Some(SharedLayers {
            shared: 0,
            a_total: 1,
            b_total: 1
        }),
        "{explain}"
    );

    // The gate lets through exactly what staging ran.
    let allowed = fleet.cli(&[
        "gate",
        "--service",
        "shop",
        "--to",
        "production",
        "--image",
        &tested,
    ])?;
    allowed.assert_code(EXIT_PARITY);
    let answer: Gate = allowed.answer();
    assert!(answer.allowed, "{allowed}");
    assert_eq!(answer.previous_environment, "staging");
    assert_eq!(answer.candidate, digest(&tested));
    assert!(answer.running_since.is_some(), "{allowed}");
    let refused = fleet.cli(&[
        "gate",
        "--service",
        "shop",
        "--to",
        "production",
        "--image",
        &rebuilt,
    ])?;
    refused.assert_code(EXIT_MISMATCH);
    let answer: Gate = refused.answer();
    assert!(!answer.allowed, "{refused}");
    let staging_runs = format!("staging runs {}", digest(&tested));
    assert!(
        answer.reasons.iter().any(|r| r.contains(&staging_runs)),
        "{refused}"
    );
    // Without --image, what production runs now is checked: the rebuild.
    let current = fleet.cli(&["gate", "--service", "shop", "--to", "production"])?;
    current.assert_code(EXIT_MISMATCH);
    assert_eq!(
        current.answer::<Gate>().candidate,
        digest(&rebuilt),
        "{current}"
    );
    // A tag is not something the gate can vouch for.
    let tagged = fleet.cli(&[
        "gate",
        "--service",
        "shop",
        "--to",
        "production",
        "--image",
        &tag,
    ])?;
    tagged.assert_code(2);
    assert!(tagged.stderr.contains("is not pinned"), "{tagged}");

    // history: both hosts' containers, and the findings that opened.
    let history = fleet.cli(&["history", "shop"])?;
    history.assert_code(EXIT_PARITY);
    let answer: History = history.answer();
    let mut events: Vec<(String, String, String)> = answer
        .events
        .into_iter()
        .map(|e| (e.environment, e.change, e.new_image))
        .collect();
    events.sort();
    assert_eq!(
        events,
        vec![
            ("production".into(), "added".into(), digest(&rebuilt)),
            ("staging".into(), "added".into(), digest(&tested)),
        ],
        "{history}"
    );
    let mut opened: Vec<String> = answer
        .findings
        .into_iter()
        .filter(|f| f.resolved_at.is_none())
        .map(|f| f.kind)
        .collect();
    opened.sort();
    opened.dedup();
    assert_eq!(
        opened,
        vec![
            "image_digest",
            "same_tag_different_digest",
            "unpinned_image"
        ],
        "{history}"
    );
    Ok(())
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(Error::io(format!("write {}", path.display())))
}

#[test]
fn a_fleet_key_rotation_is_a_key_mismatch_until_every_host_has_the_new_key() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    staging.import_image("shop:1", ImageSpec::new().file("/app/v", "1"))?;
    let pinned = fleet.registry().push_from(staging, "shop:1")?;
    fleet.registry().pull_to(production, "shop:1")?;
    for host in [staging, production] {
        host.run(
            Run::new(pinned.clone())
                .name("shop")
                .label("envparity.service", "shop")
                .env("DB_HOST", "db.internal")
                .env("LOG_LEVEL", "info"),
        )?;
    }
    // production already runs the new key: the same values, other fingerprints.
    let new_key = fleet.dir().join("new-fleet.key");
    envparity_tests::write_fingerprint_key(&new_key)?;
    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.agent(staging).clear_env("LOG_LEVEL").start()?;
    let mut rotated = fleet
        .agent(production)
        .clear_env("LOG_LEVEL")
        .fingerprint_key(&new_key)
        .start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    let diff = fleet.cli(&["diff", "staging", "production"])?;
    diff.assert_code(EXIT_MISMATCH);
    assert_eq!(
        summaries(&diff),
        vec![summary(
            "key_mismatch",
            "warning",
            "shop",
            "",
            "staging",
            "production"
        )],
        "no env_value for DB_HOST, which is equal: {diff}"
    );
    let finding = &diff.answer::<Findings>().findings[0];
    let (ids_a, ids_b) = (&finding.a.values, &finding.b().values);
    assert_ne!(ids_a, ids_b, "each side names its key id: {diff}");
    let text = &finding.summary;
    assert!(
        text.contains("1 key could not be compared: DB_HOST"),
        "{text}"
    );

    // The rotation completes: production goes back to the fleet key (as if
    // staging had rotated too); the finding resolves.
    rotated.stop()?;
    let _production = fleet.agent(production).clear_env("LOG_LEVEL").start()?;
    let parity = fleet.cli_until(
        REPORT_TIMEOUT,
        "parity once both hosts use one key",
        &["diff", "staging", "production"],
        |out| out.code == EXIT_PARITY,
    )?;
    assert_eq!(summaries(&parity), Vec::<Summary>::new(), "{parity}");
    Ok(())
}

#[test]
fn policy_replicas_runtime_missing_services_os_and_cgroup_from_real_engines() -> Result<()> {
    // production-2 runs no container; its engine uses the systemd cgroup
    // driver, the others cgroupfs.
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .host_with_config(
            "production-2",
            r#"{"exec-opts": ["native.cgroupdriver=systemd"]}"#,
        )
        .registry()
        .start()?;
    let registry = fleet.registry();
    let staging = fleet.host("staging");
    let production = fleet.host("production");
    staging.import_image("shop:1", ImageSpec::new().file("/app/v", "1"))?;
    let pinned = registry.push_from(staging, "shop:1")?;
    registry.pull_to(production, "shop:1")?;
    let shop = |name: &str, environment: &str, mode: &str| {
        Run::new(pinned.clone())
            .name(name)
            .label("envparity.service", "shop")
            .env("ENVIRONMENT", environment)
            .env("MODE", mode)
    };
    // Two staging replicas disagree on MODE; production runs as another user
    // and also runs a worker that staging never ran.
    staging.run(shop("shop-a", "staging", "web"))?;
    staging.run(shop("shop-b", "staging", "api"))?;
    production.run(shop("shop", "production", "web").arg("--user=1000"))?;
    production.run(
        Run::new(pinned.clone())
            .name("worker")
            .label("envparity.service", "worker"),
    )?;

    let policy = fleet.dir().join("policy.toml");
    let rules = |expected: &str| {
        format!(
            r#"[env]
expected_to_differ = [{expected}]

[[waivers]]
kind = "missing_service"
service = "worker"
reason = "worker is rolled out to staging next sprint"
owner = "team-shop"
expires = "2099-01-01"
"#
        )
    };
    write(&policy, &rules("\"ENVIRONMENT\""))?;
    let mut aggregator = fleet
        .aggregator()
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    // production's agent reads another OS from its host root.
    let root = fleet.dir().join("production-root");
    std::fs::create_dir_all(root.join("etc")).map_err(Error::io("create the host root"))?;
    write(
        &root.join("etc/os-release"),
        "ID=exoticos\nVERSION_ID=\"7\"\n",
    )?;
    let _agents = [
        fleet.start_agent(staging)?,
        fleet
            .agent(production)
            .arg("--host-root")
            .arg(root.display().to_string())
            .start()?,
        fleet
            .agent(fleet.host("production-2"))
            .environment("production")
            .start()?,
    ];
    fleet.wait_for_hosts(&["staging", "production", "production-2"], REPORT_TIMEOUT)?;

    // Every service: `worker`, whose only finding is waived, does not drift,
    // and the default view leaves it out.
    let status = fleet.cli(&["status", "--all"])?;
    status.assert_code(EXIT_MISMATCH);
    let mut waived = summary(
        "missing_service",
        "warning",
        "worker",
        "",
        "staging",
        "production",
    );
    waived.2 = "waived".into();
    assert_eq!(
        summaries(&status),
        vec![
            waived,
            summary(
                "replica_drift",
                "warning",
                "shop",
                "env:MODE",
                "staging",
                ""
            ),
            summary(
                "env_value",
                "warning",
                "shop",
                "MODE",
                "staging",
                "production"
            ),
            summary(
                "runtime_config",
                "warning",
                "shop",
                "user",
                "staging",
                "production"
            ),
            summary("os", "warning", "", "", "staging", "production"),
            summary("cgroup", "warning", "", "", "staging", "production"),
        ],
        "{status}"
    );
    // By default, only `shop` (which drifts) and its findings; the summary
    // still counts the waived one.
    let default = fleet.cli(&["status"])?;
    default.assert_code(EXIT_MISMATCH);
    let answer: Status = default.answer();
    let rows: Vec<&str> = answer.services.iter().map(|r| r.service.as_str()).collect();
    assert_eq!(rows, vec!["shop"], "{default}");
    assert_eq!(summaries(&default).len(), 5, "{default}");
    let summary = answer.summary.expect("a summary");
    assert_eq!(summary.findings.waived, 1, "{default}");
    assert_eq!(summary.findings.warning, 5, "{default}");
    assert_eq!(
        (summary.services, summary.services_drifting),
        (2, 1),
        "{default}"
    );
    let f = status.answer::<Findings>().findings;
    let owner = f[0].waiver.as_ref().map(|w| w.owner.as_str());
    assert_eq!(owner, Some("team-shop"), "{status}");
    assert_eq!(f[0].b().hosts, ["production"]);
    assert!(f[0].a.hosts.is_empty());
    assert_eq!(f[3].b().values, ["1000"], "{status}");
    assert_eq!(f[3].a.values, ["(none)"], "{status}");
    let os = f[4].b().values.join("\n");
    assert!(os.contains("exoticos 7"), "{status}");
    let cgroup = f[5].b().values.join("\n");
    assert!(
        cgroup.contains("/systemd") && cgroup.contains("/cgroupfs"),
        "{status}"
    );
    assert_eq!(f[5].b().hosts, ["production", "production-2"], "{status}");

    // policy show says what is in force; policy check validates offline.
    let show = fleet.cli(&["policy", "show"])?;
    show.assert_code(EXIT_PARITY);
    let answer: PolicyShow = show.answer();
    assert_eq!(answer.source, policy.display().to_string());
    assert!(answer.toml.contains("team-shop"), "{show}");
    let bad = fleet.dir().join("bad.toml");
    write(&bad, "[env]\nexpected_to_diffe = [\"MODE\"]\n")?;
    let check = fleet.cli(&["policy", "check", &bad.display().to_string()])?;
    check.assert_code(2);
    assert!(
        check.stderr.contains("line 2") && check.stderr.contains("expected_to_diffe"),
        "{check}"
    );

    // A broken policy on reload is refused and the last good one stays.
    let pid = aggregator.process().expect("aggregator process").pid();
    let hangup = || {
        let mut kill = std::process::Command::new("kill");
        kill.args(["-HUP", &pid.to_string()]);
        envparity_tests::checked(kill)
    };
    write(&policy, "[env]\nexpected_to_diffe = [\"MODE\"]\n")?;
    hangup()?;
    aggregator
        .process()
        .expect("aggregator process")
        .wait_for_log("policy reload refused", Duration::from_secs(10))?;
    assert_eq!(summaries(&fleet.cli(&["status", "--all"])?).len(), 6);

    // A good one applies at once: MODE may now differ, across and within
    // environments.
    write(&policy, &rules("\"ENVIRONMENT\", \"MODE\""))?;
    hangup()?;
    let status = fleet.cli_until(
        Duration::from_secs(10),
        "the reloaded policy to apply",
        &["status", "--all"],
        |out| summaries(out).len() == 4,
    )?;
    let kinds: Vec<String> = summaries(&status).into_iter().map(|s| s.0).collect();
    assert_eq!(
        kinds,
        vec!["missing_service", "runtime_config", "os", "cgroup"],
        "{status}"
    );
    Ok(())
}

/// A one-off `docker run` with no name and no label, beside a service that
/// runs in both stages: the engine names it (`naughty_wilson`), the agent
/// reports it unmanaged, and the aggregator raises one `unmanaged_container`
/// info finding on its host, not a `missing_service` warning under its
/// random name; `hosts` lists it, and a policy turns it off.
#[test]
fn a_one_off_docker_run_is_unmanaged_not_a_missing_service() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let registry = fleet.registry();
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    staging.import_image("shop:1", ImageSpec::new().file("/app/v", "1"))?;
    let pinned = registry.push_from(staging, "shop:1")?;
    registry.pull_to(production, "shop:1")?;
    for host in [staging, production] {
        host.run(
            Run::new(pinned.clone())
                .name("shop")
                .label("envparity.service", "shop"),
        )?;
    }
    let id = staging.run(Run::new(pinned.clone()))?;
    let inspected = staging.inspect(id.trim())?;
    let name = inspected["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    assert!(name.contains('_'), "docker named it {name:?}");

    let policy = fleet.dir().join("policy.toml");
    write(&policy, "")?;
    let mut aggregator = fleet
        .aggregator()
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    let _agents = [fleet.start_agent(staging)?, fleet.start_agent(production)?];
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    let findings = fleet.cli(&["findings"])?;
    findings.assert_code(EXIT_MISMATCH);
    assert_eq!(
        summaries(&findings),
        vec![summary(
            "unmanaged_container",
            "info",
            &name,
            &name,
            "staging",
            ""
        )],
        "{findings}"
    );
    let answer: Findings = findings.answer();
    assert_eq!(answer.findings[0].host, "staging", "{findings}");
    assert_eq!(answer.findings[0].basis, "unmanaged", "{findings}");

    // `status` has no row for it (the service it is named after is not
    // its own): every row is a managed service, here `shop` alone, which
    // runs the same everywhere; the finding is listed apart.
    let status = fleet.cli(&["status", "--all"])?;
    status.assert_code(EXIT_MISMATCH);
    let shown: Status = status.answer();
    let rows: Vec<&str> = shown.services.iter().map(|r| r.service.as_str()).collect();
    assert_eq!(rows, vec!["shop"], "{status}");
    assert_eq!(
        summaries(&status),
        vec![summary(
            "unmanaged_container",
            "info",
            &name,
            &name,
            "staging",
            ""
        )],
        "{status}"
    );
    let default = fleet.cli(&["status"])?;
    let shown: Status = default.answer();
    assert!(shown.services.is_empty(), "nothing drifts: {default}");

    let hosts = fleet.cli(&["hosts"])?;
    let listed: Hosts = hosts.answer();
    let unmanaged: Vec<(&str, &[String], u32)> = listed
        .hosts
        .iter()
        .map(|h| (h.host_id.as_str(), &h.unmanaged[..], h.container_count))
        .collect();
    assert_eq!(
        unmanaged,
        vec![
            ("staging", &[name.clone()][..], 2),
            ("production", &[][..], 1)
        ],
        "{hosts}"
    );

    // A team that runs ad-hoc containers everywhere turns them off.
    write(&policy, "[unmanaged]\nreport = \"off\"\n")?;
    let pid = aggregator.process().expect("aggregator process").pid();
    let mut kill = std::process::Command::new("kill");
    kill.args(["-HUP", &pid.to_string()]);
    envparity_tests::checked(kill)?;
    let quiet = fleet.cli_until(
        Duration::from_secs(10),
        "the reloaded policy to drop the unmanaged container",
        &["findings"],
        |out| out.code == EXIT_PARITY,
    )?;
    assert_eq!(summaries(&quiet), vec![], "{quiet}");
    Ok(())
}
