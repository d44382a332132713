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

use engine::event::SourceKind;
use engine::model::{Completeness, TenantSnapshot};
use engine::{ObjectId, TenantId};

use crate::error::{Error, Result};
use crate::fixture::{resolve_nesting, tenant_from_file, Loaded, TenantFile, Tracking};
use crate::graph::client::{parse_retry_after, GraphClient, GraphError, Query};
use crate::graph::delta;
use crate::interrupt::Interrupt;
use crate::source::{Mirror, TenantSource};
use crate::wire::{
    BatchRequestItem, GraphDeletedItem, GraphGroup, GraphMember, GraphUser, Page, DELETED_SELECT,
    GROUP_SELECT, USER_SELECT,
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
}

impl GraphSource {
    pub fn new(client: GraphClient, tenant: TenantId) -> Self {
        GraphSource {
            client,
            tenant,
            concurrency: 4,
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

        let mut entra_users = Vec::with_capacity(users.len());
        for u in users {
            let id = u.id.clone();
            entra_users.push(u.into_entra().map_err(|e| GraphError::Rejected {
                what: "listing users".into(),
                status: 200,
                code: "UnexpectedUser".into(),
                message: format!("user {id}: {e}"),
            })?);
        }
        let mut members = self.direct_members(&groups).await?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "read the members"
        );
        // A listed group whose members could not be read (Graph answered 404: deleted while
        // it was read, or a replica that has not caught up) is left out of this run. That is an
        // incomplete read of the groups, never evidence that the group is gone: no group
        // counts as missing from the listing, so nothing is disabled or deleted for it.
        let (groups, direct): (Vec<GraphGroup>, Vec<Vec<GraphMember>>) = groups
            .into_iter()
            .filter_map(|g| match members.remove(&g.id) {
                Some(m) => Some((g, m)),
                None => {
                    read.problems.push(format!(
                        "group {} ({}): its members could not be read (not found); it is left out of this run, and no group counts as missing from the listing",
                        g.display_name.as_deref().unwrap_or("?"),
                        g.id
                    ));
                    read.completeness.groups = false;
                    None
                }
            })
            .unzip();
        let transitive = {
            let user_ids: HashSet<&ObjectId> = entra_users.iter().map(|u| &u.id).collect();
            let group_ids: HashSet<&ObjectId> = groups.iter().map(|g| &g.id).collect();
            let direct: Vec<&[GraphMember]> = direct.iter().map(Vec::as_slice).collect();
            resolve_nesting(&groups, &direct, &user_ids, &group_ids, &mut read.problems)
        };
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
        Ok(loaded)
    }

    /// Reads what changed since `base` was read, applied to its users and groups; the recycle
    /// bins are read whole (they are small, and they tell a soft deletion from a hard one).
    /// Any failure fails the read — never a partial tenant (the caller reads it whole instead).
    pub async fn changes(&self, base: Mirror) -> std::result::Result<Loaded, GraphError> {
        let c = &self.client;
        let users_link = delta::checked_link(c, &base.links.users, "reading user changes")?;
        let groups_link = delta::checked_link(c, &base.links.groups, "reading group changes")?;
        let (users, groups, bins) = tokio::join!(
            delta::read(c, users_link, "reading user changes"),
            delta::read(c, groups_link, "reading group changes"),
            self.recycle_bins()
        );
        let (users, groups) = (users?, groups?);
        tracing::debug!(
            users = users.items.len(),
            groups = groups.items.len(),
            "read the changes"
        );
        // Converted one by one, each object let go once converted: never two copies of the
        // tenant at once.
        let base_users = base
            .users
            .into_iter()
            .map(|u| GraphUser::from_entra(&u))
            .collect();
        let base_groups = base
            .groups
            .into_iter()
            .map(|g| GraphGroup::from_entra(&g))
            .collect();
        let now_users = delta::apply_users(base_users, &users.items)?;
        let now_groups = delta::apply_groups(base_groups, &groups.items, &now_users)?;
        let file = TenantFile {
            tenant_id: self.tenant.clone(),
            users: now_users,
            groups: now_groups,
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
        // Users and groups are whole (every change applied); the recycle bins as read.
        loaded.snapshot.completeness = bins.completeness;
        loaded.problems.extend(bins.problems);
        loaded.tracking = Tracking {
            links: Some(delta::links(users, groups)),
            since: Some(base.run),
        };
        Ok(loaded)
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
        groups: &[GraphGroup],
    ) -> std::result::Result<HashMap<ObjectId, Vec<GraphMember>>, GraphError> {
        let ids: Vec<ObjectId> = groups.iter().map(|g| g.id.clone()).collect();
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

fn members_path(id: &ObjectId) -> String {
    format!("groups/{id}/members?$select=id&$top=999")
}

/// First pages by `$batch`, then the rest of each group's pages one by one. Inner requests
/// that were throttled or failed are sent again together, in a new `$batch`, once the longest
/// `Retry-After` has passed (Graph's advice); whatever still fails is read on its own, with the
/// client's full retry policy.
async fn members_batch(
    client: &GraphClient,
    groups: Vec<ObjectId>,
) -> std::result::Result<Vec<(ObjectId, Vec<GraphMember>)>, GraphError> {
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
                url: format!("/{}", members_path(&groups[i])),
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
    for (i, id) in groups.into_iter().enumerate() {
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
                Err(e) => return Err(e),
            }
        }
        out.push((id, members));
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

    /// The changes since `base`; when they cannot be read (an expired token, a listing that
    /// did not complete), the whole tenant, saying why in the problems.
    fn read_changes(&self, base: Mirror) -> Result<Loaded> {
        let run = base.run;
        self.block_on(async {
            match self.source.changes(base).await {
                Ok(loaded) => Ok(loaded),
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
