//! The event log on both backends: sled (embedded) and PostgreSQL (a throwaway cluster on
//! loopback, `testkit::postgres`). The same steps give the same sequence numbers, records and
//! chain head on both; `verify` gives the same answer on both, and finds an edit made with SQL
//! as it finds one made to sled; PostgreSQL's writers are serialised and its readers free.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use engine::event::{
    Event, EventKind, Hash, Mode, RunFinished, RunOptions, RunStarted, RunStatus, SelectionSpec,
    SourceInfo, SourceKind, Summary, TargetInfo, UserSeen,
};
use engine::model::{Completeness, KeyWrite};
use engine::store::{Opening, PgStore};
use engine::{EventStore, RunId, Seq, SledStore, StoreError};
use replay::verify::{verify, VerifyError, VerifyOptions};
use testkit::*;

fn t(s: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + i64::from(s), 0).unwrap()
}

fn run_at(s: u32) -> RunId {
    RunId::new(t(s), [s as u8; 10])
}

fn seen(n: u32) -> Event {
    Event::UserSeen(UserSeen::Entra {
        user: user(n, &format!("u{n}@x.com")),
    })
}

fn finished() -> Event {
    Event::RunFinished(RunFinished {
        status: RunStatus::Completed,
        summary: Summary::default(),
        reason: None,
        learned: Vec::new(),
    })
}

fn started(n: u32) -> Event {
    Event::RunStarted(RunStarted {
        org: format!("org{n}"),
        tenant_id: tenant(),
        mode: Mode::DryRun,
        started_by: "test".into(),
        engine_version: "test".into(),
        source: SourceInfo {
            kind: SourceKind::Fixture,
            location: "tenant.json".into(),
            fingerprint: String::new(),
            completeness: Completeness::COMPLETE,
            problems: Vec::new(),
            listed: None,
            delta_links: None,
            changes_since: None,
            signed_in_as: None,
            content: None,
        },
        target: TargetInfo::Embedded,
        selection: SelectionSpec::default(),
        options: RunOptions::default(),
        applied_from: None,
        baseline: None,
        base: None,
        inputs_digest: None,
        rules: engine::event::DECISION_RULES,
        approved: None,
    })
}

/// Two runs, interleaved as a run and a server edit can be, and a large step (more events than
/// one page of reads).
fn write_history(store: &dyn EventStore) {
    let (a, b) = (run_at(1), run_at(2));
    store
        .append(a, t(1), &[started(1), seen(1), seen(2)])
        .unwrap();
    store.append(b, t(2), &[started(2), seen(3)]).unwrap();
    let big: Vec<Event> = (10..9_000).map(seen).collect();
    store
        .commit_stream(a, t(3), &mut big.iter().map(Cow::Borrowed), &[])
        .unwrap();
    store.append(a, t(4), &[finished()]).unwrap();
    store.append(b, t(5), &[finished()]).unwrap();
}

#[test]
fn the_same_steps_give_the_same_log_on_both_backends() {
    let sled = SledStore::temporary().unwrap();
    let url = testkit::postgres::database();
    let pg = PgStore::connect_writer(&url, "test", Opening::CreateIfMissing).unwrap();
    write_history(&sled);
    write_history(&pg);
    assert_eq!(pg.head(), sled.head(), "the same chain head");
    assert_eq!(pg.head().seq, Seq(9_000 - 10 + 7));
    assert_eq!(pg.runs().unwrap(), sled.runs().unwrap());
    for run in sled.runs().unwrap() {
        assert_eq!(pg.run_seqs(run).unwrap(), sled.run_seqs(run).unwrap());
        assert_eq!(pg.run_ends(run).unwrap(), sled.run_ends(run).unwrap());
        let seqs = sled.run_seqs(run).unwrap();
        assert_eq!(
            sled.run_ends(run).unwrap(),
            Some((seqs[0], *seqs.last().unwrap()))
        );
        assert_eq!(pg.read_run(run).unwrap(), sled.read_run(run).unwrap());
        let only_finished = |k: EventKind| k == EventKind::RunFinished;
        assert_eq!(
            pg.read_run_where(run, &only_finished).unwrap(),
            sled.read_run_where(run, &only_finished).unwrap()
        );
    }
    for seq in [1, 4, 5, 6, 4_101, 8_997] {
        assert_eq!(
            pg.read_event(Seq(seq)).unwrap(),
            sled.read_event(Seq(seq)).unwrap()
        );
    }
    assert_eq!(pg.read_event(Seq(100_000)).unwrap(), None);
    assert_eq!(pg.run_ends(run_at(9)).unwrap(), None);
    assert_eq!(sled.run_ends(run_at(9)).unwrap(), None);
    // Raw events stream page by page, from anywhere.
    let raw = |s: &dyn EventStore, from| -> Vec<(Seq, Hash, Vec<u8>)> {
        s.raw_events(Seq(from))
            .map(|r| r.map(|r| (r.seq, r.hash, r.record.to_vec())).unwrap())
            .collect()
    };
    for from in [1, 4_097, 8_996] {
        assert_eq!(raw(&pg, from), raw(&sled, from), "from {from}");
    }
    let index = |s: &dyn EventStore| -> Vec<(RunId, Seq)> {
        let mut i: Vec<_> = s.run_index().map(Result::unwrap).collect();
        i.sort_by_key(|(_, seq)| *seq);
        i
    };
    assert_eq!(index(&pg), index(&sled));
    let (vs, vp) = (
        verify(&sled, &VerifyOptions::default()).unwrap(),
        verify(&pg, &VerifyOptions::default()).unwrap(),
    );
    assert_eq!(vp, vs, "verify answers the same");
    // Another connection finds the log as it was left, and continues it.
    drop(pg);
    let again = PgStore::connect_writer(&url, "test again", Opening::CreateIfMissing).unwrap();
    assert_eq!(again.head(), sled.head());
    again.append(run_at(3), t(6), &[started(3)]).unwrap();
    sled.append(run_at(3), t(6), &[started(3)]).unwrap();
    assert_eq!(again.head(), sled.head());
}

