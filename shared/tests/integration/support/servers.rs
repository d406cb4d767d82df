//! The Redis server and Postgres cluster every test of the binary shares
//! (`local_servers::shared_servers`).

pub use local_servers::shared_servers as servers;
