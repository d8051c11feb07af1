//! When alerts fire and where their notifications go: the hold and
//! de-duplication windows and the webhooks. `crate::alerts` takes
//! [`AlertsConfig`] (with the thresholds it watches, which belong to the
//! runtime monitor and the slow-query log).

use std::time::Duration;

use super::defaults::*;
use super::parse::{millis, token};
use super::{ConfigError, RawConfig, Secret};

/// Alert rules' timing and the webhooks notifications go to.
#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// How long a condition must hold before its alert fires.
    pub hold_for: Duration,
    /// At most one slow-query alert per statement fingerprint per window.
    pub dedup_window: Duration,
    /// Webhook URLs alerts are posted to (they may embed tokens, so they
    /// are secrets).
    pub webhook_urls: Vec<Secret>,
    /// Key of the HMAC-SHA256 signature of each webhook body.
    pub webhook_secret: Option<Secret>,
    /// How long a webhook notification is retried before it is given up.
    pub webhook_deadline: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            hold_for: Duration::from_millis(DEFAULT_ALERT_FOR_MS),
            dedup_window: Duration::from_millis(DEFAULT_ALERT_DEDUP_WINDOW_MS),
            webhook_urls: Vec::new(),
            webhook_secret: None,
            webhook_deadline: Duration::from_millis(DEFAULT_WEBHOOK_DEADLINE_MS),
        }
    }
}

impl AlertsConfig {
    /// Checks the alert settings of `raw`.
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            webhook_urls: webhook_urls(raw.alert_webhook_urls.as_deref())?,
            webhook_secret: token("ALERT_WEBHOOK_SECRET", raw.alert_webhook_secret.as_deref())?,
            hold_for: millis(
                "PERFSCOPE_ALERT_FOR",
                raw.alert_for.as_deref(),
                0,
                86_400_000,
                defaults.hold_for,
            )?,
            dedup_window: millis(
                "PERFSCOPE_ALERT_DEDUP_WINDOW",
                raw.alert_dedup_window.as_deref(),
                1_000,
                86_400_000,
                defaults.dedup_window,
            )?,
            webhook_deadline: millis(
                "PERFSCOPE_WEBHOOK_DEADLINE",
                raw.webhook_deadline.as_deref(),
                100,
                600_000,
                defaults.webhook_deadline,
            )?,
        })
    }
}

/// `ALERT_WEBHOOK_URLS`: comma-separated http(s) URLs. They may embed
/// tokens (Slack, Teams), so errors never show them.
fn webhook_urls(value: Option<&str>) -> Result<Vec<Secret>, ConfigError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut urls = Vec::new();
    for (i, url) in value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .enumerate()
    {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace)
        });
        if !host_ok {
            return Err(ConfigError::new(
                "ALERT_WEBHOOK_URLS",
                "***",
                format!(
                    "expected comma-separated http:// or https:// URLs (URL {} is not one)",
                    i + 1
                ),
            ));
        }
        urls.push(Secret::new(url));
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_checked_and_never_shown() {
        let raw = RawConfig {
            alert_webhook_urls: Some(
                "https://hooks.example.com/T0/B0/xoxb-secret, http://127.0.0.1:9000/hook".into(),
            ),
            alert_webhook_secret: Some("webhook-signing-secret-01".into()),
            alert_for: Some("5000".into()),
            ..Default::default()
        };
        let config = raw.validate().expect("valid");
        assert_eq!(config.alerts.webhook_urls.len(), 2);
        assert_eq!(config.alerts.hold_for, Duration::from_secs(5));
        assert!(!format!("{config:?}").contains("xoxb-secret"));
        let raw = RawConfig {
            alert_webhook_urls: Some("https://ok.example.com/a,ftp://files/xoxb-secret".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.starts_with("ALERT_WEBHOOK_URLS=***: expected"), "{err}");
        assert!(err.contains("URL 2"), "{err}");
        assert!(!err.contains("xoxb-secret"), "{err}");
        let raw = RawConfig {
            alert_webhook_secret: Some("short".into()),
            ..Default::default()
        };
        assert!(
            raw.validate()
                .unwrap_err()
                .to_string()
                .starts_with("ALERT_WEBHOOK_SECRET=***")
        );
    }
}