/// A connection to the test database, as an attacker with SQL access would have.
fn sql(url: &str) -> ::postgres::Client {
    ::postgres::Client::connect(url, ::postgres::NoTls).unwrap()
}

fn first_bad(store: &dyn EventStore) -> (Seq, String) {
    match verify(store, &VerifyOptions::default()) {
        Err(VerifyError::Bad { seq, reason, .. }) => (seq, reason),
        other => panic!("verify passed an edited log: {other:?}"),
    }
}

#[test]
fn an_edit_made_with_sql_is_found_at_the_first_event_it_touched() {
    let edits: [(&str, u64); 5] = [
        // One byte of one record.
        (
            "UPDATE roster_events SET record = overlay(record placing '9' from length(record) - 3) WHERE seq = 5",
            5,
        ),
        // A row deleted: the one after it no longer follows.
        ("DELETE FROM roster_events WHERE seq = 7", 7),
        // Two rows swapping places.
        (
            "UPDATE roster_events SET seq = 1000 WHERE seq = 8;
             UPDATE roster_events SET seq = 8 WHERE seq = 9;
             UPDATE roster_events SET seq = 9 WHERE seq = 1000;",
            8,
        ),
        // A row filed under another run.
        (
            "UPDATE roster_events SET run = (SELECT run FROM roster_events WHERE seq = 1) WHERE seq = 4",
            4,
        ),
        // Its hash rewritten to match the edited record does not help: the next one breaks.
        (
            "UPDATE roster_events SET record = overlay(record placing '9' from length(record) - 3), hash = sha256(sha256(''::bytea)) WHERE seq = 3",
            3,
        ),
    ];
    for (edit, at) in edits {
        let url = testkit::postgres::database();
        let store = PgStore::connect_writer(&url, "test", Opening::CreateIfMissing).unwrap();
        let (a, b) = (run_at(1), run_at(2));
        store
            .append(a, t(1), &[started(1), seen(1), seen(2)])
            .unwrap();
        store
            .append(b, t(2), &[started(2), seen(3), seen(4)])
            .unwrap();
        store
            .append(a, t(3), &[seen(5), seen(6), finished()])
            .unwrap();
        assert!(verify(&store, &VerifyOptions::default()).is_ok());
        sql(&url).batch_execute(edit).unwrap();
        let (seq, reason) = first_bad(&store);
        assert_eq!(seq, Seq(at), "{edit}: {reason}");
        if edit.contains("SET run") {
            // Read by its run, the row is not taken for one of that run's events.
            let refused = store.read_run(a).unwrap_err().to_string();
            assert!(refused.contains("event 4"), "{refused}");
        }
    }
}

