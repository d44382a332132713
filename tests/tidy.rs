//! ARCHITECTURE.md's invariants that are absences, checked in the source as rust-analyzer's
//! tidy tests do: a claim the code breaks fails here, naming the file and the line.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of the files under `dir` (but `except`) holding any of `needles`, outside a
/// `#[cfg(test)]` module's tail and outside comments.
fn offending(dir: &str, except: &[&str], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in sources(&root().join(dir)) {
        let shown = file.strip_prefix(root()).unwrap().display().to_string();
        if except.iter().any(|e| shown.starts_with(e)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or_default();
            if needles.iter().any(|needle| code.contains(needle)) {
                found.push(format!("{shown}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

/// "`render/` is the only code that formats or writes output" (the wizard draws its own
/// screen): no command prints.
#[test]
fn only_render_writes_output() {
    let writes = [
        "println!",
        "print!(",
        "eprintln!",
        "eprint!(",
        "std::io::stdout()",
        "std::io::stderr()",
    ];
    let found: Vec<String> = offending("src", &["src/render/", "src/wizard/"], &writes)
        .into_iter()
        // Whether stderr is a terminal decides colour; nothing is written there.
        .filter(|l| !l.contains("is_terminal()"))
        .collect();
    assert!(
        found.is_empty(),
        "output written outside render:\n{}",
        found.join("\n")
    );
    for lib in ["engine/src", "adapters/src", "app/src", "replay/src"] {
        let found = offending(lib, &[], &writes);
        assert!(
            found.is_empty(),
            "a library writes output:\n{}",
            found.join("\n")
        );
    }
}

/// "Time and run ids come from `adapters::clock`": the wall clock is read there, and by the
/// sign-in for a token's expiry and a credential's validity — nowhere else.
#[test]
fn the_wall_clock_is_read_in_two_places() {
    let reads = ["Utc::now()", "SystemTime::now()", "Local::now()"];
    let mut found = Vec::new();
    for lib in ["engine/src", "adapters/src", "app/src", "replay/src", "src"] {
        found.extend(offending(
            lib,
            &["adapters/src/clock.rs", "adapters/src/auth.rs"],
            &reads,
        ));
    }
    assert!(
        found.is_empty(),
        "the clock read outside adapters::clock:\n{}",
        found.join("\n")
    );
}

/// "The engine does no I/O except through its store."
#[test]
fn the_engine_does_no_io_outside_its_store() {
    let io = ["std::fs", "std::net", "reqwest", "tokio", "std::process"];
    let found = offending("engine/src", &["engine/src/store/"], &io);
    assert!(found.is_empty(), "I/O in the engine:\n{}", found.join("\n"));
}

/// "No value a decision reads is taken from a default": not in the engine, which decides.
#[test]
fn no_decision_defaults_to_true() {
    let found = offending(
        "engine/src",
        &[],
        &["unwrap_or(true)", "unwrap_or_default() as bool"],
    );
    assert!(
        found.is_empty(),
        "a decision value defaulted:\n{}",
        found.join("\n")
    );
}

/// "The mirror is never taken unless the log vouches for it": a stored mirror is read only
/// where it is checked against the log (`app/src/mirror.rs`), never decoded elsewhere.
#[test]
fn the_mirror_is_read_only_where_the_log_vouches_for_it() {
    let reads = [".mirror(&", "kept::decode(", "mirror::decode("];
    let mut found = Vec::new();
    for dir in [
        "app/src",
        "src",
        "replay/src",
        "adapters/src",
        "devtools/src",
    ] {
        found.extend(offending(dir, &["app/src/mirror.rs"], &reads));
    }
    assert!(
        found.is_empty(),
        "a mirror read outside app/src/mirror.rs:\n{}",
        found.join("\n")
    );
    // A run over unchanged inputs reads a stamp (the server's version), never a body, and only
    // once the log vouches for it (`mirror::vouches`).
    let stamps: Vec<String> = [
        "app/src",
        "src",
        "replay/src",
        "adapters/src",
        "devtools/src",
    ]
    .into_iter()
    .flat_map(|dir| {
        offending(
            dir,
            &["app/src/mirror.rs", "app/src/run/repeat.rs"],
            &[".mirror_stamp(&"],
        )
    })
    .collect();
    assert!(
        stamps.is_empty(),
        "a mirror's stamp read elsewhere:\n{}",
        stamps.join("\n")
    );
}

/// The tidy checks above find what they look for (a check that cannot fail is no check).
#[test]
fn the_checks_can_fail() {
    assert!(!offending("src/render", &[], &["std::io::stdout()"]).is_empty());
    assert!(!offending("adapters/src", &[], &["Utc::now()"]).is_empty());
    assert!(!offending("engine/src/store", &[], &["std::fs"]).is_empty());
    assert!(!offending("app/src", &[], &[".mirror(&", "kept::decode("]).is_empty());
    assert!(!offending("app/src", &["app/src/mirror.rs"], &[".mirror_stamp(&"]).is_empty());
}
