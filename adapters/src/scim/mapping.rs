//! How roster's server records map to SCIM resources and back, and the PATCH operations that
//! change them.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use engine::model::{AuthType, EntraAttributes, ServerGroup, ServerUser, UserType};
use engine::{ObjectId, SmolStr, TenantId};

use super::{ENTERPRISE_USER, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA};

/// The SCIM User resource for `u` (without `id`: the service assigns it).
pub fn user_resource(u: &ServerUser) -> Value {
    let entra = u.entra.as_ref();
    let mut r = Map::new();
    r.insert("schemas".into(), json!([USER_SCHEMA, ENTERPRISE_USER]));
    r.insert("userName".into(), json!(u.login));
    if let Some(link) = user_link(u) {
        r.insert("externalId".into(), json!(link));
    }
    r.insert("active".into(), json!(u.enabled));
    if let Some(name) = &u.display_name {
        r.insert("displayName".into(), json!(name));
    }
    let given = entra.and_then(|e| e.given_name.as_ref());
    let family = entra.and_then(|e| e.surname.as_ref());
    if given.is_some() || family.is_some() {
        let mut name = Map::new();
        if let Some(g) = given {
            name.insert("givenName".into(), json!(g));
        }
        if let Some(f) = family {
            name.insert("familyName".into(), json!(f));
        }
        r.insert("name".into(), Value::Object(name));
    }
    if let Some(mail) = &u.email {
        r.insert(
            "emails".into(),
            json!([{"value": mail, "type": "work", "primary": true}]),
        );
    }
    if let Some(title) = entra.and_then(|e| e.job_title.as_ref()) {
        r.insert("title".into(), json!(title));
    }
    if let Some(t) = entra.and_then(|e| e.user_type) {
        r.insert("userType".into(), json!(t.label()));
    }
    if let Some(d) = &u.department {
        r.insert(ENTERPRISE_USER.into(), json!({"department": d}));
    }
    Value::Object(r)
}

/// A linked user's `externalId`: `TENANT/OBJECT`, as a group's — a core attribute every
/// service keeps, so the service alone says which tenant's object it is. (Links made before
/// held the object id alone, with the tenant in the enterprise extension's `organization`;
/// they are still read.)
pub fn user_link(u: &ServerUser) -> Option<String> {
    let (t, id) = (u.tenant_id.as_ref()?, u.entra_id.as_ref()?);
    Some(format!("{t}/{id}"))
}

/// The attributes of a user a service may not keep, by PATCH path: roster writes them where
/// the service keeps them, and neither compares nor rewrites them where it does not.
/// (`userName`, `active` and `externalId` it must keep: they are the login, the account
/// state and the link.)
pub const OPTIONAL_USER_ATTRIBUTES: [&str; 7] = [
    "displayName",
    "name.givenName",
    "name.familyName",
    "emails",
    "title",
    "userType",
    "department",
];

/// The optional attributes (as [`OPTIONAL_USER_ATTRIBUTES`] names them) in which `held` —
/// a user as the service shows it after a write — differs from `meant`, the user written.
pub fn differing(meant: &ServerUser, held: &ServerUser) -> Vec<&'static str> {
    let (m, h) = (meant.entra.as_ref(), held.entra.as_ref());
    let of =
        |e: Option<&EntraAttributes>, f: fn(&EntraAttributes) -> Option<SmolStr>| e.and_then(f);
    let type_of = |e: Option<&EntraAttributes>| e.and_then(|e| e.user_type);
    [
        ("displayName", meant.display_name != held.display_name),
        (
            "name.givenName",
            of(m, |e| e.given_name.clone()) != of(h, |e| e.given_name.clone()),
        ),
        (
            "name.familyName",
            of(m, |e| e.surname.clone()) != of(h, |e| e.surname.clone()),
        ),
        ("emails", meant.email != held.email),
        (
            "title",
            of(m, |e| e.job_title.clone()) != of(h, |e| e.job_title.clone()),
        ),
        ("userType", type_of(m) != type_of(h)),
        ("department", meant.department != held.department),
    ]
    .into_iter()
    .filter(|(_, differs)| *differs)
    .map(|(name, _)| name)
    .collect()
}

