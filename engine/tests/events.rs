//! The stored form of every event variant, as reviewed snapshots: any change to what is
//! persisted shows up in review. Plus the envelope's round trip and hash chain.

use chrono::{DateTime, Utc};
use engine::event::*;
use engine::model::{Completeness, Kind, ServerOp};
use engine::{RunId, Seq};
use serde_json::{json, Value};
use testkit::*;

fn run() -> RunId {
    "01a21bb4-dbff-71f7-8fb2-6a1a96d511a2".parse().unwrap()
}

fn time() -> DateTime<Utc> {
    "2026-11-27T06:32:47.123456Z".parse().unwrap()
}

fn stored(event: &Event) -> Value {
    serde_json::from_slice(&encode_record(Seq(7), run(), &time(), event)).unwrap()
}

fn entry(outcome: Outcome) -> EntryOutcome {
    EntryOutcome {
        kind: Kind::User,
        id: oid(1),
        name: "Ann".into(),
        outcome,
        detail: "login ann@contoso.com".into(),
        reason: None,
        changes: vec![Change {
            field: "department".into(),
            from: Value::Null,
            to: json!("Sales"),
        }],
        op: Some(ServerOp::PutUser {
            previous_login: Some("ann.old@contoso.com".into()),
            user: std::sync::Arc::new(linked(&user(1, "ann@contoso.com"))),
        }),
    }
}

