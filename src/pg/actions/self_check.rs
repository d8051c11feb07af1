//! The capability self-check behind `GET /api/performance/database`: the
//! server version, whether pg_stat_statements is loaded and created,
//! whether hypopg is available, whether the agent's role has pg_monitor,
//! whether it may read every sequence's position (sql/install.sql's
//! `perfscope.sequence_positions()`) — and for each missing piece, which features are off and the exact SQL or
//! configuration line that fixes it.

mod ash;

use crate::db::DbError;
use crate::pg::readers::statements::MIN_SERVER_VERSION;

const SELF_CHECK: &str = include_str!("../../../sql/queries/self_check.sql");

/// One capability.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct Capability {
    /// A stable name, e.g. `pg_stat_statements_loaded`.
    pub name: String,
    /// Whether it is there.
    pub ok: bool,
    /// What it is for.
    pub detail: String,
    /// Features that are off without it.
    pub disables: Vec<String>,
    /// The SQL or configuration that fixes it, when missing.
    #[oai(skip_serializing_if_is_none)]
    pub fix: Option<String>,
}

/// The self-check of one database.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct SelfCheck {
    /// The watched database's name (`default` for `DATABASE_URL`).
    pub database: String,
    /// `current_database()`.
    pub database_name: String,
    /// The role the agent connects as.
    pub role: String,
    /// `server_version`.
    pub server_version: String,
    /// Each capability.
    pub capabilities: Vec<Capability>,
}

fn capability(name: &str, ok: bool, detail: &str, disables: &[&str], fix: &str) -> Capability {
    Capability {
        name: name.into(),
        ok,
        detail: detail.into(),
        disables: if ok {
            Vec::new()
        } else {
            disables.iter().map(|s| (*s).to_owned()).collect()
        },
        fix: (!ok).then(|| fix.to_owned()),
    }
}

/// Whether the agent's connection is encrypted; a loopback or Unix-socket
/// connection does not need to be.
fn encryption(encrypted: bool, local: bool) -> Capability {
    capability(
        "tls",
        encrypted || local,
        if encrypted {
            "the agent's connection is encrypted (TLS)"
        } else if local {
            "the agent's connection is local (loopback or Unix socket), so not encrypted"
        } else {
            "the agent's connection crosses the network unencrypted"
        },
        &["confidentiality of the agent's credentials and of statement texts on the network"],
        "ssl = on on the server, and sslmode=verify-full&sslrootcert=<CA file> in the connection string",
    )
}

