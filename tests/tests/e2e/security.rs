//! Transport security end to end: the real aggregator serving TLS 1.3 with
//! the fleet's certificates (`envparity certs`), real agents on real
//! engines, and the CLI. An agent reports only for the host its certificate
//! names; agent and query credentials are kept apart; tokens work and wrong
//! ones do not.

use std::time::Duration;

use envparity_tests::answer::{Findings, Forgotten, Hosts};
use envparity_tests::{
    CliOutput, Fleet, Result, cargo_bin, checked, daemon_outputs, journaled_snapshots,
    project_command,
};

const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

fn wait_for_log(what: &str, log: impl Fn() -> String, needle: &str) -> Result<()> {
    envparity_tests::wait_until(REPORT_TIMEOUT, what, || log().contains(needle))
}

#[test]
fn with_mtls_an_agent_reports_only_for_its_host_and_queries_need_query_credentials() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .start()?;
    let pki = fleet.pki()?.to_owned();
    let file = |name: &str| pki.join(name).display().to_string();

    // A query token for CI, made by the CLI; the aggregator keeps its hash.
    let mut make = project_command(&cargo_bin("envparity")?);
    make.args(["query-token", "ci"]);
    let made = checked(make)?;
    let lines: Vec<&str> = made.lines().collect();
    let (token, hash_line) = (lines[1], lines[3]);
    assert!(
        token.starts_with("ept_") && hash_line.starts_with("ci sha256:"),
        "{made}"
    );
    let tokens = fleet.dir().join("tokens");
    std::fs::write(&tokens, format!("{hash_line}\n")).expect("write the tokens file");
    let token_file = fleet.dir().join("token");
    std::fs::write(&token_file, token).expect("write the token");
    let wrong_token = fleet.dir().join("wrong-token");
    std::fs::write(&wrong_token, "ept_not-the-token").expect("write a wrong token");

    let aggregator = fleet
        .aggregator()
        .arg("--query-tokens-file")
        .arg(tokens.display().to_string())
        .start()?;
    let server = aggregator.url();
    assert!(server.starts_with("https://"), "{server}");
    let _staging = fleet.start_agent(fleet.host("staging"))?;
    let _production = fleet.start_agent(fleet.host("production"))?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    // Staging's certificate claiming another host, and an agent with no
    // certificate: refused, logged, and nothing of them is stored.
    let spoof = fleet
        .agent(fleet.host("staging"))
        .host_id("intruder")
        .environment("production")
        .start()?;
    let anonymous = fleet
        .agent(fleet.host("production"))
        .host_id("anonymous")
        .without_certificate()
        .start()?;
    wait_for_log(
        "the spoofing agent to be refused",
        || spoof.log(),
        "may not report for host \"intruder\"",
    )?;
    wait_for_log(
        "the anonymous agent to be refused",
        || anonymous.log(),
        "reports need an agent client certificate",
    )?;
    wait_for_log(
        "the aggregator to log the spoof",
        || aggregator.log(),
        "report for another host refused",
    )?;
    let hosts = fleet.cli(&["hosts"])?;
    let answer: Hosts = hosts.answer();
    let mut ids: Vec<&str> = answer.hosts.iter().map(|h| h.host_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["production", "staging"], "{hosts}");

    // Queries: the CLI's query certificate (fleet.cli above), a token, but
    // not an agent certificate, no credentials, a wrong token or plain text.
    let ca = file("ca.pem");
    let query = |args: &[&str]| -> Result<CliOutput> {
        let mut all = vec!["--tls-ca", ca.as_str()];
        all.extend(args);
        CliOutput::run(&server, &all)
    };
    let token_arg = token_file.display().to_string();
    let out = query(&["--token-file", &token_arg, "hosts"])?;
    out.assert_code(0);
    assert_eq!(out.answer::<Hosts>().hosts.len(), 2, "{out}");
    let (agent_cert, agent_key) = (file("agent-staging.pem"), file("agent-staging-key.pem"));
    let out = query(&["--tls-cert", &agent_cert, "--tls-key", &agent_key, "hosts"])?;
    out.assert_code(2);
    assert!(out.stderr.contains("may not query"), "{out}");
    let out = query(&["hosts"])?;
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("need a query client certificate or a bearer token"),
        "{out}"
    );
    let wrong = wrong_token.display().to_string();
    let out = query(&["--token-file", &wrong, "hosts"])?;
    out.assert_code(2);
    assert!(out.stderr.contains("bearer token is not valid"), "{out}");
    // Plain text: refused by the CLI itself unless asked for, and a TLS
    // server does not answer it anyway.
    let plain = server.replace("https://", "http://");
    let out = CliOutput::run(&plain, &["hosts"])?;
    out.assert_code(2);
    assert!(out.stderr.contains("--insecure-plaintext"), "{out}");
    let out = CliOutput::run(&plain, &["--insecure-plaintext", "hosts"])?;
    out.assert_code(2);
    assert!(
        out.try_answer::<serde_json::Value>().is_none(),
        "no answer over plain text: {out}"
    );

    Ok(())
}

