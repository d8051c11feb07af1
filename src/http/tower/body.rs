//! [`MeasuredBody`]: a response body that, for a gRPC call, finishes the
//! call's measurement when the body ends — with the `grpc-status` of its
//! trailers, UNKNOWN when it ended without one, CANCELLED when it was
//! dropped before its end (the caller went away).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use super::Pending;
use super::grpc;

pin_project_lite::pin_project! {
    /// The layer's response body: the inner body, plus the measurement
    /// still to finish when it ends (gRPC only).
    pub struct MeasuredBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for MeasuredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(pending) = this.project().pending.take() {
                pending.finish(200, Some(grpc::CANCELLED));
            }
        }
    }
}

impl<B> MeasuredBody<B> {
    /// A body with nothing left to measure.
    pub(super) fn plain(inner: B) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// A gRPC body whose end finishes `pending`.
    pub(super) fn until_trailers(inner: B, pending: Pending) -> Self {
        Self {
            inner,
            pending: Some(pending),
        }
    }
}

impl<B: Body> Body for MeasuredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        if this.pending.is_some() {
            let code = match &frame {
                Some(Ok(frame)) => frame.trailers_ref().map(grpc::status_in),
                Some(Err(_)) => Some(Some(grpc::UNKNOWN)),
                None => Some(None),
            };
            if let Some(code) = code
                && let Some(pending) = this.pending.take()
            {
                pending.finish(200, Some(code.unwrap_or(grpc::UNKNOWN)));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
