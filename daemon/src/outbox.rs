//! The frames one connection has yet to write, bounded in frames and in
//! bytes. Threat: a client that never reads. Counting frames alone let 100
//! error frames of 12 MiB each wait for it (1.3 GiB); with the byte budget
//! a sender waits until the writer has room, so a client that does not read
//! slows its own requests, not the daemon.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Frames waiting for the writer.
pub(crate) const OUTBOX_FRAMES: usize = 64;
/// Bytes waiting for the writer. One frame larger than this still goes
/// out, alone: it takes the whole budget while it waits.
pub(crate) const OUTBOX_BYTES: usize = 4 << 20;

/// A frame's body queued for writing, holding its share of the byte budget.
pub(crate) struct Queued {
    pub(crate) body: Vec<u8>,
    _bytes: OwnedSemaphorePermit,
}

/// The sending side. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbox {
    frames: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
}

/// The receiving side, for the writer task. Dropping it fails every
/// sender, those waiting for room included.
pub(crate) struct Inbox {
    frames: mpsc::Receiver<Queued>,
    bytes: Arc<Semaphore>,
}

pub(crate) fn outbox() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
    let bytes = Arc::new(Semaphore::new(OUTBOX_BYTES));
    (
        Outbox {
            frames: tx,
            bytes: bytes.clone(),
        },
        Inbox { frames: rx, bytes },
    )
}

impl Outbox {
    /// Queues a frame's body; waits while the outbox is full. `false`: the
    /// connection is gone.
    pub(crate) async fn send(&self, body: Vec<u8>) -> bool {
        let cost = body.len().clamp(1, OUTBOX_BYTES) as u32;
        let Ok(permit) = self.bytes.clone().acquire_many_owned(cost).await else {
            return false;
        };
        self.frames
            .send(Queued {
                body,
                _bytes: permit,
            })
            .await
            .is_ok()
    }
}

impl Inbox {
    pub(crate) async fn recv(&mut self) -> Option<Queued> {
        self.frames.recv().await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.bytes.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn senders_wait_once_the_bytes_waiting_reach_the_budget() {
        let (outbox, mut inbox) = outbox();
        assert!(outbox.send(vec![0; OUTBOX_BYTES / 2]).await);
        assert!(outbox.send(vec![0; OUTBOX_BYTES / 2]).await);
        let third = outbox.send(vec![0; 10]);
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut third)
                .await
                .is_err(),
            "a full outbox takes no more"
        );
        let written = inbox.recv().await.expect("the first frame");
        drop(written);
        assert!(third.await, "room again once a frame is written");
    }

    #[tokio::test]
    async fn a_frame_over_the_budget_goes_out_alone() {
        let (outbox, mut inbox) = outbox();
        assert!(outbox.send(vec![0; OUTBOX_BYTES * 2]).await);
        let next = outbox.send(vec![1]);
        tokio::pin!(next);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut next)
                .await
                .is_err()
        );
        assert_eq!(inbox.recv().await.unwrap().body.len(), OUTBOX_BYTES * 2);
        assert!(next.await);
    }

    #[tokio::test]
    async fn senders_waiting_for_room_fail_when_the_writer_is_gone() {
        let (outbox, inbox) = outbox();
        assert!(outbox.send(vec![0; OUTBOX_BYTES]).await);
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.send(vec![0; 10]).await }
        });
        drop(inbox);
        assert!(!waiting.await.unwrap());
    }
}
