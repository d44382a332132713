//! Microsoft Graph's JSON, as Graph sends it, and its conversion into engine types.
//!
//! Graph wire types live only here. They read whatever Graph sends (unknown properties are
//! ignored; a property left out, `null` or of another type is kept as such, [`Prop`]) and are
//! strict when they become engine objects: a value a decision depends on that did not come,
//! with its type, makes the object unreadable — never a default.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use engine::model::{DeletedItem, DirectMembers, EntraGroup, EntraUser, UserType};
use engine::{ObjectId, SmolStr};

/// The `$select` list for users: every attribute the decision rules use.
pub const USER_SELECT: &str =
    "id,displayName,userPrincipalName,mail,givenName,surname,department,jobTitle,userType,accountEnabled";
/// The `$select` list for groups.
pub const GROUP_SELECT: &str =
    "id,displayName,description,mail,groupTypes,mailEnabled,securityEnabled,membershipRule,visibility";
/// The `$select` list for recycle-bin items.
pub const DELETED_SELECT: &str = "id,displayName,deletedDateTime";

/// A property of a Graph object as it came: left out, `null`, of the type roster reads, or of
/// another. Graph leaves out what was not `$select`ed and sends `null` for what is not set;
/// neither is a value, and nothing a decision reads is ever taken from either as a default.
/// Reading a page never fails for one odd property: the object it belongs to is judged on its
/// own (see [`GraphUser::into_entra`], [`GraphGroup::checked`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prop<T> {
    #[default]
    Absent,
    Null,
    Is(T),
    /// Another JSON type than the property has: what came, in words ("a string").
    Wrong(&'static str),
}

impl<T> Prop<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Prop::Absent)
    }

    /// A property that may be unset: absent and `null` are `None`; another type is an error.
    fn optional(self, name: &'static str) -> Result<Option<T>, ConvertError> {
        match self {
            Prop::Absent | Prop::Null => Ok(None),
            Prop::Is(v) => Ok(Some(v)),
            Prop::Wrong(kind) => Err(ConvertError::Wrong { name, kind }),
        }
    }

    /// A property a decision depends on: only a value of its type will do.
    fn required(self, name: &'static str) -> Result<T, ConvertError> {
        match self {
            Prop::Is(v) => Ok(v),
            Prop::Absent => Err(ConvertError::Missing(name)),
            Prop::Null => Err(ConvertError::Null(name)),
            Prop::Wrong(kind) => Err(ConvertError::Wrong { name, kind }),
        }
    }

    fn as_ref(&self) -> Option<&T> {
        match self {
            Prop::Is(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> From<Option<T>> for Prop<T> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Prop::Null, Prop::Is)
    }
}

/// What a JSON value is, in words.
fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Prop<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.is_null() {
            return Ok(Prop::Null);
        }
        let kind = json_kind(&v);
        Ok(T::deserialize(v).map_or(Prop::Wrong(kind), Prop::Is))
    }
}

impl<T: Serialize> Serialize for Prop<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Prop::Is(v) => v.serialize(s),
            Prop::Absent | Prop::Null | Prop::Wrong(_) => s.serialize_none(),
        }
    }
}

/// A Graph `user` resource (only the properties roster reads).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphUser {
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub id: Prop<ObjectId>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub display_name: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub user_principal_name: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub mail: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub given_name: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub surname: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub department: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub job_title: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub user_type: Prop<String>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub account_enabled: Prop<bool>,
}

/// A Graph `group` resource, with its direct `members` when it comes from a fixture.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphGroup {
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub id: Prop<ObjectId>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub display_name: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub description: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub mail: Prop<SmolStr>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub group_types: Prop<Vec<String>>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub mail_enabled: Prop<bool>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub security_enabled: Prop<bool>,
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub membership_rule: Prop<SmolStr>,
    /// `Public`, `Private`, `HiddenMembership`: a group with hidden membership lists its
    /// members only to an app granted `Member.Read.Hidden`.
    #[serde(skip_serializing_if = "Prop::is_absent")]
    pub visibility: Prop<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<GraphMember>>,
}

/// A member reference as `/groups/{id}/members` and `/transitiveMembers` return it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GraphMember {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    pub id: ObjectId,
}

/// What kind of directory object a member reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberType {
    User,
    Group,
    /// A device, service principal, contact...: not imported.
    Other,
    /// No `@odata.type` (Graph's `/members` may omit it): resolved by looking the id up.
    Unknown,
}

impl GraphMember {
    pub fn member_type(&self) -> MemberType {
        match self.odata_type.as_deref() {
            Some("#microsoft.graph.user") => MemberType::User,
            Some("#microsoft.graph.group") => MemberType::Group,
            Some(_) => MemberType::Other,
            None => MemberType::Unknown,
        }
    }
}

