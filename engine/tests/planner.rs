//! The decision rules of docs/decisions.md, one case each: given a tenant and a server, when the admin
//! chooses, then these entries. `check` renders a plan compactly and compares it with the
//! expectation, so each case reads as the rule it tests.

use engine::event::{Action, ActionChosen, RunOptions};
use engine::model::{AuthType, Completeness, Kind, ServerState, TenantSnapshot, UserType};
use engine::plan::{plan, Plan, PlanInput};
use serde_json::Value;
use testkit::*;

fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render(plan: &Plan) -> String {
    let mut out = Vec::new();
    for e in &plan.entries {
        out.push(format!(
            "{} {} {}: {}",
            e.outcome.as_str(),
            e.kind.as_str(),
            e.name,
            e.detail
        ));
        for c in &e.changes {
            out.push(format!(
                "  {}: {} -> {}",
                c.field,
                render_value(&c.from),
                render_value(&c.to)
            ));
        }
    }
    if let Some(r) = &plan.refusal {
        out.push(format!("REFUSED {r:?}"));
    }
    out.join("\n")
}

struct Case {
    snapshot: TenantSnapshot,
    server: ServerState,
    choices: Vec<ActionChosen>,
    options: RunOptions,
    baseline: Option<engine::event::Baseline>,
    group_details: bool,
    unkept: Vec<String>,
    rules: u32,
}

impl Case {
    fn new(snapshot: TenantSnapshot, server: ServerState, choices: Vec<ActionChosen>) -> Self {
        Case {
            snapshot,
            server,
            choices,
            options: RunOptions::default(),
            baseline: None,
            group_details: true,
            unkept: Vec::new(),
            rules: engine::event::DECISION_RULES,
        }
    }
    fn check_deleted(mut self, max_deletions: u32) -> Self {
        self.options.check_deleted = true;
        self.options.max_deletions = max_deletions;
        self
    }
    fn plan(&self) -> Plan {
        let deleted = if self.options.check_deleted {
            engine::plan::find_deleted(&tenant(), &self.snapshot, &self.server)
        } else {
            Vec::new()
        };
        plan(PlanInput {
            tenant: &tenant(),
            snapshot: &self.snapshot,
            server: &self.server,
            deleted: &deleted,
            choices: &self.choices,
            options: &self.options,
            baseline: self.baseline.as_ref(),
            group_details: self.group_details,
            unkept: &self.unkept,
            rules: self.rules,
        })
    }
}

