//! A throwaway PostgreSQL cluster per test: initdb + pg_ctl on a free
//! loopback port with pg_stat_statements preloaded, the server log in a
//! file, stop/start for outage tests, run as the `postgres` OS user when the
//! tests run as root. (The `pgtemp` crate does part of this but needs sudo
//! as root, picks ports racily and cannot restart a cluster.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped and removed when dropped.
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

/// The newest server binaries on the machine.
fn server_bin() -> PathBuf {
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
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries under /usr/lib/postgresql: install them \
             (apt-get install postgresql-15 postgresql-15-hypopg), or run `bash tests/run.sh`"
        )
    })
}

/// A free loopback port (bound, then released; `start_with` retries on a
/// race).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a server binary, as `postgres` when we are root.
fn run(bin: &Path, program: &str, args: &[&str]) -> Output {
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
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
}

impl PgCluster {
    /// initdb and start a cluster.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Like [`PgCluster::start`] with extra postgresql.conf lines.
    pub fn start_with(extra_conf: &str) -> Self {
        let bin = server_bin();
        let dir = std::env::temp_dir().join(format!(
            "perfscope-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if is_root() {
            let chown = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(chown.success(), "chown of {} failed", dir.display());
        }
        let data = dir.join("data");
        let data_str = data.to_str().expect("utf-8 path").to_owned();
        let init = run(
            &bin,
            "initdb",
            &[
                "-D",
                &data_str,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = format!(
                "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n{extra_conf}\n",
                dir.display()
            );
            let conf_path = data.join("postgresql.auto.conf");
            std::fs::write(&conf_path, conf).expect("write conf");
            let cluster = Self {
                bin: bin.clone(),
                dir: dir.clone(),
                port,
            };
            match cluster.pg_ctl_start() {
                Ok(()) => return cluster,
                Err(error) => {
                    last_error = error;
                    std::mem::forget(cluster);
                }
            }
        }
        panic!("the cluster did not start: {last_error}");
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }

    /// Stops the server (fast shutdown), keeping the data.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start().expect("the cluster restarts");
    }

    /// A connection URL.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Connects as the superuser and runs `sql` (several statements allowed).
    pub async fn exec(&self, database: &str, sql: &str) {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres", database), tokio_postgres::NoTls)
                .await
                .expect("superuser connects");
        let task = tokio::spawn(connection);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = task.await;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
