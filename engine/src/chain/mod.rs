//! Incremental runs: a run records what differs from its *base* (the org's last completed
//! run), and a *chain* — the last full run and the runs after it, each the base of the next —
//! folds back into every run's complete inputs and the last outcome recorded for each entry.
//!
//! Pure: what a run read and decided goes in, events come out; events go in, the rebuilt
//! state comes out. The store reading and the run's wiring are the callers'.

use std::collections::{BTreeMap, HashMap};

use sha2::Digest;

use crate::event::{
    ActionChosen, EntryOutcome, Event, GroupSeen, Listing, ObjectDeleted, ObjectUnlisted, Outcome,
    Reason, RunOptions, RunStarted, SelectionSpec, UserSeen, Withdrawn,
};
use crate::ids::{ObjectId, RunId};
use crate::model::{
    DeletedItem, EntraGroup, EntraUser, Kind, ServerGroup, ServerState, ServerUser, TenantSnapshot,
};
use crate::projection::InputsError;

pub mod mirror;

/// The most runs a chain holds, its full run included: the run after it records in full.
/// Bounds what replaying the last run of a chain reads (its full run and at most 63 sets of
/// differences) while letting a sync every 40 minutes run for a day on one full run.
pub const MAX_CHAIN: usize = 64;

/// An entry of a run: a user or a group, by Entra id.
pub type EntryKey = (Kind, ObjectId);

/// The last outcome a chain recorded for an entry: what an unrecorded entry of the next run
/// had, unless it is `unchanged` (see [`worth_recording`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastOutcome {
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    /// It changed (or, planned, would change) the server.
    pub changed: bool,
    /// Its change was made: recorded by an import (`Imported`), not planned by a dry run.
    pub applied: bool,
}

impl LastOutcome {
    /// `e`'s outcome, as an import (`applied`) or a dry run recorded it.
    fn of(e: &EntryOutcome, applied: bool) -> LastOutcome {
        LastOutcome {
            outcome: e.outcome,
            reason: e.reason,
            changed: e.op.is_some(),
            applied: applied && e.op.is_some(),
        }
    }

    /// What an entry the next run does not record had: the same outcome, for one that neither
    /// changed the server nor failed; `unchanged` otherwise.
    pub fn implied(last: Option<&LastOutcome>) -> (Outcome, Option<Reason>) {
        match last {
            Some(l) if !l.changed && l.outcome != Outcome::Failed => (l.outcome, l.reason),
            _ => (Outcome::Unchanged, None),
        }
    }
}

/// Since rules 3, an incremental run records every conflict (before: only one that differs
/// from the last).
pub const RULES_CONFLICTS_RECORDED: u32 = 3;

/// Whether an incremental run decided under `rules` records `entry`'s outcome: when it changed
/// (or would change) the server, failed, is a conflict (rules 3: the report shows every entry
/// that needs attention, always), or differs — outcome and reason — from what the chain
/// implies for it. `unchanged` is never recorded one by one, nor a skip recorded before for
/// the same reason.
pub fn worth_recording(entry: &EntryOutcome, last: Option<&LastOutcome>, rules: u32) -> bool {
    entry.op.is_some()
        || entry.outcome == Outcome::Failed
        || (entry.outcome == Outcome::Conflict && rules >= RULES_CONFLICTS_RECORDED)
        || (entry.outcome, entry.reason) != LastOutcome::implied(last)
}

/// SHA-256 of a run's complete inputs in canonical form: the tenant snapshot (its
/// fingerprint — SHA-256 of every object, sorted by id — and its completeness), the server's
/// users and groups (sorted by case-folded key), the selection and the options, as JSON.
/// `fingerprint` is `snapshot.fingerprint()`, which the caller has already computed.
pub fn inputs_digest(
    snapshot: &TenantSnapshot,
    fingerprint: &str,
    server: &ServerState,
    selection: &SelectionSpec,
    options: &RunOptions,
) -> String {
    let mut w = crate::model::HashWriter::default();
    w.0.update(b"roster inputs 1\n");
    w.0.update(fingerprint.as_bytes());
    w.0.update(format!("\n{:?}\n", snapshot.completeness).as_bytes());
    let users: Vec<&ServerUser> = server.users().collect();
    let groups: Vec<&ServerGroup> = server.groups().collect();
    serde_json::to_writer(&mut w, &(users, groups, selection, options)).expect("inputs serialize");
    hex::encode(w.0.finalize())
}

