//! What a SCIM service says it is before anything is written: what it supports
//! (`/ServiceProviderConfig`, RFC 7643 §5) and what it holds (`/ResourceTypes`, `/Schemas`,
//! §6–7). A service that cannot hold what roster needs is refused before anything is sent.

use serde_json::Value;

/// What the service says it supports (`/ServiceProviderConfig`, RFC 7643 §5): what the
/// writes may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceConfig {
    pub patch: bool,
    /// `maxOperations` and `maxPayloadSize`, when bulk requests are supported.
    pub bulk: Option<(u64, u64)>,
    /// `maxResults`, when filtering is supported.
    pub filter: Option<u64>,
    /// Whether resources carry versions (`If-Match`).
    pub etag: bool,
}

impl ServiceConfig {
    pub fn from_json(v: &Value) -> ServiceConfig {
        let supported = |key: &str| {
            v.get(key)
                .and_then(|f| f.get("supported"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let number = |key: &str, field: &str| {
            v.get(key)
                .and_then(|f| f.get(field))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        ServiceConfig {
            patch: supported("patch"),
            bulk: supported("bulk").then(|| {
                (
                    number("bulk", "maxOperations"),
                    number("bulk", "maxPayloadSize"),
                )
            }),
            filter: supported("filter").then(|| number("filter", "maxResults")),
            etag: supported("etag"),
        }
    }
}

/// What a service says it holds (`/ResourceTypes`, `/Schemas`): what roster sends, compares
/// and links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub config: ServiceConfig,
    /// Whether its User resource type lists the enterprise extension: else `department` is
    /// neither sent nor compared.
    pub enterprise: bool,
}

/// The resources of a listing (`{"Resources": […]}`) or a bare array, as services send them.
fn resources(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        _ => v
            .get("Resources")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
    }
}

/// Checks `/ResourceTypes`: a User type at `Users` and a Group type at `Groups`. Whether the
/// User type lists the enterprise extension; else what is missing, in a few words.
pub fn resource_types(v: &Value) -> Result<bool, String> {
    let find = |name: &str, schema: &str| {
        resources(v).iter().find(|t| {
            t.get("schema").and_then(Value::as_str) == Some(schema)
                || t.get("name").and_then(Value::as_str) == Some(name)
        })
    };
    let endpoint = |t: &Value| {
        t.get("endpoint").and_then(Value::as_str).map(|e| {
            e.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    };
    let mut missing = Vec::new();
    for (name, schema, at) in [
        ("User", super::USER_SCHEMA, "Users"),
        ("Group", super::GROUP_SCHEMA, "Groups"),
    ] {
        match find(name, schema).map(endpoint) {
            None => missing.push(format!("no {name} resource type")),
            Some(Some(e)) if e == at => {}
            Some(e) => missing.push(format!(
                "its {name} resource type is at {}, not {at}",
                engine::text::printable(&e.unwrap_or_default())
            )),
        }
    }
    if !missing.is_empty() {
        return Err(missing.join(", "));
    }
    let user = find("User", super::USER_SCHEMA).expect("checked above");
    Ok(user
        .get("schemaExtensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|x| x.get("schema").and_then(Value::as_str) == Some(super::ENTERPRISE_USER)))
}

/// Checks `/Schemas`, where it lists the core schemas' attributes: a User with `userName` and
/// `active` (the login, and the account state roster disables), a Group with `members`.
pub fn schemas(v: &Value) -> Result<(), String> {
    let mut missing = Vec::new();
    for (schema, name, needed) in [
        (super::USER_SCHEMA, "User", &["userName", "active"][..]),
        (super::GROUP_SCHEMA, "Group", &["members"][..]),
    ] {
        let Some(attributes) = resources(v)
            .iter()
            .find(|s| s.get("id").and_then(Value::as_str) == Some(schema))
            .and_then(|s| s.get("attributes"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for attribute in needed {
            let held = attributes.iter().any(|a| {
                a.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(attribute))
            });
            if !held {
                missing.push(format!("its {name} schema has no {attribute}"));
            }
        }
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(missing.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_types_say_where_users_and_groups_are_and_the_extension() {
        let user = |ext: bool| {
            let mut t = json!({"name": "User", "endpoint": "/scim/v2/Users", "schema": crate::scim::USER_SCHEMA});
            if ext {
                t["schemaExtensions"] =
                    json!([{"schema": crate::scim::ENTERPRISE_USER, "required": false}]);
            }
            t
        };
        let group =
            json!({"name": "Group", "endpoint": "/Groups", "schema": crate::scim::GROUP_SCHEMA});
        assert_eq!(
            resource_types(&json!({"Resources": [user(true), group.clone()]})),
            Ok(true)
        );
        assert_eq!(
            resource_types(&json!([user(false), group.clone()])),
            Ok(false)
        );
        assert_eq!(
            resource_types(&json!({"Resources": [user(false)]})),
            Err("no Group resource type".into())
        );
        let mut people = user(false);
        people["endpoint"] = json!("/People");
        assert_eq!(
            resource_types(&json!([people, group])),
            Err("its User resource type is at People, not Users".into())
        );
    }

    #[test]
    fn schemas_must_hold_the_login_the_account_state_and_members() {
        let attrs =
            |names: &[&str]| json!(names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
        let v = json!({"Resources": [
            {"id": crate::scim::USER_SCHEMA, "attributes": attrs(&["userName"])},
            {"id": crate::scim::GROUP_SCHEMA, "attributes": attrs(&["displayName"])},
        ]});
        assert_eq!(
            schemas(&v),
            Err("its User schema has no active, its Group schema has no members".into())
        );
        let v = json!({"Resources": [
            {"id": crate::scim::USER_SCHEMA, "attributes": attrs(&["userName", "active"])},
            {"id": crate::scim::GROUP_SCHEMA, "attributes": attrs(&["displayName", "members"])},
        ]});
        assert_eq!(schemas(&v), Ok(()));
        assert_eq!(
            schemas(&json!({"Resources": []})),
            Ok(()),
            "not said: not refused"
        );
    }
}
