//! Injected latency that lasts what was asked. tokio's timer rounds a sleep up to its next
//! millisecond tick and then waits for the runtime to poll it: a 5 ms sleep took 6.1 ms (median
//! of 200), which made every request of a latency benchmark a fifth slower than it claimed. The
//! delays are timed instead on one thread of their own, which the OS wakes within tens of
//! microseconds (5.15 ms for 5 ms), and the waiting task is woken from there.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A request for a wake-up at an instant.
type Wake = (Instant, oneshot::Sender<()>);

/// Waits `d`, to within the OS's timer slack rather than tokio's millisecond ticks.
pub(crate) async fn sleep(d: Duration) {
    let at = Instant::now() + d;
    let (tx, rx) = oneshot::channel();
    // Should the timer thread be gone, tokio's timer still waits the delay, if coarsely.
    if timer().send((at, tx)).is_err() || rx.await.is_err() {
        tokio::time::sleep_until(at.into()).await;
    }
}

fn timer() -> &'static mpsc::Sender<Wake> {
    static TIMER: OnceLock<mpsc::Sender<Wake>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        // The process's one timer thread: it blocks on the channel when nothing is waiting.
        std::thread::Builder::new()
            .name("kubesim-delay".into())
            .spawn(move || run(&rx))
            .expect("a thread for kubesim's delays");
        tx
    })
}

/// A pending wake-up, earliest first in a [`BinaryHeap`] (ties in arrival order).
struct Due {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

fn run(requests: &mpsc::Receiver<Wake>) {
    let mut pending = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while pending.peek().is_some_and(|d: &Due| d.at <= now) {
            let due = pending.pop().expect("peeked");
            // The request may have gone (its client hung up): nothing to wake.
            let _ = due.wake.send(());
        }
        let next = match pending.peek() {
            Some(d) => requests.recv_timeout(d.at - now),
            None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, wake)) => {
                seq += 1;
                pending.push(Due { at, seq, wake });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delays_last_at_least_what_was_asked_and_end_in_order() {
        let start = Instant::now();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let waits = [30u64, 10, 20, 10].map(|ms| {
            let order = order.clone();
            tokio::spawn(async move {
                let begun = Instant::now();
                sleep(Duration::from_millis(ms)).await;
                assert!(begun.elapsed() >= Duration::from_millis(ms), "{ms} ms");
                order.lock().unwrap().push(ms);
            })
        });
        for w in waits {
            w.await.unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
        let order = order.lock().unwrap().clone();
        assert_eq!(order, [10, 10, 20, 30]);
    }
}
