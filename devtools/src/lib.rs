//! roster's developer tools, apart from the production code: `fake` serves a tenant fixture as
//! Microsoft Graph does — paging, queries, `$batch`, sign-in, throttling and faults — so that
//! the real HTTP path is tested offline; `generate` makes deterministic synthetic tenants and
//! server states for tests and benchmarks. Both ship in the binary (`roster fake-graph`,
//! `roster fixture generate`), and nothing in roster's own runs depends on them.

pub mod fake;
pub mod generate;
