//! One run of the import wizard, from reading the tenant to the report: the I/O shell around
//! the engine's pure planner.
//!
//! `execute` runs the steps, each a method of `Cx` (what every step reads) taking what the
//! steps before it found as one value: `take_base` (`Base`), `read_inputs` (`Read`), `choose`
//! (`ChosenRun`: from here on the run writes), `observe` (`Observed`), `decide_and_apply`
//! (`RunResult`). What they append to the log, each step atomically:
//! 1. *observe*: `RunStarted`, every object seen (Entra, recycle bin, server), `ObjectDeleted`;
//! 2. *choose*: one `ActionChosen` per selected entry and per deleted object;
//! 3. *decide*: `Planned` per entry (dry run), or `Imported` per entry committed with its server
//!    change (import);
//! 4. *finish*: `RunFinished` (completed, refused or aborted) — with the org's mirror when an
//!    incremental run completes — then a flush. Only then is the outcome reported.
//!
//! Every check of the admin's input happens before step 1: bad input writes nothing.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::chain::{self, mirror as kept, ChainState, Digested, EntryKey, LastOutcome};
use engine::compare::EntryDifference;
use engine::decide::{self, Chosen, Decided, Inputs, Reviewed};
use engine::difference::Changed;
use engine::event::{
    ActionChosen, Baseline, EntryOutcome, Event, Listed, Mode, ObjectDeleted, RunFinished,
    RunOptions, RunStarted, RunStatus, SelectionSpec, SourceInfo, Summary, TargetInfo,
    DECISION_RULES,
};
use engine::model::{Completeness, ServerState, TenantSnapshot};
use engine::plan::{Plan, Refusal};
use engine::projection::seen_events;
use engine::store::MirrorWrite;
use engine::{RunId, Store, StoreError, ENGINE_VERSION};

use adapters::clock::Clock;
use adapters::error::{Error, Result};
use adapters::fixture::Tracking;
use adapters::interrupt::Interrupt;
use adapters::org::OrgConfig;
use adapters::source::{Mirror, TenantSource};
use adapters::target::Target;

use crate::history::{
    last_complete_read, last_completed_run, last_whole_read, unkept_seen, WHOLE_READ_EVERY,
};
use crate::mirror::{self, BaseFrom};
use crate::recover::close_run;

mod repeat;

/// Why a run asked to stop before it changed anything ends: the same words for every run.
const STOPPED_BEFORE_APPLYING: &str =
    "interrupted (Ctrl-C) before anything was applied; nothing was changed on the server";

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
    /// Decide every entry, and return every one, even when the run's inputs are its base's
    /// (a run that prints or shows every entry: `--all`, the wizard); else such a run takes
    /// its base's decisions (see [`repeat`]).
    pub every_entry: bool,
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
    /// The entries the run decided: every one, unless its inputs were its base's (then only
    /// those it records again; the rest are counted in `not_decided`).
    pub entries: Vec<EntryOutcome>,
    /// How many deleted objects the run found.
    pub deleted: usize,
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
    /// The entries the run did not decide again, by outcome: their base's decisions stand
    /// (a run whose inputs were its base's, see [`repeat`]).
    pub not_decided: Summary,
}

