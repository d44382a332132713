//! The two sides roster reconciles: what Entra ID holds (a [`TenantSnapshot`]) and what the
//! Enterprise Server holds (a [`ServerState`]), plus the operations that change the server.
//!
//! These are engine types, not wire types: Graph's JSON is parsed into them by `adapters`.
//! They serialize (camelCase) into events and into the server state file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::{cmp_folded, fold_case, folds_to, ObjectId, TenantId};

/// Entra's `userType`: members of the tenant, or guests invited from elsewhere (`#EXT#` UPNs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UserType {
    Member,
    Guest,
}

impl UserType {
    pub fn label(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }
}

/// A user as read from Entra ID, with every attribute the decision rules use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraUser {
    pub id: ObjectId,
    pub display_name: Option<SmolStr>,
    pub user_principal_name: SmolStr,
    pub mail: Option<SmolStr>,
    pub given_name: Option<SmolStr>,
    pub surname: Option<SmolStr>,
    pub department: Option<SmolStr>,
    pub job_title: Option<SmolStr>,
    pub user_type: UserType,
    pub account_enabled: bool,
}

impl EntraUser {
    /// The user with a mail that repeats its UPN sharing the UPN's storage: what it holds is
    /// unchanged.
    pub fn shared(mut self) -> EntraUser {
        share(&self.user_principal_name, &mut self.mail);
        self
    }

    /// The name shown to admins: the display name, else the UPN.
    pub fn name(&self) -> &str {
        self.display_name
            .as_deref()
            .unwrap_or(&self.user_principal_name)
    }
}

/// The group types of the search view, in the order docs/decisions.md classifies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupType {
    #[serde(rename = "M365 Group")]
    M365,
    #[serde(rename = "Security Group")]
    Security,
    #[serde(rename = "Mail-enabled Security Group")]
    MailEnabledSecurity,
    #[serde(rename = "Distribution Group")]
    Distribution,
}

impl GroupType {
    /// Classifies a group from Graph's flags. `Unified` wins whatever `securityEnabled` says;
    /// a group that is neither mail- nor security-enabled (Entra does not create those, but a
    /// recording might hold one) is shown as a security group: it grants, it does not mail.
    pub fn classify(group_types: &[String], mail_enabled: bool, security_enabled: bool) -> Self {
        if group_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("Unified"))
        {
            GroupType::M365
        } else if security_enabled && mail_enabled {
            GroupType::MailEnabledSecurity
        } else if mail_enabled {
            GroupType::Distribution
        } else {
            GroupType::Security
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupType::M365 => "M365 Group",
            GroupType::Security => "Security Group",
            GroupType::MailEnabledSecurity => "Mail-enabled Security Group",
            GroupType::Distribution => "Distribution Group",
        }
    }
}

/// A group as read from Entra ID. `member_users` is its *transitive* user membership, resolved
/// from direct members and nested groups the same way for a fixture and for Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraGroup {
    pub id: ObjectId,
    pub display_name: Option<SmolStr>,
    pub description: Option<SmolStr>,
    pub mail: Option<SmolStr>,
    pub group_types: Vec<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub membership_rule: Option<SmolStr>,
    /// Every user in the group, nested groups resolved: what the import rules use.
    pub member_users: Vec<ObjectId>,
    /// The direct members, for a group that has groups or other objects (devices, service
    /// principals, contacts) among them (`None`: the direct members are `member_users`). What a
    /// change to the membership applies to, and what a recording writes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<DirectMembers>,
}

/// A group's direct members, as `/groups/{id}/members` lists them: users, groups, and the
/// other objects roster does not import (kept so that a recording is the tenant).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DirectMembers {
    pub users: Vec<ObjectId>,
    pub groups: Vec<ObjectId>,
    /// Members that are neither users nor groups (recorded since device members were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherMember>,
}

/// A direct member that is not a user or a group: a device, a service principal, a contact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OtherMember {
    /// Graph's `@odata.type`, e.g. `#microsoft.graph.device`.
    #[serde(rename = "type")]
    pub odata_type: String,
    pub id: ObjectId,
}

impl EntraGroup {
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(self.id.as_str())
    }

    pub fn group_type(&self) -> GroupType {
        GroupType::classify(&self.group_types, self.mail_enabled, self.security_enabled)
    }
}

/// A user or a group: the two kinds of entries an import handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
}

/// An object in Entra's recycle bin (`/directory/deletedItems`): users and M365 groups stay
/// there for 30 days; deleted security groups never do. `deleted_at` is absent when Graph did
/// not return `deletedDateTime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedItem {
    pub id: ObjectId,
    pub display_name: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Which listings were read to the end. A listing that was not can never be evidence that an
/// object is missing: a fault in Graph must never cause a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completeness {
    pub users: bool,
    pub groups: bool,
    pub deleted_items: bool,
}

impl Completeness {
    pub const COMPLETE: Completeness = Completeness {
        users: true,
        groups: true,
        deleted_items: true,
    };
}

