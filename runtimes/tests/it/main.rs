//! The engine's integration tests, one binary (one link of wasmtime
//! instead of one per file). Each module is one area; `outcomes` holds the
//! assertions they share.

mod docs;
mod engine;
mod fs;
mod host_functions;
mod http;
mod isolation;
mod outcomes;
mod packages;
mod pool;
mod python_gc;
