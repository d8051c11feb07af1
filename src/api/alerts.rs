//! `GET /api/performance/alerts` (admin): the alerts firing now and the
//! last notifications (firing, resolved and slow-query events), newest
//! first — what the webhooks were told, without their URLs.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::{BearerToken, admin_only};
use super::error::ApiError;
use crate::Perfscope;
use crate::alerts::{FiringAlert, Notification};

/// Alerts now and lately.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AlertsReport {
    /// Conditions firing now.
    pub firing: Vec<FiringAlert>,
    /// The last notifications (at most 100), newest first.
    pub recent: Vec<Notification>,
}

#[derive(ApiResponse)]
enum AlertsResponse {
    /// The report.
    #[oai(status = 200)]
    Ok(Json<AlertsReport>),
}

/// The alerts operation.
pub struct AlertsApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl AlertsApi {
    /// Alerts firing now and the last notifications. Admin token required.
    #[oai(
        path = "/api/performance/alerts",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getAlerts"
    )]
    async fn alerts(&self, token: BearerToken) -> Result<AlertsResponse, ApiError> {
        admin_only(&self.perfscope, &token)?;
        let alerts = self.perfscope.alerts();
        Ok(AlertsResponse::Ok(Json(AlertsReport {
            firing: alerts.firing(),
            recent: alerts.recent(),
        })))
    }
}
