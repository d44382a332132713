//! The floor an import is measured against: parse the tenant file, then append the same
//! number of events an import writes to a fresh sled store, in one step, with one flush.
//! Nothing is planned, nothing is applied: what is left is the cost of reading the input and
//! persisting the log, which no import can avoid.
//!
//! floor TENANT.json EVENTS STORE_DIR   → one JSON line: parse_ms, append_ms, total_ms

use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use engine::event::{Event, UserSeen};
use engine::{EventStore, RunId, SledStore};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, tenant, events, store] = args.as_slice() else {
        eprintln!("usage: floor TENANT.json EVENTS STORE_DIR");
        std::process::exit(2);
    };
    let events: usize = events.parse().expect("EVENTS is a number");
    let start = Instant::now();
    let loaded = adapters::fixture::read_tenant(Path::new(tenant)).expect("a valid tenant fixture");
    let parsed = start.elapsed();
    let store = SledStore::open(Path::new(store)).expect("a store");
    let users = &loaded.snapshot.users;
    let now = chrono::Utc::now();
    let run = RunId::new(now, [7; 10]);
    // Events of a realistic size: the tenant's own users, as many times as needed.
    let mut stream = users
        .iter()
        .cycle()
        .take(events)
        .map(|u| Cow::Owned(Event::UserSeen(UserSeen::Entra { user: u.clone() })));
    store
        .commit_stream(run, now, &mut stream, &[])
        .expect("appended");
    store.flush().expect("flushed");
    let total = start.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "parse_ms": parsed.as_millis() as u64,
            "append_ms": (total - parsed).as_millis() as u64,
            "total_ms": total.as_millis() as u64,
        })
    );
}
