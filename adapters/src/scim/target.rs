//! The `--scim` target: a run's decisions made on a SCIM service, one request per change, and
//! recorded so that a run killed at any moment leaves a log that verifies and a rerun that
//! converges.
//!
//! How each server op is written (DESIGN.md's "SCIM target"):
//! - a new user or group: `POST` (a group with its members by SCIM id);
//! - a changed user: `PATCH` `replace`/`remove` of the attributes that differ (a rename is a
//!   `replace` of `userName`: the SCIM id, and so every membership, stays);
//! - enable / disable: `PATCH` `replace` `active` (boolean) for a user; for a group, whose
//!   schema has no `active`, the `externalId` marked `/disabled` (its members stay);
//! - a changed group: `PATCH` `replace` of `displayName` / `externalId`, members `add`ed, and
//!   removed one by one with `members[value eq "ID"]`;
//! - a removal: `DELETE` (a user is first taken out of the groups that list it).
//!
//! Every write carries `If-Match` with the version the run read, when the service versions
//! its resources. A `412` re-reads the resource: if nothing roster maps changed, the write is
//! sent again with the new version; else the entry fails, to be decided again by the next run.
//! A `409` is a conflict, never overwritten. A refusal fails the entry with the service's
//! `scimType` and `detail`. A service that cannot be reached stops the run: what was done is
//! recorded, the rest is not applied.
//!
//! Crash safety: SCIM writes cannot be in one atomic batch with the log, so, like the server
//! file, the run records its intent first — a `ChangeIntended` per change of the next
//! [`BATCH`] entries, flushed — then writes, then records the entries' `Imported` events. A run
//! killed between the two is closed as aborted when the store is next opened, naming the
//! changes it did not confirm; the next run reads the service as it is (what the killed run
//! created is there, linked, and is never created twice) and decides from that.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};
use url::Url;

use engine::event::{EntryOutcome, Event, Outcome, Reason, TargetInfo};
use engine::ids::fold_case;
use engine::model::{ServerGroup, ServerOp, ServerState, ServerUser};
use engine::{EventStore, RunId, SledStore};

use super::{
    group_from_resource, group_link, remove_member, replace, user_from_resource, user_resource,
    ScimClient, ScimDirectory, WriteError, ENTERPRISE_USER,
};
use crate::auth::Secret;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::target::{interrupted_after, not_applied, Applied, Target};

/// Entries whose intent is recorded (and flushed) before their writes are sent.
const BATCH: usize = 1000;

/// A SCIM service as the run's server.
pub struct ScimTarget {
    /// The base URL, as recorded (never with credentials in it).
    url: Url,
    client: ScimClient,
    runtime: tokio::runtime::Runtime,
    /// The directory as [`Target::load`] read it: each record's SCIM id and version.
    read: Mutex<Option<ScimDirectory>>,
    /// Bulk requests' limits, when the service takes them: new records are sent together.
    bulk: Option<BulkLimits>,
}

/// How much one bulk request may carry: the service's limits, and roster's own.
#[derive(Debug, Clone, Copy)]
struct BulkLimits {
    operations: usize,
    bytes: usize,
}

/// The most operations roster puts in one bulk request, whatever the service allows.
const MAX_BULK: usize = 200;

