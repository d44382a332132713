//! Whole runs through `run::execute`, over random worlds: what the log records folds back into
//! the same report, the recorded inputs re-plan to the same decisions, a dry run never changes
//! the server, and the server always holds exactly what the `Imported` events say.

use adapters::clock::FixedClock;
use adapters::fixture::Loaded;
use adapters::org::{OrgConfig, OrgSource};
use adapters::source::SnapshotSource;
use adapters::target::{read_server_file, write_server_file, EmbeddedTarget, FileTarget};
use app::run::{execute, RunEnd, RunRequest, RunResult};
use engine::event::{DeletedAction, Event, Mode, Outcome, RunOptions, SelectionSpec};
use engine::model::ServerState;
use engine::plan::{plan, PlanInput};
use engine::projection::{DeletedView, Projection, Report, RunInputs};
use engine::{EventStore, SledStore};
use proptest::prelude::*;
use testkit::{arb_world, tenant, World};

fn source(w: &World) -> SnapshotSource {
    SnapshotSource {
        loaded: Loaded {
            snapshot: w.snapshot.clone(),
            problems: vec![],
            tracking: Default::default(),
            content: None,
        },
        location: "memory".into(),
    }
}

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

fn request(w: &World, mode: Mode, on_deleted: DeletedAction) -> RunRequest {
    RunRequest {
        mode,
        selection: SelectionSpec {
            select_all: true,
            ..SelectionSpec::default()
        },
        options: RunOptions {
            on_deleted,
            ..w.options.clone()
        },
        started_by: "test".into(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full: false,
        every_entry: false,
    }
}

/// A target that does something (another program writing, a watcher noting the time) just
/// before the run imports into it.
struct BeforeImport<T, F> {
    inner: T,
    before: F,
}

impl<T: adapters::target::Target, F: FnMut() + Sync> adapters::target::Target
    for BeforeImport<T, F>
{
    fn info(&self) -> engine::event::TargetInfo {
        self.inner.info()
    }
    fn load(&self) -> adapters::Result<ServerState> {
        self.inner.load()
    }
    fn import(
        &mut self,
        store: &dyn engine::Store,
        run: engine::RunId,
        clock: &dyn adapters::clock::Clock,
        state: &mut ServerState,
        entries: Vec<engine::event::EntryOutcome>,
        stop: &adapters::interrupt::Interrupt,
    ) -> adapters::Result<adapters::target::Applied> {
        (self.before)();
        self.inner.import(store, run, clock, state, entries, stop)
    }
}

fn clock() -> FixedClock {
    FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap())
}

fn run_embedded(store: &SledStore, w: &World, req: &RunRequest) -> adapters::Result<RunResult> {
    execute(
        store,
        &org(),
        &source(w),
        &mut EmbeddedTarget::new(store),
        req,
        &clock(),
        &Default::default(),
    )
}

fn arb_case() -> impl Strategy<Value = (World, DeletedAction)> {
    (
        arb_world(),
        prop_oneof![
            Just(DeletedAction::Ignore),
            Just(DeletedAction::Disable),
            Just(DeletedAction::Delete)
        ],
    )
}

