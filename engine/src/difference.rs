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
use crate::plan::{Plan, PlanInput, Selected, Working};

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

/// What a plan by difference needs before it knows what changed: the entries, which entries
/// want each login and name, and the server's links — made while the run digests and compares
/// its inputs (see [`prepare`]).
pub struct Prepared<'a> {
    input: PlanInput<'a>,
    selected: Selected<'a>,
    wanted: Wanted,
    /// The login (users) or name (groups) of the server record linked to each Entra object of
    /// the run's tenant.
    linked: HashMap<EntryKey, String>,
    /// The planner's working copy of the server, made ahead (taken by the first decision).
    working: Option<Working<'a>>,
}

/// Which entries want each case-folded login (users) and name (groups).
#[derive(Default)]
struct Wanted {
    users: HashMap<String, Vec<ObjectId>>,
    groups: HashMap<String, Vec<ObjectId>>,
}

/// Prepares to plan `input` by difference.
pub fn prepare(input: PlanInput<'_>) -> Prepared<'_> {
    let selected = Selected::of(&input);
    let mut wanted = Wanted::default();
    for u in selected.users.iter().filter_map(|f| f.ok()) {
        wanted
            .users
            .entry(fold_case(&u.user_principal_name))
            .or_default()
            .push(u.id.clone());
    }
    for g in selected.groups.iter().filter_map(|f| f.ok()) {
        wanted
            .groups
            .entry(fold_case(g.name()))
            .or_default()
            .push(g.id.clone());
    }
    let tenant = input.tenant;
    let users = input.server.users().filter_map(|u| {
        let id = u.linked_to(tenant)?;
        Some(((Kind::User, id.clone()), fold_case(&u.login)))
    });
    let groups = input.server.groups().filter_map(|g| {
        let id = g.linked_to(tenant)?;
        Some(((Kind::Group, id.clone()), fold_case(&g.name)))
    });
    let linked = users.chain(groups).collect();
    Prepared {
        working: Some(Working::new(input.tenant, input.server)),
        input,
        selected,
        wanted,
        linked,
    }
}

impl Prepared<'_> {
    /// Plans deciding only what `changed` reaches (see the module documentation). `last`:
    /// each entry's last outcome in the chain.
    pub fn plan(
        mut self,
        changed: &Changed,
        last: &StdHashMap<EntryKey, LastOutcome>,
    ) -> ByDifference {
        let mut working = self.working.take();
        let (input, selected) = (&self.input, &self.selected);
        let mut reach = Reach {
            prepared: &self,
            only: HashSet::default(),
            keys_of: Vec::new(),
        };
        reach.seed(changed, last);
        reach.reach_keys();
        loop {
            let plan = selected.decide(input, Some(&reach.only), working.take());
            // What an operation writes was reached beforehand (the keys an entry may write are
            // its own and its link's): this only checks it.
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
            reach.reach_keys();
        }
    }
}

/// The entries a plan by difference decides, growing to its closure.
struct Reach<'a, 'i> {
    prepared: &'a Prepared<'i>,
    only: HashSet<EntryKey>,
    /// Entries reached whose keys are not yet followed.
    keys_of: Vec<EntryKey>,
}

impl Reach<'_, '_> {
    fn insert(&mut self, key: EntryKey) {
        if self.only.insert(key.clone()) {
            self.keys_of.push(key);
        }
    }