/// Checks a `--scim` URL: `https`, or `http` to this machine only (the token would cross the
/// network in clear), no credentials, query or fragment in it.
pub fn parse_url(given: &str) -> Result<Url> {
    // Said back without what it must not say: credentials given in it.
    let shown = crate::address::shown(given);
    let bad = |why: &str| Error::bad_input(format!("--scim {shown}: {why}"));
    let url = Url::parse(given.trim())
        .map_err(|e| bad(&format!("not a URL ({e}); give the service's SCIM base URL, like https://app.example.com/scim/v2")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad(
            "http would send the token in clear; use https (http is accepted only to this machine)",
        )),
        _ => return Err(bad("the SCIM base URL must be https://…")),
    }
    if crate::address::has_credentials(&url) {
        return Err(bad(
            "credentials do not belong in the URL; give the token with --scim-token-file FILE or ROSTER_SCIM_TOKEN",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("the SCIM base URL has no query or fragment"));
    }
    Ok(url)
}

impl ScimTarget {
    /// Opens the service at `url` (checked with [`parse_url`]) and reads what it supports: one
    /// without PATCH is refused, since disabling a user and changing a group's members need it.
    pub fn open(url: &str, token: Option<Secret>) -> Result<ScimTarget> {
        let url = parse_url(url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the HTTP runtime", e))?;
        let client = ScimClient::new(&url, token);
        let config = runtime.block_on(client.service_config())?;
        if !config.patch {
            return Err(Error::bad_input(format!(
                "the SCIM service at {url} does not support PATCH (its ServiceProviderConfig says so); roster needs PATCH to disable users and change group members"
            )));
        }
        let bulk = config.bulk.and_then(|(operations, bytes)| {
            let limits = BulkLimits {
                operations: usize::try_from(operations).ok()?.min(MAX_BULK),
                // Room for the request's own wrapping.
                bytes: usize::try_from(bytes).ok()?.saturating_mul(9) / 10,
            };
            (limits.operations > 1 && limits.bytes > 0).then_some(limits)
        });
        Ok(ScimTarget {
            url,
            client,
            runtime,
            read: Mutex::new(None),
            bulk,
        })
    }

    /// Why a run stopped: the service stopped answering after `done` of `total` entries.
    fn stopped_answering(&self, why: &str, done: usize, total: usize) -> String {
        format!(
            "the SCIM service at {} stopped answering ({why}) after {done} of {total} entries were applied and recorded; the other {} were not applied; run the import again when it answers",
            self.url,
            total - done
        )
    }
}

impl Target for ScimTarget {
    fn info(&self) -> TargetInfo {
        TargetInfo::Scim {
            url: self.url.to_string(),
        }
    }

    fn load(&self) -> Result<ServerState> {
        let directory = self.runtime.block_on(self.client.load())?;
        let state = directory.state.clone();
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = Some(directory);
        Ok(state)
    }

    fn import(
        &mut self,
        store: &SledStore,
        run: RunId,
        clock: &dyn Clock,
        state: &mut ServerState,
        entries: Vec<EntryOutcome>,
        stop: &Interrupt,
    ) -> Result<Applied> {
        let directory = self
            .read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                Error::Service("the SCIM directory was not read before the import".into())
            })?;
        let mut ids = Ids::from(directory);
        let total = entries.len();
        let mut done: Vec<EntryOutcome> = Vec::with_capacity(total);
        let mut failure = None;
        let mut pending = entries.into_iter().peekable();
        while pending.peek().is_some() && failure.is_none() {
            tracing::info!(target: engine::PROGRESS, "applying: {} of {total} entries", done.len());
            if stop.requested() {
                failure = Some(interrupted_after(done.len(), total));
                break;
            }
            let batch: Vec<EntryOutcome> = pending.by_ref().take(BATCH).collect();
            // The intent first, flushed: what this batch is about to change.
            let mut intended = batch
                .iter()
                .filter(|e| e.op.is_some())
                .map(|e| Cow::Owned(Event::ChangeIntended(e.clone())))
                .peekable();
            if intended.peek().is_some() {
                store.commit_stream(run, clock.now(), &mut intended, &[])?;
                store.flush()?;
            }
            let mut written = Vec::with_capacity(batch.len());
            let mut rest = VecDeque::from(batch);
            while let Some(entry) = rest.pop_front() {
                if stop.requested() {
                    failure = Some(interrupted_after(done.len() + written.len(), total));
                    break;
                }
                let taken = match self.bulk {
                    Some(limits) => together(&ids, state, limits, entry, &mut rest),
                    None => Taken::Alone(Box::new(entry)),
                };
                let wrote = match taken {
                    Taken::Together(run) => self.write_together(&mut ids, state, run, &mut written),
                    Taken::Alone(entry) => self
                        .write_one(&mut ids, state, *entry)
                        .map(|entry| written.push(entry)),
                };
                if let Err(why) = wrote {
                    let at = done.len() + written.len();
                    failure = Some(self.stopped_answering(&why, at, total));
                    break;
                }
            }
            let events: Vec<Event> = written.into_iter().map(Event::Imported).collect();
            let mut recorded = events.iter().map(Cow::Borrowed);
            store.commit_stream(run, clock.now(), &mut recorded, &[])?;
            done.extend(events.into_iter().filter_map(|e| match e {
                Event::Imported(entry) => Some(entry),
                _ => None,
            }));
        }
        Ok(Applied {
            entries: done,
            failure,
        })
    }
}

