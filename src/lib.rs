//! # perfscope
//!
//! Performance monitoring for Rust web APIs on Tokio backed by PostgreSQL
//! — Poem, axum and tonic (any tower server): a library those services
//! use, and the `perfscope` agent built on it (feature `agent`).
//!
//! - [`Perfscope`] builds the metrics registry once and hands out the
//!   measurement API ([`measure::Measurements`]), the API and pages a host
//!   app mounts under their own prefixes ([`mount`]) and the runtime
//!   monitors ([`Perfscope::start`]); [`Integration`] (feature `postgres`)
//!   builds it from the agent's environment variables with the app's timed
//!   pool and the readers of its database, in one step.
//! - Requests are measured by one framework-neutral core
//!   ([`http::RequestCore`]) with two front ends: the Poem middleware
//!   ([`Perfscope::middleware`], [`http::RequestMetrics`]) and a
//!   `tower::Layer`:
#![cfg_attr(
    feature = "axum",
    doc = "  [`Perfscope::axum_layer`] for axum (route templates from `MatchedPath`),"
)]
#![cfg_attr(
    feature = "tower",
    doc = "  [`Perfscope::grpc_layer`] for tonic (by gRPC method) and \
           [`Perfscope::tower_layer`] for any tower router (see [`http::tower`])."
)]
#![cfg_attr(
    not(feature = "tower"),
    doc = "  `axum_layer`, `grpc_layer` and `tower_layer` (features `axum` and `tower`)."
)]
//! - [`metrics`] defines every metric family, bounded by a series cap.
//! - [`runtime`] measures the Tokio runtime and the process.
//! - [`telemetry`] sends traces out — Sentry transactions and OTLP spans,
//!   one trace id in both and in the latency exemplars — through bounded
//!   queues that drop and count rather than wait.
//!
//! The README's "As a library" shows each stack in a few lines (compiled
//! in `examples/readme.rs`). On Poem, without a database:
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
//! let app = perfscope::mount::Mount::new(&perfscope)
//!     .onto(Route::new().at("/hello", get(hello)))
//!     .with(perfscope.middleware());
//! let ctrl_c = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! Server::new(TcpListener::bind("127.0.0.1:3000"))
//!     .run_with_graceful_shutdown(app, ctrl_c, Some(std::time::Duration::from_secs(30)))
//!     .await?; // drained: now stop the monitors
//! cancel.cancel();
//! monitors.join().await;
//! # Ok(()) }
//! ```

// The library's surface: what a host app uses.
pub mod alerts;
pub mod api;
pub mod batch;
pub mod cache;
pub mod config;
pub mod db;
pub mod http;
pub mod measure;
pub mod metrics;
pub mod mount;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod runtime;
#[cfg(feature = "store")]
pub mod store;
pub mod telemetry;
pub mod trace;
#[cfg(feature = "ui")]
pub mod ui;

// Inside the crate: the handle's parts, the findings and the use cases the
// two front ends share (their wire types are reachable through `api`).
mod findings;
#[cfg(feature = "ui")]
mod history;
mod perfscope;
#[cfg(feature = "prometheus")]
mod prometheus;
mod rating;
mod service;

// The binary's and the tests' own: compiled into the crate so `main.rs`,
// the demo and the integration tests share one copy, but not part of the
// documented API.
#[doc(hidden)]
pub mod agent;
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub mod demo;
#[doc(hidden)]
pub mod failure_log;
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub mod testing;

pub use cache::QueryCache;
pub use config::Config;
#[cfg(feature = "postgres")]
pub use db::{DbError, Keyset, PoolSettings, TimedClient, TimedPool};
pub use http::RequestMetrics;
pub use measure::Measurements;
pub use perfscope::{BackgroundTasks, DatabaseHealth, Perfscope};
#[cfg(feature = "postgres")]
pub use perfscope::{Integrated, Integration, IntegrationTasks};
