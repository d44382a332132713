//! The wizard's search field at 100k users and 10k groups: narrowing the ~109,000 rows listed as a term
//! is typed (`engine::search::narrow`, what `roster wizard` calls on every keystroke). The
//! target: an answer within 100 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use devtools::generate::{write_tenant, GenerateOptions};
use engine::search::{narrow, SearchView, TypeFilter};

fn search(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tenant = dir.path().join("t.json");
    write_tenant(
        &tenant,
        GenerateOptions {
            users: 100_000,
            groups: 10_000,
            members_per_group: 20,
            seed: 1,
            linked: 0.5,
        },
    )
    .expect("a tenant");
    let snapshot = adapters::fixture::read_tenant(&tenant)
        .expect("a valid tenant")
        .snapshot;
    let rows: Vec<_> = SearchView::from_snapshot(&snapshot)
        .search("", TypeFilter::All)
        .into_iter()
        .cloned()
        .collect();
    // The generator soft-deletes about 1 %: the rest are listed.
    assert!(rows.len() > 105_000, "{}", rows.len());
    let mut g = c.benchmark_group(format!("wizard search, {} rows", rows.len()));
    g.sample_size(20);
    for term in ["", "a", "sales", "zzzz-nothing"] {
        g.bench_function(format!("narrow {term:?}"), |b| {
            b.iter(|| narrow(&rows, term))
        });
    }
    g.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
