//! Plan by difference: a run recorded against a base decides again only the entries its
//! changes reach. Every other entry would be decided as the chain implies for it — its last
//! outcome, or `unchanged` after a change that was applied — which an incremental run does not
//! record ([`crate::chain::worth_recording`]): it is counted, not decided.
//!
//! An entry is decided again (a *seed*) when:
//! - its Entra object changed, appeared or is no longer listed, or its choice changed; it is
//!   a member of a group whose Entra object or choice changed (it may have been no entry of
//!   the base: its last outcome is then older than the base);
//! - it has no last outcome; its last was a conflict or a failure (recorded every run); or its
//!   last changed the server and either that change was not made (a dry run planned it) or
//!   what it made is not simply `unchanged` the next time (a user disabled is `unchanged`,
//!   *already disabled*: decided again, that outcome is recorded and settles);
//! - a server record it reads changed: the one at the login or name it wants, or the one
//!   linked to it (outside edits: a run's own changes are in its base already);
//! - it is a deleted object, or a choice whose object is not in the snapshot (few, each decided
//!   every run);
//!
//! and then, until nothing more is reached (the *closure*):
//! - a group listing a user decided again, or a user whose Entra object changed (a group's
//!   members are its users' logins once they are decided);
//! - an entry that wants, or is linked at, a login or name an operation decided writes.
//!
//! That is everything a decision reads ([`crate::plan`]): the entry's own object and choice,
//! the server records at its link and at the key it wants, what earlier operations wrote to
//! those keys, and — a group — its members' logins. An entry left undecided changes nothing,
//! so the working state the decided ones see is the full plan's. `app/tests/incremental.rs`
//! checks every run planned this way against a full run over the same inputs.

use std::collections::HashMap as StdHashMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::chain::{EntryKey, LastOutcome};
use crate::event::{Event, GroupSeen, Listing, Outcome, Summary, UserSeen};
use crate::ids::{fold_case, ObjectId};
use crate::model::{Kind, ServerOp};
use crate::plan::{Plan, PlanInput, Selected};

/// What a run's differences from its base name: the objects read anew or no longer listed,
/// and the choices made or withdrawn.
#[derive(Debug, Default)]
pub struct Changed {
    users: HashSet<ObjectId>,
    groups: HashSet<ObjectId>,
    /// Case-folded logins.
    server_users: HashSet<String>,
    /// Case-folded names.
    server_groups: HashSet<String>,
    choices: HashSet<EntryKey>,
}

impl Changed {
    /// What `differences` (a run's [`crate::chain::ChainState::differences`]) name.
    pub fn of<'e>(differences: impl IntoIterator<Item = &'e Event>) -> Changed {
        let mut c = Changed::default();
        for event in differences {
            match event {
                Event::UserSeen(UserSeen::Entra { user }) => {
                    c.users.insert(user.id.clone());
                }
                Event::GroupSeen(GroupSeen::Entra { group }) => {
                    c.groups.insert(group.id.clone());
                }
                Event::UserSeen(UserSeen::Server { user }) => {
                    c.server_users.insert(fold_case(&user.login));
                }
                Event::GroupSeen(GroupSeen::Server { group }) => {
                    c.server_groups.insert(fold_case(&group.name));
                }
                Event::ObjectUnlisted(u) => match (u.source, u.kind) {
                    (Listing::Entra, kind) => {
                        if let Ok(id) = ObjectId::parse(&u.key) {
                            match kind {
                                Kind::User => c.users.insert(id),
                                Kind::Group => c.groups.insert(id),
                            };
                        }
                    }
                    (Listing::Server, Kind::User) => {
                        c.server_users.insert(fold_case(&u.key));
                    }
                    (Listing::Server, Kind::Group) => {
                        c.server_groups.insert(fold_case(&u.key));
                    }
                    // The recycle bin says which objects are deleted: every deleted object is
                    // decided anyway.
                    (Listing::DeletedItems, _) => {}
                },
                Event::ActionChosen(a) => {
                    c.choices.insert((a.kind, a.id.clone()));
                }
                Event::ChoiceWithdrawn(w) => {
                    c.choices.insert((w.kind, w.id.clone()));
                }
                _ => {}
            }
        }
        c
    }
}

