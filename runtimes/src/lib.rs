//! goru's engine: run untrusted Python and JavaScript in WebAssembly
//! sandboxes with wasmtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use goru_runtimes::{Engine, Language, SessionBuilder, Status};
//! let engine = Engine::new()?;
//! let outcome = engine
//!     .run_once(&SessionBuilder::new(Language::Python), "print(1 + 1)", "<string>")
//!     .await?;
//! assert_eq!(outcome.status, Status::Ok { value: None });
//! assert_eq!(outcome.stdout, b"2\n");
//! # Ok(()) }
//! ```
//!
//! An [`Engine`] compiles each guest once (cached on disk); a [`Session`] is
//! one live guest instance with its own store, limits and output; a run
//! returns an [`Outcome`]. Guests get nothing of the host by default: no
//! files, network, environment variables or host functions.

mod allocator;
mod bindings;
mod cache;
mod capabilities;
mod deterministic;
mod engine;
mod epoch;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod guests;
mod host_calls;
mod host_functions;
mod host_memory;
mod instance;
mod limiter;
mod limits;
mod modules;
mod one_shot;
mod outcome;
mod output;
mod pool;
mod session;
mod stdin;

pub use allocator::DEFAULT_MAX_INSTANCES;
pub use cache::{CACHE_DIR_ENV, default_cache_dir};
pub use capabilities::check_capabilities;
pub use engine::{Engine, EngineBuilder, MAX_WASM_STACK};
pub use error::Error;
pub use goru_protocol::capabilities::{
    AllowEntry, BadEntry, Capabilities, Capability, CapabilityError, DEFAULT_START_TIME_MS,
    Deterministic, FsLimits, HttpCapability, HttpConfigError, KvLimits, Mount, MountError,
    MountMode, PACKAGES_GUEST_PATH, PackagesCapability, PackagesConfigError,
};
pub use goru_protocol::{Language, UnknownLanguage};
pub use host_functions::{HostFunctions, HostFuture, HostResult, InvalidName, MAX_NAME_LEN};
pub use instance::{Mode, StartError};
pub use limits::{LimitError, Limits, MAX_MEMORY_BYTES, MAX_TIMEOUT, parse_duration, parse_size};
pub use modules::registry::guest_globals;
pub use outcome::{GuestException, Outcome, Status, Stream, exit_code};
pub use output::OutputSink;
pub use session::{Session, SessionBuilder, Stdin};
