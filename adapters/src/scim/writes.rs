//! Each server op as SCIM requests, in the dialect every service built for Entra takes (a
//! group created without members, which a `PATCH` adds; a member removed by the RFC's filter
//! or Entra's value list, whichever the service takes; a `PUT` where a `PATCH` is answered
//! 501), on what the run knows of the service ([`Ids`]): written, checked against what the
//! service then holds, and kept up to date with every write.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use engine::ids::fold_case;
use engine::model::{ServerGroup, ServerOp, ServerState, ServerUser};
use engine::SmolStr;

use super::client::{RemovalForm, ScimClient};
use super::mapping::{
    add_members, differing, group_from_resource, group_link, group_resource, remove_member,
    remove_members_listed, replace, user_from_resource, user_link, user_patch, user_resource,
    version_of, without,
};
use super::{ScimDirectory, WriteError, Written};

/// A record to create: its resource, and how to find it again (the filter and the name).
pub(super) struct Creation {
    pub(super) kind: &'static str,
    pub(super) body: Value,
    pub(super) filter: &'static str,
    pub(super) name: String,
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
    /// The optional user attributes the service does not keep: neither sent nor compared.
    pub(super) unkept: Vec<String>,
    /// Those a write's answer showed it did not keep, newly seen this run: added to `unkept`.
    pub(super) learned: Vec<String>,
    /// What the last write's answer did not keep, for its entry's detail.
    pub(super) dropped: Vec<&'static str>,
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
            unkept: Vec::new(),
            learned: Vec::new(),
            dropped: Vec::new(),
        }
    }
}

