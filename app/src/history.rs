//! An org's earlier runs, as a run looks them up: the base of an incremental run (its last
//! completed run against the same server), the shrink guard's baseline (its last complete
//! read), when the chain of change listings last read the tenant whole, what a SCIM service
//! was seen not to keep, and the earlier imports a run's problems are compared with.

use engine::event::{Baseline, Event, Mode, RunFinished, RunStarted, RunStatus, TargetInfo};
use engine::{RunId, Store};

use adapters::error::Result;
use adapters::org::OrgConfig;

/// The org's completed runs, newest first, each with its `RunStarted`: what the base of an
/// incremental run and the shrink guard's baseline are looked for in.
pub(crate) fn completed_runs<'s>(
    store: &'s dyn Store,
    org: &'s OrgConfig,
) -> Result<impl Iterator<Item = Result<(RunId, RunStarted)>> + 's> {
    let runs = store.runs()?;
    Ok(runs.into_iter().rev().filter_map(move |run| {
        let found = (|| -> Result<Option<(RunId, RunStarted)>> {
            let Some((first, last)) = store.run_ends(run)? else {
                return Ok(None);
            };
            let Some(Event::RunStarted(started)) = store.read_event(first)?.map(|e| e.event) else {
                return Ok(None);
            };
            if started.org != org.name || started.tenant_id != org.tenant_id {
                return Ok(None);
            }
            let completed = matches!(
                store.read_event(last)?.map(|e| e.event),
                Some(Event::RunFinished(RunFinished {
                    status: RunStatus::Completed,
                    ..
                }))
            );
            Ok(completed.then_some((run, started)))
        })();
        found.transpose()
    }))
}

/// The org's last completed run against `target`: the base of its next run there. (A run
/// against another server would be a base whose server differs in everything.)
pub(crate) fn last_completed_run(
    store: &dyn Store,
    org: &OrgConfig,
    target: &TargetInfo,
) -> Result<Option<(RunId, RunStarted)>> {
    for found in completed_runs(store, org)? {
        let (run, started) = found?;
        if started.target.same_server(target) {
            return Ok(Some((run, started)));
        }
    }
    Ok(None)
}

/// The org's completed imports against `target` before `run` (runs started earlier), newest
/// first, at most `limit` of them: what `run`'s problems are compared with.
pub(crate) fn imports_before(
    store: &dyn Store,
    org: &OrgConfig,
    target: &TargetInfo,
    run: RunId,
    limit: usize,
) -> Result<Vec<RunId>> {
    let first = store.run_ends(run)?.map(|(first, _)| first);
    let mut found = Vec::new();
    for c in completed_runs(store, org)? {
        if found.len() >= limit {
            break;
        }
        let (other, started) = c?;
        if other == run || started.mode != Mode::Apply || !started.target.same_server(target) {
            continue;
        }
        let before = match (store.run_ends(other)?, first) {
            (Some((o, _)), Some(f)) => o < f,
            _ => false,
        };
        if before {
            found.push(other);
        }
    }
    Ok(found)
}

/// The org's last completed run, import or dry run, whatever its server.
pub(crate) fn last_completed_any(store: &dyn Store, org: &OrgConfig) -> Result<Option<RunId>> {
    Ok(completed_runs(store, org)?
        .next()
        .transpose()?
        .map(|(run, _)| run))
}

/// The optional user attributes earlier runs saw a server not keep: what `last` — the org's
/// last completed run against it ([`last_completed_run`]) — recorded it did not keep, and what
/// that run learned.
pub(crate) fn unkept_seen(
    store: &dyn Store,
    last: Option<&(RunId, RunStarted)>,
) -> Result<Vec<String>> {
    let Some((run, started)) = last else {
        return Ok(Vec::new());
    };
    let mut unkept: Vec<String> = started.target.unkept().to_vec();
    if let Some((_, last)) = store.run_ends(*run)? {
        if let Some(Event::RunFinished(finished)) = store.read_event(last)?.map(|e| e.event) {
            unkept.extend(finished.learned);
        }
    }
    unkept.sort();
    unkept.dedup();
    Ok(unkept)
}

/// How long a chain of change listings may go on before the tenant is read whole again.
pub const WHOLE_READ_EVERY: chrono::Duration = chrono::Duration::hours(24);

/// When the read that the chain of change listings ending at `base` started from (a whole
/// read) was made: `base` itself when it read the whole tenant, else the run whose links it
/// followed, and so on back.
pub(crate) fn last_whole_read(
    store: &dyn Store,
    org: &OrgConfig,
    base: RunId,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let mut wanted = base;
    for found in completed_runs(store, org)? {
        let (run, started) = found?;
        if run != wanted {
            continue;
        }
        match started.source.changes_since {
            None => return Ok(run.started_at()),
            Some(earlier) => wanted = earlier,
        }
    }
    Ok(None)
}

/// The org's last completed run that listed its tenant completely, with what it listed
/// (runs before the listing-shrink guard recorded no counts, and are passed over).
pub(crate) fn last_complete_read(store: &dyn Store, org: &OrgConfig) -> Result<Option<Baseline>> {
    for found in completed_runs(store, org)? {
        let (run, started) = found?;
        let complete = started.source.completeness.users && started.source.completeness.groups;
        if let (true, Some(listed)) = (complete, started.source.listed) {
            return Ok(Some(Baseline { run, listed }));
        }
    }
    Ok(None)
}
