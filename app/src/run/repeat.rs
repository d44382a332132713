//! A run whose inputs are its base's: the same tenant (a fixture file's bytes, hashed; for a
//! live org, Graph's change listings since the base empty and its recycle bins as they were),
//! the same embedded server (its version), the same selection, options, decision rules and
//! roster — after a base that changed nothing. The planner is a pure function of those inputs, so the run decides
//! every entry as its base did; it records what a run deciding them would record (each
//! problem again, see [`chain::recorded_again`]) and nothing else, without reading the tenant
//! or the server, digesting or comparing them.
//!
//! Every fact it rests on is checked, none assumed: the base's decisions are read from the log
//! (its `Planned` or `Imported` events, none with a change to make), its inputs' digest and
//! what it read from its `RunStarted`; only the server's version comes from the org's mirror,
//! whose stamp the log vouches for, and the server writes a new version with every change. A
//! run that cannot show all of it reads its inputs as any other (`ROSTER_LOG=app=debug` says
//! why).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use engine::chain::{self, mirror as kept};
use engine::event::{
    EntryOutcome, Event, EventKind, Mode, RunFinished, RunStarted, RunStatus, SourceInfo, Summary,
    TargetInfo, DECISION_RULES,
};
use engine::model::{Completeness, ServerState};
use engine::store::{MirrorBody, MirrorStamp, MirrorWrite};
use engine::{RunId, ENGINE_VERSION};

use adapters::error::Result;
use adapters::source::Quiet;
use adapters::target::Target;

use super::{Cx, RunEnd, RunResult};
use crate::history::{last_whole_read, WHOLE_READ_EVERY};
use crate::mirror::{self, BaseFrom};

/// A base whose decisions a run takes as they are.
pub(super) struct Settled {
    run: RunId,
    started: RunStarted,
    stamp: MirrorStamp,
    deleted: u32,
    /// Every entry's outcome, as the base's `RunFinished` counted them.
    summary: Summary,
    /// The base's recorded entries that a run deciding them again records again.
    again: Vec<EntryOutcome>,
    /// A live org's change listings, which found nothing changed.
    quiet: Option<Quiet>,
}

/// Whether this run's inputs are its base's and that base changed nothing — else why not.
pub(super) fn settled(
    cx: &Cx<'_>,
    target: &dyn Target,
    last_run: Option<&(RunId, RunStarted)>,
) -> Result<std::result::Result<Settled, String>> {
    let req = cx.req;
    if req.full || req.every_entry || req.reviewed.is_some() || req.approved.is_some() {
        return Ok(Err("the run decides every entry".into()));
    }
    let Some((run, started)) = last_run else {
        return Ok(Err("the org has no earlier run".into()));
    };
    if let Some(why) = differs(cx, started) {
        return Ok(Err(why));
    }
    let Some(content) = started.source.content.as_deref() else {
        return Ok(Err(format!("run {run} kept no digest of what it read")));
    };
    let id = kept::mirror_id(&cx.org.name, &cx.org.tenant_id, &cx.target_info);
    let stamp = match cx.store.mirror_stamp(&id)? {
        Some(Ok(stamp)) => stamp,
        _ => return Ok(Err("the org keeps no mirror to vouch for the server".into())),
    };
    if !mirror::vouches(cx.store, *run, &stamp)? {
        return Ok(Err(format!(
            "the mirror is not run {run}'s as the log holds it"
        )));
    }
    let Some(kept_settled) = stamp.settled.clone() else {
        return Ok(Err(format!(
            "run {run} did not leave the server as it found it"
        )));
    };
    if stamp.length as usize >= chain::MAX_CHAIN {
        return Ok(Err(
            "the chain of runs is full: the run records in full".into()
        ));
    }
    if target.version()?.as_deref() != Some(kept_settled.server_version.as_str()) {
        return Ok(Err("the server changed since".into()));
    }
    // The base's decisions, from the log: none may change the server.
    let (mut finished, mut entries, mut changes) = (None, Vec::new(), false);
    let keep = |k: EventKind| {
        matches!(
            k,
            EventKind::Planned | EventKind::Imported | EventKind::RunFinished
        )
    };
    cx.store
        .visit_run(*run, &keep, &mut |env| match env.event {
            Event::Planned(e) | Event::Imported(e) => {
                changes |= e.op.is_some();
                if !changes && chain::recorded_again(&e, DECISION_RULES) {
                    entries.push(e);
                }
            }
            Event::RunFinished(f) => finished = Some(f),
            _ => {}
        })?;
    let summary = match finished {
        Some(f) if f.status == RunStatus::Completed && !changes => f.summary,
        _ => return Ok(Err(format!("run {run} changed the server"))),
    };
    // Last, as it reads the whole file or asks Graph: the tenant is what the base read.
    let quiet = match &started.source.delta_links {
        None => {
            if cx.source.content_digest().as_deref() != Some(content) {
                return Ok(Err("the tenant's content changed".into()));
            }
            None
        }
        Some(links) => {
            if !super::resumable(cx.source, &started.source) {
                return Ok(Err("the tenant is read from elsewhere".into()));
            }
            if let Some(whole) = last_whole_read(cx.store, cx.org, *run)? {
                if cx.clock.now() - whole > WHOLE_READ_EVERY {
                    return Ok(Err("the tenant is due to be read whole again".into()));
                }
            }
            match cx.source.quiet_since(links, content) {
                Ok(Some(quiet)) => Some(quiet),
                Ok(None) => return Ok(Err("the tenant changed, or Graph could not say".into())),
                // Stopped while asking: recorded as an aborted run, as a read cut short is.
                Err(failure) if failure.is_source_failure() => return Err(cx.aborted(failure)?),
                Err(e) => return Err(e),
            }
        }
    };
    // What the run will record fits, or it is refused before it writes anything.
    cx.store.check_room_for_run(entries.len() as u64 + 2, 0)?;
    Ok(Ok(Settled {
        run: *run,
        started: started.clone(),
        stamp,
        deleted: kept_settled.deleted,
        summary,
        again: entries,
        quiet,
    }))
}

