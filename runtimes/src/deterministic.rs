//! Deterministic mode, for judges and reproducible runs: the guest's clocks
//! start at a fixed time and its random numbers come from a seeded generator.
//!
//! Durations stay real (a `sleep(1)` still takes a second, and the wall clock
//! advances with it) so that timeouts keep their meaning; what is fixed is
//! where time starts and every random byte, so the same program with the
//! same input prints the same output.

use crate::Deterministic;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// Installs the fixed clocks and seeded generators into a WASI context.
pub(crate) fn apply(deterministic: &Deterministic, wasi: &mut WasiCtxBuilder) {
    let started = Instant::now();
    wasi.wall_clock(FixedStartWallClock {
        start: Duration::from_millis(deterministic.start_time_ms),
        started,
    })
    .monotonic_clock(ZeroStartMonotonicClock { started })
    .secure_random(StdRng::seed_from_u64(deterministic.seed))
    .insecure_random(StdRng::seed_from_u64(deterministic.seed.wrapping_add(1)))
    .insecure_random_seed(u128::from(deterministic.seed));
}

/// A wall clock that reads `start` when the session starts and then advances
/// in real time.
struct FixedStartWallClock {
    start: Duration,
    started: Instant,
}

impl HostWallClock for FixedStartWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.start + self.started.elapsed()
    }
}

/// A monotonic clock that reads 0 when the session starts.
struct ZeroStartMonotonicClock {
    started: Instant,
}

impl HostMonotonicClock for ZeroStartMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
