//! roster's I/O at the edges: tenant sources (fixture files, Microsoft Graph), server targets
//! (the embedded server, a JSON server file), organizations and sign-in. The use cases that
//! drive them are `app`'s.
//!
//! Invariants:
//! - Graph wire types never leave this crate (but for `devtools`' fake Graph, which speaks
//!   them): they become engine types in [`wire`].

pub mod address;
pub mod auth;
pub mod bounded;
pub mod clock;
pub mod error;
pub mod fixture;
pub mod graph;
pub mod http;
pub mod interrupt;
pub mod org;
pub mod record;
pub mod scim;
pub mod source;
mod streamed;
pub mod target;
pub mod wire;

pub use error::{Error, Result};
