//! The reconciliation planner: a pure function from what was read (the tenant snapshot, the
//! server state) and what the admin chose, to the outcome of every entry and the server
//! operations that realise it. No I/O, no clock: the same input always gives the same plan.
//!
//! The decision rules are docs/decisions.md's, made precise:
//! - a server object is linked to an Entra object by (tenant id, Entra object id); objects of
//!   other tenants are never touched;
//! - deleted-object actions are planned first, so a login freed by a delete can be reused;
//! - then users (directly selected, and transitive members of selected groups), then groups,
//!   each decided against the server *as the plan so far leaves it*; within each, objects
//!   already linked come first, so renames free logins and names before new objects claim them.

// The planner's maps hold object ids it made itself: a fast hash is safe and much cheaper.
use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde_json::Value;

use crate::chain::EntryKey;
use crate::event::{
    Action, ActionChosen, ActionOverride, Baseline, Change, DeletedAction, EntryOutcome, Evidence,
    ObjectDeleted, Outcome, Reason, RunOptions,
};
use crate::ids::{cmp_folded, fold_case, ObjectId, TenantId};
use crate::model::{
    AuthType, EntraAttributes, EntraGroup, EntraUser, Kind, ServerGroup, ServerOp, ServerState,
    ServerUser, TenantSnapshot,
};
use smol_str::SmolStr;

/// Everything a plan is decided from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub tenant: &'a TenantId,
    pub snapshot: &'a TenantSnapshot,
    pub server: &'a ServerState,
    /// The server objects of this org whose Entra object is gone ([`find_deleted`]; empty
    /// without `check_deleted`).
    pub deleted: &'a [ObjectDeleted],
    /// The admin's choices: `import` for selected entries, an action per deleted object.
    pub choices: &'a [ActionChosen],
    pub options: &'a RunOptions,
    /// What the org's last complete read listed, if known.
    pub baseline: Option<&'a Baseline>,
    /// Whether the server keeps a group's description and type
    /// ([`crate::event::TargetInfo::keeps_group_details`]): when it does not, they are
    /// neither written nor compared.
    pub group_details: bool,
    /// The optional user attributes the server does not keep
    /// ([`crate::event::TargetInfo::unkept`]): neither written nor compared
    /// ([`crate::model::ServerUser::without`]).
    pub unkept: &'a [String],
    /// The decision rules the run is decided under ([`crate::event::DECISION_RULES`] for a
    /// new run; a recorded run's own, so that replay decides it as it was decided).
    pub rules: u32,
}

/// Since rules 2, a linked user whose Entra account is disabled is disabled on the server
/// (before: skipped, left as it was).
pub const RULES_ACCOUNT_STATE: u32 = 2;

/// A listing that shrank to under this share of the last complete read's is suspect.
const SHRINK_SUSPECT: u32 = 2;
/// Below this many objects in the last complete read, shrinking says nothing (and
/// `--max-deletions` still bounds what a run removes).
const SHRINK_MIN_BEFORE: u32 = 20;

/// Why a plan must not be applied. Nothing is changed when a plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the plan disables or deletes {planned} objects, more than --max-deletions {limit}; review `roster deleted RUN`, then raise --max-deletions if this is intended")]
    TooManyDeletions { planned: u32, limit: u32 },
    #[error("the tenant returned no users while {linked} server users are linked to it; this looks like a broken enumeration (pass --allow-empty-source if the tenant really is empty)")]
    EmptySource { linked: u32 },
    #[error("the tenant returned no groups while {linked} server groups are linked to it, and the plan would disable or delete them; this looks like a broken enumeration (pass --allow-empty-source if the tenant really has no groups)")]
    NoGroups { linked: u32 },
    #[error("the tenant listed {now} {}s, under half of the {before} its last complete read listed (run {run}), and the plan would disable or delete {removals} objects; this looks like a broken enumeration (review it with `roster plan`, then pass --allow-empty-source if the tenant really shrank)", kind.as_str())]
    ShrunkListing {
        kind: Kind,
        now: u32,
        before: u32,
        run: crate::ids::RunId,
        removals: u32,
    },
    #[error("the plan reviewed in dry run {reviewed} is stale: {differences} {} would now be decided differently; run `roster plan` again and review it", if *.differences == 1 { "entry" } else { "entries" })]
    StalePlan {
        reviewed: crate::ids::RunId,
        differences: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Server objects of this org whose Entra object is gone (only with `check_deleted`).
    pub deleted: Vec<ObjectDeleted>,
    /// One entry per deleted object, selected user or member user, and selected group, in the
    /// order their operations apply.
    pub entries: Vec<EntryOutcome>,
    pub refusal: Option<Refusal>,
}

