//! What a run's problems — its conflicts and failures — are to the admin: **new**, **reported
//! before** by the org's last import against the same server (same outcome, same detail), or
//! **acknowledged** (`roster conflict ack`, recorded in the log). Only a new problem makes a
//! run exit 3: a sync that meets the same known conflict every 40 minutes is quiet, one that
//! meets a new or changed one is not. And what the admin leaves out of an org for good
//! (`roster org leave-out`), kept in the org's settings and copied into every run's options.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use adapters::org::{self, LeftOut, OrgConfig};
use engine::event::{
    AcknowledgementWithdrawn, EntryOutcome, Event, Mode, Outcome, ProblemAcknowledged,
};
use engine::model::Kind;
use engine::{ObjectId, RunId, Seq, Store};

use crate::error::{Error, Result};

/// An acknowledgement in force: the event, where it is in the log and when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub ack: ProblemAcknowledged,
    pub seq: Seq,
    pub at: DateTime<Utc>,
}

impl Ack {
    /// Whether `entry` is the problem acknowledged (same outcome, same detail): a problem
    /// that changed is new again.
    pub fn covers(&self, entry: &EntryOutcome) -> bool {
        self.ack.outcome == entry.outcome && self.ack.detail == entry.detail
    }
}

/// How a problem entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    New,
    /// The org's last import against the same server reported it, as it is.
    Reported(RunId),
    Acknowledged(Ack),
}

/// The standing of every problem entry of a run, by the entry's object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attention {
    pub standing: BTreeMap<(Kind, ObjectId), Standing>,
}

impl Attention {
    pub fn new_problems(&self) -> usize {
        self.count(|s| matches!(s, Standing::New))
    }

    pub fn reported(&self) -> usize {
        self.count(|s| matches!(s, Standing::Reported(_)))
    }

    pub fn acknowledged(&self) -> usize {
        self.count(|s| matches!(s, Standing::Acknowledged(_)))
    }

    pub fn of(&self, entry: &EntryOutcome) -> Option<&Standing> {
        self.standing.get(&(entry.kind, entry.id.clone()))
    }

    fn count(&self, f: impl Fn(&Standing) -> bool) -> usize {
        self.standing.values().filter(|s| f(s)).count()
    }

    /// The run before the one classified that reported problems as they are, if any did.
    pub fn reported_by(&self) -> Option<RunId> {
        self.standing.values().find_map(|s| match s {
            Standing::Reported(r) => Some(*r),
            _ => None,
        })
    }
}

/// How many earlier imports a problem's object is looked for in before it counts as new.
const LOOK_BACK: usize = 20;

/// The acknowledgements in force for `org`, from the log's events before `before` (the whole
/// log when `None`): for each object, the last acknowledgement unless withdrawn after it.
pub fn acknowledgements(
    store: &dyn Store,
    org: &str,
    before: Option<Seq>,
) -> Result<BTreeMap<(Kind, ObjectId), Ack>> {
    // Each is a run of its own; the run index is ordered by run id, the log by seq.
    let mut found = Vec::new();
    for run in store.runs()? {
        let Some((seq, last)) = store.run_ends(run)? else {
            continue;
        };
        if seq != last {
            continue;
        }
        if before.is_some_and(|b| seq >= b) {
            continue;
        }
        let Some(env) = store.read_event(seq)? else {
            continue;
        };
        match &env.event {
            Event::ProblemAcknowledged(a) if a.org == org => found.push(env),
            Event::AcknowledgementWithdrawn(w) if w.org == org => found.push(env),
            _ => {}
        }
    }
    found.sort_by_key(|e| e.seq);
    let mut acks = BTreeMap::new();
    for env in found {
        match env.event {
            Event::ProblemAcknowledged(ack) => {
                acks.insert(
                    (ack.kind, ack.id.clone()),
                    Ack {
                        ack,
                        seq: env.seq,
                        at: env.time,
                    },
                );
            }
            Event::AcknowledgementWithdrawn(w) => {
                acks.remove(&(w.kind, w.id));
            }
            _ => {}
        }
    }
    Ok(acks)
}

