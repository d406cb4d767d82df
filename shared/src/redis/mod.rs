//! Redis: the stream the drains read, its consumer group and dead letters ([`stream`], one
//! [`entry`] per chunk), and the status documents clients poll ([`status_cache`]), all under
//! the names in [`keys`], over connections that retry a command once ([`connection`]).
//! The Lua scripts sit beside the modules that run them, as `.lua` files.

pub(crate) mod connection;
pub mod entry;
pub mod keys;
pub mod status_cache;
pub mod stream;
