//! The colour theme a reader chose: `system` (the default: light or dark as
//! the system says), `light` or `dark`, switched by three links in every
//! page's header, which work without script.
//!
//! The choice is a plain preference cookie, `envparity_theme` (`light` or
//! `dark`; none means `system`), `SameSite=Strict`, `Secure` over TLS. It
//! is not `HttpOnly`: it holds no secret, only one of two words, and grants
//! nothing. `GET /theme?set=THEME&back=PATH` sets it and answers 303 to
//! `back`, which must be a path of this view (an open redirect otherwise).
//! Every page renders the choice as a class on `<html>` (`light`, `dark`,
//! or none), which the style sheet reads; no script is involved.
//!
//! [`scope`] hands the page shell ([`super::layout`]) the theme and the URL
//! of the request it answers, for the class and the links' `back`.

use axum::extract::{ConnectInfo, RawQuery, Request};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use super::listener::WebPeer;
use super::params::{ParamError, Params};

/// The cookie's name.
pub const COOKIE_NAME: &str = "envparity_theme";
/// How long the choice is kept: a year.
const KEPT_SECONDS: u32 = 365 * 24 * 3600;

/// A colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// As the system says (`prefers-color-scheme`).
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

impl Theme {
    /// Every theme, in the switch's order.
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    /// Its word, in the cookie and the URL.
    pub fn word(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// Its name in the switch.
    pub fn label(self) -> &'static str {
        match self {
            Theme::System => "System",
            Theme::Light => "Light",
            Theme::Dark => "Dark",
        }
    }

    fn parse(word: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.word() == word)
    }

    /// The class on `<html>`: none for `system`.
    pub fn class(self) -> Option<&'static str> {
        match self {
            Theme::System => None,
            Theme::Light | Theme::Dark => Some(self.word()),
        }
    }

    /// The `color-scheme` the page declares.
    pub fn scheme(self) -> &'static str {
        match self {
            Theme::System => "light dark",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// The link that chooses this theme and comes back to `here`.
    pub fn href(self, here: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("set", self.word())
            .append_pair("back", here)
            .finish();
        format!("/theme?{query}")
    }

    /// The theme a request's cookies choose (`system` without one, or with
    /// a word that is none of ours).
    fn of(headers: &HeaderMap) -> Theme {
        super::cookies::named(headers, COOKIE_NAME)
            .find_map(Theme::parse)
            .unwrap_or_default()
    }
}

/// What the page shell needs of the request it answers.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The theme chosen.
    pub theme: Theme,
    /// The request's path and query, where the switch comes back to.
    pub here: String,
}

tokio::task_local! {
    static SHOWN: Shown;
}

/// The theme and URL of the request being answered ([`scope`]); `system`
/// and `/` outside of one.
pub fn shown() -> Shown {
    SHOWN.try_with(Shown::clone).unwrap_or_else(|_| Shown {
        theme: Theme::System,
        here: "/".to_owned(),
    })
}

/// Middleware: whatever answers the request (a page, an error, a refusal)
/// renders with the request's theme and URL.
pub async fn scope(request: Request, next: Next) -> Response {
    let shown = Shown {
        theme: Theme::of(request.headers()),
        here: request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
    };
    SHOWN.scope(shown, next.run(request)).await
}

/// `GET /theme?set=THEME&back=PATH`: keeps the choice in the cookie and
/// goes back to `back` (default `/`).
pub async fn set(
    ConnectInfo(peer): ConnectInfo<WebPeer>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let params = Params::parse(raw.as_deref(), &["set", "back"])?;
    let word = params.text("set").ok_or_else(|| {
        WebError::bad_request("query parameter \"set\" (system, light or dark) is required")
    })?;
    let theme = Theme::parse(word).ok_or_else(|| ParamError::Invalid {
        name: "set".to_owned(),
        value: word.to_owned(),
        expected: "system, light or dark".to_owned(),
    })?;
    let back = params.text("back").unwrap_or("/");
    let location = HeaderValue::from_str(back)
        .ok()
        .filter(|_| is_local(back))
        .ok_or_else(|| ParamError::Invalid {
            name: "back".to_owned(),
            value: back.to_owned(),
            expected: "a path of this view (starting with one /)".to_owned(),
        })?;
    let secure = if peer.tls { "; Secure" } else { "" };
    let cookie = match theme {
        Theme::System => format!("{COOKIE_NAME}=; Path=/; Max-Age=0; SameSite=Strict{secure}"),
        chosen => format!(
            "{COOKIE_NAME}={}; Path=/; Max-Age={KEPT_SECONDS}; SameSite=Strict{secure}",
            chosen.word()
        ),
    };
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| {
        tracing::error!(error = %e, "web: the theme cookie is not a header value");
        WebError::bad_request("the theme cannot be kept")
    })?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, location), (SET_COOKIE, cookie)],
    )
        .into_response())
}

/// Whether `back` is a path of this view: one `/`, then no `/` or `\`
/// (which browsers read as another host), and visible ASCII only.
fn is_local(back: &str) -> bool {
    let mut bytes = back.bytes();
    bytes.next() == Some(b'/')
        && !matches!(bytes.next(), Some(b'/' | b'\\'))
        && back.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_view_are_gone_back_to() {
        for ok in ["/", "/service?name=a%20b&a=x", "/hosts"] {
            assert!(is_local(ok), "{ok}");
        }
        for bad in [
            "",
            "service",
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "/a b",
            "/\r\nSet-Cookie:x",
        ] {
            assert!(!is_local(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_cookie_chooses_the_theme_and_anything_else_is_system() {
        let theme = |cookie: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::header::COOKIE,
                HeaderValue::from_str(cookie).unwrap(),
            );
            Theme::of(&headers)
        };
        assert_eq!(theme("envparity_theme=dark"), Theme::Dark);
        assert_eq!(theme("a=1; envparity_theme=light; b=2"), Theme::Light);
        assert_eq!(theme("envparity_theme=purple"), Theme::System);
        assert_eq!(theme("xenvparity_theme=dark"), Theme::System);
        assert_eq!(Theme::of(&HeaderMap::new()), Theme::System);
    }
}
