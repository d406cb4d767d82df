//! Private, throwaway Redis and Postgres servers for the local run, the tests and the
//! benchmark: each in its own temporary directory on a free loopback port, gone on drop; and
//! a three-node Redis Cluster for the tests of cluster mode.
//!
//! The servers get `PR_SET_PDEATHSIG`, so they die with the thread that started them even
//! when that process is killed with SIGKILL: a crashed test run leaves no server behind.
//! Postgres refuses to run as root, so as root it runs as the `postgres` user.

use std::ffi::CString;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A certificate and its private key, in PEM, for a server that speaks only TLS.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A `redis-server` with AOF persistence, so a restart keeps the stream (as ElastiCache does).
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    tls: bool,
}

impl RedisServer {
    pub fn start() -> io::Result<Self> {
        Self::start_configured(None)
    }

    /// A server whose only port speaks TLS (as ElastiCache with in-transit encryption).
    pub fn start_tls(identity: &TlsIdentity) -> io::Result<Self> {
        Self::start_configured(Some(identity))
    }

    fn start_configured(tls: Option<&TlsIdentity>) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("leads-redis-").tempdir()?;
        if let Some(identity) = tls {
            std::fs::write(dir.path().join("tls.crt"), &identity.cert_pem)?;
            std::fs::write(dir.path().join("tls.key"), &identity.key_pem)?;
        }
        let mut server = RedisServer {
            child: None,
            dir,
            port: free_port()?,
            tls: tls.is_some(),
        };
        server.launch()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, as a crash would) and starts it again on the same data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.launch()
    }

    /// Stops the server until [`RedisServer::start_again`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_again(&mut self) -> io::Result<()> {
        self.launch()
    }

    fn launch(&mut self) -> io::Result<()> {
        let mut command = Command::new(find_binary("redis-server", &[])?);
        let port = self.port.to_string();
        if self.tls {
            let dir = self.dir.path();
            command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(dir.join("tls.crt"))
                .arg("--tls-key-file")
                .arg(dir.join("tls.key"));
        } else {
            command.args(["--port", &port]);
        }
        command
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
                // Tests use DEBUG SLEEP to play a slow server.
                "--enable-debug-command",
                "local",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command, libc::SIGTERM);
        self.child = Some(command.spawn()?);
        wait_for_port(
            self.port,
            "redis-server",
            &self.dir.path().join("redis.log"),
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: Redis flushes and exits cleanly.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// A Redis Cluster of three primaries (no replicas), as ElastiCache Serverless or a
/// cluster-mode-enabled group presents itself: each node a `redis-server` with
/// `cluster-enabled yes` in its own temporary directory on free loopback ports, the 16384
/// slots spread over the three by `redis-cli --cluster create`. Ready when every node's
/// `CLUSTER INFO` says `cluster_state:ok`; stopped on drop.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    port: u16,
}

impl RedisCluster {
    pub const NODES: usize = 3;