/// An item of `/directory/deletedItems/microsoft.graph.user` or `.group`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphDeletedItem {
    pub id: ObjectId,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub deleted_date_time: Option<DateTime<Utc>>,
}

/// Why a Graph object cannot become an engine object: what roster would have to assume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is null")]
    Null(&'static str),
    #[error("{name} is {kind}, expected {}", expected(.name))]
    Wrong {
        name: &'static str,
        kind: &'static str,
    },
    #[error("userPrincipalName is empty")]
    EmptyUpn,
    #[error("userPrincipalName holds a control or invisible character")]
    UnprintableUpn,
    #[error("userType {0:?} is neither \"Member\" nor \"Guest\"")]
    UserType(String),
}

/// What a property roster reads holds, in words.
fn expected(name: &str) -> &'static str {
    match name {
        "id" => "a GUID",
        "accountEnabled" | "mailEnabled" | "securityEnabled" => "true or false",
        "groupTypes" => "a list of strings",
        _ => "a string",
    }
}

/// An object that could not be read: its id when it has one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub id: Option<ObjectId>,
    /// The display name, when it came, for the message.
    pub name: Option<String>,
    pub why: ConvertError,
}

impl Unreadable {
    /// The object and why, as a run's problems say it.
    pub fn describe(&self, kind: &str) -> String {
        let who = match (&self.name, &self.id) {
            (Some(n), Some(id)) => format!("{kind} {n} ({id})"),
            (None, Some(id)) => format!("{kind} {id}"),
            (Some(n), None) => format!("{kind} {n} (no id)"),
            (None, None) => format!("a {kind} without a valid id"),
        };
        format!("{who}: {}", self.why)
    }
}

impl GraphUser {
    /// Converts to an engine user. Nothing a decision reads is defaulted: `id`,
    /// `userPrincipalName`, `userType` and `accountEnabled` must have come, with their type;
    /// the other properties may be left out or `null` (not set).
    pub fn into_entra(self) -> Result<EntraUser, Unreadable> {
        let id = self.id.as_ref().cloned();
        let name = self.display_name.as_ref().map(SmolStr::to_string);
        let unreadable = |why| Unreadable {
            id: id.clone(),
            name: name.clone(),
            why,
        };
        self.convert().map_err(unreadable)
    }

    fn convert(self) -> Result<EntraUser, ConvertError> {
        let id = self.id.required("id")?;
        let upn = self.user_principal_name.required("userPrincipalName")?;
        if upn.trim().is_empty() {
            return Err(ConvertError::EmptyUpn);
        }
        if upn.chars().any(engine::text::needs_escape) {
            return Err(ConvertError::UnprintableUpn);
        }
        let user_type = match self.user_type.required("userType")? {
            t if t.eq_ignore_ascii_case("member") => UserType::Member,
            t if t.eq_ignore_ascii_case("guest") => UserType::Guest,
            t => return Err(ConvertError::UserType(t.chars().take(100).collect())),
        };
        Ok(EntraUser {
            id,
            display_name: self.display_name.optional("displayName")?,
            user_principal_name: upn,
            mail: self.mail.optional("mail")?,
            given_name: self.given_name.optional("givenName")?,
            surname: self.surname.optional("surname")?,
            department: self.department.optional("department")?,
            job_title: self.job_title.optional("jobTitle")?,
            user_type,
            account_enabled: self.account_enabled.required("accountEnabled")?,
        }
        .shared())
    }

    pub fn from_entra(u: &EntraUser) -> GraphUser {
        GraphUser {
            id: Prop::Is(u.id.clone()),
            display_name: u.display_name.clone().into(),
            user_principal_name: Prop::Is(u.user_principal_name.clone()),
            mail: u.mail.clone().into(),
            given_name: u.given_name.clone().into(),
            surname: u.surname.clone().into(),
            department: u.department.clone().into(),
            job_title: u.job_title.clone().into(),
            user_type: Prop::Is(u.user_type.label().to_owned()),
            account_enabled: Prop::Is(u.account_enabled),
        }
    }
}

/// A group whose properties were read whole, waiting for its members to be resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedGroup {
    pub id: ObjectId,
    pub display_name: Option<SmolStr>,
    pub description: Option<SmolStr>,
    pub mail: Option<SmolStr>,
    pub group_types: Vec<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub membership_rule: Option<SmolStr>,
    /// `visibility`, when Graph sent it.
    pub visibility: Option<String>,
    /// The direct members a fixture lists.
    pub members: Option<Vec<GraphMember>>,
}