/// A run's inputs digested in one pass, each object serialized once: the snapshot's
/// fingerprint ([`TenantSnapshot::fingerprint`]), the inputs digest ([`inputs_digest`]) — the
/// same bytes hashed as those functions hash them — and, when asked for, every Entra object's
/// and server record's own digest, in the order the snapshot and the server list them (what
/// [`ChainState::differences`] compares with its base).
pub struct InputDigests {
    pub fingerprint: String,
    pub inputs: String,
    objects: Option<ObjectDigests>,
}

impl InputDigests {
    /// Each object's digest, in listing order — users, groups, deleted users, deleted groups,
    /// the server's users, its groups — when they were kept.
    pub fn object_digests(&self) -> Option<[&[[u8; 16]]; 6]> {
        self.objects.as_ref().map(|o| {
            [
                &o.users[..],
                &o.groups[..],
                &o.deleted_users[..],
                &o.deleted_groups[..],
                &o.server_users[..],
                &o.server_groups[..],
            ]
        })
    }
}

/// Each object's digest, in listing order.
#[derive(Default)]
struct ObjectDigests {
    users: Vec<[u8; 16]>,
    groups: Vec<[u8; 16]>,
    deleted_users: Vec<[u8; 16]>,
    deleted_groups: Vec<[u8; 16]>,
    server_users: Vec<[u8; 16]>,
    server_groups: Vec<[u8; 16]>,
}

/// See [`InputDigests`]; `per_object`: whether each object's digest is kept too.
pub fn digest_inputs(
    snapshot: &TenantSnapshot,
    server: &ServerState,
    selection: &SelectionSpec,
    options: &RunOptions,
    per_object: bool,
) -> InputDigests {
    let mut buf = Vec::with_capacity(4096);
    let mut objects = ObjectDigests::default();
    // A JSON list, written into `whole` as serde_json writes it, each item's own digest kept.
    fn list<'a, T: serde::Serialize + 'a>(
        items: impl Iterator<Item = &'a T>,
        whole: &mut sha2::Sha256,
        buf: &mut Vec<u8>,
        digests: Option<&mut Vec<[u8; 16]>>,
    ) {
        let mut digests = digests;
        whole.update(b"[");
        for (i, item) in items.enumerate() {
            if i > 0 {
                whole.update(b",");
            }
            buf.clear();
            serde_json::to_writer(&mut *buf, item).expect("objects serialize");
            whole.update(&buf[..]);
            if let Some(d) = digests.as_mut() {
                d.push(digest_of(buf));
            }
        }
        whole.update(b"]");
    }
    let keep = |v| keep_if(per_object, v);
    // The fingerprint: `(tenant_id, users, groups, deleted_users, deleted_groups)` as JSON.
    let mut fp = sha2::Sha256::new();
    fp.update(b"[");
    serde_json::to_writer(&mut buf, &snapshot.tenant_id).expect("ids serialize");
    fp.update(&buf[..]);
    fp.update(b",");
    list(
        snapshot.users.iter(),
        &mut fp,
        &mut buf,
        keep(&mut objects.users),
    );
    fp.update(b",");
    list(
        snapshot.groups.iter(),
        &mut fp,
        &mut buf,
        keep(&mut objects.groups),
    );
    fp.update(b",");
    let deleted_users = keep(&mut objects.deleted_users);
    list(
        snapshot.deleted_users.iter(),
        &mut fp,
        &mut buf,
        deleted_users,
    );
    fp.update(b",");
    let deleted_groups = keep(&mut objects.deleted_groups);
    list(
        snapshot.deleted_groups.iter(),
        &mut fp,
        &mut buf,
        deleted_groups,
    );
    fp.update(b"]");
    let fingerprint = hex::encode(fp.finalize());
    // The inputs digest: as `inputs_digest` hashes them.
    let mut w = sha2::Sha256::new();
    w.update(b"roster inputs 1\n");
    w.update(fingerprint.as_bytes());
    w.update(format!("\n{:?}\n", snapshot.completeness).as_bytes());
    w.update(b"[");
    list(
        server.users(),
        &mut w,
        &mut buf,
        keep(&mut objects.server_users),
    );
    w.update(b",");
    list(
        server.groups(),
        &mut w,
        &mut buf,
        keep(&mut objects.server_groups),
    );
    buf.clear();
    serde_json::to_writer(&mut buf, selection).expect("selections serialize");
    w.update(b",");
    w.update(&buf[..]);
    buf.clear();
    serde_json::to_writer(&mut buf, options).expect("options serialize");
    w.update(b",");
    w.update(&buf[..]);
    w.update(b"]");
    InputDigests {
        fingerprint,
        inputs: hex::encode(w.finalize()),
        objects: per_object.then_some(objects),
    }
}