/// A dev host's certificate, bound to dev by `envparity certs --agent HOST
/// --environment dev`, cannot enrol its host in staging; an unbound one
/// still reports anywhere.
#[test]
fn an_agent_certificate_bound_to_an_environment_reports_for_it_only() -> Result<()> {
    let fleet = Fleet::builder().host("dev-1").host("dev-2").start()?;
    let pki = fleet.pki()?.to_owned();
    // Re-issue dev-1's certificate, bound to dev, from the same CA.
    let mut certs = project_command(&cargo_bin(envparity_tests::CLI_BIN)?);
    certs.arg("certs").arg("--dir").arg(&pki);
    certs.args(["--agent", "dev-1", "--environment", "dev"]);
    checked(certs)?;
    let aggregator = fleet.start_aggregator()?;

    let wrong = fleet
        .agent(fleet.host("dev-1"))
        .environment("staging")
        .start()?;
    wait_for_log(
        "the agent bound to dev to be refused in staging",
        || wrong.log(),
        "is bound to environment \"dev\"; it may not report for environment \"staging\"",
    )?;
    wait_for_log(
        "the aggregator to log it",
        || aggregator.log(),
        "report for another environment refused",
    )?;
    drop(wrong);
    let hosts = fleet.cli(&["hosts"])?;
    assert!(hosts.answer::<Hosts>().hosts.is_empty(), "{hosts}");

    // In its own environment it reports; the unbound certificate of dev-2
    // still reports wherever it says.
    let _right = fleet
        .agent(fleet.host("dev-1"))
        .environment("dev")
        .start()?;
    let _unbound = fleet
        .agent(fleet.host("dev-2"))
        .environment("staging")
        .start()?;
    fleet.wait_for_hosts(&["dev-1", "dev-2"], REPORT_TIMEOUT)?;
    let hosts = fleet.cli(&["hosts"])?;
    let answer: Hosts = hosts.answer();
    let envs: Vec<(&str, &str)> = answer
        .hosts
        .iter()
        .map(|h| (h.host_id.as_str(), h.environment.as_str()))
        .collect();
    assert!(envs.contains(&("dev-1", "dev")), "{hosts}");
    assert!(envs.contains(&("dev-2", "staging")), "{hosts}");
    Ok(())
}