/// Finds the server objects linked to `tenant` whose Entra object is soft-deleted, or absent
/// from a *complete* listing. An incomplete listing never yields "missing" evidence.
pub fn find_deleted(
    tenant: &TenantId,
    snapshot: &TenantSnapshot,
    server: &ServerState,
) -> Vec<ObjectDeleted> {
    let users: HashSet<&ObjectId> = snapshot.users.iter().map(|u| &u.id).collect();
    // (kind, Entra id, name, server key) of every server object linked to this tenant.
    let linked_users = server.users().filter_map(|u| {
        let id = u.linked_to(tenant)?;
        Some((Kind::User, id, u.name(), u.login.as_str()))
    });
    let linked_groups = server.groups().filter_map(|g| {
        let id = g.linked_to(tenant)?;
        Some((Kind::Group, id, g.name.as_str(), g.name.as_str()))
    });
    let listed = |kind: Kind, id: &ObjectId| match kind {
        Kind::User => users.contains(id),
        Kind::Group => snapshot.group(id).is_some(),
    };
    let complete = |kind: Kind| match kind {
        Kind::User => snapshot.completeness.users,
        Kind::Group => snapshot.completeness.groups,
    };
    linked_users
        .chain(linked_groups)
        .filter(|(kind, id, ..)| !listed(*kind, id))
        .filter_map(|(kind, id, name, key)| {
            let (evidence, deleted_at) = match snapshot.deleted(kind, id) {
                Some(d) => (Evidence::SoftDeleted, d.deleted_at),
                None if complete(kind) => (Evidence::Missing, None),
                None => return None,
            };
            Some(ObjectDeleted {
                kind,
                id: id.clone(),
                name: name.to_owned(),
                server_key: key.to_owned(),
                evidence,
                deleted_at,
            })
        })
        .collect()
}

/// An `--action` that names no deleted object of this run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--action {target:?}: no deleted object with that id, login or name was found in this run; run `roster plan ORG ... --check-deleted` and `roster deleted RUN` to list them")]
pub struct UnknownDeletedObject {
    pub target: String,
}

/// The action for each deleted object: its `--action` override, else `--on-deleted`.
pub fn choose_deleted_actions(
    deleted: &[ObjectDeleted],
    default: DeletedAction,
    overrides: &[ActionOverride],
) -> Result<Vec<ActionChosen>, UnknownDeletedObject> {
    let mut actions: Vec<DeletedAction> = vec![default; deleted.len()];
    for o in overrides {
        let t = o.target.trim();
        let hits: Vec<usize> = (0..deleted.len())
            .filter(|&i| {
                let d = &deleted[i];
                d.id.as_str().eq_ignore_ascii_case(t)
                    || fold_case(&d.server_key) == fold_case(t)
                    || fold_case(&d.name) == fold_case(t)
            })
            .collect();
        if hits.is_empty() {
            return Err(UnknownDeletedObject {
                target: o.target.clone(),
            });
        }
        for i in hits {
            actions[i] = o.action;
        }
    }
    Ok(deleted
        .iter()
        .zip(actions)
        .map(|(d, a)| ActionChosen {
            kind: d.kind,
            id: d.id.clone(),
            name: d.name.clone(),
            action: a.into(),
        })
        .collect())
}

/// Decides every entry. See the module documentation for the rules.
pub fn plan(input: PlanInput<'_>) -> Plan {
    Selected::of(&input).decide(&input, None, None)
}

/// The entries a plan decides, as the choices name them: the selected users and the
/// transitive members of selected groups (once each), and the selected groups — a choice
/// whose object is not in the snapshot as itself.
pub(crate) struct Selected<'a> {
    pub(crate) users: Vec<Result<&'a EntraUser, &'a ActionChosen>>,
    pub(crate) groups: Vec<Result<&'a EntraGroup, &'a ActionChosen>>,
    user_index: HashMap<&'a ObjectId, &'a EntraUser>,
}

