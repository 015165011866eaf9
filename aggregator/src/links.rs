//! Where the web view shows a finding: the anchor of its row and the page
//! that has it, declared once for the view (`web`), which draws them, and
//! for alerting, whose notifications link to them.
//!
//! A finding of a service between two environments is on the service page
//! of that pair; one of a service within one environment, on the findings
//! page filtered to that service and environment; a host-level finding
//! naming a host, on that host's page; one between two environments'
//! hosts (host facts), on the findings page of the pair. Every value is
//! URL-encoded: names come from agents and can be hostile.

use sha2::{Digest, Sha256};

/// The anchor of a finding's row: `f-` and 12 hex digits of its id's hash
/// (the id itself can be long and hold any character).
pub fn finding_anchor(id: &str) -> String {
    format!("f-{}", hex::encode(&Sha256::digest(id.as_bytes())[..6]))
}

/// What locates a finding.
#[derive(Debug, Clone, Copy)]
pub struct FindingAt<'a> {
    /// Its stable id.
    pub id: &'a str,
    /// Its service; empty for host-level kinds.
    pub service: &'a str,
    /// The earlier environment (or the only one).
    pub env_a: &'a str,
    /// The later environment; empty for single-environment kinds.
    pub env_b: &'a str,
    /// The host, for per-host kinds.
    pub host: &'a str,
}

/// The URL of the page that shows `finding`, at its row, under the view's
/// `base` URL (a trailing `/` is ignored).
pub fn finding_page(base: &str, finding: FindingAt<'_>) -> String {
    let FindingAt {
        id,
        service,
        env_a,
        env_b,
        host,
    } = finding;
    let (path, pairs): (&str, Vec<(&str, &str)>) =
        match (service.is_empty(), env_b.is_empty(), host.is_empty()) {
            (false, false, _) => (
                "/service",
                vec![("name", service), ("a", env_a), ("b", env_b)],
            ),
            (false, true, _) => ("/findings", vec![("a", env_a), ("service", service)]),
            (true, _, false) => ("/host", vec![("id", host)]),
            (true, _, true) => ("/findings", vec![("a", env_a), ("b", env_b)]),
        };
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.into_iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    format!(
        "{}{path}?{query}#{}",
        base.trim_end_matches('/'),
        finding_anchor(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(service: &'a str, env_b: &'a str, host: &'a str) -> FindingAt<'a> {
        FindingAt {
            id: "image_digest|checkout|staging|production",
            service,
            env_a: "staging",
            env_b,
            host,
        }
    }

    #[test]
    fn each_kind_of_finding_links_to_the_page_that_shows_it() {
        let anchor = finding_anchor("image_digest|checkout|staging|production");
        assert!(anchor.starts_with("f-") && anchor.len() == 14, "{anchor}");
        let base = "https://envparity.example.com/";
        assert_eq!(
            finding_page(base, at("checkout", "production", "")),
            format!(
                "https://envparity.example.com/service?name=checkout&a=staging&b=production#{anchor}"
            )
        );
        assert_eq!(
            finding_page(base, at("checkout", "", "")),
            format!("https://envparity.example.com/findings?a=staging&service=checkout#{anchor}")
        );
        assert_eq!(
            finding_page(base, at("", "", "prod-1")),
            format!("https://envparity.example.com/host?id=prod-1#{anchor}")
        );
        assert_eq!(
            finding_page(base, at("", "production", "")),
            format!("https://envparity.example.com/findings?a=staging&b=production#{anchor}")
        );
    }

    #[test]
    fn a_hostile_name_is_encoded_and_cannot_leave_the_query() {
        let url = finding_page(
            "https://e.example",
            at("<x>&a=evil#frag /\"", "prod&b=x", ""),
        );
        let (before, anchor) = url.split_once('#').unwrap();
        assert!(anchor.starts_with("f-") && !anchor.contains('#'), "{url}");
        let query = before.strip_prefix("https://e.example/service?").unwrap();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            pairs,
            [
                ("name".to_owned(), "<x>&a=evil#frag /\"".to_owned()),
                ("a".to_owned(), "staging".to_owned()),
                ("b".to_owned(), "prod&b=x".to_owned()),
            ]
        );
        assert!(
            !url.contains(['<', '>', '"', ' ']),
            "unencoded characters in {url}"
        );
    }
}