/// `envparity hosts forget`: only an admin certificate may, it is logged
/// with who asked, the host's findings resolve, its history stays, and it
/// stays forgotten across a restart.
#[test]
fn only_an_admin_forgets_a_host_and_it_is_audited() -> Result<()> {
    use envparity_tests::grpc::{ReportClient, container, snapshot};
    let fleet = Fleet::builder()
        .identity("stage-1")
        .identity("prod-1")
        .start()?;
    let pki = fleet.pki()?.to_owned();
    let mut certs = project_command(&cargo_bin(envparity_tests::CLI_BIN)?);
    certs
        .arg("certs")
        .arg("--dir")
        .arg(&pki)
        .args(["--admin", "ops"]);
    checked(certs)?;
    let mut aggregator = fleet.start_aggregator()?;
    let push = |host: &str, environment: &str, image: &str| -> Result<()> {
        let mut c = container("shop");
        if let Some(i) = c.image.as_mut() {
            i.image_id = image.to_owned();
        }
        ReportClient::connect_as(&fleet, host)?
            .push(snapshot(host, environment, 1, vec![c]))
            .expect("stored");
        Ok(())
    };
    push("stage-1", "staging", &format!("sha256:{}", "1".repeat(64)))?;
    push(
        "prod-1",
        "production",
        &format!("sha256:{}", "2".repeat(64)),
    )?;
    let kinds = |out: &CliOutput| -> Vec<String> {
        out.answer::<Findings>()
            .findings
            .into_iter()
            .map(|f| f.kind)
            .collect()
    };
    assert!(kinds(&fleet.cli(&["findings"])?).contains(&"image_digest".to_owned()));

    // The CLI's query certificate may read, not forget.
    let out = fleet.cli(&["hosts", "forget", "prod-1"])?;
    out.assert_code(2);
    assert!(
        out.stderr.contains("needs an envparity-admin certificate"),
        "{out}"
    );
    assert_eq!(fleet.cli(&["hosts"])?.answer::<Hosts>().hosts.len(), 2);

    let path = |f: &str| pki.join(f).display().to_string();
    let admin = |args: &[&str]| -> Result<CliOutput> {
        let (ca, cert, key) = (
            path("ca.pem"),
            path("admin-ops.pem"),
            path("admin-ops-key.pem"),
        );
        let mut all = vec!["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
        all.extend(args);
        CliOutput::run(&aggregator.url(), &all)
    };
    let out = admin(&["hosts", "forget", "prod-1"])?;
    out.assert_code(0);
    let forgotten: Forgotten = out.answer();
    assert_eq!(
        (
            forgotten.host_id.as_str(),
            forgotten.environment.as_str(),
            forgotten.container_count
        ),
        ("prod-1", "production", 1),
        "{out}"
    );
    let out = admin(&["hosts", "forget", "prod-1"])?;
    out.assert_code(2);
    assert!(out.stderr.contains("no host \"prod-1\" is known"), "{out}");
    let log = aggregator.log();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("host forgotten"))
        .collect();
    assert_eq!(audit.len(), 1, "{log}");
    assert!(
        audit[0].contains("host=prod-1") && audit[0].contains("by=ops at 127.0.0.1:"),
        "{}",
        audit[0]
    );

    let hosts = fleet.cli(&["hosts"])?;
    assert_eq!(hosts.answer::<Hosts>().hosts.len(), 1, "{hosts}");
    assert!(!kinds(&fleet.cli(&["findings"])?).contains(&"image_digest".to_owned()));
    let history = fleet.cli(&["history", "shop"])?;
    assert!(
        history.stdout.contains("prod-1"),
        "history stays: {history}"
    );
    aggregator.restart()?;
    let hosts = fleet.cli(&["hosts"])?;
    let ids: Vec<String> = hosts
        .answer::<Hosts>()
        .hosts
        .into_iter()
        .map(|h| h.host_id)
        .collect();
    assert_eq!(ids, ["stage-1"], "{hosts}");
    Ok(())
}

