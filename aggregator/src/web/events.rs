//! `GET /events`: the fleet's change generation as server-sent events, so
//! that an open page asks for itself again only when something changed
//! (the page script, [`super::assets::LIVE`]).
//!
//! A stream sends the generation at once (`id` and `data` are the number),
//! then again whenever it moves, at most once every [`EVERY`]: a burst of
//! changes within that second is one event, carrying the latest
//! generation. Between events a keep-alive comment goes out every
//! [`KEEP_ALIVE`], well inside the listener's idle limit.
//!
//! Bounds: a stream is part of its connection's task (no task of its own,
//! nothing buffered but the latest number), and at most [`MAX_STREAMS`]
//! streams are open at once — as many as the listener serves connections,
//! so HTTP/2, which carries many streams over one connection, cannot open
//! more than HTTP/1.1 could. Beyond that a stream is refused with 503 and
//! the script falls back to polling. Every stream ends when the view shuts
//! down ([`Changes::close`]), so that a graceful stop does not wait for
//! streams that never end.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::Web;
use super::error::WebError;

/// The least time between two events of a stream.
pub const EVERY: Duration = Duration::from_secs(1);
/// How often a stream with nothing to say sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Streams open at once.
pub const MAX_STREAMS: usize = super::listener::MAX_CONNECTIONS;
/// How long a browser waits before connecting again after a stream broke.
const RETRY: Duration = Duration::from_secs(3);

/// What the streams watch: the generation, and the view shutting down (a
/// stream outliving the router that opened it, as in tests, just goes on).
#[derive(Debug, Clone)]
pub struct Changes {
    generation: watch::Receiver<u64>,
    closing: Arc<watch::Sender<()>>,
    streams: Arc<Semaphore>,
}

impl Changes {
    /// Streams of `generation` (the fleet's [`crate::fleet::Generation`]).
    pub fn new(generation: watch::Receiver<u64>) -> Self {
        Changes {
            generation,
            closing: Arc::new(watch::Sender::new(())),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }

    /// Ends every stream open now or opened later.
    pub fn close(&self) {
        self.streams.close();
        self.closing.send_replace(());
    }

    /// A stream of the generation, or `None` when [`MAX_STREAMS`] are open
    /// or the view is shutting down.
    pub fn stream(&self) -> Option<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        let permit = Arc::clone(&self.streams).try_acquire_owned().ok()?;
        let open = Open {
            generation: self.generation.clone(),
            closing: self.closing.subscribe(),
            sent: None,
            _permit: permit,
        };
        Some(futures_util::stream::unfold(open, Open::next))
    }
}

/// One open stream.
struct Open {
    generation: watch::Receiver<u64>,
    closing: watch::Receiver<()>,
    /// When the last event was sent (none yet: send at once).
    sent: Option<Instant>,
    _permit: OwnedSemaphorePermit,
}

impl Open {
    /// The next event: at once for the first, then once the generation
    /// moved and [`EVERY`] passed since the last; `None` (the end) when the
    /// fleet or the view goes away.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        let mut event = Event::default();
        match self.sent {
            None => event = event.retry(RETRY),
            Some(sent) => {
                tokio::select! {
                    moved = self.generation.changed() => moved.ok()?,
                    Ok(()) = self.closing.changed() => return None,
                }
                // What moves meanwhile is carried by this one event.
                tokio::select! {
                    () = tokio::time::sleep_until(sent + EVERY) => {}
                    Ok(()) = self.closing.changed() => return None,
                }
            }
        }
        let generation = self.generation.borrow_and_update().to_string();
        self.sent = Some(Instant::now());
        Some((Ok(event.id(&generation).data(generation)), self))
    }
}

/// `GET /events`: the stream, or 503 when too many are open.
pub async fn stream(State(web): State<Web>) -> Response {
    match web.changes.stream() {
        Some(events) => Sse::new(events)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response(),
        None => WebError::unavailable(format!(
            "{MAX_STREAMS} event streams are open, the most this view serves; the page asks again every few seconds instead"
        ))
        .into_response(),
    }
}