/// How each problem of `run` (whose entries are `entries`) stands: acknowledged before the run
/// started, reported as it is by the org's last completed import before it against the same
/// server, or new.
pub fn classify(
    store: &dyn Store,
    org: &OrgConfig,
    run: RunId,
    entries: &[EntryOutcome],
) -> Result<Attention> {
    let problems: Vec<&EntryOutcome> = entries.iter().filter(|e| e.outcome.is_problem()).collect();
    let mut attention = Attention::default();
    if problems.is_empty() {
        return Ok(attention);
    }
    let first = store.run_ends(run)?.map(|(first, _)| first);
    let acks = acknowledgements(store, &org.name, first)?;
    // Each problem not acknowledged is compared with the last outcome an earlier import
    // recorded for its object: the newest import that has an entry for it (a one-off import
    // of other objects in between says nothing of it). Incremental runs record every problem
    // and every change of outcome (decision rules 3), so the newest entry found is the
    // object's last outcome.
    let mut pending: BTreeMap<(Kind, ObjectId), &EntryOutcome> = BTreeMap::new();
    for e in problems {
        let key = (e.kind, e.id.clone());
        match acks.get(&key) {
            Some(ack) if ack.covers(e) => {
                attention
                    .standing
                    .insert(key, Standing::Acknowledged(ack.clone()));
            }
            _ => {
                pending.insert(key, e);
            }
        }
    }
    let earlier = match engine::chain::started_of(store, run)? {
        Some(started) if !pending.is_empty() => {
            crate::history::imports_before(store, org, &started.target, run, LOOK_BACK)?
        }
        _ => Vec::new(),
    };
    for prev in earlier {
        if pending.is_empty() {
            break;
        }
        for b in crate::runs::report(store, prev)?.entries {
            let key = (b.kind, b.id.clone());
            if let Some(e) = pending.remove(&key) {
                let standing = if b.outcome == e.outcome && b.detail == e.detail {
                    Standing::Reported(prev)
                } else {
                    Standing::New
                };
                attention.standing.insert(key, standing);
            }
        }
    }
    for (key, _) in pending {
        attention.standing.insert(key, Standing::New);
    }
    Ok(attention)
}

/// The org's last completed run (import or dry run) — what `conflict ack` acknowledges from.
fn last_run_of(store: &dyn Store, org: &OrgConfig) -> Result<RunId> {
    crate::history::last_completed_any(store, org)?.ok_or_else(|| {
        Error::bad_input(format!(
            "org {} has no completed run; a conflict is acknowledged from a run's report (`roster plan {} ...` or `roster import {} ...` first)",
            org.name, org.name, org.name
        ))
    })
}

