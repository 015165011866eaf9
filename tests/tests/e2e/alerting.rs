//! Alerting and metrics end to end: a real drift on real engines fires in a
//! real Alertmanager and at Slack-, PagerDuty- and webhook-shaped receivers,
//! survives an aggregator restart without firing again, and resolves when
//! the drift is fixed; delivery retries as each answer asks; a real
//! Prometheus scrapes the aggregator and an agent, and `promtool` accepts
//! what they serve and the shipped rule file.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use envparity_tests::answer::{Alerts, Findings};
use envparity_tests::http::{self, Answer, Received, Receiver};
use envparity_tests::tools::PROMTOOL;
use envparity_tests::{
    Alertmanager, CliOutput, Error, Fleet, Prometheus, Result, Run, checked, free_port,
};
use serde_json::Value;
use sha2::Digest as _;

const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
const ALERT_TIMEOUT: Duration = Duration::from_secs(30);

/// A Standard Webhooks secret (`whsec_` + base64 of 24 bytes).
pub(super) const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub(super) fn write_secret(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(Error::io(format!("chmod {}", path.display())))?;
    Ok(path)
}

fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))?;
    Ok(path)
}

/// Verifies a Standard Webhooks signature with this test's own HMAC, not
/// the sender's code: `v1,` + base64(HMAC-SHA256(key, "id.ts.body")).
fn verify_signature(r: &Received) {
    use hmac::{Hmac, Mac};
    let id = r.header("webhook-id").expect("webhook-id header");
    let ts = r
        .header("webhook-timestamp")
        .expect("webhook-timestamp header");
    let sig = r
        .header("webhook-signature")
        .expect("webhook-signature header");
    let key = BASE64
        .decode(HOOK_SECRET.trim_start_matches("whsec_"))
        .expect("the test secret is base64");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    assert!(
        sig.split(' ').any(|s| s == expected),
        "signature {sig} does not verify (expected {expected})"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let ts: u64 = ts.parse().expect("a Unix timestamp");
    assert!(now.abs_diff(ts) < 300, "timestamp {ts} is not now ({now})");
}

fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T> {
    envparity_tests::wait_for(ALERT_TIMEOUT, what, || Ok(probe()))
}

fn label<'a>(alert: &'a Value, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or_default()
}

pub(super) fn metrics(url: &str) -> Result<String> {
    let r = http::get(url)?;
    assert_eq!(r.status, 200, "{url}: {}", r.body);
    Ok(r.body)
}

