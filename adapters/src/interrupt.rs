//! Ctrl-C during a run: asked for once (by the binary's signal handler, or a test), and seen
//! by the run at its next safe point — between reads of Graph, between the run's steps, between
//! the batches an import applies, between the items a change listing applies — so that what
//! was done is recorded and what was not is not. Whoever asked can tell whether the run saw it
//! ([`Interrupt::seen_within`]): a run caught in a long step that does not look is stopped
//! where it is instead, which its log survives as it survives a kill.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Flags {
    asked: AtomicBool,
    seen: AtomicBool,
}

/// Shared by whoever asks a run to stop and the run itself. The default is never asked.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Flags>);

impl Interrupt {
    /// Asks the run to stop at its next safe point.
    pub fn request(&self) {
        self.0.asked.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for; asking is looking, so a `true` here marks the stop seen.
    pub fn requested(&self) -> bool {
        let asked = self.0.asked.load(Ordering::SeqCst);
        if asked {
            self.0.seen.store(true, Ordering::SeqCst);
        }
        asked
    }

    /// Resolves once a stop is asked for (checked every 50 ms): raced against a read.
    pub async fn asked(&self) {
        while !self.requested() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the run looked and saw the stop within `limit` of now.
    pub fn seen_within(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            if self.0.seen.load(Ordering::SeqCst) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_seen_only_when_the_run_looks() {
        let stop = Interrupt::default();
        assert!(!stop.requested(), "not asked: nothing seen");
        stop.request();
        assert!(
            !stop.seen_within(Duration::from_millis(30)),
            "nobody looked"
        );
        let run = stop.clone();
        let looking = std::thread::spawn(move || while !run.requested() {});
        assert!(stop.seen_within(Duration::from_secs(60)));
        looking.join().unwrap();
    }
}
