//! The planner role (`PERFSCOPE_PLANNER_USER` and the settings that only
//! mean something with it): who plans database users' statements and whose
//! code may run while they are planned. See `crate::pg::planner`.

use super::{ConfigError, RawConfig, Secret};

/// The planner role's settings (see `crate::pg::planner`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannerConfig {
    /// `PERFSCOPE_PLANNER_USER`: the role the planner logs in as.
    pub user: String,
    /// `PERFSCOPE_PLANNER_PASSWORD`.
    pub password: Option<Secret>,
    /// `PERFSCOPE_PLAN_ROLES`: the roles whose statements may be planned.
    pub roles: Vec<String>,
    /// `PERFSCOPE_TRUSTED_OWNERS`: roles whose functions, operators and
    /// views are trusted besides built-in and superusers' ones.
    pub trusted_owners: Vec<String>,
}

/// A comma-separated list of role names (each a valid name: at most 63
/// bytes, no control characters).
fn role_list(var: &'static str, value: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let mut roles = Vec::new();
    for role in value.unwrap_or("").split(',').map(str::trim) {
        if role.is_empty() {
            continue;
        }
        if role.len() > 63 || role.chars().any(char::is_control) {
            return Err(ConfigError::new(
                var,
                &role.chars().take(40).collect::<String>(),
                "expected comma-separated role names of at most 63 bytes",
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    Ok(roles)
}

/// `PERFSCOPE_PLANNER_USER` and the settings that only mean something
/// with it.
pub(super) fn planner(raw: &RawConfig) -> Result<Option<PlannerConfig>, ConfigError> {
    let user = role_list("PERFSCOPE_PLANNER_USER", raw.planner_user.as_deref())?;
    let roles = role_list("PERFSCOPE_PLAN_ROLES", raw.plan_roles.as_deref())?;
    let trusted_owners = role_list("PERFSCOPE_TRUSTED_OWNERS", raw.trusted_owners.as_deref())?;
    let password = match raw.planner_password.as_deref() {
        None | Some("") => None,
        Some(v) if v.chars().any(char::is_control) => {
            return Err(ConfigError::new(
                "PERFSCOPE_PLANNER_PASSWORD",
                "***",
                "expected a password without control characters",
            ));
        }
        Some(v) => Some(Secret::new(v)),
    };
    let user = match user.as_slice() {
        [] => {
            if password.is_some() || !roles.is_empty() {
                let var = if password.is_some() {
                    "PERFSCOPE_PLANNER_PASSWORD"
                } else {
                    "PERFSCOPE_PLAN_ROLES"
                };
                return Err(ConfigError::new(
                    var,
                    "***",
                    "is set, but PERFSCOPE_PLANNER_USER is not: set the planner role too (sql/install.sql creates perfscope_planner)",
                ));
            }
            return Ok(None);
        }
        [one] => one.clone(),
        _ => {
            return Err(ConfigError::new(
                "PERFSCOPE_PLANNER_USER",
                raw.planner_user.as_deref().unwrap_or(""),
                "expected one role name",
            ));
        }
    };
    Ok(Some(PlannerConfig {
        user,
        password,
        roles,
        trusted_owners,
    }))
}
