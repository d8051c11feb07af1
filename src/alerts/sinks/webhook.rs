//! The webhook sink: each URL of `ALERT_WEBHOOK_URLS` gets a bounded queue
//! and one worker that POSTs each notification as JSON, signed with
//! HMAC-SHA256 when `ALERT_WEBHOOK_SECRET` is set
//! (`X-Perfscope-Signature: sha256=<hex of the body's MAC>`).
//!
//! Delivery retries connection errors, timeouts, 408, 429 and 5xx with
//! exponential backoff (250 ms doubling to 8 s) until
//! `PERFSCOPE_WEBHOOK_DEADLINE`; other 4xx answers are final. A full queue
//! drops the new notification and counts it
//! (`perfscope_telemetry_dropped_total{sink="webhook"}`), so a receiver
//! that is down or never answers cannot hold memory or the caller. On
//! shutdown each worker delivers what is queued until a flush deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Sink;
use crate::alerts::Notification;
use crate::config::Secret;
use crate::metrics::alerts::{AlertMetrics, NotificationLabels, SinkLabels};

/// Notifications queued per URL.
pub const QUEUE_CAPACITY: usize = 256;
/// Longest single attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for queued notifications.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-perfscope-signature";

/// The webhook sink: one queue per URL.
#[derive(Debug)]
pub struct WebhookSink {
    queues: Vec<mpsc::Sender<Arc<Notification>>>,
    metrics: AlertMetrics,
}

impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, notification: Arc<Notification>) {
        for queue in &self.queues {
            if queue.try_send(notification.clone()).is_err() {
                self.metrics
                    .dropped
                    .get_or_create(&SinkLabels { sink: "webhook" })
                    .inc();
                count(&self.metrics, &notification, "dropped");
            }
        }
    }
}

fn count(metrics: &AlertMetrics, notification: &Notification, outcome: &'static str) {
    metrics
        .notifications
        .get_or_create(&NotificationLabels {
            rule: notification.rule_label(),
            sink: "webhook",
            outcome,
        })
        .inc();
}

/// Why building the sink failed.
#[derive(Debug, thiserror::Error)]
#[error("webhook client: {0}")]
pub struct WebhookError(String);

impl WebhookSink {
    /// Starts one worker per URL; they stop (after flushing) when `cancel`
    /// fires.
    pub fn spawn(
        urls: &[Secret],
        secret: Option<&Secret>,
        deadline: Duration,
        metrics: AlertMetrics,
        cancel: &CancellationToken,
    ) -> Result<(Arc<Self>, Vec<JoinHandle<()>>), WebhookError> {
        let client = reqwest::Client::builder()
            .connect_timeout(ATTEMPT_TIMEOUT)
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("perfscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookError(e.to_string()))?;
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for url in urls {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            queues.push(tx);
            let worker = Worker {
                client: client.clone(),
                url: url.clone(),
                secret: secret.cloned(),
                deadline,
                metrics: metrics.clone(),
            };
            workers.push(tokio::spawn(worker.run(rx, cancel.clone())));
        }
        Ok((Arc::new(Self { queues, metrics }), workers))
    }
}

struct Worker {
    client: reqwest::Client,
    url: Secret,
    secret: Option<Secret>,
    deadline: Duration,
    metrics: AlertMetrics,
}

/// How one notification ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Rejected,
    Failed,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Notification>>, cancel: CancellationToken) {
        loop {
            let notification = tokio::select! {
                () = cancel.cancelled() => break,
                next = rx.recv() => match next {
                    Some(n) => n,
                    None => return,
                },
            };
            let delivery = self.deliver(&notification, Instant::now() + self.deadline);
            tokio::pin!(delivery);
            tokio::select! {
                _ = &mut delivery => continue,
                () = cancel.cancelled() => {}
            }
            // Shutting down mid-delivery: it gets the flush deadline.
            let flush_until = Instant::now() + FLUSH_DEADLINE;
            if tokio::time::timeout_at(flush_until.into(), delivery)
                .await
                .is_err()
            {
                count(&self.metrics, &notification, "dropped");
            }
            self.flush(&mut rx, flush_until).await;
            return;
        }
        self.flush(&mut rx, Instant::now() + FLUSH_DEADLINE).await;
    }

    /// Delivers what is queued until `until`; the rest is dropped and
    /// counted.
    async fn flush(&self, rx: &mut mpsc::Receiver<Arc<Notification>>, until: Instant) {
        rx.close();
        while let Ok(notification) = rx.try_recv() {
            let delivered = Instant::now() < until
                && tokio::time::timeout_at(
                    until.into(),
                    self.deliver(&notification, until.min(Instant::now() + self.deadline)),
                )
                .await
                .is_ok();
            if !delivered {
                count(&self.metrics, &notification, "dropped");
            }
        }
    }

    async fn deliver(&self, notification: &Notification, deadline: Instant) -> Outcome {
        let body = match serde_json::to_vec(notification) {
            Ok(body) => body,
            Err(_) => return Outcome::Failed,
        };
        let signature = self.secret.as_ref().map(|secret| sign(secret, &body));
        let mut backoff = Duration::from_millis(250);
        let outcome = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break Outcome::Failed;
            }
            let mut request = self
                .client
                .post(self.url.expose())
                .timeout(remaining.min(ATTEMPT_TIMEOUT))
                .header("content-type", "application/json")
                .header("x-perfscope-rule", notification.rule.as_str())
                .body(body.clone());
            if let Some(signature) = &signature {
                request = request.header(SIGNATURE_HEADER, signature.as_str());
            }
            let retry = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        break Outcome::Delivered;
                    }
                    let retryable = status.is_server_error()
                        || status.as_u16() == 408
                        || status.as_u16() == 429;
                    if !retryable {
                        break Outcome::Rejected;
                    }
                    format!("HTTP {status}")
                }
                Err(error) if error.is_timeout() => "timeout".to_owned(),
                Err(error) if error.is_connect() => "connection failed".to_owned(),
                Err(_) => "request failed".to_owned(),
            };
            let wait = backoff.min(deadline.saturating_duration_since(Instant::now()));
            tracing::debug!(rule = %notification.rule, reason = %retry, "webhook attempt failed; retrying");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(8));
        };
        let label = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        };
        if outcome != Outcome::Delivered {
            // The URL may embed a token: never log it.
            tracing::warn!(rule = %notification.rule, outcome = label, "a webhook notification was not delivered");
        }
        count(&self.metrics, notification, label);
        outcome
    }
}

/// `sha256=<hex>` of the body's HMAC-SHA256 under `secret`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231, test case 2: key "Jefe".
        let secret = Secret::new("Jefe");
        assert_eq!(
            sign(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
