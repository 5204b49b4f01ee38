//! The daemon binary's integration tests, one test binary: the protocol's
//! conformance, robustness under misbehaving clients, and the example
//! clients in other languages. The soak test (`tests/soak.rs`) is its own
//! binary, run alone when asked for longer.

mod clients;
mod conformance;
mod robustness;

/// The daemon under test.
const DAEMON: &str = env!("CARGO_BIN_EXE_goru-daemon");