impl<'a> Selected<'a> {
    pub(crate) fn of(input: &PlanInput<'a>) -> Selected<'a> {
        let (snapshot, deleted, choices, options) =
            (input.snapshot, input.deleted, input.choices, input.options);
        let user_index: HashMap<&ObjectId, &EntraUser> =
            snapshot.users.iter().map(|u| (&u.id, u)).collect();
        let mut seen_users: HashSet<&ObjectId> = HashSet::default();
        let mut seen_groups: HashSet<&ObjectId> = HashSet::default();
        let mut users: Vec<Result<&EntraUser, &ActionChosen>> = Vec::new();
        let mut groups: Vec<Result<&EntraGroup, &ActionChosen>> = Vec::new();
        // An object already handled as deleted is not imported as well (a choice list can only
        // hold both if it was not produced by `resolve_selection`, e.g. a hand-edited log).
        let deleted_ids: HashSet<(Kind, &ObjectId)> =
            deleted.iter().map(|d| (d.kind, &d.id)).collect();
        let is_deleted = |c: &ActionChosen| deleted_ids.contains(&(c.kind, &c.id));
        for c in choices
            .iter()
            .filter(|c| c.action == Action::Import && !is_deleted(c))
        {
            match c.kind {
                Kind::User => {
                    if seen_users.insert(&c.id) {
                        users.push(user_index.get(&c.id).copied().ok_or(c));
                    }
                }
                Kind::Group => {
                    if !seen_groups.insert(&c.id) {
                        continue;
                    }
                    let found = snapshot.group(&c.id).ok_or(c);
                    groups.push(found);
                    if let Ok(g) = found {
                        for m in &g.member_users {
                            if options.leave_out.contains(m) {
                                continue;
                            }
                            if let Some(u) = user_index.get(m) {
                                if seen_users.insert(&u.id) {
                                    users.push(Ok(u));
                                }
                            }
                        }
                    }
                }
            }
        }
        Selected {
            users,
            groups,
            user_index,
        }
    }

    /// Decides the deleted objects, then the entries `only` names (every entry without it),
    /// in name order (then id) within linked objects first, then new ones: the order the
    /// report shows them in, and the one their operations apply in. An entry left out is
    /// neither decided nor applied to the working state: only one that would change nothing
    /// may be left out (see [`crate::difference`]). `working`: the server as read, with its
    /// links indexed ([`Working::new`]), if already made.
    pub(crate) fn decide<'i>(
        &self,
        input: &PlanInput<'i>,
        only: Option<&HashSet<EntryKey>>,
        working: Option<Working<'i>>,
    ) -> Plan {
        let PlanInput {
            tenant,
            server,
            deleted,
            choices,
            group_details,
            unkept,
            rules,
            ..
        } = *input;
        let wanted =
            |kind: Kind, id: &ObjectId| only.is_none_or(|o| o.contains(&(kind, id.clone())));
        let mut users: Vec<_> = self
            .users
            .iter()
            .copied()
            .filter(|f| match f {
                Ok(u) => wanted(Kind::User, &u.id),
                Err(c) => wanted(c.kind, &c.id),
            })
            .collect();
        let mut groups: Vec<_> = self
            .groups
            .iter()
            .copied()
            .filter(|f| match f {
                Ok(g) => wanted(Kind::Group, &g.id),
                Err(c) => wanted(c.kind, &c.id),
            })
            .collect();
        users.sort_by_cached_key(|f| match f {
            Ok(u) => (u.name().to_lowercase(), u.id.clone()),
            Err(c) => (c.name.to_lowercase(), c.id.clone()),
        });
        groups.sort_by_cached_key(|f| match f {
            Ok(g) => (g.name().to_lowercase(), g.id.clone()),
            Err(c) => (c.name.to_lowercase(), c.id.clone()),
        });
        let mut w = working.unwrap_or_else(|| Working::new(tenant, server));
        // One entry per deleted object, user and group, known now: sized once, so a large plan
        // is never copied as it grows (nor held twice while it is).
        let mut entries = Vec::with_capacity(deleted.len() + users.len() + groups.len());

        // The first deleted-object action chosen for each object.
        let mut chosen: HashMap<(Kind, &ObjectId), Action> = HashMap::default();
        for c in choices.iter().filter(|c| c.action != Action::Import) {
            chosen.entry((c.kind, &c.id)).or_insert(c.action);
        }
        let (mut removals, mut group_removals) = (0u32, 0u32);
        for d in deleted {
            let action = chosen
                .get(&(d.kind, &d.id))
                .copied()
                .unwrap_or(Action::Ignore);
            let entry = decide_deleted(d, action, &w);
            if entry.op.is_some() && matches!(entry.outcome, Outcome::Disabled | Outcome::Deleted) {
                removals += 1;
                if d.kind == Kind::Group {
                    group_removals += 1;
                }
            }
            w.push(entry, &mut entries);
        }

        // Linked objects first: a rename frees a login or name before a new object asks for
        // it, so the outcome does not depend on alphabetical order.
        let (linked_users, new_users): (Vec<_>, Vec<_>) = users
            .into_iter()
            .partition(|f| f.is_ok_and(|u| w.linked_user(&u.id).is_some()));
        for found in linked_users.into_iter().chain(new_users) {
            let entry = match found {
                Ok(u) => decide_user(tenant, u, &w, rules, unkept, group_details),
                Err(c) => not_in_snapshot(c),
            };
            // A disable that follows Entra ID counts against --max-deletions like any other:
            // a listing that says every account is disabled must not disable them all.
            if entry.op.is_some() && entry.outcome == Outcome::Disabled {
                removals += 1;
            }
            w.push(entry, &mut entries);
        }
        let (linked_groups, new_groups): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .partition(|f| f.is_ok_and(|g| w.linked_group(&g.id).is_some()));
        for found in linked_groups.into_iter().chain(new_groups) {
            let entry = match found {
                Ok(g) => decide_group(tenant, g, &self.user_index, &w, group_details),
                Err(c) => not_in_snapshot(c),
            };
            w.push(entry, &mut entries);
        }
        drop(w);

        let refusal = refusal(input, removals, group_removals);
        Plan {
            deleted: deleted.to_vec(),
            entries,
            refusal,
        }
    }
}

