//! Microsoft Graph's JSON, as Graph sends it, and its conversion into engine types.
//!
//! Graph wire types live only here. They are lenient where Graph is (unknown properties are
//! ignored, most properties may be null or absent) and strict where roster must be (an object
//! without an id, or with an id that is not a GUID, is rejected, naming where it is).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use engine::model::{DeletedItem, DirectMembers, EntraGroup, EntraUser, UserType};
use engine::ObjectId;

/// The `$select` list for users: every attribute the decision rules use.
pub const USER_SELECT: &str =
    "id,displayName,userPrincipalName,mail,givenName,surname,department,jobTitle,userType,accountEnabled";
/// The `$select` list for groups.
pub const GROUP_SELECT: &str =
    "id,displayName,description,mail,groupTypes,mailEnabled,securityEnabled,membershipRule";
/// The `$select` list for recycle-bin items.
pub const DELETED_SELECT: &str = "id,displayName,deletedDateTime";

/// A Graph `user` resource (only the properties roster reads).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    pub id: ObjectId,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
}

/// A Graph `group` resource, with its direct `members` when it comes from a fixture.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphGroup {
    pub id: ObjectId,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub group_types: Vec<String>,
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    #[serde(default)]
    pub membership_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Why a Graph object cannot become an engine object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("userPrincipalName is missing")]
    MissingUpn,
    #[error("userType {0:?} is neither \"Member\" nor \"Guest\"")]
    UserType(String),
}

impl GraphUser {
    /// Converts to an engine user. `userType` defaults from the UPN (`#EXT#` marks a guest);
    /// `accountEnabled` defaults to true, as Graph omits it unless it is `$select`ed.
    pub fn into_entra(self) -> Result<EntraUser, ConvertError> {
        let upn = self
            .user_principal_name
            .filter(|u| !u.trim().is_empty())
            .ok_or(ConvertError::MissingUpn)?;
        let user_type = match self.user_type.as_deref() {
            None => {
                if upn.contains("#EXT#") {
                    UserType::Guest
                } else {
                    UserType::Member
                }
            }
            Some(t) if t.eq_ignore_ascii_case("member") => UserType::Member,
            Some(t) if t.eq_ignore_ascii_case("guest") => UserType::Guest,
            Some(t) => return Err(ConvertError::UserType(t.to_owned())),
        };
        Ok(EntraUser {
            id: self.id,
            display_name: self.display_name,
            user_principal_name: upn,
            mail: self.mail,
            given_name: self.given_name,
            surname: self.surname,
            department: self.department,
            job_title: self.job_title,
            user_type,
            account_enabled: self.account_enabled.unwrap_or(true),
        })
    }

    pub fn from_entra(u: &EntraUser) -> GraphUser {
        GraphUser {
            id: u.id.clone(),
            display_name: u.display_name.clone(),
            user_principal_name: Some(u.user_principal_name.clone()),
            mail: u.mail.clone(),
            given_name: u.given_name.clone(),
            surname: u.surname.clone(),
            department: u.department.clone(),
            job_title: u.job_title.clone(),
            user_type: Some(u.user_type.label().to_owned()),
            account_enabled: Some(u.account_enabled),
        }
    }
}

impl GraphGroup {
    /// Converts to an engine group whose transitive member users are `member_users`, and whose
    /// direct members are `nested` when groups are among them.
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
            mail_enabled: self.mail_enabled.unwrap_or(false),
            security_enabled: self.security_enabled.unwrap_or(false),
            membership_rule: self.membership_rule,
            member_users,
            nested,
        }
    }

    /// The fixture form of an engine group: its direct members — nested groups as groups, when
    /// it has them; else its users.
    pub fn from_entra(g: &EntraGroup) -> GraphGroup {
        GraphGroup {
            id: g.id.clone(),
            display_name: g.display_name.clone(),
            description: g.description.clone(),
            mail: g.mail.clone(),
            group_types: g.group_types.clone(),
            mail_enabled: Some(g.mail_enabled),
            security_enabled: Some(g.security_enabled),
            membership_rule: g.membership_rule.clone(),
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
