//! A real PgBouncer in transaction mode in front of a throwaway cluster,
//! for the tests and the bench of the timed pool behind a transaction
//! pooler: Debian's binary, its own ini and userlist (trust, the
//! `postgres` user) in a temporary directory, a free port, run as
//! `postgres` when we are root (it refuses to run as root), killed and
//! removed when dropped. Without the binary it fails, saying how to
//! install it, unless `PERFSCOPE_TEST_SKIP_PGBOUNCER=1`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's package puts it.
pub const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A running PgBouncer; killed and its directory removed when dropped.
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl PgBouncer {
    /// The binary, or `None` when it is missing and the skip is asked for.
    pub fn binary() -> Option<&'static Path> {
        let path = Path::new(PGBOUNCER);
        if path.is_file() {
            return Some(path);
        }
        if std::env::var("PERFSCOPE_TEST_SKIP_PGBOUNCER").as_deref() == Ok("1") {
            eprintln!(
                "SKIPPED: the transaction-pooler checks (PERFSCOPE_TEST_SKIP_PGBOUNCER=1 and no \
                 {PGBOUNCER})"
            );
            return None;
        }
        panic!(
            "no {PGBOUNCER}: install it (Debian: apt-get install pgbouncer; bash tests/run.sh \
             does), or set PERFSCOPE_TEST_SKIP_PGBOUNCER=1 to skip these checks"
        );
    }

    /// `(major, minor)` of the installed PgBouncer.
    pub fn version(binary: &Path) -> (u32, u32) {
        let out = Command::new(binary)
            .arg("--version")
            .output()
            .expect("pgbouncer --version");
        let text = String::from_utf8_lossy(&out.stdout);
        // "PgBouncer 1.18.0"
        let number = text
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("a version in {text:?}"));
        let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// Starts it in transaction mode in front of the cluster on `pg_port`,
    /// with `server_pool` server connections per database and user and
    /// `extra` lines in its `[pgbouncer]` section; as `postgres` when we
    /// are root (it refuses to run as root).
    pub fn start(binary: &Path, pg_port: u16, server_pool: usize, extra: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "perfscope-pgbouncer-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("pgbouncer's directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let d = dir.display();
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").expect("userlist");
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={pg_port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {d}/userlist.txt\n\
                 pool_mode = transaction\ndefault_pool_size = {server_pool}\n\
                 min_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 200\n\
                 logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n\
                 ignore_startup_parameters = extra_float_digits\n{extra}\n"
            ),
        )
        .expect("pgbouncer.ini");
        let mut command = Command::new(binary);
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(chown.success(), "chown of {d}");
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pgbouncer starts");
        let mut bouncer = Self { child, dir, port };
        bouncer.wait_listening();
        bouncer
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    fn wait_listening(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("pgbouncer exited ({status}): {stderr}\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer did not listen within 10 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
