//! One bound on the request bytes the server holds at once, across every
//! connection and stream.
//!
//! Per-connection and per-stream limits still multiply: many connections
//! times many streams times a 16 MiB message is more memory than the host
//! has. So every gRPC request body passes through a [`Metered`] body that
//! reads each message's 5-byte header and, before a byte of the message is
//! buffered, reserves the length it declares (at most the largest message
//! the server accepts) from one shared [`Budget`]. tonic reserves that much
//! buffer on reading the header, so this is the memory a request really
//! takes. When the budget cannot cover it, the request fails at once with
//! `RESOURCE_EXHAUSTED` (the client retries later) and nothing more of it
//! is read. The reservation is given back when the body is dropped: when
//! the message has been decoded, or the request failed or was cancelled.
//!
//! Callers without credentials never get this far for reports: the
//! interceptor of [`super::auth`] refuses them on their headers alone.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

use super::throttle::{INTERVAL, Throttle};
use crate::metrics::Metrics;
use crate::warn_throttled;

/// The default budget: 16 of the largest messages.
pub const DEFAULT_BYTES: usize = 16 * super::validate::limits::MAX_MESSAGE_BYTES;

/// Request bytes the server may hold at once.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    largest_message: usize,
    used: AtomicUsize,
    metrics: Arc<Metrics>,
    exhausted: Throttle,
}

impl Budget {
    /// A budget of `limit` bytes; one message never reserves more than
    /// `largest_message` (tonic refuses larger ones after their header).
    pub fn new(limit: usize, largest_message: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            largest_message,
            used: AtomicUsize::new(0),
            metrics,
            exhausted: Throttle::new(INTERVAL),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A tower layer metering every request body against a [`Budget`].
#[derive(Debug, Clone)]
pub struct Meter(pub Arc<Budget>);

impl<S> tower::Layer<S> for Meter {
    type Service = Metering<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metering {
            inner,
            budget: Arc::clone(&self.0),
        }
    }
}

/// The service of [`Meter`].
#[derive(Debug, Clone)]
pub struct Metering<S> {
    inner: S,
    budget: Arc<Budget>,
}

impl<S> tower::Service<http::Request<Body>> for Metering<S>
where
    S: tower::Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let budget = Arc::clone(&self.budget);
        self.inner
            .call(request.map(|body| Body::new(Metered::new(body, budget))))
    }
}

/// A request body that reserves each message's declared length from the
/// budget before passing any of it on.
#[derive(Debug)]
pub struct Metered {
    inner: Body,
    budget: Arc<Budget>,
    /// Bytes reserved, given back on drop.
    held: usize,
    /// Header bytes of the next message seen so far.
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl Metered {
    fn new(inner: Body, budget: Arc<Budget>) -> Self {
        Metered {
            inner,
            budget,
            held: 0,
            header: [0; 5],
            header_len: 0,
            remaining: 0,
        }
    }

    /// Walks `data` through the message framing, reserving each message as
    /// its header completes.
    fn account(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len < 5 {
                continue;
            }
            self.header_len = 0;
            let declared = u32::from_be_bytes([
                self.header[1],
                self.header[2],
                self.header[3],
                self.header[4],
            ]) as usize;
            self.remaining = declared;
            let want = declared.min(self.budget.largest_message) + 5;
            if !self.budget.reserve(want) {
                self.budget.metrics.request_budget_exhausted();
                warn_throttled!(
                    self.budget.exhausted,
                    declared,
                    in_flight = self.budget.used(),
                    limit = self.budget.limit,
                    "request refused: the in-flight request budget is full"
                );
                return Err(Status::resource_exhausted(format!(
                    "the aggregator is busy reading other requests ({} of {} bytes in flight); retry later",
                    self.budget.used(),
                    self.budget.limit
                )));
            }
            self.held += want;
        }
        Ok(())
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.budget.release(self.held);
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref()
            && let Err(status) = self.account(data)
        {
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut f = vec![0u8];
        f.extend_from_slice(&len.to_be_bytes());
        f
    }

    fn metered(budget: &Arc<Budget>) -> Metered {
        Metered::new(Body::empty(), Arc::clone(budget))
    }

    #[test]
    fn a_declared_length_is_reserved_at_its_header_and_given_back_on_drop() {
        let budget = Budget::new(100, 1_000, Arc::new(Metrics::new()));
        let mut a = metered(&budget);
        // The header arrives in two pieces; nothing is reserved until whole.
        a.account(&frame(40)[..3]).unwrap();
        assert_eq!(budget.used(), 0);
        a.account(&frame(40)[3..]).unwrap();
        assert_eq!(budget.used(), 45);
        // The message's own bytes reserve nothing more.
        a.account(&[7u8; 40]).unwrap();
        assert_eq!(budget.used(), 45);
        let mut b = metered(&budget);
        let refused = b.account(&frame(60)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("45 of 100"), "{refused:?}");
        drop((a, b));
        assert_eq!(budget.used(), 0);
        // Once the first request is done, the second one's retry fits.
        let mut retry = metered(&budget);
        retry.account(&frame(60)).unwrap();
        assert_eq!(budget.used(), 65);
        drop(retry);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_huge_declared_length_reserves_at_most_the_largest_message() {
        let budget = Budget::new(10_000, 1_000, Arc::new(Metrics::new()));
        let mut m = metered(&budget);
        m.account(&frame(u32::MAX)).unwrap();
        assert_eq!(budget.used(), 1_005);
    }

    #[test]
    fn several_messages_in_one_chunk_each_reserve() {
        let budget = Budget::new(1_000, 1_000, Arc::new(Metrics::new()));
        let mut m = metered(&budget);
        let mut chunk = frame(3);
        chunk.extend_from_slice(b"abc");
        chunk.extend_from_slice(&frame(2));
        chunk.extend_from_slice(b"de");
        m.account(&chunk).unwrap();
        assert_eq!(budget.used(), 8 + 7);
    }
}
