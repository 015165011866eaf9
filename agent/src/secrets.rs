//! What looks like a secret, and taking it out of free text.
//!
//! Env values leave the host as keyed fingerprints unless `--clear-env`
//! allowlists their name (`clear_env.rs`). Other fields are free text
//! that no allowlist governs: a container's command line and entrypoint, and
//! the labels of containers and images. Credentials turn up in all of them
//! (`--db-password=…`, `postgres://app:hunter2@db/app`, a libpq string
//! `host=db password=…`, a JDBC URL `…&password=…`, `?access_token=…`). So
//! three detectors decide what is secret, wherever it is:
//!
//! 1. **Names** carrying a marker of [`SECRET_NAME_MARKERS`] (`DB_PASSWORD`,
//!    `APP_DB_PWD`, `GITHUB_TOKEN`, `READ_DSN`), case-insensitively, anywhere
//!    in the name;
//! 2. **Parameters** `NAME=VALUE` inside a string whose `NAME` is such a name:
//!    `password=…`, `pwd=…`, `token=…`, `secret=…`, `key=…`, `api_key=…`, in
//!    query strings (`?`/`&`), in `;`- or space-separated connection strings,
//!    and as `--flag=…` arguments. The value runs to the next `&`, `;`, `,`,
//!    whitespace or quote; a value that opens with a quote runs to the
//!    matching one (libpq's `password='a b'`);
//! 3. **URL userinfo** in any scheme: the password of `scheme://user:pw@host`,
//!    or the whole userinfo of `scheme://token@host`.
//!
//! An env value with a credential inside is fingerprinted whole, even when
//! allowlisted. In free text only the credential itself is replaced, by
//! `<hmac:…>` (the first 16 hex digits of its keyed fingerprint), so that a
//! command line keeps its shape, two environments passing the same secret
//! still compare equal, and a different secret is still drift. A command-line
//! flag with a secret name and no `=` (`--password VALUE`) has its next
//! argument replaced the same way.
//!
//! False positives (`KEYBOARD_LAYOUT`, `--no-auth FILE`) only cost a clear
//! value; false negatives leak, so the detectors err on that side. What they
//! cannot see — a secret under an innocent name in a free-text field, e.g. a
//! bare positional argument or `-psecret` — is listed in docs/security.md.

use std::ops::Range;

use crate::fingerprint::FleetKey;

/// Substrings (upper case) that make a name look secret. Matched
/// case-insensitively anywhere in the name; false positives (e.g.
/// `KEYBOARD_LAYOUT`, `CONNECT_TIMEOUT`) only cost a fingerprint instead of a
/// clear value.
pub const SECRET_NAME_MARKERS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
    "SESSION",
    "COOKIE",
    "SALT",
    "CERT",
    "SIGNATURE",
    "DSN",
    "CONN",
];

/// Whether a name (of a variable, a parameter or a flag) looks like it holds
/// a secret (see [`SECRET_NAME_MARKERS`]).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_MARKERS.iter().any(|m| upper.contains(m))
}

/// Whether `text` carries a credential: a secret parameter or URL userinfo.
pub fn carries_secret(text: &str) -> bool {
    !secret_spans(text).is_empty()
}

/// The byte ranges of `text` that hold credentials, sorted and disjoint.
pub fn secret_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    url_userinfo(text, &mut spans);
    parameters(text, &mut spans);
    spans.retain(|s| !s.is_empty());
    spans.sort_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'&' | b';' | b',' | b'"' | b'\'' | b')')
}

