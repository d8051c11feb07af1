//! Sending an encoded batch ([`super::encode`]) to the collector, over
//! HTTP/protobuf ([`http`]) or gRPC ([`grpc`]), from the export thread.
//!
//! Both run on the export thread's own current-thread Tokio runtime: the
//! connection, the request and gzip all happen on that thread while it
//! waits for the answer, so no other thread is woken per batch (the
//! opentelemetry-otlp exporter handed each HTTP batch to reqwest's
//! blocking client, a second thread, and ran gRPC on the app's runtime).
//!
//! What opentelemetry-otlp did, kept: `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`
//! on every request, gzip as configured, one deadline
//! ([`crate::config::OtlpConfig::export_timeout`]) per batch, and its
//! recommended retries inside that deadline (up to 3 more attempts, 100 ms
//! doubling to 1.6 s with up to 100 ms of jitter, a server's `Retry-After`
//! seconds honoured) on the answers it retried: a network error, HTTP 429,
//! 502, 503, 504, gRPC UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED,
//! OUT_OF_RANGE, DATA_LOSS. Any other answer drops the batch (the caller
//! counts it). A partial success (a 2xx answer whose body says some spans
//! were rejected) is taken as success: its body is read only so the
//! connection can be kept, not decoded.

mod grpc;
mod http;

use std::time::{Duration, Instant};

use crate::config::{OtlpConfig, OtlpProtocol};

/// Attempts after the first (opentelemetry-otlp's recommended policy).
const MAX_RETRIES: u32 = 3;
/// The first wait before a retry, doubled after each.
const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between attempts (a server's `Retry-After` may ask
/// more, up to [`MAX_THROTTLE`]).
const MAX_DELAY: Duration = Duration::from_millis(1600);
/// Random time added to each wait, at most.
const MAX_JITTER: Duration = Duration::from_millis(100);
/// The longest `Retry-After` honoured.
const MAX_THROTTLE: Duration = Duration::from_secs(600);
/// Bytes of an answer read so its connection can be reused; a longer
/// answer is abandoned with its connection.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// `user-agent` of every export.
const USER_AGENT: &str = concat!("perfscope/", env!("CARGO_PKG_VERSION"));

/// Why one attempt failed, and whether to try again.
#[derive(Debug)]
pub(super) struct Failure {
    /// What to log (no header, body or span content).
    pub(super) reason: String,
    pub(super) retry: Retry,
}

/// Whether a failed attempt is tried again.
#[derive(Debug, PartialEq)]
pub(super) enum Retry {
    /// Not retried: the batch is dropped.
    No,
    /// Retried after the policy's backoff.
    Backoff,
    /// Retried after at least this long (the server asked).
    After(Duration),
}

impl Failure {
    fn new(reason: impl Into<String>, retry: Retry) -> Self {
        Self {
            reason: reason.into(),
            retry,
        }
    }
}

/// The transport of one pipeline.
pub(super) enum Sender {
    Http(http::HttpSender),
    Grpc(grpc::GrpcSender),
}

impl Sender {
    /// The sender `config` describes. Call it inside the runtime it will
    /// send on (the gRPC channel is bound to it).
    pub(super) fn new(config: &OtlpConfig) -> Result<Self, String> {
        match config.protocol {
            OtlpProtocol::HttpProtobuf => http::HttpSender::new(config).map(Self::Http),
            OtlpProtocol::Grpc => grpc::GrpcSender::new(config).map(Self::Grpc),
        }
    }

    /// Sends one encoded request, retrying as the module docs say, within
    /// `deadline`.
    pub(super) async fn send(&mut self, body: &[u8], deadline: Duration) -> Result<(), String> {
        let started = Instant::now();
        let mut attempts = 0;
        let mut delay = INITIAL_DELAY;
        let mut cap = MAX_DELAY;
        // A body made once for every attempt (gzip included).
        let prepared = match self {
            Self::Http(sender) => sender.prepare(body),
            Self::Grpc(sender) => sender.prepare(body),
        };
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            let attempt = match self {
                Self::Http(sender) => sender.post(prepared.clone(), left).await,
                Self::Grpc(sender) => sender.export(prepared.clone(), left).await,
            };
            let failure = match attempt {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            let wait = match failure.retry {
                _ if attempts >= MAX_RETRIES => return Err(failure.reason),
                Retry::No => return Err(failure.reason),
                Retry::Backoff => delay,
                Retry::After(asked) => {
                    let asked = asked.min(MAX_THROTTLE);
                    if asked > cap {
                        cap = MAX_THROTTLE;
                    }
                    delay = delay.max(asked);
                    delay
                }
            };
            let wait = (wait + jitter()).min(cap);
            if wait >= deadline.saturating_sub(started.elapsed()) {
                return Err(format!("{} (no time left to retry)", failure.reason));
            }
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(cap);
            attempts += 1;
        }
    }
}

/// Up to [`MAX_JITTER`], from the clock's nanoseconds (spreading retries
/// needs no better randomness).
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.subsec_nanos());
    Duration::from_nanos(u64::from(nanos) % (MAX_JITTER.as_nanos() as u64 + 1))
}

/// `Retry-After` in seconds (an HTTP date is not read: plain backoff).
fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds).min(MAX_THROTTLE))
}

#[cfg(test)]
mod tests;
