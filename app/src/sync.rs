//! `roster sync`: an import repeated as a new import — the selection as given (re-resolved
//! against the tenant as it is now), its deleted-object options and guards, against the same
//! server. What it repeats is the org's **sync definition** once the admin set one (`roster
//! sync ORG --set-from RUN`), else the org's last import; [`repeated`] says which, and the
//! caller prints it every cycle. The loop (`--every`) is the caller's: each cycle opens the
//! store, syncs once and lets the store go, so that auditors can read between cycles.

use chrono::{DateTime, Utc};

use adapters::org::{self, SyncDefinition};
use engine::event::{Mode, RunOptions, RunStarted, SelectionSpec, TargetInfo};
use engine::{RunId, Store};

use crate::context::{Context, Server};
use crate::error::{Error, Result};
use crate::run::{RunRequest, RunResult};

/// What to change in the repeated import.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub org: String,
    /// Record everything (a full run).
    pub full: bool,
    /// Overrides the repeated import's `--max-deletions`.
    pub max_deletions: Option<u32>,
}

/// Where what a sync repeats comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The sync definition the admin set, from import `from`.
    Definition {
        from: RunId,
        by: String,
        at: DateTime<Utc>,
    },
    /// No definition: the org's last import.
    LastImport(RunId),
}

/// What a sync of an org repeats, and where that comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated {
    pub org: String,
    pub selection: SelectionSpec,
    pub options: RunOptions,
    /// The server it imports into (before `--server-file`/`--scim` given to this sync).
    pub target: TargetInfo,
    pub origin: Origin,
}

/// The org's last import run (whatever its outcome) and its `RunStarted`.
pub fn last_import(store: &dyn Store, org: &str) -> Result<(RunId, RunStarted)> {
    for run in store.runs()?.into_iter().rev() {
        if let Some(started) = engine::chain::started_of(store, run)? {
            if started.org == org && started.mode == Mode::Apply {
                return Ok((run, started));
            }
        }
    }
    Err(Error::bad_input(format!(
        "org {org} has no import to repeat; run `roster import {org} ...` once, then `roster sync {org}` repeats it"
    )))
}

/// What `roster sync ORG` repeats now: the org's sync definition, else its last import.
pub fn repeated(store: &dyn Store, org: &str) -> Result<Repeated> {
    let config = org::get_org(store, org)?;
    if let Some(d) = config.sync {
        return Ok(Repeated {
            org: config.name,
            selection: d.selection,
            options: d.options,
            target: d.target,
            origin: Origin::Definition {
                from: d.from,
                by: d.by,
                at: d.at,
            },
        });
    }
    let (run, last) = last_import(store, &config.name)?;
    Ok(Repeated {
        org: config.name,
        selection: last.selection,
        options: RunOptions {
            // The org's own, as of each run (`runs::plan_or_import`).
            leave_out: Vec::new(),
            ..last.options
        },
        target: last.target,
        origin: Origin::LastImport(run),
    })
}

/// Sets what `roster sync ORG` repeats from now on: import `run` of the org (its selection as
/// typed, its options, its server), with `max_deletions` instead of its own if given. Later
/// one-off imports do not change it.
pub fn define(
    ctx: &Context,
    store: &dyn Store,
    org: &str,
    run: RunId,
    max_deletions: Option<u32>,
) -> Result<SyncDefinition> {
    let mut config = org::get_org(store, org)?;
    let started = engine::chain::started_of(store, run)?
        .ok_or_else(|| Error::bad_input(format!("run {run} is not an import or a dry run")))?;
    if started.org != config.name || started.tenant_id != config.tenant_id {
        return Err(Error::bad_input(format!(
            "run {run} is org {}'s, not org {}'s",
            started.org, config.name
        )));
    }
    if started.mode != Mode::Apply {
        return Err(Error::bad_input(format!(
            "run {run} is a dry run; a sync repeats an import (`roster apply {run}` imports it, then set the sync from that import)"
        )));
    }
    let mut options = RunOptions {
        leave_out: Vec::new(),
        ..started.options
    };
    if let Some(n) = max_deletions {
        options.max_deletions = n;
    }
    let definition = SyncDefinition {
        selection: started.selection,
        options,
        // The server, not what an earlier run learned of it.
        target: Server::of(&started.target).info(),
        from: run,
        by: ctx.started_by.clone(),
        at: ctx.clock.now(),
    };
    config.sync = Some(definition.clone());
    org::replace_org(store, &config)?;
    store.flush()?;
    Ok(definition)
}

/// Repeats `what` — what the org's sync repeats ([`repeated`], read by the caller, which says
/// it) — once, against its server (or the one given with `--server-file` or `--scim`).
pub fn sync_once(
    ctx: &Context,
    store: &dyn Store,
    request: &SyncRequest,
    what: &Repeated,
) -> Result<(adapters::org::OrgConfig, RunResult)> {
    let outside = match &ctx.server {
        Server::Embedded => ctx.open_target(&Server::of(&what.target))?,
        given => ctx.open_target(given)?,
    };
    let mut options = what.options.clone();
    if let Some(n) = request.max_deletions {
        options.max_deletions = n;
    }
    let run = RunRequest {
        mode: Mode::Apply,
        selection: what.selection.clone(),
        options,
        started_by: ctx.started_by.clone(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full: request.full,
        every_entry: false,
    };
    crate::runs::plan_or_import(ctx, store, outside, &request.org, &run)
}
