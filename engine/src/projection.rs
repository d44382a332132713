//! Projections: pure folds over a run's events. They are disposable: replay rebuilds them from
//! the log at any time, and the log stays the only source of truth.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::event::{
    Action, EntryOutcome, Envelope, Event, EventKind, Evidence, GroupSeen, Mode, ObjectDeleted,
    RunStarted, RunStatus, Summary, UserSeen,
};
use crate::ids::{ObjectId, RunId, TenantId};
use crate::model::{
    Completeness, DeletedItem, DuplicateId, EntraGroup, EntraUser, Kind, ServerGroup, ServerState,
    ServerStateError, ServerUser, TenantSnapshot,
};

/// A projection: a fold over a run's events, each taken by value, one at a time, so that a
/// large run is never held whole nor copied.
pub trait Projection: Default {
    /// Whether events of this kind matter to the projection: a reader decodes only those.
    fn uses(kind: EventKind) -> bool;

    /// Folds one event of `run` in.
    fn take(&mut self, run: RunId, event: Event);

    /// The projection of `events` (copying the ones it uses).
    fn fold<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Self {
        let mut p = Self::default();
        for e in events {
            if Self::uses(e.event.kind()) {
                p.take(e.run, e.event.clone());
            }
        }
        p
    }
}

/// The per-entry import report of one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub run: Option<RunId>,
    pub org: String,
    pub mode: Option<Mode>,
    /// The entries recorded: every entry of a full run, the changed ones of an incremental run.
    pub entries: Vec<EntryOutcome>,
    pub status: Option<RunStatus>,
    pub reason: Option<String>,
    /// The base of an incremental run.
    pub base: Option<RunId>,
    /// The counts `RunFinished` recorded: every entry, listed or not.
    pub finished: Option<Summary>,
    /// Who started the run, and whom Graph was read as (see `RunStarted`).
    pub started_by: String,
    pub signed_in_as: Option<String>,
}

impl Projection for Report {
    fn uses(kind: EventKind) -> bool {
        use EventKind::*;
        matches!(kind, RunStarted | Planned | Imported | RunFinished)
    }

    fn take(&mut self, run: RunId, event: Event) {
        match event {
            Event::RunStarted(s) => {
                self.run = Some(run);
                self.org = s.org;
                self.mode = Some(s.mode);
                self.base = s.base;
                self.started_by = s.started_by;
                self.signed_in_as = s.source.signed_in_as;
            }
            Event::Planned(e) | Event::Imported(e) => self.entries.push(e),
            Event::RunFinished(f) => {
                self.status = Some(f.status);
                self.reason = f.reason;
                self.finished = Some(f.summary);
            }
            _ => {}
        }
    }
}

impl Report {
    /// Every entry counted: as the run finished (an incremental run records only some), or
    /// the entries recorded so far for a run that did not finish.
    pub fn summary(&self) -> Summary {
        match (self.base, self.finished) {
            (Some(_), Some(s)) => s,
            _ => Summary::of(&self.entries),
        }
    }
}

/// One row of `roster deleted RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRow {
    pub id: ObjectId,
    pub name: String,
    pub kind: Kind,
    pub evidence: Evidence,
    pub deleted_at: Option<DateTime<Utc>>,
    pub action: Option<Action>,
    #[serde(skip)]
    pub server_key: String,
}

/// The deleted objects a run found on the server, with the action chosen for each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletedView {
    pub rows: Vec<DeletedRow>,
}

impl Projection for DeletedView {
    fn uses(kind: EventKind) -> bool {
        matches!(kind, EventKind::ObjectDeleted | EventKind::ActionChosen)
    }

    fn take(&mut self, _run: RunId, event: Event) {
        match &event {
            Event::ObjectDeleted(ObjectDeleted {
                kind,
                id,
                name,
                server_key,
                evidence,
                deleted_at,
            }) => self.rows.push(DeletedRow {
                id: id.clone(),
                name: name.clone(),
                kind: *kind,
                evidence: *evidence,
                deleted_at: *deleted_at,
                action: None,
                server_key: server_key.clone(),
            }),
            Event::ActionChosen(c) if c.action != Action::Import => {
                if let Some(row) = self
                    .rows
                    .iter_mut()
                    .find(|r| r.kind == c.kind && r.id == c.id)
                {
                    row.action = Some(c.action);
                }
            }
            _ => {}
        }
    }
}

/// A run's line in `roster runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub run: RunId,
    pub org: String,
    pub mode: Mode,
    pub started_by: String,
    /// Whom Graph was read as (a live org's runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in_as: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `None` while a run is unfinished (interrupted, or still going).
    pub status: Option<RunStatus>,
    pub summary: Summary,
    pub applied_from: Option<RunId>,
    /// The base of an incremental run (absent for a full run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<RunId>,
}

impl RunInfo {
    /// Folds a run's events; `None` if they do not start with `RunStarted`.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Option<RunInfo> {
        let mut info: Option<RunInfo> = None;
        for env in events {
            match (&env.event, info.as_mut()) {
                (Event::RunStarted(s), None) => {
                    info = Some(RunInfo {
                        run: env.run,
                        org: s.org.clone(),
                        mode: s.mode,
                        started_by: s.started_by.clone(),
                        signed_in_as: s.source.signed_in_as.clone(),
                        started_at: env.time,
                        finished_at: None,
                        status: None,
                        summary: Summary::default(),
                        applied_from: s.applied_from,
                        base: s.base,
                    })
                }
                (Event::Planned(e) | Event::Imported(e), Some(i)) => i.summary.count(e.outcome),
                (Event::RunFinished(f), Some(i)) => {
                    i.finished_at = Some(env.time);
                    i.status = Some(f.status);
                }
                _ => {}
            }
        }
        info
    }
}

