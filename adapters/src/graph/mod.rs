//! Microsoft Graph: the HTTP client ([`client`]) and the tenant source built on it ([`source`]).

pub mod client;
mod delta;
pub mod source;

pub use crate::http::RetryPolicy;
pub use client::{GraphClient, GraphError, GraphStats, Query, StatsSnapshot};
pub use source::{GraphSource, LiveSource};
