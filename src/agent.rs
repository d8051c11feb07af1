//! The agent: perfscope serving its own API over HTTP(S), with its own
//! middleware and monitors, shutting down in order.
//!
//! Order on SIGTERM or Ctrl-C: `/readyz` turns 503, the listener stops
//! accepting, in-flight requests drain (bounded by
//! `PERFSCOPE_SHUTDOWN_GRACE`), then background tasks are cancelled and
//! joined.

use std::future::Future;
use std::net::SocketAddr;

use poem::listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpListener};
use poem::web::Redirect;
use std::sync::Arc;

use poem::http::Method;
use poem::{Endpoint, EndpointExt, IntoResponse, PathPattern, Request, Response, Route, Server};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::{Perfscope, api};

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setting is unusable (e.g. an unreadable TLS file).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listener could not be bound, or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// `GET /` redirects to the docs (a nest at "/" owns "/", so this sits
/// in front of the routes rather than beside them).
async fn redirect_root<E: Endpoint>(endpoint: Arc<E>, req: Request) -> poem::Result<Response> {
    if req.uri().path() == "/" && req.method() == Method::GET {
        let home = if cfg!(feature = "ui") { "/ui" } else { "/docs" };
        let mut response = Redirect::see_other(home).into_response();
        response.set_data(PathPattern(Arc::from("/")));
        return Ok(response);
    }
    endpoint.call(req).await.map(IntoResponse::into_response)
}

/// Binds the listener (TLS when configured).
async fn bind(config: &Config) -> Result<BoxAcceptor, AgentError> {
    let io_error = |source| AgentError::Io {
        context: format!("binding {}", config.server.listen),
        source,
    };
    let tcp = TcpListener::bind(config.server.listen);
    match &config.server.tls {
        None => Ok(tcp.into_acceptor().await.map_err(io_error)?.boxed()),
        #[cfg(feature = "tls")]
        Some(files) => {
            let read = |var: &'static str, path: &std::path::Path| {
                std::fs::read(path).map_err(|e| ConfigError {
                    var,
                    value: path.display().to_string(),
                    expected: format!("expected a readable PEM file ({e})"),
                })
            };
            let cert = read("PERFSCOPE_TLS_CERT", &files.cert)?;
            let key = read("PERFSCOPE_TLS_KEY", &files.key)?;
            let tls =
                crate::http::tls::server_config(&cert, &key).map_err(|expected| ConfigError {
                    var: "PERFSCOPE_TLS_CERT",
                    value: files.cert.display().to_string(),
                    expected,
                })?;
            let tcp = tcp.into_acceptor().await.map_err(io_error)?;
            Ok(crate::http::tls::Tls::new(tcp, tls).boxed())
        }
        #[cfg(not(feature = "tls"))]
        Some(files) => Err(AgentError::Config(ConfigError {
            var: "PERFSCOPE_TLS_CERT",
            value: files.cert.display().to_string(),
            expected: "TLS support is not compiled in; build with --features tls".into(),
        })),
    }
}

/// Serves the agent until `shutdown` resolves; `on_bound` gets the bound
/// address (useful with port 0).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), AgentError> {
    let mut config = config;
    // The agent keeps history unless told otherwise; a host app keeps none.
    if config.store.data_dir == crate::config::DataDir::Unset {
        config.store.data_dir =
            crate::config::DataDir::Dir(crate::config::DEFAULT_AGENT_DATA_DIR.into());
    }
    let perfscope = Perfscope::new(config);
    serve_with(&perfscope, Route::new(), shutdown, on_bound).await
}

/// Serves the agent's endpoints plus `routes` (a host's own, e.g. the
/// demo's) with `perfscope`'s middleware, until `shutdown` resolves.
pub async fn serve_with(
    perfscope: &Perfscope,
    routes: Route,
    shutdown: impl Future<Output = ()> + Send,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), AgentError> {
    let config = perfscope.config().clone();
    let acceptor = bind(&config).await?;
    let bound = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .unwrap_or(config.server.listen);
    let cancel = CancellationToken::new();
    let background = perfscope.start(&cancel);
    #[cfg(feature = "postgres")]
    let database = watch_database(perfscope, &config, &cancel).await?;

    #[cfg(feature = "ui")]
    let routes = routes.nest("/ui", crate::ui::endpoint(perfscope));
    let app = routes
        .nest("/", api::endpoint(perfscope))
        .around(redirect_root)
        .with(crate::http::BodyDeadline::new(config.server.body_timeout))
        .with(crate::http::catch_panic())
        .with(perfscope.middleware());
    #[cfg(feature = "sentry")]
    let app = app.with(perfscope.sentry_middleware());
    // Outermost, so the Sentry transaction continues the OpenTelemetry
    // span's trace.
    #[cfg(feature = "otlp")]
    let app = app.with(perfscope.otel_middleware());

    tracing::info!(
        address = %bound,
        tls = config.server.tls.is_some(),
        admin_token = config.server.admin_token.is_some(),
        "perfscope listening"
    );
    // Set before the address is announced: whoever connects first reads it.
    let http = perfscope.http_metrics();
    http.connections_limit
        .set(i64::try_from(config.server.max_http_connections).unwrap_or(i64::MAX));
    on_bound(bound);

    let draining = {
        let perfscope = perfscope.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            perfscope.begin_shutdown();
        }
    };
    // At most PERFSCOPE_MAX_HTTP_CONNECTIONS open (more wait in the
    // backlog); slow-loris clients are cut at the head, HTTP/2 at its
    // preface, slow bodies by the BodyDeadline above; idle kept-alive
    // connections after IDLE_CONNECTION_TIMEOUT.
    let acceptor = crate::http::ConnectionLimit::new(
        acceptor,
        config.server.max_http_connections,
        http.connections.clone(),
    );
    let acceptor = crate::http::HeaderTimeout::new(acceptor, config.server.header_timeout);
    let served = Server::new_with_acceptor(acceptor)
        .idle_timeout(crate::config::IDLE_CONNECTION_TIMEOUT)
        .run_with_graceful_shutdown(app, draining, Some(config.server.shutdown_grace))
        .await;
    cancel.cancel();
    background.join().await;
    #[cfg(feature = "postgres")]
    if let Some(task) = database {
        let _ = task.await;
    }
    tracing::info!("stopped");
    served.map_err(|source| AgentError::Io {
        context: "serving".into(),
        source,
    })
}

