//! The memory limiter: caps a guest's linear memory, summed over all of its
//! memories, and remembers whether it ever refused a request so that a trap
//! after a refusal is reported as a memory limit rather than a crash.

/// Most table elements a guest may have. CPython has about 90,000 functions
/// in its indirect-call table; this leaves room while bounding host memory.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;

pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
    pub(crate) refused: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            used: 0,
            refused: false,
        }
    }

    /// Linear memory the guest holds now, summed over its memories.
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    /// Caps further growth at `limit` in all: what the guest already holds
    /// (a warm-pool instance grew during `init`) counts against it.
    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Memories only grow, so the sum of all growth is the total in use.
        let growth = desired.saturating_sub(current) as u64;
        if self.used.saturating_add(growth) > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn sums_growth_over_memories_and_refuses_past_the_limit() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(
            limiter.memory_growing(0, 40, None).unwrap(),
            "a second memory counts too"
        );
        assert!(!limiter.refused);
        assert!(!limiter.memory_growing(60, 61, None).unwrap());
        assert!(limiter.refused);
        assert!(
            limiter.memory_growing(60, 60, None).unwrap(),
            "no growth is always fine"
        );
    }

    #[test]
    fn a_new_limit_counts_what_is_already_held() {
        let mut limiter = MemoryLimiter::new(1000);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        limiter.set_limit(100);
        assert_eq!(limiter.used(), 60);
        assert!(!limiter.memory_growing(60, 101, None).unwrap());
        assert!(limiter.memory_growing(60, 100, None).unwrap());
    }
}
