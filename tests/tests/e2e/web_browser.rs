//! The web view in a real browser: Debian's headless Chromium, driven over
//! WebDriver ([`envparity_tests::browser`]), reads the pages of a real
//! aggregator fed by real agents on real `dockerd` hosts. The aggregator
//! serves plain text on loopback here: the browser has no client
//! certificate to present, and the token login is not built yet
//! (docs/web.md); the certificate rules are covered over HTTP (web.rs).

use std::time::Duration;

use envparity_tests::answer::Status;
use envparity_tests::browser::{Browser, BrowserOptions};

use super::web::checkout;
use envparity_tests::{Fleet, ImageSpec, Result, Run, free_port, wait_for};

/// Agents register within this time on a loaded 2-core CI machine.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[test]
fn a_browser_sees_the_rebuilt_checkout_critical_the_gate_refuse_and_filters_work_without_javascript()
-> Result<()> {
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
    };
    let (staging, production) = (fleet.host("staging"), fleet.host("production"));
    staging.import_image("checkout:1", image("r1"))?;
    let tested = registry.push_from(staging, "checkout:1")?;
    production.import_image("checkout:1", image("r2"))?;
    let rebuilt = registry.push_from(production, "checkout:1")?;
    for host in [staging, production] {
        host.run(checkout(registry.reference("checkout:1")))?;
    }
    staging.run(
        Run::new(tested.clone())
            .name("hostile")
            .label("envparity.service", HOSTILE),
    )?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let _aggregator = fleet
        .aggregator()
        .plaintext()
        .arg("--web-listen")
        .arg(format!("127.0.0.1:{port}"))
        .start()?;
    let _agents = [fleet.start_agent(staging)?, fleet.start_agent(production)?];
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    let status = fleet.cli(&["status"])?;

    let browser = Browser::start(&fleet, BrowserOptions::default())?;
    // The overview: checkout critical in production, counters as status.
    let cell = "tr[data-service=\"checkout\"] td[data-environment=\"production\"]";
    wait_for(REPORT_TIMEOUT, "the overview in the browser", || {
        browser.goto(&format!("{base}/"))?;
        Ok(browser.find(cell).is_ok().then_some(()))
    })?;
    assert!(
        browser.text(cell)?.starts_with("critical"),
        "{}",
        browser.text(cell)?
    );
    let summary = status.answer::<Status>().summary.expect("a summary");
    for (name, value) in [
        ("services", summary.services),
        ("services_drifting", summary.services_drifting),
        ("hosts", summary.hosts),
        ("critical", summary.findings.critical),
        ("warning", summary.findings.warning),
        ("info", summary.findings.info),
    ] {
        let shown = browser.text(&format!("dl.counters dd[data-counter=\"{name}\"]"))?;
        assert_eq!(shown, value.to_string(), "{name}");
    }
    // The hostile name is text: no image element came of it.
    let hostile = browser.text("tr[data-service*=\"onerror\"] th")?;
    assert_eq!(hostile, HOSTILE);
    assert!(
        browser.find("#grid img").is_err(),
        "markup from a service name"
    );
    assert_eq!(browser.execute("return document.images.length")?, 0);

    // The gate, through its form: REFUSED, naming staging's digest.
    browser.goto(&format!("{base}/gate"))?;
    browser.find("input[name=service]")?.fill("checkout")?;
    browser.find("input[name=to]")?.fill("production")?;
    browser.find("input[name=image]")?.fill(&rebuilt)?;
    browser.find("form button[type=submit]")?.click()?;
    let verdict = browser.wait_text("#verdict", |t| t.contains("REFUSED"))?;
    assert!(verdict.contains("REFUSED"), "{verdict}");
    let staging_digest = tested.split_once('@').expect("repo@digest").1;
    assert!(
        verdict.contains(&format!("staging runs {staging_digest}")),
        "{verdict}"
    );
    assert!(
        browser.url()?.contains("service=checkout"),
        "the verdict is a link"
    );

    // Each page, light and dark, wide and at 390 px: the theme chosen with
    // the switch wins over the system's (which says the opposite), nothing
    // overflows the narrow window sideways (wide tables scroll in their own
    // box), axe-core finds no serious or critical violation (wide, in both
    // themes), and the screenshots (kept with the fleet's dir under
    // ENVPARITY_E2E_KEEP) are not blank.
    let gate = format!(
        "/gate?service=checkout&to=production&image={}",
        rebuilt.replace('@', "%40").replace(':', "%3A")
    );
    let pages = [
        ("overview", "/"),
        ("service", "/service?name=checkout"),
        ("findings", "/findings"),
        ("diff", "/diff?a=staging&b=production"),
        ("hosts", "/hosts"),
        ("gate", gate.as_str()),
    ];
    for (width, height) in [(1280, 900), (390, 844)] {
        browser.resize(width, height)?;
        for dark in [false, true] {
            browser.color_scheme(!dark)?;
            choose_theme(&browser, &base, if dark { "dark" } else { "light" })?;
            for (name, path) in pages {
                browser.goto(&format!("{base}{path}"))?;
                let background =
                    browser.execute("return getComputedStyle(document.body).backgroundColor")?;
                let expected = if dark {
                    "rgb(13, 17, 23)"
                } else {
                    "rgb(255, 255, 255)"
                };
                assert_eq!(background, expected, "{name} dark={dark}");
                let overflow = browser.execute(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                )?;
                assert_eq!(overflow, 0, "{name} overflows sideways at {width} px");
                let scheme = if dark { "dark" } else { "light" };
                let file = browser
                    .dir()
                    .join(format!("{name}-{width}x{height}-{scheme}.png"));
                if width == 1280 {
                    let violations = browser.accessibility_violations()?;
                    assert!(
                        violations.is_empty(),
                        "{name} dark={dark}: axe-core finds {violations:#?}"
                    );
                }
                let bytes = browser.screenshot(&file)?;
                eprintln!("{}: {bytes} bytes", file.display());
                assert!(
                    bytes > 4_000,
                    "{} looks blank ({bytes} bytes)",
                    file.display()
                );
            }
        }
    }

    // Back to "System": the page follows the system again.
    choose_theme(&browser, &base, "system")?;
    for dark in [true, false] {
        browser.color_scheme(dark)?;
        browser.goto(&format!("{base}/"))?;
        assert_eq!(
            browser.execute("return getComputedStyle(document.body).backgroundColor")?,
            if dark {
                "rgb(13, 17, 23)"
            } else {
                "rgb(255, 255, 255)"
            },
            "the system's theme, dark={dark}"
        );
    }

    // A repair turns the cell to parity in the open page, without a reload
    // (the page script listens to /events and, when the generation moves,
    // asks for the page and swaps the main part).
    browser.goto(&format!("{base}/"))?;
    browser.execute("window.notReloaded = true; return 0")?;
    let live = "return document.documentElement.getAttribute('data-live')";
    wait_for(REPORT_TIMEOUT, "the page to listen to /events", || {
        Ok((browser.execute(live)? == "events").then_some(()))
    })?;
    let production = fleet.host("production");
    production.rm("checkout")?;
    production.run(checkout(tested.clone()))?;
    let started = std::time::Instant::now();
    wait_for(REPORT_TIMEOUT, "the production cell to show parity", || {
        Ok(browser
            .text(cell)
            .ok()
            .filter(|t| t.starts_with("parity"))
            .map(drop))
    })?;
    assert_eq!(
        browser.execute("return window.notReloaded === true")?,
        true,
        "the page was reloaded"
    );
    assert_eq!(
        browser.execute(live)?,
        "events",
        "the page fell back to polling"
    );
    eprintln!(
        "docker run to the cell turning to parity in the open page: {:?}",
        started.elapsed()
    );
    drop(browser);

    // Without JavaScript the filters still work: a GET form, all in the URL.
    let plain = Browser::start(
        &fleet,
        BrowserOptions {
            javascript: false,
            width: 390,
            height: 844,
        },
    )?;
    plain.goto(&format!("{base}/"))?;
    plain.find("input[name=q]")?.fill("CHECK")?;
    plain.find("select[name=drift]")?.select("yes")?;
    plain.find("form.filters button[type=submit]")?.click()?;
    // The form's GET navigates; the driver may answer the click first.
    let url = wait_for(Duration::from_secs(10), "the filtered URL", || {
        let url = plain.url()?;
        Ok((url.contains("q=CHECK") && url.contains("drift=yes")).then_some(url))
    })?;
    assert!(url.starts_with(&base), "{url}");
    assert!(plain.find("tr[data-service=\"checkout\"]").is_ok());
    assert!(
        plain.find("tr[data-service*=\"onerror\"]").is_err(),
        "filtered out"
    );
    // The theme switch too: a link, kept in a cookie.
    plain.find("a[data-theme=dark]")?.click()?;
    wait_for(
        Duration::from_secs(10),
        "the dark theme without JavaScript",
        || {
            Ok(plain
                .find("html.dark a[data-theme=dark][aria-current]")
                .ok()
                .map(drop))
        },
    )?;
    assert!(plain.url()?.contains("q=CHECK"), "the switch comes back");
    // And JavaScript was indeed off: a page's own script did not run.
    plain.goto("data:text/html,<p id=js>off</p><script>js.textContent='on'</script>")?;
    assert_eq!(plain.text("#js")?, "off", "JavaScript is off");
    Ok(())
}