impl ScimTarget {
    /// Writes one entry's change: the entry as it then stands (failed if the service refused),
    /// or why the service could not be reached (nothing known of the change).
    fn write_one(
        &self,
        ids: &mut Ids,
        state: &mut ServerState,
        mut entry: EntryOutcome,
    ) -> std::result::Result<EntryOutcome, String> {
        let Some(op) = entry.op.clone() else {
            return Ok(entry);
        };
        match self.runtime.block_on(ids.write(&self.client, state, &op)) {
            Ok(()) => state.apply_quietly(&op),
            Err(WriteError::Unreachable(why)) => return Err(why),
            Err(refused) => refused_entry(&mut entry, &refused),
        }
        Ok(entry)
    }

    /// Creates the new records of `run` (see [`together`]) in one bulk request and adds its
    /// entries to `written`, in order. A creation not known to be made stops it there: that
    /// entry and the rest are left unrecorded, their intent unconfirmed; why, as `Err`.
    fn write_together(
        &self,
        ids: &mut Ids,
        state: &mut ServerState,
        run: Vec<(EntryOutcome, Option<Creation>)>,
        written: &mut Vec<EntryOutcome>,
    ) -> std::result::Result<(), String> {
        let kind = run
            .iter()
            .find_map(|(_, c)| c.as_ref().map(|c| c.kind))
            .unwrap_or("Users");
        let items: Vec<(Value, (String, String))> = run
            .iter()
            .filter_map(|(_, c)| c.as_ref())
            .map(|c| (c.body.clone(), (c.filter.to_owned(), c.name.clone())))
            .collect();
        let mut results = self
            .runtime
            .block_on(self.client.create_many(kind, &items))
            .into_iter();
        for (mut entry, creation) in run {
            if let Some(creation) = creation {
                match results.next() {
                    Some(Ok(made)) => {
                        ids.created(creation, made);
                        if let Some(op) = &entry.op {
                            state.apply_quietly(op);
                        }
                    }
                    Some(Err(WriteError::Unreachable(why))) => return Err(why),
                    Some(Err(refused)) => refused_entry(&mut entry, &refused),
                    None => return Err("the bulk request was not answered for every record".into()),
                }
            }
            written.push(entry);
        }
        Ok(())
    }
}

/// `first` and the entries after it in `rest` that go with it in one bulk request: new
/// records of one kind one after another (entries that change nothing may be among them),
/// within `limits`. Fewer than two new records: `first` alone, `rest` as it was.
fn together(
    ids: &Ids,
    state: &ServerState,
    limits: BulkLimits,
    first: EntryOutcome,
    rest: &mut VecDeque<EntryOutcome>,
) -> Taken {
    let Some(new) = first.op.as_ref().and_then(|op| ids.creation(state, op)) else {
        return Taken::Alone(Box::new(first));
    };
    let kind = new.kind;
    let mut bytes = new.body.to_string().len();
    let mut run = vec![(first, Some(new))];
    let mut creations = 1;
    while creations < limits.operations {
        let Some(next) = rest.front() else { break };
        let Some(op) = &next.op else {
            run.extend(rest.pop_front().map(|e| (e, None)));
            continue;
        };
        let Some(new) = ids.creation(state, op).filter(|c| c.kind == kind) else {
            break;
        };
        bytes += new.body.to_string().len() + 100;
        if bytes > limits.bytes {
            break;
        }
        run.extend(rest.pop_front().map(|e| (e, Some(new))));
        creations += 1;
    }
    if creations > 1 {
        return Taken::Together(run);
    }
    let mut taken = run.into_iter().map(|(e, _)| e);
    let first = taken.next().expect("the first entry is there");
    for e in taken.rev() {
        rest.push_front(e);
    }
    Taken::Alone(Box::new(first))
}

