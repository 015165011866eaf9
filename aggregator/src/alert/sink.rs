//! What each sink receives: request bodies and signatures, pure functions
//! of alerts and events (delivery is in [`super::deliver`]).
//!
//! Formats follow each receiver's documented API:
//! - Alertmanager API v2 `POST /api/v2/alerts`: a JSON array of
//!   `{labels, annotations, startsAt, endsAt, generatorURL}`.
//! - Slack incoming webhooks: `text` (fallback, notifications) plus Block
//!   Kit `blocks`; one message per service, at most [`SLACK_EVENTS_PER_MESSAGE`]
//!   events each, section texts under Slack's 3,000-character limit, `& < >`
//!   escaped.
//! - PagerDuty Events API v2: `trigger`/`resolve` with a stable `dedup_key`.
//! - Generic webhook: `{type, timestamp, data}` signed per Standard
//!   Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature:
//!   v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).
//!
//! With `[alerts] base_url`, each notification links to the web view's
//! page of its finding, at the finding's row ([`page_url`]): Alertmanager's
//! `generatorURL`, a link in each Slack event line, PagerDuty's `links`,
//! and the webhook's `data.url` (also in PagerDuty's `custom_details`).

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::model::{Action, Alert, Event};
use crate::links::{FindingAt, finding_page};

/// The Alertmanager `alertname` of every envparity alert.
pub const ALERT_NAME: &str = "EnvParityDrift";

/// Events per Slack message (each takes one block; Slack allows 50).
pub const SLACK_EVENTS_PER_MESSAGE: usize = 40;

/// Slack's limit on a section block's text.
const SLACK_SECTION_MAX: usize = 3000;

/// PagerDuty's limit on `payload.summary`.
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// PagerDuty's limit on `dedup_key`.
const PAGERDUTY_DEDUP_MAX: usize = 255;

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(envparity_proto::time::from_unix_millis(ms)).to_string()
}

/// The web view's page of `a`'s finding, at its row, when the view's
/// `base_url` is configured.
pub fn page_url(a: &Alert, base_url: Option<&str>) -> Option<String> {
    let at = FindingAt {
        id: &a.id,
        service: &a.service,
        env_a: &a.env_a,
        env_b: &a.env_b,
        host: &a.host,
    };
    base_url.map(|base| finding_page(base, at))
}

/// Alertmanager labels: bounded, identifying, never a digest or value.
pub fn alertmanager_labels(a: &Alert) -> serde_json::Map<String, Value> {
    let mut labels = serde_json::Map::new();
    let mut put = |k: &str, v: &str| {
        // Alertmanager treats an empty label as absent; leave it out.
        if !v.is_empty() {
            labels.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    };
    put("alertname", ALERT_NAME);
    put("severity", a.severity.as_str());
    put("kind", a.kind.as_str());
    put("service", &a.service);
    put("env_a", &a.env_a);
    put("env_b", &a.env_b);
    put("host", &a.host);
    put("key", &a.key);
    labels
}

/// One alert for Alertmanager, ending at `ends_at`: in the future while it
/// fires (so it expires by itself if envparity dies), its resolution time
/// once resolved.
pub fn alertmanager_alert(a: &Alert, ends_at: SystemTime, base_url: Option<&str>) -> Value {
    let mut v = json!({
        "labels": alertmanager_labels(a),
        "annotations": {
            "summary": a.summary,
            "description": a.description,
        },
        "startsAt": rfc3339(a.fired_at_ms),
        "endsAt": humantime::format_rfc3339_millis(ends_at).to_string(),
    });
    if let Some(url) = page_url(a, base_url) {
        v["generatorURL"] = Value::String(url);
    }
    v
}

/// Escapes Slack's control characters (`&`, `<`, `>`).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn pair(a: &Alert) -> String {
    match (a.env_b.is_empty(), a.host.is_empty()) {
        (true, true) => a.env_a.clone(),
        (true, false) => format!("{} ({})", a.env_a, a.host),
        (false, _) => format!("{} → {}", a.env_a, a.env_b),
    }
}

