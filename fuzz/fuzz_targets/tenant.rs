//! Any bytes as a tenant fixture: accepted, or refused with one line naming the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = adapters::fixture::parse_tenant(data, "t.json") {
        roster_fuzz::one_line("t.json", &e.to_string());
    }
});
