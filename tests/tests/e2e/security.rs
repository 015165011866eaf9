//! Transport security end to end: the real aggregator serving TLS 1.3 with
//! the fleet's certificates (`envparity certs`), real agents on real
//! engines, and the CLI. An agent reports only for the host its certificate
//! names; agent and query credentials are kept apart; tokens work and wrong
//! ones do not.

use std::time::Duration;

use envparity_tests::{CliOutput, Fleet, Result, cargo_bin, checked, project_command};

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
        .tls()
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
    let mut ids: Vec<&str> = hosts.json["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|h| h["host_id"].as_str())
        .collect();
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
    assert_eq!(out.json["hosts"].as_array().map(Vec::len), Some(2), "{out}");
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
    let plain = server.replace("https://", "http://");
    CliOutput::run(&plain, &["hosts"])?.assert_code(2);

    Ok(())
}
