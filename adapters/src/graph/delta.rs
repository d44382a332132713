//! Reading only what changed: Graph's change tracking (`/users/delta`, `/groups/delta` with
//! `members@delta`) applied to the users and groups an earlier run read.
//!
//! A whole read asks for `$deltatoken=latest` links *before* it lists the tenant, so that a
//! change made while it lists shows again in the next delta; applying a change twice is
//! harmless (an object's properties are set, a member added or removed, an object removed).
//! Graph sends an updated object with at least its changed properties: what it sends is laid
//! over the object as last read, and what it leaves out is kept.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use engine::event::DeltaLinks;
use engine::ObjectId;

use crate::graph::client::{GraphClient, GraphError, Query};
use crate::wire::{GraphGroup, GraphMember, GraphUser, Page, GROUP_SELECT, USER_SELECT};

/// The longest delta link kept: Graph's are a few hundred characters.
const MAX_LINK: usize = 16 << 10;

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
/// without one did not complete.
pub(crate) async fn read(
    c: &GraphClient,
    first: url::Url,
    what: &str,
) -> Result<Changes, GraphError> {
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut next = first;
    loop {
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

/// Users as last read, with `changes` applied in order.
pub(crate) fn apply_users(
    base: Vec<GraphUser>,
    changes: &[Value],
) -> Result<Vec<GraphUser>, GraphError> {
    let what = "applying the user changes";
    let mut users: BTreeMap<ObjectId, GraphUser> =
        base.into_iter().map(|u| (u.id.clone(), u)).collect();
    for item in changes {
        let (id, removed) = id_and_removed(item, what)?;
        if removed {
            users.remove(&id);
        } else {
            let user = overlay(users.get(&id), item, what)?;
            users.insert(id, user);
        }
    }
    Ok(users.into_values().collect())
}

/// Groups as last read (each with its direct members), with `changes` applied in order:
/// properties laid over, `members@delta` added and removed. Members that are no longer a user
/// or group of the tenant leave their groups, as a whole read's `/members` would not list them.
pub(crate) fn apply_groups(
    base: Vec<GraphGroup>,
    changes: &[Value],
    users: &[GraphUser],
) -> Result<Vec<GraphGroup>, GraphError> {
    let what = "applying the group changes";
    let mut groups: BTreeMap<ObjectId, GraphGroup> =
        base.into_iter().map(|g| (g.id.clone(), g)).collect();
    for item in changes {
        let (id, removed) = id_and_removed(item, what)?;
        if removed {
            groups.remove(&id);
            continue;
        }
        let old = groups.get(&id);
        let mut members = old.and_then(|g| g.members.clone()).unwrap_or_default();
        let mut group: GraphGroup = overlay(old, item, what)?;
        if let Some(delta) = item.get("members@delta").and_then(Value::as_array) {
            for m in delta {
                let (member_id, gone) = id_and_removed(m, what)?;
                members.retain(|x| x.id != member_id);
                if !gone {
                    members.push(GraphMember {
                        odata_type: m
                            .get("@odata.type")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        id: member_id,
                    });
                }
            }
        }
        group.members = Some(members);
        groups.insert(id, group);
    }
    let present: HashSet<ObjectId> = users
        .iter()
        .map(|u| u.id.clone())
        .chain(groups.keys().cloned())
        .collect();
    Ok(groups
        .into_values()
        .map(|mut g| {
            if let Some(m) = &mut g.members {
                m.retain(|m| {
                    present.contains(&m.id) || m.member_type() == crate::wire::MemberType::Other
                });
            }
            g
        })
        .collect())
}
