//! A metrics endpoint the host chooses how to guard: open (Prometheus
//! inside the cluster, no token), behind the token, or on a listener of
//! its own (an address only the scraper reaches).
//!
//! The API's `/api/performance/metrics` always needs a token; many teams
//! scrape without one, on a port the network already guards. Each choice
//! is one call, and each answers the same OpenMetrics text and content
//! type as the API, from the same registry.

use std::net::SocketAddr;

use poem::endpoint::make_sync;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, RouteMethod, Server};
use poem_openapi::auth::Bearer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Perfscope;
use crate::api::{Access, BearerToken, authorize};
use crate::http::{BodyDeadline, ConnectionGauges, ConnectionLimit, HeaderTimeout};
use crate::metrics::OPENMETRICS_CONTENT_TYPE;

/// Connections a separately bound metrics listener keeps open at once
/// (a scraper or two; more wait in the backlog).
pub const LISTENER_CONNECTIONS: usize = 8;

/// Who may read the metrics endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone who reaches it.
    Open,
    /// `Authorization: Bearer` with `PERFSCOPE_ADMIN_TOKEN` or
    /// `PERFSCOPE_METRICS_TOKEN`, checked in constant time (as the API's
    /// metrics endpoint); 401 otherwise, and always when neither is set.
    Token,
}

/// `GET` answering the exposition, for the host to route where it wants:
/// `.at("/metrics", endpoint(&perfscope, MetricsAccess::Open))`.
pub fn endpoint(
    perfscope: &Perfscope,
    access: MetricsAccess,
) -> impl Endpoint<Output = Response> + use<> {
    let perfscope = perfscope.clone();
    RouteMethod::new().get(make_sync(move |request| {
        answer(&perfscope, access, &request)
    }))
}

fn answer(perfscope: &Perfscope, access: MetricsAccess, request: &Request) -> Response {
    if access == MetricsAccess::Token {
        let config = &perfscope.config().server;
        if let Err(refusal) = authorize(
            &bearer(request),
            Access::Metrics,
            config.admin_token.as_ref(),
            config.metrics_token.as_ref(),
        ) {
            return refusal.into_response();
        }
    }
    match perfscope.encode_metrics() {
        Ok(text) => Response::builder()
            .content_type(OPENMETRICS_CONTENT_TYPE)
            .body(text),
        Err(error) => {
            tracing::error!(%error, "encoding metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The request's bearer token (empty when there is none: refused).
fn bearer(request: &Request) -> BearerToken {
    let token = request
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    BearerToken(Bearer { token })
}

/// A metrics listener of its own, from [`serve`].
#[derive(Debug)]
pub struct MetricsListener {
    address: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl MetricsListener {
    /// The bound address (the port chosen when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Waits until the listener stopped (after the token fired and open
    /// scrapes drained).
    pub async fn join(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Serves the open exposition at `GET /metrics` on `listen`, apart from
/// the host's server, until `cancel` fires; everything else there is 404.
/// The listener is bounded as the agent's: [`LISTENER_CONNECTIONS`] open
/// connections, `PERFSCOPE_HEADER_TIMEOUT` for the head,
/// `PERFSCOPE_BODY_TIMEOUT` for a body, `PERFSCOPE_SHUTDOWN_GRACE` to
/// drain. Its one task is spawned here and stops with `cancel` (join it
/// with [`MetricsListener::join`]).
pub async fn serve(
    perfscope: &Perfscope,
    listen: SocketAddr,
    cancel: CancellationToken,
) -> std::io::Result<MetricsListener> {
    let config = &perfscope.config().server;
    let acceptor = TcpListener::bind(listen).into_acceptor().await?;
    let address = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .unwrap_or(listen);
    // Its connections are not the host's: counted apart, in no family.
    let acceptor =
        ConnectionLimit::new(acceptor, LISTENER_CONNECTIONS, ConnectionGauges::default());
    let acceptor = HeaderTimeout::new(acceptor, config.header_timeout);
    let app = Route::new()
        .at("/metrics", endpoint(perfscope, MetricsAccess::Open))
        .with(BodyDeadline::new(config.body_timeout));
    let grace = config.shutdown_grace;
    let task = tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .idle_timeout(crate::config::IDLE_CONNECTION_TIMEOUT)
            .run_with_graceful_shutdown(app, cancel.cancelled_owned(), Some(grace))
            .await
    });
    tracing::info!(address = %address, "perfscope metrics listening");
    Ok(MetricsListener { address, task })
}