fn every_variant() -> Vec<(&'static str, Event)> {
    let deleted = ObjectDeleted {
        kind: Kind::User,
        id: oid(2),
        name: "Bob".into(),
        server_key: "bob@contoso.com".into(),
        evidence: Evidence::SoftDeleted,
        deleted_at: Some("2026-11-01T10:00:00Z".parse().unwrap()),
    };
    vec![
        (
            "run_started",
            Event::RunStarted(RunStarted {
                org: "contoso".into(),
                tenant_id: tenant(),
                mode: Mode::Apply,
                started_by: "admin".into(),
                engine_version: "0.1.0".into(),
                source: SourceInfo {
                    kind: SourceKind::Fixture,
                    location: "/fixtures/demo/tenant.json".into(),
                    fingerprint: "ab".repeat(32),
                    completeness: Completeness::COMPLETE,
                    problems: vec!["group X: member Y ignored".into()],
                    listed: Some(Listed {
                        users: 46,
                        groups: 15,
                    }),
                    delta_links: Some(DeltaLinks {
                        users: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=u1".into(),
                        groups: "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=g1".into(),
                    }),
                    changes_since: Some(RunId(uuid::Uuid::nil())),
                    signed_in_as: Some("admin@contoso.com".into()),
                    content: Some("cd".repeat(32)),
                },
                target: TargetInfo::Embedded,
                selection: SelectionSpec {
                    select: vec!["ann@contoso.com".into()],
                    select_all: false,
                    search: Some("sales".into()),
                    invert: false,
                },
                options: RunOptions {
                    check_deleted: true,
                    on_deleted: DeletedAction::Disable,
                    actions: vec![ActionOverride {
                        target: "bob@contoso.com".into(),
                        action: DeletedAction::Delete,
                    }],
                    max_deletions: 50,
                    allow_empty_source: false,
                    leave_out: Vec::new(),
                },
                applied_from: None,
                baseline: Some(Baseline {
                    run: RunId::new("2026-11-26T08:00:00Z".parse().unwrap(), [6; 10]),
                    listed: Listed {
                        users: 45,
                        groups: 15,
                    },
                }),
                base: Some(RunId::new("2026-11-26T09:00:00Z".parse().unwrap(), [8; 10])),
                inputs_digest: Some("ef".repeat(32)),
                rules: engine::event::DECISION_RULES,
                approved: None,
            }),
        ),
        (
            "user_seen_entra",
            Event::UserSeen(UserSeen::Entra {
                user: user(1, "ann@contoso.com"),
            }),
        ),
        (
            "user_seen_deleted_items",
            Event::UserSeen(UserSeen::DeletedItems {
                user: deleted_item(2, "Bob"),
            }),
        ),
        (
            "user_seen_server",
            Event::UserSeen(UserSeen::Server {
                user: linked(&user(1, "ann@contoso.com")),
            }),
        ),
        (
            "group_seen_entra",
            Event::GroupSeen(GroupSeen::Entra {
                group: group(100, "Eng", &[1]),
            }),
        ),
        (
            "group_seen_deleted_items",
            Event::GroupSeen(GroupSeen::DeletedItems {
                group: deleted_item(101, "Old"),
            }),
        ),
        (
            "group_seen_server",
            Event::GroupSeen(GroupSeen::Server {
                group: server_group("Eng", Some((tenant(), 100)), &["ann@contoso.com"]),
            }),
        ),
        ("object_deleted", Event::ObjectDeleted(deleted)),
        (
            "object_unlisted",
            Event::ObjectUnlisted(ObjectUnlisted {
                source: Listing::Entra,
                kind: Kind::User,
                key: oid(5).to_string(),
            }),
        ),
        (
            "object_unlisted_server",
            Event::ObjectUnlisted(ObjectUnlisted {
                source: Listing::Server,
                kind: Kind::Group,
                key: "Eng".into(),
            }),
        ),
        (
            "choice_withdrawn",
            Event::ChoiceWithdrawn(Withdrawn {
                kind: Kind::User,
                id: oid(6),
            }),
        ),
        (
            "deletion_withdrawn",
            Event::DeletionWithdrawn(Withdrawn {
                kind: Kind::Group,
                id: oid(7),
            }),
        ),
        (
            "action_chosen",
            Event::ActionChosen(choose(Kind::User, 2, Action::Disable)),
        ),
        (
            "planned",
            Event::Planned(EntryOutcome {
                outcome: Outcome::Conflict,
                detail: "a local user with login \"ann@contoso.com\" exists and is not linked to Entra ID".into(),
                reason: Some(Reason::LocalUser),
                changes: vec![],
                op: None,
                ..entry(Outcome::Conflict)
            }),
        ),
        ("imported", Event::Imported(entry(Outcome::Updated))),
        (
            "change_intended",
            Event::ChangeIntended(entry(Outcome::Added)),
        ),
        (
            "server_write_intended",
            Event::ServerWriteIntended(ServerWriteIntended {
                path: "/srv/server.json".into(),
                before: "ab".repeat(32),
                after: "cd".repeat(32),
                changes: 1,
            }),
        ),
        (
            "log_repaired",
            Event::LogRepaired(LogRepaired {
                run: RunId::new("2026-11-27T08:00:00Z".parse().unwrap(), [7; 10]),
                cut_from: Seq(40961),
                events_cut: 3072,
                reason: "chunk 40961 is indexed for run 01a2... but missing".into(),
                server_rebuilt: true,
            }),
        ),
        (
            "server_edited",
            Event::ServerEdited(engine::event::ServerEdited {
                by: "root (uid 0)".into(),
                action: "disable ann@contoso.com".into(),
                op: engine::model::ServerOp::PutUser {
                    previous_login: None,
                    user: std::sync::Arc::new(engine::model::ServerUser {
                        enabled: false,
                        disabled_by: Some(engine::model::DisabledBy::Administrator),
                        ..testkit::linked(&user(1, "ann@contoso.com"))
                    }),
                },
                changes: vec![engine::event::Change {
                    field: "enabled".into(),
                    from: true.into(),
                    to: false.into(),
                }],
                server_digest: Some("ab".repeat(32)),
            }),
        ),
        (
            "server_loaded",
            Event::ServerLoaded(engine::event::ServerLoaded {
                by: "root (uid 0)".into(),
                file: "fixtures/demo/server.json".into(),
                users: 12,
                groups: 6,
                server_digest: "cd".repeat(32),
            }),
        ),
        (
            "backup_taken",
            Event::BackupTaken(engine::event::BackupTaken {
                by: "root (uid 0)".into(),
                orgs: 1,
                server_users: 12,
                server_groups: 6,
                contents_digest: "ef".repeat(32),
            }),
        ),
        (
            "problem_acknowledged",
            Event::ProblemAcknowledged(engine::event::ProblemAcknowledged {
                org: "contoso".into(),
                kind: Kind::User,
                id: oid(9),
                name: "Alice".into(),
                outcome: Outcome::Conflict,
                detail: "login alice is taken by a local user".into(),
                run: run(),
                by: "root (uid 0)".into(),
                note: Some("AD account, kept by hand".into()),
            }),
        ),
        (
            "acknowledgement_withdrawn",
            Event::AcknowledgementWithdrawn(engine::event::AcknowledgementWithdrawn {
                org: "contoso".into(),
                kind: Kind::User,
                id: oid(9),
                name: "Alice".into(),
                by: "root (uid 0)".into(),
            }),
        ),
        (
            "run_finished",
            Event::RunFinished(RunFinished {
                status: RunStatus::Completed,
                summary: Summary {
                    added: 3,
                    updated: 1,
                    ..Summary::default()
                },
                reason: None, learned: Vec::new() }),
        ),
    ]
}

#[test]
fn stored_json_of_every_variant() {
    for (name, event) in every_variant() {
        insta::assert_json_snapshot!(name, stored(&event));
    }
}

