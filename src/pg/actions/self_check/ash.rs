//! The self-check's lines about the active session history: whether the
//! role sees other roles' sessions, whether texts are cut before their
//! sqlcommenter tags, whether Postgres computes `query_id`, and whether
//! the server's sampler has its connection.

use std::sync::atomic::Ordering;

use super::{Capability, capability};
use crate::pg::ash::{SamplerState, SamplerStatus};

/// The ASH lines of a self-check row (`sql/queries/self_check.sql`).
pub(super) fn capabilities(
    row: &tokio_postgres::Row,
    superuser: bool,
    role: &str,
    sampler: &SamplerStatus,
) -> Result<Vec<Capability>, tokio_postgres::Error> {
    let all_stats = row.try_get::<_, bool>("read_all_stats")? || superuser;
    let query_size: String = row.try_get("track_activity_query_size")?;
    let query_id: String = row.try_get("compute_query_id")?;
    let cut = sampler.cut_comments.load(Ordering::Relaxed);
    Ok(vec![
        capability(
            "ash_other_roles",
            all_stats,
            "the agent's role in pg_read_all_stats (in pg_monitor): the active session history sees every role's sessions, statements and wait events",
            &[
                "other roles' sessions in the active session history (only the agent's own role's are seen)",
            ],
            &format!("GRANT pg_monitor TO {role};"),
        ),
        capability(
            "track_activity_query_size",
            cut == 0,
            &format!(
                "track_activity_query_size = {query_size}: {cut} statement text(s) sampled were cut inside their sqlcommenter comment, losing their route and trace tags"
            ),
            &["the route and trace id of long statements in the active session history"],
            "ALTER SYSTEM SET track_activity_query_size = 4096;   -- then restart the server",
        ),
        capability(
            "compute_query_id",
            query_id != "off",
            &format!(
                "compute_query_id = {query_id}: pg_stat_activity shows each statement's query_id (perfscope's own fingerprint stands in without it)"
            ),
            &["query_id on active session history rows"],
            "ALTER SYSTEM SET compute_query_id = auto; SELECT pg_reload_conf();   -- auto: on with pg_stat_statements loaded",
        ),
        sampling(sampler),
    ])
}

/// Whether the server's sampler samples.
fn sampling(sampler: &SamplerStatus) -> Capability {
    let samples = sampler.samples.load(Ordering::Relaxed);
    let errors = sampler.errors.load(Ordering::Relaxed);
    match sampler.state() {
        SamplerState::Off => capability(
            "ash_sampling",
            true,
            "active session history off (PERFSCOPE_ASH_INTERVAL=0)",
            &[],
            "",
        ),
        SamplerState::Sampling => capability(
            "ash_sampling",
            true,
            &format!(
                "the server's pg_stat_activity is sampled on one kept connection ({samples} samples, {errors} failed)"
            ),
            &[],
            "",
        ),
        SamplerState::Idle => capability(
            "ash_sampling",
            samples > 0,
            "the server's sampler is not running in this process (not read here yet, or another replica reads it)",
            &["the active session history of this server"],
            "none needed when another replica reads this database",
        ),
        SamplerState::Waiting(reason) => capability(
            "ash_sampling",
            false,
            &format!("the server is not sampled now: {reason} ({samples} samples so far)"),
            &["the active session history of this server"],
            "raise PERFSCOPE_MAX_DB_CONNECTIONS (half of it may be kept, one per server sampled), or free connection slots on the server (PERFSCOPE_DB_CONNECTION_HEADROOM)",
        ),
    }
}
