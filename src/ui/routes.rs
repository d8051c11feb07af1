//! Where the pages' route charts come from, chosen once at start-up: this
//! process's own history (its requests, its last hour; past the hour the
//! history store, read by the pages through `super::timeline`), or, with
//! `PERFSCOPE_PROMETHEUS_URL` set, a Prometheus server's view of every
//! replica over any range. The pages ask for a [`TimeRange`] and get rows
//! and the [`Origin`] that produced them, which they print beside the
//! chart.
//!
//! Prometheus failing never fails a page: the answer is this process's own
//! view with the reason, and for [`RETRY_AFTER`] after a failure the pages
//! do not ask again, so a Prometheus that is down costs one deadline per
//! interval instead of one per page load.

#[cfg(feature = "prometheus")]
use std::time::Instant;

use crate::Perfscope;
use crate::history::{RouteSummary, TimeRange};

/// How long the pages use their own view after Prometheus failed.
#[cfg(feature = "prometheus")]
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(15);

/// Where a page's route rows came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// This process's history (no Prometheus configured).
    #[default]
    Process,
    /// Prometheus, every series its selector picks.
    Prometheus {
        /// The selector, as sent.
        selector: String,
    },
    /// The history store: this process's requests kept across restarts
    /// (ranges past the hour, without Prometheus).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    Store,
    /// This process's history, because Prometheus failed.
    Fallback {
        /// Why, in a sentence (escaped where shown).
        reason: String,
    },
}

/// The rows and where they came from.
#[derive(Clone, Debug, Default)]
pub struct RouteView {
    /// Routes, busiest first.
    pub routes: Vec<RouteSummary>,
    /// Their source.
    pub origin: Origin,
}

/// The source of the route charts (see the module docs).
#[derive(Debug, Default)]
pub struct RouteSource {
    #[cfg(feature = "prometheus")]
    prometheus: Option<Remote>,
}

#[cfg(feature = "prometheus")]
#[derive(Debug)]
struct Remote {
    /// The client, or why none could be built.
    client: Result<crate::prometheus::Client, crate::prometheus::PrometheusError>,
    selector: crate::config::Selector,
    /// The last failure: when, and why.
    failed: parking_lot::Mutex<Option<(Instant, String)>>,
}

impl RouteSource {
    /// The source `perfscope`'s configuration names.
    pub fn new(perfscope: &Perfscope) -> Self {
        #[cfg(feature = "prometheus")]
        {
            let prometheus = perfscope
                .config()
                .prometheus
                .source
                .as_ref()
                .map(|source| Remote {
                    client: crate::prometheus::Client::new(&source.url),
                    selector: source.selector.clone(),
                    failed: parking_lot::Mutex::new(None),
                });
            Self { prometheus }
        }
        #[cfg(not(feature = "prometheus"))]
        {
            let _ = perfscope;
            Self::default()
        }
    }

    /// Whether the routes come from Prometheus (for every range).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub fn is_remote(&self) -> bool {
        #[cfg(feature = "prometheus")]
        {
            self.prometheus.is_some()
        }
        #[cfg(not(feature = "prometheus"))]
        {
            false
        }
    }

    /// The routes over `range`. This process's own view covers its last
    /// hour at most, whatever the range.
    pub async fn routes(&self, perfscope: &Perfscope, range: TimeRange) -> RouteView {
        #[cfg(feature = "prometheus")]
        if let Some(remote) = &self.prometheus {
            return remote.routes(perfscope, range).await;
        }
        let _ = range;
        RouteView {
            routes: perfscope.history().routes(),
            origin: Origin::Process,
        }
    }
}

#[cfg(feature = "prometheus")]
impl Remote {
    async fn routes(&self, perfscope: &Perfscope, range: TimeRange) -> RouteView {
        let recent = self
            .failed
            .lock()
            .clone()
            .filter(|(at, _)| at.elapsed() < RETRY_AFTER);
        let reason = match recent {
            Some((_, reason)) => reason,
            None => {
                let answer = match &self.client {
                    Ok(client) => {
                        crate::prometheus::route_summaries(client, &self.selector, &range).await
                    }
                    Err(error) => Err(error.clone()),
                };
                match answer {
                    Ok(routes) => {
                        *self.failed.lock() = None;
                        return RouteView {
                            routes,
                            origin: Origin::Prometheus {
                                selector: self.selector.to_string(),
                            },
                        };
                    }
                    Err(error) => {
                        let reason = error.to_string();
                        tracing::warn!(%reason, "Prometheus gave no route data; the pages show this process's own view");
                        *self.failed.lock() = Some((Instant::now(), reason.clone()));
                        reason
                    }
                }
            }
        };
        RouteView {
            routes: perfscope.history().routes(),
            origin: Origin::Fallback { reason },
        }
    }
}
