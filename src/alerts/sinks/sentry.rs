//! The Sentry alert sink: each notification as a Sentry event, through
//! the same bounded transport as the spans. It lives with the other sinks,
//! not in [`crate::telemetry::sentry`], so the exporter knows nothing of
//! alerts and alerts reach Sentry only through this one file.

use std::sync::Arc;

use super::Sink;
use crate::alerts::Notification;
use crate::telemetry::sentry::enabled;

/// Alert notifications as Sentry events (`warning` when firing or for a
/// slow query, `info` when resolved).
#[derive(Debug, Default)]
pub struct AlertEvents;

impl Sink for AlertEvents {
    fn name(&self) -> &'static str {
        "sentry"
    }

    fn send(&self, notification: Arc<Notification>) {
        if !enabled() {
            return;
        }
        let level = if notification.state == "resolved" {
            sentry::Level::Info
        } else {
            sentry::Level::Warning
        };
        // A hub of its own (an alert belongs to no request): scopes pushed
        // on the shared main hub from several threads would interleave.
        let hub = sentry::Hub::new_from_top(sentry::Hub::main());
        hub.configure_scope(|scope| {
            scope.set_tag("alert.rule", notification.rule.as_str());
            scope.set_tag("alert.state", notification.state.as_str());
            scope.set_tag("alert.subject", notification.subject.as_str());
            scope.set_extra("value", notification.value.into());
            scope.set_extra("threshold", notification.threshold.into());
            if let Some(statement) = &notification.statement {
                scope.set_extra("statement", statement.as_str().into());
            }
        });
        hub.capture_message(&notification.message, level);
    }
}
