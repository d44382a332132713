//! Reading only what changed: Graph's change tracking (`/users/delta`, `/groups/delta` with
//! `members@delta`) applied to the users and groups an earlier run read.
//!
//! A whole read asks for `$deltatoken=latest` links *before* it lists the tenant, so that a
//! change made while it lists shows again in the next delta; applying a change twice is
//! harmless (an object's properties are set, a member added or removed, an object removed).
//! Graph sends an updated object with at least its changed properties: what it sends is laid
//! over the object as last read, and what it leaves out is kept.
//!
//! What a change listing says is not taken on its word where a mistake would cost access:
//! - an object it says was removed is removed only when that is confirmed ([`Removals`]): the
//!   recycle bin lists it, or Graph answers 404 for it. An unconfirmed removal leaves the
//!   object as it was, and the read is incomplete (so nothing counts as missing from it, and
//!   the next run reads the whole tenant);
//! - a value a decision depends on that an update leaves `null` or of another type makes the
//!   changes unusable: the caller reads the whole tenant instead;
//! - Graph's group changes do not say that a user deleted or restored left or joined its
//!   groups: a user that appears has its groups read again (`/users/{id}/memberOf`), and a
//!   group that appears has its members read whole.
//!
//! Applying is linear in the size of what is applied (members by index, not by search), and
//! gives up between items when the run is asked to stop.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use engine::event::DeltaLinks;
use engine::ObjectId;

use crate::graph::client::{GraphClient, GraphError, Query};
use crate::interrupt::Interrupt;
use crate::wire::{GraphGroup, GraphMember, GraphUser, Page, GROUP_SELECT, USER_SELECT};

/// The longest delta link kept: Graph's are a few hundred characters.
const MAX_LINK: usize = 16 << 10;

/// Items applied between two looks at whether the run was asked to stop.
const STOP_EVERY: usize = 1024;

/// The first request of a users' or groups' change listing from now on.
pub(crate) fn latest(c: &GraphClient) -> (url::Url, url::Url) {
    (
        c.url(&format!(
            "users/delta?$select={USER_SELECT}&$deltatoken=latest"
        )),
        c.url(&format!(
            "groups/delta?$select={GROUP_SELECT},members&$deltatoken=latest"
        )),
    )
}

/// The changes one delta listing returned, in order, and the link the next one starts from.
pub(crate) struct Changes {
    pub items: Vec<Value>,
    pub link: String,
}

/// Follows a delta listing from `first` to its `@odata.deltaLink`. A listing that ends
/// without one did not complete; one longer than the client's bounds (pages, time) neither.
pub(crate) async fn read(
    c: &GraphClient,
    first: url::Url,
    what: &str,
) -> Result<Changes, GraphError> {
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut next = first;
    let mut bound = c.listing_bound(what);
    loop {
        bound.page()?;
        let page: Page<Value> = c.get_json(&next, Query::Plain, what).await?;
        c.record_page(page.value.len());
        items.extend(page.value);
        match (page.next_link, page.delta_link) {
            (Some(link), _) => {
                next = c
                    .follow(Some(link), &mut seen, what)?
                    .expect("a link was given");
            }
            (None, Some(link)) => {
                checked_link(c, &link, what)?;
                return Ok(Changes { items, link });
            }
            (None, None) => {
                return Err(rejected(
                    what,
                    "NoDeltaLink",
                    "the change listing ended without an @odata.deltaLink".into(),
                ))
            }
        }
    }
}

/// A delta link roster will follow: short, and on the Graph host it was read from (the
/// token goes where the link points).
pub(crate) fn checked_link(
    c: &GraphClient,
    link: &str,
    what: &str,
) -> Result<url::Url, GraphError> {
    if link.len() > MAX_LINK {
        return Err(rejected(
            what,
            "BadDeltaLink",
            format!("the deltaLink is {} bytes long", link.len()),
        ));
    }
    let url = url::Url::parse(link).map_err(|_| {
        rejected(
            what,
            "BadDeltaLink",
            "the deltaLink is not a URL".to_owned(),
        )
    })?;
    if !c.same_origin(&url) {
        return Err(GraphError::ForeignLink {
            what: what.to_owned(),
            kind: "a deltaLink",
            link: link.to_owned(),
        });
    }
    Ok(url)
}

