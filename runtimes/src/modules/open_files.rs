//! How many host file descriptors one session's guest holds open.
//!
//! Threat: each plain `open()` of a mounted file holds a descriptor of the
//! host process until the guest closes it, so a guest that opens the same
//! file 20,000 times takes every descriptor the process may have, and the
//! daemon can no longer accept a connection (or open anything) for anyone.
//! One budget per session counts the files and directories its plain file
//! calls hold open and the `fs` module's calls in flight.

use std::fs::File;
use std::sync::{Arc, Mutex, Weak};

/// The budget of one session: shared by its plain file calls and its `fs`
/// module.
pub(crate) struct OpenFiles {
    limit: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Files the guest's plain file calls opened. A descriptor lives as long
    /// as anything holds it (the guest's handle, or a stream made from it),
    /// so each is counted until its last holder is gone, not just until the
    /// guest drops its handle.
    held: Vec<Weak<File>>,
    /// Slots taken by opens under way and `fs` calls in flight.
    reserved: u64,
}

/// The guest reached its limit of open files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyOpenFiles {
    pub limit: u64,
}

impl OpenFiles {
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(OpenFiles {
            limit,
            state: Mutex::new(State::default()),
        })
    }

    /// Takes one slot, or refuses when every slot is taken. The slot is given
    /// back when the [`Slot`] is dropped, unless it is kept for a file.
    pub(crate) fn reserve(self: &Arc<Self>) -> Result<Slot, TooManyOpenFiles> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.held.retain(|file| file.strong_count() > 0);
        if state.held.len() as u64 + state.reserved >= self.limit {
            return Err(TooManyOpenFiles { limit: self.limit });
        }
        state.reserved += 1;
        Ok(Slot {
            owner: Some(self.clone()),
        })
    }

    /// Descriptors counted now (for tests and diagnostics).
    #[cfg(test)]
    fn in_use(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.held.retain(|file| file.strong_count() > 0);
        state.held.len() as u64 + state.reserved
    }
}

/// One reserved slot of an [`OpenFiles`] budget.
pub(crate) struct Slot {
    owner: Option<Arc<OpenFiles>>,
}

impl Slot {
    /// Keeps the slot for `file` until the last holder of `file` drops it.
    pub(crate) fn keep(mut self, file: &Arc<File>) {
        if let Some(owner) = self.owner.take() {
            let mut state = owner.state.lock().unwrap_or_else(|e| e.into_inner());
            state.reserved -= 1;
            state.held.push(Arc::downgrade(file));
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            let mut state = owner.state.lock().unwrap_or_else(|e| e.into_inner());
            state.reserved -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<File> {
        Arc::new(tempfile::tempfile().unwrap())
    }

    #[test]
    fn counts_reservations_and_kept_files_up_to_the_limit() {
        let budget = OpenFiles::new(2);
        let first = budget.reserve().unwrap();
        let kept = file();
        budget.reserve().unwrap().keep(&kept);
        assert_eq!(budget.in_use(), 2);
        assert_eq!(budget.reserve().err(), Some(TooManyOpenFiles { limit: 2 }));
        drop(first);
        assert_eq!(budget.in_use(), 1);
        let again = budget.reserve().unwrap();
        assert!(budget.reserve().is_err());
        drop(again);
        // A kept file counts while anything holds it.
        let other_holder = kept.clone();
        drop(kept);
        assert_eq!(budget.in_use(), 1);
        drop(other_holder);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        assert!(OpenFiles::new(0).reserve().is_err());
    }
}
