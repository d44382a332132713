//! roster's pure core: the events a run records, the event store they live in, the
//! projections folded from them, and the reconciliation planner.
//!
//! Invariants:
//! - the engine does no I/O except through its event store ([`store`]);
//! - the planner ([`plan::plan`]) is a pure function: no clock, no randomness, no I/O;
//! - projections are folds over events and are never the source of truth;
//! - no secret ever enters an event: events hold directory attributes only.

pub mod chain;
pub mod compare;
pub mod decide;
pub mod difference;
pub mod event;
pub mod ids;
pub mod model;
pub mod plan;
pub mod projection;
pub mod search;
pub mod store;
pub mod text;

pub use event::{Envelope, Event, EVENT_VERSION};
pub use ids::{ObjectId, RunId, Seq, TenantId};
/// The directory's text (logins, names, attributes): inline when short, shared on clone when long.
pub use smol_str::{format_smolstr, SmolStr};
pub use store::{EventStore, PgStore, SledStore, Store, StoreError};

/// The version recorded in every `RunStarted`.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `tracing` target of progress events: one per long step (`reading the tenant`,
/// `applying: 2048 of 100000 entries`), which the binary shows as a spinner on a terminal.
pub const PROGRESS: &str = "roster::progress";
