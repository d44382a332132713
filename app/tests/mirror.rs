//! The mirror kept beside the log is a cache, never trusted over the log: deleted, cut short,
//! edited, or left by another run, it is not taken — the run folds its base from the log
//! instead, records exactly what it would have recorded with it, and keeps a new one. One
//! edited consistently (its stamp's hash made to fit) is what `verify` finds.

use adapters::clock::FixedClock;
use adapters::fixture::Loaded;
use adapters::org::{OrgConfig, OrgSource};
use adapters::source::SnapshotSource;
use adapters::target::EmbeddedTarget;
use app::mirror::{check_all, BaseFrom, MirrorState};
use app::run::{execute, RunRequest, RunResult};
use engine::event::{DeletedAction, Mode, RunOptions, SelectionSpec};
use engine::model::TenantSnapshot;
use engine::{EventStore, SledStore};
use testkit::{group, linked, server, snapshot, tenant, user};

fn org() -> OrgConfig {
    OrgConfig {
        name: "t".into(),
        tenant_id: tenant(),
        source: OrgSource::Fixture {
            path: "memory".into(),
        },
        added_at: "2026-11-27T00:00:00Z".parse().unwrap(),
        left_out: Vec::new(),
        sync: None,
    }
}

fn run(store: &SledStore, tenant: &TenantSnapshot, clock: &FixedClock) -> RunResult {
    run_deciding(store, tenant, clock, false)
}

/// [`run`]; `every_entry`: every entry decided, even when the inputs are the last run's.
fn run_deciding(
    store: &SledStore,
    tenant: &TenantSnapshot,
    clock: &FixedClock,
    every_entry: bool,
) -> RunResult {
    let source = SnapshotSource {
        loaded: Loaded {
            snapshot: tenant.clone(),
            problems: vec![],
            tracking: Default::default(),
            content: None,
        },
        location: "memory".into(),
    };
    let request = RunRequest {
        mode: Mode::Apply,
        selection: SelectionSpec {
            select_all: true,
            ..SelectionSpec::default()
        },
        options: RunOptions {
            check_deleted: true,
            on_deleted: DeletedAction::Disable,
            ..RunOptions::default()
        },
        started_by: "test".into(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full: false,
        every_entry,
    };
    let target = &mut EmbeddedTarget::new(store);
    execute(
        store,
        &org(),
        &source,
        target,
        &request,
        clock,
        &Default::default(),
    )
    .unwrap()
}

/// Two tenants, the second a change of the first (a user renamed, one gone, one new, a
/// group's members changed).
fn tenants() -> (TenantSnapshot, TenantSnapshot) {
    let (ann, bob, cy) = (
        user(1, "ann@x.com"),
        user(2, "bob@x.com"),
        user(3, "cy@x.com"),
    );
    let first = snapshot(
        vec![ann.clone(), bob.clone()],
        vec![group(100, "staff", &[1, 2])],
    );
    let mut ann2 = ann;
    ann2.display_name = Some("Ann Two".into());
    let second = snapshot(vec![ann2, cy], vec![group(100, "staff", &[1, 3])]);
    (first, second)
}

/// The mirror's keys in the store (its stamp, then its parts).
fn mirror_keys(store: &SledStore) -> Vec<sled::IVec> {
    store
        .raw_tree()
        .scan_prefix(b"M")
        .keys()
        .map(Result::unwrap)
        .collect()
}

/// Runs the first tenant twice (a full run leaves no mirror: the second folds its base from
/// the log, and leaves one), lets `tamper` at the store, then runs the second tenant: returns
/// the store, that run, and whether its events are the ones an untouched store records (where
/// it takes its base from the mirror).
fn after(tamper: impl Fn(&SledStore)) -> (SledStore, RunResult, bool) {
    let (first, second) = tenants();
    let (store, untouched) = (
        SledStore::temporary().unwrap(),
        SledStore::temporary().unwrap(),
    );
    let users = vec![linked(&user(1, "ann@x.com"))];
    for s in [&store, &untouched] {
        s.replace_server_state(&server(users.clone(), vec![]))
            .unwrap();
    }
    let mut results = Vec::new();
    for s in [&store, &untouched] {
        // The same run ids in both stores.
        let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
        run(s, &first, &clock);
        let again = run(s, &first, &clock);
        assert_eq!(again.base_from, Some(BaseFrom::Log("none is kept".into())));
        if std::ptr::eq(s, &store) {
            tamper(s);
        }
        results.push(run(s, &second, &clock));
    }
    let (tampered, clean) = (results.remove(0), results.remove(0));
    assert_eq!(clean.base_from, Some(BaseFrom::Mirror));
    let same_events =
        store.read_run(tampered.run).unwrap() == untouched.read_run(clean.run).unwrap();
    (store, tampered, same_events)
}

fn assert_rebuilt(tamper: impl Fn(&SledStore), why: &str) {
    let (store, result, same_events) = after(tamper);
    match &result.base_from {
        Some(BaseFrom::Log(reason)) => assert!(reason.contains(why), "{reason}"),
        other => panic!("the mirror was taken: {other:?}"),
    }
    assert!(
        same_events,
        "the run recorded other events than with its mirror"
    );
    // The run kept a new mirror, which the log vouches for and which matches it.
    let checks = check_all(&store, true).unwrap();
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].state, MirrorState::Matches, "{checks:?}");
    assert_eq!(checks[0].run, Some(result.run));
}