/// `resource` (a User, from [`user_resource`]) without the attributes `unkept` names.
pub fn without(mut resource: Value, unkept: &[String]) -> Value {
    let Some(map) = resource.as_object_mut() else {
        return resource;
    };
    for attribute in unkept {
        match attribute.split_once('.') {
            Some((parent, child)) => {
                if let Some(Value::Object(sub)) = map.get_mut(parent) {
                    sub.remove(child);
                    if sub.is_empty() {
                        map.remove(parent);
                    }
                }
            }
            None if attribute == "department" => {
                map.remove(ENTERPRISE_USER);
            }
            None => {
                map.remove(attribute.as_str());
            }
        }
    }
    let extension = map.contains_key(ENTERPRISE_USER);
    map.insert(
        "schemas".into(),
        match extension {
            true => json!([USER_SCHEMA, ENTERPRISE_USER]),
            false => json!([USER_SCHEMA]),
        },
    );
    resource
}

/// The SCIM Group resource for `g`, its members given by their SCIM ids.
pub fn group_resource(g: &ServerGroup, member_ids: &[impl AsRef<str>]) -> Value {
    let mut r = Map::new();
    r.insert("schemas".into(), json!([GROUP_SCHEMA]));
    r.insert("displayName".into(), json!(g.name));
    if let Some(link) = group_link(g) {
        r.insert("externalId".into(), json!(link));
    }
    // As Entra creates groups: without members, which a `PATCH` adds (services built for
    // Entra ignore members sent with the `POST`). A `PUT` names them all.
    if !member_ids.is_empty() {
        r.insert(
            "members".into(),
            Value::Array(
                member_ids
                    .iter()
                    .map(|id| json!({"value": id.as_ref()}))
                    .collect(),
            ),
        );
    }
    Value::Object(r)
}

/// A linked group's `externalId`: `TENANT/OBJECT`, and `/disabled` after it once disabled.
pub fn group_link(g: &ServerGroup) -> Option<String> {
    let (t, id) = (g.tenant_id.as_ref()?, g.entra_id.as_ref()?);
    Some(match g.enabled {
        true => format!("{t}/{id}"),
        false => format!("{t}/{id}/{DISABLED}"),
    })
}

/// What ends a disabled group's `externalId`.
const DISABLED: &str = "disabled";

/// A user read from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUser {
    pub id: String,
    /// `meta.version`, for `If-Match`.
    pub version: Option<String>,
    pub user: ServerUser,
}

/// A group read from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroup {
    pub id: String,
    pub version: Option<String>,
    pub group: ServerGroup,
    /// The SCIM ids of its members that are users of the directory.
    pub member_ids: Vec<String>,
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(super) fn owned(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

/// The longest text roster reads from one attribute of a resource (an id, a name, a
/// version): a directory of a million users still fits in memory, whatever a service sends.
pub const MAX_TEXT: usize = 4096;

/// `v[key]`, refused when longer than [`MAX_TEXT`].
fn text_at<'a>(
    v: &'a Value,
    key: &str,
    what: &str,
) -> std::result::Result<Option<&'a str>, String> {
    match str_at(v, key) {
        Some(t) if t.len() > MAX_TEXT => Err(format!(
            "{what} has a {key} of {} bytes, more than roster reads ({MAX_TEXT})",
            t.len()
        )),
        other => Ok(other),
    }
}

/// The id and version every resource carries. An id is text a URL path can carry once
/// percent-encoded ([`resource_path`]): not empty, not `.` or `..`, no control character.
pub(super) fn id_and_version(
    v: &Value,
    what: &str,
) -> std::result::Result<(String, Option<String>), String> {
    let id = text_at(v, "id", what)?.ok_or_else(|| format!("a {what} without an id"))?;
    if id == "." || id == ".." || id.chars().any(char::is_control) {
        return Err(format!(
            "a {what} with the id {}, which no URL can name",
            engine::text::printable(id)
        ));
    }
    let version = match v.get("meta") {
        Some(m) => text_at(m, "version", what)?.map(str::to_owned),
        None => None,
    };
    Ok((id.to_owned(), version))
}