/// Whether the planner role can plan here (see [`crate::pg::planner`]): it
/// logs in, and [`crate::pg::planner::ROLE_CHECK`] finds nothing that makes it
/// unsafe.
async fn planner(planner: Option<&crate::pg::planner::Planner>) -> Capability {
    const DISABLES: &[&str] = &[
        "index suggestions confirmed by a plan (hypopg cost before/after)",
        "sequential-scan findings",
        "EXPLAIN (API and plan pages)",
    ];
    let Some(planner) = planner else {
        return capability(
            "planner_role",
            false,
            "a planner role of its own plans the database users' statements (the agent's role never does)",
            DISABLES,
            "PERFSCOPE_PLANNER_USER=perfscope_planner (created by sql/install.sql), PERFSCOPE_PLANNER_PASSWORD, and PERFSCOPE_PLAN_ROLES=<the application's roles>",
        );
    };
    let user = planner.user().unwrap_or("?").to_owned();
    let roles = planner.roles().join(", ");
    let result = match planner.session(std::time::Duration::from_secs(5)).await {
        Ok(session) => {
            session.close().await;
            Ok(())
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(()) if roles.is_empty() => capability(
            "planner_role",
            false,
            &format!("the planner role {user} may plan, but PERFSCOPE_PLAN_ROLES lists no role"),
            DISABLES,
            "PERFSCOPE_PLAN_ROLES=<the application's roles>",
        ),
        Ok(()) => capability(
            "planner_role",
            true,
            &format!(
                "the planner role {user} (a plain login role, member of no role, owning nothing) plans statements of: {roles}"
            ),
            DISABLES,
            "",
        ),
        Err(crate::pg::planner::PlanError::UnsafeRole(reason)) => capability(
            "planner_role",
            false,
            &format!("the planner role {user} may not plan: {reason}"),
            DISABLES,
            &format!(
                "a plain role: CREATE ROLE perfscope_planner LOGIN (sql/install.sql); REVOKE every role granted to {user}; GRANT SELECT ON <tables> TO {user}"
            ),
        ),
        Err(error) => capability(
            "planner_role",
            false,
            &format!("the planner role {user} cannot connect: {error}"),
            DISABLES,
            "run sql/install.sql (creates perfscope_planner), ALTER ROLE perfscope_planner PASSWORD '...', and set PERFSCOPE_PLANNER_PASSWORD",
        ),
    }
}

/// Whether this process runs the database's readers, when the replicas of
/// a host app elect one (see [`crate::pg::election`]); `None` for the
/// agent, which always does.
fn readers(role: crate::pg::election::ReaderRole) -> Option<Capability> {
    use crate::pg::election::ReaderRole;
    let leads = match role {
        ReaderRole::Always => return None,
        ReaderRole::Leader => true,
        ReaderRole::Follower => false,
    };
    Some(capability(
        "reader_leader",
        leads,
        if leads {
            "this replica runs the readers of this database (it holds the reader lock)"
        } else {
            "readers run in another replica (it holds the reader lock): this one serves its own request metrics, and its statements, advice and health figures stay empty"
        },
        &["this replica's statements, advice, health and activity figures"],
        "none needed: read this database's figures on the replica whose perfscope_reader_leader is 1; it takes over here when that replica stops",
    ))
}

/// Runs the self-check of a watched database.
pub async fn run(watched: &crate::pg::WatchedDatabase) -> Result<SelfCheck, DbError> {
    let name = &*watched.name;
    let client = watched.pool.get().await?;
    let row = client.query_one(SELF_CHECK, &[]).await?;
    let version_num: i32 = row.try_get(1)?;
    let loaded: bool = row.try_get(2)?;
    let created: bool = row.try_get(3)?;
    let hypopg_available: bool = row.try_get(4)?;
    let hypopg_created: bool = row.try_get(5)?;
    let superuser: bool = row.try_get(7)?;
    let monitor: bool = row.try_get::<_, bool>(6)? || superuser;
    let signal: bool = row.try_get::<_, bool>(13)? || superuser;
    let io_timing: bool = row.try_get(8)?;
    let sequences: bool = row.try_get::<_, bool>(14)? || superuser;
    let role: String = row.try_get(9)?;
    let capabilities = vec![
        capability(
            "server_version",
            version_num >= MIN_SERVER_VERSION,
            "PostgreSQL 14 or later (older versions are past end of life)",
            &["slow queries from pg_stat_statements", "index advice"],
            "upgrade the server to a supported PostgreSQL version (14 or later)",
        ),
        capability(
            "pg_stat_statements_loaded",
            loaded,
            "pg_stat_statements in shared_preload_libraries (collects statement statistics)",
            &[
                "slow queries from pg_stat_statements",
                "index advice",
                "pg_stat_statements_* metrics",
            ],
            "shared_preload_libraries = 'pg_stat_statements'   # postgresql.conf, then restart the server",
        ),
        capability(
            "pg_stat_statements_created",
            created,
            "the pg_stat_statements extension in this database (its views)",
            &[
                "slow queries from pg_stat_statements",
                "index advice",
                "pg_stat_statements_* metrics",
            ],
            "CREATE EXTENSION pg_stat_statements;   -- as a superuser, see sql/install.sql",
        ),
        capability(
            "pg_monitor",
            monitor,
            "the agent's role in pg_monitor (reads every role's statements and the statistics views)",
            &[
                "statements of other roles in pg_stat_statements",
                "connection and activity figures",
            ],
            &format!("GRANT pg_monitor TO {role};"),
        ),
        capability(
            "hypopg",
            hypopg_created,
            if hypopg_available {
                "the hypopg extension (hypothetical indexes confirm index suggestions with a cost estimate)"
            } else {
                "the hypopg extension (not installed on the server)"
            },
            &["cost before/after on index suggestions (they come from statistics alone)"],
            if hypopg_available {
                "CREATE EXTENSION hypopg;"
            } else {
                "install the server package (Debian: apt-get install postgresql-<major>-hypopg), then CREATE EXTENSION hypopg;"
            },
        ),
        capability(
            "pg_signal_backend",
            signal,
            "the agent's role in pg_signal_backend (cancels queries and ends sessions on request)",
            &["cancel and terminate (POST /api/performance/activity/{pid}/{action})"],
            &format!("GRANT pg_signal_backend TO {role};   -- optional"),
        ),
        capability(
            "sequence_positions",
            sequences,
            "perfscope.sequence_positions() of sql/install.sql (reads every sequence's last value and bounds, nothing else; pg_sequences hides them from a role without SELECT on the sequence)",
            &[
                "sequences near the end of their range, for the sequences the agent's role may not SELECT (they are counted in a sequences_unreadable finding)",
            ],
            &format!(
                "run sql/install.sql as a superuser (creates the function), or: GRANT USAGE ON SCHEMA perfscope TO {role}; GRANT EXECUTE ON FUNCTION perfscope.sequence_positions() TO {role};"
            ),
        ),
        capability(
            "track_io_timing",
            io_timing,
            "track_io_timing (I/O time per statement)",
            &["I/O time in slow-query figures"],
            "ALTER SYSTEM SET track_io_timing = on; SELECT pg_reload_conf();",
        ),
        encryption(row.try_get(11)?, row.try_get(12)?),
    ];
    let mut capabilities = capabilities;
    capabilities.extend(ash::capabilities(&row, superuser, &role, &watched.ash)?);
    drop(client);
    capabilities.push(planner(watched.advisor.planner()).await);
    if let Some(readers) = readers(watched.leadership.role()) {
        capabilities.push(readers);
    }
    Ok(SelfCheck {
        database: name.to_owned(),
        database_name: row.try_get(10)?,
        role,
        server_version: row.try_get(0)?,
        capabilities,
    })
}
