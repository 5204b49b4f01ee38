//! The daemon's limits, with their defaults.

use goru_runtimes::Limits;
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
/// - `session_limits`: the engine's [`Limits::default`] (30 s, 256 MiB,
///   1 MiB of output...) are both each session's defaults and the most it
///   may ask for.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_sessions: usize,
    pub max_sessions_per_client: usize,
    pub idle_timeout: Duration,
    pub reconnect_grace: Duration,
    pub max_frame_bytes: usize,
    pub max_in_flight_requests: usize,
    pub max_connections: usize,
    pub session_limits: Limits,
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
            session_limits: Limits::default(),
        }
    }
}
