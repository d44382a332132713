//! roster's I/O at the edges: tenant sources (fixture files, Microsoft Graph), server targets
//! (the embedded server, a JSON server file), organizations, and the run orchestration that
//! feeds the engine's pure planner with what was read.
//!
//! Invariants:
//! - Graph wire types never leave this crate (but for `devtools`' fake Graph, which speaks
//!   them): they become engine types in [`wire`];
//! - bad input is rejected before anything is written (see [`run::execute`]);
//! - a run reports success only after its events are flushed.

pub mod auth;
pub mod clock;
pub mod error;
pub mod fixture;
pub mod graph;
pub mod org;
pub mod record;
pub mod run;
pub mod source;
pub mod target;
pub mod wire;

pub use error::{Error, Result};
