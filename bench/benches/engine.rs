//! Criterion benchmarks of the engine's internals on a generated tenant of 10,000 users and
//! 1,000 groups (the same generator as `roster fixture generate`): parsing a tenant fixture,
//! building the search view, planning an import, and writing, chaining and reading events.
//! Whole commands at 100k and 1M are measured by `bench/run.sh`; see BENCHMARKS.md.
//!
//!   cargo bench -p roster-bench --bench engine

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use devtools::generate::{write_server, write_tenant, GenerateOptions};
use engine::event::{
    decode_header, decode_record, encode_record, DeletedAction, Hash, RunOptions, SelectionSpec,
    UserSeen,
};
use engine::plan::{choose_deleted_actions, find_deleted, plan, PlanInput};
use engine::search::{resolve_selection, SearchView};
use engine::{Event, RunId, Seq};

const USERS: u64 = 10_000;

struct Inputs {
    tenant_bytes: Vec<u8>,
    snapshot: engine::model::TenantSnapshot,
    server: engine::model::ServerState,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = GenerateOptions {
        users: USERS,
        groups: USERS / 10,
        members_per_group: 20,
        seed: 1,
        linked: 0.5,
    };
    let (tenant, server) = (dir.path().join("t.json"), dir.path().join("s.json"));
    write_tenant(&tenant, options).expect("a tenant");
    write_server(&server, options).expect("a server");
    Inputs {
        tenant_bytes: std::fs::read(&tenant).expect("the tenant"),
        snapshot: adapters::fixture::read_tenant(&tenant)
            .expect("a valid tenant")
            .snapshot,
        server: adapters::target::read_server_file(&server).expect("a valid server"),
    }
}

fn tenant_and_view(c: &mut Criterion, i: &Inputs) {
    let mut g = c.benchmark_group("tenant");
    g.sample_size(10);
    g.throughput(Throughput::Elements(USERS));
    g.bench_function("parse fixture 10k users", |b| {
        b.iter(|| adapters::fixture::parse_tenant(&i.tenant_bytes, "t.json").expect("parses"))
    });
    g.bench_function("search view 10k users", |b| {
        b.iter(|| SearchView::from_snapshot(&i.snapshot))
    });
    g.finish();
}

fn planner(c: &mut Criterion, i: &Inputs) {
    let options = RunOptions {
        check_deleted: true,
        on_deleted: DeletedAction::Disable,
        max_deletions: u32::MAX,
        ..RunOptions::default()
    };
    let mut view = SearchView::from_snapshot(&i.snapshot);
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
    let deleted = find_deleted(&i.snapshot.tenant_id, &i.snapshot, &i.server);
    choices.extend(choose_deleted_actions(&deleted, options.on_deleted, &[]).expect("actions"));
    let mut g = c.benchmark_group("planner");
    g.sample_size(10);
    g.throughput(Throughput::Elements(choices.len() as u64));
    g.bench_function("plan select-all 10k users", |b| {
        b.iter(|| {
            plan(PlanInput {
                tenant: &i.snapshot.tenant_id,
                snapshot: &i.snapshot,
                server: &i.server,
                deleted: &deleted,
                choices: &choices,
                options: &options,
                baseline: None,
                group_details: true,
                unkept: &[],
                rules: engine::event::DECISION_RULES,
            })
        })
    });
    g.finish();
}

fn events(c: &mut Criterion, i: &Inputs) {
    let run = RunId(uuid::Uuid::now_v7());
    let time = chrono::Utc::now();
    let events: Vec<Event> = i
        .snapshot
        .users
        .iter()
        .map(|u| Event::UserSeen(UserSeen::Entra { user: u.clone() }))
        .collect();
    let records: Vec<Vec<u8>> = events
        .iter()
        .enumerate()
        .map(|(n, e)| encode_record(Seq(n as u64 + 1), run, &time, e))
        .collect();
    let mut g = c.benchmark_group("events");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("encode and chain", |b| {
        b.iter(|| {
            let mut head = Hash::GENESIS;
            for (n, e) in events.iter().enumerate() {
                let record = encode_record(Seq(n as u64 + 1), run, &time, e);
                head = Hash::chain(&head, &record);
            }
            head
        })
    });
    g.bench_function("verify: chain and read headers", |b| {
        b.iter(|| {
            let mut head = Hash::GENESIS;
            for record in &records {
                decode_header(record).expect("a header");
                head = Hash::chain(&head, record);
            }
            head
        })
    });
    g.bench_function("decode in full", |b| {
        b.iter_batched(
            || (),
            |()| {
                for record in &records {
                    decode_record(record, Hash::GENESIS).expect("an event");
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    let i = inputs();
    tenant_and_view(c, &i);
    planner(c, &i);
    events(c, &i);
}

criterion_group!(benches, all);
criterion_main!(benches);
