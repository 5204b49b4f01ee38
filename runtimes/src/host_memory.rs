//! One budget per session for the host memory its guest's host calls make
//! the host hold: what a call may produce while it runs (a file read, an
//! HTTP body, a kv value, a host function's result) and its result until it
//! is handed to the guest.
//!
//! The threat: a guest gathers many calls whose results are large (200
//! reads of a 16 MiB file), and each call in flight holds its data and its
//! JSON on the host, far past the guest's own memory limit. With the budget,
//! a call reserves what it may produce before any work (its payload limit,
//! at most a quarter of the budget, so that a few large calls still run at
//! once), keeps what its result holds once it is done (growing into the
//! budget when it is larger), and gives it back when the result is
//! delivered. While a call runs, the host may hold a few copies of its data
//! (read, decoded, encoded as JSON): a small multiple of its reservation. A call that does not fit
//! waits for calls in flight to finish; when nothing is in flight (the
//! budget is held by results waiting for delivery), it is refused.

use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// The share of the budget one call reserves at most before it runs.
const MAX_SHARE_PER_CALL: u64 = 4;

/// A session's budget: [`crate::Limits::memory_bytes`], as a guest cannot
/// take in more than its memory holds anyway.
#[derive(Clone)]
pub(crate) struct HostMemory {
    inner: Arc<Inner>,
}

struct Inner {
    limit: u64,
    state: Mutex<State>,
    /// Woken when bytes are given back or a call stops being in flight.
    freed: Notify,
}

#[derive(Default)]
struct State {
    /// Bytes reserved by calls in flight and held by results not yet delivered.
    used: u64,
    /// Calls in flight (reserved, not yet settled).
    in_flight: u64,
}

/// A call asked for more than the budget had left.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OverBudget {
    pub(crate) limit: u64,
    pub(crate) held: u64,
    pub(crate) wanted: u64,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the host already holds {} bytes for this sandbox's host calls and this call needs \
             {} more, past its host-memory budget of {} bytes (its memory limit)",
            self.held, self.wanted, self.limit
        )
    }
}

impl HostMemory {
    pub(crate) fn new(limit: u64) -> Self {
        HostMemory {
            inner: Arc::new(Inner {
                limit,
                state: Mutex::new(State::default()),
                freed: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain counters: a panic elsewhere cannot leave them worse than lost.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes reserved or held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.lock().used
    }

    /// Reserves `bytes` (at most a quarter of the budget) for a call about
    /// to run, waiting while calls in flight may still give some back.
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<Held, OverBudget> {
        let bytes = bytes.min(self.inner.limit / MAX_SHARE_PER_CALL);
        loop {
            // Registered before the check, so a release in between is not missed.
            let freed = self.inner.freed.notified();
            {
                let mut state = self.lock();
                if state.used.saturating_add(bytes) <= self.inner.limit {
                    state.used += bytes;
                    state.in_flight += 1;
                    return Ok(Held {
                        memory: self.clone(),
                        bytes,
                        in_flight: true,
                    });
                }
                if state.in_flight == 0 {
                    // Only results waiting for delivery hold the budget, and
                    // they wait for this call: waiting would never end.
                    return Err(OverBudget {
                        limit: self.inner.limit,
                        held: state.used,
                        wanted: bytes,
                    });
                }
            }
            freed.await;
        }
    }
}

/// Bytes of the budget a call holds; given back when dropped (the result
/// was delivered, or dropped).
pub(crate) struct Held {
    memory: HostMemory,
    bytes: u64,
    in_flight: bool,
}

impl Held {
    /// The call is done and its result holds `bytes`: keeps that much (the
    /// rest of the reservation is given back), or fails when it is more than
    /// the budget has room for.
    pub(crate) fn settle(&mut self, bytes: u64) -> Result<(), OverBudget> {
        let mut state = self.memory.lock();
        if self.in_flight {
            self.in_flight = false;
            state.in_flight -= 1;
        }
        let others = state.used - self.bytes;
        let result = if others.saturating_add(bytes) <= self.memory.inner.limit {
            state.used = others + bytes;
            self.bytes = bytes;
            Ok(())
        } else {
            state.used = others;
            self.bytes = 0;
            Err(OverBudget {
                limit: self.memory.inner.limit,
                held: others,
                wanted: bytes,
            })
        };
        drop(state);
        self.memory.inner.freed.notify_waiters();
        result
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut state = self.memory.lock();
        state.used -= self.bytes;
        if self.in_flight {
            state.in_flight -= 1;
        }
        drop(state);
        self.memory.inner.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settled_result_holds_its_size_until_dropped() {
        let memory = HostMemory::new(100);
        let mut held = memory.reserve(20).await.unwrap();
        assert_eq!(memory.used(), 20);
        held.settle(10).unwrap();
        assert_eq!(memory.used(), 10);
        drop(held);
        assert_eq!(memory.used(), 0);
    }

    #[tokio::test]
    async fn a_reservation_is_at_most_a_quarter_of_the_budget_and_may_grow() {
        let memory = HostMemory::new(100);
        let mut held = memory.reserve(1000).await.unwrap();
        assert_eq!(memory.used(), 25);
        held.settle(90).unwrap();
        assert_eq!(memory.used(), 90);
        drop(held);
    }

    #[tokio::test]
    async fn results_waiting_for_delivery_refuse_a_call_that_cannot_fit() {
        let memory = HostMemory::new(100);
        let mut first = memory.reserve(25).await.unwrap();
        first.settle(80).unwrap();
        let refused = memory.reserve(25).await.err().unwrap();
        assert_eq!(
            refused,
            OverBudget {
                limit: 100,
                held: 80,
                wanted: 25
            }
        );
        assert!(refused.to_string().contains("budget of 100 bytes"));
        assert!(memory.reserve(20).await.is_ok());
    }

    #[tokio::test]
    async fn a_call_waits_for_one_in_flight_and_runs_when_it_settles() {
        let memory = HostMemory::new(100);
        let mut first = memory.reserve(25).await.unwrap();
        let mut others = Vec::new();
        for _ in 0..3 {
            others.push(memory.reserve(25).await.unwrap());
        }
        let waiter = memory.reserve(10);
        tokio::pin!(waiter);
        assert!(
            futures::poll!(&mut waiter).is_pending(),
            "no room while four calls are in flight"
        );
        first.settle(0).unwrap();
        assert!(waiter.await.is_ok());
    }

    #[tokio::test]
    async fn a_result_larger_than_the_room_left_is_refused_and_gives_back_all() {
        let memory = HostMemory::new(100);
        let mut first = memory.reserve(25).await.unwrap();
        first.settle(50).unwrap();
        let mut second = memory.reserve(25).await.unwrap();
        assert!(second.settle(60).is_err());
        assert_eq!(memory.used(), 50);
        drop(second);
        drop(first);
        assert_eq!(memory.used(), 0);
    }
}