/// SHA-256 over what is written into it: JSON hashed as it is serialized, never held whole.
#[derive(Default)]
pub(crate) struct HashWriter(pub(crate) sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything read from one tenant for one run, sorted by id, ids unique per collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSnapshot {
    pub tenant_id: TenantId,
    pub users: Vec<EntraUser>,
    pub groups: Vec<EntraGroup>,
    pub deleted_users: Vec<DeletedItem>,
    pub deleted_groups: Vec<DeletedItem>,
    pub completeness: Completeness,
}

/// A snapshot that breaks its invariants: the same object twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} id {id} appears more than once")]
pub struct DuplicateId {
    pub kind: &'static str,
    pub id: ObjectId,
}

impl TenantSnapshot {
    /// Sorts the collections and rejects duplicate ids; member lists are sorted and deduplicated.
    pub fn new(
        tenant_id: TenantId,
        mut users: Vec<EntraUser>,
        mut groups: Vec<EntraGroup>,
        mut deleted_users: Vec<DeletedItem>,
        mut deleted_groups: Vec<DeletedItem>,
        completeness: Completeness,
    ) -> Result<Self, DuplicateId> {
        sort_unique(&mut users, |u| &u.id, "user")?;
        sort_unique(&mut groups, |g| &g.id, "group")?;
        sort_unique(&mut deleted_users, |d| &d.id, "deleted user")?;
        sort_unique(&mut deleted_groups, |d| &d.id, "deleted group")?;
        // Directory object ids are unique across kinds: a user and a group never share one.
        if let Some(g) = groups
            .iter()
            .find(|g| users.binary_search_by(|u| u.id.cmp(&g.id)).is_ok())
        {
            return Err(DuplicateId {
                kind: "user and group",
                id: g.id.clone(),
            });
        }
        for g in &mut groups {
            g.member_users.sort();
            g.member_users.dedup();
            if let Some(n) = &mut g.nested {
                n.users.sort();
                n.users.dedup();
                n.groups.sort();
                n.groups.dedup();
                n.other.sort();
                n.other.dedup();
            }
        }
        Ok(TenantSnapshot {
            tenant_id,
            users,
            groups,
            deleted_users,
            deleted_groups,
            completeness,
        })
    }

    pub fn user(&self, id: &ObjectId) -> Option<&EntraUser> {
        self.users
            .binary_search_by(|u| u.id.cmp(id))
            .ok()
            .map(|i| &self.users[i])
    }

    pub fn group(&self, id: &ObjectId) -> Option<&EntraGroup> {
        self.groups
            .binary_search_by(|g| g.id.cmp(id))
            .ok()
            .map(|i| &self.groups[i])
    }

    /// SHA-256 over the snapshot's canonical JSON: two reads of the same tenant state, from a
    /// fixture or from Graph, have the same fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut w = HashWriter::default();
        serde_json::to_writer(
            &mut w,
            &(
                &self.tenant_id,
                &self.users,
                &self.groups,
                &self.deleted_users,
                &self.deleted_groups,
            ),
        )
        .expect("snapshots serialize");
        hex::encode(w.0.finalize())
    }

    pub fn deleted(&self, kind: Kind, id: &ObjectId) -> Option<&DeletedItem> {
        let list = match kind {
            Kind::User => &self.deleted_users,
            Kind::Group => &self.deleted_groups,
        };
        list.binary_search_by(|d| d.id.cmp(id))
            .ok()
            .map(|i| &list[i])
    }
}

fn sort_unique<T>(
    items: &mut [T],
    id: impl Fn(&T) -> &ObjectId,
    kind: &'static str,
) -> Result<(), DuplicateId> {
    items.sort_by(|a, b| id(a).cmp(id(b)));
    match items.windows(2).find(|w| id(&w[0]) == id(&w[1])) {
        Some(w) => Err(DuplicateId {
            kind,
            id: id(&w[0]).clone(),
        }),
        None => Ok(()),
    }
}

/// How a server user signs in. Entra users can only be created by an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    Entra,
    Local,
    Windows,
}

impl AuthType {
    pub fn label(self) -> &'static str {
        match self {
            AuthType::Entra => "Microsoft Entra ID",
            AuthType::Local => "local",
            AuthType::Windows => "Windows (Active Directory)",
        }
    }
}

/// The Entra attributes kept on an imported server user (the user's "Microsoft Entra ID" tab).
/// Informational: every attribute is optional (a server file written by another tool may
/// carry `"entra": {}`); the link to Entra is `entraId` + `tenantId`, never this. roster
/// writes them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EntraAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<SmolStr>,
    pub display_name: Option<SmolStr>,
    pub given_name: Option<SmolStr>,
    pub surname: Option<SmolStr>,
    pub mail: Option<SmolStr>,
    pub department: Option<SmolStr>,
    pub job_title: Option<SmolStr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
}

impl From<&EntraUser> for EntraAttributes {
    fn from(u: &EntraUser) -> Self {
        EntraAttributes {
            id: Some(u.id.clone()),
            user_principal_name: Some(u.user_principal_name.clone()),
            display_name: u.display_name.clone(),
            given_name: u.given_name.clone(),
            surname: u.surname.clone(),
            mail: u.mail.clone(),
            department: u.department.clone(),
            job_title: u.job_title.clone(),
            user_type: Some(u.user_type),
        }
    }
}

