//! Tenant fixtures and server files: what is accepted, how nesting resolves, and a one-line
//! error naming the file and field for everything that is not.

use std::path::Path;

use adapters::fixture::{parse_tenant, read_tenant};
use adapters::target::{parse_server_state, read_server_file, write_server_file};
use engine::model::GroupType;
use testkit::*;

const T: &str = "11111111-1111-4111-8111-111111111111";

fn tenant_json(users: &str, groups: &str) -> String {
    format!(r#"{{"tenantId": "{T}", "users": [{users}], "groups": [{groups}]}}"#)
}

#[track_caller]
fn rejects(origin: &str, bytes: &str, expect: &str) {
    let err = parse_tenant(bytes.as_bytes(), origin)
        .err()
        .unwrap_or_else(|| panic!("accepted: {expect}"));
    let msg = err.to_string();
    assert!(err.is_bad_input(), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.starts_with(origin), "names the file: {msg}");
    assert!(msg.contains(expect), "expected {expect:?} in {msg:?}");
    // Read from a file (block by block, where it can be): the same error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(origin);
    std::fs::write(&path, bytes).unwrap();
    let from_file = read_tenant(&path)
        .err()
        .unwrap_or_else(|| panic!("accepted from a file: {expect}"));
    let path = path.display().to_string();
    assert_eq!(from_file.to_string().replacen(&path, origin, 1), msg);
}

#[test]
fn malformed_tenants_are_rejected_naming_file_and_field() {
    let u1 = r#"{"id": "00000000-0000-4000-8000-000000000001", "userPrincipalName": "a@x.com", "userType": "Member", "accountEnabled": true}"#;
    let cases = [
        ("", "the file is empty"),
        ("[1, 2]", "not a JSON object"),
        ("{\"tenantId\": ", "EOF while parsing"),
        ("{\"users\": []}", "missing field `tenantId`"),
        (
            r#"{"tenantId": "contoso"}"#,
            "tenantId: tenant id \"contoso\" is not a GUID",
        ),
        (
            &tenant_json(r#"{"id": "nope", "userPrincipalName": "a@x.com"}"#, ""),
            "users[0]: a user without a valid id: id is a string, expected a GUID",
        ),
        (
            &tenant_json(r#"{"userPrincipalName": "a@x.com"}"#, ""),
            "users[0]: a user without a valid id: id is missing",
        ),
        (
            &tenant_json(r#"{"id": "00000000-0000-4000-8000-000000000001"}"#, ""),
            "users[0]: user 00000000-0000-4000-8000-000000000001: userPrincipalName is missing",
        ),
        (
            &tenant_json(
                r#"{"id": "00000000-0000-4000-8000-000000000001", "userPrincipalName": "a@x.com", "userType": "Member", "accountEnabled": "yes"}"#,
                "",
            ),
            "users[0]: user 00000000-0000-4000-8000-000000000001: accountEnabled is a string, expected true or false",
        ),
        (
            &tenant_json(
                r#"{"id": "00000000-0000-4000-8000-000000000001", "userPrincipalName": "a@x.com", "userType": "Robot"}"#,
                "",
            ),
            "userType \"Robot\" is neither",
        ),
        (
            &tenant_json(&format!("{u1}, {u1}"), ""),
            "user id 00000000-0000-4000-8000-000000000001 appears more than once",
        ),
        (
            &tenant_json(
                "",
                r#"{"id": "00000000-0000-4000-8000-000000000064", "groupTypes": "Unified", "mailEnabled": false, "securityEnabled": true}"#,
            ),
            "groups[0]: group 00000000-0000-4000-8000-000000000064: groupTypes is a string, expected a list of strings",
        ),
        (
            &tenant_json(
                "",
                r#"{"id": "00000000-0000-4000-8000-000000000064", "members": [{"id": 7}]}"#,
            ),
            "groups[0].members[0].id: invalid type: integer",
        ),
        (
            &format!(
                r#"{{"tenantId": "{T}", "users": {}1{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
            "users[0][0]",
        ),
        ("{\"tenantId\": \"\u{0}\"}", "control character"),
        ("{\"tenantId\": \"\\u0000\"}", "is not a GUID"),
    ];
    for (bytes, expect) in cases {
        rejects("t.json", bytes, expect);
    }
    // Deep nesting in a property roster ignores neither overflows the stack nor matters.
    let deep = format!(
        r#"{{"tenantId": "{T}", "extra": {}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(parse_tenant(deep.as_bytes(), "deep.json").is_ok());
    let invalid_utf8 = [b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'];
    assert!(parse_tenant(&invalid_utf8, "bin.json")
        .unwrap_err()
        .to_string()
        .starts_with("bin.json: "));
}

#[test]
fn unreadable_files_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let err = read_tenant(&missing).unwrap_err().to_string();
    assert!(
        err.ends_with("cannot read tenant fixture: no such file"),
        "{err}"
    );
    let err = read_tenant(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let err = read_server_file(&missing).unwrap_err().to_string();
    assert!(
        err.contains("cannot read server state: no such file"),
        "{err}"
    );
}

#[test]
fn nesting_resolves_to_transitive_member_users() {
    let json = format!(
        r##"{{"tenantId": "{T}",
            "users": [
              {{"id": "{u1}", "userPrincipalName": "a@x.com", "userType": "Member", "accountEnabled": true}},
              {{"id": "{u2}", "userPrincipalName": "b@x.com", "userType": "Member", "accountEnabled": true}},
              {{"id": "{u3}", "userPrincipalName": "c_y.com#EXT#@x.onmicrosoft.com", "userType": "Guest", "accountEnabled": true}}],
            "groups": [
              {{"id": "{g1}", "displayName": "Outer", "groupTypes": [], "mailEnabled": false, "securityEnabled": true,
                "members": [{{"@odata.type": "#microsoft.graph.user", "id": "{u1}"}},
                            {{"@odata.type": "#microsoft.graph.group", "id": "{g2}"}},
                            {{"@odata.type": "#microsoft.graph.device", "id": "{dev}"}}]}},
              {{"id": "{g2}", "displayName": "Inner", "groupTypes": [], "mailEnabled": true, "securityEnabled": true,
                "members": [{{"id": "{u2}"}}, {{"id": "{g3}"}}]}},
              {{"id": "{g3}", "displayName": "Loop", "groupTypes": ["Unified"], "mailEnabled": true, "securityEnabled": false,
                "members": [{{"id": "{u3}"}}, {{"id": "{g1}"}}, {{"id": "{ghost}"}}]}}]}}"##,
        u1 = oid(1),
        u2 = oid(2),
        u3 = oid(3),
        g1 = oid(100),
        g2 = oid(101),
        g3 = oid(102),
        dev = oid(900),
        ghost = oid(901),
    );
    let loaded = parse_tenant(json.as_bytes(), "nested.json").unwrap();
    let s = &loaded.snapshot;
    assert_eq!(
        s.group(&oid(100)).unwrap().member_users,
        vec![oid(1), oid(2), oid(3)]
    );
    assert_eq!(
        s.group(&oid(101)).unwrap().member_users,
        vec![oid(1), oid(2), oid(3)],
        "the cycle back to Outer is cut"
    );
    assert_eq!(
        s.group(&oid(102)).unwrap().member_users,
        vec![oid(1), oid(2), oid(3)]
    );
    assert_eq!(
        s.group(&oid(101)).unwrap().group_type(),
        GroupType::MailEnabledSecurity
    );
    assert_eq!(
        s.user(&oid(3)).unwrap().user_type,
        engine::model::UserType::Guest
    );
    assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
    assert!(
        loaded.problems[0].contains(&oid(901).to_string()),
        "the unknown member is reported"
    );
}

#[test]
fn every_bundled_tenant_fixture_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    for path in [
        root.join("demo/tenant.json"),
        root.join("tenants/graph-docs.json"),
    ] {
        let loaded = read_tenant(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!loaded.snapshot.users.is_empty());
    }
    let demo = read_tenant(&root.join("demo/tenant.json"))
        .unwrap()
        .snapshot;
    assert!(demo.users.len() >= 40 && demo.groups.len() >= 10);
    let types: std::collections::BTreeSet<_> = demo.groups.iter().map(|g| g.group_type()).collect();
    assert_eq!(types.len(), 4, "every group type is in the demo tenant");
    read_server_file(&root.join("demo/server.json")).unwrap();
}

#[test]
fn server_files_are_checked_and_written_atomically() {
    for (bytes, expect) in [
        (
            r#"{"users": [{"login": "a", "authType": "entra", "entraId": "00000000-0000-4000-8000-000000000001"}]}"#,
            "entraId is set but tenantId is missing",
        ),
        (
            r#"{"users": [{"login": "a", "authType": "local"}, {"login": "A", "authType": "local"}]}"#,
            "login \"A\" is used twice",
        ),
        (
            r#"{"users": [{"login": "a", "authType": "sso"}]}"#,
            "users[0].authType: unknown variant `sso`",
        ),
        (
            r#"{"users": [{"login": "a", "authType": "local", "colour": 1}]}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"groups": [{"name": "", "type": "x"}]}"#,
            "groups[0]: name is empty",
        ),
    ] {
        let msg = parse_server_state(bytes.as_bytes(), "s.json")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("s.json: ") && msg.contains(expect),
            "expected {expect:?} in {msg:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.json");
    let state = server(
        vec![local_user("a"), linked(&user(1, "b@x.com"))],
        vec![server_group("G", None, &["a"])],
    );
    write_server_file(&path, &state).unwrap();
    assert_eq!(read_server_file(&path).unwrap(), state);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left behind: {leftovers:?}"
    );
}

#[test]
fn a_mail_that_repeats_the_upn_is_kept_once() {
    let upn = "megan.bowen.of.the.long.name@contoso.example";
    let user = |id: u32, mail: &str| {
        format!(
            r#"{{"id": "00000000-0000-0000-0000-{id:012}", "userPrincipalName": "{upn}{id}", "mail": "{mail}", "userType": "Member", "accountEnabled": true}}"#
        )
    };
    let file = format!(
        r#"{{"tenantId": "{T}", "users": [{}, {}]}}"#,
        user(1, &format!("{upn}1")),
        user(2, "someone.else.with.a.long.mail@contoso.example")
    );
    let loaded = parse_tenant(file.as_bytes(), "t.json").unwrap();
    let [same, other] = &loaded.snapshot.users[..] else {
        panic!("two users")
    };
    let at = |s: &str| s.as_ptr();
    assert_eq!(
        same.mail.as_deref(),
        Some(same.user_principal_name.as_str())
    );
    assert_eq!(
        at(same.mail.as_deref().unwrap()),
        at(&same.user_principal_name),
        "a mail equal to the UPN shares its storage"
    );
    assert_eq!(
        other.mail.as_deref(),
        Some("someone.else.with.a.long.mail@contoso.example")
    );
}
