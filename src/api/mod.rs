//! The perfscope HTTP API as a mountable Poem endpoint: one `#[OpenApi]`
//! struct per file, combined here.
//!
//! [`endpoint`] is the agent's layout (the API, `/healthz`, `/readyz`,
//! `/docs` and `/openapi.json`, claiming `/`); a host app mounts the API
//! under `/api/performance` only, with [`crate::mount::Mount`]:
//!
//! ```
//! use poem::{Route, EndpointExt};
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let app = perfscope::mount::Mount::new(&perfscope)
//!     .onto(Route::new())
//!     .with(perfscope.middleware());
//! # let _ = app;
//! ```

#[cfg(feature = "postgres")]
mod activity;
mod alerts;
mod analyze;
mod auth;
#[cfg(feature = "postgres")]
mod database;
#[cfg(feature = "postgres")]
mod db_time;
mod error;
#[cfg(feature = "store")]
mod events;
#[cfg(feature = "postgres")]
mod explain;
#[cfg(feature = "postgres")]
mod growth;
#[cfg(feature = "postgres")]
mod guard;
mod health;
#[cfg(feature = "postgres")]
mod io;
mod metrics;
mod mounted;
#[cfg(feature = "postgres")]
mod optimize;
mod payload;
#[cfg(feature = "postgres")]
mod plan_changes;
#[cfg(feature = "postgres")]
mod replication;
mod slow_queries;
#[cfg(feature = "postgres")]
mod space;
mod stats;

pub use crate::service::slow_queries::{SlowQueries, SlowQueryEntry};
pub use analyze::{AnalyzeRequest, AnalyzeResult};
pub use auth::{Access, BearerToken, authorize};
pub use error::ApiError;
pub use health::{CheckStatus, Health, Readiness, readiness};
pub use mounted::{DOCS as MOUNT_DOCS, PREFIX as MOUNT_PREFIX};
pub use payload::StrictJson;
pub use stats::{MemoryStats, Recommendations, Stats, human_bytes};

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use poem::endpoint::make_sync;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response, Route};
use poem_openapi::{OpenApi, OpenApiService, Tags};

use crate::Perfscope;
use crate::http::{AllowHeader, BodyLimit, JsonErrors};

/// Tags grouping the operations in Swagger UI.
#[derive(Tags)]
pub enum ApiTags {
    /// Stats, metrics and analysis.
    Performance,
    /// Liveness and readiness.
    Health,
}

#[cfg(feature = "postgres")]
type Apis = (
    stats::StatsApi,
    slow_queries::SlowQueriesApi,
    alerts::AlertsApi,
    metrics::MetricsApi,
    analyze::AnalyzeApi,
    health::HealthApi,
    optimize::OptimizeApi,
    database::DatabaseApi,
    activity::ActivityApi,
    explain::ExplainApi,
    space::SpaceApi,
    // A pair: poem-openapi combines tuples of at most 16 APIs.
    (replication::ReplicationApi, io::IoApi),
    plan_changes::PlanChangesApi,
    // Paired to leave the tuple (16 at most) a free slot.
    (growth::GrowthApi, db_time::DbTimeApi),
    StoreApis,
);
/// The history store's operations (events, compare), or none without it.
#[cfg(feature = "store")]
type StoreApis = events::EventsApi;
#[cfg(all(feature = "postgres", not(feature = "store")))]
type StoreApis = ();
#[cfg(not(feature = "postgres"))]
type Apis = (
    stats::StatsApi,
    slow_queries::SlowQueriesApi,
    alerts::AlertsApi,
    metrics::MetricsApi,
    analyze::AnalyzeApi,
    health::HealthApi,
);

/// The OpenAPI service over every operation.
pub fn service(perfscope: &Perfscope) -> OpenApiService<Apis, ()> {
    let apis = (
        stats::StatsApi {
            perfscope: perfscope.clone(),
        },
        slow_queries::SlowQueriesApi {
            perfscope: perfscope.clone(),
        },
        alerts::AlertsApi {
            perfscope: perfscope.clone(),
        },
        metrics::MetricsApi {
            perfscope: perfscope.clone(),
        },
        analyze::AnalyzeApi {
            perfscope: perfscope.clone(),
        },
        health::HealthApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        optimize::OptimizeApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        database::DatabaseApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        activity::ActivityApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        explain::ExplainApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        space::SpaceApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        (
            replication::ReplicationApi {
                perfscope: perfscope.clone(),
            },
            io::IoApi {
                perfscope: perfscope.clone(),
            },
        ),
        #[cfg(feature = "postgres")]
        plan_changes::PlanChangesApi {
            perfscope: perfscope.clone(),
        },
        #[cfg(feature = "postgres")]
        (
            growth::GrowthApi {
                perfscope: perfscope.clone(),
            },
            db_time::DbTimeApi {
                perfscope: perfscope.clone(),
            },
        ),
        #[cfg(feature = "store")]
        events::EventsApi {
            perfscope: perfscope.clone(),
            comparisons: Default::default(),
        },
        #[cfg(all(feature = "postgres", not(feature = "store")))]
        (),
    );
    OpenApiService::new(apis, "perfscope", env!("CARGO_PKG_VERSION")).description(
        "Performance monitoring and optimization agent for web APIs backed by PostgreSQL.",
    )
}

