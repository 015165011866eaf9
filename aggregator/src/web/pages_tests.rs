//! The web view's pages, rendered from a real fleet (SQLite store, the
//! parity engine, the real query service) and requested through the real
//! router: what a page shows is what the query API answers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use envparity_proto::fixtures;
use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{Container, EngineState, GetStatusRequest, HostSnapshot};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tower::ServiceExt;

use super::{Access, Web, WebPeer, router};
use crate::alert::Alerting;
use crate::config::AlertsConfig;
use crate::fleet::{Fleet, LoadedPolicy};
use crate::metrics::Metrics;
use crate::server::QueryApi;
use crate::store::SqliteStore;

/// A name a hostile agent could report.
const HOSTILE: &str = "<script>alert(1)</script>&\"x\"";

fn digest(name: &str) -> String {
    format!("sha256:{}", &name.repeat(64)[..64])
}

pub(super) fn container(service: &str, image: &str) -> Container {
    let repo_digest = format!("registry.example/{service}@{}", digest(image));
    fixtures::container(service)
        .id(format!("{service}-{image}"))
        .image(&repo_digest)
        .image_id(digest(&format!("1d{image}")))
        .repo_digest(repo_digest)
        .layers([digest("a1"), digest(&format!("b{image}"))])
        .image_label("org.opencontainers.image.version", "1.0")
        .clear_env("LOG_LEVEL", digest("c"), "debug")
        .env("DB_PASSWORD", digest(&format!("d{image}")))
        .build()
}

pub(super) fn snapshot(host: &str, env: &str, containers: Vec<Container>) -> HostSnapshot {
    fixtures::snapshot(host, env)
        .sequence(1)
        .kernel("6.1.0")
        .engine_state(EngineState::Ok)
        .fingerprint_key("k1")
        .containers(containers)
        .build()
}

/// staging and production: `checkout` rebuilt in production (another
/// digest), `cart` the same, and a service with a hostile name.
pub(super) async fn demo() -> (tempfile::TempDir, Arc<dyn QueryService>) {
    let (dir, _fleet, api) = demo_fleet().await;
    (dir, api)
}

/// [`demo`], and its fleet, to change.
pub(super) async fn demo_fleet() -> (tempfile::TempDir, Arc<Fleet>, Arc<dyn QueryService>) {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let fleet = Arc::new(
        Fleet::load(
            store,
            Duration::from_secs(3600),
            LoadedPolicy::defaults(now),
            now,
        )
        .unwrap(),
    );
    for s in [
        snapshot(
            "stg-1",
            "staging",
            vec![
                container("checkout", "aa"),
                container("cart", "cc"),
                container(HOSTILE, "ee"),
            ],
        ),
        snapshot(
            "prod-1",
            "production",
            vec![
                container("checkout", "bb"),
                container("cart", "cc"),
                container(HOSTILE, "ff"),
            ],
        ),
    ] {
        fleet.push(s, now).await.unwrap();
    }
    let alerting = Alerting::load(
        AlertsConfig::default(),
        fleet.store(),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let api: Arc<dyn QueryService> =
        Arc::new(QueryApi::new(Arc::clone(&fleet), Arc::new(alerting)));
    (dir, fleet, api)
}

pub(super) fn plain_peer() -> WebPeer {
    WebPeer {
        addr: "127.0.0.1:40000".parse().unwrap(),
        certificate: None,
        tls: false,
    }
}

pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: axum::http::HeaderMap,
    pub(super) body: String,
}