pub(crate) fn links(users: Changes, groups: Changes) -> DeltaLinks {
    DeltaLinks {
        users: users.link,
        groups: groups.link,
    }
}

fn rejected(what: &str, code: &str, message: String) -> GraphError {
    GraphError::Rejected {
        what: what.to_owned(),
        status: 200,
        code: code.to_owned(),
        message,
    }
}

/// The id of a change, and whether it says the object was removed.
fn id_and_removed(item: &Value, what: &str) -> Result<(ObjectId, bool), GraphError> {
    let id = item
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| ObjectId::parse(s).ok())
        .ok_or_else(|| {
            rejected(
                what,
                "UnexpectedObject",
                "a change without a valid id".into(),
            )
        })?;
    Ok((id, item.get("@removed").is_some()))
}

/// The objects a change listing says were removed, and not brought back by a later change
/// of the same listing: what must be confirmed before anything is removed.
pub(crate) fn removed(changes: &[Value], what: &str) -> Result<Vec<ObjectId>, GraphError> {
    let mut last: HashMap<ObjectId, bool> = HashMap::with_capacity(changes.len());
    for item in changes {
        let (id, removed) = id_and_removed(item, what)?;
        last.insert(id, removed);
    }
    let mut out: Vec<ObjectId> = last
        .into_iter()
        .filter_map(|(id, removed)| removed.then_some(id))
        .collect();
    out.sort();
    Ok(out)
}

/// Which removals a change listing announced were confirmed: the object is in the recycle bin,
/// or Graph answers 404 for it. The others are kept as they were.
#[derive(Debug, Default)]
pub(crate) struct Removals {
    pub unconfirmed: HashSet<ObjectId>,
}

impl Removals {
    fn confirmed(&self, id: &ObjectId) -> bool {
        !self.unconfirmed.contains(id)
    }
}

/// Gives up with [`GraphError::Stopped`] every [`STOP_EVERY`] items once a stop is asked.
fn check_stop(i: usize, stop: &Interrupt) -> Result<(), GraphError> {
    if i.is_multiple_of(STOP_EVERY) && stop.requested() {
        return Err(GraphError::Stopped);
    }
    Ok(())
}

