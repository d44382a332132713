//! Reading a tenant from Microsoft Graph into the same snapshot a fixture gives.
//!
//! Users, groups and both recycle bins are listed concurrently (`$select` of exactly what the
//! rules use, `$top=999`); each group's direct members come from `/groups/{id}/members`,
//! twenty groups per `$batch`, a bounded number of batches in flight, and nesting is resolved
//! here exactly as for a fixture. (`/members` costs 2 resource units with `$select` where
//! `/transitiveMembers` costs 4: on Graph's budget of 8,000 units per 10 s, reading the
//! members of a big tenant takes half the time.) A listing that does not complete fails the
//! read: a partial tenant is never planned against, so a fault in Graph can never cause a
//! disable or a delete. Only the recycle bins may be incomplete (soft-deleted objects then
//! show as missing, which is still true evidence), and the snapshot says so.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use engine::event::{DeltaLinks, SourceKind};
use engine::model::{Completeness, DeletedItem, TenantSnapshot};
use engine::{ObjectId, TenantId};

use crate::error::{Error, Result};
use crate::fixture::{resolve_nesting, tenant_from_file, Loaded, TenantFile, Tracking};
use crate::graph::client::{GraphClient, GraphError, Query};
use crate::graph::delta;
use crate::http::parse_retry_after;
use crate::interrupt::Interrupt;
use crate::source::{Mirror, Quiet, TenantSource};
use crate::wire::{
    BatchRequestItem, CheckedGroup, GraphDeletedItem, GraphGroup, GraphMember, GraphUser, Page,
    Unreadable, DELETED_SELECT, GROUP_SELECT, USER_SELECT,
};

/// Requests per `$batch`: Graph's limit.
pub const BATCH_SIZE: usize = 20;

/// The recycle bins as read, and what that read leaves incomplete.
struct RecycleBins {
    deleted_users: Vec<GraphDeletedItem>,
    deleted_groups: Vec<GraphDeletedItem>,
    completeness: Completeness,
    problems: Vec<String>,
}

pub struct GraphSource {
    client: GraphClient,
    tenant: TenantId,
    /// `$batch` requests in flight at once.
    pub concurrency: usize,
    /// What [`GraphSource::quiet_since`] read when it found changes, for [`GraphSource::changes`]
    /// from the same links: the changes are asked for once, not twice.
    fetched: std::sync::Mutex<Option<Fetched>>,
}

/// Both change listings from a base's links, and the recycle bins, as read.
struct Fetched {
    links: DeltaLinks,
    users: delta::Changes,
    groups: delta::Changes,
    bins: RecycleBins,
}

impl GraphSource {
    pub fn new(client: GraphClient, tenant: TenantId) -> Self {
        GraphSource {
            client,
            tenant,
            concurrency: 4,
            fetched: std::sync::Mutex::new(None),
        }
    }

    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    /// Reads the whole tenant.
    pub async fn enumerate(&self) -> std::result::Result<Loaded, GraphError> {
        let c = &self.client;
        let users = c.list::<GraphUser>(
            c.url(&format!("users?$select={USER_SELECT}&$top=999")),
            Query::Plain,
            "listing users",
        );
        let groups = c.list::<GraphGroup>(
            c.url(&format!("groups?$select={GROUP_SELECT}&$top=999")),
            Query::Plain,
            "listing groups",
        );
        let started = std::time::Instant::now();
        let (users, groups, bins) = tokio::join!(users, groups, self.recycle_bins());
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listed users, groups and recycle bins"
        );
        let (users, groups) = (users?, groups?);
        let mut read = bins;
        let mut said = Unreadables::default();

