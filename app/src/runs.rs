//! Runs: plan and import (the wizard's steps, through [`crate::run::execute`]), apply a
//! reviewed dry run, and what the log says of past runs — which runs there are, a run's
//! report, its deleted objects.

use chrono::{DateTime, Utc};

use adapters::org::{self, OrgConfig};
use adapters::target::{EmbeddedTarget, Target};
use engine::event::{Event, Mode, RunStatus};
use engine::plan::Refusal;
use engine::projection::{DeletedView, Projection, Report, RunInfo};
use engine::{RunId, Store};

use crate::context::{target, Context, Server};
use crate::error::{Error, Result};
use crate::run::{execute, RunRequest, RunResult};

/// Plans (a dry run) or imports for `org` what `request` asks, against `outside` (opened with
/// [`Context::outside_target`]) or else the embedded server. Returns the org read, and the run.
pub fn plan_or_import(
    ctx: &Context,
    store: &dyn Store,
    mut outside: Option<Box<dyn Target>>,
    org: &str,
    request: &RunRequest,
) -> Result<(OrgConfig, RunResult)> {
    let org = org::get_org(store, org)?;
    // What the org leaves out for good is left out of every run it starts (a reviewed dry
    // run's apply keeps what that dry run left out: it imports exactly what was reviewed).
    let mut request = request.clone();
    request.options.leave_out = org.leave_out();
    run_against(ctx, store, &org, &mut outside, &request)
}

/// Applies the reviewed dry run `reviewed`: an import with its selection and options that
/// goes ahead only if it decides exactly what the dry run showed (else it is refused as stale,
/// and recorded so). It runs against the server the dry run was planned against.
pub fn apply(ctx: &Context, store: &dyn Store, reviewed: RunId) -> Result<(OrgConfig, RunResult)> {
    let events = store.read_run(reviewed)?;
    let info = RunInfo::fold(&events)
        .ok_or_else(|| Error::bad_input(format!("run {reviewed} has no RunStarted event")))?;
    if info.mode != Mode::DryRun {
        return Err(Error::bad_input(format!("run {reviewed} is an import, not a dry run; `roster apply` applies a reviewed `roster plan`")));
    }
    if info.status != Some(RunStatus::Completed) {
        let status = info.status.map_or("unfinished", |s| s.as_str());
        return Err(Error::bad_input(format!(
            "dry run {reviewed} is {status}; there is no reviewed plan to apply"
        )));
    }
    let Some(Event::RunStarted(started)) = events.first().map(|e| &e.event) else {
        return Err(Error::bad_input(format!(
            "run {reviewed} has no RunStarted event"
        )));
    };
    let (org, mut outside) = as_planned(ctx, store, started, ("dry run", reviewed), "apply")?;
    let request = RunRequest {
        mode: Mode::Apply,
        selection: started.selection.clone(),
        options: started.options.clone(),
        started_by: ctx.started_by.clone(),
        applied_from: Some(reviewed),
        approved: None,
        reviewed: Some(
            replay::rebuild::inputs_and_report(store, reviewed)?
                .1
                .entries,
        ),
        full: false,
        every_entry: false,
    };
    run_against(ctx, store, &org, &mut outside, &request)
}

/// Imports, as reviewed, the plan of `refused` — a run a safety limit refused (the deletion
/// guard, an empty or shrunk listing) — approved by the account running it: an import with
/// that run's selection and options, the guard that refused it lifted exactly as far as that
/// plan needs (`--max-deletions` its removals, or `--allow-empty-source`), which goes ahead
/// only if it decides exactly that plan (else it is refused as stale). The approval — who,
/// which run, which refusal — is recorded in the import's `RunStarted`.
pub fn approve(ctx: &Context, store: &dyn Store, refused: RunId) -> Result<(OrgConfig, RunResult)> {
    let info = run_info(store, refused)?
        .ok_or_else(|| Error::bad_input(format!("run {refused} has no RunStarted event")))?;
    if info.status != Some(RunStatus::Refused) {
        let status = info.status.map_or("unfinished", |s| s.as_str());
        return Err(Error::bad_input(format!(
            "run {refused} is {status}, not refused; `roster apply --approve` imports a plan a safety limit refused"
        )));
    }
    let (inputs, plan) = replay::rebuild::planned(store, refused)?;
    let started = inputs.started;
    let mut options = started.options.clone();
    match &plan.refusal {
        Some(Refusal::TooManyDeletions { planned, .. }) => options.max_deletions = *planned,
        Some(
            Refusal::EmptySource { .. } | Refusal::NoGroups { .. } | Refusal::ShrunkListing { .. },
        ) => {
            options.allow_empty_source = true;
            // The deletion guard still holds at what this plan removes.
            options.max_deletions = options.max_deletions.max(removals(&plan.entries));
        }
        Some(Refusal::StalePlan { reviewed, .. }) => {
            return Err(Error::bad_input(format!(
                "run {refused} was refused because the plan reviewed in {reviewed} went stale, not by a safety limit; run `roster plan` again and review it"
            )))
        }
        None => {
            return Err(Error::bad_input(format!(
                "run {refused}, decided again from what it read, is no longer refused; nothing to approve (its log may come from another roster version)"
            )))
        }
    }
    let refusal = plan
        .refusal
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let (org, mut outside) = as_planned(ctx, store, &started, ("run", refused), "approve")?;
    let request = RunRequest {
        mode: Mode::Apply,
        selection: started.selection.clone(),
        options,
        started_by: ctx.started_by.clone(),
        applied_from: Some(refused),
        approved: Some(Box::new(engine::event::Approval {
            run: refused,
            by: ctx.started_by.clone(),
            refusal,
        })),
        reviewed: Some(plan.entries),
        full: false,
        every_entry: false,
    };
    run_against(ctx, store, &org, &mut outside, &request)
}

