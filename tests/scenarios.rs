//! Scenario tests: each folder of `fixtures/scenarios/` holds a `cmd` file, a session of roster
//! commands as an admin would type them. They run in a fresh store through the real binary, and
//! the whole transcript (exit codes, stdout, stderr) is a reviewed snapshot, with run ids, times
//! and paths redacted.
//!
//! In `cmd`: one command per line, `#` comments, `{fixtures}` for the fixtures folder and
//! `{here}` for the scenario's own folder; double quotes group words.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Splits a command line on spaces, keeping "quoted words" together.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(cur);
    }
    words
}

/// Replaces what changes from run to run: run ids, clock times, temporary paths.
pub fn redact(text: &str, store: &Path, scratch: &Path) -> String {
    let mut out = text.replace(&store.display().to_string(), "[store]");
    out = out.replace(&scratch.display().to_string(), "[scratch]");
    out = out.replace(&fixtures().display().to_string(), "[fixtures]");
    let bytes: Vec<char> = out.chars().collect();
    let mut result = String::with_capacity(out.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = uuid_v7_at(&bytes[i..]) {
            result.push_str("[run]");
            i += len;
        } else if let Some(len) = short_run_at(&bytes[i..]).filter(|_| result.ends_with("│ ")) {
            result.push_str("[run]");
            i += len;
        } else if let Some(len) = hash_at(&bytes[i..]) {
            result.push_str("[hash]");
            i += len;
        } else if let Some(len) = timestamp_at(&bytes[i..]) {
            result.push_str("[time]");
            i += len;
        } else {
            result.push(bytes[i]);
            i += 1;
        }
    }
    // A bare date a command prints (`on 2026-12-06`) is the day it ran: today, or yesterday
    // for a transcript made across midnight.
    let today = chrono::Utc::now().date_naive();
    for day in [today, today.pred_opt().unwrap_or(today)] {
        result = result.replace(&day.format("%Y-%m-%d").to_string(), "[date]");
    }
    unpad_tables(&result)
}

/// A table holding a redacted path is as wide as the path was on this machine:
/// squeeze its padding so the transcript is the same on every clone.
fn unpad_tables(text: &str) -> String {
    let is_table = |line: &str| line.starts_with(['┌', '│', '╞', '├', '└']);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let mut end = i;
        while end < lines.len() && is_table(lines[end]) {
            end += 1;
        }
        if end == i {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let table = &lines[i..end];
        // (And `runs`, whose short names are as long as they need to be on this clone.)
        let has_path = table.iter().any(|l| {
            l.contains("[fixtures]")
                || l.contains("[store]")
                || l.contains("[scratch]")
                || l.starts_with("│ Run ")
        });
        for line in table {
            if has_path {
                out.push_str(&squeeze(line));
            } else {
                out.push_str(line);
            }
        }
        i = end;
    }
    out
}

/// Runs of border or padding characters become one.
fn squeeze(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut last = None;
    for c in line.chars() {
        if matches!(c, '─' | '═' | ' ') && last == Some(c) {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out
}

/// A UUID v7 (run ids; Entra ids in the fixtures are v4/v5 and stay).
fn uuid_v7_at(s: &[char]) -> Option<usize> {
    if s.len() < 36 {
        return None;
    }
    let ok = s[..36].iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == '-',
        14 => *c == '7',
        _ => c.is_ascii_hexdigit(),
    });
    ok.then_some(36)
}

/// A run's short name as `runs` shows it: the first 8 to 35 characters of its id (a UUIDv7,
/// whose first digits are its time), ending at a space.
fn short_run_at(s: &[char]) -> Option<usize> {
    let len = s
        .iter()
        .take_while(|c| c.is_ascii_hexdigit() || **c == '-')
        .count();
    let shape = (8..36).contains(&len)
        && s[..len].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == '-',
            _ => c.is_ascii_hexdigit(),
        })
        && s.get(len) == Some(&' ');
    shape.then_some(len)
}

/// A SHA-256 in hex (chain hashes cover the times, so they change every run).
fn hash_at(s: &[char]) -> Option<usize> {
    let hex = s
        .iter()
        .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        .count();
    (hex == 64 && s.get(64).is_none_or(|c| !c.is_ascii_alphanumeric())).then_some(64)
}

