//! A SCIM 2.0 service (RFC 7643/7644) as the server's directory: how roster's server records
//! map to SCIM resources, and the client that reads and writes them. The `--scim` target,
//! which makes a run's decisions on the service, is [`target`].
//!
//! Only the core User and Group schemas and the enterprise extension are used, so that any
//! stock service stores what roster writes, and the service alone says which objects roster
//! linked from which tenant:
//!
//! - a user: `userName` = login, `externalId` = Entra object id, `active` = enabled,
//!   `displayName`, `name.givenName`/`familyName`, `emails` (work, primary) = mail, `title`,
//!   `userType`; the enterprise extension's `department`, and its `organization` = the tenant
//!   id. A user is linked when both `externalId` and `organization` are GUIDs.
//! - a group: `displayName` = name, `externalId` = `TENANT/OBJECT` (groups have no extension),
//!   `TENANT/OBJECT/disabled` once disabled (SCIM groups have no `active`), `members` by SCIM
//!   id. SCIM groups hold no description or type.

pub mod client;
pub mod discovery;
pub mod mapping;
pub mod target;
mod writes;

use engine::model::ServerState;

use crate::auth::Secret;
use crate::error::{Error, Result};

pub use client::ScimClient;
pub use discovery::ServiceConfig;
pub use mapping::{
    add_members, group_from_resource, group_link, group_resource, patch_body, remove_member,
    remove_members_listed, replace, user_from_resource, user_link, user_patch, user_resource,
    without, ScimGroup, ScimUser,
};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// The environment variable holding the SCIM service's bearer token.
pub const TOKEN_ENV: &str = "ROSTER_SCIM_TOKEN";

/// The SCIM bearer token: from `--scim-token-file` (a file only its owner may read), else
/// `ROSTER_SCIM_TOKEN`. Without one, nothing is sent: a directory's users go only to a service
/// that asks who is writing (Entra's provisioning always sends a token too).
pub fn token(file: Option<&std::path::Path>) -> Result<Secret> {
    if let Some(path) = file {
        return crate::auth::read_private_file(path, "SCIM token")
            .map_err(|e| Error::bad_input(e.to_string()));
    }
    let token = std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if let Some(t) = &token {
        crate::auth::one_line_secret(t, TOKEN_ENV, "SCIM token")
            .map_err(|e| Error::bad_input(e.to_string()))?;
    }
    token.map(Secret::new).ok_or_else(|| {
        Error::bad_input(format!(
            "--scim needs the service's bearer token: --scim-token-file FILE (a file only you may read) or {TOKEN_ENV}; nothing was sent"
        ))
    })
}

/// A resource the service wrote: its id and new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub version: Option<String>,
    /// The resource as the answer shows it, when it shows one.
    pub resource: Option<serde_json::Value>,
}

/// Why the service did not make a write: what the entry's outcome says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// 409 `uniqueness`: another resource holds the name — a conflict, never overwritten.
    #[error("the SCIM service already holds another resource with that name: {0}")]
    Conflict(String),
    /// 412: the resource changed since it was read (`If-Match`): read it again.
    #[error("the SCIM resource changed since it was read")]
    Stale,
    /// 404: the resource is gone.
    #[error("the SCIM resource is gone")]
    Gone,
    /// Any other refusal, with the service's `scimType` and `detail`.
    #[error("the SCIM service refused ({status}{}): {detail}", .scim_type.as_deref().map(|t| format!(", {t}")).unwrap_or_default())]
    Refused {
        status: u16,
        scim_type: Option<String>,
        detail: String,
    },
    /// 501: the service does not do this operation (`PATCH Groups`, `POST Bulk`…); nothing
    /// was done.
    #[error("the SCIM service answered 501, not implemented: {0}")]
    NotImplemented(String),
    /// The service took the write but does not hold what was meant (members, `active`,
    /// `userName`, the link): what it did not keep.
    #[error("the SCIM service did not keep {0}")]
    NotKept(String),
    /// The service answered a create without the id of what it made, and it could not be
    /// looked up: whether it holds the record is left to the next run's read.
    #[error("the SCIM service answered the create without the id of what it made{0}; the next run reads the service and decides from what it holds")]
    Unconfirmed(String),
    /// A bulk request failed as a whole, and the service cannot be asked whether it made this
    /// one (its filter is not proven to work): not sent again.
    #[error("the SCIM bulk request failed, and whether the service made this one cannot be told (its filter is not proven to work); the next run reads the service")]
    Unsettled,
    /// The service could not be reached, or kept answering 429/503.
    #[error("the SCIM service cannot be reached: {0}")]
    Unreachable(String),
}

/// The service's directory as roster's server state, with each record's SCIM id and version.
#[derive(Debug, Clone, Default)]
pub struct ScimDirectory {
    pub state: ServerState,
    pub users: Vec<ScimUser>,
    pub groups: Vec<ScimGroup>,
}
