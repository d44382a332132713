//! Logs written by an older roster keep working: the version-1 log fixture is loaded byte for
//! byte into a fresh store, verifies, and every run in it replays identically under today's
//! event version, its entries upcast (`reason` derived from the version-1 wording).

use std::path::Path;

use engine::event::{decode_header, Event, Hash, Reason, EVENT_VERSION};
use engine::{EventStore, SledStore};
use replay::{replay_run, verify, VerifyOptions};

/// Writes stored events exactly as they were: the byte layout of `engine::store`.
fn load_raw_log(store: &SledStore, jsonl: &str) {
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        let hash = Hash::from_hex(v["hash"].as_str().unwrap()).unwrap();
        let record = v["record"].as_str().unwrap().as_bytes();
        let run = decode_header(record).unwrap().run;
        let mut key = vec![b'e'];
        key.extend_from_slice(&seq.to_be_bytes());
        let mut value = hash.0.to_vec();
        value.extend_from_slice(record);
        store.raw_tree().insert(key, value).unwrap();
        let mut index = vec![b'r'];
        index.extend_from_slice(run.as_bytes());
        index.extend_from_slice(&seq.to_be_bytes());
        store.raw_tree().insert(index, &[][..]).unwrap();
    }
    store.flush().unwrap();
}

#[test]
fn a_version_1_log_verifies_and_replays_identically() {
    let jsonl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs/v1-demo.jsonl"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    load_raw_log(&SledStore::open(dir.path()).unwrap(), &jsonl);
    let store = SledStore::open(dir.path()).unwrap();

    let v = verify(&store, &VerifyOptions::default()).unwrap();
    assert_eq!(v.events as usize, jsonl.lines().count());
    assert_eq!(v.runs, 2);

    // The fixture proves upcasting while the current version is newer than 1.
    const { assert!(EVENT_VERSION > 1) };
    let mut reasons = Vec::new();
    for run in store.runs().unwrap() {
        let events = store.read_run(run).unwrap();
        assert!(events.iter().all(|e| e.version == 1));
        for e in &events {
            if let Event::Planned(x) | Event::Imported(x) = &e.event {
                reasons.extend(x.reason);
            }
        }
        let r = replay_run(&store, run).unwrap();
        assert!(r.identical(), "run {run}: {:?}", r.differences);
        assert!(r.entries > 5);
    }
    for expected in [Reason::AccountDisabled, Reason::LocalUser] {
        assert!(
            reasons.contains(&expected),
            "{expected:?} derived by the upcast: {reasons:?}"
        );
    }
}

/// The version-2 log (made by the roster before incremental runs) verifies, replays, and each
/// of its runs is a full run that can start a chain.
#[test]
fn a_version_2_log_verifies_replays_and_starts_chains() {
    let jsonl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs/v2-demo.jsonl"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    load_raw_log(&SledStore::open(dir.path()).unwrap(), &jsonl);
    let store = SledStore::open(dir.path()).unwrap();
    let v = verify(&store, &VerifyOptions::default()).unwrap();
    assert_eq!((v.events as usize, v.runs), (jsonl.lines().count(), 3));
    for run in store.runs().unwrap() {
        let events = store.read_run(run).unwrap();
        assert!(events.iter().all(|e| e.version == 2));
        let r = replay_run(&store, run).unwrap();
        assert!(r.identical(), "run {run}: {:?}", r.differences);
        let (inputs, report) = replay::rebuild::inputs_and_report(&store, run).unwrap();
        assert_eq!(inputs.started.base, None);
        assert!(report.entries.len() > 5);
        let chain = engine::chain::fold(
            &store,
            run,
            engine::chain::Through::Outcomes,
            engine::chain::Keep::Whole,
        )
        .unwrap();
        assert_eq!((chain.full, chain.length), (run, 1));
    }
}

/// The version-3 log (the roster before decision rules 2 and recorded server loads, commit
/// `c050024`): an import, an incremental import of a changed tenant, an administrator's
/// `server enable` and a dry run. It verifies; every run replays identically under the rules it
/// was decided by (a linked user disabled in Entra ID was skipped then); and the server the
/// log says is derived from its last run and the change after it.
#[test]
fn a_version_3_log_verifies_replays_under_its_rules_and_says_the_server() {
    let jsonl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs/v3-demo.jsonl"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    load_raw_log(&SledStore::open(dir.path()).unwrap(), &jsonl);
    let store = SledStore::open(dir.path()).unwrap();
    let v = verify(&store, &VerifyOptions::default()).unwrap();
    assert_eq!(
        (v.events as usize, v.runs, v.edits),
        (jsonl.lines().count(), 3, 1)
    );
    let mut skipped_linked = false;
    for run in store.runs().unwrap() {
        let events = store.read_run(run).unwrap();
        assert!(events.iter().all(|e| e.version == 3));
        if let Some(Event::RunStarted(s)) = events.first().map(|e| &e.event) {
            assert_eq!(s.rules, 1, "recorded before the rules were numbered");
        }
        skipped_linked |= events.iter().any(|e| {
            matches!(&e.event, Event::Imported(x) if x.name == "Emily Braun" && x.reason == Some(Reason::AccountDisabled))
        });
        let r = replay_run(&store, run).unwrap();
        assert!(r.identical(), "run {run}: {:?}", r.differences);
    }
    assert!(
        skipped_linked,
        "a linked user disabled in Entra ID was skipped under rules 1"
    );
    let derived = replay::server::derive(&store).unwrap();
    let replay::server::Derived::State(server) = derived else {
        panic!("the last run says the server: {derived:?}")
    };
    assert!(server.user("IsaiahL@contoso.com").unwrap().enabled);
}