/// The org and the server run `run` (started as `started`) was planned for, to import its plan
/// (`run` named as `noun`; `verb`: apply, approve): refused when the org now reads another tenant, or another server
/// is named than the one it was planned against.
fn as_planned(
    ctx: &Context,
    store: &dyn Store,
    started: &engine::event::RunStarted,
    (noun, run): (&str, RunId),
    verb: &str,
) -> Result<(OrgConfig, Option<Box<dyn Target>>)> {
    let org = org::get_org(store, &started.org)?;
    if org.tenant_id != started.tenant_id {
        return Err(Error::bad_input(format!(
            "org {} now reads tenant {}, but {noun} {run} read tenant {}",
            org.name, org.tenant_id, started.tenant_id
        )));
    }
    let planned = Server::of(&started.target);
    if ctx.server != Server::Embedded && !ctx.server.same_as(&planned) {
        return Err(Error::bad_input(format!(
            "{noun} {run} was planned against {}; {verb} it against the same server",
            planned.describe()
        )));
    }
    Ok((org, ctx.open_target(&planned)?))
}

/// How many objects `entries` disable or delete.
fn removals(entries: &[engine::event::EntryOutcome]) -> u32 {
    let n = entries
        .iter()
        .filter(|e| {
            e.op.is_some()
                && matches!(
                    e.outcome,
                    engine::event::Outcome::Disabled | engine::event::Outcome::Deleted
                )
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The one wiring of a run: the org's source, the target, [`execute`].
fn run_against(
    ctx: &Context,
    store: &dyn Store,
    org: &OrgConfig,
    outside: &mut Option<Box<dyn Target>>,
    request: &RunRequest,
) -> Result<(OrgConfig, RunResult)> {
    let mut embedded = EmbeddedTarget::new(store);
    let env = ctx.source_env();
    let source = org.source(&env)?;
    let result = execute(
        store,
        org,
        source.as_ref(),
        target(outside, &mut embedded),
        request,
        ctx.clock.as_ref(),
        &ctx.stop,
    )?;
    Ok((org.clone(), result))
}

/// Resolves a run argument: a full id, a unique prefix (4+ characters), `last`, or `last~N`
/// (the Nth run before the last).
pub fn resolve_run(store: &dyn Store, arg: &str) -> Result<RunId> {
    let runs = store.runs()?;
    let arg = arg.trim();
    let lower = arg.to_ascii_lowercase();
    if let Some(back) = lower
        .strip_prefix("last")
        .or_else(|| lower.strip_prefix("latest"))
    {
        let back: usize = match back.strip_prefix('~') {
            None if back.is_empty() => 0,
            Some(n) => n.parse().map_err(|_| {
                Error::bad_input(format!("run {arg:?}: expected last~N with N a number"))
            })?,
            None => {
                return Err(Error::bad_input(format!(
                    "run {arg:?}: expected `last` or `last~N`"
                )))
            }
        };
        // `last` is the last import or dry run (what `roster runs` lists): an administrator's
        // change, a load or a backup is named by its id.
        let mut runs = runs;
        runs.retain(|run| {
            engine::chain::started_of(store, *run)
                .map(|s| s.is_some())
                .unwrap_or(true)
        });
        if runs.is_empty() {
            return Err(Error::bad_input("there are no runs yet"));
        }
        return back
            .checked_add(1)
            .and_then(|n| runs.len().checked_sub(n))
            .map(|i| runs[i])
            .ok_or_else(|| {
                Error::bad_input(format!("run {arg:?}: there are only {} runs", runs.len()))
            });
    }
    if let Ok(id) = arg.parse::<RunId>() {
        return if runs.contains(&id) {
            Ok(id)
        } else {
            Err(Error::bad_input(format!(
                "no run {id} in the log; `roster runs` lists them"
            )))
        };
    }
    if arg.len() < 4 {
        return Err(Error::bad_input(format!(
            "run {arg:?}: give the run id, a prefix of at least 4 characters, or `last`"
        )));
    }
    let hits: Vec<RunId> = runs
        .into_iter()
        .filter(|r| r.to_string().starts_with(&lower))
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::bad_input(format!(
            "no run matches {arg:?}; `roster runs` lists them"
        ))),
        many => Err(Error::bad_input(format!(
            "run prefix {arg:?} matches {} runs; give more characters",
            many.len()
        ))),
    }
}

/// A run's summary line, from its first and last events where possible.
pub fn run_info(store: &dyn Store, run: RunId) -> Result<Option<RunInfo>> {
    let Some((first, last)) = store.run_ends(run)? else {
        return Ok(None);
    };
    let first = store.read_event(first)?;
    let last = store.read_event(last)?;
    let mut info = RunInfo::fold(first.iter().chain(last.iter()));
    match (&mut info, last.as_ref().map(|e| &e.event)) {
        (Some(i), Some(Event::RunFinished(f))) => i.summary = f.summary,
        (Some(_), _) => info = RunInfo::fold(store.read_run(run)?.iter()),
        _ => {}
    }
    Ok(info)
}

/// Which runs `runs` lists.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub org: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
}