        // An object without a value a decision depends on is left out, and its listing is
        // incomplete: nothing counts as missing from it, so nothing is disabled or deleted for
        // what could not be read.
        let mut entra_users = Vec::with_capacity(users.len());
        for u in users {
            match u.into_entra() {
                Ok(u) => entra_users.push(u),
                Err(e) => {
                    read.completeness.users = false;
                    said.add("user", e, &mut read.problems);
                }
            }
        }
        let mut checked = Vec::with_capacity(groups.len());
        for g in groups {
            match g.checked() {
                Ok(g) => checked.push(g),
                Err(e) => {
                    read.completeness.groups = false;
                    said.add("group", e, &mut read.problems);
                }
            }
        }
        let hidden_readable = self.client.grants(HIDDEN_MEMBERS);
        let mut members = self.direct_members(&checked).await?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "read the members"
        );
        // A group whose members could not be read whole is left out of this run: Graph
        // answered 404 (deleted while it was read, or a replica that has not caught up), or
        // its membership is hidden and the app may not read it (a 403, or an empty list
        // without `Member.Read.Hidden`: Graph leaves hidden members out). That is an
        // incomplete read of the groups, never "zero members" and never evidence that the
        // group is gone.
        let mut left_out: HashSet<ObjectId> = HashSet::new();
        let mut kept = Vec::with_capacity(checked.len());
        for g in checked {
            let read_whole = match members.remove(&g.id) {
                None => Err("its members could not be read (not found)".to_owned()),
                Some(Members::Forbidden) => Err(format!(
                    "its membership is hidden and Graph refused to list it; grant the app {HIDDEN_MEMBERS}"
                )),
                Some(Members::Read(m))
                    if m.is_empty() && g.hides_members() && !hidden_readable =>
                {
                    Err(format!(
                        "its membership is hidden, and without {HIDDEN_MEMBERS} Graph lists none of it; grant the app {HIDDEN_MEMBERS}"
                    ))
                }
                Some(Members::Read(m)) => Ok(m),
            };
            match read_whole {
                Ok(m) => kept.push((g, m)),
                Err(why) => {
                    read.completeness.groups = false;
                    read.problems.push(format!(
                    "group {} ({}): {why}; it is left out of this run, and no group counts as missing from the listing",
                    g.display_name.as_deref().unwrap_or("?"),
                    g.id
                ));
                    left_out.insert(g.id);
                }
            }
        }
        // A group with an unreadable object among its members, directly or through a nested
        // group, would lose that member on the server: it is left out too.
        left_out.extend(said.ids.drain());
        let (groups, direct) = leave_out_groups_with(kept, left_out, &mut read);
        let transitive = {
            let user_ids: HashSet<&ObjectId> = entra_users.iter().map(|u| &u.id).collect();
            let group_ids: HashSet<&ObjectId> = groups.iter().map(|g| &g.id).collect();
            let direct: Vec<&[GraphMember]> = direct.iter().map(Vec::as_slice).collect();
            resolve_nesting(&groups, &direct, &user_ids, &group_ids, &mut read.problems)
        };
        said.finish(&mut read.problems);
        let entra_groups: Vec<_> = groups
            .into_iter()
            .zip(transitive)
            .map(|(g, (users, nested))| g.into_entra(users, nested))
            .collect();
        let snapshot = TenantSnapshot::new(
            self.tenant.clone(),
            entra_users,
            entra_groups,
            read.deleted_users.into_iter().map(Into::into).collect(),
            read.deleted_groups.into_iter().map(Into::into).collect(),
            read.completeness,
        )
        .map_err(|e| GraphError::Rejected {
            what: "reading the tenant".into(),
            status: 200,
            code: "Duplicate".into(),
            message: e.to_string(),
        })?;
        Ok(Loaded {
            snapshot,
            problems: read.problems,
            tracking: Tracking::default(),
            content: None,
        })
    }

    /// Reads the whole tenant, and where Graph's change tracking resumes from: the links are
    /// asked for first (`$deltatoken=latest`), so a change made while the tenant is listed is
    /// read again next time rather than missed. A failure to get them is a problem, not a
    /// failure: the next run reads the whole tenant again.
    pub async fn enumerate_tracked(&self) -> std::result::Result<Loaded, GraphError> {
        let c = &self.client;
        let (users, groups) = delta::latest(c);
        let (users, groups) = tokio::join!(
            delta::read(c, users, "starting to track user changes"),
            delta::read(c, groups, "starting to track group changes")
        );
        let links = match (users, groups) {
            (Ok(u), Ok(g)) => Ok(delta::links(u, g)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let mut loaded = self.enumerate().await?;
        match links {
            Ok(links) => loaded.tracking.links = Some(links),
            Err(e) => loaded.problems.push(format!(
                "cannot track changes ({e}); the next run reads the whole tenant again"
            )),
        }
        loaded.content = recycle_content(&loaded.snapshot);
        Ok(loaded)
    }

    /// Reads what changed since `base` was read, applied to its users and groups; the recycle
    /// bins are read whole (they are small, and they tell a soft deletion from a hard one).
    /// Removals are confirmed before they count ([`delta::Removals`]), users that appear get
    /// their groups read again, groups that appear their members. Any failure fails the read —
    /// never a partial tenant (the caller reads it whole instead).
    pub async fn changes(
        &self,
        base: Mirror,
        stop: &Interrupt,
    ) -> std::result::Result<Loaded, GraphError> {
        let c = &self.client;
        let fetched = self
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .filter(|f| f.links == base.links);
        let (users, groups, bins) = match fetched {
            Some(f) => (f.users, f.groups, f.bins),
            None => self.fetch(&base.links).await?,
        };
        tracing::debug!(
            users = users.items.len(),
            groups = groups.items.len(),
            "read the changes"
        );
        let mut problems = bins.problems;
        let mut completeness = bins.completeness;
        // What the recycle bins list is deleted, whatever the change listing said.
        let binned: HashSet<ObjectId> = bins
            .deleted_users
            .iter()
            .chain(&bins.deleted_groups)
            .map(|d| d.id.clone())
            .collect();
        let user_removals = self
            .confirm_removals(
                delta::removed(&users.items, "reading user changes")?,
                "users",
                &binned,
                &mut problems,
            )
            .await?;
        let group_removals = self
            .confirm_removals(
                delta::removed(&groups.items, "reading group changes")?,
                "groups",
                &binned,
                &mut problems,
            )
            .await?;
        completeness.users &= user_removals.unconfirmed.is_empty();
        completeness.groups &= group_removals.unconfirmed.is_empty();

        // Converted one by one, each object let go once converted: never two copies of the
        // tenant at once.
        let base_users = base
            .users
            .into_iter()
            .map(|u| (u.id.clone(), GraphUser::from_entra(&u)))
            .collect();
        let base_groups = base
            .groups
            .into_iter()
            .map(|g| (g.id.clone(), GraphGroup::from_entra(&g)))
            .collect();
        let (mut now_users, users_appeared) =
            delta::apply_users(base_users, &users.items, &user_removals, stop)?;
        let (mut now_groups, groups_appeared) =
            delta::apply_groups(base_groups, &groups.items, &group_removals, stop)?;
        // The mirror checked against the evidence: an object the recycle bin lists is not in
        // the directory, whatever the changes read said or left out.
        let stale = |id: &ObjectId| binned.contains(id);
        for (kind, gone) in [
            ("user", take_out(&mut now_users, stale)),
            ("group", take_out(&mut now_groups, stale)),
        ] {
            if !gone.is_empty() {
                problems.push(format!(
                    "{} {kind}s the recycle bin lists were still in the changes read; taken out",
                    gone.len()
                ));
            }
        }
        // Graph's group changes do not say that a user deleted or restored left or joined
        // its groups: those of a user that appeared are read again; a group that appeared
        // has its members read whole.
        let memberships = self.groups_of(&users_appeared).await?;
        delta::add_memberships(&mut now_groups, &memberships);
        if !groups_appeared.is_empty() {
            let appeared: Vec<(ObjectId, bool)> = groups_appeared
                .iter()
                .map(|id| (id.clone(), false))
                .collect();
            let mut read = HashMap::new();
            for chunk in appeared.chunks(BATCH_SIZE) {
                read.extend(members_batch(c, chunk.to_vec()).await?);
            }
            for id in &groups_appeared {
                match (now_groups.get_mut(id), read.remove(id)) {
                    (Some(g), Some(Members::Read(m))) => g.members = Some(m),
                    // Gone meanwhile, or refused: left as the changes said; the read is
                    // incomplete so that nothing counts as missing from it.
                    _ => {
                        completeness.groups = false;
                        problems.push(format!(
                            "group {id}: its members could not be read again; the read is incomplete"
                        ));
                    }
                }
            }
        }
        delta::drop_absent_members(&mut now_groups, &now_users);
        let file = TenantFile {
            tenant_id: self.tenant.clone(),
            users: now_users.into_values().collect(),
            groups: now_groups.into_values().collect(),
            deleted_users: bins.deleted_users,
            deleted_groups: bins.deleted_groups,
        };
        let mut loaded =
            tenant_from_file(file, "the changes read").map_err(|e| GraphError::Rejected {
                what: "applying the changes".into(),
                status: 200,
                code: "UnexpectedObject".into(),
                message: e.to_string(),
            })?;
        // Users and groups are whole (every change applied, every removal confirmed), unless
        // a removal could not be confirmed; the recycle bins as read.
        loaded.snapshot.completeness = completeness;
        loaded.problems.extend(problems);
        loaded.tracking = Tracking {
            links: Some(delta::links(users, groups)),
            since: Some(base.run),
        };
        loaded.content = recycle_content(&loaded.snapshot);
        Ok(loaded)
    }

    /// Whether nothing changed since a read that left `links` and whose recycle bins hashed
    /// to `content` ([`recycle_content`]): both change listings empty, both bins read whole
    /// and as they were. Then the links the next read resumes from; else `None`, and what was
    /// read is kept for the run's read of the changes ([`GraphSource::changes`]): Graph is
    /// asked once.
    pub async fn quiet_since(
        &self,
        links: &DeltaLinks,
        content: &str,
    ) -> std::result::Result<Option<Quiet>, GraphError> {
        let (users, groups, bins) = self.fetch(links).await?;
        if !users.items.is_empty() || !groups.items.is_empty() || !bins.problems.is_empty() {
            // Kept for the run's read of the changes, which follows at once.
            *self.fetched.lock().unwrap_or_else(|p| p.into_inner()) = Some(Fetched {
                links: links.clone(),
                users,
                groups,
                bins,
            });
            return Ok(None);
        }
        let mut deleted_users: Vec<DeletedItem> =
            bins.deleted_users.into_iter().map(Into::into).collect();
        let mut deleted_groups: Vec<DeletedItem> =
            bins.deleted_groups.into_iter().map(Into::into).collect();
        deleted_users.sort_by(|a, b| a.id.cmp(&b.id));
        deleted_groups.sort_by(|a, b| a.id.cmp(&b.id));
        let same = bins.completeness == Completeness::COMPLETE
            && bins_content(&deleted_users, &deleted_groups) == content;
        Ok(same.then(|| Quiet {
            links: delta::links(users, groups),
        }))
    }

    /// Both change listings from `links`, and the recycle bins whole, read at once.
    async fn fetch(
        &self,
        links: &DeltaLinks,
    ) -> std::result::Result<(delta::Changes, delta::Changes, RecycleBins), GraphError> {
        let c = &self.client;
        let users_link = delta::checked_link(c, &links.users, "reading user changes")?;
        let groups_link = delta::checked_link(c, &links.groups, "reading group changes")?;
        let (users, groups, bins) = tokio::join!(
            delta::read(c, users_link, "reading user changes"),
            delta::read(c, groups_link, "reading group changes"),
            self.recycle_bins()
        );
        Ok((users?, groups?, bins))
    }

    /// Which of the objects a change listing says were removed really are: in the recycle
    /// bin, or answered 404 by Graph (`GET /users/{id}`, twenty per `$batch`). An object Graph
    /// still serves, or that could not be asked about, is kept as it was: said in `problems`.
    async fn confirm_removals(
        &self,
        removed: Vec<ObjectId>,
        kind: &str,
        binned: &HashSet<ObjectId>,
        problems: &mut Vec<String>,
    ) -> std::result::Result<delta::Removals, GraphError> {
        let ask: Vec<ObjectId> = removed
            .into_iter()
            .filter(|id| !binned.contains(id))
            .collect();
        let mut removals = delta::Removals::default();
        let what = format!("confirming the {kind} Graph's changes say were removed");
        for chunk in ask.chunks(BATCH_SIZE) {
            let paths: Vec<String> = chunk
                .iter()
                .map(|id| format!("/{kind}/{id}?$select=id"))
                .collect();
            let answers = get_each(&self.client, &paths, &what).await?;
            for (id, status) in chunk.iter().zip(answers) {
                if status.0 != 404 {
                    removals.unconfirmed.insert(id.clone());
                }
            }
        }
        if !removals.unconfirmed.is_empty() {
            let mut ids: Vec<&ObjectId> = removals.unconfirmed.iter().collect();
            ids.sort();
            let named: Vec<String> = ids.iter().take(5).map(|id| id.to_string()).collect();
            problems.push(format!(
                "Graph's changes said {} {kind} were removed, but that could not be confirmed (Graph still serves them, or did not say): {}{}; they are kept as they were, and the read is incomplete (nothing counts as missing from it; the next run reads the whole tenant)",
                ids.len(),
                named.join(", "),
                if ids.len() > 5 { ", …" } else { "" }
            ));
        }
        Ok(removals)
    }

    /// The groups each of `users` belongs to directly (`/users/{id}/memberOf`, groups only).
    async fn groups_of(
        &self,
        users: &[ObjectId],
    ) -> std::result::Result<HashMap<ObjectId, Vec<ObjectId>>, GraphError> {
        let c = &self.client;
        let mut out = HashMap::with_capacity(users.len());
        for chunk in users.chunks(BATCH_SIZE) {
            let paths: Vec<String> = chunk.iter().map(member_of_path).collect();
            let what = "reading the groups of users that appeared";
            let answers = get_each(c, &paths, what).await?;
            for (id, (status, body)) in chunk.iter().zip(answers) {
                let what = format!("reading the groups of user {id}");
                let mut groups: Vec<GraphMember> = Vec::new();
                let next = match (status, body) {
                    (200, Some(body)) => {
                        let page: Page<GraphMember> =
                            serde_json::from_value(body).map_err(|e| GraphError::Rejected {
                                what: what.clone(),
                                status: 200,
                                code: "UnexpectedObject".into(),
                                message: e.to_string(),
                            })?;
                        c.record_page(page.value.len());
                        groups.extend(page.value);
                        c.follow(page.next_link, &mut HashSet::new(), &what)?
                    }
                    // Deleted again meanwhile: it has no groups.
                    (404, _) => continue,
                    _ => Some(c.url(&member_of_path(id)[1..])),
                };
                if let Some(url) = next {
                    match c.list_into(url, Query::Plain, &what, &mut groups).await {
                        Ok(()) => {}
                        Err(GraphError::NotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                out.insert(id.clone(), groups.into_iter().map(|g| g.id).collect());
            }
        }
        Ok(out)
    }

    /// Both recycle bins. A bin that cannot be read is a problem, not a failure: soft-deleted
    /// objects then show as missing, which is still true evidence, and the read says it is
    /// incomplete.
    async fn recycle_bins(&self) -> RecycleBins {
        let c = &self.client;
        let (users, groups) = tokio::join!(
            c.list::<GraphDeletedItem>(
                c.url(&format!(
                    "directory/deletedItems/microsoft.graph.user?$select={DELETED_SELECT}&$top=999"
                )),
                Query::Plain,
                "listing deleted users",
            ),
            c.list::<GraphDeletedItem>(
                c.url(&format!(
                    "directory/deletedItems/microsoft.graph.group?$select={DELETED_SELECT}&$top=999"
                )),
                Query::Plain,
                "listing deleted groups",
            )
        );
        let mut problems = Vec::new();
        let mut completeness = Completeness::COMPLETE;
        let mut bin = |r: std::result::Result<Vec<GraphDeletedItem>, GraphError>, what: &str| {
            match r {
                Ok(items) => items,
                Err(GraphError::Auth(e)) => {
                    problems.push(format!("could not read {what}: {e}"));
                    completeness.deleted_items = false;
                    Vec::new()
                }
                Err(e) => {
                    problems.push(format!("could not read {what}: {e}; objects deleted in Entra ID will show as missing instead of soft-deleted"));
                    completeness.deleted_items = false;
                    Vec::new()
                }
            }
        };
        let deleted_users = bin(users, "the deleted users");
        let deleted_groups = bin(groups, "the deleted groups");
        RecycleBins {
            deleted_users,
            deleted_groups,
            completeness,
            problems,
        }
    }

    /// Each group's direct members; a group missing from the map was deleted meanwhile.
    async fn direct_members(
        &self,
        groups: &[CheckedGroup],
    ) -> std::result::Result<HashMap<ObjectId, Members>, GraphError> {
        let ids: Vec<(ObjectId, bool)> = groups
            .iter()
            .map(|g| (g.id.clone(), g.hides_members()))
            .collect();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in ids.chunks(BATCH_SIZE) {
            let chunk = chunk.to_vec();
            let client = self.client.clone();
            let permit = semaphore.clone();
            tasks.spawn(async move {
                let _permit = permit
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                members_batch(&client, chunk).await
            });
        }
        let mut out = HashMap::with_capacity(ids.len());
        while let Some(done) = tasks.join_next().await {
            let part = done.map_err(|e| GraphError::Rejected {
                what: "reading members".into(),
                status: 0,
                code: "TaskFailed".into(),
                message: e.to_string(),
            })??;
            out.extend(part);
        }
        Ok(out)
    }
}

/// The permission without which Graph leaves the members of a group with hidden membership out.
pub const HIDDEN_MEMBERS: &str = "Member.Read.Hidden";

/// What reading one group's direct members gave.
enum Members {
    Read(Vec<GraphMember>),
    /// Refused (403) for a group whose membership is hidden.
    Forbidden,
}

/// The most unreadable objects a run's problems name one by one; the rest are counted.
const NAMED_UNREADABLE: usize = 20;

/// The objects a whole read could not read, said in its problems (the first few by name).
#[derive(Default)]
struct Unreadables {
    ids: HashSet<ObjectId>,
    count: usize,
}

impl Unreadables {
    fn add(&mut self, kind: &str, e: Unreadable, problems: &mut Vec<String>) {
        self.count += 1;
        if self.count <= NAMED_UNREADABLE {
            problems.push(format!(
                "{}; it is left out of this run (a value roster decides on did not come, and is never assumed), and no {kind} counts as missing from the listing",
                e.describe(kind)
            ));
        }
        if let Some(id) = e.id {
            self.ids.insert(id);
        }
    }

    fn finish(&self, problems: &mut Vec<String>) {
        if self.count > NAMED_UNREADABLE {
            problems.push(format!(
                "{} more objects could not be read and are left out of this run",
                self.count - NAMED_UNREADABLE
            ));
        }
    }
}

/// `groups` without those that list a left-out object (an unreadable user or group, or a
/// group left out) among their direct members, nested groups followed to the end.
/// What a Graph read's `content` is ([`Loaded::content`]): SHA-256 of its recycle bins as the
/// snapshot holds them, when both were read whole (its users and groups are told by the delta
/// links: a change listing that returns nothing says they are as they were).
pub fn recycle_content(snapshot: &TenantSnapshot) -> Option<String> {
    snapshot
        .completeness
        .deleted_items
        .then(|| bins_content(&snapshot.deleted_users, &snapshot.deleted_groups))
}

fn bins_content(users: &[DeletedItem], groups: &[DeletedItem]) -> String {
    let canonical = serde_json::to_vec(&(users, groups)).expect("deleted items serialize");
    crate::fixture::sha256_hex(&canonical)
}

fn leave_out_groups_with(
    groups: Vec<(CheckedGroup, Vec<GraphMember>)>,
    mut left_out: HashSet<ObjectId>,
    read: &mut RecycleBins,
) -> (Vec<CheckedGroup>, Vec<Vec<GraphMember>>) {
    if left_out.is_empty() {
        return groups.into_iter().unzip();
    }
    let mut keep = vec![true; groups.len()];
    loop {
        let mut more = false;
        for (i, (g, members)) in groups.iter().enumerate() {
            if keep[i] && members.iter().any(|m| left_out.contains(&m.id)) {
                keep[i] = false;
                more = true;
                left_out.insert(g.id.clone());
                read.completeness.groups = false;
                read.problems.push(format!(
                    "group {} ({}): an object among its members could not be read; it is left out of this run, so that no member is taken away for what was not read",
                    g.display_name.as_deref().unwrap_or("?"),
                    g.id
                ));
            }
        }
        if !more {
            break;
        }
    }
    groups
        .into_iter()
        .zip(keep)
        .filter_map(|(g, k)| k.then_some(g))
        .unzip()
}

fn members_path(id: &ObjectId) -> String {
    format!("groups/{id}/members?$select=id&$top=999")
}

fn member_of_path(id: &ObjectId) -> String {
    format!("/users/{id}/memberOf/microsoft.graph.group?$select=id&$top=999")
}

/// Takes the objects `gone` names out of `objects`; their ids.
fn take_out<T>(
    objects: &mut std::collections::BTreeMap<ObjectId, T>,
    gone: impl Fn(&ObjectId) -> bool,
) -> Vec<ObjectId> {
    let ids: Vec<ObjectId> = objects.keys().filter(|id| gone(id)).cloned().collect();
    for id in &ids {
        objects.remove(id);
    }
    ids
}

/// GETs `paths` (up to twenty, relative to the version root) in one `$batch`; each answer's
/// status and body, in order. Inner requests throttled or failing are sent again together
/// after the longest `Retry-After`, within the client's policy; one never answered counts as
/// a 503.
async fn get_each(
    client: &GraphClient,
    paths: &[String],
    what: &str,
) -> std::result::Result<Vec<(u16, Option<serde_json::Value>)>, GraphError> {
    let mut out: Vec<(u16, Option<serde_json::Value>)> = vec![(503, None); paths.len()];
    let mut pending: Vec<usize> = (0..paths.len()).collect();
    let mut round = 0;
    while !pending.is_empty() && round < client.policy().max_attempts {
        round += 1;
        let requests = pending
            .iter()
            .map(|&i| BatchRequestItem {
                id: i.to_string(),
                method: "GET".into(),
                url: paths[i].clone(),
                headers: None,
                body: None,
            })
            .collect();
        let answer = client.batch(requests, what).await?;
        let mut again = Vec::new();
        let mut answered = HashSet::new();
        let mut wait: Option<Duration> = None;
        for r in answer.responses {
            let Some(i) = r.id.parse::<usize>().ok().filter(|i| pending.contains(i)) else {
                continue;
            };
            answered.insert(i);
            match r.status {
                429 | 500 | 502 | 503 | 504 => {
                    client.record_retry(r.status == 429);
                    if let Some(after) = r.header("Retry-After").and_then(parse_retry_after) {
                        wait = Some(wait.map_or(after, |w: Duration| w.max(after)));
                    }
                    again.push(i);
                }
                status => out[i] = (status, r.body),
            }
        }
        again.extend(pending.iter().copied().filter(|i| !answered.contains(i)));
        if !again.is_empty() {
            let delay = wait.unwrap_or_else(|| client.policy().backoff(round - 1));
            client.hold(delay);
            tokio::time::sleep(delay.min(Duration::from_secs(60))).await;
        }
        pending = again;
    }
    Ok(out)
}

/// First pages by `$batch`, then the rest of each group's pages one by one. Inner requests
/// that were throttled or failed are sent again together, in a new `$batch`, once the longest
/// `Retry-After` has passed (Graph's advice); whatever still fails is read on its own, with the
/// client's full retry policy.
async fn members_batch(
    client: &GraphClient,
    groups: Vec<(ObjectId, bool)>,
) -> std::result::Result<Vec<(ObjectId, Members)>, GraphError> {
    let mut first: HashMap<usize, Page<GraphMember>> = HashMap::new();
    let mut gone: HashSet<usize> = HashSet::new();
    let mut direct: Vec<usize> = Vec::new();
    let mut pending: Vec<usize> = (0..groups.len()).collect();
    let mut round = 0;
    while !pending.is_empty() && round < client.policy().max_attempts {
        round += 1;
        let requests = pending
            .iter()
            .map(|&i| BatchRequestItem {
                id: i.to_string(),
                method: "GET".into(),
                url: format!("/{}", members_path(&groups[i].0)),
                headers: None,
                body: None,
            })
            .collect();
        let answer = client.batch(requests, "reading group members").await?;
        let mut answered: HashSet<usize> = HashSet::new();
        let mut again = Vec::new();
        let mut wait: Option<Duration> = None;
        for r in answer.responses {
            let Some(i) = r.id.parse::<usize>().ok().filter(|i| *i < groups.len()) else {
                continue;
            };
            answered.insert(i);
            match r.status {
                200 => match r.body.map(serde_json::from_value::<Page<GraphMember>>) {
                    Some(Ok(page)) => {
                        first.insert(i, page);
                    }
                    _ => again.push(i),
                },
                404 => {
                    gone.insert(i);
                }
                429 | 500 | 502 | 503 | 504 => {
                    client.record_retry(r.status == 429);
                    if let Some(after) = r.header("Retry-After").and_then(parse_retry_after) {
                        wait = Some(wait.map_or(after, |w: Duration| w.max(after)));
                    }
                    again.push(i);
                }
                // Anything else (a 403, say) is read on its own, where it becomes a clear error.
                _ => direct.push(i),
            }
        }
        again.extend(pending.iter().copied().filter(|i| !answered.contains(i)));
        if !again.is_empty() {
            let delay = wait.unwrap_or_else(|| client.policy().backoff(round - 1));
            client.hold(delay);
            tokio::time::sleep(delay.min(Duration::from_secs(60))).await;
        }
        pending = again;
    }
    direct.extend(pending);
    let mut out = Vec::with_capacity(groups.len());
    for (i, (id, hidden)) in groups.into_iter().enumerate() {
        if gone.contains(&i) {
            continue;
        }
        let what = format!("reading the members of group {id}");
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        let next = match first.remove(&i) {
            Some(page) => {
                client.record_page(page.value.len());
                members.extend(page.value);
                client.follow(page.next_link, &mut seen, &what)?
            }
            None => Some(client.url(&members_path(&id))),
        };
        if let Some(url) = next {
            match client
                .list_into(url, Query::Plain, &what, &mut members)
                .await
            {
                Ok(()) => {}
                Err(GraphError::NotFound { .. }) => continue,
                Err(GraphError::Forbidden { .. }) if hidden => {
                    out.push((id, Members::Forbidden));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        out.push((id, Members::Read(members)));
    }
    Ok(out)
}

/// A tenant read through Graph by the synchronous parts of roster.
pub struct LiveSource {
    pub source: GraphSource,
    /// Ctrl-C: a read under way is given up (nothing of it is applied).
    pub stop: Interrupt,
}

impl LiveSource {
    /// Runs a read on its own runtime, given up when a stop is asked for.
    fn block_on<T>(&self, read: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        runtime()?.block_on(async {
            tokio::select! {
                read = read => read,
                () = self.stop.asked() => Err(Error::Interrupted),
            }
        })
    }
}

impl TenantSource for LiveSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Graph
    }

    fn location(&self) -> String {
        self.source
            .client
            .base()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    fn read(&self) -> Result<Loaded> {
        self.block_on(async { self.source.enumerate_tracked().await.map_err(Error::from) })
    }

    fn tracks_changes(&self) -> bool {
        true
    }

    fn signed_in_as(&self) -> Option<String> {
        self.source.client.signed_in_as()
    }

    fn quiet_since(&self, links: &DeltaLinks, content: &str) -> Result<Option<Quiet>> {
        self.block_on(async {
            match self.source.quiet_since(links, content).await {
                Ok(quiet) => Ok(quiet),
                Err(GraphError::Stopped) => Err(Error::Interrupted),
                Err(e) => {
                    // Whatever failed, the run reads the changes and meets it there.
                    tracing::debug!(error = %e, "asking Graph whether anything changed failed");
                    Ok(None)
                }
            }
        })
    }

    /// The changes since `base`; when they cannot be read (an expired token, a listing that
    /// did not complete), the whole tenant, saying why in the problems.
    fn read_changes(&self, base: Mirror) -> Result<Loaded> {
        let run = base.run;
        self.block_on(async {
            match self.source.changes(base, &self.stop).await {
                Ok(loaded) => Ok(loaded),
                Err(GraphError::Stopped) => Err(Error::Interrupted),
                Err(e) => {
                    tracing::debug!(error = %e, "reading the changes failed; reading the whole tenant");
                    let mut loaded = self.source.enumerate_tracked().await?;
                    loaded.problems.insert(
                        0,
                        format!(
                            "could not read only the changes since run {run} ({e}); read the whole tenant instead"
                        ),
                    );
                    Ok(loaded)
                }
            }
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the HTTP runtime", e))
}