fn keep_if(keep: bool, digests: &mut Vec<[u8; 16]>) -> Option<&mut Vec<[u8; 16]>> {
    keep.then_some(digests)
}

/// The server's users and groups as digests, by case-folded login or name.
type ServerDigests = (Objects<ServerUser, String>, Objects<ServerGroup, String>);

/// How a fold keeps the Entra objects it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Whole, to rebuild a run's complete inputs (replay, `report --all`).
    Whole,
    /// As 16-byte digests of their canonical JSON: enough to tell what a new read changed, in
    /// a fraction of the memory (a run records against its base this way).
    Digests,
}

/// The objects of one listing (or the choices, the deleted objects), by key, as a fold keeps
/// them.
#[derive(Debug, Clone)]
enum Objects<T, K = ObjectId> {
    Whole(BTreeMap<K, T>),
    Digests(BTreeMap<K, [u8; 16]>),
}

/// The first 16 bytes of SHA-256 over an object's canonical JSON — written out first into a
/// buffer the thread keeps, and hashed in one go (hashing JSON token by token costs more).
pub fn object_digest<T: serde::Serialize>(item: &T) -> [u8; 16] {
    thread_local! {
        static JSON: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    JSON.with_borrow_mut(|json| {
        json.clear();
        serde_json::to_writer(&mut *json, item).expect("objects serialize");
        let digest = digest_of(json);
        // A large object once does not keep its room for the rest of the thread's life.
        json.clear();
        json.shrink_to(1 << 16);
        digest
    })
}

/// The first 16 bytes of SHA-256 over `json`: an object's digest.
fn digest_of(json: &[u8]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&sha2::Sha256::digest(json)[..16]);
    out
}

impl<K: Ord + Clone, T: serde::Serialize + PartialEq + Clone> Objects<T, K> {
    fn new(keep: Keep) -> Self {
        match keep {
            Keep::Whole => Objects::Whole(BTreeMap::new()),
            Keep::Digests => Objects::Digests(BTreeMap::new()),
        }
    }

    fn insert(&mut self, id: K, item: T) {
        match self {
            Objects::Whole(m) => {
                m.insert(id, item);
            }
            Objects::Digests(m) => {
                m.insert(id, object_digest(&item));
            }
        }
    }

    fn remove(&mut self, id: &K) {
        match self {
            Objects::Whole(m) => {
                m.remove(id);
            }
            Objects::Digests(m) => {
                m.remove(id);
            }
        }
    }

    /// Whether an item whose digest is `digest` is new or differs from the object kept under
    /// its id.
    fn differs_from_digest(&self, id: &K, digest: &[u8; 16]) -> bool {
        match self {
            Objects::Whole(m) => m.get(id).map(object_digest).as_ref() != Some(digest),
            Objects::Digests(m) => m.get(id) != Some(digest),
        }
    }

    fn ids(&self) -> Vec<&K> {
        match self {
            Objects::Whole(m) => m.keys().collect(),
            Objects::Digests(m) => m.keys().collect(),
        }
    }

    fn into_values(self) -> Vec<T> {
        match self {
            Objects::Whole(m) => m.into_values().collect(),
            Objects::Digests(_) => {
                unreachable!("a chain folded as digests is never turned into inputs")
            }
        }
    }

    /// The objects kept whole, moved out; what stays are their digests.
    fn take_whole(&mut self) -> Vec<T> {
        match self {
            Objects::Whole(m) => {
                let whole = std::mem::take(m);
                *self = Objects::Digests(
                    whole
                        .iter()
                        .map(|(k, v)| (k.clone(), object_digest(v)))
                        .collect(),
                );
                whole.into_values().collect()
            }
            Objects::Digests(_) => Vec::new(),
        }
    }