impl RunResult {
    /// Every entry's outcome counted, those not decided again included.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.entries).plus(&self.not_decided)
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
///
/// The steps below — take the base, read the inputs, choose, observe (record what was read
/// while the planner decides), decide and apply, finish — each take what the steps before
/// them found, as one value; `ROSTER_LOG=app=debug` times each.
pub fn execute(
    store: &dyn Store,
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
    // The org's last completed run against this server: the base of an incremental run, and
    // what it saw the server not keep — neither written nor compared again. (A SCIM target's
    // info before and after `inherit` names the same server.)
    let last_run = last_completed_run(store, org, &target.info())?;
    target.inherit(&unkept_seen(store, last_run.as_ref())?);
    let cx = Cx {
        store,
        org,
        source,
        req,
        clock,
        stop,
        target_info: target.info(),
        baseline: last_complete_read(store, org)?,
        phase: std::time::Instant::now(),
    };
    let (run, outcome) = match repeat::settled(&cx, &*target, last_run.as_ref())? {
        Ok(settled) => {
            let at = clock.now();
            let run = clock.new_run_id(at);
            (run, cx.repeat(target, settled, run, at))
        }
        Err(why) => {
            tracing::debug!("the run reads its inputs: {why}");
            let base = cx.take_base(last_run)?;
            let read = cx.read_inputs(&*target, base)?;
            let chosen = cx.choose(read)?;
            let run = chosen.run;
            let outcome = cx
                .observe(chosen)
                .and_then(|observed| cx.decide_and_apply(target, observed));
            (run, outcome)
        }
    };
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

/// What every step of a run reads: the request, the org, where the run reads and writes, the
/// clock, and what the org's history says before the run.
struct Cx<'a> {
    store: &'a dyn Store,
    org: &'a OrgConfig,
    source: &'a dyn TenantSource,
    req: &'a RunRequest,
    clock: &'a dyn Clock,
    stop: &'a Interrupt,
    /// The server, as the run records it.
    target_info: TargetInfo,
    /// The org's last complete read: the shrink guard's baseline.
    baseline: Option<Baseline>,
    /// When the run began, for the laps.
    phase: std::time::Instant,
}

/// The base an incremental run records against (none for a full run): the chain's state after
/// the org's last completed run, and — for a live org that reads only the changes since — its
/// Entra objects whole. Notes say why the tenant is read whole again.
struct Base {
    chain: Option<ChainState>,
    entra: Option<Mirror>,
    from: Option<BaseFrom>,
    notes: Vec<String>,
}

/// What the run read: the tenant, the server, and the base it can record against.
struct Read {
    snapshot: TenantSnapshot,
    /// What the read was made of, hashed ([`adapters::fixture::Loaded::content`]).
    content: Option<String>,
    server: ServerState,
    problems: Vec<String>,
    tracking: Tracking,
    base: Base,
}

/// What the run chose, and its id: from here on it writes to the log.
struct ChosenRun {
    run: RunId,
    at: DateTime<Utc>,
    read: Read,
    deleted: Vec<ObjectDeleted>,
    choices: Vec<ActionChosen>,
}

/// What the run recorded of its inputs and decided: the plan, and what its mirror is made of.
struct Observed {
    run: RunId,
    plan: Plan,
    /// The entries a plan by difference did not decide again, by the outcome their chain
    /// implies (see [`engine::difference`]).
    not_decided: Summary,
    stale: Vec<EntryDifference>,
    server: ServerState,
    deleted: Vec<ObjectDeleted>,
    problems: Vec<String>,
    tracking: Tracking,
    base: Option<RecordedAgainst>,
    from: Option<BaseFrom>,
    started: RunStarted,
    /// A live org's Entra objects whole, as its mirror keeps them.
    whole: Option<Vec<u8>>,
}

/// What recording a run's inputs leaves for the rest of the run: its base (if it recorded by
/// difference), its `RunStarted`, and a live org's Entra objects as its mirror keeps them.
struct Recorded {
    against: Option<RecordedAgainst>,
    started: RunStarted,
    whole: Option<Vec<u8>>,
}

/// An incremental run's base, once its differences are recorded: what the next mirror is made
/// of.
struct RecordedAgainst {
    run: RunId,
    /// The chain's full run and length.
    chained: (RunId, usize),
    last: HashMap<EntryKey, LastOutcome>,
    digested: Digested,
    /// What the differences from the base name (what a plan by difference reaches from).
    changed: Changed,
}

impl Cx<'_> {
    /// The time so far, at the end of a step (see [`lap`]).
    fn lap(&self, what: &str) {
        lap(self.phase, what)
    }

    fn step(&self, what: &str) {
        tracing::info!(target: engine::PROGRESS, "{what}")
    }