/// Slack messages for `events`, which all concern one service: one message
/// per [`SLACK_EVENTS_PER_MESSAGE`] events.
pub fn slack_messages(service: &str, events: &[Event], base_url: Option<&str>) -> Vec<Value> {
    let title = if service.is_empty() { "hosts" } else { service };
    events
        .chunks(SLACK_EVENTS_PER_MESSAGE)
        .map(|chunk| {
            let firing = chunk
                .iter()
                .filter(|e| e.action != Action::Resolved)
                .count();
            let resolved = chunk.len() - firing;
            let headline = format!("envparity: {title} — {firing} firing, {resolved} resolved");
            let mut blocks = vec![json!({
                "type": "header",
                "text": {"type": "plain_text", "text": truncate(&headline, 150)},
            })];
            let mut fallback = slack_escape(&headline);
            for e in chunk {
                let icon = match e.action {
                    Action::Firing => ":red_circle:",
                    Action::Resolved => ":large_green_circle:",
                    Action::Test => ":information_source:",
                };
                let a = &e.alert;
                let line = format!(
                    "{icon} *{}* `{}` {} ({})",
                    e.action.as_str(),
                    a.severity,
                    slack_escape(&a.summary),
                    slack_escape(&pair(a)),
                );
                // The link is kept whole; the line is cut to make room.
                let link = page_url(a, base_url)
                    .map(|url| format!(" <{}|open in envparity>", slack_escape(&url)))
                    .unwrap_or_default();
                let room = SLACK_SECTION_MAX.saturating_sub(link.chars().count());
                blocks.push(json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": truncate(&line, room) + &link},
                }));
                fallback.push('\n');
                fallback.push_str(&truncate(
                    &format!("{}: {}", e.action.as_str(), slack_escape(&a.summary)),
                    300,
                ));
            }
            json!({"text": fallback, "blocks": blocks})
        })
        .collect()
}

/// PagerDuty's `dedup_key` for an alert: its id, hashed if over the limit.
pub fn pagerduty_dedup_key(a: &Alert) -> String {
    if a.id.len() <= PAGERDUTY_DEDUP_MAX {
        a.id.clone()
    } else {
        use sha2::{Digest, Sha256};
        format!("envparity:{}", hex::encode(Sha256::digest(a.id.as_bytes())))
    }
}

/// A PagerDuty Events API v2 event.
pub fn pagerduty_event(routing_key: &str, e: &Event, base_url: Option<&str>) -> Value {
    let a = &e.alert;
    let dedup_key = pagerduty_dedup_key(a);
    if e.action == Action::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let mut v = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": truncate(&a.summary, PAGERDUTY_SUMMARY_MAX),
            "source": if a.host.is_empty() { pair(a) } else { a.host.clone() },
            "severity": a.severity.as_str(),
            "timestamp": rfc3339(a.fired_at_ms),
            "component": a.service,
            "group": a.env_b.clone(),
            "class": a.kind.as_str(),
            "custom_details": webhook_data(a, base_url),
        },
        "client": "envparity",
    });
    if let Some(url) = base_url {
        v["client_url"] = Value::String(url.to_owned());
    }
    if let Some(url) = page_url(a, base_url) {
        v["links"] = json!([{"href": url, "text": "The finding in envparity"}]);
    }
    v
}

fn webhook_data(a: &Alert, base_url: Option<&str>) -> Value {
    json!({
        "url": page_url(a, base_url),
        "id": a.id,
        "kind": a.kind.as_str(),
        "severity": a.severity.as_str(),
        "service": a.service,
        "env_a": a.env_a,
        "env_b": a.env_b,
        "host": a.host,
        "key": a.key,
        "summary": a.summary,
        "description": a.description,
        "first_seen": rfc3339(a.first_seen_ms),
        "fired_at": rfc3339(a.fired_at_ms),
        "resolved_at": a.resolved_at_ms.map(rfc3339),
    })
}

/// The generic webhook's body (documented in docs/alerting.md).
pub fn webhook_body(e: &Event, base_url: Option<&str>) -> Value {
    json!({
        "type": format!("envparity.alert.{}", e.action.as_str()),
        "timestamp": rfc3339(e.at_ms),
        "data": webhook_data(&e.alert, base_url),
    })
}

