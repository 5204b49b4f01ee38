//! Deterministic mode, for judges and reproducible runs: the guest's clocks
//! start at a fixed time and its random numbers come from a seeded generator
//! (the engine installs them; see goru-runtimes' `deterministic.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// 2000-01-01T00:00:00Z, in milliseconds since the Unix epoch.
pub const DEFAULT_START_TIME_MS: u64 = 946_684_800_000;

/// Fixed start time and random seed. Defaults: seed 0, start time
/// 2000-01-01T00:00:00Z.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Deterministic {
    /// Seed of every random number the guest sees (`os.urandom`, `random`,
    /// `Math.random`, WASI's random interfaces).
    pub seed: u64,
    /// What the wall clock reads when the session starts.
    pub start_time_ms: u64,
}

impl Default for Deterministic {
    fn default() -> Self {
        Deterministic {
            seed: 0,
            start_time_ms: DEFAULT_START_TIME_MS,
        }
    }
}
