//! The auditor's guarantees, tested the way an attacker would break them: by writing to sled
//! directly, behind roster's back. Every edit, removal, insertion and reordering is found and
//! named; a run whose events do not verify is not replayed; a chain recomputed after an edit
//! is caught by a noted head and by replay.

use std::path::{Path, PathBuf};

use adapters::clock::FixedClock;
use adapters::fixture::Loaded;
use adapters::org::{OrgConfig, OrgSource};
use adapters::source::{FixtureSource, SnapshotSource};
use adapters::target::{read_server_file, EmbeddedTarget};
use app::run::{execute, RunRequest};
use engine::event::{DeletedAction, Hash, Mode, RunOptions, SelectionSpec};
use engine::{EventStore, RunId, Seq, SledStore};
use proptest::prelude::*;
use replay::{replay_run, verify, ReplayError, VerifyError, VerifyOptions};
use testkit::{arb_world, tenant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn clock() -> FixedClock {
    FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap())
}

fn request(mode: Mode) -> RunRequest {
    RunRequest {
        mode,
        selection: SelectionSpec {
            select_all: true,
            ..SelectionSpec::default()
        },
        options: RunOptions {
            check_deleted: true,
            on_deleted: DeletedAction::Disable,
            ..RunOptions::default()
        },
        started_by: "auditor-test".into(),
        applied_from: None,
        approved: None,
        reviewed: None,
        // Both runs record in full: the tampering below edits full runs (incremental runs
        // have tests of their own, in tests/incremental.rs).
        full: true,
        every_entry: false,
    }
}

/// A store holding a dry run and an import of the demo tenant: runs[0] and runs[1].
fn demo_store(dir: &Path) -> (SledStore, Vec<RunId>) {
    let store = SledStore::open(dir).unwrap();
    store
        .replace_server_state(&read_server_file(&fixtures().join("demo/server.json")).unwrap())
        .unwrap();
    let source = FixtureSource::new(&fixtures().join("demo/tenant.json"));
    let org = OrgConfig {
        name: "contoso".into(),
        tenant_id: adapters::fixture::read_tenant(&fixtures().join("demo/tenant.json"))
            .unwrap()
            .snapshot
            .tenant_id,
        source: OrgSource::Fixture {
            path: fixtures().join("demo/tenant.json"),
        },
        added_at: "2026-11-27T00:00:00Z".parse().unwrap(),
        left_out: Vec::new(),
        sync: None,
    };
    let clock = clock();
    let a = execute(
        &store,
        &org,
        &source,
        &mut EmbeddedTarget::new(&store),
        &request(Mode::DryRun),
        &clock,
        &Default::default(),
    )
    .unwrap();
    let b = execute(
        &store,
        &org,
        &source,
        &mut EmbeddedTarget::new(&store),
        &request(Mode::Apply),
        &clock,
        &Default::default(),
    )
    .unwrap();
    store.flush().unwrap();
    (store, vec![a.run, b.run])
}

// --- the attacker's tools: the stored bytes, rewritten behind roster's back -------------------

fn read_raw(store: &SledStore, seq: u64) -> (Hash, Vec<u8>) {
    store.tamper().read(Seq(seq))
}

fn write_raw(store: &SledStore, seq: u64, hash: Hash, record: &[u8]) {
    store.tamper().write(Seq(seq), hash, record);
}

/// Recomputes every hash from `seq` to the end, as an attacker covering their tracks would.
fn rechain_from(store: &SledStore, seq: u64) {
    let mut prev = if seq == 1 {
        Hash::GENESIS
    } else {
        read_raw(store, seq - 1).0
    };
    let last = store.head().seq.0;
    for s in seq..=last {
        let (_, record) = read_raw(store, s);
        prev = Hash::chain(&prev, &record);
        write_raw(store, s, prev, &record);
    }
}

/// The first stored event of `run` whose record contains `needle`.
fn find(store: &SledStore, run: RunId, needle: &str) -> u64 {
    store
        .run_seqs(run)
        .unwrap()
        .into_iter()
        .find(|s| String::from_utf8_lossy(&read_raw(store, s.0).1).contains(needle))
        .unwrap_or_else(|| panic!("no event with {needle}"))
        .0
}

#[track_caller]
fn fails_at(store: &SledStore, seq: u64, run: Option<RunId>, reason: &str) {
    match verify(store, &VerifyOptions::default()) {
        Err(VerifyError::Bad {
            seq: s,
            run: r,
            reason: why,
        }) => {
            assert_eq!((s, r), (Seq(seq), run), "{why}");
            assert!(why.contains(reason), "expected {reason:?} in {why:?}");
        }
        other => panic!("expected a failure at {seq}, got {other:?}"),
    }
}