#[test]
fn one_writer_at_a_time_named_and_readers_never_wait() {
    let url = testkit::postgres::database();
    let first = PgStore::connect_writer(
        &url,
        "roster import by ann on host-a",
        Opening::CreateIfMissing,
    )
    .unwrap();
    first.append(run_at(1), t(1), &[started(1)]).unwrap();
    match PgStore::connect_writer(&url, "roster sync on host-b", Opening::CreateIfMissing) {
        Err(StoreError::InUse { holder, dir }) => {
            assert_eq!(holder, "roster import by ann on host-a");
            assert!(!dir.contains("roster@"), "no user in {dir}");
        }
        other => panic!("a second writer was let in: {:?}", other.map(|_| ())),
    }
    // A reader reads while the writer holds the lock, and sees what it committed.
    let reader = PgStore::connect(&url).unwrap();
    assert_eq!(reader.head(), first.head());
    assert_eq!(reader.runs().unwrap(), vec![run_at(1)]);
    // The lock goes with the writer's connection.
    drop(first);
    let second =
        PgStore::connect_writer(&url, "roster sync on host-b", Opening::CreateIfMissing).unwrap();
    second.append(run_at(1), t(2), &[finished()]).unwrap();
    assert_eq!(second.head().seq, Seq(2));
    let verified = verify(&reader, &VerifyOptions::default()).unwrap();
    assert_eq!(verified.head, second.head());
}

#[test]
fn a_log_written_behind_the_writers_back_is_not_chained_onto() {
    let url = testkit::postgres::database();
    let writer = PgStore::connect_writer(&url, "test", Opening::CreateIfMissing).unwrap();
    writer.append(run_at(1), t(1), &[started(1)]).unwrap();
    // A store opened to read cannot write; a row added with SQL is written all the same.
    let reader = PgStore::connect(&url).unwrap();
    assert!(reader.append(run_at(2), t(2), &[started(2)]).is_err());
    sql(&url)
        .batch_execute("INSERT INTO roster_events SELECT 2, run, hash, record FROM roster_events WHERE seq = 1")
        .unwrap();
    let refused = writer.append(run_at(1), t(3), &[finished()]).unwrap_err();
    assert!(
        refused.to_string().contains("not holding the writer lock"),
        "{refused}"
    );
    assert_eq!(
        PgStore::connect(&url).unwrap().head().seq,
        Seq(2),
        "nothing more was written"
    );
}

#[test]
fn a_step_cut_off_mid_way_leaves_nothing_of_it() {
    let url = testkit::postgres::database();
    let store = PgStore::connect_writer(&url, "test", Opening::CreateIfMissing).unwrap();
    store.append(run_at(1), t(1), &[started(1)]).unwrap();
    let before = store.head();
    // The server ends the writer's connection while its step is being sent.
    let mut admin = sql(&url);
    let mut events = (1..20_000).map(|n| {
        if n == 10_000 {
            admin
                .batch_execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .unwrap();
        }
        Cow::Owned(seen(n))
    });
    let lost = store
        .commit_stream(
            run_at(1),
            t(2),
            &mut events,
            &[KeyWrite::DeleteUser {
                login: "ann@x.com".into(),
            }],
        )
        .unwrap_err();
    let said = lost.to_string();
    assert!(matches!(lost, StoreError::Postgres { .. }), "{said}");
    assert!(!said.contains('\n'), "one line: {said}");
    let after = PgStore::connect(&url).unwrap();
    assert_eq!(after.head(), before, "nothing of the step was kept");
    assert!(verify(&after, &VerifyOptions::default()).is_ok());
}

#[test]
fn an_unreachable_database_is_one_line_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ann:s3cret-pw@127.0.0.1:{port}/roster");
    let Err(e) = PgStore::connect(&url) else {
        panic!("connected to a closed port")
    };
    let said = e.to_string();
    assert!(matches!(e, StoreError::Postgres { .. }), "{said}");
    assert!(
        !said.contains("s3cret-pw") && !said.contains("ann"),
        "{said}"
    );
    assert!(said.contains(&format!("127.0.0.1:{port}/roster")), "{said}");
    assert!(!said.contains('\n'), "{said}");
    for bad in ["postgres://a:b@[::1", "not a url at all = = ="] {
        let Err(e) = PgStore::connect(bad) else {
            panic!("{bad} accepted")
        };
        assert!(!e.to_string().contains(":b@"), "{e}");
    }
}

#[test]
fn a_schema_newer_than_this_roster_is_refused() {
    let url = testkit::postgres::database();
    drop(pg_at(&url));
    sql(&url)
        .batch_execute("INSERT INTO roster_schema (version) VALUES (99)")
        .unwrap();
    let Err(e) = PgStore::connect(&url) else {
        panic!("a newer schema was read")
    };
    assert!(e.to_string().contains("schema version 99"), "{e}");
}

