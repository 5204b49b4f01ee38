//! The `goru` binary as a user runs it, one test binary (one link instead
//! of one per file). `common` runs the binary; `connect` drives it and the
//! client library against an in-process daemon.

mod capabilities;
mod common;
mod connect;
mod deps;
mod fs;
mod http;
mod js;
mod python;
mod repl;
mod usage;