pub(super) async fn send(
    api: &Arc<dyn QueryService>,
    mut request: Request<Body>,
    peer: WebPeer,
    access: &Access,
) -> Answer {
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router(
        Web::new(Arc::clone(api), tokio::sync::watch::channel(0).1),
        access.clone(),
    )
    .oneshot(request)
    .await
    .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

pub(super) async fn get_as(
    api: &Arc<dyn QueryService>,
    uri: &str,
    peer: WebPeer,
    access: &Access,
) -> Answer {
    send(
        api,
        Request::get(uri).body(Body::empty()).unwrap(),
        peer,
        access,
    )
    .await
}

pub(super) async fn get(api: &Arc<dyn QueryService>, uri: &str) -> Answer {
    get_as(api, uri, plain_peer(), &Access::certificates_only()).await
}

/// The text of the element marked `data-counter="NAME"` after `from`.
fn counter(body: &str, from: usize, name: &str) -> u32 {
    let mark = format!("data-counter=\"{name}\">");
    let at = body[from..]
        .find(&mark)
        .unwrap_or_else(|| panic!("no {mark}"))
        + from
        + mark.len();
    body[at..body[at..].find('<').unwrap() + at]
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_overview_counts_what_status_answers() {
    let (_dir, api) = demo().await;
    let page = get(&api, "/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let status = api
        .get_status(tonic::Request::new(GetStatusRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let summary = status.summary.unwrap();
    let tally = summary.findings.unwrap();
    assert!(tally.critical > 0, "the demo must have a critical finding");
    for (name, expected) in [
        ("services", summary.services),
        ("services_drifting", summary.services_drifting),
        ("hosts", summary.hosts),
        ("hosts_not_current", summary.hosts_not_current),
        ("critical", tally.critical),
        ("warning", tally.warning),
        ("info", tally.info),
        ("pending", tally.pending),
        ("waived", tally.waived),
    ] {
        assert_eq!(counter(&page.body, 0, name), expected, "counter {name}");
    }
    // Per environment: production has one fresh host and the critical
    // findings.
    let prod = page.body.find("data-environment=\"production\"").unwrap();
    assert_eq!(counter(&page.body, prod, "fresh"), 1);
    assert!(counter(&page.body, prod, "critical") > 0);
}

/// Per environment, hosts are counted by the state they are shown in (the
/// status summary's `host_states`): two fresh hosts in staging; one fresh
/// and one refused in production.
#[tokio::test]
async fn the_overview_counts_each_environments_hosts_by_state() {
    let (_dir, fleet, api) = demo_fleet().await;
    let now = SystemTime::now();
    for s in [
        snapshot("stg-2", "staging", vec![container("cart", "cc")]),
        snapshot("prod-2", "production", vec![container("cart", "cc")]),
    ] {
        fleet.push(s, now).await.unwrap();
    }
    fleet.refused("prod-2", "refused in a test", now);
    let body = get(&api, "/").await.body;
    let at = |env: &str| {
        body.find(&format!("data-environment=\"{env}\""))
            .unwrap_or_else(|| panic!("no row {env}"))
    };
    assert_eq!(counter(&body, at("staging"), "fresh"), 2);
    assert_eq!(counter(&body, at("production"), "fresh"), 1);
    assert_eq!(counter(&body, at("production"), "refused"), 1);
}

#[tokio::test]
async fn the_matrix_flags_the_rebuilt_service_critical_with_a_word_drifting_first() {
    let (_dir, api) = demo().await;
    let body = get(&api, "/").await.body;
    let row = |service: &str| {
        let at = body
            .find(&format!("<tr data-service=\"{service}\">"))
            .unwrap_or_else(|| panic!("no row {service}"));
        (at, &body[at..at + body[at..].find("</tr>").unwrap()])
    };
    let (checkout_at, checkout) = row("checkout");
    assert!(
        checkout.contains(
            "data-environment=\"production\" data-verdict=\"critical\"><span class=\"sev sev-critical\">critical</span>"
        ),
        "{checkout}"
    );
    assert!(checkout.contains(&super::layout::short_digest(&digest("bb")).to_owned()));
    let (cart_at, cart) = row("cart");
    assert!(cart.contains(">parity</span>"), "{cart}");
    assert!(checkout_at < cart_at, "drifting services come first");
}

#[tokio::test]
async fn filters_narrow_the_matrix() {
    let (_dir, api) = demo().await;
    let only_cart = get(&api, "/?q=CAR").await.body;
    assert!(only_cart.contains("data-service=\"cart\""));
    assert!(!only_cart.contains("data-service=\"checkout\""));
    let drifting = get(&api, "/?drift=yes").await.body;
    assert!(drifting.contains("data-service=\"checkout\""));
    assert!(!drifting.contains("data-service=\"cart\""));
    let calm = get(&api, "/?drift=no").await.body;
    assert!(calm.contains("data-service=\"cart\""));
    assert!(!calm.contains("data-service=\"checkout\""));
    let production = get(&api, "/?env=production").await.body;
    let grid = &production[production.find("id=\"grid\"").unwrap()..];
    assert!(!grid.contains("<th scope=\"col\">staging</th>"), "{grid}");
}

#[tokio::test]
async fn a_hostile_service_name_is_text_everywhere() {
    let (_dir, api) = demo().await;
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;";
    let overview = get(&api, "/").await.body;
    assert!(overview.contains(escaped), "{overview}");
    assert!(!overview.contains("<script>alert"), "{overview}");
    let link = super::params::link("/service", &[("name", HOSTILE)]);
    let service = get(&api, &link).await;
    assert_eq!(service.status, StatusCode::OK, "{}", service.body);
    assert!(service.body.contains(escaped));
    assert!(!service.body.contains("<script>alert"));
    let findings = get(&api, "/findings").await.body;
    assert!(!findings.contains("<script>alert"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (_dir, api) = demo().await;
    let style = super::assets::STYLE.url();
    for uri in [
        "/",
        "/service?name=checkout",
        "/diff?a=staging&b=production",
        "/findings",
        "/hosts",
        "/host?id=stg-1",
        "/gate",
        "/alerts",
        "/policy",
        "/?colour=red",
        "/service?name=nope",
        "/no/such/page",
        style.as_str(),
        "/static/style.css",
    ] {
        let a = get(&api, uri).await;
        let h = |name: &str| {
            a.headers
                .get(name)
                .unwrap_or_else(|| panic!("{uri}: no {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(h("content-security-policy"), super::headers::CSP, "{uri}");
        assert!(h("content-security-policy").contains("default-src 'self'"));
        assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
        assert_eq!(h("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(h("referrer-policy"), "no-referrer", "{uri}");
    }
}

#[tokio::test]
async fn pages_have_no_inline_script_or_style() {
    let (_dir, api) = demo().await;
    for uri in [
        "/",
        "/service?name=checkout",
        "/gate?service=checkout&to=production",
    ] {
        let body = get(&api, uri).await.body;
        // One script, ours, from a file: nothing inline.
        assert_eq!(body.matches("<script").count(), 1, "{uri}");
        let ours = format!(
            "<script src=\"{}\" defer></script>",
            super::assets::LIVE.url()
        );
        assert!(body.contains(&ours), "{uri}");
        assert!(!body.contains("style="), "{uri}");
        assert!(!body.contains("<style"), "{uri}");
        assert!(
            body.contains("class=\"skip\" href=\"#main\""),
            "{uri}: skip link"
        );
    }
}

#[tokio::test]
async fn a_bad_parameter_is_a_400_naming_it() {
    let (_dir, api) = demo().await;
    for (uri, named) in [
        ("/?colour=red", "\"colour\""),
        ("/?drift=maybe", "\"drift\""),
        ("/?page=0", "\"page\""),
        ("/?page=2", "\"page\""),
        ("/findings?severity=loud", "\"severity\""),
        ("/service", "\"name\""),
        ("/gate?to=production", "\"service\""),
        ("/diff?a=staging", "\"a\" and \"b\""),
    ] {
        let a = get(&api, uri).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}: {}", a.body);
        assert!(
            a.body.contains(&named.replace('"', "&quot;")),
            "{uri}: {}",
            a.body
        );
    }
}

#[tokio::test]
async fn an_unknown_service_or_environment_is_a_404_saying_so() {
    let (_dir, api) = demo().await;
    let a = get(&api, "/service?name=ghost").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.body.contains("no service &quot;ghost&quot;"),
        "{}",
        a.body
    );
    let a = get(&api, "/?env=qa").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(a.body.contains("qa"), "{}", a.body);
    let a = get(&api, "/nowhere").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_service_page_shows_placement_findings_explain_and_env() {
    let (_dir, api) = demo().await;
    let body = get(&api, "/service?name=checkout").await.body;
    // Each environment's digest, the pair's finding, explain's verdict
    // and shared layers.
    assert!(body.contains(super::layout::short_digest(&digest("aa"))));
    assert!(body.contains(super::layout::short_digest(&digest("bb"))));
    assert!(
        body.contains("<code class=\"kind\">image_digest</code>"),
        "{body}"
    );
    assert!(body.contains("different content"));
    assert!(body.contains("shared layers: 1 (of 2 and 2)"), "{body}");
    // Env: the allowlisted value in clear, the other as a short
    // fingerprint, never whole.
    assert!(body.contains("= debug"));
    let fp = digest("daa");
    assert!(body.contains(&format!("fp {}", super::layout::short_digest(&fp))));
    assert!(!body.contains(&fp[7..]), "a whole fingerprint is shown");
    // The history: a lane per environment, a mark per change.
    assert!(body.contains("<svg class=\"timeline\""), "{body}");
    assert_eq!(body.matches("<line class=\"lane\"").count(), 2, "{body}");
    assert!(body.contains("<circle class=\"event event-"), "{body}");
    // An anchor per finding.
    assert!(body.contains("<tr id=\"f-"), "{body}");
}

/// The configuration files' key paths × environments: fingerprints
/// shortened, clear values only as the agent sent them, a file not read
/// with its reason, an environment whose agent read no files said so; and
/// every agent-supplied string (path, key path, reason, value) escaped.
#[tokio::test]
async fn the_service_page_shows_config_keys_by_environment_escaped() {
    use envparity_proto::v1::{ConfigFile, ConfigFileState, ConfigKey, ContainerConfigFiles};
    let (_dir, fleet, api) = demo_fleet().await;
    let key = |path: &str, fingerprint: String, value: Option<&str>| ConfigKey {
        path: path.into(),
        fingerprint,
        value: value.map(str::to_owned),
    };
    let files = |keys: Vec<ConfigKey>| ContainerConfigFiles {
        container_id: "shop-aa".into(),
        files: vec![
            ConfigFile {
                path: "/etc/app/app.yaml".into(),
                format: "yaml".into(),
                state: ConfigFileState::Read as i32,
                keys,
                fingerprint: "f".repeat(64),
                ..ConfigFile::default()
            },
            ConfigFile {
                path: format!("/etc/app/{HOSTILE}"),
                state: ConfigFileState::NotRead as i32,
                reason: format!("too large: {HOSTILE}"),
                ..ConfigFile::default()
            },
        ],
    };
    let checkout = |c: &str| c.repeat(64);
    let mut staging = snapshot("stg-2", "staging", vec![container("shop", "aa")]);
    staging.config_files = vec![files(vec![
        key("features.checkout", checkout("a"), None),
        key(HOSTILE, "1".repeat(64), Some(HOSTILE)),
    ])];
    let mut production = snapshot("prod-2", "production", vec![container("shop", "aa")]);
    production.config_files = vec![files(vec![key("features.checkout", checkout("b"), None)])];
    // A third environment whose agent read no files.
    let qa = snapshot("qa-1", "qa", vec![container("shop", "aa")]);
    for s in [staging, production, qa] {
        fleet.push(s, SystemTime::now()).await.unwrap();
    }
    let body = get(&api, "/service?name=shop").await.body;
    let table = &body[body.find("id=\"config-keys\"").expect("the table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let row = |label: &str| {
        let at = table
            .find(label)
            .unwrap_or_else(|| panic!("no row {label} in {table}"));
        let start = table[..at].rfind("<tr>").unwrap();
        let end = at + table[at..].find("</tr>").unwrap();
        table[start..end].to_owned()
    };
    let values = row("features.checkout");
    assert!(
        values.contains("fp aaaaaaaaaaaa")
            && values.contains("fp bbbbbbbbbbbb")
            && !values.contains(&"a".repeat(13)),
        "shortened, never whole: {values}"
    );
    assert!(values.contains("not read"), "qa read no files: {values}");
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;";
    let hostile = row(&format!("<th scope=\"row\"><code>{escaped}"));
    assert!(
        hostile.contains(&format!("= {escaped}")),
        "in clear as sent: {hostile}"
    );
    assert!(hostile.contains("absent"), "not in production: {hostile}");
    let unread = row("(not read)");
    assert!(
        unread.contains(&format!("/etc/app/{escaped}"))
            && unread.contains(&format!("too large: {escaped}")),
        "{unread}"
    );
    assert!(!body.contains("<script>alert"), "{body}");
}

#[tokio::test]
async fn the_gate_refuses_naming_the_previous_stage_digest() {
    let (_dir, api) = demo().await;
    let body = get(
        &api,
        &format!(
            "/gate?service=checkout&to=production&image=registry.example/checkout@{}",
            digest("bb")
        ),
    )
    .await
    .body;
    assert!(body.contains("REFUSED"), "{body}");
    assert!(body.contains(&digest("aa")), "staging's digest: {body}");
    let allowed = get(
        &api,
        &format!(
            "/gate?service=checkout&to=production&image=registry.example/checkout@{}",
            digest("aa")
        ),
    )
    .await
    .body;
    assert!(!allowed.contains("REFUSED"), "{allowed}");
}

#[tokio::test]
async fn assets_are_served_by_hashed_name_for_ever() {
    let (_dir, api) = demo().await;
    let url = super::assets::STYLE.url();
    assert!(url.starts_with("/static/style.") && url.ends_with(".css"));
    assert_ne!(url, "/static/style.css");
    let a = get(&api, &url).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        a.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(get(&api, "/").await.body.contains(&url));
    assert_eq!(
        get(&api, "/static/style.css").await.status,
        StatusCode::NOT_FOUND
    );
}

/// The certificate of `file` (under a fresh fleet CA).
fn certificate(dir: &std::path::Path, file: &str) -> Arc<CertificateDer<'static>> {
    let pem = std::fs::read(dir.join(format!("{file}.pem"))).unwrap();
    Arc::new(CertificateDer::from_pem_slice(&pem).unwrap())
}

#[tokio::test]
async fn over_tls_a_query_certificate_passes_and_an_agent_certificate_is_403() {
    let (_dir, api) = demo().await;
    let pki = tempfile::tempdir().unwrap();
    crate::certs::make(&crate::certs::Request {
        dir: pki.path().to_owned(),
        server_names: vec![],
        agents: vec!["host-1".into()],
        environment: None,
        clients: vec!["ops".into()],
        admins: vec!["root".into()],
        valid_for: Duration::from_secs(3600),
    })
    .unwrap();
    let tls = |certificate| WebPeer {
        certificate,
        tls: true,
        ..plain_peer()
    };
    let open = Access::certificates_only();
    for (peer, expected) in [
        (tls(None), StatusCode::UNAUTHORIZED),
        (
            tls(Some(certificate(pki.path(), "agent-host-1"))),
            StatusCode::FORBIDDEN,
        ),
        (
            tls(Some(certificate(pki.path(), "client-ops"))),
            StatusCode::OK,
        ),
        (
            tls(Some(certificate(pki.path(), "admin-root"))),
            StatusCode::OK,
        ),
    ] {
        let a = get_as(&api, "/", peer, &open).await;
        assert_eq!(a.status, expected, "{}", a.body);
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
    }
    let refused = get_as(
        &api,
        "/",
        tls(Some(certificate(pki.path(), "agent-host-1"))),
        &open,
    )
    .await;
    assert!(refused.body.contains("envparity-agent"), "{}", refused.body);
    assert!(!refused.body.contains("data-counter"), "no fleet data");
    // With query tokens, a page without a certificate or session points to
    // the login.
    let tokens = Access::with_tokens(Arc::new(|t: &str| t == "ept_good"));
    let a = get_as(&api, "/", plain_peer(), &tokens).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("href=\"/login\""), "{}", a.body);
    let a = get_as(&api, "/", tls(None), &tokens).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_page_answers_304_while_it_is_unchanged_and_200_once_the_fleet_moves() {
    let (_dir, fleet, api) = demo_fleet().await;
    let first = get(&api, "/").await;
    let etag = first.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(first.headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(etag, super::etag::tag(first.body.as_bytes()));
    let again = |etag: String| {
        let api = Arc::clone(&api);
        async move {
            let request = Request::get("/")
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap();
            send(&api, request, plain_peer(), &Access::certificates_only()).await
        }
    };
    let unchanged = again(etag.clone()).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.body.is_empty());
    assert_eq!(unchanged.headers[header::ETAG], etag.as_str());
    // Production repaired: checkout runs what staging runs.
    let mut repaired = snapshot(
        "prod-1",
        "production",
        vec![
            container("checkout", "aa"),
            container("cart", "cc"),
            container(HOSTILE, "ff"),
        ],
    );
    repaired.sequence = 2;
    fleet.push(repaired, SystemTime::now()).await.unwrap();
    let moved = again(etag.clone()).await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_ne!(moved.headers[header::ETAG], etag.as_str());
    let row = &moved.body[moved.body.find("data-service=\"checkout\"").unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("data-verdict=\"parity\""));
    // Refusals and errors are never 304.
    let bad = send(
        &api,
        Request::get("/?drift=maybe")
            .header(header::IF_NONE_MATCH, "*")
            .body(Body::empty())
            .unwrap(),
        plain_peer(),
        &Access::certificates_only(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_page_script_is_small_and_served_as_javascript() {
    let (_dir, api) = demo().await;
    let live = get(&api, &super::assets::LIVE.url()).await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        live.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(live.body.len() <= 5 * 1024, "{} bytes", live.body.len());
    assert!(live.body.contains("If-None-Match"));
    assert!(live.body.contains("new EventSource(\"/events\")"));
}

#[tokio::test]
async fn a_full_overview_page_loads_in_at_most_60_kb_with_its_style_and_script() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let fleet = Arc::new(
        Fleet::load(
            store,
            Duration::from_secs(3600),
            LoadedPolicy::defaults(now),
            now,
        )
        .unwrap(),
    );
    // 60 services in three environments, a sixth of them rebuilt in
    // production: a full page of 50 rows.
    let services: Vec<String> = (0..60).map(|i| format!("service-{i:02}-backend")).collect();
    for (host, env) in [
        ("dev-1", "dev"),
        ("stg-1", "staging"),
        ("prod-1", "production"),
    ] {
        let containers = services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let rebuilt = env == "production" && i % 6 == 0;
                container(s, if rebuilt { "bb" } else { "aa" })
            })
            .collect();
        fleet
            .push(snapshot(host, env, containers), now)
            .await
            .unwrap();
    }
    let alerting = Alerting::load(
        AlertsConfig::default(),
        fleet.store(),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let api: Arc<dyn QueryService> = Arc::new(QueryApi::new(fleet, Arc::new(alerting)));
    let page = get(&api, "/").await;
    assert_eq!(page.body.matches("<tr data-service=").count(), 50);
    let style = get(&api, &super::assets::STYLE.url()).await.body;
    let live = get(&api, &super::assets::LIVE.url()).await.body;
    let total = page.body.len() + style.len() + live.len();
    eprintln!(
        "first load: {} B HTML + {} B CSS + {} B JS = {total} B",
        page.body.len(),
        style.len(),
        live.len()
    );
    assert!(total <= 60 * 1024, "{total} bytes");
    // Numbered pages: the second holds the last 10 rows and says so.
    let second = get(&api, "/?page=2").await.body;
    assert_eq!(second.matches("<tr data-service=").count(), 10);
    assert!(
        second.contains("<a href=\"/?page=2\" aria-current=\"page\">2</a>"),
        "{second}"
    );
    assert!(second.contains("<a href=\"/\">1</a>"), "{second}");
    assert!(
        !second.contains("data-service=\"service-00-backend\""),
        "rows of page 1"
    );
    assert_eq!(get(&api, "/?page=3").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_alerts_and_policy_pages_show_what_the_api_answers() {
    let (_dir, api) = demo().await;
    let alerts = get(&api, "/alerts").await;
    assert_eq!(alerts.status, StatusCode::OK);
    // No sink configured, and nothing fires before the alert grace.
    assert!(alerts.body.contains("sinks: none"), "{}", alerts.body);
    assert!(alerts.body.contains("No alert is firing."));
    let policy = get(&api, "/policy").await;
    assert_eq!(policy.status, StatusCode::OK);
    assert!(
        policy.body.contains("built-in defaults") || policy.body.contains("defaults"),
        "{}",
        policy.body
    );
    assert!(
        policy.body.contains("production"),
        "the promotion chain: {}",
        policy.body
    );
    assert_eq!(
        get(&api, "/alerts?x=1").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_host_page_shows_its_facts_and_an_unknown_host_is_404() {
    let (_dir, api) = demo().await;
    let hosts = get(&api, "/hosts").await.body;
    assert!(hosts.contains("href=\"/host?id=prod-1\""), "{hosts}");
    let host = get(&api, "/host?id=prod-1").await;
    assert_eq!(host.status, StatusCode::OK, "{}", host.body);
    assert!(host.body.contains("<td>production</td>"), "{}", host.body);
    assert!(host.body.contains("<td>fresh</td>"), "{}", host.body);
    assert!(host.body.contains("6.1.0"), "the kernel: {}", host.body);
    let unknown = get(&api, "/host?id=%3Cghost%3E").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body.contains("no host &quot;&lt;ghost&gt;&quot;"),
        "{}",
        unknown.body
    );
    assert_eq!(get(&api, "/host").await.status, StatusCode::BAD_REQUEST);
}

/// A request for `uri` with `cookie`.
fn with_cookie(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_theme_switch_keeps_the_choice_in_a_cookie_and_goes_back() {
    let (_dir, api) = demo().await;
    let access = Access::certificates_only();
    let dark = get(&api, "/theme?set=dark&back=%2F%3Fq%3Dcheck").await;
    assert_eq!(dark.status, StatusCode::SEE_OTHER, "{}", dark.body);
    assert_eq!(dark.headers[header::LOCATION], "/?q=check");
    let cookie = dark.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("envparity_theme=dark;"), "{cookie}");
    assert!(
        cookie.contains("SameSite=Strict") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain text: {cookie}");
    assert!(dark.headers.contains_key(header::CONTENT_SECURITY_POLICY));

    let mut tls = plain_peer();
    tls.tls = true;
    let over_tls = get_as(&api, "/theme?set=light", tls, &access).await;
    assert_eq!(over_tls.headers[header::LOCATION], "/");
    let cookie = over_tls.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("envparity_theme=light;") && cookie.contains("; Secure"),
        "{cookie}"
    );

    let system = get(&api, "/theme?set=system&back=%2Fhosts").await;
    assert_eq!(system.status, StatusCode::SEE_OTHER);
    let cookie = system.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("envparity_theme=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );

    for (uri, named) in [
        ("/theme?set=purple", "&quot;set&quot;"),
        ("/theme", "&quot;set&quot;"),
        (
            "/theme?set=dark&back=%2F%2Fevil.example%2F",
            "&quot;back&quot;",
        ),
        (
            "/theme?set=dark&back=https%3A%2F%2Fevil.example%2F",
            "&quot;back&quot;",
        ),
    ] {
        let bad = get(&api, uri).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(bad.body.contains(named), "{uri}: {}", bad.body);
        assert!(!bad.headers.contains_key(header::SET_COOKIE), "{uri}");
    }
}

#[tokio::test]
async fn every_page_is_rendered_in_the_theme_its_cookie_chose() {
    let (_dir, api) = demo().await;
    let access = Access::certificates_only();
    let system = get(&api, "/?q=check").await;
    assert!(
        system.body.contains("<html lang=\"en\">"),
        "{}",
        system.body
    );
    assert!(
        system
            .body
            .contains("name=\"color-scheme\" content=\"light dark\"")
    );
    // The switch comes back to the page it is on; "System" is current.
    assert!(
        system
            .body
            .contains("href=\"/theme?set=dark&amp;back=%2F%3Fq%3Dcheck\" data-theme=\"dark\">"),
        "{}",
        system.body
    );
    assert!(
        system
            .body
            .contains("data-theme=\"system\" aria-current=\"true\"")
    );

    for (uri, status) in [
        ("/?q=check", StatusCode::OK),
        ("/service?name=ghost", StatusCode::NOT_FOUND),
    ] {
        let dark = send(
            &api,
            with_cookie(uri, "a=1; envparity_theme=dark"),
            plain_peer(),
            &access,
        )
        .await;
        assert_eq!(dark.status, status, "{uri}");
        assert!(
            dark.body.contains("<html lang=\"en\" class=\"dark\">"),
            "{uri}: {}",
            dark.body
        );
        assert!(
            dark.body.contains("name=\"color-scheme\" content=\"dark\""),
            "{uri}"
        );
        assert!(
            dark.body
                .contains("data-theme=\"dark\" aria-current=\"true\""),
            "{uri}"
        );
    }
    let light = send(
        &api,
        with_cookie("/hosts", "envparity_theme=light"),
        plain_peer(),
        &access,
    )
    .await;
    assert!(light.body.contains("<html lang=\"en\" class=\"light\">"));
    // A word that is none of ours is the system's theme.
    let odd = send(
        &api,
        with_cookie("/", "envparity_theme=%3Cx%3E"),
        plain_peer(),
        &access,
    )
    .await;
    assert!(odd.body.contains("<html lang=\"en\">"));
}
