//! A run's complete inputs and complete report, rebuilt from the log: for a full run, what it
//! recorded; for an incremental run, its chain folded from the last full run (checked against
//! the run's digest of its inputs), decided again for the entries it did not record.

use std::collections::HashMap;

use engine::chain::{self, ChainState, EntryKey, LastOutcome, Through};
use engine::decide::{self, Chosen, Inputs};
use engine::event::{EntryOutcome, RunStarted, RunStatus};
use engine::plan::Plan;
use engine::projection::{Projection, Report, RunInputs, RunInputsFold};
use engine::store::EventStore;
use engine::RunId;

/// Why a run's inputs cannot be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("run {0} is not in the log")]
    NoSuchRun(RunId),
    #[error("run {run}: its inputs rebuilt from the log (full run {full} and the runs after it) do not match the digest it recorded: the log was edited, or a run of its chain is damaged; `roster verify` checks the log")]
    DigestMismatch { run: RunId, full: RunId },
    #[error("run {run}: {reason}")]
    Malformed { run: RunId, reason: String },
    #[error(transparent)]
    Store(#[from] engine::StoreError),
}

/// An incremental run rebuilt: its complete inputs, chosen and decided again.
pub struct Rebuilt {
    /// The complete inputs; the deleted objects and choices folded from the chain, in the
    /// order choosing again gives them.
    pub inputs: RunInputs,
    /// The selection and deleted objects resolved again from the inputs.
    pub chosen: Chosen,
    /// The plan decided from the folded choices.
    pub plan: Plan,
    /// The last outcome the chain recorded for each entry before this run.
    pub last: HashMap<EntryKey, LastOutcome>,
    pub full: RunId,
}

impl Rebuilt {
    /// The entries this run should have recorded: the plan's worth recording.
    pub fn expected_records(&self) -> Vec<EntryOutcome> {
        self.plan
            .entries
            .iter()
            .filter(|e| {
                let last = self.last.get(&(e.kind, e.id.clone()));
                chain::worth_recording(e, last, self.inputs.started.rules)
            })
            .cloned()
            .collect()
    }
}

/// Rebuilds an incremental run (`started.base` is set): folds its chain, checks its digest,
/// chooses and decides again.
pub fn rebuild(store: &dyn EventStore, run: RunId) -> Result<Rebuilt, RebuildError> {
    let (inputs, chosen, last, full) = rebuild_inputs(store, run)?;
    let plan = decide::decide(
        &decide_inputs(&inputs),
        &inputs.deleted,
        &inputs.choices,
        None,
    )
    .plan;
    Ok(Rebuilt {
        inputs,
        chosen,
        plan,
        last,
        full,
    })
}

/// An incremental run's complete inputs (its chain folded, its digest checked, its choices and
/// deleted objects in the order choosing again gives them), the choices made again, the
/// chain's last outcomes before it, and its full run — without planning it.
pub fn rebuild_inputs(
    store: &dyn EventStore,
    run: RunId,
) -> Result<(RunInputs, Chosen, HashMap<EntryKey, LastOutcome>, RunId), RebuildError> {
    let malformed = |reason: String| RebuildError::Malformed { run, reason };
    let state: ChainState =
        chain::fold(store, run, Through::Inputs, chain::Keep::Whole).map_err(|e| match e {
            chain::ReadError::Store(s) => RebuildError::Store(s),
            other => malformed(other.to_string()),
        })?;
    let parts = state.into_parts().map_err(|e| malformed(e.to_string()))?;
    check_digest(
        run,
        parts.full,
        &parts.started,
        &parts.snapshot,
        &parts.server,
    )?;
    let started = &parts.started;
    let chosen = decide::choose(
        &Inputs {
            tenant: &started.tenant_id,
            snapshot: &parts.snapshot,
            server: &parts.server,
            options: &started.options,
            baseline: started.baseline.as_ref(),
            group_details: started.target.keeps_group_details(),
            unkept: started.target.unkept(),
            rules: started.rules,
        },
        &started.selection,
    );
    let place = |items: Vec<EntryKey>| -> HashMap<EntryKey, usize> {
        items.into_iter().enumerate().map(|(i, k)| (k, i)).collect()
    };
    let choice_order = place(
        chosen
            .choices
            .as_ref()
            .map(|c| c.iter().map(|c| (c.kind, c.id.clone())).collect())
            .unwrap_or_default(),
    );
    let deleted_order = place(
        chosen
            .deleted
            .iter()
            .map(|d| (d.kind, d.id.clone()))
            .collect(),
    );
    let choices = parts.choices(|k| choice_order.get(k).copied());
    let deleted = parts.deleted(|k| deleted_order.get(k).copied());
    let chain::Parts {
        started,
        full,
        snapshot,
        server,
        last,
        ..
    } = parts;
    let inputs = RunInputs {
        started,
        snapshot,
        server,
        deleted,
        choices,
    };
    Ok((inputs, chosen, last, full))
}

