//! Sending one notification: the HTTP client, the body each kind of sink
//! is sent for one event, and the test notification of `envparity alerts
//! test`.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};

use super::{Action, Alert, Event, deliver, sink};
use crate::config::{AlertsConfig, SinkConfig, Target};
use crate::parity::Severity;

/// Sends notifications: an HTTP client and the links to put in them.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The HTTP client; the sink tasks post with it too.
    pub(super) client: reqwest::Client,
    base_url: Option<String>,
}

impl Sender {
    /// A sender for `config`'s sinks.
    pub fn new(config: &AlertsConfig) -> Self {
        Sender {
            client: deliver::client(),
            base_url: config.base_url.clone(),
        }
    }

    /// Sends a test notification to the sink named `name` now, with the
    /// sink's retry rules; for `envparity alerts test`.
    pub async fn test(&self, config: &AlertsConfig, name: &str) -> Result<(), String> {
        let sink = config
            .sinks
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "no sink named {name:?} (configured: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
        let now = SystemTime::now();
        let at_ms = envparity_proto::time::unix_millis(now);
        let alert = Alert {
            id: format!("test|{name}|{at_ms}"),
            kind: crate::parity::Kind::ImageDigest,
            severity: Severity::Info,
            service: "envparity-test".to_owned(),
            env_a: "test".to_owned(),
            env_b: String::new(),
            host: String::new(),
            key: String::new(),
            summary: format!("envparity test notification to sink {name}"),
            description: "Sent by `envparity alerts test`; no action needed.".to_owned(),
            first_seen_ms: at_ms,
            fired_at_ms: at_ms,
            resolved_at_ms: None,
        };
        let test = Event {
            action: Action::Test,
            alert: alert.clone(),
            at_ms,
        };
        let result = match &sink.target {
            Target::Alertmanager { url, .. } => {
                // An info alert that ends by itself in a minute.
                let body = serde_json::to_vec(&[sink::alertmanager_alert(
                    &alert,
                    now + Duration::from_secs(60),
                    self.base_url.as_deref(),
                )])
                .unwrap_or_default();
                deliver::post(
                    &self.client,
                    sink,
                    &alertmanager_endpoint(url),
                    &body,
                    HeaderMap::new,
                )
                .await
            }
            Target::PagerDuty { .. } => {
                // Trigger, then resolve, so nobody is left paged.
                let resolve = Event {
                    action: Action::Resolved,
                    ..test.clone()
                };
                match self.deliver_event(sink, &test).await {
                    Ok(()) => self.deliver_event(sink, &resolve).await,
                    e => e,
                }
            }
            _ => self.deliver_event(sink, &test).await,
        };
        result.map_err(|e| e.to_string())
    }

    /// Delivers one event to an event sink (Slack, PagerDuty, webhook).
    pub async fn deliver_event(
        &self,
        sink: &SinkConfig,
        event: &Event,
    ) -> Result<(), deliver::Undelivered> {
        let base_url = self.base_url.as_deref();
        match &sink.target {
            Target::Alertmanager { .. } => Ok(()),
            Target::Slack { url } => {
                for message in sink::slack_messages(
                    &event.alert.service,
                    std::slice::from_ref(event),
                    base_url,
                ) {
                    let body = serde_json::to_vec(&message).unwrap_or_default();
                    deliver::post(&self.client, sink, url.expose(), &body, HeaderMap::new).await?;
                }
                Ok(())
            }
            Target::PagerDuty { url, routing_key } => {
                let body = serde_json::to_vec(&sink::pagerduty_event(
                    routing_key.expose(),
                    event,
                    base_url,
                ))
                .unwrap_or_default();
                deliver::post(&self.client, sink, url, &body, HeaderMap::new).await
            }
            Target::Webhook { url, secret } => {
                let key = crate::config::signing_key(secret.expose()).map_err(|e| {
                    deliver::Undelivered::Refused {
                        status: 0,
                        answer: e,
                    }
                })?;
                let body =
                    serde_json::to_vec(&sink::webhook_body(event, base_url)).unwrap_or_default();
                let id = event.message_id();
                let headers = || {
                    let ts = envparity_proto::time::unix_millis(SystemTime::now()) / 1000;
                    let sig = sink::webhook_signature(&key, &id, ts, &body);
                    let mut h = HeaderMap::new();
                    for (name, value) in [
                        ("webhook-id", id.clone()),
                        ("webhook-timestamp", ts.to_string()),
                        ("webhook-signature", sig),
                    ] {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            h.insert(name, v);
                        }
                    }
                    h
                };
                deliver::post(&self.client, sink, url, &body, headers).await
            }
        }
    }
}

/// The Alertmanager API v2 endpoint that takes alerts, under `base`.
pub(super) fn alertmanager_endpoint(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}
