//! Any bytes as a server file: accepted, or refused with one line naming the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = adapters::target::parse_server_state(data, "s.json") {
        roster_fuzz::one_line("s.json", &e.to_string());
    }
});