    /// The objects as digests: borrowed when kept so, computed when kept whole.
    fn digests(&self) -> std::borrow::Cow<'_, BTreeMap<K, [u8; 16]>> {
        match self {
            Objects::Digests(m) => std::borrow::Cow::Borrowed(m),
            Objects::Whole(m) => std::borrow::Cow::Owned(
                m.iter()
                    .map(|(k, v)| (k.clone(), object_digest(v)))
                    .collect(),
            ),
        }
    }

    fn len(&self) -> usize {
        match self {
            Objects::Whole(m) => m.len(),
            Objects::Digests(m) => m.len(),
        }
    }

    /// Whether both hold the same objects (compared as digests).
    fn digests_equal(&self, other: &Self) -> bool {
        *self.digests() == *other.digests()
    }

    fn entries(&self) -> Vec<(&K, &T)> {
        match self {
            Objects::Whole(m) => m.iter().collect(),
            Objects::Digests(_) => {
                unreachable!("a chain folded as digests is never turned into inputs")
            }
        }
    }
}

/// Why a chain cannot be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("run {run} names {base} as its base, but the chain being folded ends at {folded}")]
    WrongBase {
        run: RunId,
        base: RunId,
        folded: RunId,
    },
    #[error("run {run} names a base run, but no full run starts its chain")]
    NoFullRun { run: RunId },
}

/// The state a chain folds to: after a run's inputs, that run's complete inputs; after its
/// outcomes, the base the next run records against (the server with the run's changes made).
#[derive(Debug, Clone)]
pub struct ChainState {
    /// The last run folded in.
    pub run: RunId,
    /// The full run the chain starts from.
    pub full: RunId,
    /// Runs folded, the full run included.
    pub length: usize,
    pub started: RunStarted,
    keep: Keep,
    users: Objects<EntraUser>,
    groups: Objects<EntraGroup>,
    deleted_users: Objects<DeletedItem>,
    deleted_groups: Objects<DeletedItem>,
    pub server: ServerState,
    /// The server's records as digests by case-folded key, once a chain folded as digests is
    /// complete (see [`ChainState::compact`]): the whole records are let go.
    server_digests: Option<ServerDigests>,
    choices: Objects<ActionChosen, EntryKey>,
    deleted: Objects<ObjectDeleted, EntryKey>,
    outcomes: HashMap<EntryKey, LastOutcome>,
}

impl ChainState {
    /// Starts folding `run`: a full run (no base) starts the chain afresh; a run with a base
    /// continues `chain`, which must end at that base.
    pub fn begin(
        chain: Option<ChainState>,
        run: RunId,
        started: RunStarted,
        keep: Keep,
    ) -> Result<ChainState, ChainError> {
        match (started.base, chain) {
            (None, _) => Ok(ChainState {
                run,
                full: run,
                length: 1,
                started,
                keep,
                users: Objects::new(keep),
                groups: Objects::new(keep),
                deleted_users: Objects::new(keep),
                deleted_groups: Objects::new(keep),
                server: ServerState::default(),
                server_digests: None,
                choices: Objects::new(keep),
                deleted: Objects::new(keep),
                outcomes: HashMap::new(),
            }),
            (Some(base), Some(mut chain)) if chain.run == base => {
                chain.run = run;
                chain.length += 1;
                chain.started = started;
                Ok(chain)
            }
            (Some(base), Some(chain)) => Err(ChainError::WrongBase {
                run,
                base,
                folded: chain.run,
            }),
            (Some(_), None) => Err(ChainError::NoFullRun { run }),
        }
    }

    /// Folds one of the run's events in: an input (a full run's, or a difference), or an
    /// outcome (`Imported` makes its server change; every outcome becomes the entry's last).
    pub fn take(&mut self, event: Event) {
        match event {
            Event::UserSeen(UserSeen::Entra { user }) => {
                self.users.insert(user.id.clone(), user);
            }
            Event::UserSeen(UserSeen::DeletedItems { user }) => {
                self.deleted_users.insert(user.id.clone(), user);
            }
            Event::UserSeen(UserSeen::Server { user }) => self.server.put_user_record(user),
            Event::GroupSeen(GroupSeen::Entra { group }) => {
                self.groups.insert(group.id.clone(), group);
            }
            Event::GroupSeen(GroupSeen::DeletedItems { group }) => {
                self.deleted_groups.insert(group.id.clone(), group);
            }
            Event::GroupSeen(GroupSeen::Server { group }) => self.server.put_group_record(group),
            Event::ObjectUnlisted(u) => self.unlist(&u),
            Event::ObjectDeleted(d) => {
                self.deleted.insert((d.kind, d.id.clone()), d);
            }
            Event::DeletionWithdrawn(w) => {
                self.deleted.remove(&(w.kind, w.id));
            }
            Event::ActionChosen(c) => {
                self.choices.insert((c.kind, c.id.clone()), c);
            }
            Event::ChoiceWithdrawn(w) => {
                self.choices.remove(&(w.kind, w.id));
            }
            Event::Imported(e) => {
                if let Some(op) = &e.op {
                    self.server.apply_quietly(op);
                }
                self.outcomes
                    .insert((e.kind, e.id.clone()), LastOutcome::of(&e, true));
            }
            Event::Planned(e) => {
                self.outcomes
                    .insert((e.kind, e.id.clone()), LastOutcome::of(&e, false));
            }
            _ => {}
        }
    }

