//! The small parsers every setting's text goes through: integers and
//! milliseconds in a range, ratios, bucket lists, tokens, tags. Each takes
//! the variable's name so its error names it, and returns the default when
//! the value is unset; subsystems compose them in their own builders.

use std::fmt;
use std::time::Duration;

use super::{ConfigError, Secret};
use crate::metrics::Buckets;

/// A short free-text tag (environment, release): printable, ≤ 200 bytes.
pub(super) fn label(var: &'static str, value: Option<&str>) -> Result<Option<String>, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= 200 && !v.chars().any(char::is_control) => Ok(Some(v.to_owned())),
        Some(v) => Err(ConfigError::new(
            var,
            &v.chars().take(40).collect::<String>(),
            "expected a printable tag of at most 200 bytes",
        )),
    }
}

/// A bearer token or signing key: at least 16 characters, no spaces or
/// control characters. Never echoed in an error.
pub(super) fn token(var: &'static str, value: Option<&str>) -> Result<Option<Secret>, ConfigError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.len() < 16 => Err(ConfigError::new(
            var,
            "***",
            "expected a token of at least 16 characters",
        )),
        Some(v) if v.chars().any(|c| c.is_whitespace() || c.is_control()) => Err(ConfigError::new(
            var,
            "***",
            "expected a token without spaces or control characters",
        )),
        Some(v) => Ok(Some(Secret::new(v))),
    }
}

/// An integer in `[min, max]`.
pub(super) fn int_in<T>(
    var: &'static str,
    value: Option<&str>,
    min: T,
    max: T,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ConfigError::new(
            var,
            v,
            format!("expected an integer in [{min}, {max}]"),
        )),
    }
}

/// Milliseconds in `[min, max]`, as a duration.
pub(super) fn millis(
    var: &'static str,
    value: Option<&str>,
    min: u64,
    max: u64,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Duration::from_millis(n)),
        _ => Err(ConfigError::new(
            var,
            v,
            format!("expected milliseconds in [{min}, {max}]"),
        )),
    }
}

/// A share in (0, 1].
pub(super) fn ratio(
    var: &'static str,
    value: Option<&str>,
    default: f64,
) -> Result<f64, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(ConfigError::new(var, v, "expected a ratio in (0, 1]")),
    }
}

/// Histogram bucket bounds, comma-separated seconds.
pub(super) fn buckets(
    var: &'static str,
    value: Option<&str>,
    default: Buckets,
) -> Result<Buckets, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => Buckets::parse(v).map_err(|why| ConfigError::new(var, v, why)),
    }
}
