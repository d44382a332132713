//! `roster sync`: the org's last import repeated as a new import — its selection as given
//! (re-resolved against the tenant as it is now) and its deleted-object options — with the
//! same guards. The loop (`--every`) is the caller's: each cycle opens the store, syncs once
//! and lets the store go, so that auditors can read between cycles.

use engine::event::{Mode, RunStarted};
use engine::{EventStore, SledStore};

use crate::context::{Context, Server};
use crate::error::{Error, Result};
use crate::run::{RunRequest, RunResult};

/// What to change in the repeated import.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub org: String,
    /// Record everything (a full run).
    pub full: bool,
    /// Overrides the last import's `--max-deletions`.
    pub max_deletions: Option<u32>,
}

/// The org's last import run's `RunStarted` (whatever its outcome): what a sync repeats.
pub fn last_import(store: &SledStore, org: &str) -> Result<RunStarted> {
    for run in store.runs()?.into_iter().rev() {
        if let Some(started) = engine::chain::started_of(store, run)? {
            if started.org == org && started.mode == Mode::Apply {
                return Ok(started);
            }
        }
    }
    Err(Error::bad_input(format!(
        "org {org} has no import to repeat; run `roster import {org} ...` once, then `roster sync {org}` repeats it"
    )))
}

/// Repeats the org's last import once, against the server it imported into (or the one given
/// with `--server-file` or `--scim`).
pub fn sync_once(
    ctx: &Context,
    store: &SledStore,
    request: &SyncRequest,
) -> Result<(adapters::org::OrgConfig, RunResult)> {
    let last = last_import(store, &request.org)?;
    let outside = match &ctx.server {
        Server::Embedded => ctx.open_target(&Server::of(&last.target))?,
        given => ctx.open_target(given)?,
    };
    let mut options = last.options.clone();
    if let Some(n) = request.max_deletions {
        options.max_deletions = n;
    }
    let run = RunRequest {
        mode: Mode::Apply,
        selection: last.selection.clone(),
        options,
        started_by: ctx.started_by.clone(),
        applied_from: None,
        reviewed: None,
        full: request.full,
    };
    crate::runs::plan_or_import(ctx, store, outside, &request.org, &run)
}
