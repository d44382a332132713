//! One run of the import wizard, from reading the tenant to the report: the I/O shell around
//! the engine's pure planner.
//!
//! Steps, each appended to the log atomically:
//! 1. *observe*: `RunStarted`, every object seen (Entra, recycle bin, server), `ObjectDeleted`;
//! 2. *choose*: one `ActionChosen` per selected entry and per deleted object;
//! 3. *decide*: `Planned` per entry (dry run), or `Imported` per entry committed with its server
//!    change (import);
//! 4. *finish*: `RunFinished` (completed, refused or aborted), then a flush. Only then is the
//!    outcome reported.
//!
//! Every check of the admin's input happens before step 1: bad input writes nothing.

use std::borrow::Cow;

use engine::chain::{self, mirror as kept};
use engine::compare::EntryDifference;
use engine::decide::{self, Chosen, Decided, Inputs, Reviewed};
use engine::event::{
    EntryOutcome, Event, Listed, Mode, ObjectDeleted, RunFinished, RunOptions, RunStarted,
    RunStatus, SelectionSpec, SourceInfo, Summary, DECISION_RULES,
};
use engine::model::Completeness;
use engine::plan::Refusal;
use engine::projection::seen_events;
use engine::store::MirrorWrite;
use engine::{EventStore, RunId, SledStore, StoreError, ENGINE_VERSION};

use adapters::clock::Clock;
use adapters::error::{Error, Result};
use adapters::interrupt::Interrupt;
use adapters::org::OrgConfig;
use adapters::source::{Mirror, TenantSource};
use adapters::target::Target;

use crate::history::{
    last_complete_read, last_completed_run, last_whole_read, unkept_seen, WHOLE_READ_EVERY,
};
use crate::mirror::{self, BaseFrom};
use crate::recover::close_run;

/// What the admin asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub mode: Mode,
    pub selection: SelectionSpec,
    pub options: RunOptions,
    /// The operating-system user running roster.
    pub started_by: String,
    pub applied_from: Option<RunId>,
    /// A refused run imported as reviewed: who approved which refusal (`apply --approve`).
    pub approved: Option<Box<engine::event::Approval>>,
    /// The entries of the dry run being applied (`roster apply`): the import goes ahead only
    /// if it decides exactly these.
    pub reviewed: Option<Vec<EntryOutcome>>,
    /// Record everything (a full run) even when the org has a base to record differences from.
    pub full: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Completed,
    Refused(Refusal),
    Aborted(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub run: RunId,
    pub mode: Mode,
    pub entries: Vec<EntryOutcome>,
    pub deleted: Vec<ObjectDeleted>,
    pub end: RunEnd,
    /// Non-fatal oddities met while reading the tenant.
    pub problems: Vec<String>,
    /// When a reviewed plan went stale: how today's decisions differ from the reviewed ones.
    pub stale: Vec<EntryDifference>,
    /// The run an incremental run recorded its differences from; `None` for a full run.
    pub base: Option<RunId>,
    /// Per entry, whether the run recorded its outcome (a full run records every one).
    pub recorded: Vec<bool>,
    /// The run whose Graph delta links the read followed (it read only the changes).
    pub changes_since: Option<RunId>,
    /// Who started the run, and whom Graph was read as, as recorded.
    pub started_by: String,
    pub signed_in_as: Option<String>,
    /// Where an incremental run's base came from: the mirror kept in the store, or the log.
    pub base_from: Option<BaseFrom>,
}

impl RunResult {
    pub fn summary(&self) -> Summary {
        Summary::of(&self.entries)
    }

    /// The entries the run recorded (every entry of a full run).
    pub fn recorded_entries(&self) -> Vec<EntryOutcome> {
        self.entries
            .iter()
            .zip(&self.recorded)
            .filter(|(_, r)| **r)
            .map(|(e, _)| e.clone())
            .collect()
    }
}