#[test]
fn records_round_trip() {
    for (name, event) in every_variant() {
        let bytes = encode_record(Seq(7), run(), &time(), &event);
        let env = decode_record(&bytes, Hash::GENESIS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (env.seq, env.run, env.time, env.version),
            (Seq(7), run(), time(), EVENT_VERSION)
        );
        assert_eq!(env.event, event, "{name}");
    }
}

/// Records of the types a run holds by the thousand decode by their type, skipping serde's
/// buffering of tagged enums; that path must give exactly what the general decoder gives.
#[test]
fn the_fast_decoding_path_agrees_with_the_general_one() {
    let hot = [
        "UserSeen",
        "GroupSeen",
        "ObjectDeleted",
        "ActionChosen",
        "Planned",
        "Imported",
    ];
    for (name, event) in every_variant() {
        let bytes = encode_record(Seq(7), run(), &time(), &event);
        let general = decode_record_general(&bytes, Hash::GENESIS).unwrap();
        match decode_current_by_type(&bytes, Hash::GENESIS) {
            Some(fast) => assert_eq!(fast, general, "{name}"),
            None => assert!(
                !hot.contains(&event.type_name()),
                "{name} took the slow path"
            ),
        }
        // Bytes the fast path cannot read whole fall back, and are judged by the general one.
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b" ");
        assert!(
            decode_current_by_type(&trailing, Hash::GENESIS).is_none(),
            "{name}"
        );
        let mut extra = bytes[..bytes.len() - 1].to_vec();
        extra.extend_from_slice(br#","extra":1}"#);
        assert!(
            decode_current_by_type(&extra, Hash::GENESIS).is_none(),
            "{name}"
        );
        assert_eq!(
            decode_record(&extra, Hash::GENESIS).ok(),
            decode_record_general(&extra, Hash::GENESIS).ok(),
            "{name}"
        );
    }
}

