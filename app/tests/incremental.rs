//! Incremental runs against full runs: a chain of runs over a tenant and a server changed
//! between them (random worlds over a small id and login space, so that successive worlds add,
//! rename, disable, soft-delete, restore and drop the same objects, change nesting and edit
//! the server) decides, records and replays exactly as full runs over the same inputs.

use adapters::clock::FixedClock;
use adapters::fixture::Loaded;
use adapters::org::{OrgConfig, OrgSource};
use adapters::source::{Mirror, Quiet, SnapshotSource, TenantSource};
use adapters::target::EmbeddedTarget;
use app::mirror::{BaseFrom, MirrorState};
use app::run::{execute, RunEnd, RunRequest, RunResult};
use engine::event::{DeletedAction, DeltaLinks, Mode, RunOptions, SelectionSpec, SourceKind};
use engine::SledStore;
use proptest::prelude::*;
use replay::rebuild::inputs_and_report;
use replay::{replay_run, verify, VerifyOptions};
use testkit::{arb_world, tenant, World};

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

/// One run of the chain: the world read, whether the server is replaced by the world's (an
/// admin's edit between runs), the mode, and the selection.
#[derive(Debug, Clone)]
struct Step {
    world: World,
    edit_server: bool,
    apply: bool,
    on_deleted: DeletedAction,
    select_all: bool,
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        arb_world(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.7),
        prop_oneof![
            Just(DeletedAction::Ignore),
            Just(DeletedAction::Disable),
            Just(DeletedAction::Delete)
        ],
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(mut world, edit_server, apply, on_deleted, select_all, complete)| {
                // Mostly complete reads: only those are recorded by difference.
                if complete {
                    world.snapshot.completeness = engine::model::Completeness::COMPLETE;
                }
                Step {
                    world,
                    edit_server,
                    apply,
                    on_deleted,
                    select_all,
                }
            },
        )
}

