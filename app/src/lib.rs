//! roster's use cases: organizations, search, plan, import, apply, the deleted objects, and
//! the recovery of a store after a crash or a write error — as functions that take typed
//! requests and return typed results. The command line and the wizard call the same ones.
//!
//! Invariants:
//! - nothing here parses arguments or prints: results are data, and the caller renders them;
//! - bad input is rejected before anything is written (see [`run::execute`]);
//! - a run reports success only after its events are flushed.

pub mod attention;
pub mod backup;
pub mod context;
pub mod demo;
pub mod error;
pub mod history;
pub mod mirror;
pub mod orgs;
pub mod recover;
pub mod run;
pub mod runs;
pub mod server;
pub mod session;
pub mod sync;

pub use context::{Context, Opened, Server};
pub use error::{Error, Result};