/// A user in the Enterprise Server's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerUser {
    pub login: SmolStr,
    #[serde(default)]
    pub display_name: Option<SmolStr>,
    #[serde(default)]
    pub email: Option<SmolStr>,
    #[serde(default)]
    pub department: Option<SmolStr>,
    pub auth_type: AuthType,
    #[serde(default)]
    pub entra_id: Option<ObjectId>,
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub entra: Option<EntraAttributes>,
    /// Set when an administrator disabled the user on the server (`roster server disable`):
    /// an import does not enable the account again when Entra ID has it enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_by: Option<DisabledBy>,
}

impl ServerUser {
    /// The user with its text that repeats its login (its email, the Entra UPN and mail it
    /// keeps) sharing the login's storage: what it holds is unchanged.
    pub fn shared(mut self) -> ServerUser {
        share(&self.login, &mut self.email);
        if let Some(e) = &mut self.entra {
            share(&self.login, &mut e.user_principal_name);
            share(&self.login, &mut e.mail);
        }
        self
    }

    /// The user without the optional attributes a server does not keep (`unkept`, named as
    /// the SCIM target names them: `displayName`, `name.givenName`, `name.familyName`,
    /// `emails`, `title`, `userType`, `department`): what such a server holds of it, and what
    /// a run against it writes and compares.
    pub fn without(mut self, unkept: &[String]) -> ServerUser {
        for attribute in unkept {
            let entra = self.entra.as_mut();
            match attribute.as_str() {
                "displayName" => {
                    self.display_name = None;
                    if let Some(e) = entra {
                        e.display_name = None;
                    }
                }
                "name.givenName" => {
                    if let Some(e) = entra {
                        e.given_name = None;
                    }
                }
                "name.familyName" => {
                    if let Some(e) = entra {
                        e.surname = None;
                    }
                }
                "emails" => {
                    self.email = None;
                    if let Some(e) = entra {
                        e.mail = None;
                    }
                }
                "title" => {
                    if let Some(e) = entra {
                        e.job_title = None;
                    }
                }
                "userType" => {
                    if let Some(e) = entra {
                        e.user_type = None;
                    }
                }
                "department" => {
                    self.department = None;
                    if let Some(e) = entra {
                        e.department = None;
                    }
                }
                _ => {}
            }
        }
        self
    }
}

/// Who disabled a server user, when it was not roster following Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DisabledBy {
    Administrator,
}

/// A group in the Enterprise Server's directory; `members` are logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerGroup {
    pub name: SmolStr,
    #[serde(default)]
    pub description: Option<SmolStr>,
    #[serde(rename = "type")]
    pub group_type: SmolStr,
    #[serde(default)]
    pub entra_id: Option<ObjectId>,
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub members: Vec<SmolStr>,
}

fn yes() -> bool {
    true
}

impl ServerUser {
    /// The Entra object this user was imported from, if it came from `tenant`.
    pub fn linked_to(&self, tenant: &TenantId) -> Option<&ObjectId> {
        match (&self.entra_id, &self.tenant_id) {
            (Some(id), Some(t)) if t == tenant => Some(id),
            _ => None,
        }
    }
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.login)
    }
}

impl ServerGroup {
    pub fn linked_to(&self, tenant: &TenantId) -> Option<&ObjectId> {
        match (&self.entra_id, &self.tenant_id) {
            (Some(id), Some(t)) if t == tenant => Some(id),
            _ => None,
        }
    }
}

/// Why a server state is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerStateError {
    #[error("users[{index}]: login is empty")]
    EmptyLogin { index: usize },
    #[error("groups[{index}]: name is empty")]
    EmptyName { index: usize },
    #[error("users[{index}]: login {login:?} is used twice (logins are case-insensitive)")]
    DuplicateLogin { index: usize, login: String },
    #[error("groups[{index}]: name {name:?} is used twice (names are case-insensitive)")]
    DuplicateName { index: usize, name: String },
    #[error("{what}[{index}]: entraId {id} is linked twice for the same tenant")]
    DuplicateLink {
        what: &'static str,
        index: usize,
        id: ObjectId,
    },
    #[error("{what}[{index}]: entraId is set but tenantId is missing; set both or neither")]
    HalfLinked { what: &'static str, index: usize },
    #[error("{what}[{index}]: \"{key}\" holds a control or invisible character; a login or group name is printable text")]
    Unprintable {
        what: &'static str,
        index: usize,
        /// Escaped: the key as it may be shown.
        key: String,
    },
}

/// The server's directory: users keyed by case-folded login, groups by case-folded name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerState {
    // Behind an `Arc`: a B-tree moves its values within a node on every insert, and these are
    // large; and the planner's working copy shares every record it does not change.
    users: BTreeMap<SmolStr, Arc<ServerUser>>,
    groups: BTreeMap<SmolStr, Arc<ServerGroup>>,
    /// Which groups list each member: what a rename or a removal reads, so that it touches the
    /// groups of that user rather than reading every group's members.
    memberships: Memberships,
}

/// The groups listing each member, by the member's case-folded login, each list in no order.
/// A cache of what `groups` says: built the first time a rename or a removal needs it (a run
/// that renames nobody never pays for it), then kept up to date by every change to a group;
/// never compared, and not cloned (a copy builds its own when it needs one).
#[derive(Default)]
struct Memberships(Option<HashMap<SmolStr, Vec<SmolStr>>>);