#[track_caller]
fn check(case: &Case, expect: &str) -> Plan {
    let plan = case.plan();
    let expect: Vec<&str> = expect.trim().lines().map(|l| l.trim_end()).collect();
    let expect: Vec<String> = expect
        .iter()
        .map(|l| {
            // Indentation in the test source is cosmetic, except the two spaces of a change.
            let t = l.trim_start();
            match t.strip_prefix('~') {
                Some(change) => format!("  {}", change.trim_start()),
                None => t.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        render(&plan),
        expect.join("\n"),
        "\n--- actual plan ---\n{}\n",
        render(&plan)
    );
    plan
}

/// Applies a plan's operations, as an import would.
fn applied(server: &ServerState, plan: &Plan) -> ServerState {
    let mut s = server.clone();
    for e in &plan.entries {
        if let Some(op) = &e.op {
            s.apply(op);
        }
    }
    s
}

#[test]
fn a_new_enabled_user_is_added_with_entra_authentication() {
    let ann = user(1, "ann@contoso.com");
    let case = Case::new(
        snapshot(vec![ann.clone()], vec![]),
        server(vec![], vec![]),
        vec![import(Kind::User, 1)],
    );
    let plan = check(
        &case,
        "added user Ann: login ann@contoso.com, authentication type Microsoft Entra ID",
    );
    let after = applied(&case.server, &plan);
    let stored = after.user("ANN@contoso.com").unwrap();
    assert_eq!(stored.auth_type, AuthType::Entra);
    assert_eq!(
        stored,
        &linked(&ann),
        "the Entra attributes are stored on the server user"
    );
}

#[test]
fn a_linked_user_is_updated_field_by_field_or_unchanged() {
    let ann = user(1, "ann@contoso.com");
    let ann_now = engine::model::EntraUser {
        department: Some("Sales".into()),
        job_title: Some("Rep".into()),
        ..ann.clone()
    };
    let case = Case::new(
        snapshot(vec![ann_now, user(2, "bob@contoso.com")], vec![]),
        server(
            vec![linked(&ann), linked(&user(2, "bob@contoso.com"))],
            vec![],
        ),
        vec![import(Kind::User, 1), import(Kind::User, 2)],
    );
    check(
        &case,
        "updated user Ann: login ann@contoso.com
           ~department: null -> Sales
           ~entra.jobTitle: null -> Rep
         unchanged user Bob: login bob@contoso.com; already up to date",
    );
}

#[test]
fn a_upn_rename_changes_the_login_and_follows_into_groups() {
    let old = user(1, "ann.old@contoso.com");
    let new = user(1, "ann@contoso.com");
    let case = Case::new(
        snapshot(vec![new], vec![]),
        server(
            vec![linked(&old)],
            vec![server_group("Local", None, &["ann.old@contoso.com"])],
        ),
        vec![import(Kind::User, 1)],
    );
    let plan = check(
        &case,
        "updated user Ann: login renamed from ann.old@contoso.com to ann@contoso.com
           ~login: ann.old@contoso.com -> ann@contoso.com
           ~displayName: Ann.old -> Ann
           ~email: ann.old@contoso.com -> ann@contoso.com",
    );
    let after = applied(&case.server, &plan);
    assert!(after.user("ann.old@contoso.com").is_none());
    assert_eq!(
        after.group("Local").unwrap().members,
        vec!["ann@contoso.com"]
    );
}

#[test]
fn renames_free_logins_and_names_before_new_objects_claim_them() {
    // Entra: "zed" took over ann's old login; the linked group "Ops" is now called "Sales" and
    // a new group is called "Ops". Linked objects are decided first, whatever the names' order.
    let case = Case::new(
        snapshot(
            vec![user(1, "ann@contoso.com"), user(2, "ann.old@contoso.com")],
            vec![group(100, "Ops", &[]), group(101, "Sales", &[])],
        ),
        server(
            vec![linked(&user(1, "ann.old@contoso.com"))],
            vec![server_group("Ops", Some((tenant(), 101)), &[])],
        ),
        vec![
            import(Kind::User, 1),
            import(Kind::User, 2),
            import(Kind::Group, 100),
            import(Kind::Group, 101),
        ],
    );
    check(
        &case,
        "updated user Ann: login renamed from ann.old@contoso.com to ann@contoso.com
           ~login: ann.old@contoso.com -> ann@contoso.com
           ~displayName: Ann.old -> Ann
           ~email: ann.old@contoso.com -> ann@contoso.com
         added user Ann.old: login ann.old@contoso.com, authentication type Microsoft Entra ID
         updated group Sales: Security Group, 0 members
           ~name: Ops -> Sales
         added group Ops: Security Group, 0 members",
    );
}

#[test]
fn a_rename_onto_a_taken_login_is_a_conflict() {
    let case = Case::new(
        snapshot(vec![user(1, "ann@contoso.com")], vec![]),
        server(
            vec![
                linked(&user(1, "ann.old@contoso.com")),
                local_user("ann@contoso.com"),
            ],
            vec![],
        ),
        vec![import(Kind::User, 1)],
    );
    check(
        &case,
        r#"conflict user Ann: renamed in Entra ID to "ann@contoso.com", but a local user with login "ann@contoso.com" exists and is not linked to Entra ID"#,
    );
}

#[test]
fn a_disabled_account_is_skipped_and_a_linked_one_is_disabled_with_it() {
    let off = engine::model::EntraUser {
        account_enabled: false,
        ..user(1, "ann@contoso.com")
    };
    let stale = engine::model::EntraUser {
        department: Some("Old".into()),
        ..user(2, "bob@contoso.com")
    };
    let bob_off = engine::model::EntraUser {
        account_enabled: false,
        ..user(2, "bob@contoso.com")
    };
    let mut case = Case::new(
        snapshot(vec![off, bob_off.clone()], vec![]),
        server(vec![linked(&stale)], vec![]),
        vec![import(Kind::User, 1), import(Kind::User, 2)],
    );
    // Not on the server: not imported. Linked: disabled, as every provisioning peer does (its
    // other fields brought up to date on the way).
    let plan = check(
        &case,
        "disabled user Bob: account disabled in Entra ID; disabled on the server (login bob@contoso.com)
           ~department: Old -> null
           ~enabled: true -> false
         skipped user Ann: account disabled in Entra ID",
    );
    let after = applied(&case.server, &plan);
    assert!(!after.user("bob@contoso.com").unwrap().enabled);
    // Then: nothing more to do while Entra keeps it disabled.
    case.server = after.clone();
    check(
        &case,
        "unchanged user Bob: login bob@contoso.com; account disabled in Entra ID, already disabled on the server
         skipped user Ann: account disabled in Entra ID",
    );
    // Enabled in Entra ID again: enabled here again.
    case.snapshot = snapshot(vec![user(2, "bob@contoso.com")], vec![]);
    case.choices = vec![import(Kind::User, 2)];
    let plan = check(
        &case,
        "updated user Bob: login bob@contoso.com
           ~enabled: false -> true",
    );
    assert!(
        applied(&case.server, &plan)
            .user("bob@contoso.com")
            .unwrap()
            .enabled
    );
    // Runs decided under the first rules (recorded before this one) decide as they did.
    case.rules = 1;
    case.snapshot = snapshot(vec![bob_off], vec![]);
    case.server = server(vec![linked(&stale)], vec![]);
    let plan = check(&case, "skipped user Bob: account disabled in Entra ID");
    assert!(plan.entries.iter().all(|e| e.op.is_none()));
}

#[test]
fn an_account_an_administrator_disabled_stays_disabled() {
    let ann = user(1, "ann@contoso.com");
    let mut held = linked(&ann);
    held.enabled = false;
    held.disabled_by = Some(engine::model::DisabledBy::Administrator);
    let renamed = engine::model::EntraUser {
        department: Some("Sales".into()),
        ..ann.clone()
    };
    let case = Case::new(
        snapshot(vec![ann], vec![]),
        server(vec![held.clone()], vec![]),
        vec![import(Kind::User, 1)],
    );
    check(
        &case,
        "unchanged user Ann: login ann@contoso.com; disabled on the server by an administrator, left disabled (`roster server enable` enables it)",
    );
    // Other changes still come; the account stays disabled.
    let case = Case::new(
        snapshot(vec![renamed], vec![]),
        server(vec![held], vec![]),
        vec![import(Kind::User, 1)],
    );
    let plan = check(
        &case,
        "updated user Ann: login ann@contoso.com; disabled on the server by an administrator, left disabled
           ~department: null -> Sales",
    );
    let after = applied(&case.server, &plan);
    let ann = after.user("ann@contoso.com").unwrap();
    assert!(!ann.enabled && ann.disabled_by.is_some());
}

#[test]
fn disables_that_follow_entra_count_against_max_deletions() {
    let users: Vec<_> = (1..=4)
        .map(|n| user(n, &format!("u{n}@contoso.com")))
        .collect();
    let off: Vec<_> = users
        .iter()
        .map(|u| engine::model::EntraUser {
            account_enabled: false,
            ..u.clone()
        })
        .collect();
    let case = Case::new(
        snapshot(off, vec![]),
        server(users.iter().map(linked).collect(), vec![]),
        (1..=4).map(|n| import(Kind::User, n)).collect(),
    )
    .check_deleted(3);
    let plan = case.plan();
    assert_eq!(
        plan.refusal,
        Some(engine::plan::Refusal::TooManyDeletions {
            planned: 4,
            limit: 3
        })
    );
}

#[test]
fn an_unlinked_server_user_with_the_same_login_is_a_conflict() {
    let mut windows = local_user("cy@contoso.com");
    windows.auth_type = AuthType::Windows;
    let mut foreign = linked(&user(9, "dee@contoso.com"));
    foreign.tenant_id = Some(other_tenant());
    let mut relinked = linked(&user(8, "eve@contoso.com"));
    relinked.entra_id = Some(oid(7));
    let case = Case::new(
        snapshot(
            vec![
                user(1, "bob@contoso.com"),
                user(2, "cy@contoso.com"),
                user(3, "dee@contoso.com"),
                user(4, "eve@contoso.com"),
            ],
            vec![],
        ),
        server(
            vec![local_user("BOB@contoso.com"), windows, foreign, relinked],
            vec![],
        ),
        vec![
            import(Kind::User, 1),
            import(Kind::User, 2),
            import(Kind::User, 3),
            import(Kind::User, 4),
        ],
    );
    let plan = check(
        &case,
        r#"conflict user Bob: a local user with login "BOB@contoso.com" exists and is not linked to Entra ID
           conflict user Cy: an Active Directory (Windows) user with login "cy@contoso.com" exists and is not linked to Entra ID
           conflict user Dee: login "dee@contoso.com" belongs to an object imported from another organization (tenant 22222222-2222-4222-8222-222222222222); it is never touched
           conflict user Eve: login "eve@contoso.com" is linked to another Entra object (00000000-0000-4000-8000-000000000007)"#,
    );
    assert!(plan.entries.iter().all(|e| e.op.is_none()));
}

#[test]
fn a_group_imports_its_transitive_member_users_and_records_membership() {
    let off = engine::model::EntraUser {
        account_enabled: false,
        ..user(3, "cy@contoso.com")
    };
    let case = Case::new(
        snapshot(
            vec![
                user(1, "ann@contoso.com"),
                user(2, "bob@contoso.com"),
                off,
                user(4, "dee@contoso.com"),
            ],
            vec![group(100, "Eng", &[1, 2, 3, 4])],
        ),
        server(vec![local_user("dee@contoso.com")], vec![]),
        vec![import(Kind::Group, 100), import(Kind::User, 1)],
    );
    let plan = check(
        &case,
        r#"added user Ann: login ann@contoso.com, authentication type Microsoft Entra ID
           added user Bob: login bob@contoso.com, authentication type Microsoft Entra ID
           skipped user Cy: account disabled in Entra ID
           conflict user Dee: a local user with login "dee@contoso.com" exists and is not linked to Entra ID
           added group Eng: Security Group, 2 members"#,
    );
    let after = applied(&case.server, &plan);
    let eng = after.group("eng").unwrap();
    assert_eq!(eng.members, vec!["ann@contoso.com", "bob@contoso.com"]);
    assert_eq!(eng.entra_id, Some(oid(100)));
}

#[test]
fn a_linked_group_is_updated_and_a_local_group_of_the_same_name_conflicts() {
    let mut m365 = group(101, "All", &[1]);
    m365.group_types = vec!["Unified".into()];
    m365.mail_enabled = true;
    m365.description = Some("Everyone".into());
    let case = Case::new(
        snapshot(
            vec![user(1, "ann@contoso.com")],
            vec![group(100, "Eng", &[1]), m365],
        ),
        server(
            vec![linked(&user(1, "ann@contoso.com"))],
            vec![
                server_group("Eng", None, &[]),
                server_group("Everyone-old", Some((tenant(), 101)), &[]),
            ],
        ),
        vec![import(Kind::Group, 100), import(Kind::Group, 101)],
    );
    check(
        &case,
        r#"unchanged user Ann: login ann@contoso.com; already up to date
           updated group All: M365 Group, 1 member
             ~name: Everyone-old -> All
             ~description: null -> Everyone
             ~type: Security Group -> M365 Group
             ~members: [] -> ["ann@contoso.com"]
           conflict group Eng: group name "Eng" exists on the server and is not linked to Entra ID"#,
    );
}

/// Against a server that keeps no group description or type (a SCIM service), they are
/// neither compared nor written: only the name, the link and the members decide.
#[test]
fn a_server_without_group_details_compares_and_writes_none() {
    let mut all = group(101, "All", &[1]);
    all.group_types = vec!["Unified".into()];
    all.mail_enabled = true;
    all.description = Some("Everyone".into());
    let mut held = server_group("All", Some((tenant(), 101)), &["ann@contoso.com"]);
    held.description = None;
    held.group_type = String::new().into();
    let mut case = Case::new(
        snapshot(
            vec![user(1, "ann@contoso.com")],
            vec![all, group(100, "Eng", &[1])],
        ),
        server(vec![linked(&user(1, "ann@contoso.com"))], vec![held]),
        vec![import(Kind::Group, 100), import(Kind::Group, 101)],
    );
    case.group_details = false;
    let plan = check(
        &case,
        r#"unchanged user Ann: login ann@contoso.com; already up to date
           unchanged group All: M365 Group, 1 member; already up to date
           added group Eng: Security Group, 1 member"#,
    );
    let after = applied(&case.server, &plan);
    let eng = after.group("Eng").unwrap();
    assert_eq!(
        (eng.description.as_deref(), eng.group_type.as_str()),
        (None, "")
    );
    // The same server, where group details are kept, is updated.
    case.group_details = true;
    assert_eq!(
        case.plan().entries[1].outcome,
        engine::event::Outcome::Updated
    );
}

/// Against a server that does not keep some of a user's attributes (a SCIM service that
/// drops `title` and the enterprise extension), they are neither compared nor written: a user
/// whose Entra title and department the server never holds is up to date, and a new one is
/// written without them.
#[test]
fn attributes_the_server_does_not_keep_are_neither_compared_nor_written() {
    let mut ann = user(1, "ann@contoso.com");
    ann.job_title = Some("Engineer".into());
    ann.department = Some("Sales".into());
    let mut bob = user(2, "bob@contoso.com");
    bob.job_title = Some("Buyer".into());
    let unkept = vec!["title".to_owned(), "department".to_owned()];
    let held = linked(&ann).without(&unkept);
    let mut case = Case::new(
        snapshot(vec![ann, bob], vec![]),
        server(vec![held], vec![]),
        vec![import(Kind::User, 1), import(Kind::User, 2)],
    );
    case.unkept = unkept;
    let plan = check(
        &case,
        r#"unchanged user Ann: login ann@contoso.com; already up to date
           added user Bob: login bob@contoso.com, authentication type Microsoft Entra ID"#,
    );
    let after = applied(&case.server, &plan);
    let bob = after.user("bob@contoso.com").unwrap();
    assert_eq!(bob.entra.as_ref().unwrap().job_title, None);
    // Where the server keeps them, Ann is updated.
    case.unkept.clear();
    assert_eq!(
        case.plan().entries[0].outcome,
        engine::event::Outcome::Updated
    );
}

#[test]
fn deleted_objects_need_evidence_and_are_ignored_by_default() {
    let mut snap = snapshot(vec![user(1, "ann@contoso.com")], vec![]);
    snap.deleted_users = vec![deleted_item(2, "Bob")];
    let mut foreign = linked(&user(3, "cy@contoso.com"));
    foreign.tenant_id = Some(other_tenant());
    let case = Case::new(
        snap,
        server(
            vec![
                linked(&user(1, "ann@contoso.com")),
                linked(&user(2, "bob@contoso.com")),
                foreign,
                linked(&user(4, "dee@contoso.com")),
                local_user("eve@contoso.com"),
            ],
            vec![server_group("Gone", Some((tenant(), 100)), &[])],
        ),
        vec![],
    )
    .check_deleted(50);
    let plan = check(
        &case,
        "ignored user Bob: in the Entra ID recycle bin since 2026-11-01; left as is
         ignored user Dee: no longer in Entra ID; left as is
         ignored group Gone: no longer in Entra ID; left as is",
    );
    assert_eq!(
        plan.deleted.len(),
        3,
        "the other tenant's and local users are never deleted objects"
    );
}

#[test]
fn an_incomplete_listing_never_yields_missing_evidence() {
    let mut snap = snapshot(vec![], vec![]);
    snap.completeness = Completeness {
        users: false,
        groups: false,
        deleted_items: true,
    };
    snap.deleted_users = vec![deleted_item(2, "Bob")];
    let case = Case::new(
        snap,
        server(
            vec![
                linked(&user(2, "bob@contoso.com")),
                linked(&user(4, "dee@contoso.com")),
            ],
            vec![server_group("Gone", Some((tenant(), 100)), &[])],
        ),
        vec![
            choose(Kind::User, 2, Action::Delete),
            choose(Kind::User, 4, Action::Delete),
            choose(Kind::Group, 100, Action::Delete),
        ],
    )
    .check_deleted(50);
    check(
        &case,
        "deleted user Bob: in the Entra ID recycle bin since 2026-11-01; removed from the server",
    );
}

#[test]
fn disable_is_reversible_and_delete_frees_the_login() {
    let mut snap = snapshot(vec![user(5, "bob@contoso.com")], vec![]);
    snap.deleted_users = vec![deleted_item(2, "Bob"), deleted_item(3, "Cy")];
    let mut cy = linked(&user(3, "cy@contoso.com"));
    cy.enabled = false;
    let case = Case::new(
        snap,
        server(
            vec![linked(&user(2, "bob@contoso.com")), cy],
            vec![server_group("G", None, &["bob@contoso.com"])],
        ),
        vec![
            choose(Kind::User, 2, Action::Delete),
            choose(Kind::User, 3, Action::Disable),
            import(Kind::User, 5),
        ],
    )
    .check_deleted(50);
    let plan = check(
        &case,
        "deleted user Bob: in the Entra ID recycle bin since 2026-11-01; removed from the server
         unchanged user Cy: in the Entra ID recycle bin since 2026-11-01; already disabled
         added user Bob: login bob@contoso.com, authentication type Microsoft Entra ID",
    );
    let after = applied(&case.server, &plan);
    assert_eq!(
        after.user("bob@contoso.com").unwrap().entra_id,
        Some(oid(5))
    );
    assert!(
        after.group("G").unwrap().members.is_empty(),
        "a deleted user leaves its groups"
    );

    // A disabled user whose Entra account is active again is re-enabled by importing it.
    let mut dee = linked(&user(4, "dee@contoso.com"));
    dee.enabled = false;
    let case = Case::new(
        snapshot(vec![user(4, "dee@contoso.com")], vec![]),
        server(vec![dee], vec![]),
        vec![import(Kind::User, 4)],
    );
    check(
        &case,
        "updated user Dee: login dee@contoso.com\n~enabled: false -> true",
    );
}

#[test]
fn more_removals_than_max_deletions_are_refused() {
    let mut snap = snapshot(vec![user(9, "zed@contoso.com")], vec![]);
    snap.deleted_users = vec![deleted_item(1, "A"), deleted_item(2, "B")];
    let server = server(
        vec![
            linked(&user(1, "a@contoso.com")),
            linked(&user(2, "b@contoso.com")),
            linked(&user(3, "c@contoso.com")),
        ],
        vec![],
    );
    let choices = vec![
        choose(Kind::User, 1, Action::Disable),
        choose(Kind::User, 2, Action::Delete),
        choose(Kind::User, 3, Action::Ignore),
    ];
    let at_limit = Case::new(snap.clone(), server.clone(), choices.clone()).check_deleted(2);
    assert_eq!(
        at_limit.plan().refusal,
        None,
        "disables and deletes together, up to the limit, pass"
    );
    let over = Case::new(snap, server, choices).check_deleted(1);
    assert_eq!(
        over.plan().refusal,
        Some(engine::plan::Refusal::TooManyDeletions {
            planned: 2,
            limit: 1
        })
    );
}

#[test]
fn an_empty_tenant_with_linked_users_is_refused_unless_allowed() {
    let mut case = Case::new(
        snapshot(vec![], vec![]),
        server(vec![linked(&user(1, "a@contoso.com"))], vec![]),
        vec![],
    )
    .check_deleted(50);
    assert_eq!(
        case.plan().refusal,
        Some(engine::plan::Refusal::EmptySource { linked: 1 })
    );
    case.options.allow_empty_source = true;
    assert_eq!(case.plan().refusal, None);
}

#[test]
fn an_empty_group_listing_that_would_remove_linked_groups_is_refused_unless_allowed() {
    let mut case = Case::new(
        snapshot(vec![user(1, "a@contoso.com")], vec![]),
        server(
            vec![linked(&user(1, "a@contoso.com"))],
            vec![server_group("Eng", Some((tenant(), 100)), &[])],
        ),
        vec![choose(Kind::Group, 100, Action::Delete)],
    )
    .check_deleted(50);
    assert_eq!(
        case.plan().refusal,
        Some(engine::plan::Refusal::NoGroups { linked: 1 })
    );
    case.options.allow_empty_source = true;
    assert_eq!(case.plan().refusal, None);
    // A tenant without groups whose linked group is left as is risks nothing.
    case.options.allow_empty_source = false;
    case.choices = vec![choose(Kind::Group, 100, Action::Ignore)];
    assert_eq!(case.plan().refusal, None);
}

/// A listing under half of the org's last complete read, on a run that would disable or
/// delete, is refused like an empty one; a run that removes nothing, a small tenant, or an
/// admin who says so goes ahead.
#[test]
fn a_listing_that_shrank_to_under_half_is_refused_when_it_would_remove() {
    use engine::event::{Baseline, Listed};
    let users: Vec<_> = (1..=30)
        .map(|n| user(n, &format!("u{n}@contoso.com")))
        .collect();
    let kept = users[..14].to_vec();
    let srv = server(users.iter().map(linked).collect(), vec![]);
    let disable_all: Vec<ActionChosen> = (15..=30)
        .map(|n| choose(Kind::User, n, Action::Disable))
        .collect();
    let baseline = |users: u32| Baseline {
        run: engine::RunId::new("2026-11-26T08:00:00Z".parse().unwrap(), [6; 10]),
        listed: Listed { users, groups: 0 },
    };
    let mut case =
        Case::new(snapshot(kept.clone(), vec![]), srv.clone(), disable_all).check_deleted(50);
    case.baseline = Some(baseline(30));
    assert_eq!(
        case.plan().refusal,
        Some(engine::plan::Refusal::ShrunkListing {
            kind: Kind::User,
            now: 14,
            before: 30,
            run: baseline(30).run,
            removals: 16,
        })
    );
    let message = case.plan().refusal.unwrap().to_string();
    assert!(
        message.contains("listed 14 users, under half of the 30")
            && message.contains("--allow-empty-source"),
        "{message}"
    );
    // Half or more: not suspect.
    case.baseline = Some(baseline(28));
    assert_eq!(case.plan().refusal, None);
    // A small tenant's last read says nothing.
    case.baseline = Some(baseline(19));
    case.snapshot = snapshot(kept[..9].to_vec(), vec![]);
    assert_eq!(case.plan().refusal, None);
    // Without removals (ignore), nothing is at risk.
    let mut ignoring = Case::new(snapshot(kept, vec![]), srv, vec![]).check_deleted(50);
    ignoring.baseline = Some(baseline(30));
    assert_eq!(ignoring.plan().refusal, None);
    // The admin who means it.
    case.baseline = Some(baseline(30));
    case.snapshot = snapshot(users[..14].to_vec(), vec![]);
    case.options.allow_empty_source = true;
    assert_eq!(case.plan().refusal, None);
}

#[test]
fn a_second_identical_run_changes_nothing() {
    let guest = engine::model::EntraUser {
        user_type: UserType::Guest,
        ..user(3, "g_x.com#EXT#@contoso.onmicrosoft.com")
    };
    let mut snap = snapshot(
        vec![
            user(1, "ann@contoso.com"),
            user(2, "bob@contoso.com"),
            guest,
        ],
        vec![group(100, "Eng", &[1, 2, 3])],
    );
    snap.deleted_users = vec![deleted_item(4, "Dee")];
    let case = Case::new(
        snap,
        server(
            vec![
                linked(&user(4, "dee@contoso.com")),
                linked(&user(1, "ann.old@contoso.com")),
            ],
            vec![],
        ),
        vec![
            import(Kind::Group, 100),
            choose(Kind::User, 4, Action::Disable),
        ],
    )
    .check_deleted(50);
    let first = case.plan();
    let again = Case {
        server: applied(&case.server, &first),
        ..case
    };
    check(
        &again,
        "unchanged user Dee: in the Entra ID recycle bin since 2026-11-01; already disabled
         unchanged user Ann: login ann@contoso.com; already up to date
         unchanged user Bob: login bob@contoso.com; already up to date
         unchanged user G_x.com#EXT#: login g_x.com#EXT#@contoso.onmicrosoft.com; already up to date
         unchanged group Eng: Security Group, 3 members; already up to date",
    );
}

/// A refusal counts in words that agree with the number.
#[test]
fn a_stale_plan_counts_its_entries_in_words() {
    let stale = |differences| {
        engine::plan::Refusal::StalePlan {
            reviewed: engine::RunId(uuid::Uuid::nil()),
            differences,
        }
        .to_string()
    };
    assert!(stale(1).contains("1 entry would now be decided differently"));
    assert!(stale(7).contains("7 entries would now be decided differently"));
}