    fn unlist(&mut self, u: &ObjectUnlisted) {
        // A key that is no id names nothing to unlist (the inputs digest tells if it mattered).
        let id = ObjectId::parse(&u.key).ok();
        match (u.source, u.kind) {
            (Listing::Server, Kind::User) => self.server.remove_user_record(&u.key),
            (Listing::Server, Kind::Group) => self.server.remove_group_record(&u.key),
            _ => {}
        }
        let Some(id) = id else { return };
        match (u.source, u.kind) {
            (Listing::Entra, Kind::User) => {
                self.users.remove(&id);
            }
            (Listing::Entra, Kind::Group) => {
                self.groups.remove(&id);
            }
            (Listing::DeletedItems, Kind::User) => {
                self.deleted_users.remove(&id);
            }
            (Listing::DeletedItems, Kind::Group) => {
                self.deleted_groups.remove(&id);
            }
            (Listing::Server, _) => {}
        }
    }

    /// A chain folded as digests, made smaller once complete: the server's records become
    /// digests too (no op needs them any more).
    fn compact(&mut self) {
        if self.keep == Keep::Digests && self.server_digests.is_none() {
            self.server_digests = Some(server_digests(&std::mem::take(&mut self.server)));
        }
    }

    /// The Entra users and groups of a chain folded whole, moved out (what reading only the
    /// changes since the chain's last run applies them to); the rest of the state is left as a
    /// chain folded as digests, to record the next run against.
    pub fn take_entra(&mut self) -> (Vec<EntraUser>, Vec<EntraGroup>) {
        let taken = (self.users.take_whole(), self.groups.take_whole());
        self.deleted_users.take_whole();
        self.deleted_groups.take_whole();
        self.choices.take_whole();
        self.deleted.take_whole();
        self.keep = Keep::Digests;
        self.compact();
        taken
    }

    /// The run's complete inputs taken apart, once they are folded (and the chain folded
    /// whole): the snapshot and the server moved out, not copied.
    pub fn into_parts(self) -> Result<Parts, InputsError> {
        debug_assert_eq!(self.keep, Keep::Whole);
        let snapshot = TenantSnapshot::new(
            self.started.tenant_id.clone(),
            self.users.into_values(),
            self.groups.into_values(),
            self.deleted_users.into_values(),
            self.deleted_groups.into_values(),
            self.started.source.completeness,
        )?;
        Ok(Parts {
            started: self.started,
            full: self.full,
            snapshot,
            server: self.server,
            choices: self.choices,
            deleted: self.deleted,
            last: self.outcomes,
        })
    }

