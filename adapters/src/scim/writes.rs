//! Each server op as SCIM requests, on what the run knows of the service ([`Ids`]): written,
//! checked, and kept up to date with every write.

use std::collections::HashMap;

use serde_json::{json, Value};

use engine::ids::fold_case;
use engine::model::{ServerGroup, ServerOp, ServerState, ServerUser};

use super::client::ScimClient;
use super::mapping::{
    add_members, group_from_resource, group_link, group_resource, remove_member, replace,
    user_from_resource, user_patch, user_resource,
};
use super::{ScimDirectory, WriteError, Written};

/// A record to create: its resource, and how to find it again (the filter and the name).
pub(super) struct Creation {
    pub(super) kind: &'static str,
    pub(super) body: Value,
    pub(super) filter: &'static str,
    pub(super) name: String,
    /// A group's members, by SCIM id.
    members: Vec<String>,
}

impl Creation {
    pub(super) fn key(&self) -> (&str, &str) {
        (self.filter, &self.name)
    }
}

/// A resource's SCIM id and the version last seen.
#[derive(Debug, Clone)]
pub(super) struct Held {
    id: String,
    version: Option<String>,
}

/// A group's SCIM id, version, and the SCIM ids of its user members.
#[derive(Debug, Clone)]
pub(super) struct HeldGroup {
    held: Held,
    members: Vec<String>,
}

/// What the run knows of the service as it writes: records by login and name (as they
/// compare), kept up to date with every write.
pub(super) struct Ids {
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

impl Ids {
    /// Makes `op` on the service; `state` is the server as it stands before `op`.
    pub(super) async fn write(
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
                            ops.push(add_members(&added));
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
    pub(super) fn creation(&self, state: &ServerState, op: &ServerOp) -> Option<Creation> {
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
                        body: group_resource(group, &members),
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
    pub(super) fn created(&mut self, new: Creation, written: Written) {
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
