//! `GET /api/performance/metrics`: the Prometheus exposition, for the admin
//! token or the read-only metrics token.

use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{Access, BearerToken, authorize};
use super::error::ApiError;
use crate::Perfscope;

#[derive(ApiResponse)]
enum MetricsResponse {
    /// OpenMetrics text.
    #[oai(
        status = 200,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )]
    Ok(PlainText<String>),
}

/// The metrics operation.
pub struct MetricsApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl MetricsApi {
    /// Prometheus exposition (OpenMetrics text). Needs
    /// `Authorization: Bearer <PERFSCOPE_ADMIN_TOKEN>` or the metrics token.
    #[oai(
        path = "/api/performance/metrics",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getMetrics"
    )]
    async fn metrics(&self, token: BearerToken) -> Result<MetricsResponse, ApiError> {
        let config = self.perfscope.config();
        authorize(
            &token,
            Access::Metrics,
            config.server.admin_token.as_ref(),
            config.server.metrics_token.as_ref(),
        )?;
        let text = self.perfscope.encode_metrics().map_err(|error| {
            tracing::error!(%error, "encoding metrics failed");
            ApiError::bad_request("metrics could not be encoded")
        })?;
        Ok(MetricsResponse::Ok(PlainText(text)))
    }
}