impl RunFilter {
    pub fn is_set(&self) -> bool {
        self.org.is_some() || self.since.is_some() || self.until.is_some()
    }
}

/// Every run the filter keeps, oldest first (a `LogRepaired` record is not a run).
pub fn runs(store: &dyn Store, filter: &RunFilter) -> Result<Vec<RunInfo>> {
    let mut infos = Vec::new();
    for run in store.runs()? {
        if let Some(info) = run_info(store, run)? {
            let keep = filter.org.as_deref().is_none_or(|o| o == info.org)
                && filter.since.is_none_or(|t| info.started_at >= t)
                && filter.until.is_none_or(|t| info.started_at < t);
            if keep {
                infos.push(info);
            }
        }
    }
    Ok(infos)
}

/// Each run's shortest unique name: the shortest prefix of its id, of at least 8 characters,
/// that no other run of the store shares — what `runs` shows and every command that takes a
/// run accepts. (Run ids are UUIDv7: their first digits are the time, shared by runs started
/// close together, so a fixed-length prefix would not do.)
pub fn short_ids(store: &dyn Store) -> Result<std::collections::HashMap<RunId, String>> {
    let mut ids: Vec<String> = store.runs()?.iter().map(|r| r.to_string()).collect();
    ids.sort();
    let common = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let mut out = std::collections::HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let before = i.checked_sub(1).map_or(0, |j| common(&ids[j], id));
        let after = ids.get(i + 1).map_or(0, |next| common(id, next));
        let len = (before.max(after) + 1).max(8).min(id.len());
        if let Ok(run) = id.parse::<uuid::Uuid>() {
            out.insert(RunId(run), id[..len].to_owned());
        }
    }
    Ok(out)
}

/// A run's report, folded as the run is read. The report shows outcomes, never the server
/// operations behind them, so those are let go at once (on a large run they are most of it).
pub fn report(store: &dyn Store, run: RunId) -> Result<Report> {
    recorded(store, run, |e| e.op = None)
}

/// A run's report as it recorded it, each entry passed through `each` as it is decoded.
fn recorded(
    store: &dyn Store,
    run: RunId,
    mut each: impl FnMut(&mut engine::event::EntryOutcome),
) -> Result<Report> {
    let mut report = Report::default();
    store.visit_run(run, &|t| Report::uses(t), &mut |env| {
        let mut event = env.event;
        if let Event::Planned(e) | Event::Imported(e) = &mut event {
            each(e);
        }
        report.take(env.run, event);
    })?;
    Ok(report)
}

/// A run's report with every entry: an incremental run's recorded entries, and the others
/// decided again from its inputs rebuilt from the log (the rows a full run records).
pub fn report_all(store: &dyn Store, run: RunId) -> Result<Report> {
    every_entry(store, run, |e| e.op = None)
}

