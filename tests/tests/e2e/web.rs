//! The web view (`envparity serve --web-listen`) over HTTP, against the real
//! aggregator fed by real agents on real `dockerd` hosts: what a page shows
//! is what `envparity status -o json` says, every answer carries the
//! security headers, only a query certificate sees a page, and a hostile
//! service name stays text.

use std::time::Duration;

use envparity_tests::answer::Status;
use envparity_tests::web::{Page, WebClient};
use envparity_tests::{Fleet, ImageSpec, Result, Run, free_port, wait_for};

/// Agents register within this time on a loaded 2-core CI machine.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// A service name a hostile agent (or container label) could report.
pub(super) const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// The `checkout` service, running `image`.
pub(super) fn checkout(image: impl Into<String>) -> Run {
    Run::new(image)
        .name("checkout")
        .label("envparity.service", "checkout")
}

/// The demo's story: staging runs `checkout:1` as built and tested
/// (`tested`), production the same tag rebuilt from other sources
/// (`rebuilt`, another digest), both from the fleet's registry; staging also
/// runs a service with a hostile name.
pub(super) struct Checkout {
    pub(super) fleet: Fleet,
    pub(super) tested: String,
    pub(super) rebuilt: String,
}

impl Checkout {
    pub(super) fn start() -> Result<Checkout> {
        Checkout::start_with(|_, run| run)
    }

    /// [`Checkout::start`], with `adjust` given each host's name and its
    /// `checkout` container to change before it runs.
    pub(super) fn start_with(adjust: impl Fn(&str, Run) -> Run) -> Result<Checkout> {
        let fleet = Fleet::builder()
            .host("staging")
            .host("production")
            .registry()
            .start()?;
        let registry = fleet.registry();
        let image = |revision: &str| {
            ImageSpec::new()
                .file("/app/revision", revision)
                .label("org.opencontainers.image.revision", revision)
                .label("org.opencontainers.image.version", "1")
        };
        let (staging, production) = (fleet.host("staging"), fleet.host("production"));
        staging.import_image("checkout:1", image("r1"))?;
        let tested = registry.push_from(staging, "checkout:1")?;
        production.import_image("checkout:1", image("r2"))?;
        let rebuilt = registry.push_from(production, "checkout:1")?;
        assert_ne!(tested, rebuilt);
        for (name, host) in [("staging", staging), ("production", production)] {
            host.run(adjust(name, checkout(registry.reference("checkout:1"))))?;
        }
        staging.run(
            Run::new(tested.clone())
                .name("hostile")
                .label("envparity.service", HOSTILE),
        )?;
        Ok(Checkout {
            fleet,
            tested,
            rebuilt,
        })
    }
}

fn digest(reference: &str) -> &str {
    reference.split_once('@').expect("repo@digest").1
}

