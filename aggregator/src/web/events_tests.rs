//! `/events` through the real router over a real fleet: a report moves the
//! generation and the open stream says so; a burst of changes is coalesced
//! into events at least [`EVERY`] apart, the last carrying the latest
//! generation. No assertion on speed: the bounds follow from the spacing
//! the server guarantees, and waits are generous.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, BodyDataStream};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use tower::ServiceExt;

use super::events::{Changes, EVERY, MAX_STREAMS};
use super::pages_tests::{container, demo_fleet, plain_peer, snapshot};
use super::{Access, Web, router};
use crate::fleet::{Fleet, Generation};

/// How long a test waits for an event before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// The data of a stream's events, one at a time.
struct Events {
    body: BodyDataStream,
    buffer: String,
}

impl Events {
    /// Opens `/events` on the view of `fleet`.
    async fn open(
        fleet: &Fleet,
        api: &Arc<dyn envparity_proto::v1::query_service_server::QueryService>,
    ) -> Self {
        let app = router(
            Web::new(Arc::clone(api), fleet.generation().watch()),
            Access::certificates_only(),
        );
        let mut request = Request::get("/events").body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(plain_peer()));
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        Events {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event's generation (keep-alive comments skipped).
    async fn next(&mut self) -> u64 {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                        return data.parse().unwrap();
                    }
                    continue;
                }
                let chunk = self.body.next().await.expect("the stream ended").unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("no event came")
    }
}

#[tokio::test]
async fn events_announce_a_report_with_a_greater_generation() {
    let (_dir, fleet, api) = demo_fleet().await;
    let mut events = Events::open(&fleet, &api).await;
    let first = events.next().await;
    assert_eq!(first, fleet.generation().current());

    // checkout repaired in production.
    let mut repair = snapshot(
        "prod-1",
        "production",
        vec![container("checkout", "aa"), container("cart", "cc")],
    );
    repair.sequence = 2;
    fleet.push(repair, SystemTime::now()).await.unwrap();
    let after = events.next().await;
    assert!(after > first, "{after} after {first}");
    assert_eq!(after, fleet.generation().current());
}

#[tokio::test]
async fn a_burst_of_changes_is_coalesced_into_events_a_second_apart() {
    let (_dir, fleet, api) = demo_fleet().await;
    let mut events = Events::open(&fleet, &api).await;
    let first = events.next().await;

    const BURST: u64 = 100;
    let start = Instant::now();
    let bumping = Arc::clone(&fleet);
    let burst = tokio::spawn(async move {
        for _ in 0..BURST {
            bumping.generation().bump();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut seen = vec![first];
    while *seen.last().unwrap() != first + BURST {
        seen.push(events.next().await);
    }
    let elapsed = start.elapsed();
    burst.await.unwrap();

    let sent = seen.len() - 1;
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "generations must grow: {seen:?}"
    );
    // Events leave at least EVERY apart, the first after `start`: `sent`
    // events take at least (sent - 1) × EVERY to arrive.
    let most = usize::try_from(elapsed.as_millis() / EVERY.as_millis()).unwrap() + 1;
    assert!(
        sent <= most,
        "{sent} events in {elapsed:?} ({seen:?}): more than one a second"
    );
    assert!(
        sent < usize::try_from(BURST).unwrap(),
        "a burst of {BURST} changes came as {sent} events"
    );
}

#[tokio::test]
async fn closing_the_view_ends_open_streams_and_refuses_new_ones() {
    let generation = Generation::starting_at(7);
    let changes = Changes::new(generation.watch());
    let mut open = Box::pin(changes.stream().expect("a stream"));
    assert!(open.next().await.is_some(), "the first event");
    changes.close();
    let ended = tokio::time::timeout(PATIENCE, open.next())
        .await
        .expect("the stream did not end");
    assert!(ended.is_none());
    assert!(changes.stream().is_none());
}

#[tokio::test]
async fn at_most_max_streams_are_open_at_once() {
    let generation = Generation::starting_at(0);
    let changes = Changes::new(generation.watch());
    let mut open: Vec<_> = (0..MAX_STREAMS)
        .map(|_| changes.stream().expect("a stream below the limit"))
        .collect();
    assert!(changes.stream().is_none(), "one more than MAX_STREAMS");
    drop(open.pop());
    assert!(changes.stream().is_some(), "a place freed");
}
