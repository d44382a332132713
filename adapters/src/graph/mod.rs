//! Microsoft Graph: the HTTP client ([`client`]) and the tenant source built on it ([`source`]).

pub mod client;
pub mod source;

pub use client::{GraphClient, GraphError, GraphStats, Query, RetryPolicy, StatsSnapshot};
pub use source::{GraphSource, LiveSource};
