//! Alert and telemetry-sink metrics, fed by [`crate::alerts`]:
//! `perfscope_alerts_firing{rule}`,
//! `perfscope_alert_notifications_total{rule, sink, outcome}` and
//! `perfscope_telemetry_dropped_total{sink}` and
//! `perfscope_telemetry_rate_limited_total{sink, category}` (fed by the
//! Sentry transport). Every label is a closed set,
//! so these families need no cap.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `rule` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: &'static str,
}

/// Labels of `perfscope_alert_notifications_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub rule: &'static str,
    /// `log` or `webhook`.
    pub sink: &'static str,
    /// `delivered`, `rejected` (a 4xx), `failed` (gave up at the
    /// deadline) or `dropped` (the sink's queue was full).
    pub outcome: &'static str,
}

/// `sink` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: &'static str,
}

/// Labels of `perfscope_telemetry_rate_limited_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitedLabels {
    /// `sentry`.
    pub sink: &'static str,
    /// The data category refused (`transaction`, `error`, …, `other`).
    pub category: &'static str,
}

/// The alert families.
#[derive(Debug, Clone)]
pub struct AlertMetrics {
    /// `perfscope_alerts_firing{rule}`: subjects firing per rule.
    pub firing: Family<RuleLabels, Gauge>,
    /// `perfscope_alert_notifications_total{rule, sink, outcome}`.
    pub notifications: Family<NotificationLabels, Counter>,
    /// `perfscope_telemetry_dropped_total{sink}`.
    pub dropped: Family<SinkLabels, Counter>,
    /// `perfscope_telemetry_rate_limited_total{sink, category}`.
    pub rate_limited: Family<RateLimitedLabels, Counter>,
}

impl AlertMetrics {
    /// Defines and registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            firing: Family::default(),
            notifications: Family::default(),
            dropped: Family::default(),
            rate_limited: Family::default(),
        };
        registry.register(
            "perfscope_alerts_firing",
            "Alert subjects firing, per rule",
            metrics.firing.clone(),
        );
        registry.register(
            "perfscope_alert_notifications",
            "Alert notifications by rule, sink and outcome (delivered, rejected, failed, dropped)",
            metrics.notifications.clone(),
        );
        registry.register(
            "perfscope_telemetry_dropped",
            "Items a telemetry sink dropped because its bounded queue was full",
            metrics.dropped.clone(),
        );
        registry.register(
            "perfscope_telemetry_rate_limited",
            "Items a telemetry sink dropped because the receiver's rate limits refused their category (counted in perfscope_telemetry_dropped_total too)",
            metrics.rate_limited.clone(),
        );
        metrics
    }
}
