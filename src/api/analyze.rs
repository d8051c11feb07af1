//! `POST /api/performance/analyze`: rates one duration of an operation,
//! against its own history when it has one (see [`crate::rating`]).

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::error::ApiError;
use super::payload::StrictJson;
use crate::Perfscope;
use crate::metrics::http::HttpMethod;
use crate::rating::{Baseline, BaselineSource, Performance, rate};

/// What to analyze.
#[derive(Object, Debug, serde::Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// The operation: a custom measurement's name, a route template
    /// (`/users/:id`) or a method and route (`GET /users/:id`).
    #[oai(validator(min_length = 1, max_length = 200))]
    pub operation: String,
    /// Its duration, milliseconds.
    #[oai(validator(minimum(value = "0"), maximum(value = "86400000")))]
    pub duration: f64,
}

/// The verdict.
#[derive(Object, Debug)]
pub struct AnalyzeResult {
    /// The operation, as given.
    pub operation: String,
    /// The duration, milliseconds, as given.
    pub duration: f64,
    /// The rating.
    pub performance: Performance,
    /// What it means and what to do.
    pub suggestions: Vec<String>,
    /// The operation's own percentiles, when it has enough history.
    #[oai(skip_serializing_if_is_none)]
    pub baseline: Option<Baseline>,
}

#[derive(ApiResponse)]
enum AnalyzeResponse {
    /// The verdict.
    #[oai(status = 200)]
    Ok(Json<AnalyzeResult>),
}

/// The analyze operation.
pub struct AnalyzeApi {
    pub(super) perfscope: Perfscope,
}

impl AnalyzeApi {
    /// The operation's history: a custom measurement first, then HTTP.
    fn baseline(&self, operation: &str) -> Option<Baseline> {
        let custom = self.perfscope.measurements().sketch(operation);
        if let Some(baseline) = Baseline::from_history(BaselineSource::Custom, &custom) {
            return Some(baseline);
        }
        let http = self.perfscope.http_metrics();
        let history = match operation.split_once(' ') {
            Some((method, route)) => {
                let method = poem::http::Method::from_bytes(method.as_bytes()).ok()?;
                http.sketch(Some(HttpMethod::from(&method)), route)
            }
            None => http.sketch(None, operation),
        };
        Baseline::from_history(BaselineSource::Http, &history)
    }
}

#[OpenApi]
impl AnalyzeApi {
    /// Rates a duration (ms) of an operation: excellent, good, acceptable,
    /// poor or critical, with suggestions.
    #[oai(
        path = "/api/performance/analyze",
        method = "post",
        tag = "ApiTags::Performance",
        operation_id = "analyze"
    )]
    async fn analyze(&self, body: StrictJson<AnalyzeRequest>) -> Result<AnalyzeResponse, ApiError> {
        let AnalyzeRequest {
            operation,
            duration,
        } = body.0;
        if !duration.is_finite() {
            return Err(ApiError::bad_request(
                "field `duration`: expected a finite number",
            ));
        }
        let baseline = self.baseline(&operation);
        let analysis = rate(&operation, duration, baseline.as_ref());
        Ok(AnalyzeResponse::Ok(Json(AnalyzeResult {
            operation,
            duration,
            performance: analysis.performance,
            suggestions: analysis.suggestions,
            baseline,
        })))
    }
}