#[test]
fn a_deleted_mirror_is_rebuilt_from_the_log() {
    assert_rebuilt(
        |s| {
            for k in mirror_keys(s) {
                s.raw_tree().remove(k).unwrap();
            }
        },
        "none is kept",
    );
}

#[test]
fn a_mirror_whose_body_was_edited_is_not_taken() {
    assert_rebuilt(
        |s| {
            let part = mirror_keys(s).into_iter().find(|k| k[17] == b'p').unwrap();
            let mut body = s.raw_tree().get(&part).unwrap().unwrap().to_vec();
            let n = body.len();
            body[n - 20] ^= 1;
            s.raw_tree().insert(part, body).unwrap();
        },
        "its body is not the one its stamp names",
    );
}

#[test]
fn a_mirror_cut_short_is_not_taken() {
    assert_rebuilt(
        |s| {
            let part = mirror_keys(s).into_iter().find(|k| k[17] == b'p').unwrap();
            s.raw_tree().remove(part).unwrap();
        },
        "part 0 of 1 is missing",
    );
}

#[test]
fn a_mirror_whose_stamp_does_not_read_is_not_taken() {
    assert_rebuilt(
        |s| {
            let stamp = mirror_keys(s).into_iter().find(|k| k[17] == b'h').unwrap();
            s.raw_tree().insert(stamp, &b"{\"run\":"[..]).unwrap();
        },
        "its stamp does not read",
    );
}