impl Ids {
    /// Makes `op` on the service; `state` is the server as it stands before `op`. Each write
    /// is checked against what the service then holds ([`Ids::check_user`],
    /// [`Ids::check_group`]).
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
                    let ops = user_patch(old, user, &self.unkept);
                    let held = self.users[&key].clone();
                    let changed = (
                        Holds::User(Box::new(old.clone())),
                        Holds::User(Box::new((**user).clone())),
                    );
                    let whole = without(user_resource(user), &self.unkept);
                    let answer = match ops.is_empty() {
                        true => None,
                        false => {
                            self.patch_or_put(client, "Users", &held, changed, ops, &whole)
                                .await?
                        }
                    };
                    let version = self.check_user(client, &held, answer, user).await?;
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
                    let answer = written.resource.clone();
                    let held = self.created(new, written);
                    self.check_user(client, &held, answer, user).await?;
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
                let whole = without(user_resource(&now), &self.unkept);
                let changed = (
                    Holds::User(Box::new(old.clone())),
                    Holds::User(Box::new(now.clone())),
                );
                let answer = self
                    .patch_or_put(client, "Users", &held, changed, ops, &whole)
                    .await?;
                let version = self.check_user(client, &held, answer, &now).await?;
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
                    let Some(old) = state.group(&group) else {
                        continue;
                    };
                    let ids = std::slice::from_ref(&held.id);
                    self.remove_members(client, &group, old, ids).await?;
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
                            (Some(v), Some(old)) => Holds::User(Box::new(old.clone())).is(
                                v,
                                &HashMap::new(),
                                &self.unkept,
                            ),
                            _ => false,
                        };
                        if !same {
                            return Err(WriteError::Stale);
                        }
                        let version = version_of(now.as_ref());
                        match client.delete("Users", &held.id, version.as_deref()).await {
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
                        // Under its new name from here on.
                        self.groups.remove(&key);
                        let key = fold_case(&group.name);
                        self.groups.insert(key.clone(), held.clone());
                        if old.name != group.name || group_link(old) != group_link(group) {
                            let ops = vec![replace(
                                json!({"displayName": group.name, "externalId": group_link(group)}),
                            )];
                            let changed = (
                                Holds::group(old, &held.members),
                                Holds::group(group, &held.members),
                            );
                            let whole = group_resource(group, &held.members);
                            let answer = self
                                .patch_or_put(client, "Groups", &held.held, changed, ops, &whole)
                                .await?;
                            self.groups.get_mut(&key).expect("held").held.version =
                                version_of(answer.as_ref());
                        }
                        let renamed =
                            old.name != group.name || group_link(old) != group_link(group);
                        self.set_members(client, &key, group, &wanted, renamed)
                            .await?;
                    }
                    _ => {
                        let new = self.creation(state, op).ok_or(WriteError::Gone)?;
                        let written = client.create(new.kind, &new.body, new.key()).await?;
                        self.created(new, written);
                        self.set_members(client, &fold_case(&group.name), group, &wanted, true)
                            .await?;
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
                let whole = group_resource(&now, &held.members);
                let answer = self
                    .patch_or_put(client, "Groups", &held.held, changed, ops, &whole)
                    .await?;
                self.groups.get_mut(&key).expect("held").held.version = version_of(answer.as_ref());
                self.check_group(client, &key, &Holds::group(&now, &held.members))
                    .await?;
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

    /// Makes the members of the group held under `key` (as named and linked in `group`) the
    /// users `wanted`, as Entra does: added with one `PATCH`, removed with another; then
    /// checked against what the service holds — also when no member changes, if `written`
    /// (the group was just made, renamed or relinked).
    pub(super) async fn set_members(
        &mut self,
        client: &ScimClient,
        key: &str,
        group: &ServerGroup,
        wanted: &[String],
        written: bool,
    ) -> std::result::Result<(), WriteError> {
        let held = self.groups[key].clone();
        // Looked up in sets: a group can list a whole directory.
        let (holds, wants): (HashSet<&String>, HashSet<&String>) =
            (held.members.iter().collect(), wanted.iter().collect());
        let added: Vec<String> = wanted
            .iter()
            .filter(|id| !holds.contains(id))
            .cloned()
            .collect();
        let removed: Vec<String> = held
            .members
            .iter()
            .filter(|id| !wants.contains(id))
            .cloned()
            .collect();
        if added.is_empty() && removed.is_empty() {
            return match written {
                true => {
                    self.check_group(client, key, &Holds::group(group, wanted))
                        .await
                }
                false => Ok(()),
            };
        }
        if !added.is_empty() {
            let mut after = held.members.clone();
            after.extend(added.iter().cloned());
            let changed = (
                Holds::group(group, &held.members),
                Holds::group(group, &after),
            );
            let answer = self
                .patch_fresh(
                    client,
                    "Groups",
                    &held.held,
                    changed,
                    vec![add_members(&added)],
                )
                .await?;
            let entry = self.groups.get_mut(key).expect("held");
            entry.held.version = version_of(answer.as_ref());
            entry.members = after;
        }
        if !removed.is_empty() {
            self.remove_members(client, key, group, &removed).await?;
        } else {
            self.check_group(client, key, &Holds::group(group, wanted))
                .await?;
        }
        Ok(())
    }

    /// Takes `ids` out of the group held under `key` (`group` as the run read it), in the
    /// form the service takes — the RFC's filter first, Entra's value list where that is
    /// answered 501 or 400 — then reads the group back: a service that removed more than
    /// asked (a strict service reading a form as "remove all") gets the others added back,
    /// and the entry fails, saying so.
    async fn remove_members(
        &mut self,
        client: &ScimClient,
        key: &str,
        group: &ServerGroup,
        ids: &[String],
    ) -> std::result::Result<(), WriteError> {
        let held = self.groups[key].clone();
        let gone: HashSet<&String> = ids.iter().collect();
        let after: Vec<String> = held
            .members
            .iter()
            .filter(|m| !gone.contains(m))
            .cloned()
            .collect();
        let changed = || {
            (
                Holds::group(group, &held.members),
                Holds::group(group, &after),
            )
        };
        let filtered = ids.iter().map(|id| remove_member(id)).collect();
        let listed = vec![remove_members_listed(ids)];
        let answer = match client.removal_form() {
            Some(RemovalForm::List) => {
                self.patch_fresh(client, "Groups", &held.held, changed(), listed)
                    .await?
            }
            form => match self
                .patch_fresh(client, "Groups", &held.held, changed(), filtered)
                .await
            {
                Ok(answer) => {
                    client.removal_took(RemovalForm::Filter);
                    answer
                }
                Err(WriteError::NotImplemented(_) | WriteError::Refused { status: 400, .. })
                    if form.is_none() =>
                {
                    let answer = self
                        .patch_fresh(client, "Groups", &held.held, changed(), listed)
                        .await?;
                    client.removal_took(RemovalForm::List);
                    answer
                }
                Err(e) => return Err(e),
            },
        };
        let entry = self.groups.get_mut(key).expect("held");
        entry.held.version = version_of(answer.as_ref());
        entry.members = after.clone();
        self.check_group(client, key, &Holds::group(group, &after))
            .await
    }

    /// Reads the group held under `key` back and compares it with `meant`: its name, link and
    /// members. Members that should be there and are not are added back; any difference is
    /// the entry's failure. Keeps what the service holds.
    async fn check_group(
        &mut self,
        client: &ScimClient,
        key: &str,
        meant: &Holds,
    ) -> std::result::Result<(), WriteError> {
        let Holds::Group {
            name,
            link,
            members,
        } = meant
        else {
            unreachable!("a group is checked against a group");
        };
        let id = self.groups[key].held.id.clone();
        let now = client
            .get_resource("Groups", &id)
            .await
            .map_err(|e| WriteError::Unreachable(e.to_string()))?
            .ok_or(WriteError::Gone)?;
        let logins = self.logins();
        let read = group_from_resource(&now, &logins).map_err(WriteError::NotKept)?;
        let mut lost = Vec::new();
        if read.group.name != name {
            lost.push("its name (displayName)".to_owned());
        }
        if &group_link(&read.group) != link {
            lost.push("its link (externalId)".to_owned());
        }
        let (read_ids, wanted): (HashSet<&String>, HashSet<&String>) =
            (read.member_ids.iter().collect(), members.iter().collect());
        let missing: Vec<String> = members
            .iter()
            .filter(|m| !read_ids.contains(m))
            .cloned()
            .collect();
        let extra = read
            .member_ids
            .iter()
            .filter(|m| !wanted.contains(m))
            .count();
        let mut version = read.version.clone();
        let mut held_members = read.member_ids.clone();
        if !missing.is_empty() {
            lost.push(format!(
                "{} of its {} members",
                missing.len(),
                members.len()
            ));
            // Put back what a removal took too far, or what an add did not keep: once.
            if let Ok(answer) = client
                .patch(
                    "Groups",
                    &id,
                    version.as_deref(),
                    vec![add_members(&missing)],
                )
                .await
            {
                version = version_of(answer.as_ref()).or(version);
                held_members.extend(missing);
            }
        }
        if extra > 0 {
            lost.push(format!("the removal of {extra} members"));
        }
        let entry = self.groups.get_mut(key).expect("held");
        entry.held.version = version;
        entry.members = held_members;
        match lost.is_empty() {
            true => Ok(()),
            false => Err(WriteError::NotKept(lost.join(", "))),
        }
    }

    /// Compares what the service holds of a user after a write — the answer's resource, or
    /// the user read again — with `meant`: its login, account state and link must hold. The
    /// version it now carries.
    pub(super) async fn check_user(
        &mut self,
        client: &ScimClient,
        held: &Held,
        answer: Option<Value>,
        meant: &ServerUser,
    ) -> std::result::Result<Option<String>, WriteError> {
        let now = match answer.filter(|a| a.get("id").is_some()) {
            Some(a) => a,
            None => client
                .get_resource("Users", &held.id)
                .await
                .map_err(|e| WriteError::Unreachable(e.to_string()))?
                .ok_or(WriteError::Gone)?,
        };
        let read = user_from_resource(&now).map_err(WriteError::NotKept)?;
        let mut lost = Vec::new();
        if fold_case(&read.user.login) != fold_case(&meant.login) {
            lost.push("its login (userName)");
        }
        if now.get("active").and_then(Value::as_bool) != Some(meant.enabled) {
            lost.push("its account state (active)");
        }
        if user_link(&read.user) != user_link(meant) {
            lost.push("its link (externalId)");
        }
        if !lost.is_empty() {
            return Err(WriteError::NotKept(lost.join(", ")));
        }
        // The optional attributes it did not keep as written: said in the entry, and neither
        // written nor compared again (in this run, and — recorded — in the next).
        self.dropped = differing(meant, &read.user)
            .into_iter()
            .filter(|a| !self.unkept.iter().any(|u| u == a))
            .collect();
        for attribute in &self.dropped {
            tracing::debug!(attribute, "the SCIM service did not keep it");
            self.unkept.push((*attribute).to_owned());
            self.learned.push((*attribute).to_owned());
        }
        Ok(read.version.or_else(|| held.version.clone()))
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
                    body: without(user_resource(user), &self.unkept),
                    filter: "userName",
                    name: user.login.to_string(),
                })
            }
            ServerOp::PutGroup {
                previous_name,
                group,
            } => {
                let held = self.held_group(state, previous_name.as_deref(), &group.name);
                held.is_none().then(|| Creation {
                    kind: "Groups",
                    // Without members: they are added by a PATCH once it is made.
                    body: group_resource(group, &[] as &[&str]),
                    filter: "displayName",
                    name: group.name.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Keeps what the service made of `new` (a group without members, as created): its id
    /// and version.
    pub(super) fn created(&mut self, new: Creation, written: Written) -> Held {
        let held = Held {
            id: written.id,
            version: written.version,
        };
        match new.kind {
            "Users" => {
                self.users.insert(fold_case(&new.name), held.clone());
            }
            _ => {
                self.groups.insert(
                    fold_case(&new.name),
                    HeldGroup {
                        held: held.clone(),
                        members: Vec::new(),
                    },
                );
            }
        }
        held
    }

    /// The SCIM ids of `group`'s members the service holds.
    pub(super) fn member_ids(&self, group: &ServerGroup) -> Vec<String> {
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
    fn logins(&self) -> HashMap<String, SmolStr> {
        self.users
            .iter()
            .map(|(login, h)| (h.id.clone(), login.as_str().into()))
            .collect()
    }

    /// `PATCH`es a resource under the version the run read. Answered 412 (it changed since),
    /// the resource is read again: if it already holds what the patch makes (an earlier try
    /// the service made but whose answer was lost), that is done; if it still holds what the
    /// run read — nothing roster maps changed — the patch is sent again under its new version;
    /// else the entry fails. The resource as the service then shows it, when it does.
    async fn patch_fresh(
        &self,
        client: &ScimClient,
        kind: &str,
        held: &Held,
        (before, after): (Holds, Holds),
        ops: Vec<Value>,
    ) -> std::result::Result<Option<Value>, WriteError> {
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
                if after.is(&now, &logins, &self.unkept) {
                    Ok(Some(now))
                } else if before.is(&now, &logins, &self.unkept) {
                    let version = version_of(Some(&now));
                    client.patch(kind, &held.id, version.as_deref(), ops).await
                } else {
                    Err(WriteError::Stale)
                }
            }
            other => other,
        }
    }

    /// [`Ids::patch_fresh`], or — where the service answers that `PATCH` 501 — a `PUT` of
    /// the `whole` resource as it is meant to be.
    async fn patch_or_put(
        &self,
        client: &ScimClient,
        kind: &str,
        held: &Held,
        changed: (Holds, Holds),
        ops: Vec<Value>,
        whole: &Value,
    ) -> std::result::Result<Option<Value>, WriteError> {
        match self.patch_fresh(client, kind, held, changed, ops).await {
            Err(WriteError::NotImplemented(_)) => {
                client
                    .put(kind, &held.id, held.version.as_deref(), whole)
                    .await
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
            name: g.name.to_string(),
            link: group_link(g),
            members: members.to_vec(),
        }
    }

    /// Whether `resource` holds this; `logins` tells the directory's users by SCIM id; a
    /// user's attributes the service does not keep (`unkept`) are not compared.
    fn is(&self, resource: &Value, logins: &HashMap<String, SmolStr>, unkept: &[String]) -> bool {
        match self {
            // The patch between them covers `active` and the link (`externalId`) too.
            Holds::User(u) => user_from_resource(resource)
                .is_ok_and(|now| user_patch(&now.user, u, unkept).is_empty()),
            Holds::Group {
                name,
                link,
                members,
            } => group_from_resource(resource, logins).is_ok_and(|now| {
                let mut ids = now.member_ids;
                ids.sort();
                let mut want = members.clone();
                want.sort();
                now.group.name == name && &group_link(&now.group) == link && ids == want
            }),
        }
    }
}
