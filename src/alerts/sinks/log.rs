//! The log sink: every notification as a `tracing` line (`warn` when
//! firing, `info` when resolved), counted as delivered. It is always the
//! first sink of [`crate::alerts::Alerts`], a sink like the others rather
//! than a special case inside the evaluation.

use std::sync::Arc;

use super::Sink;
use crate::alerts::Notification;
use crate::metrics::alerts::{AlertMetrics, NotificationLabels};

/// Notifications to the log.
#[derive(Debug)]
pub struct LogSink {
    metrics: AlertMetrics,
}

impl LogSink {
    /// A log sink counting into `metrics`.
    pub fn new(metrics: AlertMetrics) -> Self {
        Self { metrics }
    }
}

impl Sink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send(&self, notification: Arc<Notification>) {
        let rule = notification.rule_label();
        match notification.state.as_str() {
            "resolved" => tracing::info!(
                rule,
                subject = %notification.subject,
                value = notification.value,
                "alert resolved: {}",
                notification.message
            ),
            _ => tracing::warn!(
                rule,
                subject = %notification.subject,
                value = notification.value,
                "alert: {}",
                notification.message
            ),
        }
        self.metrics
            .notifications
            .get_or_create(&NotificationLabels {
                rule,
                sink: self.name(),
                outcome: "delivered",
            })
            .inc();
    }
}