/// Why the plan must not be applied, if it must not: its removals (`removals`, of which
/// `group_removals` groups) against the guards.
fn refusal(input: &PlanInput<'_>, removals: u32, group_removals: u32) -> Option<Refusal> {
    let PlanInput {
        tenant,
        snapshot,
        server,
        options,
        baseline,
        ..
    } = *input;
    // Counted only when a guard needs them: each is a pass over the whole server.
    let linked = || {
        server
            .users()
            .filter(|u| u.linked_to(tenant).is_some())
            .count() as u32
    };
    let linked_groups = || {
        server
            .groups()
            .filter(|g| g.linked_to(tenant).is_some())
            .count() as u32
    };
    // A listing that shrank this much, on a run that would remove objects, is refused: a
    // broken enumeration must never turn into deletions.
    let shrunk = |kind: Kind, now: usize, complete: bool| {
        let baseline = baseline?;
        let before = match kind {
            Kind::User => baseline.listed.users,
            Kind::Group => baseline.listed.groups,
        };
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        (complete
            && removals > 0
            && before >= SHRINK_MIN_BEFORE
            && now.saturating_mul(SHRINK_SUSPECT) < before)
            .then_some(Refusal::ShrunkListing {
                kind,
                now,
                before,
                run: baseline.run,
                removals,
            })
    };
    let guarded = !options.allow_empty_source;
    let empty = guarded && snapshot.users.is_empty() && snapshot.completeness.users;
    if let Some(linked) = empty.then(linked).filter(|n| *n > 0) {
        Some(Refusal::EmptySource { linked })
    } else if guarded
        && snapshot.groups.is_empty()
        && snapshot.completeness.groups
        && group_removals > 0
    {
        Some(Refusal::NoGroups {
            linked: linked_groups(),
        })
    } else if let Some(refusal) = guarded
        .then(|| {
            shrunk(
                Kind::User,
                snapshot.users.len(),
                snapshot.completeness.users,
            )
            .or_else(|| {
                shrunk(
                    Kind::Group,
                    snapshot.groups.len(),
                    snapshot.completeness.groups,
                )
            })
        })
        .flatten()
    {
        Some(refusal)
    } else if removals > options.max_deletions {
        Some(Refusal::TooManyDeletions {
            planned: removals,
            limit: options.max_deletions,
        })
    } else {
        None
    }
}

/// The server as the plan so far leaves it, with this tenant's links indexed.
pub(crate) struct Working<'a> {
    tenant: &'a TenantId,
    state: ServerState,
    users_by_id: HashMap<ObjectId, SmolStr>,
    groups_by_id: HashMap<ObjectId, SmolStr>,
}

impl<'a> Working<'a> {
    pub(crate) fn new(tenant: &'a TenantId, server: &ServerState) -> Self {
        let users_by_id = server
            .users()
            .filter_map(|u| u.linked_to(tenant).map(|id| (id.clone(), u.login.clone())))
            .collect();
        let groups_by_id = server
            .groups()
            .filter_map(|g| g.linked_to(tenant).map(|id| (id.clone(), g.name.clone())))
            .collect();
        Working {
            tenant,
            state: server.clone(),
            users_by_id,
            groups_by_id,
        }
    }