    /// The events an incremental run records for its inputs: what differs from this state (the
    /// base's, its changes made) — objects new or changed, whole; objects no longer listed;
    /// deleted objects and choices new, changed or withdrawn — and the run's inputs as digests,
    /// each object digested once for both.
    /// `digests`: the run's [`digest_inputs`] with each object's digest (else each object is
    /// digested here). The state is taken apart, each listing let go once compared (the run's
    /// peak memory is while it compares); its last outcomes are handed back.
    pub fn differences(
        mut self,
        snapshot: &TenantSnapshot,
        server: &ServerState,
        deleted: &[ObjectDeleted],
        choices: &[ActionChosen],
        digests: &InputDigests,
    ) -> (Vec<Event>, Digested, HashMap<EntryKey, LastOutcome>) {
        let mut out = Vec::new();
        let mut next = Digested::default();
        let pre = digests.objects.as_ref();
        diff_keyed(
            &self.users,
            &snapshot.users,
            pre.map(|p| &p.users[..]),
            |u| u.id.clone(),
            |u| Event::UserSeen(UserSeen::Entra { user: u.clone() }),
            |id| unlisted(Listing::Entra, Kind::User, id.as_str()),
            &mut out,
            &mut next.users,
        );
        self.users = Objects::Digests(BTreeMap::new());
        diff_keyed(
            &self.groups,
            &snapshot.groups,
            pre.map(|p| &p.groups[..]),
            |g| g.id.clone(),
            |g| Event::GroupSeen(GroupSeen::Entra { group: g.clone() }),
            |id| unlisted(Listing::Entra, Kind::Group, id.as_str()),
            &mut out,
            &mut next.groups,
        );
        self.groups = Objects::Digests(BTreeMap::new());
        diff_keyed(
            &self.deleted_users,
            &snapshot.deleted_users,
            pre.map(|p| &p.deleted_users[..]),
            |d| d.id.clone(),
            |d| Event::UserSeen(UserSeen::DeletedItems { user: d.clone() }),
            |id| unlisted(Listing::DeletedItems, Kind::User, id.as_str()),
            &mut out,
            &mut next.deleted_users,
        );
        self.deleted_users = Objects::Digests(BTreeMap::new());
        diff_keyed(
            &self.deleted_groups,
            &snapshot.deleted_groups,
            pre.map(|p| &p.deleted_groups[..]),
            |d| d.id.clone(),
            |d| Event::GroupSeen(GroupSeen::DeletedItems { group: d.clone() }),
            |id| unlisted(Listing::DeletedItems, Kind::Group, id.as_str()),
            &mut out,
            &mut next.deleted_groups,
        );
        self.deleted_groups = Objects::Digests(BTreeMap::new());
        // The server's records by case-folded key (the login as the base recorded it is not
        // kept: the key names the record just as well).
        let (users, groups) = match self.server_digests.take() {
            Some(d) => d,
            None => server_digests(&std::mem::take(&mut self.server)),
        };
        diff_keyed(
            &users,
            server.users(),
            pre.map(|p| &p.server_users[..]),
            |u| crate::ids::fold_case(&u.login),
            |u| Event::UserSeen(UserSeen::Server { user: u.clone() }),
            |key| unlisted(Listing::Server, Kind::User, &key),
            &mut out,
            &mut next.server_users,
        );
        drop(users);
        diff_keyed(
            &groups,
            server.groups(),
            pre.map(|p| &p.server_groups[..]),
            |g| crate::ids::fold_case(&g.name),
            |g| Event::GroupSeen(GroupSeen::Server { group: g.clone() }),
            |key| unlisted(Listing::Server, Kind::Group, &key),
            &mut out,
            &mut next.server_groups,
        );
        drop(groups);
        diff_keyed(
            &self.deleted,
            deleted,
            None,
            |d| (d.kind, d.id.clone()),
            |d| Event::ObjectDeleted(d.clone()),
            |(kind, id)| Event::DeletionWithdrawn(Withdrawn { kind, id }),
            &mut out,
            &mut next.deleted,
        );
        diff_keyed(
            &self.choices,
            choices,
            None,
            |c| (c.kind, c.id.clone()),
            |c| Event::ActionChosen(c.clone()),
            |(kind, id)| Event::ChoiceWithdrawn(Withdrawn { kind, id }),
            &mut out,
            &mut next.choices,
        );
        (out, next, self.outcomes)
    }
}

/// Whether a run that decides `entry` again exactly as its base decided (and recorded) it
/// records it again: when it changes the server, failed, or is a conflict (rules 3) — the
/// rest the chain implies ([`worth_recording`] with the base's outcome as the last).
pub fn recorded_again(entry: &EntryOutcome, rules: u32) -> bool {
    worth_recording(entry, Some(&LastOutcome::of(entry, false)), rules)
}

/// What a run read and chose, each object as its digest: what the chain's state holds of it
/// once the run is folded in (a run lists every object again, so these replace its base's).
#[derive(Debug, Clone, Default)]
pub struct Digested {
    users: BTreeMap<ObjectId, [u8; 16]>,
    groups: BTreeMap<ObjectId, [u8; 16]>,
    deleted_users: BTreeMap<ObjectId, [u8; 16]>,
    deleted_groups: BTreeMap<ObjectId, [u8; 16]>,
    server_users: BTreeMap<String, [u8; 16]>,
    server_groups: BTreeMap<String, [u8; 16]>,
    deleted: BTreeMap<EntryKey, [u8; 16]>,
    choices: BTreeMap<EntryKey, [u8; 16]>,
}

