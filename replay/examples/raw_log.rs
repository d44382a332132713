//! Dumps a store's log exactly as stored, one JSON line per event: `{"seq", "hash", "record"}`,
//! `record` being the stored bytes as a string. Used to make the old-format log fixtures under
//! `fixtures/logs/` (see `replay/tests/upcast.rs`), which are loaded back byte for byte.
//!
//! cargo run -p replay --example raw_log -- STORE_DIR > fixtures/logs/NAME.jsonl

use engine::{EventStore, Seq, SledStore};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: raw_log STORE_DIR");
    let store = SledStore::open(&std::path::Path::new(&dir).join("db")).expect("open store");
    for raw in store.raw_events(Seq(1)) {
        let raw = raw.expect("read event");
        let line = serde_json::json!({
            "seq": raw.seq.0,
            "hash": raw.hash.to_hex(),
            "record": String::from_utf8(raw.record.to_vec()).expect("records are UTF-8 JSON"),
        });
        println!("{line}");
    }
}
