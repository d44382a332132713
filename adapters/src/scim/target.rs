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
use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::Value;
use url::Url;

use engine::event::{EntryOutcome, Event, Outcome, Reason, TargetInfo};
use engine::model::{ServerOp, ServerState};
use engine::{RunId, Store};

use super::writes::{Creation, Ids};
use super::{ScimClient, ScimDirectory, WriteError};
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
    /// The optional user attributes the service does not keep (see
    /// [`super::mapping::OPTIONAL_USER_ATTRIBUTES`]): neither sent nor compared.
    unkept: Vec<String>,
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
    pub fn open(url: &str, token: Secret) -> Result<ScimTarget> {
        let url = parse_url(url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the HTTP runtime", e))?;
        let client = ScimClient::new(&url, token);
        let discovered = runtime.block_on(client.discover())?;
        let config = discovered.config;
        // The enterprise extension only where the User type lists it.
        let unkept = match discovered.enterprise {
            true => Vec::new(),
            false => vec!["department".to_owned()],
        };
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
            unkept,
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
            unkept: self.unkept.clone(),
        }
    }

    fn inherit(&mut self, unkept: &[String]) {
        for attribute in unkept {
            if !self.unkept.contains(attribute) {
                self.unkept.push(attribute.clone());
            }
        }
        self.unkept.sort();
    }

    fn load(&self) -> Result<ServerState> {
        let directory = self.runtime.block_on(self.client.load())?;
        // Users as the service keeps them: what it does not keep is not compared.
        let state = match self.unkept.is_empty() {
            true => directory.state.clone(),
            false => ServerState::from_parts(
                directory
                    .state
                    .users()
                    .map(|u| u.clone().without(&self.unkept)),
                directory.state.groups().cloned(),
            )
            .map_err(|e| Error::Service(format!("the SCIM service's directory: {e}")))?,
        };
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = Some(directory);
        Ok(state)
    }

    fn import(
        &mut self,
        store: &dyn Store,
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
        ids.unkept = self.unkept.clone();
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
                let taken = match self.bulk.filter(|_| self.client.bulk_works()) {
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
            learned: ids.learned,
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
            Ok(()) => {
                state.apply_quietly(&op);
                said_dropped(&mut entry, ids);
            }
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
        // A bulk answer says each user was made, not what the service holds of it: the first
        // is read back and checked (what a service drops, it drops for all); once one is
        // found wrong, every other one of the request is read back too.
        let mut check_users = true;
        for (mut entry, creation) in run {
            if let Some(creation) = creation {
                match results.next() {
                    Some(Ok(made)) => {
                        let held = ids.created(creation, made);
                        let checked = match &entry.op {
                            // A group made is given its members, and checked, as one made
                            // alone.
                            Some(ServerOp::PutGroup { group, .. }) => {
                                let wanted = ids.member_ids(group);
                                let key = engine::ids::fold_case(&group.name);
                                self.runtime.block_on(ids.set_members(
                                    &self.client,
                                    &key,
                                    group,
                                    &wanted,
                                    true,
                                ))
                            }
                            Some(ServerOp::PutUser { user, .. }) if check_users => {
                                let checked = self
                                    .runtime
                                    .block_on(ids.check_user(&self.client, &held, None, user))
                                    .map(|_| ());
                                check_users = checked.is_err();
                                checked
                            }
                            _ => Ok(()),
                        };
                        match checked {
                            Ok(()) => {
                                if let Some(op) = &entry.op {
                                    state.apply_quietly(op);
                                }
                                said_dropped(&mut entry, ids);
                            }
                            Err(WriteError::Unreachable(why)) => return Err(why),
                            Err(refused) => refused_entry(&mut entry, &refused),
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

/// Says in `entry` what the service did not keep of its last write (optional attributes).
fn said_dropped(entry: &mut EntryOutcome, ids: &mut Ids) {
    let dropped = std::mem::take(&mut ids.dropped);
    if !dropped.is_empty() {
        entry.detail = format!(
            "{}; the SCIM service did not keep its {} (not written again)",
            entry.detail,
            dropped.join(", ")
        );
    }
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