    pub fn start() -> io::Result<Self> {
        let server = find_binary("redis-server", &[])?;
        let mut cluster = RedisCluster { nodes: Vec::new() };
        // The cluster bus listens on a port of its own: a free one too, rather than the
        // default port + 10000, which may be taken or past 65535.
        let mut ports = free_ports(2 * Self::NODES)?.into_iter();
        while let (Some(port), Some(bus_port)) = (ports.next(), ports.next()) {
            let dir = tempfile::Builder::new()
                .prefix("leads-redis-cluster-")
                .tempdir()?;
            let mut command = Command::new(&server);
            command
                .args(["--port", &port.to_string()])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxmemory-policy",
                    "noeviction",
                ])
                .arg("--dir")
                .arg(dir.path())
                .args(["--logfile", "redis.log"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut command, libc::SIGTERM);
            let child = command.spawn()?;
            let log = dir.path().join("redis.log");
            cluster.nodes.push(ClusterNode {
                child: Some(child),
                _dir: dir,
                port,
            });
            wait_for_port(port, "redis-server (cluster node)", &log)?;
        }
        cluster.create()?;
        Ok(cluster)
    }

    /// Assigns the slots (`redis-cli --cluster create`, no replicas) and waits until every
    /// node reports the cluster usable.
    fn create(&self) -> io::Result<()> {
        let cli = find_binary("redis-cli", &[])?;
        let out = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &self.nodes {
            loop {
                let info = Command::new(&cli)
                    .args(["-h", "127.0.0.1", "-p", &node.port.to_string()])
                    .args(["CLUSTER", "INFO"])
                    .stdin(Stdio::null())
                    .output()?;
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(io::Error::other(format!(
                        "the cluster is not ok on port {} after 30 s: {}",
                        node.port,
                        String::from_utf8_lossy(&info.stdout)
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// One `redis://` URL per node (each one is enough to find the others).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = &node.child {
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.wait();
            }
        }
    }
}

/// A Postgres cluster (`initdb` + `postgres`) tuned for throwaway data.
pub struct PostgresServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    durable: bool,
    tls: bool,
}

impl PostgresServer {
    /// Starts with `fsync` off: fine for tests and the local run (a killed *process* loses
    /// nothing the kernel has; only an OS crash would).
    pub fn start() -> io::Result<Self> {
        Self::start_with(false)
    }

    /// `durable`: keep Postgres's default fsync and commit settings (the benchmark uses it so
    /// the figures mean what they would on a real server).
    pub fn start_with(durable: bool) -> io::Result<Self> {
        Self::start_configured(durable, None, false)
    }

    /// A server that accepts TLS (`ssl=on`) with this certificate, as RDS does.
    pub fn start_tls(identity: &TlsIdentity) -> io::Result<Self> {
        Self::start_configured(false, Some(identity), false)
    }

    /// A server that checks passwords, as RDS does: every role except the superuser
    /// `postgres` (left trusted, to administer it) must sign in with its SCRAM-SHA-256
    /// password (`scram-sha-256` in `pg_hba.conf`). Make such roles with [`create_login_role`].
    pub fn start_password_auth() -> io::Result<Self> {
        Self::start_configured(false, None, true)
    }

    fn start_configured(
        durable: bool,
        tls: Option<&TlsIdentity>,
        password_auth: bool,
    ) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("leads-postgres-")
            .tempdir()?;
        let owner = postgres_user();
        if let Some((uid, gid)) = owner {
            chown(dir.path(), uid, gid)?;
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(find_binary("initdb", &pg_dirs())?);
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_owner(&mut initdb, owner);
        let out = initdb.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        if password_auth {
            // First match wins: the superuser stays trusted, everyone else needs a password.
            let hba = "local all postgres trust\n\
                       host  all postgres 127.0.0.1/32 trust\n\
                       local all all scram-sha-256\n\
                       host  all all 127.0.0.1/32 scram-sha-256\n";
            std::fs::write(data.join("pg_hba.conf"), hba)?;
        }
        if let Some(identity) = tls {
            // Postgres's defaults: server.crt and server.key in the data directory; it refuses
            // a key that others can read.
            use std::os::unix::fs::PermissionsExt as _;
            for (name, pem) in [
                ("server.crt", &identity.cert_pem),
                ("server.key", &identity.key_pem),
            ] {
                let path = data.join(name);
                std::fs::write(&path, pem)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                if let Some((uid, gid)) = owner {
                    chown(&path, uid, gid)?;
                }
            }
        }
        let mut server = PostgresServer {
            child: None,
            dir,
            port: free_port()?,
            durable,
            tls: tls.is_some(),
        };
        server.launch()?;
        Ok(server)
    }

    /// URL of database `name` (the `postgres` database always exists).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Kills the postmaster (SIGKILL, as a crash would) and starts it again; Postgres recovers
    /// from its WAL.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.launch()
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // Backends notice the postmaster is gone and exit; wait until the port is free.
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn start_again(&mut self) -> io::Result<()> {
        self.launch()
    }

    fn launch(&mut self) -> io::Result<()> {
        let log = self.dir.path().join("postgres.log");
        let mut command = Command::new(find_binary("postgres", &pg_dirs())?);
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .arg("-k")
            .arg(self.dir.path());
        if self.tls {
            command.args(["-c", "ssl=on"]);
        }
        if !self.durable {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let log_file = std::fs::File::create(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        as_owner(&mut command, postgres_user());
        // SIGQUIT is Postgres's immediate shutdown: it also releases its shared memory.
        die_with_parent(&mut command, libc::SIGQUIT);
        self.child = Some(command.spawn()?);
        wait_for_port(self.port, "postgres", &log)?;
        // The port opens before recovery ends; give the startup a moment to accept queries.
        let deadline = Instant::now() + Duration::from_secs(30);
        let isready = find_binary("pg_isready", &pg_dirs()).ok();
        while let Some(bin) = &isready {
            let ok = Command::new(bin)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-q",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if ok || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown, which waits for nothing and cleans up.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `n` distinct free ports (all held at once while they are picked).
fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn wait_for_port(port: u16, what: &str, log: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    Err(io::Error::other(format!(
        "{what} did not start within 30 s; its log:\n{tail}"
    )))
}

/// Looks on PATH, then in `extra` directories (Debian keeps Postgres in a versioned folder).
fn find_binary(name: &str, extra: &[PathBuf]) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} not found; `make deps` installs redis-server and PostgreSQL"),
            )
        })
}

fn pg_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = versions
            .filter_map(|v| v.ok())
            .map(|v| v.path().join("bin"))
            .collect();
        found.sort();
        dirs.extend(found.into_iter().rev());
    }
    dirs
}

