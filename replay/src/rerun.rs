//! `roster replay RUN`: re-derive a run from its recorded inputs and compare with what it
//! recorded. The run's events must verify first; then the snapshot, the server state and the
//! admin's choices the run saw are folded back, the selection and the deleted-object actions
//! are resolved again, and the planner decides again. Identical means: the same deleted
//! objects, the same choices, the same entries in the same order, the same refusal.

use engine::chain::object_digest;
use engine::compare::{compare_entries, EntryDifference};
use engine::decide::{self, Chosen, Inputs};
use engine::event::{
    ActionChosen, Change, EntryOutcome, Event, EventKind, Mode, ObjectDeleted, RunStatus,
    ServerEdited,
};
use engine::model::ServerOp;
use engine::plan::Plan;
use engine::projection::{Projection, Report, RunInputs, RunInputsFold};
use engine::store::EventStore;
use engine::RunId;
use serde::Serialize;

use crate::verify::{verify, VerifyError, VerifyOptions};

/// One way the replayed run differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs: an entry (`user Ann (id)`), or a step (`deleted objects`, `choices`, `refusal`).
    pub entry: String,
    pub recorded: String,
    pub replayed: String,
}

impl From<EntryDifference> for Difference {
    fn from(d: EntryDifference) -> Self {
        Difference {
            entry: format!("{} {} ({})", d.kind.as_str(), d.name, d.id),
            recorded: d.recorded.unwrap_or_else(|| "(no entry)".into()),
            replayed: d.replayed.unwrap_or_else(|| "(no entry)".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub run: RunId,
    pub mode: Mode,
    /// Entries compared.
    pub entries: usize,
    pub differences: Vec<Difference>,
    /// What limits the comparison, e.g. a run interrupted before it finished.
    pub note: Option<String>,
}

impl Replayed {
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("run {run} cannot be replayed: its events do not verify: {source}")]
    Unverified { run: RunId, source: VerifyError },
    #[error("run {0} is not in the log")]
    NoSuchRun(RunId),
    #[error("run {run} cannot be replayed: {reason}")]
    Malformed { run: RunId, reason: String },
    #[error(transparent)]
    Rebuild(crate::rebuild::RebuildError),
    #[error(transparent)]
    Store(#[from] engine::StoreError),
}

impl From<crate::rebuild::RebuildError> for ReplayError {
    fn from(e: crate::rebuild::RebuildError) -> Self {
        match e {
            crate::rebuild::RebuildError::Store(s) => ReplayError::Store(s),
            crate::rebuild::RebuildError::NoSuchRun(run) => ReplayError::NoSuchRun(run),
            other => ReplayError::Rebuild(other),
        }
    }
}

pub fn replay_run(store: &dyn EventStore, run: RunId) -> Result<Replayed, ReplayError> {
    let Some((_, last)) = store.run_ends(run)? else {
        return Err(ReplayError::NoSuchRun(run));
    };
    // Verifying the log up to the run and re-deciding the run are independent: do both at
    // once, and answer with the replay only if the verification holds.
    std::thread::scope(|scope| {
        let verified = scope.spawn(move || {
            let started = std::time::Instant::now();
            let verified = verify(
                store,
                &VerifyOptions {
                    noted_head: None,
                    until: Some(last),
                },
            );
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "verified the log up to the run"
            );
            verified
        });
        let replayed = compare_with_record(store, run);
        match verified.join() {
            Ok(Ok(_)) => replayed,
            Ok(Err(source)) => Err(ReplayError::Unverified { run, source }),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// An administrator's action (`server enable|disable LOGIN`) decided again from what was asked:
/// the op and the change it records must be the ones the action makes — since the server
/// keeps who disabled a user, the user's record with `enabled` and `disabledBy` as asked (and
/// a change for each that moved); before, `SetUserEnabled` and the one change.
fn compare_edit(run: RunId, e: &ServerEdited) -> Replayed {
    let asked = e.action.split_once(' ').and_then(|(verb, login)| {
        let enabled = match verb {
            "enable" => true,
            "disable" => false,
            _ => return None,
        };
        let enabled_change = Change {
            field: "enabled".into(),
            from: (!enabled).into(),
            to: enabled.into(),
        };
        Some(match &e.op {
            ServerOp::PutUser {
                previous_login: None,
                user,
            } if engine::ids::fold_case(&user.login) == engine::ids::fold_case(login) => {
                let held = (!enabled).then_some(engine::model::DisabledBy::Administrator);
                let by = |d: bool| {
                    if d {
                        serde_json::Value::from("administrator")
                    } else {
                        serde_json::Value::Null
                    }
                };
                let mut changes = Vec::new();
                let moved = e.changes.iter().any(|c| c.field == "enabled");
                let held_moved = e.changes.iter().any(|c| c.field == "disabledBy");
                if moved || !held_moved {
                    changes.push(enabled_change);
                }
                if held_moved {
                    changes.push(Change {
                        field: "disabledBy".into(),
                        from: by(enabled),
                        to: by(!enabled),
                    });
                }
                let mut op = (**user).clone();
                op.enabled = enabled;
                op.disabled_by = held;
                (
                    ServerOp::PutUser {
                        previous_login: None,
                        user: std::sync::Arc::new(op),
                    },
                    changes,
                )
            }
            _ => (
                ServerOp::SetUserEnabled {
                    login: login.to_owned(),
                    enabled,
                },
                vec![enabled_change],
            ),
        })
    });
    let differences = match asked {
        Some((op, changes)) if op == e.op && changes == e.changes => Vec::new(),
        _ => vec![Difference {
            entry: format!("server {}", e.action),
            recorded: serde_json::to_string(&(&e.op, &e.changes)).unwrap_or_default(),
            replayed: match asked {
                Some(a) => serde_json::to_string(&a).unwrap_or_default(),
                None => "an action roster does not know".into(),
            },
        }],
    };
    Replayed {
        run,
        mode: Mode::Apply,
        entries: 1,
        differences,
        note: Some(format!(
            "an administrator's action, not an import: `roster server {}` by {}",
            e.action, e.by
        )),
    }
}

/// What the run's inputs decide when decided again.
struct DecidedAgain {
    inputs: RunInputs,
    /// The observe step: deleted objects found.
    deleted: Vec<ObjectDeleted>,
    /// The choose step: the selection and the deleted-object actions, or why they cannot be
    /// resolved.
    choices: Result<Vec<ActionChosen>, String>,
    /// The decide step, from the recorded choices.
    plan: Plan,
}

/// Decides the run again from its recorded inputs alone, through the pipeline a run takes:
/// choose again (to compare with the recorded choices), and plan from the recorded choices
/// (to compare with the recorded outcomes).
fn decide_again(inputs: RunInputs) -> DecidedAgain {
    let started = &inputs.started;
    let decide_from = Inputs {
        tenant: &started.tenant_id,
        snapshot: &inputs.snapshot,
        server: &inputs.server,
        options: &started.options,
        baseline: started.baseline.as_ref(),
        group_details: started.target.keeps_group_details(),
        unkept: started.target.unkept(),
        rules: started.rules,
    };
    let Chosen { deleted, choices } = decide::choose(&decide_from, &started.selection);
    let plan = decide::decide(&decide_from, &deleted, &inputs.choices, None).plan;
    DecidedAgain {
        choices: choices.map_err(|e| e.to_string()),
        inputs,
        deleted,
        plan,
    }
}

/// An incremental run: its chain folded into its complete inputs (checked against its digest),
/// decided again, and compared with what it recorded — the entries worth recording.
fn compare_incremental(store: &dyn EventStore, run: RunId) -> Result<Replayed, ReplayError> {
    let rebuilt = crate::rebuild::rebuild(store, run)?;
    let mut recorded = Report::default();
    store.visit_run(run, &|k| Report::uses(k), &mut |env| {
        recorded.take(env.run, env.event)
    })?;
    let expected = rebuilt.expected_records();
    let every = match rebuilt.plan.refusal {
        None => rebuilt.plan.entries.len(),
        Some(_) => 0,
    };
    let mut plan = rebuilt.plan;
    plan.entries = expected;
    let Chosen { deleted, choices } = rebuilt.chosen;
    let mut replayed = judge(
        run,
        recorded,
        Outcomes::InReport,
        DecidedAgain {
            inputs: rebuilt.inputs,
            deleted,
            choices: choices.map_err(|e| e.to_string()),
            plan,
        },
    )?;
    // The entries it did not record were decided again too: as the chain says they were.
    if replayed.note.is_none() {
        replayed.entries = every;
    }
    Ok(replayed)
}

/// Folds the run's recorded inputs, decides again, and compares with what it recorded.
fn compare_with_record(store: &dyn EventStore, run: RunId) -> Result<Replayed, ReplayError> {
    if let Some((first, _)) = store.run_ends(run)? {
        let one = |note: String| Replayed {
            run,
            mode: Mode::Apply,
            entries: 1,
            differences: Vec::new(),
            note: Some(note),
        };
        match store.read_event(first)?.map(|e| e.event) {
            Some(Event::ServerEdited(e)) => return Ok(compare_edit(run, &e)),
            // Nothing to decide again: what it recorded is checked where it is used (the
            // server a restore brings, the lines of a backup).
            Some(Event::ServerLoaded(l)) => {
                return Ok(one(format!(
                    "an administrator's action, not an import: `roster server load {}` by {}",
                    l.file, l.by
                )))
            }
            Some(Event::BackupTaken(b)) => {
                return Ok(one(format!("a backup taken by {}, not an import", b.by)))
            }
            Some(Event::ProblemAcknowledged(a)) => {
                return Ok(one(format!(
                    "an administrator's acknowledgement, not an import: {} acknowledged the {} of {} {} in org {}",
                    a.by,
                    a.outcome.as_str(),
                    a.kind.as_str(),
                    a.name,
                    a.org
                )))
            }
            Some(Event::AcknowledgementWithdrawn(w)) => {
                return Ok(one(format!(
                    "an administrator's withdrawal of an acknowledgement, not an import: by {}, of {} {} in org {}",
                    w.by,
                    w.kind.as_str(),
                    w.name,
                    w.org
                )))
            }
            _ => {}
        }
    }
    if engine::chain::started_of(store, run)?.is_some_and(|s| s.base.is_some()) {
        return compare_incremental(store, run);
    }
    let clock = std::time::Instant::now();
    let lap = |what: &str| {
        tracing::debug!(elapsed_ms = clock.elapsed().as_millis() as u64, "{what}");
    };
    let malformed = |reason: String| ReplayError::Malformed { run, reason };
    // One pass over the run, each event folded as it is decoded, by value. A run records its
    // inputs before any outcome, so at its first outcome the inputs are complete: this thread
    // decides the run again while another reads on and folds the recorded outcomes.
    let (recorded, outcomes, decided_again) = std::thread::scope(|scope| {
        let (inputs_tx, inputs_rx) = std::sync::mpsc::sync_channel(1);
        let reading = scope.spawn(move || {
            let mut recorded = Report::default();
            let mut outcomes: Vec<[u8; 16]> = Vec::new();
            let mut inputs = Some(RunInputsFold::default());
            let mut late_input = None;
            store.visit_run(run, &|_| true, &mut |env| {
                if matches!(env.event, Event::RunStarted(_)) {
                    recorded.take(env.run, env.event.clone());
                }
                if RunInputsFold::uses(env.event.kind()) {
                    match inputs.as_mut() {
                        Some(fold) => fold.take(env.run, env.event),
                        None => {
                            late_input.get_or_insert((env.seq, env.event.type_name()));
                        }
                    }
                    return;
                }
                if let Event::Planned(e) | Event::Imported(e) = &env.event {
                    if let Some(fold) = inputs.take() {
                        lap("read the inputs");
                        outcomes.reserve(fold.choices_seen());
                        // Cannot fail: the receiver is dropped only after this thread is
                        // joined (or while a panic unwinds, which ends the replay anyway).
                        let _ = inputs_tx.send(fold);
                    }
                    outcomes.push(object_digest(e));
                    return;
                }
                recorded.take(env.run, env.event);
            })?;
            lap("read, decoded and folded the run");
            Ok::<_, ReplayError>((recorded, outcomes, inputs, late_input))
        });
        // The inputs, at the first outcome; or none when the reading ends without one.
        let early = inputs_rx
            .recv()
            .ok()
            .map(|fold| fold.finish().map(decide_again));
        let (recorded, outcomes, inputs, late_input) = reading
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        if let Some((seq, name)) = late_input {
            return Err(malformed(format!(
                "event {seq} ({name}) records an input after the run's first outcome; roster records every input first"
            )));
        }
        let decided_again = match (inputs, early) {
            (Some(fold), _) => fold.finish().map(decide_again),
            (None, Some(early)) => early,
            (None, None) => unreachable!("the inputs are taken only to be decided"),
        };
        Ok((
            recorded,
            outcomes,
            decided_again.map_err(|e| malformed(e.to_string()))?,
        ))
    })?;
    lap("decided again");
    let inputs = &decided_again.inputs;
    crate::rebuild::check_digest(run, run, &inputs.started, &inputs.snapshot, &inputs.server)?;
    lap("checked the inputs' digest");
    judge(
        run,
        recorded,
        Outcomes::Digests(outcomes, store),
        decided_again,
    )
}

/// The outcomes a run recorded, as `judge` compares them.
enum Outcomes<'s> {
    /// In the report (an incremental run's: the few worth recording).
    InReport,
    /// Each one's digest, in order, and the store to read them from again should they differ
    /// from what is decided again: a large run's outcomes are not held beside its inputs and
    /// the plan made again.
    Digests(Vec<[u8; 16]>, &'s dyn EventStore),
}

/// Each entry's digest, on two threads.
fn digests(entries: &[EntryOutcome]) -> Vec<[u8; 16]> {
    let (a, b) = entries.split_at(entries.len() / 2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| a.iter().map(object_digest).collect::<Vec<_>>());
        let second: Vec<_> = b.iter().map(object_digest).collect();
        let mut all = first
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        all.extend(second);
        all
    })
}

/// The outcomes a run recorded, read again.
fn recorded_outcomes(store: &dyn EventStore, run: RunId) -> Result<Vec<EntryOutcome>, ReplayError> {
    let mut entries = Vec::new();
    let outcome = |k: EventKind| matches!(k, EventKind::Planned | EventKind::Imported);
    store.visit_run(run, &outcome, &mut |env| {
        if let Event::Planned(e) | Event::Imported(e) = env.event {
            entries.push(e);
        }
    })?;
    Ok(entries)
}

/// Compares what a run recorded with what its inputs decide again.
fn judge(
    run: RunId,
    recorded: Report,
    outcomes: Outcomes<'_>,
    decided_again: DecidedAgain,
) -> Result<Replayed, ReplayError> {
    let DecidedAgain {
        inputs,
        deleted,
        choices,
        plan: decided,
    } = decided_again;
    let status = recorded.status;
    let started = &inputs.started;
    let mut differences: Vec<Difference> = Vec::new();
    let mut note = None;

    let recorded_count = match &outcomes {
        Outcomes::InReport => recorded.entries.len(),
        Outcomes::Digests(digests, _) => digests.len(),
    };
    // An aborted run may have stopped before deciding anything: then there is nothing to compare.
    let nothing_decided = |why: &str| Replayed {
        run,
        mode: started.mode,
        entries: 0,
        differences: Vec::new(),
        note: Some(format!(
            "{why}: {}",
            recorded.reason.clone().unwrap_or_default()
        )),
    };
    if status == Some(RunStatus::Aborted) {
        if started.source.fingerprint.is_empty() {
            // Aborted while reading the tenant.
            return Ok(nothing_decided("aborted before any decision"));
        }
        if recorded_count == 0 {
            // Stopped while it was still recording what it read.
            return Ok(nothing_decided("stopped before any decision was recorded"));
        }
    }

    if deleted != inputs.deleted {
        differences.push(Difference {
            entry: "deleted objects".into(),
            recorded: names(inputs.deleted.iter().map(|d| &d.name)),
            replayed: names(deleted.iter().map(|d| &d.name)),
        });
    }
    let recorded_choices = &inputs.choices;
    match choices {
        Ok(replayed) => {
            if &replayed != recorded_choices {
                let show = |c: &[ActionChosen]| {
                    names(
                        c.iter()
                            .map(|c| format!("{} {}", c.action.as_str(), c.name))
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                };
                differences.push(Difference {
                    entry: "choices".into(),
                    recorded: show(recorded_choices),
                    replayed: show(&replayed),
                });
            }
        }
        Err(e) => differences.push(Difference {
            entry: "choices".into(),
            recorded: format!("{} choices", recorded_choices.len()),
            replayed: format!("not resolvable: {e}"),
        }),
    }

    let recorded_refusal =
        (status == Some(RunStatus::Refused)).then(|| recorded.reason.clone().unwrap_or_default());
    let replayed_refusal = decided.refusal.as_ref().map(|r| r.to_string());
    if recorded_refusal != replayed_refusal {
        differences.push(Difference {
            entry: "refusal".into(),
            recorded: recorded_refusal.unwrap_or_else(|| "not refused".into()),
            replayed: replayed_refusal.unwrap_or_else(|| "not refused".into()),
        });
    }
    let mut compared = 0;
    if decided.refusal.is_none() {
        let mut replayed = decided.entries;
        if status.is_none() {
            // Interrupted: compare what was recorded with the same number of decisions.
            note = Some(format!(
                "the run was interrupted after {recorded_count} of {} entries; the recorded ones are compared",
                replayed.len()
            ));
            replayed.truncate(recorded_count);
        }
        compared = replayed.len();
        let recorded_entries = match outcomes {
            Outcomes::InReport => Some(recorded.entries),
            Outcomes::Digests(d, _) if d.len() == replayed.len() && d == digests(&replayed) => None,
            Outcomes::Digests(_, store) => Some(recorded_outcomes(store, run)?),
        };
        if let Some(entries) = recorded_entries {
            differences.extend(
                compare_entries(&entries, &replayed)
                    .into_iter()
                    .map(Difference::from),
            );
        }
    }
    Ok(Replayed {
        run,
        mode: started.mode,
        entries: compared,
        differences,
        note,
    })
}

fn names<'a, S: AsRef<str> + 'a>(items: impl Iterator<Item = &'a S>) -> String {
    let all: Vec<&str> = items.map(|s| s.as_ref()).collect();
    if all.is_empty() {
        "(none)".into()
    } else {
        all.join(", ")
    }
}
