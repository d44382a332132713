//! Ctrl-C during a run: asked for once (by the binary's signal handler, or a test), and seen
//! by the run at its next safe point — between reads of Graph, between the run's steps, between
//! the batches an import applies — so that what was done is recorded and what was not is not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shared by whoever asks a run to stop and the run itself. The default is never asked.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Asks the run to stop at its next safe point.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is asked for (checked every 50 ms): raced against a read.
    pub async fn asked(&self) {
        while !self.requested() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
