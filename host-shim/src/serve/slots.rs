//! Run slots and the bounded queue in front of them: a request whose body
//! is read takes a free slot, or waits for one while fewer than
//! `--max-queue` others wait, at most `--queue-timeout`; beyond either it
//! is refused (429 with `Retry-After`). A burst larger than the slots is
//! queued instead of shed; a queue that does not move costs a client its
//! own wait, never a slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoSlot {
    /// `max_queue` requests already wait.
    QueueFull,
    /// It waited `queue_timeout` and no slot came free.
    Waited,
}

impl NoSlot {
    /// The metrics' outcome label.
    pub(super) fn label(self) -> &'static str {
        match self {
            NoSlot::QueueFull => "busy",
            NoSlot::Waited => "queue_timeout",
        }
    }
}

/// The server's run slots and their queue.
pub(super) struct RunSlots {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    queue_timeout: Duration,
}

impl RunSlots {
    /// `max_concurrent` slots (at least one), a queue of `max_queue`.
    pub(super) fn new(max_concurrent: usize, max_queue: usize, queue_timeout: Duration) -> Self {
        RunSlots {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_queue,
            queue_timeout,
        }
    }

    /// Requests waiting for a slot now.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// A slot: a free one now, or the first to come free while queued.
    pub(super) async fn acquire(&self) -> Result<OwnedSemaphorePermit, NoSlot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _place = Place(&self.waiting);
        if before >= self.max_queue {
            return Err(NoSlot::QueueFull);
        }
        // The semaphore is fair: waiters get slots in arrival order.
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Closed never happens (the server never closes it); timed out.
            _ => Err(NoSlot::Waited),
        }
    }
}

/// A place in the queue, given up when the request leaves it either way.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_queues_in_order_and_only_the_overflow_is_refused() {
        let slots = Arc::new(RunSlots::new(1, 2, Duration::from_secs(30)));
        let held = slots.acquire().await.unwrap();
        // Two wait for the one slot; a third is over the queue.
        let first = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(|_| "first") }
        });
        while slots.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(|_| "second") }
        });
        while slots.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.acquire().await.unwrap_err(), NoSlot::QueueFull);
        assert_eq!(
            slots.waiting(),
            2,
            "a refused request leaves no place taken"
        );
        drop(held);
        assert_eq!(first.await.unwrap(), Ok("first"));
        assert_eq!(second.await.unwrap(), Ok("second"));
        assert_eq!(slots.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_request_gives_up_at_the_queue_timeout() {
        let slots = RunSlots::new(1, 4, Duration::from_millis(500));
        let _held = slots.acquire().await.unwrap();
        // Paused time: the timeout passes without a wall-clock wait.
        assert_eq!(slots.acquire().await.unwrap_err(), NoSlot::Waited);
        assert_eq!(slots.waiting(), 0);
        let none = RunSlots::new(1, 0, Duration::from_secs(1));
        let _held = none.acquire().await.unwrap();
        assert_eq!(none.acquire().await.unwrap_err(), NoSlot::QueueFull);
    }
}