impl Memberships {
    /// Every membership of `groups`.
    fn of(groups: &BTreeMap<SmolStr, Arc<ServerGroup>>) -> HashMap<SmolStr, Vec<SmolStr>> {
        let mut all = Memberships(Some(HashMap::new()));
        for (key, g) in groups {
            all.add(key, g);
        }
        all.0.unwrap_or_default()
    }

    /// `group`, under `key`, now lists its members (if the index is built).
    fn add(&mut self, key: &SmolStr, group: &ServerGroup) {
        let Some(index) = &mut self.0 else { return };
        for m in &group.members {
            let of = index.entry(key_of(m)).or_default();
            if !of.contains(key) {
                of.push(key.clone());
            }
        }
    }

    /// `group`, under `key`, no longer lists its members (if the index is built).
    fn remove(&mut self, key: &str, group: &ServerGroup) {
        let Some(index) = &mut self.0 else { return };
        for m in &group.members {
            let member = fold_case(m);
            if let Some(of) = index.get_mut(member.as_str()) {
                of.retain(|k| k != key);
                if of.is_empty() {
                    index.remove(member.as_str());
                }
            }
        }
    }
}

impl Clone for Memberships {
    fn clone(&self) -> Self {
        Memberships(None)
    }
}

impl PartialEq for Memberships {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Memberships {}

impl std::fmt::Debug for Memberships {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memberships")
    }
}

/// What a server state checks of its users and of its groups alike.
trait Record {
    /// `users` or `groups`, as the server file names the list.
    const LIST: &'static str;
    /// The login or the name, which must be unique once case-folded.
    fn key(&self) -> &SmolStr;
    fn link(&self) -> (Option<&ObjectId>, Option<&TenantId>);
    fn empty(index: usize) -> ServerStateError;
    fn duplicate(index: usize, key: String) -> ServerStateError;
}

impl Record for ServerUser {
    const LIST: &'static str = "users";
    fn key(&self) -> &SmolStr {
        &self.login
    }
    fn link(&self) -> (Option<&ObjectId>, Option<&TenantId>) {
        (self.entra_id.as_ref(), self.tenant_id.as_ref())
    }
    fn empty(index: usize) -> ServerStateError {
        ServerStateError::EmptyLogin { index }
    }
    fn duplicate(index: usize, login: String) -> ServerStateError {
        ServerStateError::DuplicateLogin { index, login }
    }
}

impl Record for ServerGroup {
    const LIST: &'static str = "groups";
    fn key(&self) -> &SmolStr {
        &self.name
    }
    fn link(&self) -> (Option<&ObjectId>, Option<&TenantId>) {
        (self.entra_id.as_ref(), self.tenant_id.as_ref())
    }
    fn empty(index: usize) -> ServerStateError {
        ServerStateError::EmptyName { index }
    }
    fn duplicate(index: usize, name: String) -> ServerStateError {
        ServerStateError::DuplicateName { index, name }
    }
}

/// `text` case-folded, as a map key: `text` itself (shared, not copied) when it folds to
/// itself, as most logins and names do.
fn key_of(text: &SmolStr) -> SmolStr {
    let folded = fold_case(text);
    if folded == text.as_str() {
        text.clone()
    } else {
        folded.into()
    }
}

/// `copy` made to share `text`'s storage when it holds the same text (a long string read twice
/// is kept once).
fn share(text: &SmolStr, copy: &mut Option<SmolStr>) {
    if let Some(c) = copy {
        if c.is_heap_allocated() && c == text {
            *c = text.clone();
        }
    }
}

/// Records by case-folded key, each checked: a key, a link set whole or not at all, no link
/// or key twice.
fn index_records<T: Record>(
    records: impl IntoIterator<Item = T>,
) -> Result<BTreeMap<SmolStr, Arc<T>>, ServerStateError> {
    let mut by_key = BTreeMap::new();
    // Hashed, not ordered: a directory of a million records checks a million links.
    let mut links = rustc_hash::FxHashSet::default();
    for (index, r) in records.into_iter().enumerate() {
        if r.key().trim().is_empty() {
            return Err(T::empty(index));
        }
        if r.key().chars().any(crate::text::needs_escape) {
            return Err(ServerStateError::Unprintable {
                what: T::LIST,
                index,
                key: crate::text::printable(r.key()).chars().take(200).collect(),
            });
        }
        match r.link() {
            (Some(_), None) => {
                return Err(ServerStateError::HalfLinked {
                    what: T::LIST,
                    index,
                })
            }
            (Some(id), Some(t)) if !links.insert((t.clone(), id.clone())) => {
                return Err(ServerStateError::DuplicateLink {
                    what: T::LIST,
                    index,
                    id: id.clone(),
                })
            }
            _ => {}
        }
        match by_key.entry(key_of(r.key())) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(Arc::new(r));
            }
            std::collections::btree_map::Entry::Occupied(_) => {
                return Err(T::duplicate(index, r.key().to_string()));
            }
        }
    }
    Ok(by_key)
}

/// The server state file format (`server dump` / `server load` / `--server-file`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerStateFile {
    #[serde(default)]
    users: Vec<ServerUser>,
    #[serde(default)]
    groups: Vec<ServerGroup>,
}

