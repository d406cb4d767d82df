//! Servers of a test's own, for the tests that stop, restart, pause or count the clients of
//! their servers: on the shared ones that would disturb the tests beside them.

use super::app::{TestApp, spawn_app_on};
use super::servers::servers;
use local_servers::{PostgresServer, RedisCluster, RedisServer};

/// Like [`spawn_app_with`](super::app::spawn_app_with), on a Redis server of the test's own
/// (its database is still on the shared Postgres cluster). The server stops when dropped.
pub async fn spawn_app_with_own_redis(overrides: &[(&str, &str)]) -> (RedisServer, TestApp) {
    let redis = RedisServer::start().expect("start a redis-server of the test's own");
    let t = spawn_app_on_redis(&redis.url(), overrides).await;
    (redis, t)
}

/// An app on a Redis the test started itself (a primary with its replica, say), its
/// database on the shared Postgres cluster.
pub async fn spawn_app_on_redis(redis_url: &str, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(redis_url, &servers().postgres_admin, overrides).await
}

/// An app in cluster mode (`REDIS_CLUSTER=true`, given every node as a seed) on a Redis
/// Cluster the test started itself, its database on the shared Postgres cluster. Its key
/// prefix is a hash tag of its own unless `overrides` sets one.
pub async fn spawn_app_on_cluster(cluster: &RedisCluster, overrides: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("REDIS_CLUSTER", "true")];
    settings.extend_from_slice(overrides);
    spawn_app_on_redis(&cluster.urls().join(","), &settings).await
}

enum ServerCommand {
    RestartRedis,
    RestartPostgres,
    StopPostgres,
    StartPostgres,
}

/// A private Redis (AOF on) and Postgres for one test, owned by a thread that lives as long
/// as this handle (the servers die with the thread that started them), which restarts them
/// on request while the test's drains keep running.
pub struct PrivateServers {
    pub redis_url: String,
    pub postgres_admin: String,
    commands: Option<std::sync::mpsc::Sender<(ServerCommand, tokio::sync::oneshot::Sender<()>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PrivateServers {
    /// `durable_postgres`: keep fsync and synchronous commit on, so a SIGKILLed postmaster
    /// cannot lose a transaction it already reported committed (with `synchronous_commit=off`
    /// it can, which no real deployment does).
    pub fn start(durable_postgres: bool) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (commands, inbox) =
            std::sync::mpsc::channel::<(ServerCommand, tokio::sync::oneshot::Sender<()>)>();
        let thread = std::thread::spawn(move || {
            let mut redis = RedisServer::start().expect("start private redis-server");
            let mut postgres =
                PostgresServer::start_with(durable_postgres).expect("start private postgres");
            tx.send((redis.url(), postgres.url("postgres"))).unwrap();
            for (command, done) in inbox {
                match command {
                    ServerCommand::RestartRedis => redis.restart().expect("restart redis"),
                    ServerCommand::RestartPostgres => postgres.restart().expect("restart postgres"),
                    ServerCommand::StopPostgres => postgres.kill(),
                    ServerCommand::StartPostgres => {
                        postgres.start_again().expect("start postgres again")
                    }
                }
                let _ = done.send(());
            }
        });
        let (redis_url, postgres_admin) = rx.recv().expect("private servers started");
        PrivateServers {
            redis_url,
            postgres_admin,
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    async fn send(&self, command: ServerCommand) {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.commands
            .as_ref()
            .unwrap()
            .send((command, done))
            .unwrap();
        wait.await.expect("server thread alive");
    }

    /// Kills redis-server with SIGKILL and starts it again on its AOF.
    pub async fn restart_redis(&self) {
        self.send(ServerCommand::RestartRedis).await
    }

    /// Kills the postmaster with SIGKILL and starts it again; Postgres recovers from its WAL.
    pub async fn restart_postgres(&self) {
        self.send(ServerCommand::RestartPostgres).await
    }

    /// Kills the postmaster with SIGKILL: Postgres stays down until [`Self::start_postgres`].
    pub async fn stop_postgres(&self) {
        self.send(ServerCommand::StopPostgres).await
    }

    /// Starts a stopped Postgres again; it recovers from its WAL.
    pub async fn start_postgres(&self) {
        self.send(ServerCommand::StartPostgres).await
    }
}

impl Drop for PrivateServers {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