fn request(step: &Step, full: bool) -> RunRequest {
    let w = &step.world;
    let select = if step.select_all {
        Vec::new()
    } else {
        // Every other user and group of the world, by id.
        w.snapshot
            .users
            .iter()
            .map(|u| u.id.to_string())
            .chain(w.snapshot.groups.iter().map(|g| g.id.to_string()))
            .step_by(2)
            .collect()
    };
    RunRequest {
        mode: if step.apply {
            Mode::Apply
        } else {
            Mode::DryRun
        },
        selection: SelectionSpec {
            select,
            select_all: step.select_all,
            ..SelectionSpec::default()
        },
        options: RunOptions {
            on_deleted: step.on_deleted,
            ..w.options.clone()
        },
        started_by: "test".into(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full,
        every_entry: false,
    }
}

/// A source that tracks changes as Graph does: it hands out links after every read, and keeps
/// the base a run gives it to read changes from (the step's world is what it then reads).
struct Tracking {
    inner: SnapshotSource,
    given: std::cell::RefCell<Option<Mirror>>,
}

impl TenantSource for Tracking {
    fn kind(&self) -> SourceKind {
        SourceKind::Graph
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn read(&self) -> adapters::Result<Loaded> {
        let mut loaded = self.inner.read()?;
        loaded.tracking.links = Some(DeltaLinks {
            users: "users/delta?$deltatoken=1".into(),
            groups: "groups/delta?$deltatoken=1".into(),
        });
        Ok(loaded)
    }

    fn tracks_changes(&self) -> bool {
        true
    }

    fn read_changes(&self, base: Mirror) -> adapters::Result<Loaded> {
        let mut loaded = self.read()?;
        loaded.tracking.since = Some(base.run);
        *self.given.borrow_mut() = Some(base);
        Ok(loaded)
    }

    /// Nothing changed when the world is the one last read (the content is the snapshot's:
    /// more than Graph's recycle bins, which is all the property needs).
    fn quiet_since(&self, links: &DeltaLinks, content: &str) -> adapters::Result<Option<Quiet>> {
        Ok(
            (self.inner.content_digest().as_deref() == Some(content)).then(|| Quiet {
                links: links.clone(),
            }),
        )
    }
}

/// Runs `step`; the incremental store's source tracks changes, and the base it was given to
/// read changes from (if any) is returned too.
fn run(
    store: &SledStore,
    step: &Step,
    full: bool,
    clock: &FixedClock,
) -> (adapters::Result<RunResult>, Option<Mirror>) {
    run_from(store, step, full, true, clock)
}

/// [`run`]; `live`: the incremental store's source tracks changes as Graph does (else it reads
/// the whole tenant every time, as a fixture org's).
fn run_from(
    store: &SledStore,
    step: &Step,
    full: bool,
    live: bool,
    clock: &FixedClock,
) -> (adapters::Result<RunResult>, Option<Mirror>) {
    if step.edit_server {
        store.replace_server_state(&step.world.server).unwrap();
    }
    let source = SnapshotSource {
        loaded: Loaded {
            snapshot: step.world.snapshot.clone(),
            problems: vec![],
            tracking: Default::default(),
            content: None,
        },
        location: "memory".into(),
    };
    let tracking = Tracking {
        inner: source.clone(),
        given: Default::default(),
    };
    let source: &dyn TenantSource = if full || !live { &source } else { &tracking };
    let result = execute(
        store,
        &org(),
        source,
        &mut EmbeddedTarget::new(store),
        &request(step, full),
        clock,
        &Default::default(),
    );
    (result, tracking.given.into_inner())
}

/// Incremental runs made by the property's cases, and bases handed to the source to read
/// changes from: the property must exercise them.
static INCREMENTAL_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MIRRORS_GIVEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Runs whose base came from the mirror kept in the store.
static MIRRORS_TAKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Runs whose inputs were their base's, which took its decisions without reading them.
static SETTLED_TAKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Of those, a live org's: its change listings found nothing changed.
static SETTLED_LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn check_chain(first: World, steps: Vec<Step>) -> Result<(), TestCaseError> {
    check_chain_from(first, steps, true)
}

fn check_chain_from(first: World, steps: Vec<Step>, live: bool) -> Result<(), TestCaseError> {
    let clock = FixedClock::new("2026-11-27T08:00:00Z".parse().unwrap());
    let (incremental, full) = (
        SledStore::temporary().unwrap(),
        SledStore::temporary().unwrap(),
    );
    for s in [&incremental, &full] {
        s.replace_server_state(&first.server).unwrap();
    }
    let mut incremental_runs = 0;
    // The completed runs of the incremental store that recorded by difference: each leaves a
    // mirror (a full run leaves none).
    let mut left_mirrors = std::collections::HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        let (a, mirror) = run_from(&incremental, step, false, live, &clock);
        let (b, _) = run_from(&full, step, true, live, &clock);
        // Reading changes starts from the base run's Entra objects, exactly as it read them.
        if let Some(m) = mirror {
            let (inputs, _) = inputs_and_report(&incremental, m.run).unwrap();
            prop_assert_eq!(&m.users, &inputs.snapshot.users, "step {}", i);
            prop_assert_eq!(&m.groups, &inputs.snapshot.groups, "step {}", i);
            MIRRORS_GIVEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), Err(b)) => {
                prop_assert_eq!(a.to_string(), b.to_string());
                continue;
            }
            (a, b) => {
                return Err(TestCaseError::fail(format!(
                    "step {i}: incremental {:?} but full {:?}",
                    a.map(|r| r.run),
                    b.map(|r| r.run)
                )))
            }
        };
        prop_assert_eq!(&a.end, &b.end, "step {}", i);
        prop_assert_eq!(a.summary(), b.summary(), "step {}", i);
        if a.base_from == Some(BaseFrom::Settled) {
            // Its base's decisions: only those it records again are returned, each as the
            // full run decided it.
            for e in &a.entries {
                prop_assert!(b.entries.contains(e), "step {}: {:?}", i, e);
            }
            SETTLED_TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if live {
                prop_assert_eq!(a.changes_since, a.base, "step {}", i);
                SETTLED_LIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        } else {
            prop_assert_eq!(&a.entries, &b.entries, "step {}", i);
        }
        prop_assert_eq!(&a.deleted, &b.deleted, "step {}", i);
        prop_assert_eq!(
            incremental.server_state().unwrap(),
            full.server_state().unwrap(),
            "step {}",
            i
        );
        incremental_runs += usize::from(a.base.is_some());
        // An incremental run's base is the mirror its base run left, if that run was one by
        // difference; the log's fold after a full run. The mirror in the store is exactly what
        // folding the log gives.
        if let Some(base) = a.base {
            match left_mirrors.contains(&base) {
                true => {
                    prop_assert!(
                        matches!(&a.base_from, Some(BaseFrom::Mirror | BaseFrom::Settled)),
                        "step {}: {:?}",
                        i,
                        a.base_from
                    );
                    MIRRORS_TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                false => prop_assert!(
                    matches!(&a.base_from, Some(BaseFrom::Log(_))),
                    "step {}: {:?}",
                    i,
                    a.base_from
                ),
            }
            if a.end == RunEnd::Completed {
                left_mirrors.insert(a.run);
            }
        }
        for check in app::mirror::check_all(&incremental, true).unwrap() {
            prop_assert_eq!(check.state, MirrorState::Matches, "step {}: {:?}", i, check);
        }
        // Read back from the log: every entry, as the full run recorded them.
        let (inputs_a, report_a) = inputs_and_report(&incremental, a.run).unwrap();
        let (inputs_b, report_b) = inputs_and_report(&full, b.run).unwrap();
        prop_assert_eq!(&inputs_a.snapshot, &inputs_b.snapshot, "step {}", i);
        prop_assert_eq!(&inputs_a.server, &inputs_b.server, "step {}", i);
        prop_assert_eq!(&inputs_a.deleted, &inputs_b.deleted, "step {}", i);
        prop_assert_eq!(&inputs_a.choices, &inputs_b.choices, "step {}", i);
        if a.end == RunEnd::Completed {
            prop_assert_eq!(&report_a.entries, &report_b.entries, "step {}", i);
        }
        prop_assert_eq!(report_a.summary(), report_b.summary(), "step {}", i);
        let replayed = replay_run(&incremental, a.run).unwrap();
        prop_assert!(replayed.identical(), "step {i}: {:?}", replayed.differences);
    }
    verify(&incremental, &VerifyOptions::default()).unwrap();
    INCREMENTAL_RUNS.fetch_add(incremental_runs, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

proptest! {
    #![proptest_config(testkit::proptest_config(48))]

    /// Every run of a chain decides, records and replays as a full run over the same inputs.
    #[test]
    fn a_chain_of_incremental_runs_equals_full_runs(
        first in arb_world(),
        steps in prop::collection::vec(arb_step(), 1..7),
    ) {
        check_chain(first, steps)?;
    }
}

/// A step (half the time with the request of the one before: only the tenant changed), then
/// the same world read again up to three times, each a dry run or an import,
/// mostly with the server left as the runs before left it and the same selection (now and then
/// the server put back as the world has it, or the selection changed): a fixture org that
/// little changed in.
fn arb_repeated_steps() -> impl Strategy<Value = Vec<Step>> {
    let again = prop::collection::vec(
        (
            prop::bool::ANY,
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.15),
        ),
        0..4,
    );
    prop::collection::vec((arb_step(), again, prop::bool::weighted(0.5)), 1..5).prop_map(|steps| {
        let mut out: Vec<Step> = Vec::new();
        for (mut step, again, same_request) in steps {
            // Half the time only the tenant changed: the same request, the server as left.
            if let Some(before) = out.last().filter(|_| same_request) {
                step.on_deleted = before.on_deleted;
                step.select_all = before.select_all;
                step.edit_server = false;
            }
            let repeats: Vec<Step> = again
                .into_iter()
                .map(|(apply, edit_server, other_selection)| Step {
                    edit_server,
                    apply,
                    select_all: step.select_all != other_selection,
                    ..step.clone()
                })
                .collect();
            out.push(step);
            out.extend(repeats);
        }
        out
    })
}

proptest! {
    #![proptest_config(testkit::proptest_config(48))]

    /// A chain with runs over the same inputs again, of a fixture org and of a live one: a run
    /// whose inputs are its base's takes its base's decisions, and still decides, records and
    /// replays as a full run.
    #[test]
    fn a_chain_with_runs_over_unchanged_inputs_equals_full_runs(
        first in arb_world(),
        steps in arb_repeated_steps(),
    ) {
        check_chain_from(first.clone(), steps.clone(), false)?;
        check_chain_from(first, steps, true)?;
    }
}

#[test]
fn the_chains_take_their_base_s_decisions_when_nothing_changed() {
    a_chain_with_runs_over_unchanged_inputs_equals_full_runs();
    let taken = SETTLED_TAKEN.load(std::sync::atomic::Ordering::Relaxed);
    assert!(taken > 20, "only {taken} runs took their base's decisions");
    let live = SETTLED_LIVE.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        live > 10,
        "only {live} live runs took their base's decisions"
    );
}

#[test]
fn the_chains_hold_incremental_runs() {
    a_chain_of_incremental_runs_equals_full_runs();
    let made = INCREMENTAL_RUNS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(made > 20, "only {made} incremental runs");
    let given = MIRRORS_GIVEN.load(std::sync::atomic::Ordering::Relaxed);
    assert!(given > 20, "only {given} reads of changes");
    let taken = MIRRORS_TAKEN.load(std::sync::atomic::Ordering::Relaxed);
    assert!(taken > 20, "only {taken} bases taken from the mirror");
}

/// However sound each change listing, the tenant is read whole again at least once a day: a
/// run whose chain of change listings started more than `WHOLE_READ_EVERY` ago reads the whole
/// tenant, and says why.
#[test]
fn the_tenant_is_read_whole_again_after_a_day_of_change_listings() {
    let store = SledStore::temporary().unwrap();
    let step = Step {
        world: World {
            snapshot: testkit::snapshot(vec![testkit::user(1, "ann@x.com")], vec![]),
            server: Default::default(),
            choices: vec![],
            options: RunOptions::default(),
        },
        edit_server: false,
        apply: true,
        on_deleted: DeletedAction::Ignore,
        select_all: true,
    };
    let at = |t: &str| FixedClock::new(t.parse().unwrap());
    let (first, mirror) = run(&store, &step, false, &at("2026-11-27T08:00:00Z"));
    assert!(first.is_ok() && mirror.is_none(), "a whole read first");
    // Within the day: only the changes.
    let (_, mirror) = run(&store, &step, false, &at("2026-11-27T20:00:00Z"));
    assert!(mirror.is_some(), "the changes since the last run");
    // Nothing changed: the change listing says so, and the run takes its base's decisions.
    let (quiet, _) = run(&store, &step, false, &at("2026-11-28T07:00:00Z"));
    let quiet = quiet.unwrap();
    assert_eq!(
        quiet.base_from,
        Some(BaseFrom::Settled),
        "the chain started 23 hours ago"
    );
    assert!(quiet.changes_since.is_some());
    // Past a day since the whole read the chain started from: whole again, said.
    let (whole, mirror) = run(&store, &step, false, &at("2026-11-28T08:30:00Z"));
    assert!(mirror.is_none(), "read whole");
    let whole = whole.unwrap();
    let whole_run = Some(whole.run);
    let problems = &whole.problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("last read whole 24 hours ago")),
        "{problems:?}"
    );
    // And the next day starts from it.
    let (next, _) = run(&store, &step, false, &at("2026-11-28T09:00:00Z"));
    assert_eq!(next.unwrap().changes_since, whole_run);
}
