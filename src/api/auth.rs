//! Bearer-token checks for admin endpoints, in constant time.
//!
//! The admin token (`PERFSCOPE_ADMIN_TOKEN`) opens every admin endpoint; the
//! metrics token (`PERFSCOPE_METRICS_TOKEN`) opens the metrics endpoint
//! only, so Prometheus never holds the admin token. With no admin token
//! configured, admin endpoints answer 401 whatever is sent.

use super::error::ApiError;
use crate::config::Secret;
use crate::service::auth::matches;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

/// `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct BearerToken(pub Bearer);

/// What a token may open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Admin endpoints (the admin token only).
    Admin,
    /// The metrics endpoint (the admin or the metrics token).
    Metrics,
}

/// Checks `token` for `access` against the configured tokens.
pub fn authorize(
    token: &BearerToken,
    access: Access,
    admin: Option<&Secret>,
    metrics: Option<&Secret>,
) -> Result<(), ApiError> {
    let given = token.0.token.as_str();
    let admin_ok = matches(given, admin);
    let metrics_ok = access == Access::Metrics && matches(given, metrics);
    if admin_ok || metrics_ok {
        return Ok(());
    }
    if admin.is_none() && (access == Access::Admin || metrics.is_none()) {
        return Err(ApiError::unauthorized(
            "no token is configured for this endpoint; set PERFSCOPE_ADMIN_TOKEN",
        ));
    }
    Err(ApiError::unauthorized("invalid bearer token"))
}

/// The admin check of an admin operation: `token` against the configured
/// admin token.
pub(super) fn admin_only(
    perfscope: &crate::Perfscope,
    token: &BearerToken,
) -> Result<(), ApiError> {
    authorize(
        token,
        Access::Admin,
        perfscope.config().server.admin_token.as_ref(),
        None,
    )
}

/// Whether `request` carries the admin token, for endpoints that are
/// public but show more to an admin (redaction).
pub fn is_admin(request: &poem::Request, admin: Option<&Secret>) -> bool {
    request
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| matches(token.trim(), admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> BearerToken {
        BearerToken(Bearer {
            token: token.to_owned(),
        })
    }

    #[test]
    fn admin_token_opens_everything_metrics_token_only_metrics() {
        let admin = Secret::new("admin-token-0123456789");
        let metrics = Secret::new("metrics-token-0123456789");
        let a = bearer("admin-token-0123456789");
        let m = bearer("metrics-token-0123456789");
        assert!(authorize(&a, Access::Admin, Some(&admin), Some(&metrics)).is_ok());
        assert!(authorize(&a, Access::Metrics, Some(&admin), Some(&metrics)).is_ok());
        assert!(authorize(&m, Access::Metrics, Some(&admin), Some(&metrics)).is_ok());
        assert!(authorize(&m, Access::Admin, Some(&admin), Some(&metrics)).is_err());
        assert!(
            authorize(
                &bearer("admin-token-012345678"),
                Access::Admin,
                Some(&admin),
                None
            )
            .is_err()
        );
        assert!(authorize(&bearer(""), Access::Metrics, Some(&admin), Some(&metrics)).is_err());
    }

    #[test]
    fn nothing_opens_without_configured_tokens() {
        assert!(authorize(&bearer("anything-at-all-123"), Access::Admin, None, None).is_err());
        assert!(authorize(&bearer("anything-at-all-123"), Access::Metrics, None, None).is_err());
    }
}
