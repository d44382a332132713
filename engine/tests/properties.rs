//! Properties the design promises of the planner, over random small worlds where logins,
//! names and ids collide (see `testkit::arb_world`).

use std::collections::BTreeSet;

use engine::event::Outcome;
use engine::model::{Kind, ServerOp, ServerState};
use engine::plan::{plan, Plan, PlanInput};
use proptest::prelude::*;
use testkit::{arb_world, tenant, World};

fn decide(w: &World, server: &ServerState) -> Plan {
    let deleted = if w.options.check_deleted {
        engine::plan::find_deleted(&tenant(), &w.snapshot, server)
    } else {
        Vec::new()
    };
    plan(PlanInput {
        tenant: &tenant(),
        snapshot: &w.snapshot,
        server,
        deleted: &deleted,
        choices: &w.choices,
        options: &w.options,
        baseline: None,
        group_details: true,
        unkept: &[],
        rules: engine::event::DECISION_RULES,
    })
}

fn apply(server: &ServerState, plan: &Plan) -> ServerState {
    let mut s = server.clone();
    for e in &plan.entries {
        if let Some(op) = &e.op {
            s.apply(op);
        }
    }
    s
}

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    /// The one-pass digests hash the very bytes the fingerprint, the inputs digest and each
    /// object's digest hash on their own.
    #[test]
    fn the_inputs_digested_in_one_pass_are_the_digests_one_by_one(w in arb_world()) {
        use engine::chain::{digest_inputs, inputs_digest, object_digest};
        let selection = engine::event::SelectionSpec { search: Some("ann".into()), ..Default::default() };
        let fingerprint = w.snapshot.fingerprint();
        for per_object in [false, true] {
            let d = digest_inputs(&w.snapshot, &w.server, &selection, &w.options, per_object);
            prop_assert_eq!(&d.fingerprint, &fingerprint);
            prop_assert_eq!(
                &d.inputs,
                &inputs_digest(&w.snapshot, &fingerprint, &w.server, &selection, &w.options)
            );
            prop_assert_eq!(d.object_digests().is_some(), per_object);
            if let Some([users, groups, deleted_users, deleted_groups, server_users, server_groups]) =
                d.object_digests()
            {
                let each = |v: Vec<[u8; 16]>| v;
                prop_assert_eq!(users.to_vec(), each(w.snapshot.users.iter().map(object_digest).collect()));
                prop_assert_eq!(groups.to_vec(), each(w.snapshot.groups.iter().map(object_digest).collect()));
                prop_assert_eq!(deleted_users.to_vec(), each(w.snapshot.deleted_users.iter().map(object_digest).collect()));
                prop_assert_eq!(deleted_groups.to_vec(), each(w.snapshot.deleted_groups.iter().map(object_digest).collect()));
                prop_assert_eq!(server_users.to_vec(), each(w.server.users().map(object_digest).collect()));
                prop_assert_eq!(server_groups.to_vec(), each(w.server.groups().map(object_digest).collect()));
            }
        }
    }

    /// Random tenants never make the planner panic, and it decides the same way every time.
    #[test]
    fn the_planner_is_deterministic(w in arb_world()) {
        prop_assert_eq!(decide(&w, &w.server), decide(&w, &w.server));
    }

    /// Nothing is disabled or deleted without evidence from this run: `ObjectDeleted` (the
    /// object is gone from Entra ID), or — for a linked user — its Entra account read as
    /// disabled.
    #[test]
    fn no_removal_without_evidence(w in arb_world()) {
        let p = decide(&w, &w.server);
        let evidence: BTreeSet<(Kind, String)> = p.deleted.iter().map(|d| (d.kind, d.id.to_string())).collect();
        for e in &p.entries {
            let removes = matches!(
                e.op,
                Some(ServerOp::RemoveUser { .. } | ServerOp::RemoveGroup { .. })
                    | Some(ServerOp::SetUserEnabled { enabled: false, .. } | ServerOp::SetGroupEnabled { enabled: false, .. })
            ) || matches!(&e.op, Some(ServerOp::PutUser { user, .. }) if !user.enabled);
            if removes || matches!(e.outcome, Outcome::Disabled | Outcome::Deleted) {
                let disabled_in_entra = e.kind == Kind::User
                    && w.snapshot.user(&e.id).is_some_and(|u| !u.account_enabled);
                let held = matches!(&e.op, Some(ServerOp::PutUser { user, .. })
                    if user.disabled_by.is_some()
                        && w.server.user(&user.login).is_some_and(|old| !old.enabled));
                prop_assert!(
                    disabled_in_entra || held || (w.options.check_deleted && evidence.contains(&(e.kind, e.id.to_string()))),
                    "{:?} without evidence", e
                );
            }
        }
    }

    /// Objects of other tenants, and local users, are never changed.
    #[test]
    fn foreign_and_local_objects_are_never_touched(w in arb_world()) {
        let p = decide(&w, &w.server);
        let after = apply(&w.server, &p);
        for u in w.server.users().filter(|u| u.linked_to(&tenant()).is_none()) {
            prop_assert_eq!(after.user(&u.login), Some(u));
        }
        for g in w.server.groups().filter(|g| g.linked_to(&tenant()).is_none()) {
            let now = after.group(&g.name);
            prop_assert!(now.is_some());
            let now = now.unwrap();
            prop_assert_eq!((&now.name, &now.description, &now.group_type, &now.entra_id, &now.tenant_id, now.enabled),
                            (&g.name, &g.description, &g.group_type, &g.entra_id, &g.tenant_id, g.enabled));
        }
    }

    /// Each chosen object is one entry, once.
    #[test]
    fn every_entry_appears_once(w in arb_world()) {
        let p = decide(&w, &w.server);
        let mut seen = BTreeSet::new();
        for e in &p.entries {
            prop_assert!(seen.insert((e.kind, e.id.to_string())), "{:?} twice", e);
        }
    }

    /// Re-running the same import never adds, disables or deletes a second time.
    #[test]
    fn a_second_identical_import_adds_nothing(w in arb_world()) {
        let first = decide(&w, &w.server);
        prop_assume!(first.refusal.is_none());
        let server = apply(&w.server, &first);
        let second = decide(&w, &server);
        for e in &second.entries {
            prop_assert!(
                !matches!(e.outcome, Outcome::Added | Outcome::Disabled | Outcome::Deleted),
                "second run: {:?}", e
            );
        }
    }
}
