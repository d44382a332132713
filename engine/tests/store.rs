//! The sled event store: sequence, atomic steps, persistence across reopen, runs, the
//! embedded server beside the log.

use chrono::{DateTime, Utc};
use engine::event::{Event, Hash, RunFinished, RunStatus, Summary, UserSeen};
use engine::model::{KeyWrite, ServerGroup, ServerState, ServerUser};
use engine::{EventStore, RunId, Seq, SledStore};
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

fn put_user(u: &ServerUser) -> KeyWrite {
    KeyWrite::PutUser(std::sync::Arc::new(u.clone()))
}

fn put_group(g: &ServerGroup) -> KeyWrite {
    KeyWrite::PutGroup(std::sync::Arc::new(g.clone()))
}

fn finished() -> Event {
    Event::RunFinished(RunFinished {
        status: RunStatus::Completed,
        summary: Summary::default(),
        reason: None,
        learned: Vec::new(),
    })
}

#[test]
fn events_get_consecutive_sequence_numbers_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run_at(1), run_at(2));
    let head = {
        let store = SledStore::open(dir.path()).unwrap();
        store.append(a, t(1), &[seen(1), seen(2)]).unwrap();
        store.append(b, t(2), &[seen(3)]).unwrap();
        store.append(a, t(3), &[finished()]).unwrap();
        store.flush().unwrap();
        store.head()
    };
    assert_eq!(head.seq, Seq(4));
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.head(), head, "the head is found again after a reopen");
    assert_eq!(store.runs().unwrap(), vec![a, b]);
    let seqs: Vec<Seq> = store.read_run(a).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![Seq(1), Seq(2), Seq(4)]);
    assert_eq!(store.read_run(b).unwrap()[0].event, seen(3));
    store.append(b, t(4), &[finished()]).unwrap();
    assert_eq!(store.head().seq, Seq(5), "appending continues the sequence");
}

#[test]
fn the_stored_chain_recomputes_to_the_head() {
    let store = SledStore::temporary().unwrap();
    store
        .append(run_at(1), t(1), &[seen(1), seen(2), seen(3)])
        .unwrap();
    store.append(run_at(1), t(2), &[finished()]).unwrap();
    let mut h = Hash::GENESIS;
    for raw in store.raw_events(Seq(1)) {
        let raw = raw.unwrap();
        h = Hash::chain(&h, &raw.record);
        assert_eq!(raw.hash, h, "event {}", raw.seq);
    }
    assert_eq!(h, store.head().hash);
    let index: Vec<(RunId, Seq)> = store.run_index().map(Result::unwrap).collect();
    assert_eq!(index.len(), 4);
}

#[test]
fn a_commit_writes_events_and_server_records_together() {
    let store = SledStore::temporary().unwrap();
    let ann = linked(&user(1, "Ann@x.com"));
    store
        .commit(
            run_at(1),
            t(1),
            &[seen(1)],
            &[
                put_user(&ann),
                put_group(&server_group("G", None, &["Ann@x.com"])),
            ],
        )
        .unwrap();
    let state = store.server_state().unwrap();
    assert_eq!(state.user("ann@x.com"), Some(&ann));
    assert_eq!(store.head().seq, Seq(1));
    store
        .commit(
            run_at(1),
            t(2),
            &[finished()],
            &[KeyWrite::DeleteUser {
                login: "ANN@x.com".into(),
            }],
        )
        .unwrap();
    assert!(store.server_state().unwrap().user("ann@x.com").is_none());
}

#[test]
fn a_record_written_twice_in_one_commit_ends_as_its_last_write() {
    let store = SledStore::temporary().unwrap();
    let g = |members: &[&str]| put_group(&server_group("G", None, members));
    store
        .commit(
            run_at(1),
            t(1),
            &[seen(1)],
            &[
                g(&["a@x.com"]),
                put_user(&local_user("b@x.com")),
                g(&["a@x.com", "b@x.com"]),
                KeyWrite::DeleteUser {
                    login: "B@x.com".into(),
                },
                g(&["c@x.com"]),
                KeyWrite::DeleteGroup { name: "h".into() },
                put_group(&server_group("H", None, &[])),
            ],
        )
        .unwrap();
    let state = store.server_state().unwrap();
    assert_eq!(state.group("g").unwrap().members, vec!["c@x.com"]);
    assert!(state.user("b@x.com").is_none(), "deleted after it was put");
    assert!(state.group("h").is_some(), "put after it was deleted");
    store
        .commit(
            run_at(1),
            t(2),
            &[finished()],
            &[
                KeyWrite::DeleteGroup { name: "H".into() },
                put_group(&server_group("H", None, &[])),
                KeyWrite::DeleteGroup { name: "h".into() },
            ],
        )
        .unwrap();
    assert!(store.server_state().unwrap().group("h").is_none());
}

