//! Incremental runs against full runs: a chain of runs over a tenant and a server changed
//! between them (random worlds over a small id and login space, so that successive worlds add,
//! rename, disable, soft-delete, restore and drop the same objects, change nesting and edit
//! the server) decides, records and replays exactly as full runs over the same inputs. Chains
//! also run the same inputs again (a run that takes its base's decisions), make small changes
//! (a rename, a disabled account, a member more or less), and — seventy runs long, thirty
//! minutes apart — cross the chain's length bound and a live org's day of change listings.

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
/// Runs planned by difference that left entries undecided (their chain's outcome stands).
static BY_DIFFERENCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Of those, a live org's: its change listings found nothing changed.
static SETTLED_LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn check_chain(first: World, steps: Vec<Step>) -> Result<(), TestCaseError> {
    check_chain_from(first, steps, true, 0).map(drop)
}

/// What a chain went through: full runs after its first, and reads made whole again because
/// the change listings were a day old.
#[derive(Debug, Default)]
struct Crossed {
    completed: usize,
    full_again: usize,
    read_whole_again: usize,
}

/// [`check_chain`]; `live`: the incremental store's source tracks changes; `minutes`: the
/// time between two steps (0: a second).
fn check_chain_from(
    first: World,
    steps: Vec<Step>,
    live: bool,
    minutes: i64,
) -> Result<Crossed, TestCaseError> {
    let mut crossed = Crossed::default();
    let start: chrono::DateTime<chrono::Utc> = "2026-11-27T08:00:00Z".parse().unwrap();
    let mut clock = FixedClock::new(start);
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
        if minutes > 0 {
            clock = FixedClock::new(start + chrono::Duration::minutes(minutes * i as i64));
        }
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
        crossed.completed += usize::from(a.end == RunEnd::Completed);
        if i > 0 && a.base.is_none() {
            crossed.full_again += 1;
        }
        if a.problems.iter().any(|p| p.contains("read whole again")) {
            crossed.read_whole_again += 1;
        }
        prop_assert_eq!(a.summary(), b.summary(), "step {}", i);
        let settled = a.base_from == Some(BaseFrom::Settled);
        let by_difference = a.not_decided != engine::event::Summary::default();
        if by_difference && !settled {
            BY_DIFFERENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if settled || by_difference {
            // Its base's decisions taken: those it records again are returned, each decided as
            // the full run decided it, in its order; the rest counted as the full run decided
            // them.
            let mut full = b.entries.iter();
            for e in &a.entries {
                prop_assert!(full.any(|f| f == e), "step {}: {:?}", i, e);
            }
        } else {
            prop_assert_eq!(&a.entries, &b.entries, "step {}", i);
        }
        if settled {
            SETTLED_TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if live {
                prop_assert_eq!(a.changes_since, a.base, "step {}", i);
                SETTLED_LIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
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
    Ok(crossed)
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

/// A small change to a tenant: what a day brings — one user renamed (to a login others may
/// hold or want), disabled or enabled, moved to another department, gone; one group gaining
/// or losing a member; or a new user.
#[derive(Debug, Clone)]
enum Tweak {
    Rename(usize, usize),
    ToggleEnabled(usize),
    Department(usize, u8),
    Drop(usize),
    Member(usize, u32),
    Add(u32, usize),
}

fn arb_tweak() -> impl Strategy<Value = Tweak> {
    prop_oneof![
        (0usize..16, 0usize..10).prop_map(|(i, l)| Tweak::Rename(i, l)),
        (0usize..16).prop_map(Tweak::ToggleEnabled),
        (0usize..16, 0u8..3).prop_map(|(i, d)| Tweak::Department(i, d)),
        (0usize..16).prop_map(Tweak::Drop),
        (0usize..6, 0u32..16).prop_map(|(g, u)| Tweak::Member(g, u)),
        (0u32..16, 0usize..10).prop_map(|(id, l)| Tweak::Add(id, l)),
    ]
}

/// `snapshot` with `tweak` made (a change Entra would refuse — a login taken — is not made).
fn tweaked(
    snapshot: &engine::model::TenantSnapshot,
    tweak: &Tweak,
) -> engine::model::TenantSnapshot {
    let login = |l: usize| {
        [
            "ann@x.com",
            "bob@x.com",
            "cy@x.com",
            "dee@x.com",
            "new1@x.com",
            "new2@x.com",
            "eve@x.com",
            "fay@x.com",
            "gus@x.com",
            "hal@x.com",
        ][l % 10]
            .to_owned()
    };
    let (mut users, mut groups) = (snapshot.users.clone(), snapshot.groups.clone());
    let taken = |users: &[engine::model::EntraUser], upn: &str| {
        users
            .iter()
            .any(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
    };
    let pick = |n: usize, len: usize| (len > 0).then(|| n % len);
    match tweak {
        Tweak::Rename(i, l) => {
            if let Some(i) = pick(*i, users.len()) {
                let upn = login(*l);
                if !taken(&users, &upn) {
                    users[i].user_principal_name = upn.into();
                }
            }
        }
        Tweak::ToggleEnabled(i) => {
            if let Some(i) = pick(*i, users.len()) {
                users[i].account_enabled = !users[i].account_enabled;
            }
        }
        Tweak::Department(i, d) => {
            if let Some(i) = pick(*i, users.len()) {
                users[i].department = Some(format!("Dept {d}").into());
            }
        }
        Tweak::Drop(i) => {
            if let Some(i) = pick(*i, users.len()) {
                let gone = users.remove(i).id;
                for g in &mut groups {
                    g.member_users.retain(|m| *m != gone);
                }
            }
        }
        Tweak::Member(g, u) => {
            if let Some(g) = pick(*g, groups.len()) {
                let id = testkit::oid(*u);
                let members = &mut groups[g].member_users;
                match members.iter().position(|m| *m == id) {
                    Some(at) => {
                        members.remove(at);
                    }
                    None => members.push(id),
                }
                groups[g].nested = None;
            }
        }
        Tweak::Add(n, l) => {
            let id = testkit::oid(*n);
            let upn = login(*l);
            let free = !users.iter().any(|u| u.id == id)
                && !snapshot.deleted_users.iter().any(|d| d.id == id)
                && !taken(&users, &upn);
            if free {
                users.push(testkit::user(*n, &upn));
            }
        }
    }
    engine::model::TenantSnapshot::new(
        snapshot.tenant_id.clone(),
        users,
        groups,
        snapshot.deleted_users.clone(),
        snapshot.deleted_groups.clone(),
        snapshot.completeness,
    )
    .expect("a tweak keeps ids unique")
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
    let tweaks = prop::collection::vec(arb_tweak(), 0..4);
    prop::collection::vec((arb_step(), again, prop::bool::weighted(0.5), tweaks), 1..5).prop_map(
        |steps| {
            let mut out: Vec<Step> = Vec::new();
            for (mut step, again, same_request, tweaks) in steps {
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
                // Then small changes, one run each, the request and the server left as they are.
                let mut world = step.world.clone();
                let mut changed = Vec::new();
                for tweak in &tweaks {
                    world.snapshot = tweaked(&world.snapshot, tweak);
                    changed.push(Step {
                        world: world.clone(),
                        edit_server: false,
                        ..step.clone()
                    });
                }
                out.push(step);
                out.extend(repeats);
                out.extend(changed);
            }
            out
        },
    )
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
        check_chain_from(first.clone(), steps.clone(), false, 0)?;
        check_chain_from(first, steps, true, 0)?;
    }
}

/// A first step, then seventy small changes (each a run, 30 minutes apart) and runs over the
/// same inputs: chains longer than `MAX_CHAIN`, and a live org's change listings older than a
/// day.
fn arb_long_chain() -> impl Strategy<Value = (World, Vec<Step>)> {
    (
        arb_world(),
        arb_step(),
        prop::collection::vec((arb_tweak(), prop::bool::weighted(0.2)), 70..76),
    )
        .prop_map(|(first, mut step, tweaks)| {
            // Every run a complete read of everything: none is refused as empty.
            step.world.snapshot.completeness = engine::model::Completeness::COMPLETE;
            step.select_all = true;
            let mut steps = vec![step.clone()];
            let mut world = step.world.clone();
            for (tweak, again) in tweaks {
                if !again {
                    world.snapshot = tweaked(&world.snapshot, &tweak);
                }
                steps.push(Step {
                    world: world.clone(),
                    edit_server: false,
                    ..step.clone()
                });
            }
            (first, steps)
        })
}

/// Long chains that crossed both bounds.
static CROSSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(testkit::proptest_config(3))]

    /// Chains past `MAX_CHAIN` runs, and past a day of change listings, planned by difference
    /// and over unchanged inputs, still decide, record and replay as full runs (run by
    /// `the_long_chains_cross_the_bounds`, which also checks they crossed).
    fn long_chains_cross_the_bounds_and_equal_full_runs((first, steps) in arb_long_chain()) {
        let fixture = check_chain_from(first.clone(), steps.clone(), false, 30)?;
        let live = check_chain_from(first, steps, true, 30)?;
        // However many runs the changes left without a selection (bad input: nothing run).
        if fixture.completed > engine::chain::MAX_CHAIN {
            prop_assert!(fixture.full_again > 0, "{:?}", fixture);
        }
        if live.completed > engine::chain::MAX_CHAIN {
            prop_assert!(live.full_again > 0 && live.read_whole_again > 0, "{:?}", live);
        }
        CROSSED.fetch_add(
            usize::from(fixture.full_again > 0 && live.read_whole_again > 0),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

#[test]
fn the_long_chains_cross_the_bounds() {
    long_chains_cross_the_bounds_and_equal_full_runs();
    let crossed = CROSSED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        crossed >= 2,
        "only {crossed} long chains crossed both bounds"
    );
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
    // Runs after a small change decide only what it reaches.
    let by_difference = BY_DIFFERENCE.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        by_difference > 20,
        "only {by_difference} runs were planned by difference"
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