/// What [`together`] took: a run of entries for one bulk request, or one entry alone.
enum Taken {
    Together(Vec<(EntryOutcome, Option<Creation>)>),
    Alone(Box<EntryOutcome>),
}

/// An entry the service did not take: what it says instead.
fn refused_entry(entry: &mut EntryOutcome, why: &WriteError) {
    match why {
        WriteError::Conflict(detail) => {
            entry.outcome = Outcome::Conflict;
            entry.reason = Some(Reason::NameTaken);
            entry.detail = format!(
                "the SCIM service holds another resource with that name (409 uniqueness){}{}; it is never overwritten",
                if detail.is_empty() { "" } else { ": " },
                detail
            );
            entry.changes.clear();
            entry.op = None;
        }
        WriteError::Stale => not_applied(
            entry,
            "it changed on the SCIM service since this run read it; the next run decides it from what the service holds",
        ),
        WriteError::Gone => not_applied(
            entry,
            "it was removed from the SCIM service since this run read it",
        ),
        other => not_applied(entry, &other.to_string()),
    }
}

/// A record to create: its resource, and how to find it again (the filter and the name).
struct Creation {
    kind: &'static str,
    body: Value,
    filter: &'static str,
    name: String,
    /// A group's members, by SCIM id.
    members: Vec<String>,
}

impl Creation {
    fn key(&self) -> (&str, &str) {
        (self.filter, &self.name)
    }
}

/// A resource's SCIM id and the version last seen.
#[derive(Debug, Clone)]
struct Held {
    id: String,
    version: Option<String>,
}

/// A group's SCIM id, version, and the SCIM ids of its user members.
#[derive(Debug, Clone)]
struct HeldGroup {
    held: Held,
    members: Vec<String>,
}

/// What the run knows of the service as it writes: records by login and name (as they
/// compare), kept up to date with every write.
struct Ids {
    users: HashMap<String, Held>,
    groups: HashMap<String, HeldGroup>,
}

impl From<ScimDirectory> for Ids {
    fn from(d: ScimDirectory) -> Ids {
        Ids {
            users: d
                .users
                .into_iter()
                .map(|u| {
                    let held = Held {
                        id: u.id,
                        version: u.version,
                    };
                    (fold_case(&u.user.login), held)
                })
                .collect(),
            groups: d
                .groups
                .into_iter()
                .map(|g| {
                    let held = HeldGroup {
                        held: Held {
                            id: g.id,
                            version: g.version,
                        },
                        members: g.member_ids,
                    };
                    (fold_case(&g.group.name), held)
                })
                .collect(),
        }
    }
}

/// Attributes of a resource, each by its PATCH path: `name.givenName`, the extension's as
/// `URN:attribute`.
fn flatten(resource: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(map) = resource.as_object() else {
        return out;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("schemas", _) => {}
            ("name", Value::Object(sub)) => {
                out.extend(sub.iter().map(|(k, v)| (format!("name.{k}"), v.clone())))
            }
            (ENTERPRISE_USER, Value::Object(sub)) => out.extend(
                sub.iter()
                    .map(|(k, v)| (format!("{ENTERPRISE_USER}:{k}"), v.clone())),
            ),
            _ => out.push((key.clone(), value.clone())),
        }
    }
    out
}

/// The PATCH operations that turn `old` into `new`: a `replace` per attribute that differs or
/// is new, a `remove` per attribute `new` no longer has.
pub fn user_patch(old: &ServerUser, new: &ServerUser) -> Vec<Value> {
    let (old, new) = (flatten(&user_resource(old)), flatten(&user_resource(new)));
    let before: HashMap<&str, &Value> = old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let after: HashMap<&str, &Value> = new.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut ops: Vec<Value> = new
        .iter()
        .filter(|(k, v)| before.get(k.as_str()) != Some(&v))
        .map(|(k, v)| json!({"op": "replace", "path": k, "value": v}))
        .collect();
    ops.extend(
        old.iter()
            .filter(|(k, _)| !after.contains_key(k.as_str()))
            .map(|(k, _)| json!({"op": "remove", "path": k})),
    );
    ops
}