proptest! {
    #![proptest_config(testkit::proptest_config(96))]

    /// Folding a run's events rebuilds what the run reported, and re-planning its recorded
    /// inputs gives the same decisions.
    #[test]
    fn the_log_replays_to_the_same_report_and_decisions((w, on_deleted) in arb_case(), apply in any::<bool>()) {
        let store = SledStore::temporary().unwrap();
        store.replace_server_state(&w.server).unwrap();
        let mode = if apply { Mode::Apply } else { Mode::DryRun };
        let Ok(result) = run_embedded(&store, &w, &request(&w, mode, on_deleted)) else {
            // Only an empty selection is refused as bad input here; nothing was written then.
            prop_assert_eq!(store.head().seq.0, 0);
            return Ok(());
        };
        let events = store.read_run(result.run).unwrap();
        let report = Report::fold(&events);
        if result.end == RunEnd::Completed {
            prop_assert_eq!(&report.entries, &result.entries);
        }
        let mut searched = engine::search::SearchView::default();
        events
            .iter()
            .for_each(|e| searched.take(e.run, e.event.clone()));
        let mut expected = engine::search::SearchView::from_snapshot(&w.snapshot);
        prop_assert_eq!(
            searched.search("", engine::search::TypeFilter::All),
            expected.search("", engine::search::TypeFilter::All)
        );
        let deleted = DeletedView::fold(&events);
        prop_assert_eq!(deleted.rows.len(), result.deleted);

        let inputs = RunInputs::fold(&events).unwrap();
        prop_assert_eq!(&inputs.snapshot, &w.snapshot);
        prop_assert_eq!(&inputs.server, &w.server);
        let deleted = if inputs.started.options.check_deleted {
            engine::plan::find_deleted(&inputs.started.tenant_id, &inputs.snapshot, &inputs.server)
        } else {
            Vec::new()
        };
        let again = plan(PlanInput {
            tenant: &inputs.started.tenant_id,
            snapshot: &inputs.snapshot,
            server: &inputs.server,
            deleted: &deleted,
            choices: &inputs.choices,
            options: &inputs.started.options,
            baseline: None,
            group_details: true,
            unkept: &[],
            rules: inputs.started.rules,
        });
        prop_assert_eq!(&again.deleted, &inputs.deleted);
        if result.end == RunEnd::Completed {
            prop_assert_eq!(&again.entries, &report.entries);
        }
    }

    /// A dry run never changes the server, embedded or file.
    #[test]
    fn a_dry_run_never_changes_the_server((w, on_deleted) in arb_case()) {
        let store = SledStore::temporary().unwrap();
        store.replace_server_state(&w.server).unwrap();
        let req = request(&w, Mode::DryRun, on_deleted);
        let _ = run_embedded(&store, &w, &req);
        prop_assert_eq!(store.server_state().unwrap(), w.server.clone());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.json");
        write_server_file(&path, &w.server).unwrap();
        let before = std::fs::read(&path).unwrap();
        let source = source(&w);
        let mut target = FileTarget::open(&path, "test").unwrap();
        let _ = execute(&store, &org(), &source, &mut target, &req, &clock(), &Default::default());
        prop_assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// The server holds exactly what the log's `Imported` events say, for both targets; and a
    /// second identical import adds nothing.
    #[test]
    fn the_server_is_what_the_log_says((w, on_deleted) in arb_case()) {
        let store = SledStore::temporary().unwrap();
        store.replace_server_state(&w.server).unwrap();
        let req = request(&w, Mode::Apply, on_deleted);
        let Ok(first) = run_embedded(&store, &w, &req) else { return Ok(()) };
        let mut expected = w.server.clone();
        for env in store.read_run(first.run).unwrap() {
            if let Event::Imported(e) = &env.event {
                if let Some(op) = &e.op {
                    expected.apply(op);
                }
            }
        }
        prop_assert_eq!(store.server_state().unwrap(), expected.clone());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.json");
        write_server_file(&path, &w.server).unwrap();
        let file_store = SledStore::temporary().unwrap();
        let source = source(&w);
        execute(&file_store, &org(), &source, &mut FileTarget::open(&path, "test").unwrap(), &req, &clock(), &Default::default()).unwrap();
        prop_assert_eq!(read_server_file(&path).unwrap(), expected);

        if first.end == RunEnd::Completed {
            let second = run_embedded(&store, &w, &req).unwrap();
            prop_assert!(second.entries.iter().all(|e| e.outcome != Outcome::Added), "{:?}", second.entries);
        }
    }
}

#[test]
fn bad_selection_writes_nothing() {
    let store = SledStore::temporary().unwrap();
    let w = World {
        snapshot: testkit::snapshot(vec![testkit::user(1, "a@x.com")], vec![]),
        server: ServerState::default(),
        choices: vec![],
        options: RunOptions::default(),
    };
    let mut req = request(&w, Mode::Apply, DeletedAction::Ignore);
    req.selection = SelectionSpec {
        select: vec!["nobody".into()],
        ..SelectionSpec::default()
    };
    let err = run_embedded(&store, &w, &req).unwrap_err();
    assert!(err.is_bad_input());
    assert!(
        err.to_string()
            .contains("\"nobody\" matches no user or group"),
        "{err}"
    );
    assert_eq!(store.head().seq.0, 0);
    assert!(store.runs().unwrap().is_empty());
}

/// A server file that another program wrote after the run read it is not written over: the
/// run ends aborted, every change recorded as not applied, and the other program's file stays.
#[test]
fn a_server_file_changed_since_it_was_read_is_not_written_over() {
    let w = World {
        snapshot: testkit::snapshot(vec![testkit::user(1, "ann@contoso.com")], vec![]),
        server: ServerState::default(),
        choices: vec![],
        options: RunOptions::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.json");
    write_server_file(&path, &w.server).unwrap();
    let store = SledStore::temporary().unwrap();
    // Another program writes the file just before the run writes it.
    let mut target = BeforeImport {
        inner: FileTarget::open(&path, "test").unwrap(),
        before: || std::fs::write(&path, "{\"users\": [], \"groups\": []}\n").unwrap(),
    };
    let req = request(&w, Mode::Apply, DeletedAction::Ignore);
    let result = execute(
        &store,
        &org(),
        &source(&w),
        &mut target,
        &req,
        &clock(),
        &Default::default(),
    )
    .unwrap();
    match &result.end {
        RunEnd::Aborted(why) => assert!(why.contains("changed since this run read it"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(result.entries.iter().all(|e| e.outcome == Outcome::Failed));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"users\": [], \"groups\": []}\n"
    );
}

/// Ctrl-C while an import applies: the batch being written is finished, the rest is neither
/// applied nor recorded, and the run ends aborted saying how far it got. The server holds
/// exactly what the log says, and the next import does the rest.
#[test]
fn ctrl_c_during_an_import_stops_between_batches_and_records_what_was_done() {
    use adapters::clock::Clock;
    use adapters::interrupt::Interrupt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The clock, pressing Ctrl-C when the import asks the time for its second batch.
    struct CtrlCAtSecondBatch {
        inner: FixedClock,
        importing: Arc<AtomicBool>,
        calls: AtomicUsize,
        stop: Interrupt,
    }
    impl Clock for CtrlCAtSecondBatch {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            if self.importing.load(Ordering::SeqCst)
                && self.calls.fetch_add(1, Ordering::SeqCst) == 1
            {
                self.stop.request();
            }
            self.inner.now()
        }
        fn new_run_id(&self, at: chrono::DateTime<chrono::Utc>) -> engine::RunId {
            self.inner.new_run_id(at)
        }
    }
    let users = (1..=3000)
        .map(|i| testkit::user(i, &format!("user{i}@contoso.com")))
        .collect();
    let w = World {
        snapshot: testkit::snapshot(users, vec![]),
        server: ServerState::default(),
        choices: vec![],
        options: RunOptions::default(),
    };
    let store = SledStore::temporary().unwrap();
    let stop = Interrupt::default();
    let importing = Arc::new(AtomicBool::new(false));
    let clock = CtrlCAtSecondBatch {
        inner: clock(),
        importing: importing.clone(),
        calls: AtomicUsize::new(0),
        stop: stop.clone(),
    };
    // The embedded server, saying when the import begins.
    let mut target = BeforeImport {
        inner: EmbeddedTarget::new(&store),
        before: || importing.store(true, Ordering::SeqCst),
    };
    let req = request(&w, Mode::Apply, DeletedAction::Ignore);
    let result = execute(
        &store,
        &org(),
        &source(&w),
        &mut target,
        &req,
        &clock,
        &stop,
    )
    .unwrap();
    match &result.end {
        RunEnd::Aborted(why) => assert_eq!(
            why,
            "interrupted (Ctrl-C) after 2048 of 3000 entries were applied and recorded; the other 952 were not applied"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(result.entries.len(), 2048);
    assert!(result.entries.iter().all(|e| e.outcome == Outcome::Added));
    // The server holds what the log says was done, and nothing else.
    assert_eq!(store.server_state().unwrap().users().len(), 2048);
    let report = Report::fold(&store.read_run(result.run).unwrap());
    assert_eq!(report.entries, result.entries);
    assert_eq!(report.status, Some(engine::event::RunStatus::Aborted));

    // The next import finishes the work.
    let again = run_embedded(&store, &w, &req).unwrap();
    assert_eq!(again.end, RunEnd::Completed);
    assert_eq!(store.server_state().unwrap().users().len(), 3000);
    assert_eq!(
        again
            .entries
            .iter()
            .filter(|e| e.outcome == Outcome::Added)
            .count(),
        952
    );
}

/// Ctrl-C before anything was applied (while the tenant was read): the run is recorded as
/// aborted, and nothing is planned, applied or changed.
#[test]
fn ctrl_c_before_anything_is_applied_changes_nothing() {
    let w = World {
        snapshot: testkit::snapshot(vec![testkit::user(1, "ann@contoso.com")], vec![]),
        server: ServerState::default(),
        choices: vec![],
        options: RunOptions::default(),
    };
    let store = SledStore::temporary().unwrap();
    let stop = adapters::interrupt::Interrupt::default();
    stop.request();
    let req = request(&w, Mode::Apply, DeletedAction::Ignore);
    let err = execute(
        &store,
        &org(),
        &source(&w),
        &mut EmbeddedTarget::new(&store),
        &req,
        &clock(),
        &stop,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string().split_once(": ").unwrap().1,
        "interrupted (Ctrl-C) while reading the tenant; nothing was changed on the server"
    );
    assert!((store.server_state().unwrap().users().len() == 0));
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    let report = Report::fold(&store.read_run(runs[0]).unwrap());
    assert!(report.entries.is_empty());
    assert_eq!(report.status, Some(engine::event::RunStatus::Aborted));
}