/// Records the fast path once accepted while the general decoder refused them (found by the
/// `event` fuzz target): they must decode exactly as the general decoder says.
#[test]
fn records_json_refuses_are_refused_by_both_paths() {
    let (_, group) = every_variant()
        .into_iter()
        .find(|(name, _)| *name == "group_seen_entra")
        .unwrap();
    let good = String::from_utf8(encode_record(Seq(7), run(), &time(), &group)).unwrap();
    let cases = [
        // A raw tab inside the time: not JSON, though the date parser would skip it.
        good.replacen("T06:", "T06:\t", 1),
        // A leading zero: not a JSON number.
        good.replacen(r#"{"seq":7"#, r#"{"seq":07"#, 1),
        // A second "type" key: the general decoder refuses a duplicate tag.
        good.replacen(
            r#""type":"GroupSeen","#,
            r#""type":"GroupSeen","type":"UserSeen","#,
            1,
        ),
    ];
    for case in cases {
        assert_ne!(case, good, "the case changes the record");
        assert_eq!(
            decode_record(case.as_bytes(), Hash::GENESIS).ok(),
            decode_record_general(case.as_bytes(), Hash::GENESIS).ok(),
            "{case}"
        );
        assert!(
            decode_current_by_type(case.as_bytes(), Hash::GENESIS).is_none(),
            "{case}"
        );
    }
}

/// Layouts `encode_record` never writes, but a hand-edited log might hold: whichever path
/// takes them, they decode exactly as the general decoder says.
#[test]
fn unusual_layouts_decode_as_the_general_decoder_says() {
    let events: std::collections::HashMap<_, _> = every_variant().into_iter().collect();
    let record = |name: &str| {
        String::from_utf8(encode_record(Seq(7), run(), &time(), &events[name])).unwrap()
    };
    let (user, group, imported) = (
        record("user_seen_server"),
        record("group_seen_entra"),
        record("imported"),
    );
    let cases = [
        // A second "type", last, or spelled with an escape.
        imported.replacen(
            r#""type":"Imported","#,
            r#""type":"Imported","type":"Planned","#,
            1,
        ),
        format!(
            "{}{}",
            &imported[..imported.len() - 2],
            r#","type":"Planned"}}"#
        ),
        format!(
            "{}{}",
            &imported[..imported.len() - 2],
            r#","\u0074ype":"Planned"}}"#
        ),
        user.replacen(r#""source":"#, r#""\u0074ype":"UserSeen","source":"#, 1),
        // The word "type" as a value, and an escape elsewhere: still one "type" key.
        imported.replacen(r#""name":""#, r#""name":"type"#, 1),
        imported.replacen(r#""name":""#, r#""name":"a\"type\" "#, 1),
        // The object before its source, a source spelled with an escape, a key left out.
        user.replacen(r#""source":"server","#, "", 1).replacen(
            r#"}}}"#,
            r#"},"source":"server"}}"#,
            1,
        ),
        user.replacen(r#""source":"#, r#""sour\u0063e":"#, 1),
        group.replacen(r#""source":"entra","#, "", 1),
        // A seen-event with an object of the other kind.
        user.replacen(r#""user":"#, r#""group":"#, 1),
    ];
    for case in cases {
        assert!(
            !events
                .values()
                .any(|e| { encode_record(Seq(7), run(), &time(), e) == case.as_bytes() }),
            "the case changes the record: {case}"
        );
        let general = decode_record_general(case.as_bytes(), Hash::GENESIS).ok();
        assert_eq!(
            decode_record(case.as_bytes(), Hash::GENESIS).ok(),
            general,
            "{case}"
        );
        if let Some(fast) = decode_current_by_type(case.as_bytes(), Hash::GENESIS) {
            assert_eq!(Some(fast), general, "{case}");
        }
    }
}

#[test]
fn the_hash_chain_covers_every_byte_and_the_order() {
    let a = encode_record(Seq(1), run(), &time(), &every_variant()[1].1);
    let b = encode_record(Seq(2), run(), &time(), &every_variant()[2].1);
    let h = Hash::chain(&Hash::chain(&Hash::GENESIS, &a), &b);
    assert_ne!(
        h,
        Hash::chain(&Hash::chain(&Hash::GENESIS, &b), &a),
        "order matters"
    );
    let mut edited = b.clone();
    let last = edited.len() - 2;
    edited[last] ^= 1;
    assert_ne!(
        h,
        Hash::chain(&Hash::chain(&Hash::GENESIS, &a), &edited),
        "one bit matters"
    );
    assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
}

#[test]
fn newer_versions_are_refused_with_a_clear_error() {
    let mut v = stored(&every_variant()[1].1);
    v["version"] = json!(EVENT_VERSION + 1);
    let err = decode_record(&serde_json::to_vec(&v).unwrap(), Hash::GENESIS).unwrap_err();
    assert!(err.to_string().contains("upgrade roster"), "{err}");
    assert!(decode_record(b"{not json", Hash::GENESIS).is_err());
}

#[test]
fn version_1_entries_are_upcast_with_their_reason() {
    let v1 = |detail: &str| {
        let mut v = stored(&Event::Planned(EntryOutcome {
            detail: detail.into(),
            ..entry(Outcome::Conflict)
        }));
        v["version"] = json!(1);
        v["event"].as_object_mut().unwrap().remove("reason");
        serde_json::to_vec(&v).unwrap()
    };
    for (detail, reason) in [
        (
            "account disabled in Entra ID",
            Some(Reason::AccountDisabled),
        ),
        (
            "a local user with login \"a\" exists and is not linked to Entra ID",
            Some(Reason::LocalUser),
        ),
        (
            "renamed in Entra ID to \"b\", but login \"b\" is linked to another Entra object (x)",
            Some(Reason::LinkedElsewhere),
        ),
        (
            "in the Entra ID recycle bin since 2026-11-01; already disabled",
            Some(Reason::AlreadyDisabled),
        ),
        ("login ann@contoso.com", None),
    ] {
        let env = decode_record(&v1(detail), Hash::GENESIS).unwrap();
        assert_eq!(env.version, 1);
        let Event::Planned(e) = env.event else {
            panic!()
        };
        assert_eq!(e.reason, reason, "{detail}");
    }
    // Without the upcast, a version-1 entry would decode with no reason at all.
    let mut raw: Value = serde_json::from_slice(&v1("account disabled in Entra ID")).unwrap();
    let Ok(Event::Planned(plain)) = serde_json::from_value::<Event>(raw["event"].take()) else {
        panic!()
    };
    assert_eq!(plain.reason, None);
}

#[test]
fn the_quick_header_reading_agrees_with_the_full_parser() {
    for (name, event) in every_variant() {
        let bytes = encode_record(Seq(123456789), run(), &time(), &event);
        let quick = decode_header(&bytes).unwrap();
        let full = decode_record(&bytes, Hash::GENESIS).unwrap();
        assert_eq!(
            (quick.seq, quick.run, quick.version),
            (full.seq, full.run, full.version),
            "{name}"
        );
        assert_eq!(quick.event_type, event.type_name(), "{name}");
    }
    // Laid out differently (spaces, key order): still read, by the full parser.
    let odd = br#"{ "run": "01a21bb4-dbff-71f7-8fb2-6a1a96d511a2", "seq": 5, "time": "2026-11-27T06:32:47Z", "version": 2, "event": {"source": "x", "type": "UserSeen"}}"#;
    let h = decode_header(odd).unwrap();
    assert_eq!((h.seq, h.event_type.as_str()), (Seq(5), "UserSeen"));
}
