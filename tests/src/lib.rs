//! goru's test support, shared by the tests of every crate (a
//! dev-dependency of each): nothing here knows the engine's or the
//! daemon's types, so no crate's tests get a second copy of them.
//!
//! - [`index`]: wheels built in memory and a local package index.
//! - [`http_server`]: a small HTTP/1.1 server on 127.0.0.1.
//! - [`daemon`]: a `goru-daemon` process and a blocking JSON-RPC client.
//!
//! Its own tests (`tests/tests/`) are the checks that cross crates.

pub mod daemon;
pub mod http_server;
pub mod index;