// --- the tests ---------------------------------------------------------------------------------

#[test]
fn an_untouched_log_verifies_and_every_run_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let v = verify(&store, &VerifyOptions::default()).unwrap();
    assert_eq!((v.events, v.runs), (store.head().seq.0, 2));
    assert!(v.unfinished.is_empty());
    let noted = VerifyOptions {
        noted_head: Some(
            store
                .run_seqs(runs[0])
                .map(|s| read_raw(&store, s.last().unwrap().0).0)
                .unwrap()
                .into(),
        ),
        until: None,
    };
    assert_eq!(
        verify(&store, &noted).unwrap().noted_head_at,
        Some(*store.run_seqs(runs[0]).unwrap().last().unwrap())
    );
    for run in runs {
        let r = replay_run(&store, run).unwrap();
        assert!(r.identical(), "{:?}", r.differences);
        assert!(r.entries > 60);
    }
}

#[test]
fn an_edited_event_is_named_and_its_run_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let seq = find(&store, runs[1], "\"Imported\"");
    let (hash, record) = read_raw(&store, seq);
    let edited =
        String::from_utf8(record.clone())
            .unwrap()
            .replacen("\"detail\":\"", "\"detail\":\"X", 1);
    assert_ne!(edited.as_bytes(), &record[..]);
    write_raw(&store, seq, hash, edited.as_bytes());
    fails_at(&store, seq, Some(runs[1]), "hash mismatch");
    match replay_run(&store, runs[1]) {
        Err(ReplayError::Unverified {
            run,
            source: VerifyError::Bad { seq: s, .. },
        }) => assert_eq!((run, s), (runs[1], Seq(seq))),
        other => panic!("replay must refuse: {other:?}"),
    }
    assert!(
        replay_run(&store, runs[0]).unwrap().identical(),
        "earlier runs still replay"
    );
}

#[test]
fn a_removed_event_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let seq = find(&store, runs[0], "\"ActionChosen\"");
    store.tamper().remove(Seq(seq));
    fails_at(&store, seq, None, "missing");
}

#[test]
fn reordered_events_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let seq = find(&store, runs[1], "\"Imported\"");
    store.tamper().swap(Seq(seq));
    fails_at(&store, seq, Some(runs[1]), "holds the record of event");
}

#[test]
fn an_inserted_event_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let seq = find(&store, runs[1], "\"Imported\"");
    // Slip a forged copy in after `seq`, with a fitting hash, shifting what follows.
    let (hash, record) = read_raw(&store, seq);
    let forged = String::from_utf8(record).unwrap().replacen(
        &format!("\"seq\":{seq}"),
        &format!("\"seq\":{}", seq + 1),
        1,
    );
    store.tamper().insert(
        Seq(seq + 1),
        Hash::chain(&hash, forged.as_bytes()),
        forged.as_bytes(),
    );
    fails_at(&store, seq + 2, Some(runs[1]), "holds the record of event");
}

#[test]
fn a_run_index_that_disagrees_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    // The third chunk of the first run loses its index entry: its first event is named.
    let seqs = store.run_seqs(runs[0]).unwrap();
    let seq = seqs[2 * engine::store::CHUNK_EVENTS.min(seqs.len() / 3)];
    store.tamper().drop_index(runs[0], seq);
    let first_of_chunk = seqs
        .iter()
        .copied()
        .filter(|s| s.0 <= seq.0)
        .filter(|s| (s.0 - 1) % engine::store::CHUNK_EVENTS as u64 == 0 || s == &seqs[0])
        .max()
        .unwrap();
    let _ = first_of_chunk;
    let v = verify(&store, &VerifyOptions::default());
    assert!(
        matches!(&v, Err(VerifyError::Bad { run: Some(r), reason, .. }) if *r == runs[0] && reason.contains("missing from the run index")),
        "{v:?}"
    );
}

#[test]
fn a_recomputed_chain_is_caught_by_a_noted_head_and_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let noted = store.head().hash;
    let seq = find(&store, runs[1], "Adele Vance\",\"outcome\":\"added\"");
    let (_, record) = read_raw(&store, seq);
    let edited = String::from_utf8(record).unwrap().replacen(
        "\"outcome\":\"added\"",
        "\"outcome\":\"skipped\"",
        1,
    );
    write_raw(&store, seq, Hash::GENESIS, edited.as_bytes());
    rechain_from(&store, seq);
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    verify(&store, &VerifyOptions::default())
        .expect("a fully recomputed chain is consistent on its own");
    let with_head = verify(
        &store,
        &VerifyOptions {
            noted_head: Some(noted.into()),
            until: None,
        },
    );
    assert!(
        matches!(with_head, Err(VerifyError::HeadNotFound(ref h)) if *h == noted.into()),
        "{with_head:?}"
    );
    let r = replay_run(&store, runs[1]).unwrap();
    assert_eq!(r.differences.len(), 1, "{:?}", r.differences);
    assert!(r.differences[0].entry.contains("Adele Vance"));
    assert!(
        r.differences[0].recorded.starts_with("skipped")
            && r.differences[0].replayed.starts_with("added")
    );
}

