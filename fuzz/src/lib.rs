//! What every fuzz target checks of an error: it names its input, fits on one line and is
//! bounded — the same rule as `adapters/tests/hostile.rs`.

pub fn one_line(origin: &str, msg: &str) {
    assert!(msg.starts_with(origin), "names the input: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.len() < 2000, "bounded: {} bytes", msg.len());
}