/// A stamp put back from an earlier run (the mirror of run 1 saved, then restored after run
/// 2): it names a run that is no longer the base.
#[test]
fn a_mirror_of_an_earlier_run_is_not_taken() {
    let (first, second) = tenants();
    let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
    let store = SledStore::temporary().unwrap();
    run(&store, &first, &clock);
    run(&store, &first, &clock);
    let saved: Vec<_> = mirror_keys(&store)
        .into_iter()
        .map(|k| (k.clone(), store.raw_tree().get(&k).unwrap().unwrap()))
        .collect();
    run(&store, &second, &clock);
    for (k, v) in saved {
        store.raw_tree().insert(k, v).unwrap();
    }
    let third = run(&store, &second, &clock);
    match third.base_from {
        Some(BaseFrom::Log(why)) => assert!(why.contains("not of the last run"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        check_all(&store, true).unwrap()[0].state,
        MirrorState::Matches
    );
}

/// The stamp made to name a run's last event that the log no longer holds as it was (the
/// hash edited): not taken.
#[test]
fn a_mirror_whose_stamp_names_another_last_event_is_not_taken() {
    assert_rebuilt(
        |s| {
            let key = mirror_keys(s).into_iter().find(|k| k[17] == b'h').unwrap();
            let stamp = s.raw_tree().get(&key).unwrap().unwrap();
            let mut stamp: serde_json::Value = serde_json::from_slice(&stamp).unwrap();
            stamp["hash"] = "00".repeat(32).into();
            s.raw_tree()
                .insert(key, serde_json::to_vec(&stamp).unwrap())
                .unwrap();
        },
        "is not the one it was written with",
    );
}

/// One edited with its stamp made to fit — a deliberate forgery — is taken by a run (the log's
/// hash chain does not cover the cache), and `verify` finds it: it differs from the log.
#[test]
fn a_forged_mirror_is_what_verify_finds() {
    let (first, _) = tenants();
    let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
    let store = SledStore::temporary().unwrap();
    run(&store, &first, &clock);
    run(&store, &first, &clock);
    assert_eq!(
        check_all(&store, true).unwrap()[0].state,
        MirrorState::Matches
    );
    // Only the log vouches for it unless asked to fold the log again.
    assert_eq!(
        check_all(&store, false).unwrap()[0].state,
        MirrorState::Vouched
    );
    // Forge: the mirror of an empty tenant, stamped as the real one.
    let forged_from = SledStore::temporary().unwrap();
    run(&forged_from, &snapshot(vec![], vec![]), &clock);
    run(&forged_from, &snapshot(vec![], vec![]), &clock);
    let keys = mirror_keys(&store);
    let stamp_key = keys.iter().find(|k| k[17] == b'h').unwrap();
    let part = |s: &SledStore| {
        let k = mirror_keys(s).into_iter().find(|k| k[17] == b'p').unwrap();
        s.raw_tree().get(k).unwrap().unwrap().to_vec()
    };
    // The body holds the state only (its run is the stamp's): the other store's, as it is.
    let forged = part(&forged_from);
    let mut stamp: serde_json::Value =
        serde_json::from_slice(&store.raw_tree().get(stamp_key).unwrap().unwrap()).unwrap();
    stamp["body"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&forged)).into();
    let part_key = keys.iter().find(|k| k[17] == b'p').unwrap();
    store.raw_tree().insert(part_key, forged).unwrap();
    store
        .raw_tree()
        .insert(stamp_key, serde_json::to_vec(&stamp).unwrap())
        .unwrap();
    // The log vouches for it (the stamp was made to fit); folding the log shows the forgery.
    assert_eq!(
        check_all(&store, false).unwrap()[0].state,
        MirrorState::Vouched
    );
    let checks = check_all(&store, true).unwrap();
    assert_eq!(checks[0].state, MirrorState::Differs, "{checks:?}");
    assert_eq!(checks[0].why.as_deref(), Some("the Entra users differ"));
}

/// A run that changed nothing leaves the body as it was, under a new stamp naming it (its run,
/// its chain's length): the next run takes it, and it still matches the log.
#[test]
fn a_run_that_changed_nothing_restamps_the_mirror() {
    let (first, _) = tenants();
    let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
    let store = SledStore::temporary().unwrap();
    run(&store, &first, &clock);
    run(&store, &first, &clock);
    let parts = |s: &SledStore| -> Vec<_> {
        mirror_keys(s)
            .into_iter()
            .filter(|k| k[17] == b'p')
            .map(|k| s.raw_tree().get(k).unwrap().unwrap())
            .collect()
    };
    let before = parts(&store);
    // Every entry decided again, from the mirror: the same state, only the stamp is new.
    let third = run_deciding(&store, &first, &clock, true);
    assert_eq!(third.base_from, Some(BaseFrom::Mirror));
    assert_eq!(parts(&store), before, "the body is the same");
    // The same inputs again: the base's decisions taken, the body kept, the stamp renewed.
    let fourth = run(&store, &first, &clock);
    assert_eq!(fourth.base_from, Some(BaseFrom::Settled));
    assert_eq!(parts(&store), before, "the body is the same");
    let stamp = store.mirrors().unwrap().remove(0).1.unwrap();
    assert_eq!((stamp.run, stamp.length), (fourth.run, 4));
    assert!(stamp.settled.is_some(), "{stamp:?}");
    let checks = check_all(&store, true).unwrap();
    assert_eq!(checks[0].state, MirrorState::Matches, "{checks:?}");
}

/// A body whose compressed block claims to hold more than LZ4 can make of it (4 GiB from a few
/// kilobytes), its stamp made to fit: not allocated on its word, not taken.
#[test]
fn a_mirror_claiming_an_impossible_size_is_not_taken() {
    assert_rebuilt(
        |s| {
            let keys = mirror_keys(s);
            let part = keys.iter().find(|k| k[17] == b'p').unwrap();
            let mut body = s.raw_tree().get(part).unwrap().unwrap().to_vec();
            body[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
            let stamp_key = keys.iter().find(|k| k[17] == b'h').unwrap();
            let mut stamp: serde_json::Value =
                serde_json::from_slice(&s.raw_tree().get(stamp_key).unwrap().unwrap()).unwrap();
            stamp["body"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)).into();
            s.raw_tree().insert(part, body).unwrap();
            s.raw_tree()
                .insert(stamp_key, serde_json::to_vec(&stamp).unwrap())
                .unwrap();
        },
        "cannot hold",
    );
}

/// A run over the same inputs as its base takes the base's decisions only while the chain has
/// room: the run that would make it longer than `MAX_CHAIN` records in full, the one after it
/// folds that full run, and the next takes its decisions again.
#[test]
fn runs_over_unchanged_inputs_keep_the_chain_bounded() {
    let (first, _) = tenants();
    let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
    let store = SledStore::temporary().unwrap();
    let runs: Vec<RunResult> = (0..engine::chain::MAX_CHAIN + 3)
        .map(|_| run(&store, &first, &clock))
        .collect();
    let full = engine::chain::MAX_CHAIN;
    assert!(runs[3..full]
        .iter()
        .all(|r| r.base_from == Some(BaseFrom::Settled)));
    assert_eq!((runs[full].base, &runs[full].base_from), (None, &None));
    assert!(matches!(runs[full + 1].base_from, Some(BaseFrom::Log(_))));
    assert_eq!(runs[full + 2].base_from, Some(BaseFrom::Settled));
    let stamp = store.mirrors().unwrap().remove(0).1.unwrap();
    assert_eq!((stamp.full, stamp.length), (runs[full].run, 3));
    assert_eq!(
        check_all(&store, true).unwrap()[0].state,
        MirrorState::Matches
    );
}

/// A stamp edited to say that a run which changed the server did not, with the server's
/// version made to fit, is not believed: the base's decisions are read from the log, and they
/// change the server — the run reads its inputs.
#[test]
fn a_stamp_claiming_a_settled_base_is_checked_against_the_log() {
    let (first, second) = tenants();
    let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
    let store = SledStore::temporary().unwrap();
    run(&store, &first, &clock);
    run(&store, &first, &clock);
    let changed = run(&store, &second, &clock);
    assert!(changed.entries.iter().any(|e| e.op.is_some()));
    let key = mirror_keys(&store)
        .into_iter()
        .find(|k| k[17] == b'h')
        .unwrap();
    let mut stamp: serde_json::Value =
        serde_json::from_slice(&store.raw_tree().get(&key).unwrap().unwrap()).unwrap();
    assert!(stamp.get("settled").is_none(), "{stamp}");
    stamp["settled"] = serde_json::json!({
        "serverVersion": store.server_version().unwrap().unwrap(),
        "deleted": 0,
    });
    store
        .raw_tree()
        .insert(&key, serde_json::to_vec(&stamp).unwrap())
        .unwrap();
    let again = run(&store, &second, &clock);
    assert_eq!(again.base_from, Some(BaseFrom::Mirror));
    // Its decisions, then, stand for the next.
    assert_eq!(
        run(&store, &second, &clock).base_from,
        Some(BaseFrom::Settled)
    );
}