/// A plan by difference: the entries decided again, and the others counted by the outcome the
/// chain implies for them.
#[derive(Debug)]
pub struct ByDifference {
    /// The deleted objects and the entries decided again, in the full plan's order.
    pub plan: Plan,
    /// The entries not decided again, by outcome.
    pub not_decided: Summary,
}

/// Plans `input` deciding only what `changed` reaches (see the module documentation).
/// `last`: each entry's last outcome in the chain.
pub fn plan(
    input: PlanInput<'_>,
    changed: &Changed,
    last: &StdHashMap<EntryKey, LastOutcome>,
) -> ByDifference {
    let selected = Selected::of(&input);
    let mut reach = Reach {
        input: &input,
        selected: &selected,
        wanted: None,
        only: HashSet::default(),
    };
    reach.seed(changed, last);
    loop {
        let plan = selected.decide(&input, Some(&reach.only));
        if !reach.close(&plan) {
            let mut not_decided = Summary::default();
            let undecided = |key: EntryKey| (!reach.only.contains(&key)).then_some(key);
            let keys = selected
                .users
                .iter()
                .filter_map(|f| f.ok().map(|u| (Kind::User, u.id.clone())))
                .chain(
                    selected
                        .groups
                        .iter()
                        .filter_map(|f| f.ok().map(|g| (Kind::Group, g.id.clone()))),
                );
            for key in keys.filter_map(undecided) {
                not_decided.count(LastOutcome::implied(last.get(&key)).0);
            }
            return ByDifference { plan, not_decided };
        }
    }
}

/// The entries a plan by difference decides, growing to its closure.
struct Reach<'a, 'i> {
    input: &'a PlanInput<'i>,
    selected: &'a Selected<'i>,
    /// Which entries want each case-folded login (users) and name (groups): built the first
    /// time a key is asked about.
    wanted: Option<Wanted>,
    only: HashSet<EntryKey>,
}

#[derive(Default)]
struct Wanted {
    users: HashMap<String, Vec<ObjectId>>,
    groups: HashMap<String, Vec<ObjectId>>,
}

impl Reach<'_, '_> {
    fn seed(&mut self, changed: &Changed, last: &StdHashMap<EntryKey, LastOutcome>) {
        let (tenant, server) = (self.input.tenant, self.input.server);
        // Whether an entry is decided again for what its last outcome was: `settled`, whether
        // the change it made leaves it `unchanged` with no reason when nothing changed since.
        let again = |key: &EntryKey, settled: &dyn Fn(Outcome) -> bool| match last.get(key) {
            None => true,
            Some(l) if matches!(l.outcome, Outcome::Conflict | Outcome::Failed) => true,
            Some(l) => l.changed && !(l.applied && settled(l.outcome)),
        };
        let (users, groups) = (&self.selected.users, &self.selected.groups);
        for found in users {
            let u = match found {
                Ok(u) => u,
                Err(c) => {
                    self.only.insert((c.kind, c.id.clone()));
                    continue;
                }
            };
            let key = (Kind::User, u.id.clone());
            // An added user is enabled, as Entra has it; an updated one is, if its account is
            // enabled in Entra ID and on the server (else it is `unchanged` for that reason:
            // already disabled, or disabled by an administrator). A disabled one is not.
            let settled = |outcome: Outcome| match outcome {
                Outcome::Added => true,
                Outcome::Updated => {
                    u.account_enabled
                        && server
                            .user(&u.user_principal_name)
                            .is_some_and(|s| s.enabled && s.linked_to(tenant) == Some(&u.id))
                }
                _ => false,
            };
            if changed.users.contains(&u.id)
                || changed.choices.contains(&key)
                || again(&key, &settled)
            {
                self.only.insert(key);
            }
        }
        for found in groups {
            let g = match found {
                Ok(g) => g,
                Err(c) => {
                    self.only.insert((c.kind, c.id.clone()));
                    continue;
                }
            };
            let key = (Kind::Group, g.id.clone());
            // A group changed or chosen anew may list users that were no entry of the base
            // (their last outcome is older, from before they left): each is decided again.
            if changed.groups.contains(&g.id) || changed.choices.contains(&key) {
                let members = g.member_users.iter().map(|m| (Kind::User, m.clone()));
                self.only.extend(members);
                self.only.insert(key);
                continue;
            }
            // A group is always enabled: once added or updated, it is `unchanged`.
            let settled = |outcome: Outcome| matches!(outcome, Outcome::Added | Outcome::Updated);
            if again(&key, &settled) {
                self.only.insert(key);
            }
        }
        for login in &changed.server_users {
            self.user_key(login);
        }
        for name in &changed.server_groups {
            self.group_key(name);
        }
        self.groups_of_users(&changed.users);
    }