impl CheckedGroup {
    /// Whether only an app granted `Member.Read.Hidden` may list its members.
    pub fn hides_members(&self) -> bool {
        self.visibility
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("HiddenMembership"))
    }

    /// The engine group whose transitive member users are `member_users`, and whose direct
    /// members are `nested` when groups are among them.
    pub fn into_entra(
        self,
        member_users: Vec<ObjectId>,
        nested: Option<DirectMembers>,
    ) -> EntraGroup {
        EntraGroup {
            id: self.id,
            display_name: self.display_name,
            description: self.description,
            mail: self.mail,
            group_types: self.group_types,
            mail_enabled: self.mail_enabled,
            security_enabled: self.security_enabled,
            membership_rule: self.membership_rule,
            member_users,
            nested,
        }
    }
}

impl GraphGroup {
    /// The group's properties, checked: `id`, `groupTypes`, `mailEnabled` and
    /// `securityEnabled` (what its type is decided from) must have come, with their type.
    pub fn checked(self) -> Result<CheckedGroup, Unreadable> {
        let id = self.id.as_ref().cloned();
        let name = self.display_name.as_ref().cloned();
        let members = self.members;
        let convert = || -> Result<CheckedGroup, ConvertError> {
            Ok(CheckedGroup {
                id: self.id.required("id")?,
                display_name: self.display_name.optional("displayName")?,
                description: self.description.optional("description")?,
                mail: self.mail.optional("mail")?,
                group_types: self.group_types.required("groupTypes")?,
                mail_enabled: self.mail_enabled.required("mailEnabled")?,
                security_enabled: self.security_enabled.required("securityEnabled")?,
                membership_rule: self.membership_rule.optional("membershipRule")?,
                visibility: self.visibility.optional("visibility")?,
                members,
            })
        };
        convert().map_err(|why| Unreadable {
            id,
            name: name.map(String::from),
            why,
        })
    }

    /// The fixture form of an engine group: its direct members — nested groups as groups, when
    /// it has them; else its users.
    pub fn from_entra(g: &EntraGroup) -> GraphGroup {
        GraphGroup {
            id: Prop::Is(g.id.clone()),
            display_name: g.display_name.clone().into(),
            description: g.description.clone().into(),
            mail: g.mail.clone().into(),
            group_types: Prop::Is(g.group_types.clone()),
            mail_enabled: Prop::Is(g.mail_enabled),
            security_enabled: Prop::Is(g.security_enabled),
            membership_rule: g.membership_rule.clone().into(),
            visibility: Prop::Absent,
            members: Some({
                let member = |kind: &str, id: &ObjectId| GraphMember {
                    odata_type: Some(format!("#microsoft.graph.{kind}")),
                    id: id.clone(),
                };
                match &g.nested {
                    None => g.member_users.iter().map(|id| member("user", id)).collect(),
                    Some(direct) => direct
                        .users
                        .iter()
                        .map(|id| member("user", id))
                        .chain(direct.groups.iter().map(|id| member("group", id)))
                        .chain(direct.other.iter().map(|o| GraphMember {
                            odata_type: Some(o.odata_type.clone()),
                            id: o.id.clone(),
                        }))
                        .collect(),
                }
            }),
        }
    }
}

impl From<GraphDeletedItem> for DeletedItem {
    fn from(d: GraphDeletedItem) -> Self {
        DeletedItem {
            id: d.id,
            display_name: d.display_name,
            deleted_at: d.deleted_date_time,
        }
    }
}

impl From<&DeletedItem> for GraphDeletedItem {
    fn from(d: &DeletedItem) -> Self {
        GraphDeletedItem {
            id: d.id.clone(),
            display_name: d.display_name.clone(),
            deleted_date_time: d.deleted_at,
        }
    }
}

/// One page of a Graph collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
    #[serde(rename = "@odata.count", default)]
    pub count: Option<u64>,
}

/// Graph's error body: `{"error": {"code", "message", "innerError": {...}}}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GraphErrorBody {
    pub error: GraphError,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<serde_json::Value>,
}

/// `POST /$batch` body: up to 20 requests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BatchRequest {
    pub requests: Vec<BatchRequestItem>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BatchRequestItem {
    pub id: String,
    pub method: String,
    /// Relative to the version root: `/users?$select=...` or `users?...`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// `$batch` answer: one response per request, each with its own status (a 200 outer status
/// only means the batch itself was understood).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BatchResponse {
    pub responses: Vec<BatchResponseItem>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BatchResponseItem {
    pub id: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl BatchResponseItem {
    /// A header of this inner response, whatever its case (`Retry-After` or `retry-after`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .as_ref()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