/// Every byte but ASCII letters, digits and `-_~` is percent-encoded in an id: `/`, `?`, `#`,
/// `%` and `.` can neither end the path nor climb out of it.
const IN_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// The path of one resource, relative to the base: `Users/ID`, the id percent-encoded.
pub fn resource_path(kind: &str, id: &str) -> String {
    format!(
        "{kind}/{}",
        percent_encoding::utf8_percent_encode(id, IN_SEGMENT)
    )
}

/// A SCIM User resource as a server user: linked to Entra when its `externalId` is
/// `TENANT/OBJECT` (or, as linked before, the object id with the tenant in the enterprise
/// `organization`); else a local user.
pub fn user_from_resource(v: &Value) -> std::result::Result<ScimUser, String> {
    let (id, version) = id_and_version(v, "User")?;
    let what = format!("User {}", engine::text::printable(&id));
    let login = text_at(v, "userName", &what)?.ok_or_else(|| format!("{what} has no userName"))?;
    let ext = v.get(ENTERPRISE_USER);
    // Every other text read, bounded before it is kept.
    for (at, key) in [
        (Some(v), "displayName"),
        (Some(v), "title"),
        (Some(v), "externalId"),
        (v.get("name"), "givenName"),
        (v.get("name"), "familyName"),
        (ext, "department"),
        (ext, "organization"),
    ] {
        if let Some(at) = at {
            text_at(at, key, &what)?;
        }
    }
    for m in v
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        text_at(m, "value", &what)?;
    }
    let external = str_at(v, "externalId");
    let link = match external.and_then(|e| e.split_once('/')) {
        Some((t, o)) => t.parse::<TenantId>().ok().zip(o.parse::<ObjectId>().ok()),
        // The earlier form: the object id, the tenant in the extension.
        None => ext
            .and_then(|e| str_at(e, "organization"))
            .and_then(|t| t.parse::<TenantId>().ok())
            .zip(external.and_then(|e| e.parse::<ObjectId>().ok())),
    };
    let (tenant_id, entra_id) = link.unzip();
    let text = |s: Option<&str>| s.map(SmolStr::from);
    let display_name = text(str_at(v, "displayName"));
    let emails = v.get("emails").and_then(Value::as_array);
    let email = emails
        .and_then(|e| {
            e.iter()
                .find(|m| m.get("primary") == Some(&Value::Bool(true)))
                .or(e.first())
        })
        .and_then(|m| str_at(m, "value"))
        .map(SmolStr::from);
    let department = text(ext.and_then(|e| str_at(e, "department")));
    let name = v.get("name");
    let entra = entra_id.as_ref().map(|oid| EntraAttributes {
        id: Some(oid.clone()),
        user_principal_name: Some(login.into()),
        display_name: display_name.clone(),
        given_name: text(name.and_then(|n| str_at(n, "givenName"))),
        surname: text(name.and_then(|n| str_at(n, "familyName"))),
        mail: email.clone(),
        department: department.clone(),
        job_title: text(str_at(v, "title")),
        user_type: match str_at(v, "userType") {
            Some("Member") => Some(UserType::Member),
            Some("Guest") => Some(UserType::Guest),
            _ => None,
        },
    });
    Ok(ScimUser {
        id,
        version,
        user: ServerUser {
            login: login.into(),
            display_name,
            email,
            department,
            auth_type: if entra_id.is_some() {
                AuthType::Entra
            } else {
                AuthType::Local
            },
            entra_id,
            tenant_id,
            enabled: v.get("active").and_then(Value::as_bool).unwrap_or(true),
            entra,
            disabled_by: None,
        },
    })
}