    fn linked_user(&self, id: &ObjectId) -> Option<&ServerUser> {
        self.users_by_id
            .get(id)
            .and_then(|login| self.state.user(login))
    }

    fn linked_group(&self, id: &ObjectId) -> Option<&ServerGroup> {
        self.groups_by_id
            .get(id)
            .and_then(|name| self.state.group(name))
    }

    /// Records an entry and applies its operation to the working state.
    fn push(&mut self, entry: EntryOutcome, entries: &mut Vec<EntryOutcome>) {
        if let Some(op) = &entry.op {
            match op {
                ServerOp::PutUser { user, .. } => {
                    if let Some(id) = user.linked_to(self.tenant) {
                        self.users_by_id.insert(id.clone(), user.login.clone());
                    }
                }
                ServerOp::PutGroup { group, .. } => {
                    if let Some(id) = group.linked_to(self.tenant) {
                        self.groups_by_id.insert(id.clone(), group.name.clone());
                    }
                }
                ServerOp::RemoveUser { .. } | ServerOp::RemoveGroup { .. } => {
                    if entry.kind == Kind::User {
                        self.users_by_id.remove(&entry.id);
                    } else {
                        self.groups_by_id.remove(&entry.id);
                    }
                }
                ServerOp::SetUserEnabled { .. } | ServerOp::SetGroupEnabled { .. } => {}
            }
            self.state.apply_quietly(op);
        }
        entries.push(entry);
    }

    /// The login a member user has on the server once the plan so far is applied.
    fn member_login(&self, u: &EntraUser) -> Option<SmolStr> {
        if !u.account_enabled {
            return None;
        }
        // `users_by_id` follows every operation, so it holds the login the user has now.
        self.users_by_id.get(&u.id).cloned()
    }
}

fn entry(
    kind: Kind,
    id: &ObjectId,
    name: &str,
    outcome: Outcome,
    detail: impl Into<String>,
) -> EntryOutcome {
    EntryOutcome {
        kind,
        id: id.clone(),
        name: name.to_owned(),
        outcome,
        detail: detail.into(),
        reason: None,
        changes: Vec::new(),
        op: None,
    }
}

fn not_in_snapshot(c: &ActionChosen) -> EntryOutcome {
    let mut e = entry(
        c.kind,
        &c.id,
        &c.name,
        Outcome::Failed,
        format!("{} not found in the tenant snapshot", c.kind.as_str()),
    );
    e.reason = Some(Reason::NotInSnapshot);
    e
}

fn decide_deleted(d: &ObjectDeleted, action: Action, w: &Working<'_>) -> EntryOutcome {
    let why = match (d.evidence, d.deleted_at) {
        (Evidence::SoftDeleted, Some(at)) => format!(
            "in the Entra ID recycle bin since {}",
            at.format("%Y-%m-%d")
        ),
        (Evidence::SoftDeleted, None) => "in the Entra ID recycle bin".to_owned(),
        (Evidence::Missing, _) => "no longer in Entra ID".to_owned(),
    };
    let enabled = match d.kind {
        Kind::User => w.state.user(&d.server_key).map(|u| u.enabled),
        Kind::Group => w.state.group(&d.server_key).map(|g| g.enabled),
    };
    let Some(enabled) = enabled else {
        let mut e = entry(
            d.kind,
            &d.id,
            &d.name,
            Outcome::Failed,
            "no longer on the server",
        );
        e.reason = Some(Reason::NotOnServer);
        return e;
    };
    let mut e = entry(
        d.kind,
        &d.id,
        &d.name,
        Outcome::Ignored,
        format!("{why}; left as is"),
    );
    match action {
        Action::Ignore | Action::Import => {}
        Action::Disable if !enabled => {
            e.outcome = Outcome::Unchanged;
            e.detail = format!("{why}; already disabled");
            e.reason = Some(Reason::AlreadyDisabled);
        }
        Action::Disable => {
            e.outcome = Outcome::Disabled;
            e.detail = format!("{why}; disabled on the server (reversible)");
            e.changes.push(change("enabled", true, false));
            e.op = Some(match d.kind {
                Kind::User => ServerOp::SetUserEnabled {
                    login: d.server_key.clone(),
                    enabled: false,
                },
                Kind::Group => ServerOp::SetGroupEnabled {
                    name: d.server_key.clone(),
                    enabled: false,
                },
            });
        }
        Action::Delete => {
            e.outcome = Outcome::Deleted;
            e.detail = format!("{why}; removed from the server");
            e.op = Some(match d.kind {
                Kind::User => ServerOp::RemoveUser {
                    login: d.server_key.clone(),
                },
                Kind::Group => ServerOp::RemoveGroup {
                    name: d.server_key.clone(),
                },
            });
        }
    }
    e
}