#[test]
fn replacing_the_server_state_drops_what_was_there() {
    let store = SledStore::temporary().unwrap();
    store
        .replace_server_state(&server(
            vec![local_user("a"), local_user("b")],
            vec![server_group("G", None, &[])],
        ))
        .unwrap();
    let next = server(vec![local_user("c")], vec![]);
    store.replace_server_state(&next).unwrap();
    assert_eq!(store.server_state().unwrap(), next);
    store.replace_server_state(&ServerState::default()).unwrap();
    assert_eq!(store.server_state().unwrap(), ServerState::default());
}

#[test]
fn a_store_written_one_event_per_key_is_read_and_continued_in_chunks() {
    use engine::event::encode_record;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (run_at(1), run_at(2));
    {
        // The layout before chunks: `e` + seq → hash + record, `r` + run + seq → empty.
        let store = SledStore::open(dir.path()).unwrap();
        let mut h = Hash::GENESIS;
        for (i, event) in [seen(1), seen(2), finished()].iter().enumerate() {
            let seq = Seq(i as u64 + 1);
            let record = encode_record(seq, old, &t(1), event);
            h = Hash::chain(&h, &record);
            let mut key = vec![b'e'];
            key.extend_from_slice(&seq.0.to_be_bytes());
            let mut value = h.0.to_vec();
            value.extend_from_slice(&record);
            store.raw_tree().insert(key, value).unwrap();
            let mut index = vec![b'r'];
            index.extend_from_slice(old.as_bytes());
            index.extend_from_slice(&seq.0.to_be_bytes());
            store.raw_tree().insert(index, &[][..]).unwrap();
        }
        store.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.head().seq, Seq(3));
    store.append(new, t(2), &[seen(3), finished()]).unwrap();
    assert_eq!(store.runs().unwrap(), vec![old, new]);
    assert_eq!(store.read_run(old).unwrap().len(), 3);
    assert_eq!(
        store
            .read_run(new)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![Seq(4), Seq(5)]
    );
    let mut h = Hash::GENESIS;
    let raws: Vec<_> = store.raw_events(Seq(1)).map(Result::unwrap).collect();
    assert_eq!(raws.len(), 5);
    for raw in &raws {
        h = Hash::chain(&h, &raw.record);
        assert_eq!(
            raw.hash, h,
            "the chain runs on from the old layout into chunks"
        );
    }
    assert_eq!(store.read_event(Seq(2)).unwrap().unwrap().event, seen(2));
    assert_eq!(store.read_event(Seq(4)).unwrap().unwrap().event, seen(3));
    assert_eq!(store.run_index().count(), 5);
}

#[test]
fn large_steps_span_many_chunks() {
    let store = SledStore::temporary().unwrap();
    let run = run_at(1);
    let n = engine::store::CHUNK_EVENTS * 3 + 7;
    let events: Vec<Event> = (0..n as u32).map(seen).collect();
    store.append(run, t(1), &events).unwrap();
    assert_eq!(store.head().seq, Seq(n as u64));
    let back = store.read_run(run).unwrap();
    assert_eq!(back.len(), n);
    assert!(back.iter().zip(&events).all(|(a, b)| &a.event == b));
    assert_eq!(store.raw_events(Seq(1500)).count(), n - 1499);
    assert_eq!(
        store.read_event(Seq(2049)).unwrap().unwrap().event,
        events[2048]
    );
}

