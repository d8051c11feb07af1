//! The regression rules, `statement_regression` and `route_regression`:
//! conditions fed by the history store's check
//! ([`crate::findings::regressions`]) rather than the runtime sample.
//!
//! The check's hour-long window is already the hold, so a regression fires
//! on the first check that finds it and resolves on the first that no
//! longer does; its notifications carry the before/after numbers, the
//! normalized statement and the route. The list itself is kept (bounded by
//! the check) for the findings.

use std::time::{Duration, Instant};

use super::state::Levels;
use super::{Alerts, REGRESSION_RATIO, Rule};
use crate::findings::regressions::{Measure, Regression};
use std::sync::Arc;

const RULES: [Rule; 2] = [Rule::StatementRegression, Rule::RouteRegression];

fn rule_of(regression: &Regression) -> Rule {
    match regression.measure {
        Measure::MeanTime | Measure::ReadsPerCall => Rule::StatementRegression,
        Measure::RouteP95 => Rule::RouteRegression,
    }
}

impl Alerts {
    /// Takes the regression check's list at `now`: fires each new
    /// regression, resolves each one no longer listed, keeps the list.
    pub fn evaluate_regressions(&self, current: &[Regression], now: Instant) {
        let levels = Levels {
            threshold: REGRESSION_RATIO,
            hold: Duration::ZERO,
            resolve_below: REGRESSION_RATIO,
        };
        let mut out = Vec::new();
        {
            let mut book = self.book.lock();
            let gone: Vec<(Rule, String)> = book
                .conditions
                .iter()
                .filter(|((rule, subject), condition)| {
                    RULES.contains(rule)
                        && condition.state.is_firing()
                        && !current
                            .iter()
                            .any(|r| rule_of(r) == *rule && r.subject() == *subject)
                })
                .map(|(key, _)| key.clone())
                .collect();
            for (rule, subject) in gone {
                let told = out.len();
                self.condition(&mut book, rule, &subject, 0.0, levels, now, &mut out);
                for notification in &mut out[told..] {
                    notification.message = format!(
                        "{subject} is no longer at least {REGRESSION_RATIO}× its baseline."
                    );
                }
                book.conditions.remove(&(rule, subject));
            }
            for regression in current {
                let told = out.len();
                let ratio = regression.ratio().min(f64::MAX);
                self.condition(
                    &mut book,
                    rule_of(regression),
                    &regression.subject(),
                    ratio,
                    levels,
                    now,
                    &mut out,
                );
                for notification in &mut out[told..] {
                    notification.message = regression.summary();
                    notification.statement = regression.statement.as_deref().map(str::to_owned);
                    notification.route = regression.route.clone();
                    notification.before = Some(regression.before);
                    notification.after = Some(regression.after);
                }
            }
            self.publish(&mut book, &out, &RULES);
            book.regressions = current.to_vec();
        }
        for notification in out {
            self.notify(Arc::new(notification));
        }
    }

    /// The last regression check's list, worst first.
    pub fn regressions(&self) -> Vec<Regression> {
        self.book.lock().regressions.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlertsConfig;
    use crate::metrics::alerts::AlertMetrics;

    fn regression(after: f64) -> Regression {
        Regression {
            measure: Measure::MeanTime,
            database: Some(Arc::from("shop")),
            queryid: Some(42),
            statement: Some(Arc::from("SELECT * FROM orders WHERE customer_id = $1")),
            route: Some("GET /orders".into()),
            before: 2.0,
            after,
            before_count: 5_000,
            after_count: 300,
        }
    }

    #[test]
    fn a_regression_fires_once_with_its_numbers_and_resolves_once() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = AlertMetrics::register(&mut registry);
        let config = crate::Config::default();
        let alerts = Alerts::new(
            &AlertsConfig::default(),
            &config.runtime,
            config.database.slow_query_threshold,
            metrics,
        );
        let now = Instant::now();
        alerts.evaluate_regressions(&[regression(6.0)], now);
        alerts.evaluate_regressions(&[regression(6.5)], now + Duration::from_secs(300));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("perfscope_alerts_firing{rule=\"statement_regression\"} 1"),
            "{text}"
        );
        assert_eq!(alerts.firing().len(), 1);
        assert_eq!(alerts.regressions().len(), 1);
        alerts.evaluate_regressions(&[], now + Duration::from_secs(600));
        let told = alerts.recent();
        let states: Vec<&str> = told.iter().rev().map(|n| n.state.as_str()).collect();
        assert_eq!(states, vec!["firing", "resolved"]);
        let fired = &told[1];
        assert_eq!(fired.rule, "statement_regression");
        assert_eq!(fired.subject, "shop/42");
        assert_eq!((fired.before, fired.after), (Some(2.0), Some(6.0)));
        assert_eq!(fired.route.as_deref(), Some("GET /orders"));
        assert!(fired.message.contains("3.0×"), "{}", fired.message);
        assert!(alerts.firing().is_empty());
        assert!(alerts.regressions().is_empty());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("perfscope_alerts_firing{rule=\"statement_regression\"} 0"),
            "{text}"
        );
    }
}