    fn seed(&mut self, changed: &Changed, last: &StdHashMap<EntryKey, LastOutcome>) {
        let (tenant, server) = (self.prepared.input.tenant, self.prepared.input.server);
        // Whether an entry is decided again for what its last outcome was: `settled`, whether
        // the change it made leaves it `unchanged` with no reason when nothing changed since.
        let again = |key: &EntryKey, settled: &dyn Fn(Outcome) -> bool| match last.get(key) {
            None => true,
            Some(l) if matches!(l.outcome, Outcome::Conflict | Outcome::Failed) => true,
            Some(l) => l.changed && !(l.applied && settled(l.outcome)),
        };
        let selected = &self.prepared.selected;
        for found in &selected.users {
            let u = match found {
                Ok(u) => u,
                Err(c) => {
                    self.insert((c.kind, c.id.clone()));
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
                self.insert(key);
            }
        }
        for found in &selected.groups {
            let g = match found {
                Ok(g) => g,
                Err(c) => {
                    self.insert((c.kind, c.id.clone()));
                    continue;
                }
            };
            let key = (Kind::Group, g.id.clone());
            // A group changed or chosen anew may list users that were no entry of the base
            // (their last outcome is older, from before they left): each is decided again.
            if changed.groups.contains(&g.id) || changed.choices.contains(&key) {
                for m in &g.member_users {
                    self.insert((Kind::User, m.clone()));
                }
                self.insert(key);
                continue;
            }
            // A group is always enabled: once added or updated, it is `unchanged`.
            let settled = |outcome: Outcome| matches!(outcome, Outcome::Added | Outcome::Updated);
            if again(&key, &settled) {
                self.insert(key);
            }
        }
        // A deleted object's operation writes its server record.
        for d in self.prepared.input.deleted {
            match d.kind {
                Kind::User => self.user_key(&fold_case(&d.server_key)),
                Kind::Group => self.group_key(&fold_case(&d.server_key)),
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

    /// Follows the keys the entries reached may write — the login or name each wants, and the
    /// one its link holds — to the entries that read them, and the users reached to their
    /// groups, until nothing new is reached.
    fn reach_keys(&mut self) {
        while !self.keys_of.is_empty() {
            let mut users = HashSet::default();
            for key in std::mem::take(&mut self.keys_of) {
                if let Some(held) = self.prepared.linked.get(&key) {
                    match key.0 {
                        Kind::User => self.user_key(held),
                        Kind::Group => self.group_key(held),
                    }
                }
                match key.0 {
                    Kind::User => {
                        if let Some(u) = self.prepared.input.snapshot.user(&key.1) {
                            self.user_key(&fold_case(&u.user_principal_name));
                        }
                        users.insert(key.1);
                    }
                    Kind::Group => {
                        if let Some(g) = self.prepared.input.snapshot.group(&key.1) {
                            self.group_key(&fold_case(g.name()));
                        }
                    }
                }
            }
            self.groups_of_users(&users);
        }
    }

    /// Adds what `plan`'s operations reach; whether anything was added (the groups of a user
    /// added are [`Reach::reach_keys`]'s to follow, before the next decision).
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
        // An entry reached for the first time may reach further: decide again.
        self.only.len() > before
    }

    /// The users that want `login`, and the one linked at it.
    fn user_key(&mut self, login: &str) {
        let (input, prepared) = (&self.prepared.input, self.prepared);
        if let Some(id) = input
            .server
            .user(login)
            .and_then(|u| u.linked_to(input.tenant))
        {
            self.insert((Kind::User, id.clone()));
        }
        for id in prepared.wanted.users.get(login).into_iter().flatten() {
            self.insert((Kind::User, id.clone()));
        }
    }

    /// The groups that want `name`, and the one linked at it.
    fn group_key(&mut self, name: &str) {
        let (input, prepared) = (&self.prepared.input, self.prepared);
        if let Some(id) = input
            .server
            .group(name)
            .and_then(|g| g.linked_to(input.tenant))
        {
            self.insert((Kind::Group, id.clone()));
        }
        for id in prepared.wanted.groups.get(name).into_iter().flatten() {
            self.insert((Kind::Group, id.clone()));
        }
    }

    /// The selected groups that list any of `users`.
    fn groups_of_users(&mut self, users: &HashSet<ObjectId>) {
        if users.is_empty() {
            return;
        }
        let prepared = self.prepared;
        for g in prepared.selected.groups.iter().filter_map(|f| f.ok()) {
            if g.member_users.iter().any(|m| users.contains(m)) {
                self.insert((Kind::Group, g.id.clone()));
            }
        }
    }
}
