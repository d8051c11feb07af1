//! `PERFSCOPE_SQL_COMMENTS`: whether the timed pool appends a sqlcommenter
//! comment (route, `traceparent`, application) to the statements a host
//! app's requests run, so the database's own views (`pg_stat_activity`,
//! its logs) and any tool reading them can tie a statement to its route
//! and trace.
//!
//! Off by default because it has a price: a text that differs per request
//! cannot be a prepared statement reused across calls, so a commented
//! statement is parsed and planned by the server on every call (see
//! `db::pool::comment` and BENCHMARKS.md). `sampled` pays it only for the
//! requests whose trace is kept anyway.

use std::fmt;

use super::ConfigError;

/// Which statements carry a sqlcommenter comment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqlComments {
    /// None (the default).
    #[default]
    Off,
    /// Those of a sampled (traced) request only: the comment carries that
    /// trace's `traceparent`; every other statement keeps the prepared,
    /// cached path.
    Sampled,
    /// Every statement run inside a request, or inside a traced span.
    All,
}

impl SqlComments {
    /// The setting's text: `off`, `sampled` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Sampled => "sampled",
            Self::All => "all",
        }
    }
}

impl fmt::Display for SqlComments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PERFSCOPE_SQL_COMMENTS`: `off`, `sampled` or `all`; anything else is
/// refused, naming the variable.
pub(super) fn sql_comments(value: Option<&str>) -> Result<SqlComments, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(super::DEFAULT_SQL_COMMENTS),
        Some("off") => Ok(SqlComments::Off),
        Some("sampled") => Ok(SqlComments::Sampled),
        Some("all") => Ok(SqlComments::All),
        Some(other) => Err(ConfigError::new(
            "PERFSCOPE_SQL_COMMENTS",
            other,
            "expected off, sampled or all",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    #[test]
    fn each_value_and_the_default() {
        assert_eq!(sql_comments(None).expect("unset"), SqlComments::Off);
        for mode in [SqlComments::Off, SqlComments::Sampled, SqlComments::All] {
            assert_eq!(sql_comments(Some(mode.as_str())).expect("valid"), mode);
        }
        let raw = RawConfig {
            sql_comments: Some("sampled".into()),
            ..Default::default()
        };
        let config = raw.validate().expect("valid");
        assert_eq!(config.database.sql_comments, SqlComments::Sampled);
    }

    #[test]
    fn anything_else_is_refused_naming_the_variable() {
        for bad in ["on", "ALL", "true", "1", "sampled,all"] {
            let raw = RawConfig {
                sql_comments: Some(bad.into()),
                ..Default::default()
            };
            let err = raw.validate().expect_err("refused").to_string();
            assert!(
                err.starts_with(&format!(
                    "PERFSCOPE_SQL_COMMENTS={bad}: expected off, sampled or all"
                )),
                "{err}"
            );
        }
    }
}