/// roster records every input of a run before its first outcome; replay decides again from
/// the inputs as soon as they are complete. A log whose inputs come later (here an attacker
/// swapped two events and recomputed the chain) is refused by name, not replayed half-read.
#[test]
fn a_run_with_an_input_after_its_first_outcome_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    let outcome_at = find(&store, runs[1], "{\"type\":\"Imported\"");
    let input_at = outcome_at - 1;
    let (_, input) = read_raw(&store, input_at);
    let (_, outcome) = read_raw(&store, outcome_at);
    assert!(String::from_utf8_lossy(&input).contains("{\"type\":\"ActionChosen\""));
    let renumber = |record: Vec<u8>, from: u64, to: u64| {
        String::from_utf8(record).unwrap().replacen(
            &format!("{{\"seq\":{from},"),
            &format!("{{\"seq\":{to},"),
            1,
        )
    };
    let outcome = renumber(outcome, outcome_at, input_at);
    let input = renumber(input, input_at, outcome_at);
    write_raw(&store, input_at, Hash::GENESIS, outcome.as_bytes());
    write_raw(&store, outcome_at, Hash::GENESIS, input.as_bytes());
    rechain_from(&store, input_at);
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    verify(&store, &VerifyOptions::default()).expect("a recomputed chain is consistent");
    match replay_run(&store, runs[1]) {
        Err(ReplayError::Malformed { run, reason }) => {
            assert_eq!(run, runs[1]);
            assert!(
                reason.contains(&format!("event {outcome_at} (ActionChosen)")),
                "{reason}"
            );
        }
        other => panic!("expected the run to be refused, got {other:?}"),
    }
    // The run before it is untouched and still replays.
    assert!(replay_run(&store, runs[0]).unwrap().identical());
}

#[test]
fn an_interrupted_run_is_not_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (store, runs) = demo_store(dir.path());
    // The process stopped right before the run's last event (RunFinished) was written.
    let last = store.head().seq.0;
    store.tamper().truncate_after(Seq(last - 1));
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    let v = verify(&store, &VerifyOptions::default()).unwrap();
    assert_eq!(v.unfinished, vec![runs[1]]);
    let r = replay_run(&store, runs[1]).unwrap();
    assert!(r.identical(), "{:?}", r.differences);
    assert!(r.note.unwrap().contains("interrupted"));
}

proptest! {
    #![proptest_config(testkit::proptest_config(48))]

    /// Over random tenants and servers, a sequence of runs always verifies and every run
    /// replays to exactly what it recorded.
    #[test]
    fn random_runs_verify_and_replay_identically(
        worlds in prop::collection::vec(arb_world(), 1..4),
        modes in prop::collection::vec(any::<bool>(), 3),
    ) {
        let store = SledStore::temporary().unwrap();
        store.replace_server_state(&worlds[0].server).unwrap();
        let org = OrgConfig {
            name: "t".into(),
            tenant_id: tenant(),
            source: OrgSource::Fixture { path: "memory".into() },
            added_at: "2026-11-27T00:00:00Z".parse().unwrap(),
            left_out: Vec::new(),
        sync: None,
        };
        let clock = clock();
        let mut runs = Vec::new();
        for (w, apply) in worlds.iter().zip(&modes) {
            let source = SnapshotSource { loaded: Loaded { snapshot: w.snapshot.clone(), problems: vec![], tracking: Default::default(), content: None }, location: "memory".into() };
            let mut req = request(if *apply { Mode::Apply } else { Mode::DryRun });
            req.options = RunOptions { on_deleted: DeletedAction::Delete, ..w.options.clone() };
            if let Ok(r) = execute(&store, &org, &source, &mut EmbeddedTarget::new(&store), &req, &clock, &Default::default()) {
                runs.push(r.run);
            }
        }
        let v = verify(&store, &VerifyOptions::default());
        prop_assert!(v.is_ok(), "{:?}", v);
        for run in runs {
            let r = replay_run(&store, run).unwrap();
            prop_assert!(r.identical(), "{:?}", r.differences);
        }
    }
}
