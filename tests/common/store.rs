//! A roster store on disk, driven through the binary: copies, a generated tenant, and the
//! server as the log says it is.

use std::path::Path;
use std::process::Command;

use engine::event::EntryOutcome;
use engine::model::ServerState;
use serde_json::Value;

/// Import everything from org `gen` (see [`generated`]), disabling deleted objects.
pub const IMPORT: [&str; 8] = [
    "import",
    "gen",
    "--select-all",
    "--check-deleted",
    "--on-deleted",
    "disable",
    "--max-deletions",
    "100000",
];

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs roster on `store` with `args`: exit code, stdout, stderr.
pub fn roster(store: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_STORE", store)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The server as the log says it is: the loaded state, then every `Imported` operation.
pub fn server_from_log(store: &Path, loaded: &ServerState) -> ServerState {
    let (code, events, err) = roster(store, &["events", "--since", "1"]);
    assert_eq!(code, 0, "{err}");
    let mut state = loaded.clone();
    for line in events.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "Imported" {
            let e: EntryOutcome = serde_json::from_value(v["payload"].clone()).unwrap();
            if let Some(op) = &e.op {
                state.apply(op);
            }
        }
    }
    state
}

pub fn dump(store: &Path) -> ServerState {
    let (code, out, err) = roster(store, &["server", "dump"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// A generated tenant of `users` users and `groups` groups (seed 7), and a store (`template`) with it as org
/// `gen` and a server of 40 % linked users loaded (also left as `server.json` in `work`).
pub fn generated(users: u32, groups: u32) -> (tempfile::TempDir, std::path::PathBuf, ServerState) {
    let work = tempfile::tempdir().unwrap();
    let (tenant, server) = (
        work.path().join("tenant.json"),
        work.path().join("server.json"),
    );
    let (code, _, err) = roster(
        work.path(),
        &[
            "fixture",
            "generate",
            "--users",
            &users.to_string(),
            "--groups",
            &groups.to_string(),
            "--members-per-group",
            "10",
            "--seed",
            "7",
            "--out",
            tenant.to_str().unwrap(),
            "--server-out",
            server.to_str().unwrap(),
            "--linked",
            "0.4",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let template = work.path().join("template");
    assert_eq!(
        roster(
            &template,
            &["org", "add", "gen", "--fixture", tenant.to_str().unwrap()]
        )
        .0,
        0
    );
    assert_eq!(
        roster(&template, &["server", "load", server.to_str().unwrap()]).0,
        0
    );
    let loaded: ServerState = serde_json::from_slice(&std::fs::read(&server).unwrap()).unwrap();
    (work, template, loaded)
}

/// Objects that more than one `Imported` event says were added.
pub fn added_twice(store: &Path) -> Vec<String> {
    let (_, events, _) = roster(store, &["events", "--since", "1"]);
    let mut added = std::collections::HashMap::<String, usize>::new();
    for line in events.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "Imported" && v["payload"]["outcome"] == "added" {
            *added
                .entry(format!("{} {}", v["payload"]["kind"], v["payload"]["id"]))
                .or_default() += 1;
        }
    }
    added
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect()
}

/// How the rerun of the import ends: the tenant's conflicts are new (exit 3) unless an import
/// that completed before it — the killed one, when the kill came after its end — reported them
/// (exit 0).
pub fn rerun_exit(store: &Path) -> i32 {
    let runs: serde_json::Value =
        serde_json::from_str(&roster(store, &["runs", "--json"]).1).unwrap();
    let imported = runs
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["mode"] == "apply" && r["status"] == "completed");
    if imported {
        0
    } else {
        3
    }
}