#[test]
fn plain_text_is_served_only_when_asked_and_then_only_on_loopback() -> Result<()> {
    let fleet = Fleet::builder().host("plain").start()?;
    let data = fleet.dir().join("data");
    let run = |args: &[&str]| -> Result<envparity_tests::Output> {
        let mut cmd = project_command(&cargo_bin("envparity")?);
        cmd.args(args).arg("--data-dir").arg(&data);
        envparity_tests::output(cmd, Duration::from_secs(20))
    };
    let refused = |out: &envparity_tests::Output, wanted: &[&str]| {
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        for w in wanted {
            assert!(out.stderr.contains(w), "{w:?} missing: {}", out.stderr);
        }
    };
    // No TLS files and no --insecure-plaintext: serve does not start.
    let out = run(&["serve", "--listen", "127.0.0.1:0"])?;
    refused(
        &out,
        &[
            "listen address 127.0.0.1:0 is plain text",
            "--insecure-plaintext",
            "tls_cert",
        ],
    );
    // Asked for, but on every interface: refused unless forced.
    let out = run(&["serve", "--insecure-plaintext", "--listen", "0.0.0.0:0"])?;
    refused(&out, &["non-loopback", "--insecure-plaintext-anywhere"]);
    let out = run(&[
        "check-config",
        "--insecure-plaintext",
        "--listen",
        "0.0.0.0:7600",
    ])?;
    refused(&out, &["non-loopback"]);
    let out = run(&[
        "check-config",
        "--insecure-plaintext-anywhere",
        "--listen",
        "0.0.0.0:7600",
    ])?;
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("plain text, any address (insecure)"),
        "{}",
        out.stdout
    );
    assert!(
        !data.exists(),
        "nothing was stored by refused or checked configs"
    );

    // On loopback, when asked: it serves, says so in its log, and agents and
    // the CLI connect only with the same opt-in.
    let mut aggregator = fleet.aggregator().plaintext().start()?;
    let _agent = fleet.start_agent(fleet.host("plain"))?;
    fleet.wait_for_hosts(&["plain"], REPORT_TIMEOUT)?;
    assert!(
        aggregator
            .log()
            .contains("serving plain-text gRPC as asked"),
        "{}",
        aggregator.log()
    );
    let out = CliOutput::run(&aggregator.url(), &["hosts"])?;
    out.assert_code(2);
    assert!(out.stderr.contains("--insecure-plaintext"), "{out}");
    aggregator.stop()?;
    Ok(())
}