fn pg_at(url: &str) -> PgStore {
    PgStore::connect_writer(url, "test", Opening::CreateIfMissing).unwrap()
}

#[test]
fn two_rosters_opening_a_new_database_at_once_create_it_once() {
    let url = testkit::postgres::database();
    // Before any roster wrote to it, the database holds no store: a reader says so.
    let Err(none) = PgStore::connect(&url) else {
        panic!("an empty database read as a store")
    };
    assert!(matches!(none, StoreError::NoStore { .. }), "{none}");
    let opened: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let url = &url;
                s.spawn(move || {
                    PgStore::connect_writer(url, &format!("writer {n}"), Opening::CreateIfMissing)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // One of them writes; the others are told who does (or, having come after it let go,
    // write too) — none fails creating the tables.
    assert!(opened.iter().any(Result::is_ok));
    assert!(opened
        .iter()
        .all(|o| matches!(o, Ok(_) | Err(StoreError::InUse { .. }))));
    drop(opened);
    let versions: i64 = sql(&url)
        .query_one("SELECT count(*) FROM roster_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    assert!(PgStore::connect(&url).is_ok());
}

/// Everything beside the log, through the `Store` trait, on both backends: org settings, the
/// embedded server's directory (written with a step, loaded whole, one user's page), its
/// version, and the mirrors (written with a run's last step, read back whole, listed; a body
/// the store holds already is not written again).
#[test]
fn orgs_the_server_and_mirrors_answer_alike_on_both_backends() {
    use engine::model::ServerState;
    use engine::store::{MirrorBody, MirrorWrite, Store};
    use std::sync::Arc;

    let sled = SledStore::temporary().unwrap();
    let pg = PgStore::connect_writer(
        &testkit::postgres::database(),
        "test",
        Opening::CreateIfMissing,
    )
    .unwrap();
    let stores: [&dyn Store; 2] = [&sled, &pg];
    let ann = linked(&user(1, "Ann@x.com"));
    let bob = linked(&user(2, "bob@x.com"));
    let group = server_group("Sales", None, &["Ann@x.com", "bob@x.com"]);
    let mirror = |run: RunId, body: MirrorBody, settled| MirrorWrite {
        id: [7; 16],
        org: "contoso".into(),
        server: "embedded".into(),
        run,
        full: run_at(1),
        length: 2,
        body,
        settled,
    };
    let mut answers = Vec::new();
    for store in stores {
        let mut said = Vec::new();
        store.put_org("contoso", b"{\"a\":1}").unwrap();
        store.put_org("fabrikam", b"{\"b\":2}").unwrap();
        store.put_org("contoso", b"{\"a\":3}").unwrap();
        assert!(store.remove_org("fabrikam").unwrap());
        assert!(!store.remove_org("nobody").unwrap());
        said.push(format!(
            "{:?} {:?}",
            store.orgs().unwrap(),
            store.org("contoso").unwrap()
        ));

        assert_eq!(store.server_version().unwrap(), None);
        let loaded = ServerState::from_parts(vec![ann.clone()], Vec::new()).unwrap();
        store
            .load_server_state(&loaded, Some((run_at(1), t(1), &started(1))))
            .unwrap();
        let v1 = store
            .server_version()
            .unwrap()
            .expect("a load makes a version");
        store
            .commit(
                run_at(1),
                t(2),
                &[seen(2)],
                &[
                    KeyWrite::PutUser(Arc::new(bob.clone())),
                    KeyWrite::PutGroup(Arc::new(group.clone())),
                ],
            )
            .unwrap();
        let v2 = store.server_version().unwrap().unwrap();
        assert_ne!(v1, v2, "a step that writes a record makes a new version");
        let state = store.server_state().unwrap();
        said.push(format!("{:?}", serde_json::to_string(&state).unwrap()));
        let page = store.server_user_and_groups("BOB@x.com").unwrap();
        said.push(format!("{:?}", serde_json::to_string(&page).unwrap()));

        let reached = store
            .commit_with_mirror(
                run_at(1),
                t(3),
                &[finished()],
                &mirror(run_at(1), MirrorBody::New(vec![5; 3 << 20]), None),
            )
            .unwrap();
        let stored = store.mirror(&[7; 16]).unwrap().unwrap();
        assert_eq!(stored.stamp.seq, reached.seq);
        assert_eq!(stored.stamp.hash, reached.hash.to_hex());
        assert_eq!(stored.body.as_deref().unwrap(), &vec![5u8; 3 << 20][..]);
        // A run that changed nothing keeps the body and stamps the server's version.
        store.append(run_at(2), t(4), &[started(2)]).unwrap();
        store
            .commit_with_mirror(
                run_at(2),
                t(5),
                &[finished()],
                &mirror(run_at(2), MirrorBody::Kept, Some(3)),
            )
            .unwrap();
        let stamp = store.mirror_stamp(&[7; 16]).unwrap().unwrap().unwrap();
        assert_eq!(stamp.run, run_at(2));
        assert_eq!(stamp.settled.as_ref().unwrap().server_version, v2);
        assert_eq!(
            store.mirror(&[7; 16]).unwrap().unwrap().body.unwrap().len(),
            3 << 20
        );
        let listed = store.mirrors().unwrap();
        assert_eq!(listed.len(), 1);
        said.push(format!(
            "{:?}",
            listed[0]
                .1
                .as_ref()
                .map(|s| (s.run, s.seq, &s.body, s.parts))
        ));
        said.push(format!("{:?}", store.head()));
        answers.push(said);
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn two_stores_in_two_schemas_of_one_database_are_apart() {
    let url = testkit::postgres::database();
    sql(&url)
        .batch_execute("CREATE SCHEMA alpha; CREATE SCHEMA beta;")
        .unwrap();
    let in_schema = |schema: &str| format!("{url}?options=-csearch_path%3D{schema}");
    let a = PgStore::connect_writer(&in_schema("alpha"), "a", Opening::CreateIfMissing).unwrap();
    let b = PgStore::connect_writer(&in_schema("beta"), "b", Opening::CreateIfMissing).unwrap();
    a.append(run_at(1), t(1), &[started(1)]).unwrap();
    b.append(run_at(2), t(2), &[started(2), seen(1)]).unwrap();
    assert_eq!((a.head().seq, b.head().seq), (Seq(1), Seq(2)));
    match PgStore::connect_writer(&in_schema("alpha"), "a again", Opening::Existing) {
        Err(StoreError::InUse { holder, .. }) => assert_eq!(holder, "a"),
        other => panic!(
            "a second writer of alpha was let in: {:?}",
            other.map(|_| ())
        ),
    }
    let tables: i64 = sql(&url)
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'roster_events'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 2, "each store its own tables");
}

/// Steps prepared on one thread and committed on another (apply's pipeline), on both
/// backends: committed out of order, nothing is written; in order, the log is the one direct
/// appends make. And a record a step writes twice ends as its last write.
#[test]
fn prepared_steps_commit_in_order_and_a_record_written_twice_ends_as_its_last_write() {
    use engine::store::Store;
    use std::sync::Arc;

    let direct = SledStore::temporary().unwrap();
    let run = run_at(1);
    let (one, two) = (vec![started(1), seen(1)], vec![seen(2)]);
    direct.append(run, t(1), &one).unwrap();
    direct.append(run, t(2), &two).unwrap();
    let sled = SledStore::temporary().unwrap();
    let pg = PgStore::connect_writer(
        &testkit::postgres::database(),
        "test",
        Opening::CreateIfMissing,
    )
    .unwrap();
    let stores: [&dyn Store; 2] = [&sled, &pg];
    for store in stores {
        let start = store.head();
        let first = store.prepare_step(start, run, t(1), &one, &[]);
        let after_first = first.head();
        let second = store.prepare_step(after_first, run, t(2), &two, &[]);
        let err = store.commit_step(second).unwrap_err();
        assert!(err.to_string().contains("prepared to follow"), "{err}");
        assert_eq!(store.head(), start, "nothing written out of order");
        store.commit_step(first).unwrap();
        let second = store.prepare_step(after_first, run, t(2), &two, &[]);
        assert_eq!(store.commit_step(second).unwrap(), direct.head());

        let g = |members: &[&str]| KeyWrite::PutGroup(Arc::new(server_group("G", None, members)));
        store
            .commit(
                run,
                t(3),
                &[seen(3)],
                &[
                    g(&["a@x.com"]),
                    KeyWrite::PutUser(Arc::new(local_user("b@x.com"))),
                    g(&["a@x.com", "b@x.com"]),
                    KeyWrite::DeleteUser {
                        login: "B@x.com".into(),
                    },
                    g(&["c@x.com"]),
                ],
            )
            .unwrap();
        let state = store.server_state().unwrap();
        assert_eq!(state.group("g").unwrap().members, vec!["c@x.com"]);
        assert!(state.user("b@x.com").is_none(), "deleted after it was put");
    }
    assert_eq!(pg.head(), sled.head());
}
