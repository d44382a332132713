//! Times reading a tenant fixture (`read_tenant`: the file parsed, checked and hashed), the
//! step every fixture run takes while the server loads.
//!
//! tenantread TENANT.json [REPS]   → one line per repetition: users, groups, milliseconds

use std::path::Path;
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: tenantread TENANT.json [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    for _ in 0..reps {
        let start = Instant::now();
        let loaded = adapters::fixture::read_tenant(Path::new(path)).expect("the tenant reads");
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{} users, {} groups in {ms:.0} ms; resident {} MiB",
            loaded.snapshot.users.len(),
            loaded.snapshot.groups.len(),
            resident_mib()
        );
    }
}

/// Resident memory now (Linux; 0 elsewhere).
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| (pages * 4096) >> 20)
}
