//! Reading a request's cookies, for the session and the theme alike.
//!
//! A browser may send its cookies in several `Cookie` headers over HTTP/2
//! (each cookie a header of its own), so every header is read.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// The values of the cookies named `name` in `headers`, in the order sent.
pub fn named<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn every_cookie_header_is_read_and_names_match_whole() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; ab=2"));
        headers.append(COOKIE, HeaderValue::from_static("b=3;a=4"));
        assert_eq!(named(&headers, "a").collect::<Vec<_>>(), ["1", "4"]);
        assert_eq!(named(&headers, "b").collect::<Vec<_>>(), ["3"]);
        assert_eq!(named(&headers, "c").next(), None);
    }
}
