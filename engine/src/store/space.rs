//! Disk space: sled 0.34 misbehaves when a write fails (it can tear the end of its log, or wait
//! for ever in a flush), so the store never lets it run out of space — it checks before a run,
//! and before every step, and keeps room for sled to finish.

use super::{SledStore, StoreError};

/// What sled writes to disk for a byte of value, at most (measured about 1.7).
const DISK_FACTOR: u64 = 3;

/// Room always left free for sled to finish: a last event, a flush, a snapshot.
const RESERVE: u64 = 8 << 20;

/// A write this small (a run's last event, an org setting) may use all but the last MiB.
const SMALL_WRITE: u64 = 64 << 10;

const SMALL_RESERVE: u64 = 1 << 20;

/// Disk per event and per embedded-server record, as a run's estimate (measured: 180-250 and
/// about 760 bytes on generated tenants of 20,000 users).
const EVENT_DISK_BYTES: u64 = 320;

pub(super) const RECORD_DISK_BYTES: u64 = 1024;

/// A size in bytes, shown in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = self.0 as f64 / f64::from(1u32 << 20);
        if mib < 10.0 {
            write!(f, "{mib:.1} MiB")
        } else {
            write!(f, "{mib:.0} MiB")
        }
    }
}

impl SledStore {
    /// Free bytes where the database lives (`None`: in memory, or not measurable).
    fn free_space(&self) -> Option<u64> {
        let dir = self.dir.as_deref()?;
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Refuses to write `bytes` (about) when the disk would keep less than sled needs to finish
    /// cleanly. sled 0.34 misbehaves when a write fails (it can tear the end of its log, or
    /// wait for ever in a flush), so roster never lets it run out of space: a run stops at the
    /// last batch that fits, with room left to record why and to flush.
    pub(super) fn check_space(&self, bytes: u64, what: &str) -> Result<(), StoreError> {
        let Some(free) = self.free_space() else {
            return Ok(());
        };
        let reserve = if bytes < SMALL_WRITE {
            SMALL_RESERVE
        } else {
            RESERVE
        };
        let need = bytes.saturating_mul(DISK_FACTOR).saturating_add(reserve);
        if free < need {
            return Err(StoreError::DiskFull {
                dir: self
                    .dir
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                what: what.to_owned(),
                need: Bytes(need),
                free: Bytes(free),
            });
        }
        Ok(())
    }

    /// Refuses a run early when the disk cannot hold what it will write: about `events`
    /// events and `server_records` embedded-server records (sizes measured on large tenants,
    /// with room to spare; BENCHMARKS.md).
    pub fn check_room_for_run(&self, events: u64, server_records: u64) -> Result<(), StoreError> {
        let bytes = events
            .saturating_mul(EVENT_DISK_BYTES)
            .saturating_add(server_records.saturating_mul(RECORD_DISK_BYTES));
        // The estimate is already what lands on disk: no factor on top, only the reserve.
        self.check_space(bytes / DISK_FACTOR, "this run")
    }
}
