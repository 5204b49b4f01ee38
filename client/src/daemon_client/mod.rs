//! A typed client of the goru daemon's JSON-RPC protocol (goru-protocol).
//!
//! One connection has one reader task (`reader`), which routes each answer
//! to the request waiting for it (`connection`) and serves the daemon's
//! `host/call` requests (`host_calls`), and one writer task fed by a
//! channel, so sending never waits for the socket.

mod client;
mod connection;
mod error;
mod host_calls;
mod host_functions;
mod options;
mod reader;

pub use client::Client;
pub use connection::PendingRequest;
pub use error::ClientError;
pub use host_calls::HOST_FUNCTION_ERROR;
pub use host_functions::{HostFunctions, HostResult};
pub use options::{ClientOptions, OutputCallback};
pub use reader::MAX_FRAME_BYTES;

/// Locks a mutex, poisoned or not: every critical section in this client
/// is a single insert, remove or take, so the data is consistent even after
/// a panic elsewhere.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