/// `item`'s properties (not its annotations, nor its members) laid over `base`.
fn overlay<T: serde::Serialize + serde::de::DeserializeOwned>(
    base: Option<&T>,
    item: &Value,
    what: &str,
) -> Result<T, GraphError> {
    let mut merged = match base {
        Some(b) => match serde_json::to_value(b) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    if let Some(props) = item.as_object() {
        for (k, v) in props {
            if !k.contains('@') && k != "members" {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| rejected(what, "UnexpectedObject", format!("a changed object: {e}")))
}

/// Users as last read, with `changes` applied in order (removals only where confirmed), and
/// the users that were not in `base` (new, or restored: their groups must be read again).
pub(crate) fn apply_users(
    base: BTreeMap<ObjectId, GraphUser>,
    changes: &[Value],
    removals: &Removals,
    stop: &Interrupt,
) -> Result<(BTreeMap<ObjectId, GraphUser>, Vec<ObjectId>), GraphError> {
    let what = "applying the user changes";
    let mut users = base;
    let mut appeared = Vec::new();
    for (i, item) in changes.iter().enumerate() {
        check_stop(i, stop)?;
        let (id, removed) = id_and_removed(item, what)?;
        if removed {
            if removals.confirmed(&id) {
                users.remove(&id);
            }
        } else {
            let old = users.get(&id);
            if old.is_none() {
                appeared.push(id.clone());
            }
            let user = overlay(old, item, what)?;
            users.insert(id, user);
        }
    }
    appeared.retain(|id| users.contains_key(id));
    appeared.sort();
    appeared.dedup();
    Ok((users, appeared))
}

/// A group's direct members while changes are applied: found by id in constant time, so a
/// `members@delta` of any length is applied in time linear in its length.
#[derive(Default)]
struct MemberSet {
    slots: Vec<Option<GraphMember>>,
    index: HashMap<ObjectId, usize>,
}

impl MemberSet {
    fn new(members: Vec<GraphMember>) -> Self {
        let mut set = MemberSet::default();
        for m in members {
            set.add(m);
        }
        set
    }

    fn add(&mut self, m: GraphMember) {
        match self.index.get(&m.id) {
            Some(&i) => self.slots[i] = Some(m),
            None => {
                self.index.insert(m.id.clone(), self.slots.len());
                self.slots.push(Some(m));
            }
        }
    }

    fn remove(&mut self, id: &ObjectId) {
        if let Some(i) = self.index.remove(id) {
            self.slots[i] = None;
        }
    }

    fn into_vec(self) -> Vec<GraphMember> {
        self.slots.into_iter().flatten().collect()
    }
}

/// Groups as last read (each with its direct members), with `changes` applied in order:
/// properties laid over, `members@delta` added and removed, removals only where confirmed.
/// Also the groups that were not in `base`.
pub(crate) fn apply_groups(
    base: BTreeMap<ObjectId, GraphGroup>,
    changes: &[Value],
    removals: &Removals,
    stop: &Interrupt,
) -> Result<(BTreeMap<ObjectId, GraphGroup>, Vec<ObjectId>), GraphError> {
    let what = "applying the group changes";
    let mut groups: BTreeMap<ObjectId, (GraphGroup, MemberSet)> = base
        .into_iter()
        .map(|(id, mut g)| {
            let members = MemberSet::new(g.members.take().unwrap_or_default());
            (id, (g, members))
        })
        .collect();
    let mut appeared = Vec::new();
    let mut applied = 0usize;
    for item in changes {
        check_stop(applied, stop)?;
        applied += 1;
        let (id, removed) = id_and_removed(item, what)?;
        if removed {
            if removals.confirmed(&id) {
                groups.remove(&id);
            }
            continue;
        }
        let (old, mut members) = match groups.remove(&id) {
            Some((g, m)) => (Some(g), m),
            None => {
                appeared.push(id.clone());
                (None, MemberSet::default())
            }
        };
        let group: GraphGroup = overlay(old.as_ref(), item, what)?;
        if let Some(delta) = item.get("members@delta").and_then(Value::as_array) {
            for m in delta {
                check_stop(applied, stop)?;
                applied += 1;
                let (member_id, gone) = id_and_removed(m, what)?;
                if gone {
                    members.remove(&member_id);
                } else {
                    members.add(GraphMember {
                        odata_type: m
                            .get("@odata.type")
                            .and_then(Value::as_str)
                            .map(|t| t.chars().take(100).collect()),
                        id: member_id,
                    });
                }
            }
        }
        groups.insert(id, (group, members));
    }
    appeared.retain(|id| groups.contains_key(id));
    appeared.sort();
    appeared.dedup();
    let groups = groups
        .into_iter()
        .map(|(id, (mut g, members))| {
            g.members = Some(members.into_vec());
            (id, g)
        })
        .collect();
    Ok((groups, appeared))
}

/// Takes members that are no longer a user or group of the tenant out of their groups, as a
/// whole read's `/members` would not list them (Graph's group changes do not say that a
/// deleted user left its groups).
pub(crate) fn drop_absent_members(
    groups: &mut BTreeMap<ObjectId, GraphGroup>,
    users: &BTreeMap<ObjectId, GraphUser>,
) {
    let group_ids: HashSet<ObjectId> = groups.keys().cloned().collect();
    for g in groups.values_mut() {
        if let Some(m) = &mut g.members {
            m.retain(|m| {
                users.contains_key(&m.id)
                    || group_ids.contains(&m.id)
                    || m.member_type() == crate::wire::MemberType::Other
            });
        }
    }
}

/// Adds each user to the groups Graph says it belongs to (`user → groups`), where the group is
/// known: the memberships of a user that appeared, which the group changes do not carry.
pub(crate) fn add_memberships(
    groups: &mut BTreeMap<ObjectId, GraphGroup>,
    memberships: &HashMap<ObjectId, Vec<ObjectId>>,
) {
    let mut by_group: HashMap<&ObjectId, Vec<&ObjectId>> = HashMap::new();
    for (user, of) in memberships {
        for g in of {
            by_group.entry(g).or_default().push(user);
        }
    }
    for (group, users) in by_group {
        let Some(g) = groups.get_mut(group) else {
            continue;
        };
        let members = g.members.get_or_insert_with(Vec::new);
        let present: HashSet<ObjectId> = members.iter().map(|m| m.id.clone()).collect();
        for u in users {
            if !present.contains(u) {
                members.push(GraphMember {
                    odata_type: Some("#microsoft.graph.user".into()),
                    id: u.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u32) -> ObjectId {
        ObjectId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
    }

    fn group(n: u32, members: &[u32]) -> GraphGroup {
        GraphGroup {
            id: crate::wire::Prop::Is(oid(n)),
            members: Some(
                members
                    .iter()
                    .map(|m| GraphMember {
                        odata_type: Some("#microsoft.graph.user".into()),
                        id: oid(*m),
                    })
                    .collect(),
            ),
            ..GraphGroup::default()
        }
    }

    #[test]
    fn a_long_members_delta_is_applied_in_linear_time() {
        // 100,000 members added and half of them removed again, in one change (a search per
        // entry took minutes; BENCHMARKS.md has the figures).
        let n = 100_000u32;
        let mut delta: Vec<Value> = (1..=n)
            .map(|m| serde_json::json!({"@odata.type": "#microsoft.graph.user", "id": oid(m).as_str()}))
            .collect();
        delta.extend((1..=n / 2).map(
            |m| serde_json::json!({"id": oid(m).as_str(), "@removed": {"reason": "deleted"}}),
        ));
        let change = serde_json::json!({"id": oid(900_000).as_str(), "members@delta": delta});
        let base = BTreeMap::from([(oid(900_000), group(900_000, &[]))]);
        let started = std::time::Instant::now();
        let (groups, appeared) =
            apply_groups(base, &[change], &Removals::default(), &Interrupt::default()).unwrap();
        tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "applied");
        assert!(appeared.is_empty());
        let members = groups[&oid(900_000)].members.as_ref().unwrap();
        assert_eq!(members.len(), (n / 2) as usize);
        assert_eq!(members[0].id, oid(n / 2 + 1));
    }

    #[test]
    fn an_unconfirmed_removal_leaves_the_object_as_it_was() {
        let base = BTreeMap::from([(oid(1), group(1, &[7])), (oid(2), group(2, &[7]))]);
        let changes = [
            serde_json::json!({"id": oid(1).as_str(), "@removed": {"reason": "changed"}}),
            serde_json::json!({"id": oid(2).as_str(), "@removed": {"reason": "deleted"}}),
        ];
        assert_eq!(removed(&changes, "t").unwrap(), vec![oid(1), oid(2)]);
        let removals = Removals {
            unconfirmed: HashSet::from([oid(2)]),
        };
        let (groups, _) = apply_groups(base, &changes, &removals, &Interrupt::default()).unwrap();
        assert!(!groups.contains_key(&oid(1)), "confirmed: removed");
        assert_eq!(groups[&oid(2)], group(2, &[7]), "unconfirmed: kept whole");
    }

    #[test]
    fn a_stop_asked_for_ends_the_apply() {
        let stop = Interrupt::default();
        stop.request();
        let changes = vec![serde_json::json!({"id": oid(1).as_str()}); 3000];
        let err = apply_users(BTreeMap::new(), &changes, &Removals::default(), &stop).unwrap_err();
        assert!(matches!(err, GraphError::Stopped));
    }
}