impl Digested {
    /// The server's records once the run's changes are made: `after` is `before` (the server
    /// the run read, which these digests are of) with the recorded operations applied. Only
    /// the records an operation replaced are digested again.
    pub fn with_server_after(mut self, before: &ServerState, after: &ServerState) -> Digested {
        let mut users = std::mem::take(&mut self.server_users);
        self.server_users = after
            .users_against(before)
            .map(|(k, u, same)| {
                let kept = same.then(|| users.remove(k)).flatten();
                (k.to_owned(), kept.unwrap_or_else(|| object_digest(u)))
            })
            .collect();
        let mut groups = std::mem::take(&mut self.server_groups);
        self.server_groups = after
            .groups_against(before)
            .map(|(k, g, same)| {
                let kept = same.then(|| groups.remove(k)).flatten();
                (k.to_owned(), kept.unwrap_or_else(|| object_digest(g)))
            })
            .collect();
        self
    }
}

/// The last outcome of each entry once `entries` — the outcomes a run recorded, an import
/// (`applied`) or a dry run — are folded in.
pub fn record_outcomes<'a>(
    last: &mut HashMap<EntryKey, LastOutcome>,
    entries: impl IntoIterator<Item = &'a EntryOutcome>,
    applied: bool,
) {
    for e in entries {
        last.insert((e.kind, e.id.clone()), LastOutcome::of(e, applied));
    }
}

impl ChainState {
    /// The state folding `run` from the log reaches ([`fold`] through its outcomes), built
    /// from what the run holds in memory instead: its inputs as digests, the server with its
    /// changes made, and the last outcomes with its own recorded. `base` is the state the run
    /// recorded against (`None` for a full run).
    pub fn after_run(
        base: Option<(RunId, usize)>,
        run: RunId,
        started: RunStarted,
        digested: Digested,
        outcomes: HashMap<EntryKey, LastOutcome>,
    ) -> ChainState {
        let (full, length) = match base {
            Some((full, length)) => (full, length + 1),
            None => (run, 1),
        };
        ChainState {
            run,
            full,
            length,
            started,
            keep: Keep::Digests,
            users: Objects::Digests(digested.users),
            groups: Objects::Digests(digested.groups),
            deleted_users: Objects::Digests(digested.deleted_users),
            deleted_groups: Objects::Digests(digested.deleted_groups),
            server: ServerState::default(),
            server_digests: Some((
                Objects::Digests(digested.server_users),
                Objects::Digests(digested.server_groups),
            )),
            choices: Objects::Digests(digested.choices),
            deleted: Objects::Digests(digested.deleted),
            outcomes,
        }
    }
}

/// A run's complete inputs rebuilt from its chain ([`ChainState::into_parts`]).
pub struct Parts {
    pub started: RunStarted,
    /// The full run the chain starts from.
    pub full: RunId,
    pub snapshot: TenantSnapshot,
    pub server: ServerState,
    choices: Objects<ActionChosen, EntryKey>,
    deleted: Objects<ObjectDeleted, EntryKey>,
    /// The last outcome the chain recorded for each entry before the run.
    pub last: HashMap<EntryKey, LastOutcome>,
}

impl Parts {
    /// The run's choices in the order `order` gives them (the order choosing again produces;
    /// the rest after it, by key), so that they compare with a full run's.
    pub fn choices(&self, order: impl Fn(&EntryKey) -> Option<usize>) -> Vec<ActionChosen> {
        ordered(&self.choices, order)
    }

    /// The run's deleted objects, ordered as [`Parts::choices`].
    pub fn deleted(&self, order: impl Fn(&EntryKey) -> Option<usize>) -> Vec<ObjectDeleted> {
        ordered(&self.deleted, order)
    }
}

fn ordered<T: serde::Serialize + PartialEq + Clone>(
    items: &Objects<T, EntryKey>,
    order: impl Fn(&EntryKey) -> Option<usize>,
) -> Vec<T> {
    let mut keyed: Vec<(Option<usize>, &EntryKey, &T)> = items
        .entries()
        .into_iter()
        .map(|(k, v)| (order(k), k, v))
        .collect();
    // Ordered first, by their place; the rest after, by key.
    keyed.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    });
    keyed.into_iter().map(|(_, _, v)| v.clone()).collect()
}

