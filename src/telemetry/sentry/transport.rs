//! The Sentry transport: a bounded queue the SDK fills from the request
//! path without ever waiting, and a thread of its own that empties it.
//!
//! Why a thread, and why several requests at once: the first version sent
//! one POST at a time as a task on the app's runtime, where it competed
//! with the requests it was reporting on; under load it delivered about
//! 2,200 envelopes a second and dropped the rest. Here the sending runs on
//! a dedicated thread (`perfscope-sentry`, a current-thread Tokio runtime
//! of its own), keeps HTTP connections alive, and has up to
//! [`MAX_IN_FLIGHT`] requests outstanding: an envelope is sent as soon as
//! one of them ends. Each answer's body is read (up to
//! [`MAX_ANSWER_BYTES`]) so its connection goes back to the pool.
//!
//! A request's transaction is finished here too (`finish_later`): the
//! SDK's `Transaction::finish` builds the whole event (the scope's
//! contexts and tags copied in, the SDK's description cloned, the
//! envelope made), about half of a sampled request's Sentry cost in
//! process (`benches/sentry_request.rs`). The request path only queues the
//! transaction and its end time; this thread finishes it, and the envelope
//! it makes goes straight to sending, never through the queue again.
//!
//! Rate limits ([`super::rate_limits`]) are checked when an envelope is
//! taken from the queue and updated as each answer arrives, all on the
//! thread's one task, so no lock is needed: an envelope already in flight
//! when a limit starts is answered 429 and counted like any other.
//!
//! Every envelope that is not delivered is counted in
//! `perfscope_telemetry_dropped_total{sink="sentry"}`: queue full,
//! failed, timed out, refused, or still queued or in flight when the
//! thread is stopped. The thread stops when the client shuts down (after
//! flushing within its deadline) or when the [`SentryGuard`] is dropped.
//!
//! [`SentryGuard`]: super::SentryGuard

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use sentry::types::Dsn;
use sentry::{Envelope, Transport};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::SentryDrops;
use super::rate_limits::{Admission, Category, RateLimits};

/// Envelopes queued before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 100;
/// Longest single POST.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests outstanding at once (and idle connections kept alive).
pub const MAX_IN_FLIGHT: usize = 8;
/// Bytes of an answer's body read to reuse its connection; a longer body
/// is abandoned with its connection.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the queue holds: an envelope the SDK made, or a request's
/// transaction for the thread to finish.
enum Outgoing {
    Envelope(Box<Envelope>),
    Finish(sentry::Transaction, SystemTime),
}

/// On the transport's thread while it finishes a transaction: the
/// envelopes the SDK hands back to that transport (named by its `pending`
/// counter), kept instead of queued, and whether another transport took
/// one instead.
struct Capture {
    owner: *const AtomicUsize,
    kept: Vec<Envelope>,
    elsewhere: bool,
}

thread_local! {
    static FINISHED: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Where the request path queues transactions to finish: the running
/// transport's queue (one client runs at a time; `None` while Sentry is
/// off).
static FINISHER: parking_lot::RwLock<Option<Finisher>> = parking_lot::RwLock::new(None);

/// The queue's sending side, for [`finish_later`], with the client whose
/// transactions it finishes.
#[derive(Clone)]
pub(super) struct Finisher {
    tx: mpsc::Sender<Outgoing>,
    pending: Arc<AtomicUsize>,
    dropped: Counter,
    client: Arc<sentry::Client>,
}

impl Finisher {
    /// Makes this the finisher the request path uses.
    pub(super) fn install(self) {
        *FINISHER.write() = Some(self);
    }

    /// No finisher (if this transport's is the one installed):
    /// transactions are finished where they end.
    pub(super) fn uninstall(&self) {
        let mut installed = FINISHER.write();
        if installed
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(&f.pending, &self.pending))
        {
            *installed = None;
        }
    }
}

/// Finishes `transaction` at `ended` on the transport's thread: the
/// request path pays for one queue push. A full queue drops it and counts
/// it (as the envelope it would have been). With no transport of
/// perfscope's running, or another client on the main hub (the app's
/// own), it is finished here, as the SDK would.
pub(crate) fn finish_later(transaction: sentry::Transaction, ended: SystemTime) {
    let finisher = FINISHER.read();
    let ours = finisher.as_ref().filter(|f| {
        sentry::Hub::main()
            .client()
            .is_some_and(|client| Arc::ptr_eq(&client, &f.client))
    });
    let Some(finisher) = ours else {
        drop(finisher);
        transaction.finish_with_timestamp(ended);
        return;
    };
    finisher.pending.fetch_add(1, Ordering::SeqCst);
    if let Err(error) = finisher.tx.try_send(Outgoing::Finish(transaction, ended)) {
        finisher.pending.fetch_sub(1, Ordering::SeqCst);
        finisher.dropped.inc();
        // Dropped unfinished, the transaction sends nothing.
        drop(error);
    }
}