impl ServerState {
    /// SHA-256 of the directory in canonical form (users, then groups, each in key order, as
    /// JSON): equal directories, equal digests. What the log says the embedded server holds
    /// after an administrator changed it, and what a restore checks.
    pub fn digest(&self) -> String {
        let mut w = HashWriter::default();
        sha2::Digest::update(&mut w.0, b"roster server 1\n");
        serde_json::to_writer(&mut w, self).expect("the server serializes");
        hex::encode(sha2::Digest::finalize(w.0))
    }
}

impl Serialize for ServerState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ServerStateFile {
            users: self.users.values().map(|u| (**u).clone()).collect(),
            groups: self.groups.values().map(|g| (**g).clone()).collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ServerState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = ServerStateFile::deserialize(d)?;
        ServerState::from_parts(file.users, file.groups).map_err(serde::de::Error::custom)
    }
}

/// A change to the server, as the planner decides it and a target applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ServerOp {
    /// Creates or replaces a user; `previousLogin` is set when the login changes (a UPN rename),
    /// and group memberships follow the rename.
    #[serde(rename_all = "camelCase")]
    PutUser {
        previous_login: Option<String>,
        /// Shared with the planner's working state and the records written: a large plan
        /// holds one copy of each user it puts.
        user: Arc<ServerUser>,
    },
    SetUserEnabled {
        login: String,
        enabled: bool,
    },
    /// Removes a user and its group memberships.
    RemoveUser {
        login: String,
    },
    #[serde(rename_all = "camelCase")]
    PutGroup {
        previous_name: Option<String>,
        /// Shared like a put user's: with the planner's working state and the records written
        /// (and it keeps the op small: an entry holds one op inline).
        group: Arc<ServerGroup>,
    },
    SetGroupEnabled {
        name: String,
        enabled: bool,
    },
    RemoveGroup {
        name: String,
    },
}

/// One record to write in a store holding a server: the effect of a [`ServerOp`] spelled out
/// key by key, so a store can commit it in the same atomic batch as the event recording it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyWrite {
    PutUser(Arc<ServerUser>),
    DeleteUser { login: String },
    PutGroup(Arc<ServerGroup>),
    DeleteGroup { name: String },
}

impl ServerState {
    pub fn from_parts(
        users: impl IntoIterator<Item = ServerUser>,
        groups: impl IntoIterator<Item = ServerGroup>,
    ) -> Result<Self, ServerStateError> {
        let users = index_records(users.into_iter().map(ServerUser::shared))?;
        // A member is a user's login: kept once, the user's, where it is written the same (found
        // by the member itself where the login is its own key: no folding for most of them).
        // Looked up by hash: millions of members against a B-tree of a million logins was
        // most of a large directory's loading.
        let logins: rustc_hash::FxHashMap<&str, &SmolStr> = users
            .iter()
            .map(|(key, u)| (key.as_str(), &u.login))
            .collect();
        let member = |m: SmolStr| {
            let login = logins
                .get(m.as_str())
                .or_else(|| logins.get(fold_case(&m).as_str()));
            match login {
                Some(&login) if *login == m => login.clone(),
                _ => m,
            }
        };
        let groups = groups.into_iter().map(|mut g| {
            g.members = std::mem::take(&mut g.members)
                .into_iter()
                .map(member)
                .collect();
            g
        });
        let groups = index_records(groups)?;
        drop(logins);
        Ok(ServerState {
            groups,
            users,
            memberships: Memberships::default(),
        })
    }

