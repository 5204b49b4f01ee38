//! The daemon's limits, with their defaults.

use crate::policy::Policy;
use goru_runtimes::{FsLimits, HttpCapability, KvLimits, Limits};
use std::time::Duration;

/// What the daemon allows. Every field has a default (see [`Config::default`]):
/// - `max_sessions`: 1,024 live sessions in all (one-shot runs count while they run);
/// - `max_sessions_per_client`: 64;
/// - `idle_timeout`: 10 minutes without a run closes a session;
/// - `reconnect_grace`: a disconnected client's sessions wait 60 s for it;
/// - `max_frame_bytes`: 16 MiB per incoming message;
/// - `max_in_flight_requests`: 32 per connection (then the daemon stops
///   reading that connection until one finishes);
/// - `max_connections`: 256 at once on the socket;
/// - `max_uninitialized_connections`: 64 of those may be waiting for
///   their `initialize`, so idle connections cannot take every place;
/// - `initialize_timeout`: a socket connection without a successful
///   `initialize` after 10 s is closed;
/// - `session_limits`: the engine's [`Limits::default`] (30 s, 256 MiB,
///   1 MiB of output...) are both each session's defaults and the most it
///   may ask for;
/// - `capability_limits`: the same for the limits inside capabilities
///   (`fsLimits`, `kv`, `http`), the engine's defaults;
/// - `policy`: which capabilities clients may grant ([`Policy::open`]:
///   everything the daemon's user could do).
#[derive(Clone, Debug)]
pub struct Config {
    pub max_sessions: usize,
    pub max_sessions_per_client: usize,
    pub idle_timeout: Duration,
    pub reconnect_grace: Duration,
    pub max_frame_bytes: usize,
    pub max_in_flight_requests: usize,
    pub max_connections: usize,
    pub max_uninitialized_connections: usize,
    pub initialize_timeout: Duration,
    pub session_limits: Limits,
    pub capability_limits: CapabilityLimits,
    pub policy: Policy,
}

/// The most a client may ask for in the limits its capabilities carry.
/// Missing ones default to the engine's own defaults, which are also these.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapabilityLimits {
    pub fs: FsLimits,
    pub kv: KvLimits,
    /// Only the limits of this one count (its `allow` list is the client's).
    pub http: HttpCapability,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_sessions: 1024,
            max_sessions_per_client: 64,
            idle_timeout: Duration::from_secs(600),
            reconnect_grace: Duration::from_secs(60),
            max_frame_bytes: goru_protocol::framing::DEFAULT_MAX_FRAME_BYTES,
            max_in_flight_requests: 32,
            max_connections: 256,
            max_uninitialized_connections: 64,
            initialize_timeout: Duration::from_secs(10),
            session_limits: Limits::default(),
            capability_limits: CapabilityLimits::default(),
            policy: Policy::open(),
        }
    }
}