/// Finds `object` (an object id, UPN-like name or display name, case-insensitive) among
/// `entries`; an ambiguous name is refused.
fn find_entry<'e>(
    entries: &'e [EntryOutcome],
    object: &str,
    what: &str,
) -> Result<Option<&'e EntryOutcome>> {
    let w = object.trim().to_lowercase();
    let by_id: Vec<&EntryOutcome> = entries
        .iter()
        .filter(|e| e.id.as_str().eq_ignore_ascii_case(&w))
        .collect();
    let mut hits = if by_id.is_empty() {
        entries
            .iter()
            .filter(|e| e.name.to_lowercase() == w)
            .collect()
    } else {
        by_id
    };
    // One object may be listed under several names (its display name and its UPN).
    hits.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    hits.dedup_by(|a, b| (a.kind, &a.id) == (b.kind, &b.id));
    match hits[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(Error::bad_input(format!(
            "{object:?} names {} {what}s ({}); give its object id",
            hits.len(),
            hits.iter()
                .map(|e| format!("{} {}", e.kind.as_str(), e.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// What `roster conflict ack` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    Recorded { run: RunId, entry: EntryOutcome },
    Already { entry: EntryOutcome },
}

/// Acknowledges the conflict or failure of `object` in `org`'s last completed run, as that run
/// reported it: recorded as a `ProblemAcknowledged` event, a run of its own, flushed.
pub fn acknowledge(
    ctx: &crate::Context,
    store: &dyn Store,
    org: &str,
    object: &str,
    note: Option<&str>,
) -> Result<Acked> {
    if let Some(note) = note {
        check_note(note)?;
    }
    let org = org::get_org(store, org)?;
    let last = last_run_of(store, &org)?;
    let report = crate::runs::report(store, last)?;
    let problems: Vec<EntryOutcome> = report
        .entries
        .into_iter()
        .filter(|e| e.outcome.is_problem())
        .collect();
    let Some(entry) = find_entry(&problems, object, "conflict or failure")? else {
        return Err(Error::bad_input(format!(
            "{object:?} is not a conflict or failure in org {}'s last run ({last}); `roster conflict list {}` lists them",
            org.name, org.name
        )));
    };
    let entry = entry.clone();
    let acks = acknowledgements(store, &org.name, None)?;
    if acks
        .get(&(entry.kind, entry.id.clone()))
        .is_some_and(|a| a.covers(&entry) && a.ack.note.as_deref() == note)
    {
        return Ok(Acked::Already { entry });
    }
    let event = Event::ProblemAcknowledged(ProblemAcknowledged {
        org: org.name.clone(),
        kind: entry.kind,
        id: entry.id.clone(),
        name: entry.name.clone(),
        outcome: entry.outcome,
        detail: entry.detail.clone(),
        run: last,
        by: ctx.started_by.clone(),
        note: note.map(str::to_owned),
    });
    let run = record_alone(ctx, store, event)?;
    Ok(Acked::Recorded { run, entry })
}

/// Withdraws the acknowledgement of `object` in `org`: recorded as `AcknowledgementWithdrawn`.
/// `None` when nothing of that name is acknowledged.
pub fn withdraw(
    ctx: &crate::Context,
    store: &dyn Store,
    org: &str,
    object: &str,
) -> Result<Option<(RunId, Ack)>> {
    let org = org::get_org(store, org)?;
    let acks = acknowledgements(store, &org.name, None)?;
    let entries: Vec<EntryOutcome> = acks
        .values()
        .map(|a| EntryOutcome {
            kind: a.ack.kind,
            id: a.ack.id.clone(),
            name: a.ack.name.clone(),
            outcome: a.ack.outcome,
            detail: a.ack.detail.clone(),
            reason: None,
            changes: Vec::new(),
            op: None,
        })
        .collect();
    let Some(entry) = find_entry(&entries, object, "acknowledged problem")? else {
        return Ok(None);
    };
    let ack = acks[&(entry.kind, entry.id.clone())].clone();
    let event = Event::AcknowledgementWithdrawn(AcknowledgementWithdrawn {
        org: org.name.clone(),
        kind: ack.ack.kind,
        id: ack.ack.id.clone(),
        name: ack.ack.name.clone(),
        by: ctx.started_by.clone(),
    });
    let run = record_alone(ctx, store, event)?;
    Ok(Some((run, ack)))
}

/// A note is a line of text for the log: bounded, without control characters.
fn check_note(note: &str) -> Result<()> {
    const MAX: usize = 500;
    if note.chars().count() > MAX {
        return Err(Error::bad_input(format!(
            "--note is {} characters long; keep it to {MAX}",
            note.chars().count()
        )));
    }
    if note.chars().any(char::is_control) {
        return Err(Error::bad_input(
            "--note holds a control character (a line break, a tab, an escape); write it on one line",
        ));
    }
    Ok(())
}

fn record_alone(ctx: &crate::Context, store: &dyn Store, event: Event) -> Result<RunId> {
    Ok(crate::recover::record_alone(store, ctx.clock.as_ref(), event, &[])?.0)
}

/// One problem of an org's last run, with how it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub entry: EntryOutcome,
    pub standing: Standing,
}

/// What `roster conflict list` shows for one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgProblems {
    pub org: String,
    /// The org's last completed run, and its problems.
    pub run: Option<RunId>,
    pub mode: Option<Mode>,
    pub problems: Vec<Problem>,
    /// Acknowledgements in force whose problem that run no longer has.
    pub unused: Vec<Ack>,
    pub left_out: Vec<LeftOut>,
}

/// The problems of each org's last completed run (of `only`, when given) and how each stands
/// now; the acknowledgements in force that no longer apply; what each org leaves out.
pub fn list(store: &dyn Store, only: Option<&str>) -> Result<Vec<OrgProblems>> {
    let orgs = match only {
        Some(name) => vec![org::get_org(store, name)?],
        None => crate::orgs::list(store)?,
    };
    let mut out = Vec::new();
    for org in orgs {
        let last = crate::history::last_completed_any(store, &org)?;
        let (mode, entries) = match last {
            Some(run) => {
                let report = crate::runs::report(store, run)?;
                (report.mode, report.entries)
            }
            None => (None, Vec::new()),
        };
        let acks = acknowledgements(store, &org.name, None)?;
        let attention = match last {
            Some(run) => classify(store, &org, run, &entries)?,
            None => Attention::default(),
        };
        let mut problems = Vec::new();
        for entry in entries.iter().filter(|e| e.outcome.is_problem()) {
            let Some(standing) = attention.of(entry).cloned() else {
                continue;
            };
            let entry = entry.clone();
            // A problem acknowledged after the run stands acknowledged now.
            let standing = match acks.get(&(entry.kind, entry.id.clone())) {
                Some(a) if a.covers(&entry) => Standing::Acknowledged(a.clone()),
                _ => standing,
            };
            problems.push(Problem { entry, standing });
        }
        let unused = acks
            .values()
            .filter(|a| {
                !problems
                    .iter()
                    .any(|p| p.entry.kind == a.ack.kind && p.entry.id == a.ack.id)
            })
            .cloned()
            .collect();
        out.push(OrgProblems {
            org: org.name.clone(),
            run: last,
            mode,
            problems,
            unused,
            left_out: org.left_out.clone(),
        });
    }
    Ok(out)
}

/// What `roster org leave-out` / `take-back` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOutChange {
    pub changed: Vec<LeftOut>,
    pub already: Vec<String>,
}

/// Leaves `objects` (object ids, or names and UPNs the org's last run or search knows) out of
/// `org`'s selection for good.
pub fn leave_out(
    ctx: &crate::Context,
    store: &dyn Store,
    org: &str,
    objects: &[String],
) -> Result<LeftOutChange> {
    let mut config = org::get_org(store, org)?;
    let known = known_objects(ctx, store, &config)?;
    let mut change = LeftOutChange {
        changed: Vec::new(),
        already: Vec::new(),
    };
    for object in objects {
        let (kind, id, name) = match find_entry(&known, object, "object")? {
            Some(e) => (e.kind, e.id.clone(), e.name.clone()),
            None => {
                return Err(Error::bad_input(format!(
                    "{object:?} is no user or group of org {}; `roster search {}` shows the names, UPNs and ids",
                    config.name, config.name
                )))
            }
        };
        if config.left_out.iter().any(|l| l.id == id) {
            change.already.push(name);
            continue;
        }
        let l = LeftOut {
            id,
            kind,
            name,
            by: ctx.started_by.clone(),
            at: ctx.clock.now(),
        };
        config.left_out.push(l.clone());
        change.changed.push(l);
    }
    if !change.changed.is_empty() {
        org::replace_org(store, &config)?;
        store.flush()?;
    }
    Ok(change)
}

/// Brings `objects` (ids or names as listed by `roster org leave-out ORG`) back into `org`'s
/// selection.
pub fn take_back(store: &dyn Store, org: &str, objects: &[String]) -> Result<LeftOutChange> {
    let mut config = org::get_org(store, org)?;
    let mut change = LeftOutChange {
        changed: Vec::new(),
        already: Vec::new(),
    };
    for object in objects {
        let w = object.trim().to_lowercase();
        let hits: Vec<usize> = (0..config.left_out.len())
            .filter(|&i| {
                let l = &config.left_out[i];
                l.id.as_str() == w || l.name.to_lowercase() == w
            })
            .collect();
        match hits[..] {
            [] => change.already.push(object.clone()),
            [i] => change.changed.push(config.left_out.remove(i)),
            _ => {
                return Err(Error::bad_input(format!(
                    "{object:?} names {} objects left out of org {}; give its object id",
                    hits.len(),
                    config.name
                )))
            }
        }
    }
    if !change.changed.is_empty() {
        org::replace_org(store, &config)?;
        store.flush()?;
    }
    Ok(change)
}

/// The org's objects, as entries to find one among: the users and groups reading its tenant
/// finds now (`roster search`'s rows, by name and by UPN), what its recycle bin holds, and
/// the deleted objects its last run found on the server (gone from Entra ID altogether).
fn known_objects(
    ctx: &crate::Context,
    store: &dyn Store,
    org: &OrgConfig,
) -> Result<Vec<EntryOutcome>> {
    let row = |kind: Kind, id: &ObjectId, name: &str| EntryOutcome {
        kind,
        id: id.clone(),
        name: name.to_owned(),
        outcome: Outcome::Unchanged,
        detail: String::new(),
        reason: None,
        changes: Vec::new(),
        op: None,
    };
    let loaded = crate::orgs::read(ctx, org)?;
    let snapshot = &loaded.snapshot;
    let mut known = Vec::new();
    let mut view = engine::search::SearchView::from_snapshot(snapshot);
    for r in view.search("", engine::search::TypeFilter::All) {
        known.push(row(r.kind, &r.id, &r.name));
        if let Some(upn) = &r.upn {
            known.push(row(r.kind, &r.id, upn));
        }
    }
    for (kind, items) in [
        (Kind::User, &snapshot.deleted_users),
        (Kind::Group, &snapshot.deleted_groups),
    ] {
        for d in items {
            known.push(row(kind, &d.id, d.display_name.as_deref().unwrap_or("")));
        }
    }
    if let Some(last) = crate::history::last_completed_any(store, org)? {
        for d in crate::runs::deleted(store, last)?.rows {
            known.push(row(d.kind, &d.id, &d.name));
        }
    }
    Ok(known)
}
