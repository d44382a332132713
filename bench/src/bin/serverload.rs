//! Times reading the embedded server's whole directory from a store (`server_state`), the
//! step every run takes while it reads the tenant.
//!
//! serverload STORE_DIR [REPS]   → one line per repetition: users, groups, milliseconds

use std::path::Path;
use std::time::Instant;

use engine::SledStore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: serverload STORE_DIR [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    let store = SledStore::open(Path::new(dir)).expect("a store");
    for _ in 0..reps {
        let start = Instant::now();
        let state = store.server_state().expect("the directory reads");
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{} users, {} groups in {ms:.0} ms; resident {} MiB",
            state.users().len(),
            state.groups().len(),
            resident_mib()
        );
    }
    drop(store);
    println!("store closed: resident {} MiB", resident_mib());
}

/// Resident memory now (Linux; 0 elsewhere).
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| (pages * 4096) >> 20)
}