fn change(field: &str, from: impl Into<Value>, to: impl Into<Value>) -> Change {
    Change {
        field: field.to_owned(),
        from: from.into(),
        to: to.into(),
    }
}

fn logins(members: &[SmolStr]) -> Value {
    Value::Array(members.iter().map(|m| Value::from(m.as_str())).collect())
}

fn opt(v: &Option<SmolStr>) -> Value {
    v.as_ref()
        .map_or(Value::Null, |s| Value::String(s.to_string()))
}

fn desired_user(tenant: &TenantId, u: &EntraUser) -> ServerUser {
    ServerUser {
        login: u.user_principal_name.clone(),
        display_name: u.display_name.clone(),
        email: u.mail.clone(),
        department: u.department.clone(),
        auth_type: AuthType::Entra,
        entra_id: Some(u.id.clone()),
        tenant_id: Some(tenant.clone()),
        enabled: true,
        entra: Some(EntraAttributes::from(u)),
        disabled_by: None,
    }
}

/// Field-level differences between a linked server user and what Entra says it should be.
fn user_changes(old: &ServerUser, new: &ServerUser) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.login != new.login {
        changes.push(change("login", old.login.as_str(), new.login.as_str()));
    }
    for (field, a, b) in [
        ("displayName", &old.display_name, &new.display_name),
        ("email", &old.email, &new.email),
        ("department", &old.department, &new.department),
    ] {
        if a != b {
            changes.push(change(field, opt(a), opt(b)));
        }
    }
    if old.auth_type != new.auth_type {
        changes.push(change(
            "authType",
            serde_json::to_value(old.auth_type).unwrap_or_default(),
            "entra",
        ));
    }
    if old.enabled != new.enabled {
        changes.push(change("enabled", old.enabled, new.enabled));
    }
    let none = None;
    let (oa, na) = (old.entra.as_ref(), new.entra.as_ref());
    let attr = |a: Option<&EntraAttributes>, f: fn(&EntraAttributes) -> &Option<SmolStr>| {
        a.map_or(&none, f).clone()
    };
    for (field, f) in [
        (
            "entra.givenName",
            (|a: &EntraAttributes| &a.given_name) as fn(&EntraAttributes) -> &Option<SmolStr>,
        ),
        ("entra.surname", |a| &a.surname),
        ("entra.jobTitle", |a| &a.job_title),
    ] {
        let (a, b) = (attr(oa, f), attr(na, f));
        if a != b {
            changes.push(change(field, opt(&a), opt(&b)));
        }
    }
    let user_type = |a: Option<&EntraAttributes>| {
        a.and_then(|a| a.user_type)
            .map_or(Value::Null, |t| t.label().into())
    };
    if user_type(oa) != user_type(na) {
        changes.push(change("entra.userType", user_type(oa), user_type(na)));
    }
    if changes.is_empty() && old != new {
        // Something mirrored (the stored UPN, mail, ...) drifted without a visible field
        // changing: still an update, shown as the whole attribute set.
        changes.push(change(
            "entra",
            serde_json::to_value(&old.entra).unwrap_or_default(),
            serde_json::to_value(&new.entra).unwrap_or_default(),
        ));
    }
    changes
}

/// The server object holding a login or name an Entra object wants.
struct Holder<'a> {
    key: &'a str,
    auth: Option<AuthType>,
    tenant: Option<&'a TenantId>,
    id: Option<&'a ObjectId>,
}

impl<'a> Holder<'a> {
    fn user(u: &'a ServerUser) -> Self {
        Holder {
            key: &u.login,
            auth: Some(u.auth_type),
            tenant: u.tenant_id.as_ref(),
            id: u.entra_id.as_ref(),
        }
    }

    fn group(g: &'a ServerGroup) -> Self {
        Holder {
            key: &g.name,
            auth: None,
            tenant: g.tenant_id.as_ref(),
            id: g.entra_id.as_ref(),
        }
    }