impl Ids {
    /// Makes `op` on the service; `state` is the server as it stands before `op`.
    async fn write(
        &mut self,
        client: &ScimClient,
        state: &ServerState,
        op: &ServerOp,
    ) -> std::result::Result<(), WriteError> {
        match op {
            ServerOp::PutUser {
                previous_login,
                user,
            } => match self.held_user(state, previous_login.as_deref(), &user.login) {
                Some((key, old)) => {
                    let ops = user_patch(old, user);
                    let held = self.users[&key].clone();
                    let (before, after) = (
                        Holds::User(Box::new(old.clone())),
                        Holds::User(user.clone()),
                    );
                    let version = self
                        .patch_fresh(client, "Users", &held, (before, after), ops)
                        .await?;
                    self.users.remove(&key);
                    self.users.insert(
                        fold_case(&user.login),
                        Held {
                            id: held.id,
                            version,
                        },
                    );
                }
                _ => {
                    let new = self.creation(state, op).ok_or(WriteError::Gone)?;
                    let written = client.create(new.kind, &new.body, new.key()).await?;
                    self.created(new, written);
                }
            },
            ServerOp::SetUserEnabled { login, enabled } => {
                let (key, held) = self.user(login)?;
                let old = state.user(login).ok_or(WriteError::Gone)?;
                let ops = vec![json!({"op": "replace", "path": "active", "value": enabled})];
                let now = ServerUser {
                    enabled: *enabled,
                    ..old.clone()
                };
                let changed = (
                    Holds::User(Box::new(old.clone())),
                    Holds::User(Box::new(now)),
                );
                let version = self
                    .patch_fresh(client, "Users", &held, changed, ops)
                    .await?;
                self.users.insert(key, Held { version, ..held });
            }
            ServerOp::RemoveUser { login } => {
                let (key, held) = self.user(login)?;
                // Out of every group first: a service need not drop a deleted user's
                // memberships itself, and the embedded server's removal does.
                let listing: Vec<String> = self
                    .groups
                    .iter()
                    .filter(|(_, g)| g.members.contains(&held.id))
                    .map(|(k, _)| k.clone())
                    .collect();
                for group in listing {
                    let g = self.groups[&group].clone();
                    let Some(old) = state.groups().find(|s| fold_case(&s.name) == group) else {
                        continue;
                    };
                    let before = Holds::group(old, &g.members);
                    let mut after = before.clone();
                    if let Holds::Group { members, .. } = &mut after {
                        members.retain(|m| m != &held.id);
                    }
                    let version = self
                        .patch_fresh(
                            client,
                            "Groups",
                            &g.held,
                            (before, after),
                            vec![remove_member(&held.id)],
                        )
                        .await?;
                    let entry = self.groups.get_mut(&group).expect("listed above");
                    entry.held.version = version;
                    entry.members.retain(|m| m != &held.id);
                }
                match client
                    .delete("Users", &held.id, held.version.as_deref())
                    .await
                {
                    Ok(()) | Err(WriteError::Gone) => {}
                    Err(WriteError::Stale) => {
                        // Changed since it was read: removed only if roster's view of it holds.
                        let now = client
                            .get_resource("Users", &held.id)
                            .await
                            .map_err(|e| WriteError::Unreachable(e.to_string()))?;
                        let same = match (&now, state.user(login)) {
                            (Some(v), Some(old)) => {
                                user_from_resource(v).is_ok_and(|u| &u.user == old)
                            }
                            _ => false,
                        };
                        if !same {
                            return Err(WriteError::Stale);
                        }
                        let version = now
                            .as_ref()
                            .and_then(|v| v.pointer("/meta/version"))
                            .and_then(Value::as_str);
                        match client.delete("Users", &held.id, version).await {
                            Ok(()) | Err(WriteError::Gone) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
                self.users.remove(&key);
            }
            ServerOp::PutGroup {
                previous_name,
                group,
            } => {
                let wanted = self.member_ids(group);
                match self.held_group(state, previous_name.as_deref(), &group.name) {
                    Some((key, old)) => {
                        let held = self.groups[&key].clone();
                        let mut ops = Vec::new();
                        if old.name != group.name {
                            ops.push(replace(json!({"displayName": group.name})));
                        }
                        if group_link(old) != group_link(group) {
                            ops.push(replace(json!({"externalId": group_link(group)})));
                        }
                        let added: Vec<String> = wanted
                            .iter()
                            .filter(|id| !held.members.contains(id))
                            .cloned()
                            .collect();
                        if !added.is_empty() {
                            ops.push(super::add_members(&added));
                        }
                        ops.extend(
                            held.members
                                .iter()
                                .filter(|id| !wanted.contains(id))
                                .map(|id| remove_member(id)),
                        );
                        let version = match ops.is_empty() {
                            true => held.held.version.clone(),
                            false => {
                                let changed = (
                                    Holds::group(old, &held.members),
                                    Holds::group(group, &wanted),
                                );
                                self.patch_fresh(client, "Groups", &held.held, changed, ops)
                                    .await?
                            }
                        };
                        self.groups.remove(&key);
                        self.groups.insert(
                            fold_case(&group.name),
                            HeldGroup {
                                held: Held {
                                    id: held.held.id,
                                    version,
                                },
                                members: wanted,
                            },
                        );
                    }
                    _ => {
                        let new = self.creation(state, op).ok_or(WriteError::Gone)?;
                        let written = client.create(new.kind, &new.body, new.key()).await?;
                        self.created(new, written);
                    }
                }
            }
            ServerOp::SetGroupEnabled { name, enabled } => {
                let key = fold_case(name);
                let held = self.groups.get(&key).cloned().ok_or(WriteError::Gone)?;
                let old = state.group(name).ok_or(WriteError::Gone)?;
                let now = ServerGroup {
                    enabled: *enabled,
                    ..old.clone()
                };
                let ops = vec![replace(json!({"externalId": group_link(&now)}))];
                let changed = (
                    Holds::group(old, &held.members),
                    Holds::group(&now, &held.members),
                );
                let version = self
                    .patch_fresh(client, "Groups", &held.held, changed, ops)
                    .await?;
                self.groups.get_mut(&key).expect("held").held.version = version;
            }
            ServerOp::RemoveGroup { name } => {
                let key = fold_case(name);
                let held = self.groups.get(&key).cloned().ok_or(WriteError::Gone)?;
                match client
                    .delete("Groups", &held.held.id, held.held.version.as_deref())
                    .await
                {
                    Ok(()) | Err(WriteError::Gone) => {}
                    Err(e) => return Err(e),
                }
                self.groups.remove(&key);
            }
        }
        Ok(())
    }

    /// The user a `PutUser` (from `previous` when renamed) changes, when the service holds
    /// it: its key here, and the record as the run read it.
    fn held_user<'s>(
        &self,
        state: &'s ServerState,
        previous: Option<&str>,
        login: &str,
    ) -> Option<(String, &'s ServerUser)> {
        let from = previous.unwrap_or(login);
        let key = [fold_case(from), fold_case(login)]
            .into_iter()
            .find(|k| self.users.contains_key(k))?;
        Some((key, state.user(from).or_else(|| state.user(login))?))
    }

    /// The group a `PutGroup` changes, when the service holds it (see [`Ids::held_user`]).
    fn held_group<'s>(
        &self,
        state: &'s ServerState,
        previous: Option<&str>,
        name: &str,
    ) -> Option<(String, &'s ServerGroup)> {
        let from = previous.unwrap_or(name);
        let key = [fold_case(from), fold_case(name)]
            .into_iter()
            .find(|k| self.groups.contains_key(k))?;
        Some((key, state.group(from).or_else(|| state.group(name))?))
    }

    /// What creating the record `op` puts is, when `op` makes one the service does not hold
    /// yet (a new user or group); `None` for any other op.
    fn creation(&self, state: &ServerState, op: &ServerOp) -> Option<Creation> {
        match op {
            ServerOp::PutUser {
                previous_login,
                user,
            } => {
                let held = self.held_user(state, previous_login.as_deref(), &user.login);
                held.is_none().then(|| Creation {
                    kind: "Users",
                    body: user_resource(user),
                    filter: "userName",
                    name: user.login.clone(),
                    members: Vec::new(),
                })
            }
            ServerOp::PutGroup {
                previous_name,
                group,
            } => {
                let held = self.held_group(state, previous_name.as_deref(), &group.name);
                held.is_none().then(|| {
                    let members = self.member_ids(group);
                    Creation {
                        kind: "Groups",
                        body: super::group_resource(group, &members),
                        filter: "displayName",
                        name: group.name.clone(),
                        members,
                    }
                })
            }
            _ => None,
        }
    }

    /// Keeps what the service made of `new`.
    fn created(&mut self, new: Creation, written: super::Written) {
        let held = Held {
            id: written.id,
            version: written.version,
        };
        match new.kind {
            "Users" => {
                self.users.insert(fold_case(&new.name), held);
            }
            _ => {
                self.groups.insert(
                    fold_case(&new.name),
                    HeldGroup {
                        held,
                        members: new.members,
                    },
                );
            }
        }
    }

    /// The SCIM ids of `group`'s members the service holds.
    fn member_ids(&self, group: &ServerGroup) -> Vec<String> {
        group
            .members
            .iter()
            .filter_map(|login| self.users.get(&fold_case(login)))
            .map(|h| h.id.clone())
            .collect()
    }

    fn user(&self, login: &str) -> std::result::Result<(String, Held), WriteError> {
        let key = fold_case(login);
        let held = self.users.get(&key).cloned().ok_or(WriteError::Gone)?;
        Ok((key, held))
    }

    /// SCIM id → login, for reading a group's members.
    fn logins(&self) -> HashMap<String, String> {
        self.users
            .iter()
            .map(|(login, h)| (h.id.clone(), login.clone()))
            .collect()
    }

    /// `PATCH`es a resource under the version the run read. Answered 412 (it changed since),
    /// the resource is read again: if it already holds what the patch makes (an earlier try
    /// the service made but whose answer was lost), that is done; if it still holds what the
    /// run read — nothing roster maps changed — the patch is sent again under its new version;
    /// else the entry fails. The new version, when the service says.
    async fn patch_fresh(
        &self,
        client: &ScimClient,
        kind: &str,
        held: &Held,
        (before, after): (Holds, Holds),
        ops: Vec<Value>,
    ) -> std::result::Result<Option<String>, WriteError> {
        match client
            .patch(kind, &held.id, held.version.as_deref(), ops.clone())
            .await
        {
            Err(WriteError::Stale) => {
                let now = client
                    .get_resource(kind, &held.id)
                    .await
                    .map_err(|e| WriteError::Unreachable(e.to_string()))?
                    .ok_or(WriteError::Gone)?;
                let logins = self.logins();
                let version = now
                    .pointer("/meta/version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if after.is(&now, &logins) {
                    Ok(version)
                } else if before.is(&now, &logins) {
                    client.patch(kind, &held.id, version.as_deref(), ops).await
                } else {
                    Err(WriteError::Stale)
                }
            }
            other => other,
        }
    }
}

/// What a resource holds, in roster's terms: what one read again is compared with.
#[derive(Debug, Clone)]
enum Holds {
    User(Box<ServerUser>),
    /// A group: its name, its `externalId` (link and disabled mark), its user members' ids.
    Group {
        name: String,
        link: Option<String>,
        members: Vec<String>,
    },
}

impl Holds {
    fn group(g: &ServerGroup, members: &[String]) -> Holds {
        Holds::Group {
            name: g.name.clone(),
            link: group_link(g),
            members: members.to_vec(),
        }
    }

    /// Whether `resource` holds this; `logins` tells the directory's users by SCIM id.
    fn is(&self, resource: &Value, logins: &HashMap<String, String>) -> bool {
        match self {
            Holds::User(u) => user_from_resource(resource).is_ok_and(|now| now.user == **u),
            Holds::Group {
                name,
                link,
                members,
            } => group_from_resource(resource, logins).is_ok_and(|now| {
                let mut ids = now.member_ids;
                ids.sort();
                let mut want = members.clone();
                want.sort();
                &now.group.name == name && &group_link(&now.group) == link && ids == want
            }),
        }
    }
}