/// Refuses inputs whose digest is not the one the run recorded (runs before version 3
/// recorded none).
pub fn check_digest(
    run: RunId,
    full: RunId,
    started: &RunStarted,
    snapshot: &engine::model::TenantSnapshot,
    server: &engine::model::ServerState,
) -> Result<(), RebuildError> {
    match &started.inputs_digest {
        Some(d)
            if *d
                != chain::inputs_digest(
                    snapshot,
                    &snapshot.fingerprint(),
                    server,
                    &started.selection,
                    &started.options,
                ) =>
        {
            Err(RebuildError::DigestMismatch { run, full })
        }
        _ => Ok(()),
    }
}

/// A run's complete inputs and its report with every entry: what a full run records; for an
/// incremental run, its recorded entries with the others decided again, in the plan's order.
pub fn inputs_and_report(
    store: &dyn EventStore,
    run: RunId,
) -> Result<(RunInputs, Report), RebuildError> {
    let started = chain::started_of(store, run)?.ok_or(RebuildError::NoSuchRun(run))?;
    let mut report = Report::default();
    let mut fold = RunInputsFold::default();
    let incremental = started.base.is_some();
    store.visit_run(
        run,
        &|k| Report::uses(k) || (!incremental && RunInputsFold::uses(k)),
        &mut |env| {
            if Report::uses(env.event.kind()) {
                report.take(env.run, env.event.clone());
            }
            if !incremental && RunInputsFold::uses(env.event.kind()) {
                fold.take(env.run, env.event);
            }
        },
    )?;
    if !incremental {
        let inputs = fold.finish().map_err(|e| RebuildError::Malformed {
            run,
            reason: e.to_string(),
        })?;
        return Ok((inputs, report));
    }
    let rebuilt = rebuild(store, run)?;
    if report.status == Some(RunStatus::Completed)
        || (report.status == Some(RunStatus::Aborted) && !report.entries.is_empty())
    {
        report.entries = merge(rebuilt.plan.entries, std::mem::take(&mut report.entries));
    }
    Ok((rebuilt.inputs, report))
}

/// What a run decides from, as its recorded inputs say (its own rules, its target's).
fn decide_inputs(inputs: &RunInputs) -> Inputs<'_> {
    Inputs {
        tenant: &inputs.started.tenant_id,
        snapshot: &inputs.snapshot,
        server: &inputs.server,
        options: &inputs.started.options,
        baseline: inputs.started.baseline.as_ref(),
        group_details: inputs.started.target.keeps_group_details(),
        unkept: inputs.started.target.unkept(),
        rules: inputs.started.rules,
    }
}

/// What run `run` decided (or, refused, would have done) from its recorded inputs: its inputs
/// and its plan, decided again under the run's own rules — for a run a safety limit refused,
/// the plan the admin approves with `roster apply RUN --approve`.
pub fn planned(store: &dyn EventStore, run: RunId) -> Result<(RunInputs, Plan), RebuildError> {
    let started = chain::started_of(store, run)?.ok_or(RebuildError::NoSuchRun(run))?;
    if started.base.is_some() {
        let rebuilt = rebuild(store, run)?;
        return Ok((rebuilt.inputs, rebuilt.plan));
    }
    let (inputs, _) = inputs_and_report(store, run)?;
    let plan = decide::decide(
        &decide_inputs(&inputs),
        &inputs.deleted,
        &inputs.choices,
        None,
    )
    .plan;
    Ok((inputs, plan))
}

/// The plan's entries, each replaced by the recorded one for the same entry where there is one
/// (what happened wins over what was decided: a failed write, say); recorded entries the plan
/// lacks are kept at the end.
pub fn merge(planned: Vec<EntryOutcome>, recorded: Vec<EntryOutcome>) -> Vec<EntryOutcome> {
    let mut by_key: HashMap<EntryKey, EntryOutcome> = recorded
        .into_iter()
        .map(|e| ((e.kind, e.id.clone()), e))
        .collect();
    let mut out: Vec<EntryOutcome> = planned
        .into_iter()
        .map(|e| by_key.remove(&(e.kind, e.id.clone())).unwrap_or(e))
        .collect();
    let mut rest: Vec<EntryOutcome> = by_key.into_values().collect();
    rest.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    out.extend(rest);
    out
}