/// `NAME=VALUE` spans whose name looks secret.
fn parameters(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    for (eq, _) in text.match_indices('=') {
        let start = bytes[..eq]
            .iter()
            .rposition(|&b| !is_name_byte(b))
            .map_or(0, |p| p + 1);
        let name = text[start..eq].trim_start_matches('-');
        if name.is_empty() || !looks_secret(name) {
            continue;
        }
        let from = eq + 1;
        let span = match bytes.get(from) {
            Some(&q @ (b'\'' | b'"')) => {
                let end = bytes[from + 1..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(bytes.len(), |p| from + 1 + p);
                from + 1..end
            }
            _ => {
                let end = bytes[from..]
                    .iter()
                    .position(|&b| ends_value(b))
                    .map_or(bytes.len(), |p| from + p);
                from..end
            }
        };
        spans.push(span);
    }
}

/// The userinfo secrets of every URL in `text`.
fn url_userinfo(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut offset = 0;
    while let Some(at) = text[offset..].find("://") {
        let sep = offset + at;
        let scheme_len = text[..sep]
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count();
        let authority_start = sep + 3;
        let after = &text[authority_start..];
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        if scheme_len > 0
            && let Some(at) = authority.rfind('@')
        {
            let userinfo = &authority[..at];
            let secret = match userinfo.find(':') {
                Some(colon) => colon + 1..at,
                None => 0..at,
            };
            spans.push(authority_start + secret.start..authority_start + secret.end);
        }
        offset = authority_start;
    }
}

/// The stand-in for a secret: `<hmac:` and 16 hex digits of its keyed
/// fingerprint under `name`.
pub fn stand_in(key: &FleetKey, name: &str, secret: &str) -> String {
    format!("<hmac:{}>", &key.fingerprint(name, secret)[..16])
}

/// `text` with every credential replaced by its [`stand_in`] under `name`.
pub fn redact(text: &str, key: &FleetKey, name: &str) -> String {
    let spans = secret_spans(text);
    if spans.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for s in spans {
        out.push_str(&text[last..s.start]);
        out.push_str(&stand_in(key, name, &text[s.clone()]));
        last = s.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Whether a command-line argument is a flag with a secret name whose value
/// is the next argument (`--password`, `-db-token`; not `--password=x`).
fn takes_secret_value(arg: &str) -> bool {
    let name = arg.trim_start_matches('-');
    arg.starts_with('-') && !name.is_empty() && !arg.contains('=') && looks_secret(name)
}

/// A command line (or entrypoint) with its credentials replaced: each
/// argument [`redact`]ed, and the argument after a secret flag replaced whole.
pub fn redact_args(args: &[String], key: &FleetKey) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_secret = false;
    for arg in args {
        if std::mem::take(&mut next_is_secret) && !arg.starts_with('-') {
            out.push(stand_in(key, "cmd", arg));
            continue;
        }
        out.push(redact(arg, key, "cmd"));
        next_is_secret = takes_secret_value(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> FleetKey {
        FleetKey::from_bytes(*b"0123456789abcdef")
    }

    fn has_url_credentials(text: &str) -> bool {
        let mut spans = Vec::new();
        url_userinfo(text, &mut spans);
        !spans.is_empty()
    }

    /// What `redact` leaves of `text`, with stand-ins shown as `<>`.
    fn shape(text: &str) -> String {
        let out = redact(text, &key(), "x");
        let mut shaped = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find("<hmac:") {
            shaped.push_str(&rest[..i]);
            shaped.push_str("<>");
            rest = &rest[i + "<hmac:".len() + 17..];
        }
        shaped.push_str(rest);
        shaped
    }

    #[test]
    fn secret_looking_names_are_detected_case_insensitively() {
        for name in [
            "DB_PASSWORD",
            "db_passwd",
            "SMTP_PASS",
            "APP_DB_PWD",
            "CLIENT_SECRET",
            "GITHUB_TOKEN",
            "API_KEY",
            "aws_credentials",
            "PRIVATE_PEM",
            "BASIC_AUTH",
            "SESSION_STORE",
            "COOKIE_DOMAIN",
            "PW_SALT",
            "TLS_CERT",
            "SIGNATURE_ALG",
            "READ_DSN",
            "DB_CONN",
            "CONNECTION_STRING",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["LOG_LEVEL", "FEATURE_X", "PORT", "RUST_LOG", "MODE"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn credential_urls_are_detected() {
        assert!(has_url_credentials("postgres://app:hunter2@db:5432/app"));
        assert!(has_url_credentials("https://ghp_abc@github.com/org/repo"));
        assert!(has_url_credentials("a,redis://:pw@cache:6379,b"));
        assert!(has_url_credentials("http://x/ then amqp://u:p@mq"));
        assert!(!has_url_credentials("https://example.com/path?email=a@b.c"));
        assert!(!has_url_credentials("https://example.com/#user@x"));
        assert!(!has_url_credentials("admin@example.com"));
        assert!(!has_url_credentials("plain"));
        assert!(!has_url_credentials("://@"));
    }

    #[test]
    fn every_shape_of_the_issue_is_redacted_to_its_credential_only() {
        for (text, expected) in [
            (
                "host=db port=5432 password=s3cr3t user=app",
                "host=db port=5432 password=<> user=app",
            ),
            (
                "host=db password='a b c' sslmode=require",
                "host=db password='<>' sslmode=require",
            ),
            (
                "jdbc:postgresql://db:5432/app?user=app&password=s3cr3t&ssl=true",
                "jdbc:postgresql://db:5432/app?user=app&password=<>&ssl=true",
            ),
            (
                "https://api.example/v1?access_token=abc123",
                "https://api.example/v1?access_token=<>",
            ),
            (
                "https://x/?q=1&api_key=k&page=2",
                "https://x/?q=1&api_key=<>&page=2",
            ),
            (
                "Server=db;Database=app;Pwd=s3cr3t;",
                "Server=db;Database=app;Pwd=<>;",
            ),
            ("--db-password=s3cr3t", "--db-password=<>"),
            ("redis://:pw@cache:6379/0", "redis://:<>@cache:6379/0"),
            ("postgres://app:hunter2@db/app", "postgres://app:<>@db/app"),
            (
                "https://ghp_abc@github.com/org/repo",
                "https://<>@github.com/org/repo",
            ),
            ("secret=x,token=y", "secret=<>,token=<>"),
        ] {
            assert_eq!(shape(text), expected, "{text}");
        }
        for harmless in [
            "debug",
            "mode=fast",
            "https://example.com/path?email=a@b.c&page=2",
            "a==b",
            "=password",
            "password=",
        ] {
            assert_eq!(redact(harmless, &key(), "x"), harmless);
            assert!(!carries_secret(harmless), "{harmless}");
        }
    }

    #[test]
    fn arguments_after_a_secret_flag_are_replaced_whole() {
        let args: Vec<String> = ["serve", "--password", "hunter2", "--port", "80", "--token"]
            .map(str::to_owned)
            .to_vec();
        let out = redact_args(&args, &key());
        assert_eq!(out[..2], args[..2]);
        assert!(
            out[2].starts_with("<hmac:") && out[2].len() == 23,
            "{out:?}"
        );
        assert_eq!(out[3..], args[3..]);
        // The same secret gives the same stand-in; another one another.
        let again = redact_args(&args, &key());
        assert_eq!(out, again);
        let mut other = args.clone();
        other[2] = "hunter3".to_owned();
        assert_ne!(redact_args(&other, &key())[2], out[2]);
        // A flag that follows a secret flag is not taken for its value.
        let flags: Vec<String> = ["--auth", "--verbose"].map(str::to_owned).to_vec();
        assert_eq!(redact_args(&flags, &key()), flags);
    }

    proptest! {
        #[test]
        fn a_planted_secret_never_survives_redaction(
            prefix in "[ -~]{0,20}",
            name in prop::sample::select(vec!["password", "PWD", "token", "secret", "key", "api_key", "access_token", "--db-password"]),
            secret in "[A-Za-z0-9]{6,24}",
            sep in prop::sample::select(vec![" ", "&", ";", ""]),
            suffix in "[a-z=& ]{0,20}",
        ) {
            let text = format!("{prefix}{sep}{name}={secret}&{suffix}");
            let out = redact(&text, &key(), "x");
            // The planted value is gone (unless it also occurs by chance in
            // the surrounding text the generator chose).
            prop_assume!(!prefix.contains(&secret) && !suffix.contains(&secret));
            prop_assert!(!out.contains(&secret), "{text} -> {out}");
        }

        #[test]
        fn redaction_is_a_no_op_on_text_without_equals_or_urls(text in "[A-Za-z0-9 _./-]{0,64}") {
            prop_assert_eq!(redact(&text, &key(), "x"), text);
        }
    }
}
