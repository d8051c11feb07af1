//! The perfscope HTTP API as a mountable Poem endpoint: one `#[OpenApi]`
//! struct per file, combined here.
//!
//! ```
//! use poem::{Route, EndpointExt};
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! // A host app serves /api/performance/*, /healthz, /readyz, /docs and
//! // /openapi.json beside its own routes:
//! let app = Route::new()
//!     .nest("/", perfscope::api::endpoint(&perfscope))
//!     .with(perfscope.middleware());
//! # let _ = app;
//! ```

mod analyze;
mod auth;
mod error;
mod health;
mod metrics;
mod payload;
mod stats;

pub use analyze::{AnalyzeRequest, AnalyzeResult};
pub use auth::{Access, BearerToken, authorize};
pub use error::ApiError;
pub use health::{CheckStatus, Health, Readiness};
pub use payload::StrictJson;
pub use stats::{MemoryStats, Recommendations, Stats, human_bytes};

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::Perfscope;
use crate::http::{BodyLimit, JsonErrors};

/// Tags grouping the operations in Swagger UI.
#[derive(Tags)]
pub enum ApiTags {
    /// Stats, metrics and analysis.
    Performance,
    /// Liveness and readiness.
    Health,
}

type Apis = (
    stats::StatsApi,
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
        metrics::MetricsApi {
            perfscope: perfscope.clone(),
        },
        analyze::AnalyzeApi {
            perfscope: perfscope.clone(),
        },
        health::HealthApi {
            perfscope: perfscope.clone(),
        },
    );
    OpenApiService::new(apis, "perfscope", env!("CARGO_PKG_VERSION")).description(
        "Performance monitoring and optimization agent for web APIs backed by PostgreSQL.",
    )
}

/// The spec as pretty JSON, as committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    service(&Perfscope::new(crate::Config::default())).spec()
}

/// The API, Swagger UI at `/docs` and the spec at `/openapi.json`, with JSON
/// errors and the body limit; mount it at `/`.
pub fn endpoint(perfscope: &Perfscope) -> impl Endpoint + 'static {
    let service = service(perfscope);
    Route::new()
        .nest("/docs", service.swagger_ui())
        .at("/openapi.json", service.spec_endpoint())
        .nest("/", service)
        .with(BodyLimit::new(perfscope.config().max_body_bytes))
        .with(JsonErrors)
}