    /// *finish*: the run's `RunFinished`, with the org's next mirror in the same batch when
    /// there is one, then a flush — only then is the outcome reported. The mirror is a cache:
    /// a disk too full to hold it finishes the run without one (nothing of that batch was
    /// written; the next run folds the log).
    fn finish_run(
        &self,
        run: RunId,
        finished: RunFinished,
        mirror: Option<&MirrorWrite>,
    ) -> Result<()> {
        let (store, clock) = (self.store, self.clock);
        let last = [Event::RunFinished(finished)];
        match mirror.map(|next| store.commit_with_mirror(run, clock.now(), &last, next)) {
            Some(Ok(_)) => {}
            Some(Err(StoreError::DiskFull { .. })) | None => {
                store.append(run, clock.now(), &last)?;
            }
            Some(Err(e)) => return Err(e.into()),
        }
        store.flush()?;
        self.lap("finished");
        Ok(())
    }

    /// The run's `RunStarted`, once what it read is known.
    fn started(&self, source: SourceInfo) -> RunStarted {
        let req = self.req;
        RunStarted {
            org: self.org.name.clone(),
            tenant_id: self.org.tenant_id.clone(),
            mode: req.mode,
            started_by: req.started_by.clone(),
            engine_version: ENGINE_VERSION.to_owned(),
            source,
            target: self.target_info.clone(),
            selection: req.selection.clone(),
            options: req.options.clone(),
            applied_from: req.applied_from,
            baseline: self.baseline,
            base: None,
            inputs_digest: None,
            rules: DECISION_RULES,
            approved: req.approved.clone(),
        }
    }

    /// The base an incremental run records against, taken first — from the org's mirror in
    /// the store, or folded from the log (folded while the tenant is read, it would only
    /// compete with that read for the two cores, and the peak memory is the sum of both);
    /// none for a full run. A source that tracks changes (Graph delta) reads only what changed
    /// since the base, when the base's read left links to resume from: the base's Entra
    /// objects are then taken whole, to apply the changes to.
    fn take_base(&self, last_run: Option<(RunId, RunStarted)>) -> Result<Base> {
        let mut base = Base {
            chain: None,
            entra: None,
            from: None,
            notes: Vec::new(),
        };
        self.step("reading the org's last run");
        let (false, Some((run, started))) = (self.req.full, last_run) else {
            return Ok(base);
        };
        let mut links = started
            .source
            .delta_links
            .clone()
            .filter(|_| resumable(self.source, &started.source));
        // However sound each change listing, the tenant is read whole again now and then:
        // nothing a read got wrong outlives a day.
        if links.is_some() {
            if let Some(whole) = last_whole_read(self.store, self.org, run)? {
                let age = self.clock.now() - whole;
                if age > WHOLE_READ_EVERY {
                    links = None;
                    base.notes.push(format!(
                        "the tenant was last read whole {} hours ago; read whole again (roster does so at least every {} hours)",
                        age.num_hours(),
                        WHOLE_READ_EVERY.num_hours()
                    ));
                }
            }
        }
        let (chain, entra, from) = mirror::base(
            self.store,
            self.org,
            &self.target_info,
            run,
            &started,
            links.is_some(),
        )?;
        if let (Some(links), Some((users, groups))) = (links, entra) {
            base.entra = Some(Mirror {
                run,
                users,
                groups,
                links,
            });
        }
        base.chain = Some(chain);
        base.from = Some(from);
        self.lap("took the base");
        Ok(base)
    }