/// A run of many chunks is decoded by two threads and handed back in order; a damaged chunk
/// in the middle stops the read with the error, however far the other thread got.
#[test]
fn many_chunk_runs_are_read_in_order_and_stop_at_a_damaged_chunk() {
    let store = SledStore::temporary().unwrap();
    let run = run_at(1);
    let n = engine::store::CHUNK_EVENTS * 9 + 5;
    let events: Vec<Event> = (0..n as u32).map(seen).collect();
    store.append(run, t(1), &events).unwrap();
    store.append(run, t(2), &[finished()]).unwrap();
    let mut seqs = Vec::new();
    store
        .visit_run(
            run,
            &|k| k == engine::event::EventKind::RunFinished,
            &mut |e| seqs.push(e.seq),
        )
        .unwrap();
    assert_eq!(
        seqs,
        vec![Seq(n as u64 + 1)],
        "only the kept type is handed over"
    );
    let back = store.read_run(run).unwrap();
    assert_eq!(back.len(), n + 1);
    assert!(back.iter().map(|e| e.seq).eq((1..=n as u64 + 1).map(Seq)));

    store.tamper().remove(Seq(4000));
    let mut handed = 0;
    let err = store
        .visit_run(run, &|_| true, &mut |_| handed += 1)
        .unwrap_err();
    assert!(err.to_string().contains("indexes"), "{err}");
    assert_eq!(
        handed,
        3 * engine::store::CHUNK_EVENTS,
        "the chunks before it, in order"
    );
}

/// A record moved under another event's place (its own seq or run inside says otherwise) is
/// reported, whether or not the reader keeps its type.
#[test]
fn a_record_that_is_not_the_event_its_place_holds_is_reported() {
    let store = SledStore::temporary().unwrap();
    let (a, b) = (run_at(1), run_at(2));
    store.append(a, t(1), &[seen(1), seen(2)]).unwrap();
    store.append(b, t(2), &[seen(3)]).unwrap();
    let (hash, record) = store.tamper().read(Seq(3));
    store.tamper().write(Seq(2), hash, &record);
    type Keep = dyn Fn(engine::event::EventKind) -> bool + Sync;
    for keep in [&(|_| true) as &Keep, &|_| false] {
        let err = store
            .visit_run(a, keep, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("indexed for run {a} but records run {b} seq 3")),
            "{err}"
        );
    }
}

/// A step prepared ahead is written only right after the step it was prepared to follow, and
/// ends where committing the same events directly would.
#[test]
fn prepared_steps_commit_in_order_or_not_at_all() {
    let direct = SledStore::temporary().unwrap();
    let store = SledStore::temporary().unwrap();
    let run = run_at(1);
    let (one, two) = (vec![seen(1), seen(2)], vec![seen(3)]);
    direct.append(run, t(1), &one).unwrap();
    direct.append(run, t(2), &two).unwrap();

    let start = store.head();
    let first = store.prepare(start, run, t(1), &one, &[]);
    let after_first = first.head();
    let second = store.prepare(after_first, run, t(2), &two, &[]);
    let err = store.commit_prepared(second).unwrap_err();
    assert!(err.to_string().contains("prepared to follow"), "{err}");
    assert_eq!(store.head(), start, "nothing written out of order");

    store.commit_prepared(first).unwrap();
    let second = store.prepare(after_first, run, t(2), &two, &[]);
    assert_eq!(store.commit_prepared(second).unwrap(), direct.head());
    assert_eq!(store.head(), direct.head());
    let events = |s: &SledStore| -> Vec<Event> {
        s.read_run(run)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    };
    assert_eq!(events(&store), events(&direct));
}

/// The directory is read record by record as it is built: a record that does not read is
/// said, naming it, wherever it stands — never a directory built of the records before it.
#[test]
fn a_damaged_server_record_is_named_not_read_past() {
    let store = SledStore::temporary().unwrap();
    let users: Vec<ServerUser> = (1..=3000)
        .map(|n| linked(&user(n, &format!("u{n}@x.com"))))
        .collect();
    let groups = vec![
        server_group("A", None, &["u1@x.com", "u2999@x.com"]),
        server_group("B", None, &["u2@x.com"]),
    ];
    let state = ServerState::from_parts(users, groups).unwrap();
    store.replace_server_state(&state).unwrap();
    assert_eq!(store.server_state().unwrap(), state);
    for (key, named) in [
        (&b"uu2500@x.com"[..], "server user u2500@x.com"),
        (b"ga", "server group a"),
    ] {
        let kept = store
            .raw_tree()
            .get(key)
            .unwrap()
            .expect("the record is stored");
        store.raw_tree().insert(key, &b"{\"login\": 7"[..]).unwrap();
        let err = store.server_state().unwrap_err().to_string();
        assert!(err.contains(named), "{err}");
        store.raw_tree().insert(key, kept).unwrap();
        assert_eq!(store.server_state().unwrap(), state);
    }
}

