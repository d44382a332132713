//! A store opened after a crash or a write error: its torn end cut back, and every run a
//! process left unfinished closed as aborted — a server-file run settled from the file's
//! digest first, a SCIM run saying what it had not confirmed.

use std::borrow::Cow;

use engine::event::{Event, EventKind, RunFinished, RunStatus};
use engine::{RunId, Store};

use adapters::clock::Clock;
use adapters::error::Result;

/// Appends `RunFinished { aborted }` to `run` with the counts of what it recorded, and flushes.
/// Records `event` — an administrator's action, a run of its own — in one atomic batch with
/// the server records `writes` it changes, after checking the disk has room, and flushes:
/// only then is it done. Returns the run it is recorded under and when.
pub(crate) fn record_alone(
    store: &dyn Store,
    clock: &dyn Clock,
    event: Event,
    writes: &[engine::model::KeyWrite],
) -> Result<(RunId, chrono::DateTime<chrono::Utc>)> {
    store.check_room_for_run(1, writes.len() as u64)?;
    let at = clock.now();
    let run = clock.new_run_id(at);
    store.commit_stream(run, at, &mut std::iter::once(Cow::Owned(event)), writes)?;
    store.flush()?;
    Ok((run, at))
}

pub(crate) fn close_run(
    store: &dyn Store,
    run: RunId,
    clock: &dyn Clock,
    reason: &str,
) -> Result<()> {
    use engine::projection::{Projection, Report};
    let events = store.read_run_where(run, &|t| Report::uses(t))?;
    let summary = Report::fold(&events).summary();
    store.append(
        run,
        clock.now(),
        &[Event::RunFinished(RunFinished {
            status: RunStatus::Aborted,
            summary,
            reason: Some(reason.to_owned()),
            learned: Vec::new(),
        })],
    )?;
    store.flush()?;
    Ok(())
}

/// What opening a store found left over from a process that stopped early.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// The end of the log was torn by a write error and cut back.
    pub cut: Option<engine::store::TailCut>,
    /// Runs that were interrupted, now closed as aborted.
    pub closed: Vec<RunId>,
}

/// Brings a store opened after a crash, a kill or a write error back to a log that verifies:
/// a torn end is cut back (only when it belongs to the last, unfinished run; anything else is
/// an error that `verify` names), then interrupted runs are closed.
pub fn recover(store: &dyn Store, clock: &dyn Clock) -> Result<Recovered> {
    let at = clock.now();
    let cut = store.cut_torn_tail(at, clock.new_run_id(at))?;
    let closed = close_interrupted_runs(store, clock)?;
    Ok(Recovered { cut, closed })
}

/// Closes runs a crash or a kill left unfinished: each gets `RunFinished { aborted }` with the
/// counts of what it recorded, so `runs` shows it as aborted and `verify` as closed. A run that
/// was killed while writing a server file is first settled from the file itself (see
/// [`settle_server_write`]). Called when a store is opened; returns the runs it closed.
pub fn close_interrupted_runs(store: &dyn Store, clock: &dyn Clock) -> Result<Vec<RunId>> {
    let mut closed = Vec::new();
    for run in store.runs()? {
        let Some((_, last)) = store.run_ends(run)? else {
            continue;
        };
        // A run ends with RunFinished, or is one event by itself (LogRepaired, ServerEdited).
        let finished = store
            .read_event(last)?
            .map(|e| e.event.kind())
            .is_some_and(|k| k == EventKind::RunFinished || k.is_whole_run());
        if finished {
            continue;
        }
        let reason = settle_server_write(store, run, clock)?.unwrap_or_else(|| {
            "interrupted: roster stopped before the run finished; closed when the store was next opened".into()
        });
        close_run(store, run, clock, &reason)?;
        closed.push(run);
    }
    Ok(closed)
}

/// An interrupted run that wrote to a SCIM service says how many of the changes it intended it
/// did not confirm. An interrupted run that recorded the intent to write a server file
/// (`ServerWriteIntended`) is settled by the file itself: if it holds what the run meant to write, the changes the
/// run intended are recorded as `Imported` (the ones it had not recorded yet), attributed to
/// it; if it holds what the run read, nothing was applied; anything else cannot be told and is
/// said so. Returns the reason to close the run with, or `None` for a run without an intent.
fn settle_server_write(store: &dyn Store, run: RunId, clock: &dyn Clock) -> Result<Option<String>> {
    let events = store.read_run_where(run, &|t| {
        matches!(
            t,
            EventKind::ChangeIntended | EventKind::ServerWriteIntended | EventKind::Imported
        )
    })?;
    let Some(intent) = events.iter().rev().find_map(|e| match &e.event {
        Event::ServerWriteIntended(w) => Some(w.clone()),
        _ => None,
    }) else {
        // A SCIM service is written change by change after each batch's intent: what was
        // intended and not confirmed may or may not be on it. The next run reads it as it is.
        let confirmed: std::collections::HashSet<(engine::model::Kind, &engine::ObjectId)> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::Imported(i) => Some((i.kind, &i.id)),
                _ => None,
            })
            .collect();
        let unconfirmed = events
            .iter()
            .filter(|e| match &e.event {
                Event::ChangeIntended(i) => !confirmed.contains(&(i.kind, &i.id)),
                _ => false,
            })
            .count();
        return Ok((unconfirmed > 0).then(|| format!(
            "interrupted while writing to the server: {unconfirmed} intended changes were not confirmed and may or may not have been made; the next import reads the server as it is and decides from that; closed when the store was next opened"
        )));
    };
    let path = std::path::Path::new(&intent.path);
    let now = std::fs::read(path)
        .ok()
        .map(|b| hex::encode(adapters::target::digest(&b)));
    let n = intent.changes;
    Ok(Some(match now {
        Some(d) if d == intent.after => {
            let recorded: std::collections::HashSet<(engine::model::Kind, &engine::ObjectId)> =
                events
                    .iter()
                    .filter_map(|e| match &e.event {
                        Event::Imported(i) => Some((i.kind, &i.id)),
                        _ => None,
                    })
                    .collect();
            let mut done = events
                .iter()
                .filter_map(|e| match &e.event {
                    Event::ChangeIntended(i) if !recorded.contains(&(i.kind, &i.id)) => {
                        Some(Cow::Owned(Event::Imported(i.clone())))
                    }
                    _ => None,
                })
                .peekable();
            if done.peek().is_some() {
                store.commit_stream(run, clock.now(), &mut done, &[])?;
            }
            format!("interrupted after it wrote the server file {}: the {n} changes it wrote are recorded from its intent; closed when the store was next opened", intent.path)
        }
        Some(d) if d == intent.before => format!(
            "interrupted before it wrote the server file {}: none of its {n} changes was applied; closed when the store was next opened",
            intent.path
        ),
        Some(_) => format!(
            "interrupted while writing the server file {}, which has changed since: whether its {n} changes were applied cannot be told; compare the file with this run's report",
            intent.path
        ),
        None => format!(
            "interrupted while writing the server file {}, which cannot be read now: whether its {n} changes were applied cannot be told",
            intent.path
        ),
    }))
}
