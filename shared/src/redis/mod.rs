//! Redis: the stream the drains read and its consumer group ([`stream`], one [`entry`] per
//! chunk), its [`dead_letters`] and [`housekeeping`], and the status documents clients poll
//! ([`status_cache`]), all under the names in [`keys`], over connections (to one server or a
//! Redis Cluster) that retry a command once (`connection`) and sign in with [`credentials`]
//! that may change while the process runs.
//! The Lua scripts sit beside the modules that run them, as `.lua` files.

pub(crate) mod connection;
pub mod credentials;
pub mod dead_letters;
pub mod drains;
pub mod entry;
pub mod housekeeping;
pub mod keys;
pub mod status_cache;
pub mod stream;