/// Runs the wizard once: plan (dry run) or plan and apply (import). `stop` asked for (Ctrl-C)
/// ends the run at its next safe point, recorded as aborted with what it did and did not do.
pub fn execute(
    store: &SledStore,
    org: &OrgConfig,
    source: &dyn TenantSource,
    target: &mut dyn Target,
    req: &RunRequest,
    clock: &dyn Clock,
    stop: &Interrupt,
) -> Result<RunResult> {
    if !req.options.check_deleted && !req.options.actions.is_empty() {
        return Err(Error::bad_input(
            "--action needs --check-deleted: deleted objects are only looked for with it",
        ));
    }
    // What earlier runs saw this server not keep is neither written nor compared again.
    // The org's last completed run against this server: the base of an incremental run, and
    // what it saw the server not keep. (A SCIM target's info before and after `inherit` names
    // the same server.)
    let last_run = last_completed_run(store, org, &target.info())?;
    target.inherit(&unkept_seen(store, last_run.as_ref())?);
    let target_info = target.info();
    let baseline = last_complete_read(store, org)?;
    let phase = std::time::Instant::now();
    let lap = |what: &str| {
        // Time per step, for `ROSTER_LOG=app=debug` and the benchmarks (which measure memory
        // from outside, with GNU time).
        tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "{what}")
    };
    // The base an incremental run records against, taken first — from the org's mirror in the
    // store, or folded from the log (folded while the tenant is read, it would only compete
    // with that read for the two cores, and the peak memory is the sum of both); none for a
    // full run.
    // A source that tracks changes (Graph delta) reads only what changed since the base, when
    // the base's read left links to resume from: the base's Entra objects are then taken
    // whole, and handed to the source to apply the changes to.
    let mut entra_base = None;
    let mut base_from = None;
    let mut notes = Vec::new();
    let step = |what: &str| tracing::info!(target: engine::PROGRESS, "{what}");
    step("reading the org's last run");
    let base = match (req.full, last_run) {
        (false, Some((run, started))) => {
            let mut links = started
                .source
                .delta_links
                .clone()
                .filter(|_| resumable(source, &started.source));
            // However sound each change listing, the tenant is read whole again now and then:
            // nothing a read got wrong outlives a day.
            if links.is_some() {
                if let Some(whole) = last_whole_read(store, org, run)? {
                    let age = clock.now() - whole;
                    if age > WHOLE_READ_EVERY {
                        links = None;
                        notes.push(format!(
                            "the tenant was last read whole {} hours ago; read whole again (roster does so at least every {} hours)",
                            age.num_hours(),
                            WHOLE_READ_EVERY.num_hours()
                        ));
                    }
                }
            }
            let (base, entra, from) =
                mirror::base(store, org, &target_info, run, &started, links.is_some())?;
            if let (Some(links), Some((users, groups))) = (links, entra) {
                entra_base = Some(Mirror {
                    run,
                    users,
                    groups,
                    links,
                });
            }
            base_from = Some(from);
            lap("took the base");
            Some(base)
        }
        _ => None,
    };
    let started = |source_info: SourceInfo| RunStarted {
        org: org.name.clone(),
        tenant_id: org.tenant_id.clone(),
        mode: req.mode,
        started_by: req.started_by.clone(),
        engine_version: ENGINE_VERSION.to_owned(),
        source: source_info,
        target: target_info.clone(),
        selection: req.selection.clone(),
        options: req.options.clone(),
        applied_from: req.applied_from,
        baseline,
        base: None,
        inputs_digest: None,
        rules: DECISION_RULES,
        approved: req.approved.clone(),
    };

    // The tenant and the server are read at once: neither depends on the other, and on a
    // large tenant each takes about a second. A failed tenant read still wins: it is recorded.
    let shared: &dyn Target = target;
    step("reading the tenant and the server");
    let (read, server) = std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let server = shared.load();
            lap("loaded the server");
            server
        });
        let read = match entra_base {
            Some(base) => source.read_changes(base),
            None => source.read(),
        };
        lap("read the tenant");
        // Asked to stop while a file was read: the run stops as a read cut short would.
        let read = read.and_then(|loaded| match stop.requested() {
            true => Err(Error::Interrupted),
            false => Ok(loaded),
        });
        let server = server
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, server)
    });
    let mut loaded = match read {
        Ok(loaded) => loaded,
        Err(failure) if failure.is_source_failure() => {
            // Graph failed: record the attempt as aborted, change nothing.
            let reason = failure.to_string();
            let at = clock.now();
            let run = clock.new_run_id(at);
            let info = SourceInfo {
                kind: source.kind(),
                location: source.location(),
                fingerprint: String::new(),
                completeness: Completeness {
                    users: false,
                    groups: false,
                    deleted_items: false,
                },
                problems: Vec::new(),
                listed: None,
                delta_links: None,
                changes_since: None,
                signed_in_as: source.signed_in_as(),
            };
            let events = [
                Event::RunStarted(started(info)),
                Event::RunFinished(RunFinished {
                    status: RunStatus::Aborted,
                    summary: Summary::default(),
                    reason: Some(reason.clone()),
                    learned: Vec::new(),
                }),
            ];
            store.append(run, at, &events)?;
            store.flush()?;
            return Err(Error::Aborted {
                run,
                cause: Box::new(failure),
            });
        }
        Err(e) => return Err(e),
    };
    loaded.problems.splice(0..0, notes);
    let snapshot = loaded.snapshot;
    if snapshot.tenant_id != org.tenant_id {
        return Err(Error::bad_input(format!(
            "{}: tenantId {} is not org {}'s tenant {}",
            source.location(),
            snapshot.tenant_id,
            org.name,
            org.tenant_id
        )));
    }
    let server = server?;
    lap("read the tenant and loaded the server");
    step("choosing: the selection and the deleted objects");
    let mut base = base.filter(|b| b.length < chain::MAX_CHAIN);
    // Only a complete read is recorded by difference: "no longer listed" needs a whole list.
    if snapshot.completeness != Completeness::COMPLETE {
        base = None;
    }

    let chosen = decide::choose(
        &Inputs {
            tenant: &org.tenant_id,
            snapshot: &snapshot,
            server: &server,
            options: &req.options,
            baseline: baseline.as_ref(),
            group_details: target_info.keeps_group_details(),
            unkept: target_info.unkept(),
            rules: DECISION_RULES,
        },
        &req.selection,
    );
    let Chosen { deleted, choices } = chosen;
    let choices = choices.map_err(|e| Error::bad_input(e.to_string()))?;
    lap("chose: the selection and the deleted objects");
    let base_run = base.as_ref().map(|b| b.run);
    // The chain the next run's base continues: this run's base's, or this run's own.
    let chained = base.as_ref().map(|b| (b.full, b.length));
    // What the run records before deciding is known now; its outcomes at least one per
    // choice. A run that cannot fit is refused before it writes anything (a second check,
    // once the plan is known, comes before any outcome or server change).
    let recorded_first = 2
        + snapshot.users.len()
        + snapshot.groups.len()
        + snapshot.deleted_users.len()
        + snapshot.deleted_groups.len()
        + server.users().len()
        + server.groups().len()
        + deleted.len()
        + choices.len();
    store.check_room_for_run((recorded_first + choices.len()) as u64, 0)?;
    // The planner runs on a second thread while this one records what was read and chosen:
    // both only read the snapshot and the server, and on a large tenant each takes seconds.
    let at = clock.now();
    let run = clock.new_run_id(at);
    step(&format!(
        "planning {} entries, recording what was read",
        choices.len()
    ));
    let outcome = (|| -> Result<RunResult> {
        let (decided, recorded) = std::thread::scope(|scope| {
            let reviewed = req.reviewed.as_deref().map(|entries| Reviewed {
                run: req.applied_from.unwrap_or(RunId(uuid::Uuid::nil())),
                entries,
            });
            let inputs = Inputs {
                tenant: &org.tenant_id,
                snapshot: &snapshot,
                server: &server,
                options: &req.options,
                baseline: baseline.as_ref(),
                group_details: target_info.keeps_group_details(),
                unkept: target_info.unkept(),
                rules: DECISION_RULES,
            };
            let (deleted, choices) = (&deleted, &choices);
            let planner = scope.spawn(move || decide::decide(&inputs, deleted, choices, reviewed));
            let recorded = (|| -> Result<_> {
                // What the run records of its inputs, computed while the planner runs: the
                // digest of them all, and an incremental run's differences from its base
                // (the base's outcomes stay, to tell which outcomes differ; the rest goes).
                // Each object is serialized once for the digests and the comparison.
                let digests = chain::digest_inputs(
                    &snapshot,
                    &server,
                    &req.selection,
                    &req.options,
                    base.is_some(),
                );
                let (fingerprint, digest) = (digests.fingerprint.clone(), digests.inputs.clone());
                lap("digested the inputs");
                let (differences, digested, last_outcomes) = match base.take() {
                    Some(b) => {
                        let (diffs, digested) =
                            b.differences(&snapshot, &server, deleted, choices, &digests);
                        lap("compared with the base");
                        (Some(diffs), Some(digested), Some(b.into_outcomes()))
                    }
                    None => (None, None, None),
                };
                // A live org's next run reads the changes since this one: its mirror keeps
                // the Entra objects whole to apply them to.
                let whole = loaded
                    .tracking
                    .links
                    .as_ref()
                    .map(|_| kept::encode_whole(&snapshot.users, &snapshot.groups));
                // 1. observe
                let info = SourceInfo {
                    kind: source.kind(),
                    location: source.location(),
                    fingerprint: fingerprint.clone(),
                    completeness: snapshot.completeness,
                    problems: loaded.problems.clone(),
                    listed: Some(Listed {
                        users: u32::try_from(snapshot.users.len()).unwrap_or(u32::MAX),
                        groups: u32::try_from(snapshot.groups.len()).unwrap_or(u32::MAX),
                    }),
                    delta_links: loaded.tracking.links.clone(),
                    changes_since: loaded.tracking.since,
                    signed_in_as: source.signed_in_as(),
                };
                let mut first = started(info);
                first.base = base_run;
                first.inputs_digest = Some(digest.clone());
                let run_started = first.clone();
                let first = std::iter::once(Event::RunStarted(first));
                match &differences {
                    None => {
                        let mut observed = first
                            .chain(seen_events(&snapshot, &server))
                            .chain(deleted.iter().cloned().map(Event::ObjectDeleted))
                            .map(Cow::Owned);
                        store.commit_stream(run, at, &mut observed, &[])?;
                        lap("recorded what was read");
                        // 2. choose
                        let mut chosen = choices
                            .iter()
                            .cloned()
                            .map(|c| Cow::Owned(Event::ActionChosen(c)));
                        store.commit_stream(run, clock.now(), &mut chosen, &[])?;
                    }
                    Some(diffs) => {
                        let is_choice = |e: &Event| {
                            matches!(e, Event::ActionChosen(_) | Event::ChoiceWithdrawn(_))
                        };
                        let mut observed = first
                            .map(Cow::Owned)
                            .chain(diffs.iter().filter(|e| !is_choice(e)).map(Cow::Borrowed));
                        store.commit_stream(run, at, &mut observed, &[])?;
                        lap("recorded what differs from the base");
                        // 2. choose
                        let mut chosen = diffs.iter().filter(|e| is_choice(e)).map(Cow::Borrowed);
                        store.commit_stream(run, clock.now(), &mut chosen, &[])?;
                    }
                }
                lap("recorded the choices");
                Ok((last_outcomes, digested, whole, run_started))
            })();
            let decided = planner
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (decided, recorded)
        });
        let (mut last_outcomes, digested, whole, run_started) = recorded?;
        let Decided {
            plan: decided,
            stale,
        } = decided;
        lap("planned");
        // What was read is recorded and decided on; the rest of the run needs only the plan.
        drop((snapshot, choices));

        // The plan's size is known: outcomes, and the server records they write into the store.
        let records = match (req.mode, &target_info) {
            (Mode::Apply, engine::event::TargetInfo::Embedded) => {
                decided.entries.iter().filter(|e| e.op.is_some()).count()
            }
            _ => 0,
        };
        if let Err(e) = store.check_room_for_run(decided.entries.len() as u64, records as u64) {
            return Err(e.into());
        }

        let finish = |status: RunStatus,
                      summary: Summary,
                      reason: Option<String>,
                      learned: Vec<String>,
                      next: Option<MirrorWrite>|
         -> Result<()> {
            let last = [Event::RunFinished(RunFinished {
                status,
                summary,
                reason,
                learned,
            })];
            match next {
                Some(next) => store.commit_with_mirror(run, clock.now(), &last, &next)?,
                None => store.append(run, clock.now(), &last)?,
            };
            store.flush()?;
            lap("finished");
            Ok(())
        };
        // The mirror a completed incremental run leaves: the chain's state after it, made of
        // what the run holds — its inputs as digests (computed to compare with its base), the
        // server with its recorded changes made, its base's last outcomes with its own. A full
        // run leaves none: digesting every object would cost it a third of its time, and its
        // next run folds it from the log once.
        let next_mirror = |entries: &[EntryOutcome],
                           recorded: &[bool],
                           digested: chain::Digested,
                           mut outcomes| {
            chain::record_outcomes(
                &mut outcomes,
                entries
                    .iter()
                    .zip(recorded)
                    .filter(|(_, r)| **r)
                    .map(|(e, _)| e),
            );
            let state =
                chain::ChainState::after_run(chained, run, run_started.clone(), digested, outcomes);
            let next = mirror::write(org, &target_info, &state, whole.as_deref());
            lap("made the mirror");
            next
        };
        let result = |entries: Vec<EntryOutcome>, recorded: Vec<bool>, end: RunEnd| RunResult {
            run,
            mode: req.mode,
            entries,
            deleted: deleted.clone(),
            end,
            problems: loaded.problems.clone(),
            stale: stale.clone(),
            base: base_run,
            recorded,
            changes_since: loaded.tracking.since,
            started_by: req.started_by.clone(),
            signed_in_as: source.signed_in_as(),
            base_from: base_from.clone().filter(|_| base_run.is_some()),
        };

        if let Some(refusal) = decided.refusal {
            finish(
                RunStatus::Refused,
                Summary::default(),
                Some(refusal.to_string()),
                Vec::new(),
                None,
            )?;
            return Ok(result(Vec::new(), Vec::new(), RunEnd::Refused(refusal)));
        }

        // Asked to stop before anything was decided for good: nothing is planned or applied.
        if stop.requested() {
            let why = "interrupted (Ctrl-C) before anything was applied; nothing was changed on the server".to_owned();
            finish(
                RunStatus::Aborted,
                Summary::default(),
                Some(why.clone()),
                Vec::new(),
                None,
            )?;
            return Ok(result(Vec::new(), Vec::new(), RunEnd::Aborted(why)));
        }

        // 3. decide: every outcome of a full run; an incremental run's worth recording.
        let recorded: Vec<bool> = match &last_outcomes {
            None => vec![true; decided.entries.len()],
            Some(last) => decided
                .entries
                .iter()
                .map(|e| {
                    chain::worth_recording(e, last.get(&(e.kind, e.id.clone())), DECISION_RULES)
                })
                .collect(),
        };
        match req.mode {
            Mode::DryRun => {
                step("recording the plan");
                // One entry copied at a time, as it is encoded: never the whole plan twice.
                let mut planned = decided
                    .entries
                    .iter()
                    .zip(&recorded)
                    .filter(|(_, r)| **r)
                    .map(|(e, _)| Cow::Owned(Event::Planned(e.clone())));
                store.commit_stream(run, clock.now(), &mut planned, &[])?;
                let next = digested
                    .zip(last_outcomes.take())
                    .map(|(d, last)| next_mirror(&decided.entries, &recorded, d, last));
                finish(
                    RunStatus::Completed,
                    Summary::of(&decided.entries),
                    None,
                    Vec::new(),
                    next,
                )?;
                Ok(result(decided.entries, recorded, RunEnd::Completed))
            }
            Mode::Apply => {
                // For the mirror: the server as read, its records shared (to tell which the run
                // replaced).
                let before = digested.as_ref().map(|_| server.clone());
                let mut state = server;
                // The target records what it is given; an entry not worth recording changes
                // nothing (every change is recorded), so it is kept aside and put back after.
                let mut aside = Vec::new();
                let mut given = Vec::new();
                for (i, e) in decided.entries.into_iter().enumerate() {
                    if recorded[i] {
                        given.push(e);
                    } else {
                        aside.push((i, e));
                    }
                }
                let applied = target.import(store, run, clock, &mut state, given, stop)?;
                lap("applied");
                // The server as the log has it after the run: as read, with the operations
                // the run recorded made.
                let after = before.as_ref().map(|before| {
                    let mut after = before.clone();
                    for op in applied.entries.iter().filter_map(|e| e.op.as_ref()) {
                        after.apply_quietly(op);
                    }
                    after
                });
                let mut entries = Vec::with_capacity(recorded.len());
                let (mut applied_entries, mut aside) =
                    (applied.entries.into_iter(), aside.into_iter().peekable());
                for i in 0..recorded.len() {
                    match aside.next_if(|(j, _)| *j == i) {
                        Some((_, e)) => entries.push(e),
                        None => entries.extend(applied_entries.next()),
                    }
                }
                let summary = Summary::of(&entries);
                // 4. finish
                match applied.failure {
                    None => {
                        let next = match (digested, last_outcomes.take(), before, after) {
                            (Some(d), Some(last), Some(before), Some(after)) => {
                                let d = d.with_server_after(&before, &after);
                                Some(next_mirror(&entries, &recorded, d, last))
                            }
                            _ => None,
                        };
                        finish(RunStatus::Completed, summary, None, applied.learned, next)?;
                        Ok(result(entries, recorded, RunEnd::Completed))
                    }
                    Some(why) => {
                        finish(
                            RunStatus::Aborted,
                            summary,
                            Some(why.clone()),
                            applied.learned,
                            None,
                        )?;
                        Ok(result(entries, recorded, RunEnd::Aborted(why)))
                    }
                }
            }
        }
    })();
    match outcome {
        // Out of room half-way: what was recorded stands (each step is atomic, and the space
        // check leaves room for this), and the run is closed saying why.
        Err(Error::Store(full @ StoreError::DiskFull { .. })) => {
            let reason = full.to_string();
            let _ = close_run(store, run, clock, &reason);
            Err(Error::Store(full))
        }
        other => other,
    }
}

/// Whether `source` can resume reading changes where the base's read left off: the same
/// Graph endpoint, after a complete read.
fn resumable(source: &dyn TenantSource, base: &SourceInfo) -> bool {
    source.tracks_changes()
        && base.kind == engine::event::SourceKind::Graph
        && base.location == source.location()
        && base.completeness == Completeness::COMPLETE
}