    pub fn users(&self) -> impl ExactSizeIterator<Item = &ServerUser> + '_ {
        self.users.values().map(|u| &**u)
    }

    pub fn groups(&self) -> impl ExactSizeIterator<Item = &ServerGroup> + '_ {
        self.groups.values().map(|g| &**g)
    }

    /// Each user of `self` by case-folded login, and whether `before` holds the very same
    /// record under that key: an op replaces every record it changes, so a record shared with
    /// `before` (a clone of which `self` was made from) is unchanged since.
    pub fn users_against<'a>(
        &'a self,
        before: &'a ServerState,
    ) -> impl Iterator<Item = (&'a str, &'a ServerUser, bool)> + 'a {
        self.users.iter().map(|(k, u)| {
            let same = before.users.get(k).is_some_and(|b| Arc::ptr_eq(b, u));
            (k.as_str(), &**u, same)
        })
    }

    /// The groups of `self` against `before`, as [`ServerState::users_against`].
    pub fn groups_against<'a>(
        &'a self,
        before: &'a ServerState,
    ) -> impl Iterator<Item = (&'a str, &'a ServerGroup, bool)> + 'a {
        self.groups.iter().map(|(k, g)| {
            let same = before.groups.get(k).is_some_and(|b| Arc::ptr_eq(b, g));
            (k.as_str(), &**g, same)
        })
    }

    pub fn user(&self, login: &str) -> Option<&ServerUser> {
        self.users.get(fold_case(login).as_str()).map(|u| &**u)
    }

    pub fn group(&self, name: &str) -> Option<&ServerGroup> {
        self.groups.get(fold_case(name).as_str()).map(|g| &**g)
    }

    /// Puts a user record as it is, replacing the one with its case-folded login: rebuilding a
    /// recorded state, not a change an import makes (see [`ServerState::apply`]).
    pub fn put_user_record(&mut self, user: ServerUser) {
        self.users.insert(key_of(&user.login), Arc::new(user));
    }

    /// Puts a group record as it is (see [`ServerState::put_user_record`]).
    pub fn put_group_record(&mut self, group: ServerGroup) {
        self.put_group(key_of(&group.name), Arc::new(group));
    }

    /// Removes the user record with this login, and nothing else.
    pub fn remove_user_record(&mut self, login: &str) {
        self.users.remove(fold_case(login).as_str());
    }

    /// Removes the group record with this name, and nothing else.
    pub fn remove_group_record(&mut self, name: &str) {
        self.remove_group(fold_case(name).as_str());
    }

    /// Puts `group` under `key`, its memberships with it.
    fn put_group(&mut self, key: SmolStr, group: Arc<ServerGroup>) {
        if let Some(before) = self.groups.get(key.as_str()) {
            self.memberships.remove(&key, before);
        }
        self.memberships.add(&key, &group);
        self.groups.insert(key, group);
    }

    /// Removes the group under `key`, its memberships with it.
    fn remove_group(&mut self, key: &str) -> Option<Arc<ServerGroup>> {
        let group = self.groups.remove(key)?;
        self.memberships.remove(key, &group);
        Some(group)
    }

    /// Applies `op` and returns the records it wrote. Ops on objects that are not there
    /// change nothing: applying is total, a store never fails halfway through a plan.
    pub fn apply(&mut self, op: &ServerOp) -> Vec<KeyWrite> {
        let mut writes = Vec::new();
        self.apply_into(op, Some(&mut writes));
        writes
    }

    /// Applies `op` without listing the records it writes (the planner's working copy).
    pub fn apply_quietly(&mut self, op: &ServerOp) {
        self.apply_into(op, None);
    }

    fn apply_into(&mut self, op: &ServerOp, out: Option<&mut Vec<KeyWrite>>) {
        let mut scratch = Vec::new();
        let quiet = out.is_none();
        let writes = out.unwrap_or(&mut scratch);
        match op {
            ServerOp::PutUser {
                previous_login,
                user,
            } => {
                let new_key = key_of(&user.login);
                if let Some(old) = previous_login {
                    let old_key = fold_case(old);
                    if old_key != new_key && self.users.remove(old_key.as_str()).is_some() && !quiet
                    {
                        writes.push(KeyWrite::DeleteUser { login: old.clone() });
                    }
                    if old_key != new_key || old != user.login {
                        self.rename_member(&old_key, Some(&user.login), writes);
                    }
                }
                self.users.insert(new_key, Arc::clone(user));
                if !quiet {
                    writes.push(KeyWrite::PutUser(Arc::clone(user)));
                }
            }
            ServerOp::SetUserEnabled { login, enabled } => {
                if let Some(u) = self.users.get_mut(fold_case(login).as_str()) {
                    Arc::make_mut(u).enabled = *enabled;
                    if !quiet {
                        writes.push(KeyWrite::PutUser(Arc::clone(u)));
                    }
                }
            }
            ServerOp::RemoveUser { login } => {
                let key = fold_case(login);
                if let Some(u) = self.users.remove(key.as_str()) {
                    if !quiet {
                        writes.push(KeyWrite::DeleteUser {
                            login: u.login.to_string(),
                        });
                    }
                    self.rename_member(&key, None, writes);
                }
            }
            ServerOp::PutGroup {
                previous_name,
                group,
            } => {
                let new_key = key_of(&group.name);
                if let Some(old) = previous_name {
                    let old_key = fold_case(old);
                    if old_key != new_key && self.remove_group(old_key.as_str()).is_some() && !quiet
                    {
                        writes.push(KeyWrite::DeleteGroup { name: old.clone() });
                    }
                }
                self.put_group(new_key, Arc::clone(group));
                if !quiet {
                    writes.push(KeyWrite::PutGroup(Arc::clone(group)));
                }
            }
            ServerOp::SetGroupEnabled { name, enabled } => {
                if let Some(g) = self.groups.get_mut(fold_case(name).as_str()) {
                    Arc::make_mut(g).enabled = *enabled;
                    if !quiet {
                        writes.push(KeyWrite::PutGroup(Arc::clone(g)));
                    }
                }
            }
            ServerOp::RemoveGroup { name } => {
                if let Some(g) = self.remove_group(fold_case(name).as_str()) {
                    if !quiet {
                        writes.push(KeyWrite::DeleteGroup {
                            name: g.name.to_string(),
                        });
                    }
                }
            }
        }
    }

    /// Replaces (or, with `None`, drops) a login in every group that lists it: the groups the
    /// index names, in key order (the order a walk through every group met them).
    fn rename_member(&mut self, old_key: &str, new: Option<&SmolStr>, writes: &mut Vec<KeyWrite>) {
        let groups = &mut self.groups;
        let index = self
            .memberships
            .0
            .get_or_insert_with(|| Memberships::of(groups));
        let Some(mut listing) = index.remove(old_key) else {
            return;
        };
        listing.sort_unstable();
        let new_key = new.map(key_of);
        for key in listing {
            let Some(g) = groups.get_mut(key.as_str()) else {
                continue;
            };
            // Sorted and told apart by folded login, compared without folding what is ASCII
            // (nearly every login); a list already sorted (as a rename leaves it) takes the new
            // login in its place.
            let mut members: Vec<SmolStr> = g
                .members
                .iter()
                .filter(|m| !folds_to(m, old_key))
                .cloned()
                .collect();
            let sorted = members.windows(2).all(|w| cmp_folded(&w[0], &w[1]).is_lt());
            match (sorted, new) {
                (true, Some(new)) => {
                    if let Err(at) = members.binary_search_by(|m| cmp_folded(m, new)) {
                        members.insert(at, new.clone());
                    }
                }
                (true, None) => {}
                (false, new) => {
                    members.extend(new.cloned());
                    members.sort_by(|a, b| cmp_folded(a, b));
                    members.dedup_by(|later, kept| cmp_folded(later, kept).is_eq());
                }
            }
            Arc::make_mut(g).members = members;
            writes.push(KeyWrite::PutGroup(Arc::clone(g)));
            if let Some(new_key) = &new_key {
                let of = index.entry(new_key.clone()).or_default();
                if !of.contains(&key) {
                    of.push(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(login: &str) -> ServerUser {
        ServerUser {
            login: login.into(),
            display_name: None,
            email: None,
            department: None,
            auth_type: AuthType::Local,
            entra_id: None,
            tenant_id: None,
            enabled: true,
            entra: None,
            disabled_by: None,
        }
    }

    fn group(name: &str, members: &[&str]) -> ServerGroup {
        ServerGroup {
            name: name.into(),
            description: None,
            group_type: "Security Group".into(),
            entra_id: None,
            tenant_id: None,
            enabled: true,
            members: members.iter().map(|&m| m.into()).collect(),
        }
    }

    /// Whether two texts are one string in memory.
    fn one(a: &str, b: &str) -> bool {
        std::ptr::eq(a.as_ptr(), b.as_ptr())
    }

    #[test]
    fn a_loaded_directory_keeps_a_repeated_login_once_and_each_text_as_written() {
        let login = "a.rather.long.login.name@contoso.example";
        let mut user = local(login);
        user.email = Some(login.into());
        user.entra = Some(EntraAttributes {
            user_principal_name: Some(login.into()),
            mail: Some(login.into()),
            ..EntraAttributes::default()
        });
        let shouted = login.to_uppercase();
        let state = ServerState::from_parts(
            vec![user],
            vec![group("Team", &[login]), group("Loud", &[shouted.as_str()])],
        )
        .unwrap();
        let u = state.user(login).unwrap();
        let entra = u.entra.as_ref().unwrap();
        for text in [
            u.email.as_deref().unwrap(),
            entra.user_principal_name.as_deref().unwrap(),
            entra.mail.as_deref().unwrap(),
            state.group("team").unwrap().members[0].as_str(),
        ] {
            assert_eq!(text, login);
            assert!(one(text, &u.login), "{text} is a copy of the login");
        }
        // The key a record is found by is its own text where it folds to itself.
        let (key, _, _) = state.users_against(&state).next().unwrap();
        assert!(one(key, &u.login));
        // A member written in another case stays as written: a login compares folded, but
        // what the directory holds is not rewritten.
        let loud = &state.group("loud").unwrap().members[0];
        assert_eq!(loud.as_str(), shouted);
        assert!(!one(loud, &u.login));
        // The same directory, whatever the sharing.
        assert_eq!(
            state,
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap()
        );
    }

    #[test]
    fn group_types_follow_design_order() {
        let unified = vec!["Unified".to_string()];
        assert_eq!(GroupType::classify(&unified, true, true), GroupType::M365);
        assert_eq!(GroupType::classify(&[], false, true), GroupType::Security);
        assert_eq!(
            GroupType::classify(&[], true, true),
            GroupType::MailEnabledSecurity
        );
        assert_eq!(
            GroupType::classify(&[], true, false),
            GroupType::Distribution
        );
        let dynamic = vec!["DynamicMembership".to_string()];
        assert_eq!(
            GroupType::classify(&dynamic, false, true),
            GroupType::Security
        );
    }

    #[test]
    fn logins_are_unique_without_regard_to_case() {
        let err = ServerState::from_parts(vec![local("Ann@x.com"), local("ann@X.com")], vec![]);
        assert!(matches!(
            err,
            Err(ServerStateError::DuplicateLogin { index: 1, .. })
        ));
    }

    #[test]
    fn renaming_a_user_renames_memberships() {
        let mut s = ServerState::from_parts(
            vec![local("old@x.com"), local("b@x.com")],
            vec![
                group("G", &["b@x.com", "old@x.com"]),
                group("H", &["b@x.com"]),
            ],
        )
        .unwrap();
        let writes = s.apply(&ServerOp::PutUser {
            previous_login: Some("old@x.com".into()),
            user: Arc::new(local("new@x.com")),
        });
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(s.user("old@x.com").is_none());
        assert_eq!(s.group("g").unwrap().members, vec!["b@x.com", "new@x.com"]);
        assert_eq!(s.group("H").unwrap().members, vec!["b@x.com"]);
    }

    #[test]
    fn removing_a_user_drops_memberships() {
        let mut s = ServerState::from_parts(
            vec![local("a@x.com"), local("b@x.com")],
            vec![group("G", &["a@x.com", "b@x.com"])],
        )
        .unwrap();
        s.apply(&ServerOp::RemoveUser {
            login: "A@X.COM".into(),
        });
        assert_eq!(s.group("G").unwrap().members, vec!["b@x.com"]);
        assert!(s
            .apply(&ServerOp::RemoveUser {
                login: "nobody".into()
            })
            .is_empty());
    }

    /// The index as a scan of every group says it should be: each list in key order.
    fn sorted(index: &HashMap<SmolStr, Vec<SmolStr>>) -> BTreeMap<SmolStr, Vec<SmolStr>> {
        index
            .iter()
            .map(|(m, of)| {
                let mut of = of.clone();
                of.sort();
                (m.clone(), of)
            })
            .collect()
    }

    fn op() -> impl proptest::strategy::Strategy<Value = ServerOp> {
        use proptest::prelude::*;
        let login = || prop::sample::select(vec!["a", "A", "b", "c", " c", "d"]);
        let name = || prop::sample::select(vec!["G", "g", "H", "K"]);
        prop_oneof![
            (proptest::option::of(login()), login()).prop_map(|(previous, login)| {
                ServerOp::PutUser {
                    previous_login: previous.map(str::to_owned),
                    user: Arc::new(local(login)),
                }
            }),
            login().prop_map(|l| ServerOp::RemoveUser { login: l.into() }),
            (
                proptest::option::of(name()),
                name(),
                prop::collection::vec(login(), 0..4)
            )
                .prop_map(|(previous, name, members)| ServerOp::PutGroup {
                    previous_name: previous.map(str::to_owned),
                    group: Arc::new(group(name, &members)),
                }),
            name().prop_map(|n| ServerOp::RemoveGroup { name: n.into() }),
            name().prop_map(|n| ServerOp::SetGroupEnabled {
                name: n.into(),
                enabled: false
            }),
        ]
    }

    proptest::proptest! {
        /// A rename or a removal finds the groups listing the user in the index, not by reading
        /// every group: after any changes the index is what a scan of the groups says, and a
        /// rename writes the groups a scan finds, in key order.
        #[test]
        fn the_memberships_index_follows_every_change(
            ops in proptest::collection::vec(op(), 1..40),
            built_first in proptest::bool::ANY,
        ) {
            let mut s = ServerState::from_parts(
                vec![local("a"), local("b"), local("c")],
                vec![group("G", &["a", "b"]), group("H", &["A", "c", "b"])],
            )
            .unwrap();
            if built_first {
                s.memberships.0 = Some(Memberships::of(&s.groups));
            }
            for op in &ops {
                let renamed = match op {
                    ServerOp::PutUser { previous_login: Some(old), user } if *old != user.login => {
                        Some(fold_case(old))
                    }
                    ServerOp::RemoveUser { login } if s.user(login).is_some() => Some(fold_case(login)),
                    _ => None,
                };
                let new = match op {
                    ServerOp::PutUser { user, .. } => Some(user.login.clone()),
                    _ => None,
                };
                // What each group listing the user lists after it, made as it was before the
                // index: every member folded, sorted and deduplicated by its fold.
                let expected: Vec<(SmolStr, Vec<SmolStr>)> = renamed
                    .map(|old| {
                        s.groups
                            .iter()
                            .filter(|(_, g)| g.members.iter().any(|m| fold_case(m) == old))
                            .map(|(k, g)| {
                                let mut members: Vec<SmolStr> = g
                                    .members
                                    .iter()
                                    .filter(|m| fold_case(m) != old)
                                    .cloned()
                                    .chain(new.clone())
                                    .collect();
                                members.sort_by_key(|m| fold_case(m));
                                members.dedup_by_key(|m| fold_case(m));
                                (k.clone(), members)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let listing: Vec<SmolStr> = expected.iter().map(|(k, _)| k.clone()).collect();
                let writes = s.apply(op);
                for (key, members) in &expected {
                    if let Some(g) = s.groups.get(key) {
                        proptest::prop_assert_eq!(&g.members, members);
                    }
                }
                if let Some(index) = &s.memberships.0 {
                    proptest::prop_assert_eq!(sorted(index), sorted(&Memberships::of(&s.groups)));
                }
                if matches!(op, ServerOp::RemoveUser { .. } | ServerOp::PutUser { .. }) {
                    let written: Vec<SmolStr> = writes
                        .iter()
                        .filter_map(|w| match w {
                            KeyWrite::PutGroup(g) => Some(key_of(&g.name)),
                            _ => None,
                        })
                        .collect();
                    proptest::prop_assert_eq!(written, listing);
                }
            }
        }
    }

    #[test]
    fn a_group_record_put_or_removed_keeps_the_index() {
        let mut s = ServerState::from_parts(vec![local("a"), local("b")], vec![group("G", &["a"])])
            .unwrap();
        s.memberships.0 = Some(Memberships::of(&s.groups));
        s.put_group_record(group("H", &["a", "b"]));
        s.put_group_record(group("g", &["b"]));
        s.remove_group_record("h");
        let index = s.memberships.0.as_ref().unwrap();
        assert_eq!(sorted(index), sorted(&Memberships::of(&s.groups)));
        assert_eq!(index.get("b"), Some(&vec![SmolStr::from("g")]));
        assert!(index.get("a").is_none());
    }
}
