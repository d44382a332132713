//! Times the planner alone on a tenant and a server state, the way `roster import
//! --select-all --check-deleted` calls it: for profiling the engine's decisions.
//!
//! planner TENANT.json SERVER.json [REPS]

use std::path::Path;
use std::time::Instant;

use engine::event::{DeletedAction, RunOptions, SelectionSpec};
use engine::plan::{choose_deleted_actions, find_deleted, plan, PlanInput};
use engine::search::{resolve_selection, SearchView};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (tenant, server) = (Path::new(&args[1]), Path::new(&args[2]));
    let reps: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(3);
    let snapshot = adapters::fixture::read_tenant(tenant)
        .expect("a tenant")
        .snapshot;
    let server = adapters::target::read_server_file(server).expect("a server");
    let options = RunOptions {
        check_deleted: true,
        on_deleted: DeletedAction::Disable,
        max_deletions: u32::MAX,
        ..RunOptions::default()
    };
    let mut view = SearchView::from_snapshot(&snapshot);
    let selection = SelectionSpec {
        select_all: true,
        ..SelectionSpec::default()
    };
    let mut choices = resolve_selection(
        &mut view,
        &selection,
        engine::search::EmptySelection::Allowed,
    )
    .expect("a selection");
    let deleted = find_deleted(&snapshot.tenant_id, &snapshot, &server);
    choices.extend(choose_deleted_actions(&deleted, options.on_deleted, &[]).expect("actions"));
    for _ in 0..reps {
        let start = Instant::now();
        let p = plan(PlanInput {
            tenant: &snapshot.tenant_id,
            snapshot: &snapshot,
            server: &server,
            deleted: &deleted,
            choices: &choices,
            options: &options,
            baseline: None,
            group_details: true,
            unkept: &[],
            rules: engine::event::DECISION_RULES,
        });
        println!("{} entries in {:?}", p.entries.len(), start.elapsed());
    }
}