/// Connections of the pool that reads a database of
/// `PERFSCOPE_WATCH_DATABASES` at once (a pass, an API read, and for a
/// server's first database the active session history's kept
/// connection), within the agent's budget.
#[cfg(feature = "postgres")]
const WATCHED_POOL_SIZE: u32 = 3;

/// How long `DATABASE_URL`'s health may go without a connection attempt
/// before the status task opens one to check (its pool holds none idle).
#[cfg(feature = "postgres")]
const DATABASE_HEALTH_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects the pool to `DATABASE_URL` (when set) and keeps its gauges and
/// the readiness report current; starts the readers of it and of every
/// database of `PERFSCOPE_WATCH_DATABASES`, each on its own small pool, so
/// one database being down never stops the others. A database that is down at start-up is
/// reported, not fatal: the agent must stay up to report the outage.
///
/// Every one of these pools is the agent's own: it opens connections
/// within the connection budget and closes them when released, so the
/// readers' passes take turns and hold nothing between passes; a watched
/// database's health is its last pass (pinging would open connections).
#[cfg(feature = "postgres")]
async fn watch_database(
    perfscope: &Perfscope,
    config: &Config,
    cancel: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, AgentError> {
    let mut tasks = Vec::new();
    for (name, url) in &config.database.watch {
        let settings = crate::db::PoolSettings {
            name: name.clone(),
            min: 0,
            max: WATCHED_POOL_SIZE,
            // Databases take turns for the budget: a pass may wait its
            // interval for a connection.
            wait_timeout: config.readers.interval,
            budget: Some(perfscope.connection_budget().clone()),
            ..Default::default()
        };
        let pool = perfscope
            .connect_pool(url.expose(), settings)
            .await
            .map_err(|error| ConfigError {
                var: "PERFSCOPE_WATCH_DATABASES",
                value: format!("{name}={}", url.redacted()),
                expected: format!(
                    "expected a postgres:// URL or key=value connection string ({error})"
                ),
            })?;
        let health = perfscope.clone();
        let label = name.clone();
        let probe_after = config.readers.interval.saturating_mul(2) + config.readers.timeout;
        tasks.push(
            pool.spawn_status_probing(cancel.clone(), probe_after, move |up| {
                health.set_watched_health(&label, up);
            }),
        );
        tasks.push(perfscope.watch_database_at(name, pool, url, cancel.clone()));
    }
    let Some(url) = &config.database.url else {
        return Ok((!tasks.is_empty()).then(|| {
            tokio::spawn(async move {
                for task in tasks {
                    let _ = task.await;
                }
            })
        }));
    };
    let settings = crate::db::PoolSettings {
        min: 0,
        max: config.database.pool_max,
        wait_timeout: config.readers.interval,
        budget: Some(perfscope.connection_budget().clone()),
        ..Default::default()
    };
    let pool = perfscope
        .connect_pool(url.expose(), settings)
        .await
        .map_err(|error| ConfigError {
            var: "DATABASE_URL",
            value: url.redacted(),
            expected: format!(
                "expected a postgres:// URL or key=value connection string ({error})"
            ),
        })?;
    let health = perfscope.clone();
    let status = pool.spawn_status_probing(cancel.clone(), DATABASE_HEALTH_PROBE, move |up| {
        health.set_database_health(up);
    });
    let readers = perfscope.watch_database_at("default", pool, url, cancel.clone());
    perfscope.enable_maintenance(url.clone());
    Ok(Some(tokio::spawn(async move {
        let _ = status.await;
        let _ = readers.await;
        for task in tasks {
            let _ = task.await;
        }
    })))
}

/// Registers SIGTERM and SIGINT (Ctrl-C) handlers right away and returns a
/// future that resolves on either. Call it inside the runtime before
/// binding, so a signal that arrives as soon as the agent listens is never
/// met by the default action (exit without draining).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                    one.recv().await;
                }
                (Err(_), Err(_)) => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