fn assert_secure_headers(page: &Page, what: &str) {
    let csp = page
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP in {:?}", page.headers));
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(
        page.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        page.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
}

/// staging runs `checkout:1` as built and tested; production runs the same
/// tag rebuilt from other sources (another digest), the demo's story.
/// staging also runs a service with a hostile name.
#[test]
fn the_web_view_shows_what_status_says_to_a_query_certificate_only() -> Result<()> {
    let Checkout {
        fleet,
        tested,
        rebuilt,
    } = Checkout::start()?;
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let _aggregator = fleet.aggregator().arg("--web-listen").arg(&addr).start()?;
    let _agents = [fleet.start_agent(staging)?, fleet.start_agent(production)?];
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    let pki = fleet.pki()?;
    let query = WebClient::tls(&addr, pki, Some("client-cli"));

    // The overview's counters are status' summary, read before and after
    // the page (nothing changes in between: every host reported).
    let before = fleet.cli(&["status"])?;
    let overview = wait_for(REPORT_TIMEOUT, "the overview", || {
        Ok(query.get("/").ok().filter(|p| p.status == 200))
    })?;
    let after = fleet.cli(&["status"])?;
    let summary = after.answer::<Status>().summary.expect("a summary");
    let before = before.answer::<Status>().summary.expect("a summary");
    assert_eq!(before, summary, "{after}");
    for (name, value) in [
        ("services", summary.services),
        ("services_drifting", summary.services_drifting),
        ("hosts", summary.hosts),
        ("hosts_not_current", summary.hosts_not_current),
        ("critical", summary.findings.critical),
        ("warning", summary.findings.warning),
        ("info", summary.findings.info),
        ("pending", summary.findings.pending),
        ("waived", summary.findings.waived),
    ] {
        assert_eq!(
            overview.counter("", name),
            Some(value),
            "counter {name}: {}",
            overview.body
        );
    }
    assert!(summary.findings.critical > 0, "{after}");
    assert_secure_headers(&overview, "/");
    // The rebuilt checkout is critical in production, with a word.
    let row = &overview.body[overview
        .body
        .find("<tr data-service=\"checkout\">")
        .expect("a checkout row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("data-environment=\"production\" data-verdict=\"critical\""),
        "{row}"
    );
    assert!(row.contains(">critical</span>"), "{row}");
    // The hostile name is text.
    assert!(
        overview.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        overview.body
    );
    assert!(!overview.body.contains(HOSTILE));

    // The service page: different content, both digests.
    let service = query.get("/service?name=checkout")?;
    assert_eq!(service.status, 200, "{}", service.body);
    assert!(service.body.contains("different content"));
    assert!(service.body.contains(digest(&tested)));
    assert!(service.body.contains(digest(&rebuilt)));

    // The gate refuses the rebuild, naming what staging runs.
    let gate = query.get(&format!(
        "/gate?service=checkout&to=production&image={}",
        rebuilt.replace('@', "%40").replace(':', "%3A")
    ))?;
    assert_eq!(gate.status, 200, "{}", gate.body);
    assert!(gate.body.contains("REFUSED"), "{}", gate.body);
    assert!(
        gate.body
            .contains(&format!("staging runs {}", digest(&tested))),
        "{}",
        gate.body
    );

    // Refusals: a bad parameter names it, an unknown service says so, and
    // both carry the headers.
    let bad = query.get("/?drift=maybe")?;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("&quot;drift&quot;"), "{}", bad.body);
    assert_secure_headers(&bad, "400");
    let unknown = query.get("/service?name=ghost")?;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("no service &quot;ghost&quot;"),
        "{}",
        unknown.body
    );
    assert_secure_headers(&unknown, "404");

    // The certificate rules: none is 401, an agent's is 403, neither
    // shows a number of the fleet.
    for (client, status) in [
        (WebClient::tls(&addr, pki, None), 401),
        (WebClient::tls(&addr, pki, Some("agent-production")), 403),
    ] {
        let page = client.get("/")?;
        assert_eq!(page.status, status, "{}", page.body);
        assert!(!page.body.contains("data-counter"), "{}", page.body);
        assert_secure_headers(&page, "refusal");
    }
    // TLS offers HTTP/2 and HTTP/1.1.
    assert_eq!(query.alpn(&["h2", "http/1.1"])?.as_deref(), Some("h2"));
    assert_eq!(query.alpn(&["http/1.1"])?.as_deref(), Some("http/1.1"));

    // /events: the access of the pages (an agent's certificate gets 403),
    // and after a report an event with a greater generation. The overview
    // is read only when an event came, so the repair can be seen only
    // through one.
    let agent = WebClient::tls(&addr, pki, Some("agent-production")).events("/events")?;
    assert_eq!(agent.status, 403);
    let mut events = query.events("/events")?;
    assert_eq!(events.status, 200);
    assert!(
        events.content_type.starts_with("text/event-stream"),
        "{}",
        events.content_type
    );
    let generation = |data: Option<String>| -> Option<u64> { data?.parse().ok() };
    let deadline = std::time::Instant::now() + REPORT_TIMEOUT * 2;
    let first = generation(events.next_data(deadline)?).expect("a first event at once");
    production.rm("checkout")?;
    production.run(checkout(tested.clone()))?;
    let repaired = "data-environment=\"production\" data-verdict=\"parity\"";
    let mut last = first;
    loop {
        let next = generation(events.next_data(deadline)?)
            .expect("no event showed the repair within the deadline");
        assert!(next > last, "generations grow: {next} after {last}");
        last = next;
        let row = query.get("/?q=checkout")?.body;
        if row.contains(repaired) {
            break;
        }
    }
    Ok(())
}

/// Without TLS the web view follows gRPC's plain-text rule: loopback only
/// unless forced, refused before anything is bound, and `check-config`
/// shows the setting.
#[test]
fn a_plain_text_web_view_is_loopback_only_unless_forced() -> Result<()> {
    let fleet = Fleet::builder().start()?;
    let data = fleet.dir().join("data");
    let run = |args: &[&str]| -> Result<envparity_tests::Output> {
        let mut cmd = envparity_tests::project_command(&envparity_tests::cargo_bin("envparity")?);
        cmd.args(args).arg("--data-dir").arg(&data);
        envparity_tests::output(cmd, Duration::from_secs(20))
    };
    let out = run(&[
        "serve",
        "--insecure-plaintext",
        "--listen",
        "127.0.0.1:0",
        "--web-listen",
        "0.0.0.0:7799",
    ])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("web listen address 0.0.0.0:7799"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--insecure-plaintext-anywhere"),
        "{}",
        out.stderr
    );
    assert!(!data.exists(), "a refused serve stored nothing");
    let out = run(&[
        "check-config",
        "--insecure-plaintext",
        "--listen",
        "127.0.0.1:7600",
        "--web-listen",
        "127.0.0.1:7700",
    ])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("web_listen"), "{}", out.stdout);
    assert!(out.stdout.contains("127.0.0.1:7700"), "{}", out.stdout);

    // On loopback it serves pages in plain text, with the headers.
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let _aggregator = fleet
        .aggregator()
        .plaintext()
        .arg("--web-listen")
        .arg(&addr)
        .start()?;
    let client = WebClient::plain(&addr);
    let page = wait_for(REPORT_TIMEOUT, "the plain-text overview", || {
        Ok(client.get("/").ok())
    })?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.counter("", "hosts"), Some(0), "{}", page.body);
    assert_secure_headers(&page, "plain /");
    Ok(())
}