/// A run's report with every entry, each passed through `each` as it is made: a full run's
/// as its events are decoded (it recorded every entry: its inputs are not needed), an
/// incremental run's once the others are decided again from its inputs.
fn every_entry(
    store: &dyn Store,
    run: RunId,
    each: impl FnMut(&mut engine::event::EntryOutcome),
) -> Result<Report> {
    if engine::chain::started_of(store, run)?.is_some_and(|s| s.base.is_none()) {
        return recorded(store, run, each);
    }
    let (_, mut report) = replay::rebuild::inputs_and_report(store, run)?;
    report.entries.iter_mut().for_each(each);
    Ok(report)
}

/// The deleted objects a run found, with the action chosen for each (an incremental run's,
/// rebuilt from the log).
pub fn deleted(store: &dyn Store, run: RunId) -> Result<DeletedView> {
    if engine::chain::started_of(store, run)?.is_some_and(|s| s.base.is_some()) {
        // The inputs alone: the deleted objects need no plan.
        let (inputs, ..) = replay::rebuild::rebuild_inputs(store, run)?;
        let mut view = DeletedView::default();
        let events = inputs
            .deleted
            .into_iter()
            .map(Event::ObjectDeleted)
            .chain(inputs.choices.into_iter().map(Event::ActionChosen));
        for e in events {
            view.take(run, e);
        }
        return Ok(view);
    }
    Ok(DeletedView::fold(
        &store.read_run_where(run, &|t| DeletedView::uses(t))?,
    ))
}

/// Everything the report page shows of a run (`report RUN --format html`).
#[derive(Debug, Clone)]
pub struct ReportPage {
    pub started: engine::event::RunStarted,
    pub info: RunInfo,
    pub report: Report,
    /// Every entry is listed (an incremental run's unrecorded entries decided again).
    pub all: bool,
    pub deleted: DeletedView,
    /// The logins each added or changed group has once the run is applied, by its object id.
    pub members: std::collections::BTreeMap<engine::ObjectId, Vec<engine::SmolStr>>,
    pub position: LogPosition,
    /// When the page was made, and by which roster.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub generated_by: &'static str,
}

/// Where a run sits in the log, and whether the log verifies up to it.
#[derive(Debug, Clone)]
pub struct LogPosition {
    pub first: engine::Seq,
    pub last: engine::Seq,
    /// The hash of the run's last event: what the chain after it builds on.
    pub last_hash: engine::event::Hash,
    /// How many events verified (every event up to the run's last), or why the log does not.
    pub verified: std::result::Result<u64, String>,
}

/// Gathers a run's report page: its start, summary, entries (every entry with `all`), deleted
/// objects and place in the log, verifying the log up to its last event.
pub fn report_page(
    store: &dyn Store,
    run: RunId,
    all: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ReportPage> {
    let Some((first, last)) = store.run_ends(run)? else {
        return Err(Error::bad_input(format!("run {run} has no events")));
    };
    let started = engine::chain::started_of(store, run)?
        .ok_or_else(|| Error::bad_input(format!("run {run} has no RunStarted event")))?;
    let info = run_info(store, run)?
        .ok_or_else(|| Error::bad_input(format!("run {run} has no RunStarted event")))?;
    // The members each added or changed group has once the run is applied: the access it
    // grants, which the entry's detail only counts.
    let mut members = std::collections::BTreeMap::new();
    let mut take_members = |e: &mut engine::event::EntryOutcome| {
        if let Some(engine::model::ServerOp::PutGroup { group, .. }) = e.op.take() {
            if e.kind == engine::model::Kind::Group
                && matches!(
                    e.outcome,
                    engine::event::Outcome::Added | engine::event::Outcome::Updated
                )
            {
                // The op was taken from a decoded event: the group is its own, not shared.
                let group = std::sync::Arc::unwrap_or_clone(group);
                members.insert(e.id.clone(), group.members);
            }
        }
    };
    let report = if all {
        every_entry(store, run, &mut take_members)?
    } else {
        recorded(store, run, &mut take_members)?
    };
    let last_hash = store
        .read_event(last)?
        .map(|e| e.hash)
        .ok_or_else(|| Error::bad_input(format!("run {run}: its last event cannot be read")))?;
    let verified = replay::verify(
        store,
        &replay::VerifyOptions {
            until: Some(last),
            ..Default::default()
        },
    )
    .map(|v| v.events)
    .map_err(|e| e.to_string());
    Ok(ReportPage {
        started,
        info,
        report,
        all,
        deleted: deleted(store, run)?,
        members,
        position: LogPosition {
            first,
            last,
            last_hash,
            verified,
        },
        generated_at: now,
        generated_by: concat!("roster ", env!("CARGO_PKG_VERSION")),
    })
}