/// `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")).
pub fn webhook_signature(key: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::signing_key;
    use crate::parity::{Kind, Severity};

    fn alert(summary: &str) -> Alert {
        Alert {
            id: "image_digest|shop|production,staging||".into(),
            kind: Kind::ImageDigest,
            severity: Severity::Critical,
            service: "shop".into(),
            env_a: "staging".into(),
            env_b: "production".into(),
            host: String::new(),
            key: String::new(),
            summary: summary.into(),
            description: "d".into(),
            first_seen_ms: 1_800_000_000_000,
            fired_at_ms: 1_800_000_060_000,
            resolved_at_ms: None,
        }
    }

    fn event(action: Action, summary: &str) -> Event {
        Event {
            action,
            alert: alert(summary),
            at_ms: 1_800_000_060_000,
        }
    }

    #[test]
    fn the_standard_webhooks_reference_vector_verifies() {
        // The example from the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = webhook_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn short_or_malformed_secrets_are_refused() {
        assert!(signing_key("whsec_!!!").unwrap_err().contains("base64"));
        assert!(signing_key("short").unwrap_err().contains("16"));
        assert_eq!(signing_key("0123456789abcdef").unwrap().len(), 16);
    }

    #[test]
    fn alertmanager_labels_identify_without_values() {
        let v = alertmanager_alert(&alert("s"), SystemTime::UNIX_EPOCH, Some("https://ep"));
        let labels = v["labels"].as_object().unwrap();
        let keys: Vec<_> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["alertname", "env_a", "env_b", "kind", "service", "severity"]
        );
        assert_eq!(v["labels"]["alertname"], ALERT_NAME);
        assert_eq!(
            v["generatorURL"],
            format!(
                "https://ep/service?name=shop&a=staging&b=production#{}",
                crate::links::finding_anchor("image_digest|shop|production,staging||")
            )
        );
        let none = alertmanager_alert(&alert("s"), SystemTime::UNIX_EPOCH, None);
        assert!(none.get("generatorURL").is_none(), "{none}");
        assert_eq!(v["endsAt"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn slack_escapes_and_splits_and_stays_under_limits() {
        let long = "x".repeat(10_000);
        let mut events: Vec<Event> = (0..SLACK_EVENTS_PER_MESSAGE + 1)
            .map(|_| event(Action::Firing, "a <b> & c"))
            .collect();
        events.push(event(Action::Resolved, &long));
        let messages = slack_messages("shop", &events, None);
        assert_eq!(messages.len(), 2);
        let first = messages[0].to_string();
        assert!(first.contains("a &lt;b&gt; &amp; c"), "{first}");
        assert!(!first.contains("<b>"));
        for m in &messages {
            let blocks = m["blocks"].as_array().unwrap();
            assert!(blocks.len() <= 50);
            for b in blocks.iter().filter(|b| b["type"] == "section") {
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_MAX);
            }
        }
        assert!(
            messages[1]["text"]
                .as_str()
                .unwrap()
                .contains("1 firing, 1 resolved")
        );
    }

    #[test]
    fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
        let t = pagerduty_event("RK", &event(Action::Firing, "s"), None);
        let r = pagerduty_event("RK", &event(Action::Resolved, "s"), None);
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(t["dedup_key"], r["dedup_key"]);
        assert_eq!(t["routing_key"], "RK");
        assert_eq!(t["payload"]["severity"], "critical");
        let mut long = alert("s");
        long.id = "k".repeat(300);
        assert!(pagerduty_dedup_key(&long).len() <= PAGERDUTY_DEDUP_MAX);
    }

    #[test]
    fn the_webhook_body_names_the_action() {
        let b = webhook_body(&event(Action::Resolved, "s"), None);
        assert_eq!(b["type"], "envparity.alert.resolved");
        assert_eq!(b["data"]["service"], "shop");
        assert!(b["data"]["url"].is_null(), "{b}");
    }

    /// Every sink links to the finding's page, with the service name
    /// encoded; without `base_url`, none does.
    #[test]
    fn every_sink_links_to_the_page_of_the_finding() {
        let mut e = event(Action::Firing, "s");
        e.alert.service = "shop <&> #1".into();
        let url = format!(
            "https://ep.example/service?name=shop+%3C%26%3E+%231&a=staging&b=production#{}",
            crate::links::finding_anchor(&e.alert.id)
        );
        let base = Some("https://ep.example/");
        assert_eq!(page_url(&e.alert, base).as_deref(), Some(url.as_str()));
        assert_eq!(
            alertmanager_alert(&e.alert, SystemTime::UNIX_EPOCH, base)["generatorURL"],
            url.as_str()
        );
        assert_eq!(webhook_body(&e, base)["data"]["url"], url.as_str());
        let pd = pagerduty_event("RK", &e, base);
        assert_eq!(pd["links"][0]["href"], url.as_str(), "{pd}");
        assert_eq!(pd["client_url"], "https://ep.example/");
        assert_eq!(pd["payload"]["custom_details"]["url"], url.as_str());
        let slack = slack_messages(&e.alert.service, std::slice::from_ref(&e), base);
        let line = slack[0]["blocks"][1]["text"]["text"].as_str().unwrap();
        let escaped = url.replace('&', "&amp;");
        assert!(
            line.ends_with(&format!(" <{escaped}|open in envparity>")),
            "{line}"
        );
        // A line cut to Slack's limit keeps its link whole.
        let mut long = e.clone();
        long.alert.summary = "x".repeat(10_000);
        let slack = slack_messages("shop", std::slice::from_ref(&long), base);
        let line = slack[0]["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(line.chars().count() <= SLACK_SECTION_MAX);
        assert!(line.ends_with("|open in envparity>"), "{line}");

        assert!(webhook_body(&e, None)["data"]["url"].is_null());
        assert!(pagerduty_event("RK", &e, None).get("links").is_none());
        let plain = slack_messages("shop", std::slice::from_ref(&e), None);
        assert!(!plain[0].to_string().contains("open in envparity"));
    }
}