/// Request objects that refuse unknown fields. poem-openapi enforces
/// `deny_unknown_fields` but does not say so in the schema, so the spec is
/// patched with `additionalProperties: false` for them (otherwise clients
/// and fuzzers rightly read extra fields as allowed).
const CLOSED_SCHEMAS: &[&str] = &[
    "AnalyzeRequest",
    "OptimizeRequest",
    "ExplainRequest",
    "EventRequest",
];

fn close_schemas(spec: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(spec) else {
        return spec.to_owned();
    };
    for name in CLOSED_SCHEMAS {
        if let Some(schema) = document
            .pointer_mut(&format!("/components/schemas/{name}"))
            .and_then(serde_json::Value::as_object_mut)
        {
            schema.insert(
                "additionalProperties".to_owned(),
                serde_json::Value::Bool(false),
            );
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

/// The spec of `service` as pretty JSON, closed schemas patched.
fn spec_of(service: &OpenApiService<Apis, ()>) -> String {
    close_schemas(&service.spec())
}

/// The spec as pretty JSON, as committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    spec_of(&service(&Perfscope::new(crate::Config::default())))
}

/// The API, Swagger UI at `/docs` and the spec at `/openapi.json`, with JSON
/// errors and the body limit: the agent's layout, which claims `/` and every
/// unmatched path. A host app uses [`crate::mount`] instead.
pub fn endpoint(perfscope: &Perfscope) -> impl Endpoint + 'static {
    let (docs, spec) = docs_and_spec(perfscope, |spec| spec);
    guarded(
        perfscope,
        Route::new()
            .at("/docs", docs)
            .at("/openapi.json", spec)
            .nest("/", service(perfscope)),
    )
}

/// `routes` with the API as [`crate::mount`] serves it beside a host's
/// routes: only under [`mounted::PREFIX`], with the docs and the spec
/// there too (the spec without the agent's health paths), each part
/// wrapped in `deadline`. The parts are added one by one, not as a route
/// of their own nested under the prefix: poem cannot nest such a route
/// without stripping the prefix, and the operations' paths are absolute.
pub(crate) fn mount_onto(
    perfscope: &Perfscope,
    routes: Route,
    deadline: crate::http::BodyDeadline,
) -> Route {
    let (docs, spec) = docs_and_spec(perfscope, mounted::without_health);
    let prefix = mounted::PREFIX;
    routes
        .at(mounted::DOCS, guarded(perfscope, docs).with(deadline))
        .at(
            format!("{prefix}/openapi.json"),
            guarded(perfscope, spec).with(deadline),
        )
        .nest_no_strip(
            prefix,
            guarded(perfscope, service(perfscope).into_endpoint()).with(deadline),
        )
}

/// `endpoint` with the body limit, JSON errors and the `Allow` header.
fn guarded(perfscope: &Perfscope, endpoint: impl Endpoint + 'static) -> impl Endpoint + 'static {
    endpoint
        .with(BodyLimit::new(perfscope.config().server.max_body_bytes))
        .with(JsonErrors)
        .with(allow_header())
}

/// Swagger UI's page and the spec, both through `patch`.
fn docs_and_spec(
    perfscope: &Perfscope,
    patch: fn(String) -> String,
) -> (
    impl Endpoint<Output = Response> + 'static,
    impl Endpoint<Output = Response> + 'static,
) {
    let spec = patch(spec_of(&service(perfscope)));
    // Swagger UI's page is 1.5 MB: built on the first visit, not at start.
    let docs = {
        let perfscope = perfscope.clone();
        let page = Arc::new(OnceLock::<Bytes>::new());
        make_sync(move |_| {
            Response::builder()
                .content_type("text/html; charset=utf-8")
                .body(
                    page.get_or_init(|| {
                        let service = self::service(&perfscope);
                        Bytes::from(
                            service
                                .swagger_ui_html()
                                .replace(&service.spec(), &patch(spec_of(&service))),
                        )
                    })
                    .clone(),
                )
        })
    };
    let spec = make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    });
    (docs, spec)
}

/// `Allow` values for every documented path.
fn allow_header() -> AllowHeader {
    AllowHeader::new(
        Apis::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .map(|path| {
                let methods = path
                    .operations
                    .iter()
                    .map(|op| op.method.to_string())
                    .collect();
                (path.path, methods)
            }),
    )
}
