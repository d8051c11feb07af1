//! `GET /healthz` (liveness: the process answers) and `GET /readyz`
//! (readiness of the agent itself, with each dependency's state in the
//! body). The database (`ok`, `unreachable`, `not_configured`) is part of
//! the verdict by default (`PERFSCOPE_READINESS_DATABASE=required`: a load
//! balancer stops sending requests that would fail) or only reported
//! (`reported`: an agent that must stay reachable to report the outage).
//! Watched databases (`database:<name>`) are observed, not depended on:
//! they are reported and never change the verdict.

use std::collections::BTreeMap;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use crate::Perfscope;

/// A verdict or a dependency's state.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Ready,
    NotReady,
    NotStarted,
    ShuttingDown,
    NotConfigured,
    Unreachable,
}

/// Liveness.
#[derive(Object, Debug)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: CheckStatus,
}

/// Readiness with the state of each part.
#[derive(Object, Debug)]
pub struct Readiness {
    /// `ready`, or `not_ready` while shutting down or (by default) while
    /// the database is unreachable.
    pub status: CheckStatus,
    /// Each part's state, e.g. `runtime_monitor`.
    pub checks: BTreeMap<String, CheckStatus>,
}

#[derive(ApiResponse)]
enum HealthResponse {
    /// The process is alive.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Ready for traffic.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: shutting down, or the database is unreachable.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

/// The health operations.
pub struct HealthApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl HealthApi {
    /// Liveness: 200 while the process answers.
    #[oai(
        path = "/healthz",
        method = "get",
        tag = "ApiTags::Health",
        operation_id = "healthz"
    )]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Ok(Json(Health {
            status: CheckStatus::Ok,
        }))
    }

    /// Readiness: 200 when the agent takes traffic; 503 while it shuts down
    /// or, unless `PERFSCOPE_READINESS_DATABASE=reported`, while
    /// `DATABASE_URL` is unreachable.
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "ApiTags::Health",
        operation_id = "readyz"
    )]
    async fn readyz(&self) -> ReadyResponse {
        let readiness = readiness(&self.perfscope);
        if readiness.status == CheckStatus::Ready {
            ReadyResponse::Ready(Json(readiness))
        } else {
            ReadyResponse::NotReady(Json(readiness))
        }
    }
}

/// What `GET /readyz` reports, also served at a host's own path by
/// [`crate::mount::Mount::health`].
pub fn readiness(perfscope: &Perfscope) -> Readiness {
    let mut checks = BTreeMap::new();
    checks.insert(
        "runtime_monitor".to_owned(),
        if perfscope.is_monitoring() {
            CheckStatus::Ok
        } else {
            CheckStatus::NotStarted
        },
    );
    let database = match perfscope.database_health() {
        crate::DatabaseHealth::NotConfigured => CheckStatus::NotConfigured,
        crate::DatabaseHealth::Up => CheckStatus::Ok,
        crate::DatabaseHealth::Down => CheckStatus::Unreachable,
    };
    checks.insert("database".to_owned(), database);
    let database_required =
        perfscope.config().server.readiness_database == crate::config::ReadinessDatabase::Required;
    for (name, up) in perfscope.watched_health() {
        checks.insert(
            format!("database:{name}"),
            if up {
                CheckStatus::Ok
            } else {
                CheckStatus::Unreachable
            },
        );
    }
    let shutting_down = perfscope.is_shutting_down();
    checks.insert(
        "server".to_owned(),
        if shutting_down {
            CheckStatus::ShuttingDown
        } else {
            CheckStatus::Ok
        },
    );
    let status = if shutting_down || (database_required && database == CheckStatus::Unreachable) {
        CheckStatus::NotReady
    } else {
        CheckStatus::Ready
    };
    Readiness { status, checks }
}