    /// The tenant and the server, read at once: neither depends on the other, and on a large
    /// tenant each takes about a second. A failed tenant read still wins: it is recorded as an
    /// aborted run.
    fn read_inputs(&self, target: &dyn Target, mut base: Base) -> Result<Read> {
        self.step("reading the tenant and the server");
        let entra = base.entra.take();
        let (read, server) = std::thread::scope(|scope| {
            let phase = self.phase;
            let server = scope.spawn(move || {
                let server = target.load();
                lap(phase, "loaded the server");
                server
            });
            let read = match entra {
                Some(base) => self.source.read_changes(base),
                None => self.source.read(),
            };
            self.lap("read the tenant");
            // Asked to stop while a file was read: the run stops as a read cut short would.
            let read = read.and_then(|loaded| match self.stop.requested() {
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
            Err(failure) if failure.is_source_failure() => return Err(self.aborted(failure)?),
            Err(e) => return Err(e),
        };
        loaded
            .problems
            .splice(0..0, std::mem::take(&mut base.notes));
        let (org, snapshot) = (self.org, loaded.snapshot);
        if snapshot.tenant_id != org.tenant_id {
            return Err(Error::bad_input(format!(
                "{}: tenantId {} is not org {}'s tenant {}",
                self.source.location(),
                snapshot.tenant_id,
                org.name,
                org.tenant_id
            )));
        }
        let server = server?;
        self.lap("read the tenant and loaded the server");
        // A chain that is full is not continued; and only a complete read is recorded by
        // difference: "no longer listed" needs a whole list.
        if base
            .chain
            .as_ref()
            .is_some_and(|b| b.length >= chain::MAX_CHAIN)
            || snapshot.completeness != Completeness::COMPLETE
        {
            base.chain = None;
        }
        Ok(Read {
            snapshot,
            content: loaded.content,
            server,
            problems: loaded.problems,
            tracking: loaded.tracking,
            base,
        })
    }

    /// Graph failed: the attempt is recorded as an aborted run, and nothing changes.
    fn aborted(&self, failure: Error) -> Result<Error> {
        let reason = failure.to_string();
        let at = self.clock.now();
        let run = self.clock.new_run_id(at);
        let info = SourceInfo {
            kind: self.source.kind(),
            location: self.source.location(),
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
            signed_in_as: self.source.signed_in_as(),
            content: None,
        };
        let events = [
            Event::RunStarted(self.started(info)),
            Event::RunFinished(RunFinished {
                status: RunStatus::Aborted,
                summary: Summary::default(),
                reason: Some(reason),
                learned: Vec::new(),
            }),
        ];
        self.store.append(run, at, &events)?;
        self.store.flush()?;
        Ok(Error::Aborted {
            run,
            cause: Box::new(failure),
        })
    }

    fn inputs<'r>(&'r self, read: &'r Read) -> Inputs<'r> {
        Inputs {
            tenant: &self.org.tenant_id,
            snapshot: &read.snapshot,
            server: &read.server,
            options: &self.req.options,
            baseline: self.baseline.as_ref(),
            group_details: self.target_info.keeps_group_details(),
            unkept: self.target_info.unkept(),
            rules: DECISION_RULES,
        }
    }

    /// Whether the run decides again only the entries its changes reach (see
    /// [`engine::difference`]), recording against a base begun as `base`: when it returns
    /// only what it records, and decides under its base's rules, options and server.
    fn by_difference(&self, base: &RunStarted) -> bool {
        let req = self.req;
        let alike = base.rules == DECISION_RULES
            && base.engine_version == ENGINE_VERSION
            && base.tenant_id == self.org.tenant_id
            && base.target == self.target_info
            && base.options == req.options;
        let decides_all = req.every_entry || req.reviewed.is_some() || req.approved.is_some();
        alike && !decides_all
    }

    /// The selection and the deleted objects; then, the disk checked for what the run will
    /// record, its id. Bad input stops the run here, before anything is written.
    fn choose(&self, read: Read) -> Result<ChosenRun> {
        self.step("choosing: the selection and the deleted objects");
        let Chosen { deleted, choices } = decide::choose(&self.inputs(&read), &self.req.selection);
        let choices = choices.map_err(|e| Error::bad_input(e.to_string()))?;
        self.lap("chose: the selection and the deleted objects");
        // What the run records before deciding is known now; its outcomes at least one per
        // choice. A run that cannot fit is refused before it writes anything (a second check,
        // once the plan is known, comes before any outcome or server change).
        let (snapshot, server) = (&read.snapshot, &read.server);
        let recorded_first = 2
            + snapshot.users.len()
            + snapshot.groups.len()
            + snapshot.deleted_users.len()
            + snapshot.deleted_groups.len()
            + server.users().len()
            + server.groups().len()
            + deleted.len()
            + choices.len();
        self.store
            .check_room_for_run((recorded_first + choices.len()) as u64, 0)?;
        let at = self.clock.now();
        Ok(ChosenRun {
            run: self.clock.new_run_id(at),
            at,
            read,
            deleted,
            choices,
        })
    }

    /// *observe* and *choose*: what was read and chosen recorded (an incremental run: what
    /// differs from its base), while the planner decides on a second thread — both only read
    /// the snapshot and the server, and on a large tenant each takes seconds.
    fn observe(&self, chosen: ChosenRun) -> Result<Observed> {
        let ChosenRun {
            run,
            at,
            mut read,
            deleted,
            choices,
        } = chosen;
        let base = read.base.chain.take();
        let req = self.req;
        self.step(&format!(
            "planning {} entries, recording what was read",
            choices.len()
        ));
        let by_difference = base
            .as_ref()
            .is_some_and(|b| self.by_difference(&b.started));
        let (decided, recorded, not_decided) = match by_difference {
            // Deciding only what changed waits for the comparison that says what changed; what
            // the planner needs before it is made meanwhile, on the second core.
            true => std::thread::scope(|scope| {
                let inputs = self.inputs(&read);
                let (deleted, choices) = (&deleted, &choices);
                let preparing =
                    scope.spawn(move || decide::prepare_by_difference(&inputs, deleted, choices));
                let recorded = self.record_inputs(run, at, &read, base, deleted, choices);
                let prepared = preparing
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                self.lap("prepared to plan by difference");
                let recorded = recorded?;
                let Some(against) = &recorded.against else {
                    unreachable!("a run planned by difference recorded against its base")
                };
                let by = prepared.plan(&against.changed, &against.last);
                tracing::debug!(
                    "planned by difference: {} entries decided again",
                    by.plan.entries.len()
                );
                let decided = Decided {
                    plan: by.plan,
                    stale: Vec::new(),
                };
                Ok::<_, Error>((decided, Ok(recorded), by.not_decided))
            })?,
            false => std::thread::scope(|scope| {
                let reviewed = req.reviewed.as_deref().map(|entries| Reviewed {
                    run: req.applied_from.unwrap_or(RunId(uuid::Uuid::nil())),
                    entries,
                });
                let inputs = self.inputs(&read);
                let (deleted, choices) = (&deleted, &choices);
                let planner =
                    scope.spawn(move || decide::decide(&inputs, deleted, choices, reviewed));
                let recorded = self.record_inputs(run, at, &read, base, deleted, choices);
                let decided = planner
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (decided, recorded, Summary::default())
            }),
        };
        let Recorded {
            against: base,
            started,
            whole,
        } = recorded?;
        let Decided { plan, stale } = decided;
        self.lap("planned");
        // What was read is recorded and decided on; the rest of the run needs only the plan
        // and the server.
        let Read {
            server,
            problems,
            tracking,
            base: Base { from, .. },
            ..
        } = read;
        Ok(Observed {
            run,
            plan,
            not_decided,
            stale,
            server,
            deleted,
            problems,
            tracking,
            base,
            from,
            started,
            whole,
        })
    }

    /// What the run records of its inputs, computed while the planner runs: the digest of them
    /// all (each object serialized once for the digests and the comparison), and an
    /// incremental run's differences from its base (the base's outcomes stay, to tell which
    /// outcomes differ; the rest goes). Returns what the run's mirror is made of.
    fn record_inputs(
        &self,
        run: RunId,
        at: DateTime<Utc>,
        read: &Read,
        base: Option<ChainState>,
        deleted: &[ObjectDeleted],
        choices: &[ActionChosen],
    ) -> Result<Recorded> {
        let (store, req, snapshot, server) = (self.store, self.req, &read.snapshot, &read.server);
        let digests = chain::digest_inputs(
            snapshot,
            server,
            &req.selection,
            &req.options,
            base.is_some(),
        );
        self.lap("digested the inputs");
        let (differences, against) = match base {
            Some(b) => {
                let (run, chained) = (b.run, (b.full, b.length));
                let (diffs, digested, last) =
                    b.differences(snapshot, server, deleted, choices, &digests);
                self.lap("compared with the base");
                let against = RecordedAgainst {
                    run,
                    chained,
                    digested,
                    last,
                    changed: Changed::of(&diffs),
                };
                (Some(diffs), Some(against))
            }
            None => (None, None),
        };
        // A live org's next run reads the changes since this one: its mirror keeps the Entra
        // objects whole to apply them to.
        let whole = read
            .tracking
            .links
            .as_ref()
            .map(|_| kept::encode_whole(&snapshot.users, &snapshot.groups));
        let info = SourceInfo {
            kind: self.source.kind(),
            location: self.source.location(),
            fingerprint: digests.fingerprint,
            completeness: snapshot.completeness,
            problems: read.problems.clone(),
            listed: Some(Listed {
                users: u32::try_from(snapshot.users.len()).unwrap_or(u32::MAX),
                groups: u32::try_from(snapshot.groups.len()).unwrap_or(u32::MAX),
            }),
            delta_links: read.tracking.links.clone(),
            changes_since: read.tracking.since,
            signed_in_as: self.source.signed_in_as(),
            content: read.content.clone(),
        };
        let mut started = self.started(info);
        started.base = against.as_ref().map(|a| a.run);
        started.inputs_digest = Some(digests.inputs);
        let first = std::iter::once(Event::RunStarted(started.clone()));
        match &differences {
            None => {
                let mut observed = first
                    .chain(seen_events(snapshot, server))
                    .chain(deleted.iter().cloned().map(Event::ObjectDeleted))
                    .map(Cow::Owned);
                store.commit_stream(run, at, &mut observed, &[])?;
                self.lap("recorded what was read");
                let mut chosen = choices
                    .iter()
                    .cloned()
                    .map(|c| Cow::Owned(Event::ActionChosen(c)));
                store.commit_stream(run, self.clock.now(), &mut chosen, &[])?;
            }
            Some(diffs) => {
                let is_choice =
                    |e: &Event| matches!(e, Event::ActionChosen(_) | Event::ChoiceWithdrawn(_));
                let mut observed = first
                    .map(Cow::Owned)
                    .chain(diffs.iter().filter(|e| !is_choice(e)).map(Cow::Borrowed));
                store.commit_stream(run, at, &mut observed, &[])?;
                self.lap("recorded what differs from the base");
                let mut chosen = diffs.iter().filter(|e| is_choice(e)).map(Cow::Borrowed);
                store.commit_stream(run, self.clock.now(), &mut chosen, &[])?;
            }
        }
        self.lap("recorded the choices");
        Ok(Recorded {
            against,
            started,
            whole,
        })
    }

    /// *decide* and *finish*: a refused plan, or one interrupted before anything was decided
    /// for good, is finished at once; else every outcome of a full run (an incremental run's
    /// worth recording) is recorded — planned, or imported through the target — and the run
    /// finished with the mirror it leaves.
    fn decide_and_apply(&self, target: &mut dyn Target, observed: Observed) -> Result<RunResult> {
        let (store, req, clock) = (self.store, self.req, self.clock);
        let Observed {
            run,
            plan,
            not_decided,
            stale,
            server,
            deleted,
            problems,
            tracking,
            base,
            from,
            started,
            whole,
        } = observed;
        // The plan's size is known: outcomes, and the server records they write into the store.
        let records = match (req.mode, &self.target_info) {
            (Mode::Apply, TargetInfo::Embedded) => {
                plan.entries.iter().filter(|e| e.op.is_some()).count()
            }
            _ => 0,
        };
        store.check_room_for_run(plan.entries.len() as u64, records as u64)?;
        let finish = |status: RunStatus,
                      summary: Summary,
                      reason: Option<String>,
                      learned: Vec<String>,
                      next: Option<MirrorWrite>|
         -> Result<()> {
            let finished = RunFinished {
                status,
                summary,
                reason,
                learned,
            };
            self.finish_run(run, finished, next.as_ref())
        };
        let base_run = base.as_ref().map(|b| b.run);
        let result = |entries: Vec<EntryOutcome>, recorded: Vec<bool>, end: RunEnd| RunResult {
            run,
            mode: req.mode,
            entries,
            deleted: deleted.len(),
            end,
            problems: problems.clone(),
            stale: stale.clone(),
            base: base_run,
            recorded,
            changes_since: tracking.since,
            started_by: req.started_by.clone(),
            signed_in_as: self.source.signed_in_as(),
            base_from: from.clone().filter(|_| base_run.is_some()),
            not_decided,
        };

        if let Some(refusal) = plan.refusal {
            let why = Some(refusal.to_string());
            finish(
                RunStatus::Refused,
                Summary::default(),
                why,
                Vec::new(),
                None,
            )?;
            return Ok(RunResult {
                not_decided: Summary::default(),
                ..result(Vec::new(), Vec::new(), RunEnd::Refused(refusal))
            });
        }
        // Asked to stop before anything was decided for good: nothing is planned or applied.
        if self.stop.requested() {
            let why = STOPPED_BEFORE_APPLYING.to_owned();
            let reason = Some(why.clone());
            finish(
                RunStatus::Aborted,
                Summary::default(),
                reason,
                Vec::new(),
                None,
            )?;
            return Ok(RunResult {
                not_decided: Summary::default(),
                ..result(Vec::new(), Vec::new(), RunEnd::Aborted(why))
            });
        }

        let recorded: Vec<bool> = match &base {
            None => vec![true; plan.entries.len()],
            Some(b) => plan
                .entries
                .iter()
                .map(|e| {
                    chain::worth_recording(e, b.last.get(&(e.kind, e.id.clone())), DECISION_RULES)
                })
                .collect(),
        };
        // The mirror a completed incremental run leaves: the chain's state after it, made of
        // what the run holds — its inputs as digests (computed to compare with its base), the
        // server with its recorded changes made (`after`, against the server as read), its
        // base's last outcomes with its own. A full run leaves none: digesting every object
        // would cost it a third of its time, and its next run folds it from the log once.
        let next_mirror = |entries: &[EntryOutcome],
                           base: RecordedAgainst,
                           server: Option<(&ServerState, &ServerState)>| {
            let RecordedAgainst {
                chained,
                mut last,
                mut digested,
                ..
            } = base;
            let is_recorded = || entries.iter().zip(&recorded).filter(|(_, r)| **r);
            let applied = req.mode == Mode::Apply;
            chain::record_outcomes(&mut last, is_recorded().map(|(e, _)| e), applied);
            // A run that changed nothing on the embedded server says so: a run whose inputs
            // are this one's takes its decisions without reading them again.
            let unchanged = is_recorded().all(|(e, _)| e.op.is_none());
            let settled = (unchanged && self.target_info == TargetInfo::Embedded)
                .then(|| u32::try_from(deleted.len()).unwrap_or(u32::MAX));
            if let Some((before, after)) = server {
                digested = digested.with_server_after(before, after);
            }
            let state = ChainState::after_run(Some(chained), run, started.clone(), digested, last);
            let next = mirror::write(
                self.org,
                &self.target_info,
                state,
                whole.as_deref(),
                settled,
            );
            self.lap("made the mirror");
            next
        };
        match req.mode {
            Mode::DryRun => {
                self.step("recording the plan");
                // One entry copied at a time, as it is encoded: never the whole plan twice.
                let mut planned = plan
                    .entries
                    .iter()
                    .zip(&recorded)
                    .filter(|(_, r)| **r)
                    .map(|(e, _)| Cow::Owned(Event::Planned(e.clone())));
                store.commit_stream(run, clock.now(), &mut planned, &[])?;
                let next = base.map(|b| next_mirror(&plan.entries, b, None));
                let summary = Summary::of(&plan.entries).plus(&not_decided);
                finish(RunStatus::Completed, summary, None, Vec::new(), next)?;
                Ok(result(plan.entries, recorded, RunEnd::Completed))
            }
            Mode::Apply => {
                // For the mirror: the server as read, its records shared (to tell which the run
                // replaced).
                let before = base.as_ref().map(|_| server.clone());
                let mut state = server;
                // The target records what it is given: the entries worth recording, taken out
                // of the plan (a placeholder in their place) and put back once applied; the
                // others change nothing (every change is recorded) and stay where they are —
                // the plan is not copied.
                let mut entries = plan.entries;
                let given_at: Vec<usize> = (0..entries.len()).filter(|i| recorded[*i]).collect();
                let given: Vec<EntryOutcome> = match given_at.len() == entries.len() {
                    true => std::mem::take(&mut entries),
                    false => given_at
                        .iter()
                        .map(|i| {
                            let stand_in = placeholder(&entries[*i]);
                            std::mem::replace(&mut entries[*i], stand_in)
                        })
                        .collect(),
                };
                let applied = target.import(store, run, clock, &mut state, given, self.stop)?;
                drop(state);
                self.lap("applied");
                // The server as the log has it after the run: as read, with the operations the
                // run recorded made.
                let after = before.as_ref().map(|before| {
                    let mut after = before.clone();
                    for op in applied.entries.iter().filter_map(|e| e.op.as_ref()) {
                        after.apply_quietly(op);
                    }
                    after
                });
                if entries.is_empty() {
                    entries = applied.entries;
                } else {
                    // An import stopped half-way applied only the first of them: the rest are
                    // left out, as they were not applied.
                    let applied_count = applied.entries.len();
                    for (i, e) in given_at.iter().zip(applied.entries) {
                        entries[*i] = e;
                    }
                    let unapplied: std::collections::HashSet<usize> =
                        given_at[applied_count..].iter().copied().collect();
                    if !unapplied.is_empty() {
                        let mut at = 0;
                        entries.retain(|_| {
                            at += 1;
                            !unapplied.contains(&(at - 1))
                        });
                    }
                }
                let summary = Summary::of(&entries).plus(&not_decided);
                match applied.failure {
                    None => {
                        let next = match (base, &before, &after) {
                            (Some(b), Some(before), Some(after)) => {
                                Some(next_mirror(&entries, b, Some((before, after))))
                            }
                            _ => None,
                        };
                        drop((before, after));
                        finish(RunStatus::Completed, summary, None, applied.learned, next)?;
                        Ok(result(entries, recorded, RunEnd::Completed))
                    }
                    Some(why) => {
                        let reason = Some(why.clone());
                        finish(RunStatus::Aborted, summary, reason, applied.learned, None)?;
                        Ok(result(entries, recorded, RunEnd::Aborted(why)))
                    }
                }
            }
        }
    }
}

/// What stands in a plan's place for an entry handed to the target, until it comes back.
fn placeholder(e: &EntryOutcome) -> EntryOutcome {
    EntryOutcome {
        kind: e.kind,
        id: e.id.clone(),
        name: String::new(),
        outcome: e.outcome,
        detail: String::new(),
        reason: None,
        changes: Vec::new(),
        op: None,
    }
}

/// Time since `phase` at the end of a step, for `ROSTER_LOG=app=debug` and the benchmarks
/// (which measure memory from outside, with GNU time).
fn lap(phase: std::time::Instant, what: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let (rss, peak) = memory_mib();
        tracing::debug!(
            elapsed_ms = phase.elapsed().as_millis() as u64,
            rss_mib = rss,
            peak_mib = peak,
            "{what}"
        )
    }
}

/// The process's resident memory now and at its peak, in MiB (Linux: `/proc/self/status`;
/// zero elsewhere): where a run's memory goes, lap by lap.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Whether `source` can resume reading changes where the base's read left off: the same
/// Graph endpoint, after a complete read.
fn resumable(source: &dyn TenantSource, base: &SourceInfo) -> bool {
    source.tracks_changes()
        && base.kind == engine::event::SourceKind::Graph
        && base.location == source.location()
        && base.completeness == Completeness::COMPLETE
}
