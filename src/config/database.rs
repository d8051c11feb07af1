//! The databases the agent connects to and how many connections it may
//! hold: `DATABASE_URL`, the watch list, the pool, the connection budget
//! and the planner role. The pool, the budget and the readers' runner take
//! [`DatabaseConfig`].

use std::time::Duration;

use super::defaults::*;
use super::parse::{int_in, millis};
use super::planner::{PlannerConfig, planner};
#[cfg(feature = "postgres")]
use super::secret::redact_dsn;
use super::sql_comments::{SqlComments, sql_comments};
use super::{ConfigError, DatabaseUrl, RawConfig};

/// The databases and the agent's connections to them.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// The database to use and watch (`DATABASE_URL`).
    pub url: Option<DatabaseUrl>,
    /// More databases to watch (readers, advice, self-check; no app
    /// traffic), by name.
    pub watch: Vec<(String, DatabaseUrl)>,
    /// Connections opened at start-up.
    pub pool_min: u32,
    /// Pool size.
    pub pool_max: u32,
    /// Which of the app pool's statements carry a sqlcommenter comment
    /// (`PERFSCOPE_SQL_COMMENTS`).
    pub sql_comments: SqlComments,
    /// The most connections the agent opens across every watched database.
    pub max_connections: u32,
    /// Slots left free on each server beyond the reserved ones.
    pub connection_headroom: u32,
    /// Threshold of the slow-query log.
    pub slow_query_threshold: Duration,
    /// The planner role that plans database users' statements (index
    /// advice, EXPLAIN); `None` plans nothing (advice from statistics).
    pub planner: Option<PlannerConfig>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            watch: Vec::new(),
            pool_min: DEFAULT_POOL_MIN,
            pool_max: DEFAULT_POOL_MAX,
            sql_comments: DEFAULT_SQL_COMMENTS,
            max_connections: DEFAULT_MAX_DB_CONNECTIONS,
            connection_headroom: DEFAULT_DB_CONNECTION_HEADROOM,
            slow_query_threshold: Duration::from_millis(DEFAULT_SLOW_QUERY_THRESHOLD_MS),
            planner: None,
        }
    }
}

impl DatabaseConfig {
    /// Checks the database settings of `raw`.
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let url = match raw.database_url.as_deref() {
            None | Some("") => None,
            Some(v) => Some(checked_dsn("DATABASE_URL", "", v)?),
        };
        let watch = watch_list(raw.watch_databases.as_deref())?;
        let (pool_min, pool_max) = pool_sizes(raw, &defaults)?;
        Ok(Self {
            url,
            watch,
            pool_min,
            pool_max,
            sql_comments: sql_comments(raw.sql_comments.as_deref())?,
            slow_query_threshold: millis(
                "SLOW_QUERY_THRESHOLD",
                raw.slow_query_threshold.as_deref(),
                0,
                3_600_000,
                defaults.slow_query_threshold,
            )?,
            max_connections: int_in(
                "PERFSCOPE_MAX_DB_CONNECTIONS",
                raw.max_db_connections.as_deref(),
                1,
                1_000,
                defaults.max_connections,
            )?,
            connection_headroom: int_in(
                "PERFSCOPE_DB_CONNECTION_HEADROOM",
                raw.db_connection_headroom.as_deref(),
                0,
                10_000,
                defaults.connection_headroom,
            )?,
            planner: planner(raw)?,
        })
    }
}

/// `DATABASE_POOL_MIN` and `DATABASE_POOL_MAX`, the first no larger.
fn pool_sizes(raw: &RawConfig, defaults: &DatabaseConfig) -> Result<(u32, u32), ConfigError> {
    let pool_max = int_in(
        "DATABASE_POOL_MAX",
        raw.pool_max.as_deref(),
        1,
        1_000,
        defaults.pool_max,
    )?;
    let pool_min = int_in(
        "DATABASE_POOL_MIN",
        raw.pool_min.as_deref(),
        0,
        1_000,
        defaults.pool_min,
    )?;
    if pool_min > pool_max {
        return Err(ConfigError::new(
            "DATABASE_POOL_MIN",
            &pool_min.to_string(),
            format!("expected at most DATABASE_POOL_MAX ({pool_max})"),
        ));
    }
    Ok((pool_min, pool_max))
}

/// Parses `PERFSCOPE_WATCH_DATABASES`: comma-separated `name=url` pairs.
/// Errors never show a password.
fn watch_list(value: Option<&str>) -> Result<Vec<(String, DatabaseUrl)>, ConfigError> {
    const VAR: &str = "PERFSCOPE_WATCH_DATABASES";
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut list: Vec<(String, DatabaseUrl)> = Vec::new();
    // An error names the entry by its position (and its name when that is
    // a valid name), never its text: a comma inside a password splits an
    // entry, and either half may hold part of it.
    for (index, pair) in value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let entry = format!("entry {}", index + 1);
        let Some((name, url)) = pair.split_once('=') else {
            return Err(ConfigError::new(
                VAR,
                &entry,
                "expected comma-separated name=postgres://... pairs (percent-encode a comma in a password as %2C)",
            ));
        };
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(ConfigError::new(
                VAR,
                &entry,
                "expected name=postgres://... with a name of lowercase letters, digits, `_` or `-` (at most 63)",
            ));
        }
        if name == "default" || list.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::new(
                VAR,
                &format!("{entry} ({name})"),
                "expected a unique name other than `default`",
            ));
        }
        if url.trim().is_empty() {
            return Err(ConfigError::new(
                VAR,
                name,
                "expected a connection string after `=`",
            ));
        }
        list.push((name.to_owned(), checked_dsn(VAR, name, url.trim())?));
    }
    Ok(list)
}

