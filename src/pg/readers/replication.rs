//! The replication reader: on a primary, each standby's state and its
//! write, flush and replay lag (`pg_stat_replication`); on a standby, its
//! own replay lag; and on both, the replication slots with the WAL each
//! retains (`pg_replication_slots`). An inactive slot holding WAL is a
//! finding: the server cannot recycle that WAL and its disk fills. Lag per
//! standby and WAL per slot are metrics.

use std::sync::Arc;

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const REPLICATION: &str = include_str!("../../../sql/queries/replication.sql");
const SLOTS: &str = include_str!("../../../sql/queries/replication_slots.sql");

/// Standbys and slots exported as series at most (the series cap).
pub const MAX_EXPORTED: usize = 32;

/// A standby (on a primary), or this server itself when it is one.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct Standby {
    /// Its `application_name` (or address); `self` for this standby.
    pub name: String,
    /// Its address.
    pub client: String,
    /// `streaming`, `catchup`, … (`recovering` for this standby).
    pub state: String,
    /// `async`, `sync`, `quorum`, `potential`.
    pub sync_state: String,
    /// Seconds until its last WAL write was confirmed.
    #[oai(skip_serializing_if_is_none)]
    pub write_lag_seconds: Option<f64>,
    /// Seconds until its last flush was confirmed.
    #[oai(skip_serializing_if_is_none)]
    pub flush_lag_seconds: Option<f64>,
    /// Seconds until its last replay was confirmed (for this standby: since
    /// the last replayed transaction, 0 when caught up).
    #[oai(skip_serializing_if_is_none)]
    pub replay_lag_seconds: Option<f64>,
    /// WAL bytes not yet replayed.
    #[oai(skip_serializing_if_is_none)]
    pub bytes_behind: Option<f64>,
}

/// A replication slot.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct Slot {
    /// Its name.
    pub name: String,
    /// `physical` or `logical`.
    pub slot_type: String,
    /// Its database (logical slots).
    pub database: String,
    /// Whether a consumer is connected.
    pub active: bool,
    /// `reserved`, `extended`, `unreserved`, `lost`.
    pub wal_status: String,
    /// WAL bytes it keeps from being removed.
    #[oai(skip_serializing_if_is_none)]
    pub retained_bytes: Option<f64>,
}

/// One pass.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationSnapshot {
    /// Whether this server is a standby.
    pub standby: bool,
    /// Its standbys (a primary), or itself (a standby).
    pub standbys: Vec<Standby>,
    /// Its replication slots.
    pub slots: Vec<Slot>,
}

impl ReplicationSnapshot {
    /// Inactive slots that keep WAL.
    pub fn inactive_slots(&self) -> Vec<&Slot> {
        self.slots
            .iter()
            .filter(|s| !s.active && s.retained_bytes.is_some())
            .collect()
    }
}

/// Reads replication now.
pub async fn read_replication(tx: &TimedTransaction<'_>) -> Result<ReplicationSnapshot, ReadError> {
    let standby: bool = tx
        .query_one("SELECT /* perfscope */ pg_is_in_recovery()", &[])
        .await?
        .try_get(0)?;
    let mut standbys = Vec::new();
    for row in tx.query(REPLICATION, &[]).await? {
        standbys.push(Standby {
            name: row.try_get("name")?,
            client: row.try_get("client")?,
            state: row.try_get("state")?,
            sync_state: row.try_get("sync_state")?,
            write_lag_seconds: row.try_get("write_lag")?,
            flush_lag_seconds: row.try_get("flush_lag")?,
            replay_lag_seconds: row.try_get("replay_lag")?,
            bytes_behind: row.try_get("bytes_behind")?,
        });
    }
    let mut slots = Vec::new();
    for row in tx.query(SLOTS, &[]).await? {
        slots.push(Slot {
            name: row.try_get("slot_name")?,
            slot_type: row.try_get("slot_type")?,
            database: row.try_get("database")?,
            active: row.try_get("active")?,
            wal_status: row.try_get("wal_status")?,
            retained_bytes: row.try_get("retained_bytes")?,
        });
    }
    Ok(ReplicationSnapshot {
        standby,
        standbys,
        slots,
    })
}

/// Reads replication now through `pool` (read-only, under `timeout`).
pub async fn read_now(
    pool: &crate::db::TimedPool,
    timeout: std::time::Duration,
) -> Result<ReplicationSnapshot, ReadError> {
    let mut client = pool.get().await?;
    let tx = crate::pg::read_only(&mut client, timeout).await?;
    let snapshot = read_replication(&tx).await?;
    tx.commit().await?;
    Ok(snapshot)
}

/// The replication reader of one database's server.
#[derive(Debug, Default)]
pub struct ReplicationReader {
    latest: crate::pg::Latest<ReplicationSnapshot>,
    /// Its server's shared views: one read for every watched database of
    /// the server.
    views: Option<Arc<super::shared::SharedRead<Arc<ReplicationSnapshot>>>>,
}

impl ReplicationReader {
    /// The latest pass, once one succeeded.
    pub fn latest(&self) -> Option<Arc<ReplicationSnapshot>> {
        self.latest.get()
    }

    /// Shares its reads with the other watched databases of its server.
    #[must_use]
    pub fn with_server_views(
        mut self,
        views: Arc<super::shared::SharedRead<Arc<ReplicationSnapshot>>>,
    ) -> Self {
        self.views = Some(views);
        self
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let snapshot = match &self.views {
            Some(views) => {
                views
                    .get(async { Ok(Arc::new(read_replication(tx).await?)) })
                    .await?
            }
            None => Arc::new(read_replication(tx).await?),
        };
        self.latest.set_shared(snapshot);
        Ok(())
    }
}

crate::pg::impl_reader!(ReplicationReader, "replication");
