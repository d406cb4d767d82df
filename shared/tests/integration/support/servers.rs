//! The Redis server and Postgres cluster every test of the binary shares.

use local_servers::{PostgresServer, RedisServer};
use std::sync::{Mutex, OnceLock};

pub struct ServerUrls {
    pub redis: String,
    /// A URL of the cluster's `postgres` database, for creating per-test databases.
    pub postgres_admin: String,
}

static URLS: OnceLock<ServerUrls> = OnceLock::new();

static SERVERS: Mutex<Option<(RedisServer, PostgresServer)>> = Mutex::new(None);

extern "C" fn stop_servers() {
    if let Ok(mut servers) = SERVERS.lock() {
        servers.take();
    }
}

pub fn servers() -> &'static ServerUrls {
    URLS.get_or_init(|| {
        if let (Ok(redis), Ok(postgres_admin)) = (
            std::env::var("TEST_REDIS_URL"),
            std::env::var("TEST_DATABASE_URL"),
        ) {
            return ServerUrls {
                redis,
                postgres_admin,
            };
        }
        // Started from a thread that lives as long as the process: the servers are tied to it
        // (PR_SET_PDEATHSIG), and a test's own thread ends with the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let redis = RedisServer::start().expect("start redis-server");
            let postgres = PostgresServer::start().expect("start postgres");
            let urls = ServerUrls {
                redis: redis.url(),
                postgres_admin: postgres.url("postgres"),
            };
            *SERVERS.lock().unwrap() = Some((redis, postgres));
            unsafe { libc::atexit(stop_servers) };
            tx.send(urls).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("test servers started")
    })
}