fn has_bytes(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_planted_secret_is_in_no_output_log_alert_metric_stored_byte_or_wire_byte() -> Result<()> {
    use super::alerting::{HOOK_SECRET, shop, two_stages, write_secret};
    use envparity_tests::http::Receiver;
    use envparity_tests::{Tap, free_port};

    // Each environment plants one secret in every shape that once went out
    // in clear: under a broad allowlist (`APP_*`), in the command line, in a
    // label. `SECRETS` lists every planted value.
    const SECRETS: [&str; 18] = [
        "planted-secret-staging-41",
        "planted-secret-prod-97",
        "pwd-staging-5a",
        "pwd-prod-5b",
        "libpq-staging-6a",
        "libpq-prod-6b",
        "jdbc-staging-7a",
        "jdbc-prod-7b",
        "token-staging-8a",
        "token-prod-8b",
        "userinfo-staging-9a",
        "userinfo-prod-9b",
        "flag-staging-10a",
        "flag-prod-10b",
        "nextarg-staging-11a",
        "nextarg-prod-11b",
        "label-staging-12a",
        "label-prod-12b",
    ];
    let (fleet, image) = two_stages()?;
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    for (host, i) in [(staging, 0), (production, 1)] {
        let planted = |n: usize| SECRETS[2 * n + i];
        host.run(
            shop(&image, "web")
                .env("DB_PASSWORD", planted(0))
                .env("LOG_LEVEL", "clear-value-7")
                .env("APP_MODE", "clear-value-8")
                .env("APP_DB_PWD", planted(1))
                .env(
                    "APP_PG",
                    format!("host=db port=5432 password={} user=app", planted(2)),
                )
                .env(
                    "APP_JDBC",
                    format!(
                        "jdbc:postgresql://db/app?user=app&password={}&ssl=true",
                        planted(3)
                    ),
                )
                .env(
                    "APP_API",
                    format!("https://api.example/v1?access_token={}", planted(4)),
                )
                .env(
                    "APP_CACHE",
                    format!("redis://app:{}@cache:6379/0", planted(5)),
                )
                .label(
                    "source",
                    format!("https://ci:{}@git.example/shop.git", planted(8)),
                )
                .cmd(&[
                    "sh",
                    "-c",
                    "exec sleep 3600",
                    "shop",
                    &format!("--db-password={}", planted(6)),
                    "--token",
                    planted(7),
                    "--port=8080",
                ]),
        )?;
    }

    // An alert sink and metrics, so the secret's finding goes everywhere.
    let rx = Receiver::start()?;
    let dir = fleet.dir();
    write_secret(dir, "hook-secret", HOOK_SECRET)?;
    let (metrics_port, agent_metrics_port) = (free_port()?, free_port()?);
    let config = dir.join("aggregator.toml");
    std::fs::write(
        &config,
        format!(
            "metrics_listen = \"127.0.0.1:{metrics_port}\"\n[[alerts.sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret_file = \"hook-secret\"\n",
            rx.url("/hook")
        ),
    )
    .expect("write the config");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "grace = \"0s\"\nalert_grace = \"0s\"\n[pinning]\nrequired = []\nelsewhere = \"off\"\n",
    )
    .expect("write the policy");
    // Plain text on loopback, so the tap below can read the encoded
    // snapshots themselves: with TLS it would only see ciphertext, and the
    // point is that the agent never encodes the secret at all.
    let mut aggregator = fleet
        .aggregator()
        .plaintext()
        .env("RUST_LOG", "debug")
        .arg("--config")
        .arg(config.display().to_string())
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    // Agents report through a tap that records every byte they send, with
    // DB_PASSWORD even asked for in clear (it must still be fingerprinted).
    let tap = Tap::start(
        free_port()?,
        format!("127.0.0.1:{}", aggregator.port())
            .parse()
            .expect("address"),
    )?;
    let agents = [
        fleet
            .agent(staging)
            .aggregator(&tap.url())
            .env("RUST_LOG", "debug")
            .clear_env("DB_PASSWORD,LOG_LEVEL,APP_*")
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{agent_metrics_port}"))
            .start()?,
        fleet
            .agent(production)
            .aggregator(&tap.url())
            .env("RUST_LOG", "debug")
            .clear_env("DB_PASSWORD,LOG_LEVEL,APP_*")
            .start()?,
    ];
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    envparity_tests::wait_until(
        REPORT_TIMEOUT,
        "the DB_PASSWORD alert at the webhook",
        || {
            rx.requests("/hook")
                .iter()
                .any(|r| String::from_utf8_lossy(&r.body).contains("DB_PASSWORD"))
        },
    )?;

    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for format in ["json", "yaml", "table", "wide"] {
        for args in [
            vec!["service", "shop"],
            vec!["status"],
            vec!["status", "--all"],
            vec!["findings"],
            vec!["alerts"],
            vec!["history", "shop"],
        ] {
            // Each answers (a second `-o` made every one a usage error
            // with nothing on stdout, and this loop vacuous).
            let out = fleet.cli_as(format, &args)?;
            assert!(out.code < 2 && !out.stdout.is_empty(), "{out}");
            seen.push((
                format!("{} -o {format}", args.join(" ")),
                out.stdout.into_bytes(),
            ));
        }
    }
    for r in rx.requests("/hook") {
        seen.push(("webhook body".into(), r.body.clone()));
    }
    seen.extend(daemon_outputs(
        &aggregator,
        &agents,
        metrics_port,
        agent_metrics_port,
    )?);
    let wire = tap.sent();
    seen.push(("agent → aggregator wire bytes".into(), wire.clone()));
    // The journal: with the aggregator gone, a new container's snapshot is
    // kept on disk, unsent.
    aggregator.stop()?;
    staging.run(
        shop(&image, "web")
            .name("shop-2")
            .env("DB_PASSWORD", SECRETS[0])
            .env("APP_DB_PWD", SECRETS[2])
            .env("LOG_LEVEL", "clear-value-7"),
    )?;
    let journaled = journaled_snapshots(
        &fleet.dir().join("state-staging").join("journal"),
        REPORT_TIMEOUT,
    )?;
    assert!(
        has_bytes(&journaled, "DB_PASSWORD") && has_bytes(&journaled, "shop-2"),
        "the journal holds the new snapshot"
    );
    seen.push(("staging agent's journal".into(), journaled));

    // Controls: each place searched holds what it should (the journal's
    // above), so finding nothing means something. The wire and the store carry the key name and
    // the clear-allowlisted value; the debug logs are debug logs.
    let has =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        has(&wire, "DB_PASSWORD") && has(&wire, "LOG_LEVEL"),
        "the tap saw no snapshot"
    );
    // The allowlist still works, and the redacted fields keep their shape:
    // the stored snapshots hold the clear value, the harmless arguments and
    // the stand-ins.
    for shown in [
        "clear-value-8",
        "--port=8080",
        "--db-password=<hmac:",
        "https://ci:<hmac:",
    ] {
        assert!(
            seen.iter()
                .any(|(p, b)| p.starts_with("store: ") && has(b, shown)),
            "{shown:?} is in no stored snapshot"
        );
    }
    assert!(
        seen.iter()
            .any(|(p, b)| p.starts_with("store: ") && has(b, "DB_PASSWORD")),
        "the store holds no snapshot"
    );
    assert!(
        has(&aggregator.log().into_bytes(), "DEBUG"),
        "the aggregator did not log at debug"
    );
    assert!(seen.len() >= 30, "checked too few places: {}", seen.len());
    for secret in SECRETS {
        for (place, bytes) in &seen {
            assert!(
                !has(bytes, secret),
                "secret value {secret:?} found in {place}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_agent_works_through_a_read_only_socket_proxy() -> Result<()> {
    use envparity_tests::tools::DOCKER;
    use envparity_tests::{ImageSpec, ReadOnlyProxy, Run};

    let fleet = Fleet::builder().host("ro").start()?;
    let host = fleet.host("ro");
    host.import_image("shop:1", ImageSpec::new().file("/v", "1"))?;
    let shop = |name: &str| {
        Run::new("shop:1")
            .name(name)
            .label("envparity.service", "shop")
    };
    // A mounted configuration file: read through the archive API's HEAD
    // and GET, which the proxy must pass (issue 20).
    let config = fleet.dir().join("ro-config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("app.yaml"), "feature: on\n").expect("config file");
    host.run(shop("shop-1").arg(format!("--volume={}:/etc/app:ro", config.display())))?;
    let proxy = ReadOnlyProxy::start(&fleet, host)?;

    // The proxy really is read-only: listing works, changing does not.
    // Through the harness's spawn, which registers the child: a concurrent
    // test reaping orphans never takes its exit status.
    let through_proxy = |args: &[&str]| {
        let mut docker = std::process::Command::new(DOCKER.path);
        docker.env("DOCKER_HOST", proxy.docker_host()).args(args);
        envparity_tests::output(docker, envparity_tests::COMMAND_TIMEOUT)
    };
    let ps = through_proxy(&["ps", "--format", "{{.Names}}"])?;
    assert!(ps.status.success(), "{ps:?}");
    assert_eq!(ps.stdout.trim(), "shop-1");
    for write in [
        &["rm", "-f", "shop-1"][..],
        &["run", "-d", "--network", "none", "shop:1", "sleep", "9"][..],
    ] {
        let out = through_proxy(write)?;
        assert!(!out.status.success(), "{write:?} must be refused: {out:?}");
        assert!(out.stderr.contains("403"), "{write:?}: {}", out.stderr);
    }

    // The agent needs nothing more: it reports the host, and follows the
    // engine's events through the proxy.
    let _aggregator = fleet.start_aggregator()?;
    let agent = fleet
        .agent(host)
        .docker_host(&proxy.docker_host())
        .start()?;
    let count = |n: u64| {
        move |out: &CliOutput| {
            out.try_answer::<Hosts>().is_some_and(|a| {
                a.hosts.iter().any(|h| {
                    h.host_id == "ro" && h.state == "fresh" && u64::from(h.container_count) == n
                })
            })
        }
    };
    fleet.cli_until(
        REPORT_TIMEOUT,
        "ro with its container",
        &["hosts"],
        count(1),
    )?;
    host.run(shop("shop-2"))?;
    fleet.cli_until(
        REPORT_TIMEOUT,
        "the container started later, seen through the proxy's event stream",
        &["hosts"],
        count(2),
    )?;
    // The configuration file came through the proxy, key by key.
    let service = fleet.cli(&["service", "shop"])?;
    assert!(
        service.stdout.contains("\"path\": \"/etc/app/app.yaml\"")
            && service.stdout.contains("\"state\": \"read\"")
            && service.stdout.contains("\"name\": \"feature\""),
        "{service}"
    );
    // No refusal by the proxy (bollard says "status code 403") and no error.
    // A bare "403" would match timestamps and hashes.
    let log = agent.log();
    assert!(
        !log.contains("status code 403") && !log.lines().any(|l| l.contains(" ERROR ")),
        "{log}"
    );
    Ok(())
}