    /// Adds what `plan`'s operations reach; whether anything was added.
    fn close(&mut self, plan: &Plan) -> bool {
        let before = self.only.len();
        for op in plan.entries.iter().filter_map(|e| e.op.as_ref()) {
            match op {
                ServerOp::PutUser {
                    previous_login,
                    user,
                } => {
                    if let Some(old) = previous_login {
                        self.user_key(&fold_case(old));
                    }
                    self.user_key(&fold_case(&user.login));
                }
                ServerOp::RemoveUser { login } | ServerOp::SetUserEnabled { login, .. } => {
                    self.user_key(&fold_case(login))
                }
                ServerOp::PutGroup {
                    previous_name,
                    group,
                } => {
                    if let Some(old) = previous_name {
                        self.group_key(&fold_case(old));
                    }
                    self.group_key(&fold_case(&group.name));
                }
                ServerOp::RemoveGroup { name } | ServerOp::SetGroupEnabled { name, .. } => {
                    self.group_key(&fold_case(name))
                }
            }
        }
        let decided: HashSet<ObjectId> = self
            .only
            .iter()
            .filter(|(kind, _)| *kind == Kind::User)
            .map(|(_, id)| id.clone())
            .collect();
        self.groups_of_users(&decided);
        // An entry reached for the first time may reach further: decide again.
        self.only.len() > before
    }

    /// The users that want `login`, and the one linked at it.
    fn user_key(&mut self, login: &str) {
        let tenant = self.input.tenant;
        if let Some(id) = self
            .input
            .server
            .user(login)
            .and_then(|u| u.linked_to(tenant))
        {
            self.only.insert((Kind::User, id.clone()));
        }
        let wanted = self.wanted();
        if let Some(ids) = wanted.users.get(login) {
            let ids: Vec<ObjectId> = ids.clone();
            self.only.extend(ids.into_iter().map(|id| (Kind::User, id)));
        }
    }

    /// The groups that want `name`, and the one linked at it.
    fn group_key(&mut self, name: &str) {
        let tenant = self.input.tenant;
        if let Some(id) = self
            .input
            .server
            .group(name)
            .and_then(|g| g.linked_to(tenant))
        {
            self.only.insert((Kind::Group, id.clone()));
        }
        let wanted = self.wanted();
        if let Some(ids) = wanted.groups.get(name) {
            let ids: Vec<ObjectId> = ids.clone();
            self.only
                .extend(ids.into_iter().map(|id| (Kind::Group, id)));
        }
    }

    /// The selected groups that list any of `users`.
    fn groups_of_users(&mut self, users: &HashSet<ObjectId>) {
        if users.is_empty() {
            return;
        }
        for g in self.selected.groups.iter().filter_map(|f| f.ok()) {
            if g.member_users.iter().any(|m| users.contains(m)) {
                self.only.insert((Kind::Group, g.id.clone()));
            }
        }
    }

    fn wanted(&mut self) -> &Wanted {
        let selected = self.selected;
        self.wanted.get_or_insert_with(|| {
            let mut w = Wanted::default();
            for u in selected.users.iter().filter_map(|f| f.ok()) {
                w.users
                    .entry(fold_case(&u.user_principal_name))
                    .or_default()
                    .push(u.id.clone());
            }
            for g in selected.groups.iter().filter_map(|f| f.ok()) {
                w.groups
                    .entry(fold_case(g.name()))
                    .or_default()
                    .push(g.id.clone());
            }
            w
        })
    }
}