    /// Why this holder blocks the Entra object: a reason code and the words for it.
    fn blocks(&self, what: &str, tenant: &TenantId) -> (Reason, String) {
        let key = self.key;
        match (self.auth, self.tenant, self.id) {
            (_, Some(t), Some(_)) if t != tenant => (
                Reason::OtherTenant,
                format!("{what} {key:?} belongs to an object imported from another organization (tenant {t}); it is never touched"),
            ),
            (_, Some(_), Some(id)) => {
                (Reason::LinkedElsewhere, format!("{what} {key:?} is linked to another Entra object ({id})"))
            }
            (Some(AuthType::Local), ..) => (
                Reason::LocalUser,
                format!("a local user with login {key:?} exists and is not linked to Entra ID"),
            ),
            (Some(AuthType::Windows), ..) => (
                Reason::WindowsUser,
                format!("an Active Directory (Windows) user with login {key:?} exists and is not linked to Entra ID"),
            ),
            _ => (Reason::NameTaken, format!("{what} {key:?} exists on the server and is not linked to Entra ID")),
        }
    }
}

/// Marks `e` a conflict with `holder`; `renamed_to` when a linked object's rename is blocked.
fn conflict(
    e: &mut EntryOutcome,
    what: &str,
    holder: Holder<'_>,
    tenant: &TenantId,
    renamed_to: Option<&str>,
) {
    let (reason, words) = holder.blocks(what, tenant);
    e.outcome = Outcome::Conflict;
    e.reason = Some(reason);
    e.detail = match renamed_to {
        Some(new) => format!("renamed in Entra ID to {new:?}, but {words}"),
        None => words,
    };
}

/// From these decision rules on, an added user's detail names an authentication type only on
/// a server that has them: a SCIM service (which, as it keeps no group details, is told by
/// `group_details`) has none, and its report said "Microsoft Entra ID" for nothing.
pub const RULES_AUTH_TYPE_WHERE_KEPT: u32 = 4;

fn decide_user(
    tenant: &TenantId,
    u: &EntraUser,
    w: &Working<'_>,
    rules: u32,
    unkept: &[String],
    group_details: bool,
) -> EntryOutcome {
    let mut e = entry(
        Kind::User,
        &u.id,
        u.name(),
        Outcome::Skipped,
        "account disabled in Entra ID",
    );
    let linked = w.linked_user(&u.id);
    if !u.account_enabled && (rules < RULES_ACCOUNT_STATE || linked.is_none()) {
        e.reason = Some(Reason::AccountDisabled);
        return e;
    }
    let mut desired = desired_user(tenant, u).without(unkept);
    if let Some(old) = linked.filter(|_| rules >= RULES_ACCOUNT_STATE) {
        // The account follows Entra ID's: disabled when Entra's is, enabled again when it is
        // enabled — unless an administrator disabled it here, which roster does not undo.
        let held = !old.enabled && old.disabled_by.is_some();
        desired.enabled = u.account_enabled && !held;
        desired.disabled_by = if desired.enabled {
            None
        } else {
            old.disabled_by
        };
    }
    match linked {
        Some(old) => {
            if fold_case(&old.login) != fold_case(&desired.login) {
                if let Some(holder) = w.state.user(&desired.login) {
                    conflict(
                        &mut e,
                        "login",
                        Holder::user(holder),
                        tenant,
                        Some(&desired.login),
                    );
                    return e;
                }
            }
            e.changes = user_changes(old, &desired);
            let disables = old.enabled && !desired.enabled;
            if e.changes.is_empty() {
                e.outcome = Outcome::Unchanged;
                e.detail = match (u.account_enabled, desired.enabled) {
                    (false, _) => {
                        e.reason = Some(Reason::AlreadyDisabled);
                        format!(
                            "login {}; account disabled in Entra ID, already disabled on the server",
                            old.login
                        )
                    }
                    (true, false) => {
                        e.reason = Some(Reason::DisabledByAdministrator);
                        format!(
                            "login {}; disabled on the server by an administrator, left disabled (`roster server enable` enables it)",
                            old.login
                        )
                    }
                    (true, true) => format!("login {}; already up to date", old.login),
                };
            } else {
                e.outcome = if disables {
                    e.reason = Some(Reason::AccountDisabled);
                    Outcome::Disabled
                } else {
                    Outcome::Updated
                };
                e.detail = match e.changes.iter().find(|c| c.field == "login") {
                    Some(_) => format!("login renamed from {} to {}", old.login, desired.login),
                    None => format!("login {}", desired.login),
                };
                if disables {
                    e.detail = format!(
                        "account disabled in Entra ID; disabled on the server ({})",
                        e.detail
                    );
                } else if !desired.enabled && old.disabled_by.is_some() {
                    e.detail
                        .push_str("; disabled on the server by an administrator, left disabled");
                }
                let previous_login = (old.login != desired.login).then(|| old.login.to_string());
                e.op = Some(ServerOp::PutUser {
                    previous_login,
                    user: Arc::new(desired),
                });
            }
        }
        None => match w.state.user(&desired.login) {
            Some(holder) => conflict(&mut e, "login", Holder::user(holder), tenant, None),
            None => {
                e.outcome = Outcome::Added;
                e.detail = if group_details || rules < RULES_AUTH_TYPE_WHERE_KEPT {
                    format!(
                        "login {}, authentication type Microsoft Entra ID",
                        desired.login
                    )
                } else {
                    format!("login {}", desired.login)
                };
                e.op = Some(ServerOp::PutUser {
                    previous_login: None,
                    user: Arc::new(desired),
                });
            }
        },
    }
    e
}

