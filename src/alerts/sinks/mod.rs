//! Where alert notifications go: the [`Sink`] trait and every sink —
//! [`log`] (always), [`webhook`] (feature `webhooks`, with
//! `ALERT_WEBHOOK_URLS`) and [`sentry`] (feature `sentry`, with
//! `SENTRY_DSN`). They sit together so adding a destination is one file
//! here and one line where [`crate::Perfscope::start`] installs it; the
//! rules ([`crate::alerts`]) only hand notifications over.

use std::sync::Arc;

use super::Notification;

pub mod log;
#[cfg(feature = "sentry")]
pub mod sentry;
#[cfg(feature = "webhooks")]
pub mod webhook;

/// Something notifications go to. `send` must not wait: queue or drop.
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// Its `sink` label.
    fn name(&self) -> &'static str;
    /// Takes a notification without waiting.
    fn send(&self, notification: Arc<Notification>);
}
