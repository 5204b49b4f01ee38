//! Socket connections before their `initialize`: each must initialize
//! within a timeout, and only so many may wait at once. When that many
//! wait, a new connection closes the oldest waiting one instead of being
//! turned away. Threat: connections that never initialize (256 of them
//! took every place) must not keep clients out. Whoever floods connections
//! can only close other waiting connections, never a client's.

use crate::registry::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The connections waiting for their `initialize`, oldest first.
#[derive(Clone)]
pub(crate) struct WaitingList {
    state: Arc<Mutex<State>>,
    max: usize,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<(u64, CancellationToken)>,
    next: u64,
}

/// What a socket connection must do before it counts as a client: send a
/// successful `initialize` within `timeout`, holding `place` meanwhile.
pub(crate) struct Admission {
    pub(crate) place: WaitingPlace,
    pub(crate) timeout: Duration,
}

/// A place on the waiting list; leaves it when dropped (on `initialize`
/// or when the connection ends).
pub(crate) struct WaitingPlace {
    list: WaitingList,
    number: u64,
    evicted: CancellationToken,
}

impl WaitingList {
    pub(crate) fn new(max: usize) -> Self {
        WaitingList {
            state: Arc::default(),
            max: max.max(1),
        }
    }

    /// A place for a new connection, closing the oldest waiting one when
    /// the list is full.
    pub(crate) fn admit(&self) -> WaitingPlace {
        let mut state = lock(&self.state);
        while state.waiting.len() >= self.max {
            if let Some((_, oldest)) = state.waiting.pop_front() {
                oldest.cancel();
            }
        }
        let number = state.next;
        state.next += 1;
        let evicted = CancellationToken::new();
        state.waiting.push_back((number, evicted.clone()));
        WaitingPlace {
            list: self.clone(),
            number,
            evicted,
        }
    }

    /// Closes the oldest waiting connection, to give its place to a new
    /// one; `false` if none waits.
    pub(crate) fn evict_oldest(&self) -> bool {
        match lock(&self.state).waiting.pop_front() {
            Some((_, oldest)) => {
                oldest.cancel();
                true
            }
            None => false,
        }
    }

    /// Connections waiting now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.state).waiting.len()
    }
}

impl WaitingPlace {
    /// Cancelled when a newer connection takes this place.
    pub(crate) fn eviction(&self) -> CancellationToken {
        self.evicted.clone()
    }
}

impl Drop for WaitingPlace {
    fn drop(&mut self) {
        lock(&self.list.state)
            .waiting
            .retain(|(number, _)| *number != self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_list_closes_its_oldest_for_a_newcomer() {
        let list = WaitingList::new(2);
        let first = list.admit();
        let second = list.admit();
        assert!(!first.evicted.is_cancelled());
        let third = list.admit();
        assert!(first.evicted.is_cancelled(), "the oldest gives way");
        assert!(!second.evicted.is_cancelled() && !third.evicted.is_cancelled());
        assert_eq!(list.len(), 2);
        drop(second);
        assert_eq!(list.len(), 1, "an initialized or closed connection leaves");
        drop(first);
        assert_eq!(list.len(), 1, "an evicted one had left already");
        assert!(list.evict_oldest());
        assert!(third.evicted.is_cancelled());
        assert!(!list.evict_oldest());
    }
}
