//! Where time and run ids come from. The engine takes both as inputs; this is the one place
//! that reads the system clock, so tests can substitute a fixed one.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use engine::RunId;

pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    fn new_run_id(&self, at: DateTime<Utc>) -> RunId;
}

/// The system clock, with random run ids (UUID v7).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Microseconds are plenty for ordering and read better in the log.
        Utc::now().trunc_subsecs(6)
    }

    fn new_run_id(&self, at: DateTime<Utc>) -> RunId {
        let random = uuid::Uuid::new_v4();
        let mut entropy = [0u8; 10];
        entropy.copy_from_slice(&random.as_bytes()[6..]);
        RunId::new(at, entropy)
    }
}

/// A deterministic clock for tests: every reading is one second after the previous one.
#[derive(Debug)]
pub struct FixedClock {
    start: DateTime<Utc>,
    ticks: AtomicU64,
}

impl FixedClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        FixedClock {
            start,
            ticks: AtomicU64::new(0),
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        let t = self.ticks.fetch_add(1, Ordering::Relaxed);
        self.start + Duration::seconds(t as i64)
    }

    fn new_run_id(&self, at: DateTime<Utc>) -> RunId {
        let n = self.ticks.load(Ordering::Relaxed);
        let mut entropy = [0u8; 10];
        entropy[2..].copy_from_slice(&n.to_be_bytes());
        RunId::new(at, entropy)
    }
}
