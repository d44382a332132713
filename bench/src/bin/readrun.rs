//! Times what every replay of a run must do before deciding anything: read the run's chunks,
//! decompress them and decode every event (`EventStore::visit_run`), folding nothing.
//!
//! readrun STORE_DIR RUN_ID [REPS]   → one line per repetition: events, milliseconds, events/s

use std::path::Path;
use std::time::Instant;

use engine::{EventStore, RunId, SledStore};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(run)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: readrun STORE_DIR RUN_ID [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(3);
    let run: RunId = run.parse().expect("RUN_ID is a run id");
    let store = SledStore::open(Path::new(dir)).expect("a store");
    for _ in 0..reps {
        let start = Instant::now();
        let mut events = 0u64;
        store
            .visit_run(run, &|_| true, &mut |_| events += 1)
            .expect("the run reads");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{events} events in {:.0} ms: {:.0} events/s",
            secs * 1000.0,
            events as f64 / secs
        );
    }
}
