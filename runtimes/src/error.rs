//! The engine's errors: things that went wrong on the host side, as opposed
//! to a guest's exception or trap, which are an [`crate::Outcome`].

use crate::{CapabilityError, Language, LimitError};
use std::path::PathBuf;

/// An error of the engine itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A limit was out of range.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A capability could not be used (a bad mount point, a missing host
    /// directory, a bad allowed host, packages for JavaScript...): the
    /// error names its option and flag.
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    /// The `http` module's client could not be set up on this host.
    #[error("could not set up the HTTP client: {0}")]
    HttpClient(String),
    /// The wasmtime engine could not be configured on this host.
    #[error("could not set up the WebAssembly engine: {0}")]
    EngineSetup(String),
    /// A guest could not be compiled or loaded.
    #[error("could not prepare the {language} guest: {message}")]
    GuestLoad { language: Language, message: String },
    /// The compiled-guest cache could not be used.
    #[error("compile cache at {path}: {message}")]
    Cache { path: PathBuf, message: String },
    /// The sandbox could not be created (outside any limit).
    #[error("could not start the {language} sandbox: {message}")]
    Instantiate { language: Language, message: String },
    /// The engine already holds as many live instances as its pooling
    /// allocator has room for ([`crate::EngineBuilder::max_instances`]):
    /// end a session first, or build the engine with a larger pool.
    #[error(
        "could not start the {language} sandbox: the engine's instance pool is full ({message}); \
         end a session first"
    )]
    PoolExhausted { language: Language, message: String },
    /// The session can no longer run code: an earlier run trapped.
    #[error("this session is dead: an earlier run ended with {0}; create a new one")]
    SessionDead(String),
}