/// A SCIM Group resource as a server group, its members' SCIM ids turned into logins (members
/// that are not users of the directory — nested groups — are left out). Linked when its
/// `externalId` is `TENANT/OBJECT`.
pub fn group_from_resource(
    v: &Value,
    logins: &HashMap<String, SmolStr>,
) -> std::result::Result<ScimGroup, String> {
    let (id, version) = id_and_version(v, "Group")?;
    let what = format!("Group {}", engine::text::printable(&id));
    let name =
        text_at(v, "displayName", &what)?.ok_or_else(|| format!("{what} has no displayName"))?;
    text_at(v, "externalId", &what)?;
    let link = str_at(v, "externalId").and_then(|e| {
        let mut parts = e.split('/');
        let tenant = parts.next()?.parse::<TenantId>().ok()?;
        let object = parts.next()?.parse::<ObjectId>().ok()?;
        let enabled = match parts.next() {
            None => true,
            Some(DISABLED) => false,
            Some(_) => return None,
        };
        parts.next().is_none().then_some((tenant, object, enabled))
    });
    let member_ids: Vec<String> = v
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| str_at(m, "value"))
        .filter(|id| logins.contains_key(*id))
        .map(str::to_owned)
        .collect();
    let mut members: Vec<SmolStr> = member_ids.iter().map(|id| logins[id].clone()).collect();
    // In the planner's order: by login as logins compare, then as written.
    members.sort_by_cached_key(|m| (engine::ids::fold_case(m), m.clone()));
    Ok(ScimGroup {
        id,
        version,
        group: ServerGroup {
            name: name.into(),
            description: None,
            group_type: SmolStr::default(),
            entra_id: link.as_ref().map(|(_, o, _)| o.clone()),
            tenant_id: link.as_ref().map(|(t, ..)| t.clone()),
            enabled: link.is_none_or(|(.., enabled)| enabled),
            members,
        },
        member_ids,
    })
}

/// A PATCH request's body (RFC 7644 §3.5.2): lower-case `op`s.
pub fn patch_body(operations: Vec<Value>) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// `replace` of attributes: `{"op": "replace", "value": {…}}`.
pub fn replace(value: Value) -> Value {
    json!({"op": "replace", "value": value})
}

/// Adds members by SCIM id.
pub fn add_members(ids: &[String]) -> Value {
    json!({"op": "add", "path": "members", "value": ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()})
}

/// Removes one member by SCIM id: `members[value eq "ID"]`.
pub fn remove_member(id: &str) -> Value {
    json!({"op": "remove", "path": format!("members[value eq {}]", Value::String(id.to_owned()))})
}

/// Removes members by SCIM id as Entra does: `path: members` with a `value` list (never
/// empty: a `remove` of `members` without a value removes them all).
pub fn remove_members_listed(ids: &[String]) -> Value {
    assert!(!ids.is_empty(), "a removal names its members");
    json!({"op": "remove", "path": "members", "value": ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()})
}

/// The version a resource carries (`meta.version`), when it says.
pub fn version_of(resource: Option<&Value>) -> Option<String> {
    resource
        .and_then(|r| r.get("meta"))
        .and_then(|m| str_at(m, "version"))
        .map(str::to_owned)
}

/// Attributes of a resource, each by its PATCH path: `name.givenName`, the extension's as
/// `URN:attribute`.
fn flatten(resource: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(map) = resource.as_object() else {
        return out;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("schemas", _) => {}
            ("name", Value::Object(sub)) => {
                out.extend(sub.iter().map(|(k, v)| (format!("name.{k}"), v.clone())))
            }
            (ENTERPRISE_USER, Value::Object(sub)) => out.extend(
                sub.iter()
                    .map(|(k, v)| (format!("{ENTERPRISE_USER}:{k}"), v.clone())),
            ),
            _ => out.push((key.clone(), value.clone())),
        }
    }
    out
}

/// The PATCH operations that turn `old` into `new`: a `replace` per attribute that differs or
/// is new, a `remove` per attribute `new` no longer has.
pub fn user_patch(old: &ServerUser, new: &ServerUser, unkept: &[String]) -> Vec<Value> {
    let (old, new) = (
        flatten(&without(user_resource(old), unkept)),
        flatten(&without(user_resource(new), unkept)),
    );
    let before: HashMap<&str, &Value> = old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let after: HashMap<&str, &Value> = new.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut ops: Vec<Value> = new
        .iter()
        .filter(|(k, v)| before.get(k.as_str()) != Some(&v))
        .map(|(k, v)| json!({"op": "replace", "path": k, "value": v}))
        .collect();
    ops.extend(
        old.iter()
            .filter(|(k, _)| !after.contains_key(k.as_str()))
            .map(|(k, _)| json!({"op": "remove", "path": k})),
    );
    ops
}
