//! [`BodyLimit`]: refuses request bodies over a size with 413.
//!
//! Poem's `SizeLimit` demands a `Content-Length` on every request, GETs
//! included; this one rejects a declared length over the limit at once and
//! reads a chunked body only up to the limit before refusing it, so a client
//! cannot make the agent buffer more than `max_bytes`. Before answering 413
//! it reads and drops up to 1 MiB (or 1 s) of the refused body, so the
//! client reads the answer rather than a reset, and a kept-alive connection
//! stays usable for its next request.

use poem::http::StatusCode;
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Body, Endpoint, Middleware, Request, Result};
use tokio::io::AsyncReadExt;

/// Middleware limiting request bodies to `max_bytes`.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit {
    max_bytes: usize,
}

impl BodyLimit {
    /// A limit of `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            max_bytes: self.max_bytes,
        }
    }
}

/// The endpoint produced by [`BodyLimit`].
#[derive(Debug)]
pub struct BodyLimitEndpoint<E> {
    inner: E,
    max_bytes: usize,
}

/// At most this much of an over-limit chunked body is read and discarded
/// before the 413 goes out.
const DRAIN_BYTES: u64 = 1024 * 1024;
/// For at most this long.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads and drops up to [`DRAIN_BYTES`] of `body`, for at most
/// [`DRAIN_TIME`].
async fn discard(body: impl tokio::io::AsyncRead + Send) {
    let rest = body.take(DRAIN_BYTES);
    let _ = tokio::time::timeout(
        DRAIN_TIME,
        tokio::io::copy(&mut Box::pin(rest), &mut tokio::io::sink()),
    )
    .await;
}

fn too_large(max_bytes: usize) -> poem::Error {
    poem::Error::from_string(
        format!("request body is larger than the limit of {max_bytes} bytes"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        match req.headers().typed_get::<ContentLength>() {
            // Hyper enforces a declared length, so a body within it cannot
            // grow past it.
            Some(ContentLength(length)) if length > self.max_bytes as u64 => {
                // Read the refused body first when it is small enough, so
                // the connection stays usable: a client that reuses it for
                // its next request would otherwise race its close.
                if length <= DRAIN_BYTES {
                    discard(req.take_body().into_async_read()).await;
                }
                return Err(too_large(self.max_bytes));
            }
            Some(_) => {}
            None if req
                .headers()
                .contains_key(poem::http::header::TRANSFER_ENCODING) =>
            {
                let limit = self.max_bytes as u64 + 1;
                let mut buffer = Vec::new();
                let mut body = req.take_body().into_async_read();
                (&mut body)
                    .take(limit)
                    .read_to_end(&mut buffer)
                    .await
                    .map_err(|e| {
                        poem::Error::from_string(e.to_string(), StatusCode::BAD_REQUEST)
                    })?;
                if buffer.len() > self.max_bytes {
                    // Discard a bounded rest (bytes and time) before
                    // answering: a client still sending then reads the 413
                    // instead of a reset connection.
                    discard(body).await;
                    return Err(too_large(self.max_bytes));
                }
                req.set_body(Body::from(buffer));
            }
            None => {}
        }
        self.inner.call(req).await
    }
}
