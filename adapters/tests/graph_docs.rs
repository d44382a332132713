//! Every response body from Microsoft's Graph documentation (fixtures/graph-docs) goes through
//! the wire types roster uses against live Graph: pages of users, groups, members and deleted
//! items, delta rounds, `$batch`, and error bodies.

use std::path::PathBuf;

use adapters::wire::*;
use serde::de::DeserializeOwned;

fn doc(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/graph-docs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_slice(&doc(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn users_listed_without_select_are_unreadable_never_defaulted() {
    // The documented `GET /users` is not `$select`ed: Graph leaves out `accountEnabled` and
    // `userType`. roster never reads them as "enabled" and "member": the users are unreadable.
    let page: Page<GraphUser> = parse("users.list-response.json");
    assert_eq!(page.next_link, None);
    let first = page.value[0].clone().into_entra().unwrap_err();
    assert_eq!(first.name.as_deref(), Some("Conf Room Adams"));
    assert_eq!(first.why, ConvertError::Missing("userType"));
    assert_eq!(
        first.describe("user"),
        "user Conf Room Adams (6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0): userType is missing"
    );
    // With the properties roster `$select`s, the same object converts.
    let mut v: serde_json::Value =
        serde_json::from_slice(&doc("users.list-response.json")).unwrap();
    v["value"][0]["userType"] = "Member".into();
    let page: Page<GraphUser> = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(
        page.value[0].clone().into_entra().unwrap_err().why,
        ConvertError::Missing("accountEnabled")
    );
    v["value"][0]["accountEnabled"] = serde_json::Value::Null;
    let page: Page<GraphUser> = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(
        page.value[0].clone().into_entra().unwrap_err().why,
        ConvertError::Null("accountEnabled")
    );
    v["value"][0]["accountEnabled"] = "yes".into();
    let page: Page<GraphUser> = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(
        page.value[0].clone().into_entra().unwrap_err().why,
        ConvertError::Wrong {
            name: "accountEnabled",
            kind: "a string"
        }
    );
    v["value"][0]["accountEnabled"] = true.into();
    let page: Page<GraphUser> = serde_json::from_value(v).unwrap();
    let user = page.value[0].clone().into_entra().unwrap();
    assert_eq!(user.name(), "Conf Room Adams");
    assert!(user.account_enabled);
    assert_eq!(
        page.value[1]
            .clone()
            .into_entra()
            .unwrap_err()
            .id
            .unwrap()
            .as_str(),
        "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e"
    );
}

#[test]
fn a_guest_page_without_ids_keeps_every_object_and_names_what_is_missing() {
    // The documented $count example is trimmed to four properties and has no id: the page
    // reads, and the object is unreadable for want of its id.
    let page: Page<GraphUser> =
        serde_json::from_slice(&doc("users.list-count-guest-response.json")).unwrap();
    let err = page.value[0].clone().into_entra().unwrap_err();
    assert_eq!(err.why, ConvertError::Missing("id"));
    assert_eq!(err.id, None);
    // With its id and the properties roster selects, the same object is a guest.
    let mut v: serde_json::Value =
        serde_json::from_slice(&doc("users.list-count-guest-response.json")).unwrap();
    assert_eq!(v["@odata.count"], 1);
    v["value"][0]["id"] = "87d349ed-44d7-43e1-9a83-5f2406dee5bd".into();
    v["value"][0]["userType"] = "Guest".into();
    v["value"][0]["accountEnabled"] = true.into();
    let page: Page<GraphUser> = serde_json::from_value(v).unwrap();
    assert_eq!(page.count, Some(1));
    let guest = page.value[0].clone().into_entra().unwrap();
    assert_eq!(guest.user_type, engine::model::UserType::Guest);
}

#[test]
fn group_pages_classify_every_type() {
    let page: Page<GraphGroup> = parse("groups.list-response.json");
    let groups: Vec<_> = page
        .value
        .into_iter()
        .map(|g| g.checked().unwrap().into_entra(vec![], None))
        .collect();
    assert_eq!(groups[0].group_type().label(), "M365 Group");
    assert_eq!(groups[1].group_type().label(), "Distribution Group");
}

#[test]
fn member_pages_with_and_without_odata_type() {
    let direct: Page<GraphMember> = parse("groups.members.list-response.json");
    assert_eq!(direct.value[0].member_type(), MemberType::Unknown);
    let transitive: Page<GraphMember> = parse("groups.transitiveMembers.list-response.json");
    assert_eq!(transitive.value[0].member_type(), MemberType::User);
}

#[test]
fn deleted_items_pages_with_and_without_deleted_date_time() {
    let counted: Page<GraphDeletedItem> =
        parse("directory-deletedItems-microsoft.graph.group.count-orderby-response.json");
    assert_eq!(counted.count, Some(2));
    assert!(counted.value.iter().all(|d| d.deleted_date_time.is_some()));
    let plain: Page<GraphDeletedItem> =
        parse("directory-deletedItems-microsoft.graph.group.list-response.json");
    assert_eq!(plain.value[0].deleted_date_time, None);
    assert_eq!(plain.value[0].display_name.as_deref(), Some("SampleGroup"));
}

#[test]
fn delta_rounds_parse_as_pages() {
    for name in [
        "users-delta.initial-response.json",
        "users-delta.final-nextlink-response.json",
        "users-delta.deltalink-response-no-changes.json",
        "users-delta.deltalink-response-with-changes.json",
        "groups-delta.initial-response-members-delta.json",
    ] {
        let page: Page<serde_json::Value> = parse(name);
        assert!(
            page.next_link.is_some() || page.delta_link.is_some(),
            "{name}"
        );
    }
    // A delta page's member reference with a malformed id (as published) is refused, not panicked on.
    let page: Page<serde_json::Value> = parse("groups-delta.deltalink-response-members-delta.json");
    let bad = page.value[0]["members@delta"][0].clone();
    assert!(serde_json::from_value::<GraphMember>(bad)
        .unwrap_err()
        .to_string()
        .contains("not a GUID"));
}

#[test]
fn batch_bodies_round_trip_and_expose_inner_statuses() {
    let req: BatchRequest = parse("batch.request.json");
    assert_eq!(req.requests.len(), 5);
    assert_eq!(
        req.requests[4].headers.as_ref().unwrap()["ConsistencyLevel"],
        "eventual"
    );
    let resp: BatchResponse = parse("batch.response.json");
    let statuses: Vec<u16> = resp.responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 403, 403, 405, 200]);
    assert_eq!(resp.responses[0].header("X-MS-RESOURCE-UNIT"), Some("1"));
    let denied: GraphErrorBody =
        serde_json::from_value(resp.responses[2].body.clone().unwrap()).unwrap();
    assert_eq!(denied.error.code, "Authorization_RequestDenied");
}

#[test]
fn error_bodies_parse() {
    for (name, code) in [
        ("error-generic-shape.json", "invalidRange"),
        ("error-429-throttling.response.json", "TooManyRequests"),
        (
            "error-advanced-query-missing-header.response.json",
            "Request_UnsupportedQuery",
        ),
    ] {
        let body: GraphErrorBody = parse(name);
        assert_eq!(body.error.code, code);
        assert!(!body.error.message.is_empty());
    }
}