/// A server's records as digests, by case-folded login or name.
fn server_digests(server: &ServerState) -> ServerDigests {
    let fold = crate::ids::fold_case;
    (
        Objects::Digests(
            server
                .users()
                .map(|u| (fold(&u.login), object_digest(u)))
                .collect(),
        ),
        Objects::Digests(
            server
                .groups()
                .map(|g| (fold(&g.name), object_digest(g)))
                .collect(),
        ),
    )
}

fn unlisted(source: Listing, kind: Kind, key: &str) -> Event {
    Event::ObjectUnlisted(ObjectUnlisted {
        source,
        kind,
        key: key.to_owned(),
    })
}

/// New or changed items of `now`, then the keys of `base` it no longer has; `next` gets every
/// item of `now` as a digest (`pre`: their digests, in order, if already computed).
// A listing, how to key and record its items, and where the results go: one call per listing
// in `differences`, every part named there.
#[allow(clippy::too_many_arguments)]
fn diff_keyed<'n, K, T>(
    base: &Objects<T, K>,
    now: impl IntoIterator<Item = &'n T>,
    pre: Option<&[[u8; 16]]>,
    key: impl Fn(&T) -> K,
    seen: impl Fn(&T) -> Event,
    gone: impl Fn(K) -> Event,
    out: &mut Vec<Event>,
    next: &mut BTreeMap<K, [u8; 16]>,
) where
    K: Ord + Clone,
    T: serde::Serialize + PartialEq + Clone + 'n,
{
    let mut now_digests = Vec::new();
    for (i, item) in now.into_iter().enumerate() {
        let k = key(item);
        let digest = match pre {
            Some(digests) => digests[i],
            None => object_digest(item),
        };
        if base.differs_from_digest(&k, &digest) {
            out.push(seen(item));
        }
        now_digests.push((k, digest));
    }
    *next = now_digests.into_iter().collect();
    for old in base.ids() {
        if !next.contains_key(old) {
            out.push(gone(old.clone()));
        }
    }
}

/// Why a run's chain cannot be read back from the log.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("run {0} has no RunStarted event")]
    NotStarted(RunId),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A run's `RunStarted`, read from its first event.
pub fn started_of(
    store: &dyn crate::store::EventStore,
    run: RunId,
) -> Result<Option<RunStarted>, crate::store::StoreError> {
    let Some(first) = store.run_seqs(run)?.first().copied() else {
        return Ok(None);
    };
    Ok(match store.read_event(first)?.map(|e| e.event) {
        Some(Event::RunStarted(s)) => Some(s),
        _ => None,
    })
}

/// How far [`fold`] reads the last run of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Through {
    /// Its inputs only: the state is the run's complete inputs.
    Inputs,
    /// Its outcomes too: the state is the base its next run records against.
    Outcomes,
}

/// Folds the chain that ends at `run` — its full run, then every run after it up to `run` —
/// from the log.
pub fn fold(
    store: &dyn crate::store::EventStore,
    run: RunId,
    through: Through,
    keep: Keep,
) -> Result<ChainState, ReadError> {
    use crate::event::EventKind;
    // Back from the run to its full run, then forward.
    let mut chain = Vec::new();
    let mut at = run;
    loop {
        let started = started_of(store, at)?.ok_or(ReadError::NotStarted(at))?;
        let base = started.base;
        chain.push((at, started));
        match base {
            Some(b) if chain.len() <= MAX_CHAIN * 4 => at = b,
            Some(_) => return Err(ChainError::NoFullRun { run }.into()),
            None => break,
        }
    }
    let mut state: Option<ChainState> = None;
    while let Some((r, started)) = chain.pop() {
        let mut s = ChainState::begin(state.take(), r, started, keep)?;
        let outcomes = r != run || through == Through::Outcomes;
        let wanted = move |k: EventKind| {
            use EventKind::*;
            match k {
                UserSeen | GroupSeen | ObjectUnlisted | ObjectDeleted | DeletionWithdrawn
                | ActionChosen | ChoiceWithdrawn => true,
                Imported | Planned => outcomes,
                _ => false,
            }
        };
        store.visit_run(r, &wanted, &mut |env| s.take(env.event))?;
        state = Some(s);
    }
    let mut state = state.expect("the chain holds at least the run itself");
    if through == Through::Outcomes {
        state.compact();
    }
    Ok(state)
}
