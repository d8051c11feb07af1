//! # perfscope
//!
//! Performance monitoring for Poem/Tokio web APIs backed by PostgreSQL:
//! a library any Poem service can use, and the `perfscope` agent built on it.
//!
//! - [`Perfscope`] builds the metrics registry once and hands out the HTTP
//!   middleware ([`http::RequestMetrics`]), the measurement API
//!   ([`measure::Measurements`]), the mountable API ([`api::endpoint`]) and
//!   the runtime monitors ([`Perfscope::start`]).
//! - [`metrics`] defines every metric family, bounded by a series cap.
//! - [`runtime`] measures the Tokio runtime and the process.
//! - [`telemetry`] sends traces out — Sentry transactions and OTLP spans,
//!   one trace id in both and in the latency exemplars — through bounded
//!   queues that drop and count rather than wait.
//!
//! ```no_run
//! use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener};
//!
//! #[handler]
//! fn hello() -> &'static str { "hello" }
//!
//! # async fn run() -> std::io::Result<()> {
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let monitors = perfscope.start(&cancel);
//! let app = Route::new()
//!     .at("/hello", get(hello))
//!     .nest("/", perfscope::api::endpoint(&perfscope))
//!     .with(perfscope.middleware());
//! Server::new(TcpListener::bind("127.0.0.1:3000")).run(app).await?;
//! cancel.cancel();
//! monitors.join().await;
//! # Ok(()) }
//! ```

pub mod advice;
pub mod agent;
pub mod alerts;
pub mod analyze;
pub mod api;
pub mod batch;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
#[cfg(feature = "postgres")]
pub mod demo;
pub mod failure_log;
pub mod http;
pub mod measure;
pub mod metrics;
mod perfscope;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod runtime;
pub mod telemetry;
pub mod trace;
#[cfg(feature = "ui")]
pub mod ui;

pub use config::Config;
pub use perfscope::{BackgroundTasks, DatabaseHealth, Perfscope};