/// The `postgres` user's ids when running as root (Postgres will not run as root).
fn postgres_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = CString::new("postgres").ok()?;
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

fn die_with_parent(command: &mut Command, signal: i32) {
    // Runs in the child after the uid switch (which would otherwise clear the setting).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Creates database `name` on the server at `admin_url` (a URL of its `postgres` database).
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // A name cannot be a bind parameter; keep it to characters that need no quoting.
        let safe: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{safe}\"")))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Creates role `name` that logs in with `password` (stored as a SCRAM-SHA-256 verifier, the
/// default of `password_encryption`), on the server at `admin_url`; for
/// [`PostgresServer::start_password_auth`]. `name` is kept to characters that need no quoting.
pub async fn create_login_role(
    admin_url: &str,
    name: &str,
    password: &str,
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    // CREATE ROLE takes no bind parameters: the password goes in as a quoted literal.
    let literal = password.replace('\'', "''");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{safe}\" LOGIN PASSWORD '{literal}'"
    )))
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// The Redis server and Postgres cluster every test of one test binary shares.
pub struct SharedServers {
    pub redis: String,
    /// A URL of the cluster's `postgres` database, for creating per-test databases.
    pub postgres_admin: String,
}

static SHARED_URLS: std::sync::OnceLock<SharedServers> = std::sync::OnceLock::new();
static SHARED: std::sync::Mutex<Option<(RedisServer, PostgresServer)>> =
    std::sync::Mutex::new(None);

extern "C" fn stop_shared_servers() {
    if let Ok(mut servers) = SHARED.lock() {
        servers.take();
    }
}

/// `TEST_REDIS_URL` and `TEST_DATABASE_URL` (a URL of the `postgres` database) when both are
/// set (docs/testing.md); else private servers, started once per process and stopped at its
/// exit. Started from a thread that lives as long as the process: the servers are tied to it
/// (`PR_SET_PDEATHSIG`), and a test's own thread ends with the test.
pub fn shared_servers() -> &'static SharedServers {
    SHARED_URLS.get_or_init(|| {
        if let (Ok(redis), Ok(postgres_admin)) = (
            std::env::var("TEST_REDIS_URL"),
            std::env::var("TEST_DATABASE_URL"),
        ) {
            return SharedServers {
                redis,
                postgres_admin,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let redis = RedisServer::start().expect("start redis-server");
            let postgres = PostgresServer::start().expect("start postgres");
            let urls = SharedServers {
                redis: redis.url(),
                postgres_admin: postgres.url("postgres"),
            };
            *SHARED.lock().unwrap() = Some((redis, postgres));
            // SAFETY: registers a plain `extern "C" fn` with no captured state.
            unsafe { libc::atexit(stop_shared_servers) };
            tx.send(urls).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("test servers started")
    })
}