/// The bounded, counting transport the SDK is given.
#[derive(Debug)]
pub(super) struct QueueTransport {
    tx: mpsc::Sender<Outgoing>,
    /// Queued plus in flight: what a flush waits for.
    pending: Arc<AtomicUsize>,
    dropped: Counter,
    stop: CancellationToken,
}

/// The transport's thread, stopped (and joined) by its owner.
#[derive(Debug)]
pub(super) struct TransportThread {
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TransportThread {
    /// Stops the thread (what it still holds is counted as dropped).
    pub(super) fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops the thread and waits for it (blocking: call off a runtime's
    /// workers).
    pub(super) fn join(mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl QueueTransport {
    /// The queue's sending side for transactions to finish (its client
    /// is set when it is installed).
    pub(super) fn finisher(&self, client: Arc<sentry::Client>) -> Finisher {
        Finisher {
            tx: self.tx.clone(),
            pending: self.pending.clone(),
            dropped: self.dropped.clone(),
            client,
        }
    }

    /// The transport and its running thread, sending to `dsn`.
    pub(super) fn spawn(dsn: Dsn, drops: SentryDrops) -> (Self, TransportThread) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let dropped = drops.dropped.clone();
        let worker = Worker {
            pending: pending.clone(),
            drops,
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("perfscope-sentry".into())
            .spawn(move || worker.run(dsn, rx));
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(error) => {
                // The queue fills and every envelope is counted as dropped.
                tracing::error!(%error, "the Sentry transport could not start: Sentry is off");
                None
            }
        };
        (
            Self {
                tx,
                pending,
                dropped,
                stop: stop.clone(),
            },
            TransportThread { stop, thread },
        )
    }
}

impl Transport for QueueTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        // Made by the thread finishing a transaction: sent from there.
        let envelope = FINISHED.with(|finished| match finished.borrow_mut().as_mut() {
            Some(capture) if std::ptr::eq(capture.owner, Arc::as_ptr(&self.pending)) => {
                capture.kept.push(envelope);
                None
            }
            Some(capture) => {
                capture.elsewhere = true;
                Some(envelope)
            }
            None => Some(envelope),
        });
        let Some(envelope) = envelope else {
            return;
        };
        if self
            .tx
            .try_send(Outgoing::Envelope(Box::new(envelope)))
            .is_err()
        {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.dropped.inc();
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until || self.stop.is_cancelled() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Flushes within `timeout`, then stops the thread.
    fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.stop.cancel();
        flushed
    }
}

/// What the thread owns.
struct Worker {
    pending: Arc<AtomicUsize>,
    drops: SentryDrops,
    stop: CancellationToken,
}

/// Where one envelope goes, read once from the DSN.
struct Endpoint {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: HeaderValue,
}

/// What an answer said that matters.
struct Answer {
    status: u16,
    rate_limits: Option<Vec<u8>>,
    retry_after: Option<Vec<u8>>,
}

/// How one envelope ended.
enum Outcome {
    Sent,
    RateLimited(Category),
    Failed,
}

impl Worker {
    /// The thread's body: a runtime of its own, delivering until stopped.
    fn run(self, dsn: Dsn, rx: mpsc::Receiver<Outgoing>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => runtime.block_on(self.deliver(dsn, rx)),
            Err(error) => {
                tracing::error!(%error, "the Sentry transport could not start: Sentry is off");
            }
        }
    }

    /// Takes envelopes while fewer than [`MAX_IN_FLIGHT`] are outstanding,
    /// sends each its category's limit lets through, and accounts for each
    /// answer; on stop, what is left is dropped and counted.
    async fn deliver(self, dsn: Dsn, mut rx: mpsc::Receiver<Outgoing>) {
        let endpoint = match Endpoint::new(&dsn) {
            Ok(endpoint) => endpoint,
            Err(error) => {
                tracing::error!(%error, "the Sentry transport could not start: Sentry is off");
                // Keep counting: what is queued and what comes is dropped.
                rx.close();
                while rx.recv().await.is_some() {
                    self.ended(Outcome::Failed);
                }
                return;
            }
        };
        let mut limits = RateLimits::default();
        let mut in_flight: JoinSet<(Category, Option<Answer>)> = JoinSet::new();
        let mut open = true;
        while open || !in_flight.is_empty() {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let outcome = match done {
                        Ok((category, Some(answer))) => {
                            limits.update(
                                answer.status,
                                answer.rate_limits.as_deref(),
                                answer.retry_after.as_deref(),
                                Instant::now(),
                            );
                            answer.outcome(category)
                        }
                        Ok((_, None)) | Err(_) => Outcome::Failed,
                    };
                    self.ended(outcome);
                }
                outgoing = rx.recv(), if open && in_flight.len() < MAX_IN_FLIGHT => {
                    let Some(outgoing) = outgoing else {
                        open = false;
                        continue;
                    };
                    let Some(envelope) = self.envelope_of(outgoing, &limits) else {
                        continue;
                    };
                    match limits.admit(envelope, Instant::now()) {
                        Admission::Limited(category) => self.ended(Outcome::RateLimited(category)),
                        Admission::Send(envelope) => {
                            let category = envelope.items().next().map_or(Category::Other, Category::of);
                            let mut body = Vec::with_capacity(1024);
                            if envelope.to_writer(&mut body).is_err() {
                                self.ended(Outcome::Failed);
                            } else {
                                let post = endpoint.post(body);
                                in_flight.spawn(async move { (category, post.await) });
                            }
                        }
                    }
                }
            }
        }
        // Stopped: what is in flight or queued will not be delivered.
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {
            self.ended(Outcome::Failed);
        }
        rx.close();
        // A transaction left unfinished sends nothing: one envelope lost.
        while rx.recv().await.is_some() {
            self.ended(Outcome::Failed);
        }
    }

    /// The envelope to send for what the queue held: a transaction is
    /// finished here first (the SDK hands its envelope back through
    /// [`FINISHED`]), unless Sentry's limits refuse transactions now.
    fn envelope_of(&self, outgoing: Outgoing, limits: &RateLimits) -> Option<Envelope> {
        match outgoing {
            Outgoing::Envelope(envelope) => Some(*envelope),
            Outgoing::Finish(..) if limits.is_limited(Category::Transaction, Instant::now()) => {
                // Not even built while Sentry refuses transactions.
                self.ended(Outcome::RateLimited(Category::Transaction));
                None
            }
            Outgoing::Finish(transaction, ended) => {
                FINISHED.with(|finished| {
                    *finished.borrow_mut() = Some(Capture {
                        owner: Arc::as_ptr(&self.pending),
                        kept: Vec::with_capacity(1),
                        elsewhere: false,
                    });
                });
                transaction.finish_with_timestamp(ended);
                let capture = FINISHED.with(|finished| finished.borrow_mut().take());
                // The transaction's own place in `pending`; each envelope
                // made holds one of its own.
                self.pending.fetch_sub(1, Ordering::SeqCst);
                let Capture {
                    kept, elsewhere, ..
                } = capture?;
                let mut made = kept.into_iter();
                let Some(first) = made.next() else {
                    // The client made nothing here: lost, unless another
                    // transport took it (and accounts for it).
                    if !elsewhere {
                        self.drops.dropped.inc();
                    }
                    return None;
                };
                // One transaction makes one envelope; any other is lost.
                for _ in made {
                    self.ended(Outcome::Failed);
                }
                Some(first)
            }
        }
    }

    /// Accounts for one envelope that left the queue.
    fn ended(&self, outcome: Outcome) {
        match outcome {
            Outcome::Sent => {}
            Outcome::RateLimited(category) => self.drops.rate_limited(category),
            Outcome::Failed => {
                self.drops.dropped.inc();
                tracing::debug!("a Sentry envelope was dropped");
            }
        }
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Endpoint {
    fn new(dsn: &Dsn) -> Result<Self, Box<dyn std::error::Error>> {
        let client = reqwest::Client::builder()
            .connect_timeout(SEND_TIMEOUT)
            .timeout(SEND_TIMEOUT)
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .tcp_nodelay(true)
            .build()?;
        let agent = concat!("perfscope/", env!("CARGO_PKG_VERSION"));
        Ok(Self {
            client,
            url: reqwest::Url::parse(dsn.envelope_api_url().as_str())?,
            auth: HeaderValue::try_from(dsn.to_auth(Some(agent)).to_string())?,
        })
    }

    /// POSTs `body`; the answer, its body read so the connection is kept,
    /// or `None` when it failed or timed out.
    fn post(&self, body: Vec<u8>) -> impl Future<Output = Option<Answer>> + Send + 'static {
        let request = self
            .client
            .post(self.url.clone())
            .header("x-sentry-auth", self.auth.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-sentry-envelope"),
            )
            .body(body)
            .send();
        async move {
            let mut response = request.await.ok()?;
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .map(|value: &HeaderValue| value.as_bytes().to_vec())
            };
            let answer = Answer {
                status: response.status().as_u16(),
                rate_limits: header("x-sentry-rate-limits"),
                retry_after: header("retry-after"),
            };
            let mut read = 0usize;
            while let Ok(Some(chunk)) = response.chunk().await {
                read += chunk.len();
                if read > MAX_ANSWER_BYTES {
                    break;
                }
            }
            Some(answer)
        }
    }
}

impl Answer {
    fn outcome(&self, category: Category) -> Outcome {
        match self.status {
            200..=299 => Outcome::Sent,
            429 => Outcome::RateLimited(category),
            _ => Outcome::Failed,
        }
    }
}