/// How the base's inputs, as its `RunStarted` has them, differ from this run's, if they do.
fn differs(cx: &Cx<'_>, started: &RunStarted) -> Option<String> {
    let (req, source) = (cx.req, &started.source);
    let why = if started.rules != DECISION_RULES || started.engine_version != ENGINE_VERSION {
        "its base was decided by another roster"
    } else if cx.target_info != TargetInfo::Embedded || started.target != cx.target_info {
        "only the embedded server keeps a version"
    } else if started.tenant_id != cx.org.tenant_id
        || started.selection != req.selection
        || started.options != req.options
    {
        "the selection or the options changed"
    } else if source.kind != cx.source.kind()
        || source.location != cx.source.location()
        || source.completeness != Completeness::COMPLETE
        || started.inputs_digest.is_none()
    {
        "the tenant is read from elsewhere"
    } else {
        return None;
    };
    Some(why.to_owned())
}

impl Cx<'_> {
    /// The run whose inputs are its base's: `RunStarted` (what it read: its base's, the same
    /// inputs digest), the entries recorded again, `RunFinished` with its base's counts and
    /// the mirror's stamp renewed (its body, the chain's state, is its base's).
    /// `run`, begun `at`: its id, made by the caller (which closes it, should the disk fill).
    pub(super) fn repeat(
        &self,
        target: &mut dyn Target,
        base: Settled,
        run: RunId,
        at: DateTime<Utc>,
    ) -> Result<RunResult> {
        let (store, req, clock) = (self.store, self.req, self.clock);
        self.step("the tenant and the server are as the last run found them");
        let Settled {
            run: base_run,
            started: base_started,
            stamp,
            deleted,
            summary,
            again,
            quiet,
        } = base;
        let was = base_started.source;
        // A live org's run resumes where its change listings ended: the changes since this run.
        // What it read was two empty change listings and the recycle bins as before: the
        // problems its base's read met (a note that it read the whole tenant, say) are not its
        // own. A fixture's problems are the file's, which it is.
        let (delta_links, changes_since, problems) = match quiet {
            Some(q) => (Some(q.links), Some(base_run), Vec::new()),
            None => (None, None, was.problems),
        };
        let info = SourceInfo {
            kind: self.source.kind(),
            location: self.source.location(),
            fingerprint: was.fingerprint,
            completeness: was.completeness,
            problems,
            listed: was.listed,
            delta_links,
            changes_since,
            signed_in_as: self.source.signed_in_as(),
            content: was.content,
        };
        let mut started = self.started(info);
        started.base = Some(base_run);
        started.inputs_digest = base_started.inputs_digest;
        let first = Event::RunStarted(started.clone());
        store.commit_stream(run, at, &mut std::iter::once(Cow::Owned(first)), &[])?;
        self.lap("recorded what was read: its base's inputs");
        let not_decided = summary.less(&Summary::of(&again));
        let result = |entries: Vec<EntryOutcome>, end: RunEnd| RunResult {
            run,
            mode: req.mode,
            recorded: vec![true; entries.len()],
            entries,
            deleted: deleted as usize,
            end,
            problems: started.source.problems.clone(),
            stale: Vec::new(),
            base: Some(base_run),
            changes_since: started.source.changes_since,
            started_by: req.started_by.clone(),
            signed_in_as: started.source.signed_in_as.clone(),
            base_from: Some(BaseFrom::Settled),
            not_decided,
        };
        let finish = |status: RunStatus, summary: Summary, reason: Option<String>, kept: bool| {
            let finished = RunFinished {
                status,
                summary,
                reason,
                learned: Vec::new(),
            };
            let next = MirrorWrite {
                id: kept::mirror_id(&self.org.name, &self.org.tenant_id, &self.target_info),
                org: stamp.org.clone(),
                server: stamp.server.clone(),
                run,
                full: stamp.full,
                length: stamp.length + 1,
                body: MirrorBody::Kept,
                settled: Some(deleted),
            };
            self.finish_run(run, finished, kept.then_some(&next))
        };
        if self.stop.requested() {
            let why = super::STOPPED_BEFORE_APPLYING.to_owned();
            finish(
                RunStatus::Aborted,
                Summary::default(),
                Some(why.clone()),
                false,
            )?;
            return Ok(RunResult {
                not_decided: Summary::default(),
                ..result(Vec::new(), RunEnd::Aborted(why))
            });
        }
        match req.mode {
            Mode::DryRun => {
                let mut planned = again.iter().map(|e| Cow::Owned(Event::Planned(e.clone())));
                store.commit_stream(run, clock.now(), &mut planned, &[])?;
                finish(RunStatus::Completed, summary, None, true)?;
                Ok(result(again, RunEnd::Completed))
            }
            Mode::Apply => {
                // Nothing to change: the target records each entry as imported.
                let mut state = ServerState::default();
                let applied = target.import(store, run, clock, &mut state, again, self.stop)?;
                let counted = not_decided.plus(&Summary::of(&applied.entries));
                match applied.failure {
                    None => {
                        finish(RunStatus::Completed, counted, None, true)?;
                        Ok(result(applied.entries, RunEnd::Completed))
                    }
                    Some(why) => {
                        finish(RunStatus::Aborted, counted, Some(why.clone()), false)?;
                        Ok(result(applied.entries, RunEnd::Aborted(why)))
                    }
                }
            }
        }
    }
}