/// Chooses `theme` with the switch of the overview (a link), and waits
/// until the page that it comes back to is shown in it.
fn choose_theme(browser: &Browser, base: &str, theme: &str) -> Result<()> {
    browser.goto(&format!("{base}/"))?;
    browser.find(&format!("a[data-theme={theme}]"))?.click()?;
    let chosen = format!("a[data-theme={theme}][aria-current]");
    wait_for(Duration::from_secs(10), "the theme chosen", || {
        Ok(browser.find(&chosen).ok().map(drop))
    })
}

/// The token login in a real browser: a wrong token is refused, the right
/// one signs in (the browser keeps the `__Host-` cookie and sends it on),
/// and signing out ends it.
#[test]
fn a_browser_signs_in_with_a_query_token_and_a_wrong_one_is_refused() -> Result<()> {
    let fleet = Fleet::builder().start()?;
    let mut make = envparity_tests::project_command(&envparity_tests::cargo_bin("envparity")?);
    make.args(["query-token", "browser"]);
    let made = envparity_tests::checked(make)?;
    let lines: Vec<&str> = made.lines().collect();
    let (token, hash_line) = (lines[1], lines[3]);
    let tokens = fleet.dir().join("tokens");
    std::fs::write(&tokens, format!("{hash_line}\n")).expect("write the tokens file");
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let _aggregator = fleet
        .aggregator()
        .plaintext()
        .arg("--query-tokens-file")
        .arg(tokens.display().to_string())
        .arg("--web-listen")
        .arg(format!("127.0.0.1:{port}"))
        .start()?;
    let browser = Browser::start(&fleet, BrowserOptions::default())?;
    wait_for(REPORT_TIMEOUT, "the web view", || {
        Ok(browser.goto(&format!("{base}/")).ok())
    })?;
    // Not signed in: the page says so and links to the login.
    assert!(
        browser.text("h1")?.contains("Not signed in"),
        "{}",
        browser.source()?
    );
    browser.find("main a[href=\"/login\"]")?.click()?;
    browser.wait_text("h1", |t| t == "Sign in")?;
    browser
        .find("input[name=token]")?
        .fill("ept_not-the-token")?;
    browser.find("form[action=\"/login\"] button")?.click()?;
    browser.wait_text("main", |t| t.contains("That token is not valid"))?;
    browser.find("input[name=token]")?.fill(token)?;
    browser.find("form[action=\"/login\"] button")?.click()?;
    browser.wait_text("h1", |t| t == "Fleet overview")?;
    assert_eq!(browser.text("dd[data-counter=\"hosts\"]")?, "0");
    // The cookie is not for scripts (HttpOnly).
    assert_eq!(browser.execute("return document.cookie")?, "");
    browser.goto(&format!("{base}/login"))?;
    browser.find("form[action=\"/logout\"] button")?.click()?;
    // Signed out, the browser is sent back to the login page.
    browser.wait_text("h1", |t| t == "Sign in")?;
    browser.goto(&format!("{base}/"))?;
    assert!(browser.text("h1")?.contains("Not signed in"), "signed out");
    Ok(())
}
