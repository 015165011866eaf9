//! Delivery of one request to a sink: timeouts, retries with backoff on
//! 429, 5xx and network errors (honouring `Retry-After`), no retry on any
//! other 4xx. Errors never carry the URL (Slack's URL is its credential).

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use crate::config::SinkConfig;

/// The longest wait between attempts, however large the backoff or a
/// receiver's `Retry-After`.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// The longest backoff without a `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Bytes of a receiver's answer kept for the log.
const ANSWER_MAX: usize = 512;

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undelivered {
    /// The receiver refused it for good (a 4xx other than 429).
    #[error("refused with HTTP {status}: {answer}")]
    Refused {
        /// The status code.
        status: u16,
        /// The start of its answer, escaped.
        answer: String,
    },
    /// Every attempt failed with a retryable error.
    #[error("gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
}

/// A shared HTTP client (connection pools are per client).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("envparity/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot configure the HTTP client; using defaults");
            reqwest::Client::new()
        })
}

/// The delay before attempt `attempt + 1` (1-based `attempt`): the sink's
/// backoff doubled per attempt, capped, with up to 10% jitter so that many
/// sinks failing together do not retry in step.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = doubled.min(MAX_BACKOFF);
    capped + capped.mul_f64(fastrand::f64() * 0.1)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_WAIT`].
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or_default(),
    };
    Some(wait.min(MAX_WAIT))
}

/// A transport failure in words, with its causes but never the URL.
fn transport_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within the timeout of {}",
            humantime::format_duration(timeout)
        );
    }
    let mut text = if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn answer(text: &str) -> String {
    let cut: String = text.chars().take(ANSWER_MAX).collect();
    cut.escape_debug().to_string()
}

/// POSTs a JSON `body` to `url` until it is accepted (2xx), refused (4xx
/// other than 429) or `sink.max_attempts` are spent. `headers` is called
/// per attempt (signatures carry the attempt's time).
pub async fn post(
    client: &reqwest::Client,
    sink: &SinkConfig,
    url: &str,
    body: &[u8],
    headers: impl Fn() -> HeaderMap,
) -> Result<(), Undelivered> {
    let mut last = String::new();
    for attempt in 1..=sink.max_attempts {
        let result = client
            .post(url)
            .timeout(sink.timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .headers(headers())
            .body(body.to_vec())
            .send()
            .await;
        let wait = match result {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let hinted = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, SystemTime::now()));
                let text = answer(&response.text().await.unwrap_or_default());
                if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                    return Err(Undelivered::Refused {
                        status: status.as_u16(),
                        answer: text,
                    });
                }
                last = format!("HTTP {}: {text}", status.as_u16());
                hinted.unwrap_or_else(|| backoff(sink.backoff, attempt))
            }
            Err(e) => {
                last = transport_error(&e, sink.timeout);
                backoff(sink.backoff, attempt)
            }
        };
        if attempt < sink.max_attempts {
            tracing::warn!(
                sink = %sink.name,
                attempt,
                max_attempts = sink.max_attempts,
                error = %last,
                retry_in = %humantime::format_duration(wait),
                "notification not accepted; will retry"
            );
            tokio::time::sleep(wait).await;
        }
    }
    Err(Undelivered::GaveUp {
        attempts: sink.max_attempts,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(1);
        let within = |d: Duration, lo: u64| {
            d >= Duration::from_secs(lo) && d <= Duration::from_secs(lo).mul_f64(1.1)
        };
        assert!(within(backoff(base, 1), 1));
        assert!(within(backoff(base, 2), 2));
        assert!(within(backoff(base, 4), 8));
        assert!(within(backoff(base, 30), 60));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(20));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(20)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(20));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("86400", now), Some(MAX_WAIT));
        assert_eq!(retry_after("soon", now), None);
    }
}