/// `2026-11-27 06:32:47`, `2026-11-27T06:32:47.123456Z` and the like.
fn timestamp_at(s: &[char]) -> Option<usize> {
    let digits =
        |r: std::ops::Range<usize>| s.get(r).is_some_and(|d| d.iter().all(char::is_ascii_digit));
    let date = digits(0..4)
        && s.get(4) == Some(&'-')
        && digits(5..7)
        && s.get(7) == Some(&'-')
        && digits(8..10);
    let sep = matches!(s.get(10), Some(' ') | Some('T'));
    let time = digits(11..13) && s.get(13) == Some(&':') && digits(14..16);
    if !(date && sep && time) {
        return None;
    }
    let mut n = 16;
    while n < s.len() && (s[n].is_ascii_digit() || matches!(s[n], ':' | '.')) {
        n += 1;
    }
    if s.get(n) == Some(&'Z') {
        n += 1;
    }
    Some(n)
}

/// The transcript of a scenario in a fresh store: a directory (sled), or with `postgres` a
/// new database on the test cluster (its URL shown as the directory's path is: `[store]`).
fn transcript(cmd_file: &Path, postgres: bool) -> String {
    transcript_at(cmd_file, postgres.then(testkit::postgres::database))
}

fn transcript_at(cmd_file: &Path, url: Option<String>) -> String {
    let here = cmd_file.parent().unwrap();
    let store = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let store_env = match &url {
        Some(url) => std::ffi::OsString::from(url),
        None => store.path().as_os_str().to_owned(),
    };
    let as_dir = |text: &str| match &url {
        Some(url) => text.replace(
            &engine::store::shown_url(url),
            &store.path().display().to_string(),
        ),
        None => text.to_owned(),
    };
    let mut out = String::new();
    for line in std::fs::read_to_string(cmd_file).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .replace("{fixtures}", &fixtures().display().to_string())
            .replace("{here}", &here.display().to_string())
            .replace("{scratch}", &scratch.path().display().to_string());
        let words = split(&line);
        assert_eq!(words[0], "roster", "{line}");
        let output = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(&words[1..])
            .env("ROSTER_STORE", &store_env)
            // Who started a run is the real uid's account, not $USER: the transcripts are
            // recorded as root, as the suite runs (README).
            .env("USER", "admin")
            .env("NO_COLOR", "1")
            .env_remove("ROSTER_LOG")
            .output()
            .unwrap();
        let shown = redact(&line, store.path(), scratch.path());
        out.push_str(&format!(
            "$ {shown}\nexit {}\n",
            output.status.code().unwrap_or(-1)
        ));
        for (what, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            if !text.is_empty() {
                out.push_str(&format!(
                    "--- {what}\n{}",
                    redact(&as_dir(&text), store.path(), scratch.path())
                ));
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn scenarios() {
    insta::glob!("../fixtures/scenarios", "*/cmd", |path| {
        let name = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!("scenario", transcript(path, false));
        });
    });
}

/// Every scenario says the same with its store in PostgreSQL as in a directory: the commands
/// answer alike on both backends (exit codes, reports, `verify`, `replay`, `events`, errors).
#[test]
fn scenarios_hold_with_the_store_in_postgres() {
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(fixtures().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path().join("cmd"))
        .filter(|cmd| cmd.is_file())
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 10, "{scenarios:?}");
    for cmd in scenarios {
        let url = testkit::postgres::database();
        let (sled, pg) = (
            transcript(&cmd, false),
            transcript_at(&cmd, Some(url.clone())),
        );
        // The store was the database's: what the commands wrote is there.
        let mut db = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        let rows: i64 = db
            .query_one(
                "SELECT (SELECT count(*) FROM roster_events) + (SELECT count(*) FROM roster_orgs)",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(rows > 0, "{}: nothing in the database", cmd.display());
        if sled != pg {
            let first = sled
                .lines()
                .zip(pg.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let context = |t: &str| {
                t.lines()
                    .skip(first.saturating_sub(3))
                    .take(8)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "{}: the transcripts part at line {}:\nsled:\n{}\npostgres:\n{}",
                cmd.display(),
                first + 1,
                context(&sled),
                context(&pg)
            );
        }
    }
}

#[test]
fn redaction_keeps_entra_ids_and_hides_run_ids_and_times() {
    let text = "run 01a21bb4-dbff-71f7-8fb2-6a1a96d511a2 user 6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0 at 2026-11-27 06:32:47 and 2026-11-27T06:32:47.123456Z.";
    assert_eq!(
        redact(text, Path::new("/nowhere"), Path::new("/nowhere2")),
        "run [run] user 6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0 at [time] and [time]."
    );
    assert_eq!(
        split(r#"roster plan demo --select "Adele Vance" --json"#),
        [
            "roster",
            "plan",
            "demo",
            "--select",
            "Adele Vance",
            "--json"
        ]
    );
}
