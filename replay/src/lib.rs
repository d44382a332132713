//! roster's audit: verify that the log was not edited, replay a past run from its recorded
//! inputs, export events, compare runs, and trace a server user's history.
//!
//! Invariants:
//! - nothing here writes to the store: audit only reads;
//! - a run is replayed only after its events verify.

pub mod backup;
pub mod diff;
pub mod export;
pub mod history;
pub mod rebuild;
pub mod rerun;
pub mod server;
pub mod verify;

pub use rerun::{replay_run, Difference, ReplayError, Replayed};
pub use verify::{verify, Verified, VerifyError, VerifyOptions};