fn decide_group(
    tenant: &TenantId,
    g: &EntraGroup,
    users: &HashMap<&ObjectId, &EntraUser>,
    w: &Working<'_>,
    group_details: bool,
) -> EntryOutcome {
    let mut members: Vec<SmolStr> = g
        .member_users
        .iter()
        .filter_map(|id| users.get(id))
        .filter_map(|u| w.member_login(u))
        .collect();
    // By case-folded login, then as spelled; one login per fold (the first so ordered) —
    // compared without making the folds (a string each) when the logins are ASCII.
    members.sort_unstable_by(|a, b| cmp_folded(a, b).then_with(|| a.cmp(b)));
    members.dedup_by(|a, b| cmp_folded(a, b).is_eq());
    // A list of its own, exactly as long: it lives as long as the plan.
    members.shrink_to_fit();
    let label = g.group_type().label();
    // What the server cannot keep is neither written nor compared.
    let desired = ServerGroup {
        name: g.name().into(),
        description: g.description.clone().filter(|_| group_details),
        group_type: if group_details { label } else { "" }.into(),
        entra_id: Some(g.id.clone()),
        tenant_id: Some(tenant.clone()),
        enabled: true,
        members,
    };
    let count = match desired.members.len() {
        1 => "1 member".to_owned(),
        n => format!("{n} members"),
    };
    let mut e = entry(
        Kind::Group,
        &g.id,
        g.name(),
        Outcome::Added,
        format!("{label}, {count}"),
    );
    match w.linked_group(&g.id) {
        Some(old) => {
            if fold_case(&old.name) != fold_case(&desired.name) {
                if let Some(holder) = w.state.group(&desired.name) {
                    conflict(
                        &mut e,
                        "group name",
                        Holder::group(holder),
                        tenant,
                        Some(&desired.name),
                    );
                    return e;
                }
            }
            if old.name != desired.name {
                e.changes
                    .push(change("name", old.name.as_str(), desired.name.as_str()));
            }
            if old.description != desired.description {
                e.changes.push(change(
                    "description",
                    opt(&old.description),
                    opt(&desired.description),
                ));
            }
            if old.group_type != desired.group_type {
                e.changes.push(change(
                    "type",
                    old.group_type.as_str(),
                    desired.group_type.as_str(),
                ));
            }
            if old.enabled != desired.enabled {
                e.changes
                    .push(change("enabled", old.enabled, desired.enabled));
            }
            if old.members != desired.members {
                e.changes.push(change(
                    "members",
                    logins(&old.members),
                    logins(&desired.members),
                ));
            }
            if e.changes.is_empty() {
                e.outcome = Outcome::Unchanged;
                e.detail = format!("{label}, {count}; already up to date");
            } else {
                e.outcome = Outcome::Updated;
                let previous_name = (old.name != desired.name).then(|| old.name.to_string());
                e.op = Some(ServerOp::PutGroup {
                    previous_name,
                    group: Arc::new(desired),
                });
            }
        }
        None => match w.state.group(&desired.name) {
            Some(holder) => conflict(&mut e, "group name", Holder::group(holder), tenant, None),
            None => {
                e.op = Some(ServerOp::PutGroup {
                    previous_name: None,
                    group: Arc::new(desired),
                })
            }
        },
    }
    e
}