/// What a run decided from, as its events recorded it: enough to run the planner again.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInputs {
    pub started: RunStarted,
    pub snapshot: TenantSnapshot,
    pub server: ServerState,
    pub deleted: Vec<ObjectDeleted>,
    pub choices: Vec<crate::event::ActionChosen>,
}

/// Why a run's events do not make a coherent input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputsError {
    #[error("the run has no RunStarted event")]
    NotStarted,
    #[error("the recorded tenant snapshot is inconsistent: {0}")]
    Snapshot(#[from] DuplicateId),
    #[error("the recorded server state is inconsistent: {0}")]
    Server(#[from] ServerStateError),
}

impl RunInputs {
    pub fn fold<'a>(
        events: impl IntoIterator<Item = &'a Envelope>,
    ) -> Result<RunInputs, InputsError> {
        <RunInputsFold as Projection>::fold(events).finish()
    }
}

/// [`RunInputs`] folded one event at a time, each taken by value: replay streams a large run
/// through it without holding the run's events and their copies at once.
#[derive(Debug, Default)]
pub struct RunInputsFold {
    started: Option<RunStarted>,
    users: Vec<EntraUser>,
    groups: Vec<EntraGroup>,
    deleted_users: Vec<DeletedItem>,
    deleted_groups: Vec<DeletedItem>,
    server_users: Vec<ServerUser>,
    server_groups: Vec<ServerGroup>,
    deleted: Vec<ObjectDeleted>,
    choices: Vec<crate::event::ActionChosen>,
}

impl Projection for RunInputsFold {
    fn uses(kind: EventKind) -> bool {
        use EventKind::*;
        matches!(
            kind,
            RunStarted | UserSeen | GroupSeen | ObjectDeleted | ActionChosen
        )
    }

    fn take(&mut self, _run: RunId, event: Event) {
        match event {
            Event::RunStarted(s) => self.started = Some(s),
            Event::UserSeen(UserSeen::Entra { user }) => self.users.push(user),
            Event::UserSeen(UserSeen::DeletedItems { user }) => self.deleted_users.push(user),
            Event::UserSeen(UserSeen::Server { user }) => self.server_users.push(user),
            Event::GroupSeen(GroupSeen::Entra { group }) => self.groups.push(group),
            Event::GroupSeen(GroupSeen::DeletedItems { group }) => self.deleted_groups.push(group),
            Event::GroupSeen(GroupSeen::Server { group }) => self.server_groups.push(group),
            Event::ObjectDeleted(d) => self.deleted.push(d),
            Event::ActionChosen(c) => self.choices.push(c),
            _ => {}
        }
    }
}

impl RunInputsFold {
    /// The choices folded so far: at the run's first outcome, about how many entries it has
    /// (exactly, unless a selected group brings in members).
    pub fn choices_seen(&self) -> usize {
        self.choices.len()
    }

    pub fn finish(self) -> Result<RunInputs, InputsError> {
        let started = self.started.ok_or(InputsError::NotStarted)?;
        let completeness: Completeness = started.source.completeness;
        let tenant: TenantId = started.tenant_id.clone();
        let snapshot = TenantSnapshot::new(
            tenant,
            self.users,
            self.groups,
            self.deleted_users,
            self.deleted_groups,
            completeness,
        )?;
        let server = ServerState::from_parts(self.server_users, self.server_groups)?;
        Ok(RunInputs {
            started,
            snapshot,
            server,
            deleted: self.deleted,
            choices: self.choices,
        })
    }
}

/// The events that record what a run read: Entra objects, recycle bin, and server objects,
/// made one at a time so that a large tenant is never copied whole.
pub fn seen_events<'a>(
    snapshot: &'a TenantSnapshot,
    server: &'a ServerState,
) -> impl Iterator<Item = Event> + 'a {
    let users = snapshot
        .users
        .iter()
        .map(|u| Event::UserSeen(UserSeen::Entra { user: u.clone() }));
    let groups = snapshot
        .groups
        .iter()
        .map(|g| Event::GroupSeen(GroupSeen::Entra { group: g.clone() }));
    let deleted_users = snapshot
        .deleted_users
        .iter()
        .map(|u| Event::UserSeen(UserSeen::DeletedItems { user: u.clone() }));
    let deleted_groups = snapshot
        .deleted_groups
        .iter()
        .map(|g| Event::GroupSeen(GroupSeen::DeletedItems { group: g.clone() }));
    let server_users = server
        .users()
        .map(|u| Event::UserSeen(UserSeen::Server { user: u.clone() }));
    let server_groups = server
        .groups()
        .map(|g| Event::GroupSeen(GroupSeen::Server { group: g.clone() }));
    users
        .chain(groups)
        .chain(deleted_users)
        .chain(deleted_groups)
        .chain(server_users)
        .chain(server_groups)
}
