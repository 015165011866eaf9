//! The token login through the real router over a real fleet: the form,
//! wrong and right tokens, the Origin rule, the session cookie, sign-out
//! and the rate limit.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::pages_tests::{demo, get, get_as, plain_peer, send};
use super::{Access, WebPeer};

fn login(token: &str, origin: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/login")
        .header(header::HOST, "127.0.0.1:7700")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        r = r.header(header::ORIGIN, o);
    }
    r.body(Body::from(format!("token={token}"))).unwrap()
}

fn with_cookie(uri: &str, method: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:7700")
        .header(header::ORIGIN, "http://127.0.0.1:7700")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_token_signs_in_to_a_session_cookie_that_never_holds_the_token() {
    let (_dir, api) = demo().await;
    let access = Access::with_tokens(Arc::new(|t: &str| t == "ept_good"));
    let origin = Some("http://127.0.0.1:7700");
    // The form, then a wrong token: 401, no cookie.
    let form = get_as(&api, "/login", plain_peer(), &access).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("type=\"password\" name=\"token\""),
        "{}",
        form.body
    );
    let wrong = send(&api, login("ept_bad", origin), plain_peer(), &access).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    assert!(wrong.body.contains("not valid"));
    // From another site, or without an Origin: 403, even with the token.
    for o in [Some("https://evil.example"), None] {
        let a = send(&api, login("ept_good", o), plain_peer(), &access).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{o:?}");
        assert!(a.headers.get(header::SET_COOKIE).is_none());
    }
    // `Origin: null` (what no-referrer makes browsers send) passes only
    // with the browser's word that the form is ours.
    for (site, expected) in [
        ("cross-site", StatusCode::FORBIDDEN),
        ("same-origin", StatusCode::SEE_OTHER),
    ] {
        let mut r = login("ept_good", Some("null"));
        r.headers_mut()
            .insert("sec-fetch-site", site.parse().unwrap());
        let a = send(&api, r, plain_peer(), &access).await;
        assert_eq!(a.status, expected, "{site}");
    }
    // The right token: a session cookie, host-only, secure, strict.
    let ok = send(&api, login("ept_good", origin), plain_peer(), &access).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let set = ok.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-envparity_session="), "{set}");
    assert!(set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    assert!(
        !set.contains("ept_good"),
        "the token is in the cookie: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = send(
        &api,
        with_cookie("/", "GET", &cookie),
        plain_peer(),
        &access,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // A made-up session is not one.
    let forged = "__Host-envparity_session=00";
    let a = send(&api, with_cookie("/", "GET", forged), plain_peer(), &access).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Signing out ends it.
    let out = send(
        &api,
        with_cookie("/logout", "POST", &cookie),
        plain_peer(),
        &access,
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = send(
        &api,
        with_cookie("/", "GET", &cookie),
        plain_peer(),
        &access,
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_attempts_are_limited_per_address() {
    let (_dir, api) = demo().await;
    let access = Access::with_tokens(Arc::new(|t: &str| t == "ept_good"));
    let origin = Some("http://127.0.0.1:7700");
    for _ in 0..super::attempts::MAX_ATTEMPTS {
        let a = send(&api, login("ept_bad", origin), plain_peer(), &access).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // Over the limit even the right token waits.
    let a = send(&api, login("ept_good", origin), plain_peer(), &access).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.get(header::SET_COOKIE).is_none());
    // Another address is not held back.
    let other = WebPeer {
        addr: "127.0.0.2:40000".parse().unwrap(),
        ..plain_peer()
    };
    let a = send(&api, login("ept_good", origin), other, &access).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn without_tokens_there_is_no_login() {
    let (_dir, api) = demo().await;
    let a = get(&api, "/login").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(
        &api,
        login("anything", Some("http://127.0.0.1:7700")),
        plain_peer(),
        &Access::certificates_only(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