/// A connection string whose options (e.g. `sslmode`, `sslrootcert`) the
/// agent can use. The error names the option, never the password.
fn checked_dsn(var: &'static str, name: &str, url: &str) -> Result<DatabaseUrl, ConfigError> {
    #[cfg(feature = "postgres")]
    {
        let shown = if name.is_empty() {
            redact_dsn(url)
        } else {
            name.to_owned()
        };
        crate::db::connect::ConnectOptions::parse(url)
            .and_then(|options| options.connector())
            .map_err(|reason| {
                ConfigError::new(
                    var,
                    &shown,
                    format!("expected a usable connection string: {reason}"),
                )
            })?;
    }
    #[cfg(not(feature = "postgres"))]
    let _ = (var, name);
    Ok(DatabaseUrl::new(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::redact_dsn;

    #[cfg(feature = "postgres")]
    #[test]
    fn unusable_tls_options_name_the_variable_not_the_password() {
        let raw = RawConfig {
            database_url: Some(
                "postgres://app:hunter2@db/shop?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
                    .into(),
            ),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("DATABASE_URL=postgres://app:***@db/shop"),
            "{err}"
        );
        assert!(err.contains("sslrootcert=/nonexistent/ca.pem"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let raw = RawConfig {
            watch_databases: Some("reports=postgres://r:hunter2@db/r?sslmode=sometimes".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("PERFSCOPE_WATCH_DATABASES=reports: expected"),
            "{err}"
        );
        assert!(err.contains("sslmode=sometimes"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// Found by the `config` fuzz target: a watch-list entry whose name held
    /// `://` was shown with its password.
    #[test]
    fn odd_connection_strings_never_show_the_password() {
        for (dsn, secret) in [
            ("postgres://u:p/ss@h/d", "p/ss"),
            ("postgres://u:p?s@s@h/d", "p?s@s"),
            ("postgres://u@h/d?sslmode=require&password=pq", "pq"),
            ("postgresql://u:Pw1@h:5432/d?PASSWORD=Pw2", "Pw"),
            ("host=db password = 'two words' user=x", "two words"),
            ("host=db password='it\\'s' user=x", "it\\'s"),
            ("host=db password='unterminated", "unterminated"),
            ("password", "password"),
            // Found in review: key/value text with `://` inside, a
            // mistyped URL, sslpassword, a percent-encoded key.
            ("host=db password=s3cret application_name=a://b", "s3cret"),
            ("postgres:/u:s3cret@h/db", "s3cret"),
            ("postgresql//u:s3cret@h", "s3cret"),
            ("host=db sslpassword=s3cret", "s3cret"),
            ("postgres://h/d?sslpassword=s3cret", "s3cret"),
            ("postgres://h/d?pass%77ord=s3cret", "s3cret"),
            ("host=db pass%77ord=s3cret", "s3cret"),
        ] {
            let shown = redact_dsn(dsn);
            assert!(!shown.contains(secret), "{dsn} -> {shown}");
        }
        assert_eq!(
            redact_dsn("host=db  password = 'a b' dbname=x"),
            "host=db  password=*** dbname=x"
        );
        let raw = RawConfig {
            watch_databases: Some("0:///x=postgres://u:hunter2@h/0:///x".into()),
            ..Default::default()
        };
        let error = raw.validate().expect_err("an invalid name").to_string();
        assert!(!error.contains("hunter2"), "{error}");
        let raw = RawConfig {
            watch_databases: Some("postgres://u:hunter2@h/d?sslmode=require".into()),
            ..Default::default()
        };
        let error = raw.validate().expect_err("no name").to_string();
        assert!(!error.contains("hunter2"), "{error}");
        // A comma inside a password splits the entry: neither half shows.
        let raw = RawConfig {
            watch_databases: Some("a=postgres://u:hunXQ,ter2ZW@h/d".into()),
            ..Default::default()
        };
        let error = raw.validate().expect_err("a split entry").to_string();
        assert!(
            !error.contains("hunXQ") && !error.contains("ter2ZW"),
            "{error}"
        );
    }

    #[test]
    fn watch_databases_parse_and_hide_passwords() {
        let raw = RawConfig {
            watch_databases: Some(
                "analytics=postgres://ro:s3cret@db2/analytics, billing=host=db3 password=p4ss"
                    .into(),
            ),
            ..Default::default()
        };
        let config = raw.validate().expect("valid");
        assert_eq!(config.database.watch.len(), 2);
        assert_eq!(config.database.watch[0].0, "analytics");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("p4ss"),
            "{debug}"
        );
        for bad in [
            "nameonly",
            "default=postgres://x/y",
            "Bad=postgres://x/y",
            "a=x,a=y",
            "a=",
        ] {
            let raw = RawConfig {
                watch_databases: Some(bad.into()),
                ..Default::default()
            };
            let err = raw.validate().expect_err(bad).to_string();
            assert!(err.starts_with("PERFSCOPE_WATCH_DATABASES="), "{err}");
        }
        let raw = RawConfig {
            watch_databases: Some("Bad=postgres://u:hunter2@h/d".into()),
            ..Default::default()
        };
        assert!(
            !raw.validate()
                .expect_err("bad")
                .to_string()
                .contains("hunter2")
        );
    }
}