/// The value of the series `name{labels}` (labels as written, in order).
pub(super) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` on `text`: exit 0 and no complaint.
fn promtool_accepts(text: &str) -> Result<()> {
    let promtool = PROMTOOL.require()?;
    // promtool reads the text on stdin: from a file, through `sh -c exec`,
    // so that promtool itself is the child the harness spawned and
    // registered (a test reaping orphans never takes its exit status).
    let file = tempfile::NamedTempFile::new().map_err(Error::io("a file for promtool"))?;
    std::fs::write(file.path(), text).map_err(Error::io("write the metrics for promtool"))?;
    let mut check = std::process::Command::new("sh");
    check
        .arg("-c")
        .arg("exec \"$0\" check metrics < \"$1\"")
        .arg(promtool)
        .arg(file.path());
    let out = envparity_tests::output(check, envparity_tests::COMMAND_TIMEOUT)?;
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
    Ok(())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// Alerts at once; nothing but env drift matters; env drift is a warning.
const POLICY: &str = "grace = \"0s\"\nalert_grace = \"0s\"\n[pinning]\nrequired = []\nelsewhere = \"off\"\n[severity]\nenv_value = \"warning\"\n";

/// staging and production with one image, promoted through a registry;
/// returns the fleet and the image reference.
pub(super) fn two_stages() -> Result<(Fleet, String)> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    staging.import_image(
        "shop:1",
        envparity_tests::ImageSpec::new().file("/app/v", "1"),
    )?;
    fleet.registry().push_from(staging, "shop:1")?;
    fleet.registry().pull_to(production, "shop:1")?;
    let image = fleet.registry().reference("shop:1");
    Ok((fleet, image))
}

/// The `shop` service with `MODE=mode`.
pub(super) fn shop(image: &str, mode: &str) -> Run {
    Run::new(image)
        .name("shop")
        .label("envparity.service", "shop")
        .env("MODE", mode)
}

#[test]
fn a_real_drift_fires_everywhere_once_survives_a_restart_and_resolves_when_fixed() -> Result<()> {
    let (fleet, image) = two_stages()?;
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    let shop = |mode: &str| shop(&image, mode);
    staging.run(shop("web"))?;
    production.run(shop("web"))?;

    let alertmanager = Alertmanager::start(&fleet)?;
    let rx = Receiver::start()?;
    let dir = fleet.dir();
    write_secret(dir, "hook-secret", HOOK_SECRET)?;
    write_secret(dir, "slack-url", &rx.url("/slack"))?;
    write_secret(dir, "pd-key", "ROUTINGKEY0123")?;
    let metrics_port = free_port()?;
    let dead_port = free_port()?;
    let config = write_file(
        dir,
        "aggregator.toml",
        &format!(
            r#"metrics_listen = "127.0.0.1:{metrics_port}"
[alerts]
min_severity = "warning"
base_url = "https://envparity.test/"
[[alerts.sinks]]
name = "am"
type = "alertmanager"
url = "{am}"
resend_interval = "1s"
resolve_for = "30s"
[[alerts.sinks]]
name = "hook"
type = "webhook"
url = "{hook}"
secret_file = "hook-secret"
[[alerts.sinks]]
name = "slack"
type = "slack"
url_file = "slack-url"
[[alerts.sinks]]
name = "pd"
type = "pagerduty"
url = "{pd}"
routing_key_file = "pd-key"
[[alerts.sinks]]
name = "critical-only"
type = "webhook"
url = "{critical}"
secret_file = "hook-secret"
min_severity = "critical"
[[alerts.sinks]]
name = "dead"
type = "webhook"
url = "http://127.0.0.1:{dead_port}/gone"
secret_file = "hook-secret"
max_attempts = 2
backoff = "100ms"
[[alerts.sinks]]
name = "slow"
type = "webhook"
url = "{slow}"
secret_file = "hook-secret"
timeout = "60s"
"#,
            am = alertmanager.url(),
            hook = rx.url("/hook"),
            pd = rx.url("/pd"),
            critical = rx.url("/critical"),
            slow = rx.url("/slow"),
        ),
    )?;
    // A sink that takes longer to answer than any wait below must delay
    // nothing else.
    rx.always(
        "/slow",
        Answer::status(200).after(ALERT_TIMEOUT + Duration::from_secs(15)),
    );
    let policy = write_file(dir, "policy.toml", POLICY)?;
    let mut aggregator = fleet
        .aggregator()
        .arg("--config")
        .arg(config.display().to_string())
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    let _agents = (fleet.start_agent(staging)?, fleet.start_agent(production)?);
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    let alerts = fleet.cli(&["alerts"])?;
    assert!(alerts.answer::<Alerts>().alerts.is_empty(), "{alerts}");

    // The drift: production's shop runs with another MODE.
    production.rm("shop")?;
    production.run(shop("worker"))?;

    let am_alert =
        wait("the drift to fire in Alertmanager", || {
            alertmanager.alerts().ok()?.into_iter().find(|a| {
                label(a, "alertname") == "EnvParityDrift" && a["status"]["state"] == "active"
            })
        })?;
    // Exactly the finding the CLI shows, with its identity as labels.
    let findings = fleet.cli(&["findings"])?;
    let listed = findings.answer::<Findings>().findings;
    let [f] = &listed[..] else {
        panic!("one finding expected: {findings}");
    };
    assert_eq!(f.kind, "env_value", "{findings}");
    for (name, value) in [
        ("kind", &f.kind),
        ("severity", &f.severity),
        ("service", &f.service),
        ("key", &f.key),
        ("env_a", &f.a.environment),
        ("env_b", &f.b().environment),
    ] {
        assert_eq!(label(&am_alert, name), value, "label {name}: {am_alert}");
    }
    assert_eq!(
        (
            label(&am_alert, "env_a"),
            label(&am_alert, "env_b"),
            label(&am_alert, "key")
        ),
        ("staging", "production", "MODE")
    );
    assert!(
        am_alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("MODE")),
        "{am_alert}"
    );
    // Every sink links to the web view's page of the finding, at its row
    // (`f-` and 12 hex digits of the SHA-256 of its id).
    let anchor: String = sha2::Sha256::digest(f.id.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let page =
        format!("https://envparity.test/service?name=shop&a=staging&b=production#f-{anchor}");
    assert_eq!(am_alert["generatorURL"], page.as_str(), "{am_alert}");

    // The event sinks got it once, in their own shapes (while the slow sink
    // still holds its first request).
    let hook = wait("the webhook", || rx.requests("/hook").first().cloned())?;
    verify_signature(&hook);
    let body = hook.json();
    assert_eq!(body["type"], "envparity.alert.firing", "{body}");
    assert_eq!(body["data"]["id"], f.id.as_str(), "{body}");
    assert_eq!(body["data"]["key"], "MODE");
    assert_eq!(body["data"]["url"], page.as_str(), "{body}");
    let slack = wait("Slack", || rx.requests("/slack").first().cloned())?.json();
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.contains("1 firing")),
        "{slack}"
    );
    assert_eq!(slack["blocks"][0]["type"], "header", "{slack}");
    assert!(
        slack["blocks"][1]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!(
                "<{}|open in envparity>",
                page.replace('&', "&amp;")
            ))),
        "{slack}"
    );
    let pd = wait("PagerDuty", || rx.requests("/pd").first().cloned())?.json();
    assert_eq!(pd["event_action"], "trigger", "{pd}");
    assert_eq!(pd["routing_key"], "ROUTINGKEY0123");
    assert_eq!(pd["payload"]["severity"], "warning");
    assert_eq!(pd["links"][0]["href"], page.as_str(), "{pd}");
    assert_eq!(pd["client_url"], "https://envparity.test/");
    let dedup_key = pd["dedup_key"].clone();
    assert!(dedup_key.is_string(), "{pd}");

    // `alerts` lists it; the metrics count it, the dead sink's failure and
    // the others' deliveries (a dead sink blocks nobody).
    let listed = fleet.cli(&["alerts"])?;
    assert_eq!(listed.answer::<Alerts>().alerts[0].id, f.id, "{listed}");
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let text = wait("the dead sink to be counted as failed", || {
        let text = metrics(&metrics_url).ok()?;
        (sample(
            &text,
            "envparity_alert_notifications_failed_total{sink=\"dead\"}",
        )? >= 1.0)
            .then_some(text)
    })?;
    for sink in ["hook", "slack", "pd"] {
        let sent = sample(
            &text,
            &format!("envparity_alert_notifications_sent_total{{sink=\"{sink}\"}}"),
        );
        assert_eq!(sent, Some(1.0), "sink {sink}:\n{text}");
    }
    assert_eq!(
        sample(&text, "envparity_alerts_firing{severity=\"warning\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("envparity_findings{")
            && l.contains("kind=\"env_value\"")
            && l.contains("env_a=\"staging\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    promtool_accepts(&text)?;
    // Routing: a warning does not reach a critical-only sink.
    assert!(rx.requests("/critical").is_empty());
    // The slow sink got its request but has not answered: it held up no one.
    let slow = rx.requests("/slow");
    assert!(
        slow.len() <= 1,
        "the slow sink was sent {} requests",
        slow.len()
    );

    // A restart neither forgets nor re-fires what is open.
    aggregator.restart()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    std::thread::sleep(Duration::from_secs(3));
    let listed = fleet.cli(&["alerts"])?;
    assert_eq!(listed.answer::<Alerts>().alerts[0].id, f.id, "{listed}");
    for path in ["/hook", "/slack", "/pd"] {
        assert_eq!(
            rx.requests(path).len(),
            1,
            "{path} was notified again after a restart"
        );
    }

    // The fix: production runs what staging runs.
    production.rm("shop")?;
    production.run(shop("web"))?;
    wait("the alert to resolve in Alertmanager", || {
        let alerts = alertmanager.alerts().ok()?;
        (!alerts
            .iter()
            .any(|a| label(a, "alertname") == "EnvParityDrift" && a["status"]["state"] == "active"))
        .then_some(())
    })?;
    let resolved = wait("the webhook's resolution", || {
        rx.requests("/hook").get(1).cloned()
    })?;
    verify_signature(&resolved);
    assert_eq!(resolved.json()["type"], "envparity.alert.resolved");
    assert_ne!(resolved.header("webhook-id"), hook.header("webhook-id"));
    let pd = wait("PagerDuty's resolve", || rx.requests("/pd").get(1).cloned())?.json();
    assert_eq!(pd["event_action"], "resolve", "{pd}");
    assert_eq!(pd["dedup_key"], dedup_key);
    let slack = wait("Slack's resolution", || {
        rx.requests("/slack").get(1).cloned()
    })?
    .json();
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.contains("1 resolved")),
        "{slack}"
    );
    let listed = fleet.cli(&["alerts"])?;
    assert!(listed.answer::<Alerts>().alerts.is_empty(), "{listed}");
    Ok(())
}

#[test]
fn delivery_retries_on_429_and_5xx_honours_retry_after_and_never_retries_400() -> Result<()> {
    let fleet = Fleet::builder().start()?;
    let rx = Receiver::start()?;
    let dir = fleet.dir();
    write_secret(dir, "hook-secret", HOOK_SECRET)?;
    write_secret(dir, "pd-key", "ROUTINGKEY0123")?;
    let config = write_file(
        dir,
        "aggregator.toml",
        &format!(
            r#"[[alerts.sinks]]
name = "hook"
type = "webhook"
url = "{hook}"
secret_file = "hook-secret"
backoff = "50ms"
[[alerts.sinks]]
name = "refusing"
type = "pagerduty"
url = "{refusing}"
routing_key_file = "pd-key"
backoff = "50ms"
[[alerts.sinks]]
name = "failing"
type = "webhook"
url = "{failing}"
secret_file = "hook-secret"
max_attempts = 3
backoff = "50ms"
[[alerts.sinks]]
name = "sluggish"
type = "webhook"
url = "{sluggish}"
secret_file = "hook-secret"
timeout = "300ms"
max_attempts = 2
backoff = "50ms"
"#,
            hook = rx.url("/hook"),
            refusing = rx.url("/refusing"),
            failing = rx.url("/failing"),
            sluggish = rx.url("/sluggish"),
        ),
    )?;
    let config = config.display().to_string();
    let test = |sink: &str| {
        CliOutput::run(
            "http://127.0.0.1:1",
            &["alerts", "test", sink, "--config", &config],
        )
    };

    // 429 with Retry-After: 1, then 500, then accepted.
    rx.script(
        "/hook",
        [
            Answer::status(429).header("Retry-After", "1"),
            Answer::status(500),
        ],
    );
    let started = Instant::now();
    let out = test("hook")?;
    out.assert_code(0);
    let tries = rx.requests("/hook");
    assert_eq!(
        tries.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [429, 500, 200],
        "{out}"
    );
    assert!(
        tries[1].at.duration_since(tries[0].at) >= Duration::from_millis(950),
        "the retry after a 429 with Retry-After: 1 came after {:?}",
        tries[1].at.duration_since(tries[0].at)
    );
    let ids: BTreeSet<_> = tries
        .iter()
        .map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 1, "a retry keeps its webhook-id");
    for r in &tries {
        verify_signature(r);
    }
    assert!(started.elapsed() < Duration::from_secs(20));

    // 400 is final: one attempt, exit 2 with the sink's answer.
    rx.always("/refusing", Answer::status(400));
    let out = test("refusing")?;
    out.assert_code(2);
    assert_eq!(rx.requests("/refusing").len(), 1, "{out}");
    assert!(out.stderr.contains("400"), "{out}");

    // 5xx for ever: max_attempts, then exit 2.
    rx.always("/failing", Answer::status(503));
    let out = test("failing")?;
    out.assert_code(2);
    assert_eq!(rx.requests("/failing").len(), 3, "{out}");
    assert!(out.stderr.contains("gave up after 3 attempts"), "{out}");

    // No answer within the timeout is retried, then given up, and says so.
    rx.always(
        "/sluggish",
        Answer::status(200).after(Duration::from_secs(3)),
    );
    let started = Instant::now();
    let out = test("sluggish")?;
    out.assert_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout was not applied"
    );
    assert_eq!(rx.requests("/sluggish").len(), 2, "{out}");
    assert!(
        out.stderr.contains("no answer within the timeout of 300ms"),
        "{out}"
    );

    // An unknown sink names the configured ones.
    let out = test("nope")?;
    out.assert_code(2);
    assert!(
        out.stderr.contains("hook, refusing, failing, sluggish"),
        "{out}"
    );
    Ok(())
}

#[test]
fn prometheus_scrapes_the_aggregator_and_an_agent_and_loads_the_shipped_rules() -> Result<()> {
    let fleet = Fleet::builder().host("staging").start()?;
    let staging = fleet.host("staging");
    let (aggregator_port, agent_port) = (free_port()?, free_port()?);
    let _aggregator = fleet
        .aggregator()
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{aggregator_port}"))
        .start()?;
    let _agent = fleet
        .agent(staging)
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{agent_port}"))
        .start()?;
    fleet.wait_for_hosts(&["staging"], REPORT_TIMEOUT)?;

    let rules = repo_root().join("deploy/prometheus/envparity-rules.yml");
    let promtool = PROMTOOL.require()?;
    let mut check = std::process::Command::new(promtool);
    check.args(["check", "rules"]).arg(&rules);
    checked(check)?;

    for port in [aggregator_port, agent_port] {
        promtool_accepts(&metrics(&format!("http://127.0.0.1:{port}/metrics"))?)?;
    }
    let targets = [
        format!("127.0.0.1:{aggregator_port}"),
        format!("127.0.0.1:{agent_port}"),
    ];
    let prometheus = Prometheus::start(&fleet, &targets, &[&rules])?;
    wait("both targets up", || {
        let v = prometheus.api("targets").ok()?;
        let active = v["data"]["activeTargets"].as_array()?.clone();
        (active.len() == 2 && active.iter().all(|t| t["health"] == "up")).then_some(())
    })?;
    for (query, expect) in [
        ("envparity_build_info", 1.0),
        (
            "envparity_hosts{environment=\"staging\",state=\"fresh\"}",
            1.0,
        ),
        ("envparity_agent_build_info", 1.0),
    ] {
        wait(&format!("{query} in Prometheus"), || {
            let v = prometheus
                .api(&format!(
                    "query?query={}",
                    query
                        .replace('"', "%22")
                        .replace('{', "%7B")
                        .replace('}', "%7D")
                        .replace(',', "%2C")
                        .replace('=', "%3D")
                ))
                .ok()?;
            let value = v["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<f64>()
                .ok()?;
            (value == expect).then_some(())
        })?;
    }
    // The agent counts what it did.
    let text = metrics(&format!("http://127.0.0.1:{agent_port}/metrics"))?;
    assert!(
        sample(
            &text,
            "envparity_agent_reports_sent_total{type=\"snapshot\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    // The rules loaded.
    let rules = prometheus.api("rules")?;
    assert!(
        rules["data"]["groups"]
            .as_array()
            .is_some_and(|g| !g.is_empty()),
        "{rules}"
    );
    Ok(())
}

#[test]
fn a_notification_queued_when_the_aggregator_crashes_is_delivered_once_after_restart() -> Result<()>
{
    let (fleet, image) = two_stages()?;
    fleet.host("staging").run(shop(&image, "web"))?;
    fleet.host("production").run(shop(&image, "worker"))?;
    let dir = fleet.dir();
    write_secret(dir, "hook-secret", HOOK_SECRET)?;
    // The receiver is not up yet: every attempt fails until it is.
    let port = free_port()?;
    let config = write_file(
        dir,
        "aggregator.toml",
        &format!(
            "[[alerts.sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"hook-secret\"\nmax_attempts = 1000\nbackoff = \"200ms\"\ntimeout = \"2s\"\n"
        ),
    )?;
    let policy = write_file(dir, "policy.toml", POLICY)?;
    let mut aggregator = fleet
        .aggregator()
        .arg("--config")
        .arg(config.display().to_string())
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    let _agents = (
        fleet.start_agent(fleet.host("staging"))?,
        fleet.start_agent(fleet.host("production"))?,
    );
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    let firing = wait("the alert to fire", || {
        let out = fleet.cli(&["alerts"]).ok()?;
        Some(out.try_answer::<Alerts>()?.alerts.first()?.id.clone())
    })?;
    wait("a failed delivery attempt", || {
        aggregator
            .log()
            .contains("notification not accepted; will retry")
            .then_some(())
    })?;

    // kill -9 while the notification is queued, then bring the receiver up.
    aggregator.crash()?;
    let rx = Receiver::start_on(port)?;
    aggregator.restart()?;
    let delivered = wait("the queued notification", || {
        rx.requests("/hook").first().cloned()
    })?;
    verify_signature(&delivered);
    let body = delivered.json();
    assert_eq!(body["type"], "envparity.alert.firing", "{body}");
    assert_eq!(body["data"]["id"], firing.as_str());
    // Once: the restart re-fired nothing, and the outbox row is gone.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rx.requests("/hook").len(), 1);
    Ok(())
}