/// `server load` writes a large directory in batches: until the last one, the directory is
/// refused as incomplete, never used half-written; a complete load clears the mark.
#[test]
fn an_unfinished_server_load_is_refused_until_a_load_completes() {
    let store = SledStore::temporary().unwrap();
    let state = ServerState::from_parts(
        (1..=5000).map(|n| linked(&user(n, &format!("u{n}@x.com")))),
        vec![],
    )
    .unwrap();
    store.replace_server_state(&state).unwrap();
    assert_eq!(store.server_state().unwrap(), state);
    // What a load killed after its first batch leaves.
    store
        .raw_tree()
        .insert(b"L", &5000u64.to_le_bytes()[..])
        .unwrap();
    let err = store.server_state().unwrap_err().to_string();
    assert!(
        err.contains("`roster server load` was interrupted"),
        "{err}"
    );
    let err = store
        .server_user_and_groups("u1@x.com")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`roster server load` was interrupted"),
        "one user's page is refused too: {err}"
    );
    store.replace_server_state(&state).unwrap();
    assert_eq!(store.server_state().unwrap(), state);
}

#[test]
fn one_users_page_reads_that_user_and_every_group() {
    let store = SledStore::temporary().unwrap();
    let ann = linked(&user(1, "Ann@x.com"));
    let g = server_group("G", None, &["Ann@x.com", "bob@x.com"]);
    let h = server_group("H", None, &["bob@x.com"]);
    store
        .commit(
            run_at(1),
            t(1),
            &[seen(1)],
            &[
                put_user(&ann),
                put_user(&local_user("bob@x.com")),
                put_group(&g),
                put_group(&h),
            ],
        )
        .unwrap();
    let page = store.server_user_and_groups("ANN@x.com").unwrap();
    assert_eq!(page.user("ann@x.com"), Some(&ann));
    assert_eq!(page.users().len(), 1, "no other user is read");
    assert_eq!(page.groups().cloned().collect::<Vec<_>>(), vec![g, h]);
    let nobody = store.server_user_and_groups("nobody@x.com").unwrap();
    assert_eq!((nobody.users().len(), nobody.groups().len()), (0, 2));
}

/// Every event from seq 1 read back, its chain recomputed: the head it reaches.
fn chained_head(store: &SledStore) -> (u64, Hash) {
    let mut h = Hash::GENESIS;
    let mut n = 0;
    for raw in store.raw_events(Seq(1)) {
        let raw = raw.unwrap();
        h = Hash::chain(&h, &raw.record);
        assert_eq!(raw.hash, h, "event {}", raw.seq);
        n += 1;
    }
    (n, h)
}

#[test]
fn a_store_lets_go_of_what_it_wrote_and_keeps_every_event_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    // sled keeps what a process wrote in memory; the store opens its database again every so
    // many bytes. A small bound here, so that a test's writes cross it often.
    store.let_go_every(64 << 10);
    let steps = |from: u32, to: u32| {
        for n in from..to {
            let events: Vec<Event> = (0..400).map(|i| seen(n * 400 + i)).collect();
            store.append(run_at(n), t(n), &events).unwrap();
        }
    };
    steps(1, 10);
    let opened = store.times_opened();
    assert!(opened >= 3, "opened {opened} times");

    // While an iterator holds the handles, the store keeps them: the writes go on, and the
    // iterator reads them too (a sled iterator is not a snapshot).
    let reading = store.raw_events(Seq(1));
    steps(10, 15);
    assert_eq!(
        store.times_opened(),
        opened,
        "let go while an iterator was out"
    );
    assert_eq!(reading.count(), 14 * 400);
    steps(15, 18);
    assert!(
        store.times_opened() > opened,
        "never let go once the iterator was done"
    );

    // A step with server records, and a server load, are written the same way.
    let ann = linked(&user(1, "Ann@x.com"));
    store
        .commit(run_at(20), t(20), &[seen(1)], &[put_user(&ann)])
        .unwrap();
    let many: Vec<_> = (0..2000)
        .map(|n| linked(&user(n, &format!("user{n}@x.com"))))
        .collect();
    let state = ServerState::from_parts(many, Vec::new()).unwrap();
    store.replace_server_state(&state).unwrap();
    store.flush().unwrap();

    let head = store.head();
    assert_eq!(chained_head(&store), (head.seq.0, head.hash));
    assert_eq!(head.seq, Seq(17 * 400 + 1));
    assert_eq!(store.server_state().unwrap(), state);
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.head(), head, "the head is found again after a reopen");
    assert_eq!(chained_head(&store), (head.seq.0, head.hash));
    assert_eq!(store.server_state().unwrap(), state);
    assert_eq!(store.runs().unwrap().len(), 18);
}
