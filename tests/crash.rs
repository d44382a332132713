//! Crash safety: imports of a few thousand objects killed with SIGKILL at many points. After
//! every kill the log verifies, the embedded server holds exactly what the log's `Imported`
//! events say, the interrupted run shows as aborted, and running the same import again
//! finishes it — no entry added twice — with the server of an uninterrupted run.
//!
//! CI runs 30 kill points; `ROSTER_CRASH_KILLS=300` runs more.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::store::*;
use engine::model::ServerState;
use serde_json::Value;

/// Starts `import`, sends it SIGKILL after `at`, and says whether it had finished by then.
fn kill_after(mut import: Command, at: std::time::Duration) -> bool {
    let mut child = import
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(at);
    let _ = child.kill();
    let status = child.wait().unwrap();
    status.success() || status.code() == Some(3)
}

#[test]
fn imports_killed_at_any_moment_leave_a_consistent_store_and_finish_when_rerun() {
    let kills: u32 = std::env::var("ROSTER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let (work, template, loaded) = generated(3000, 300);
    kills_converge(&work, &template, &loaded, kills, 3);
}

/// The same kills during an incremental import: the store holds two completed dry runs of the
/// same selection — the second recorded by difference, leaving the org's mirror — which the
/// import (and every rerun) records its differences against, taking its base from the mirror.
/// A kill while the import writes its own mirror (with its `RunFinished`) leaves both or
/// neither; every mirror left matches the log.
#[test]
fn incremental_imports_killed_at_any_moment_converge_too() {
    let kills: u32 = std::env::var("ROSTER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(12, |n: u32| (n / 3).max(1));
    let (work, template, loaded) = generated(3000, 300);
    let plan: Vec<&str> = [&["plan"][..], &IMPORT[1..]].concat();
    assert_eq!(roster(&template, &plan).0, 3);
    assert_eq!(roster(&template, &plan).0, 3);
    let verified: Value =
        serde_json::from_str(&roster(&template, &["verify", "--json"]).1).unwrap();
    assert_eq!(verified["mirrors"][0]["state"], "vouched", "{verified}");
    let probe = work.path().join("probe");
    copy_dir(&template, &probe);
    assert_eq!(roster(&probe, &IMPORT).0, 3);
    let started = roster(&probe, &["events", "last"]).1;
    assert!(
        started.lines().next().unwrap().contains("\"base\""),
        "the import is incremental"
    );
    kills_converge(&work, &template, &loaded, kills, 3);
}

/// The same kills during an import whose inputs are its base's: the store holds two completed
/// imports, the second changing nothing, so the killed import (and every rerun) takes the
/// second's decisions without reading the tenant or the server, and renews the mirror's stamp.
#[test]
fn imports_over_unchanged_inputs_killed_at_any_moment_converge_too() {
    let kills: u32 = std::env::var("ROSTER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(8, |n: u32| (n / 3).max(1));
    let (work, template, loaded) = generated(3000, 300);
    assert_eq!(roster(&template, &IMPORT).0, 3);
    assert_eq!(roster(&template, &IMPORT).0, 0);
    let probe = work.path().join("probe");
    copy_dir(&template, &probe);
    let (code, _, err) = roster(&probe, &IMPORT);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("its decisions stand"), "{err}");
    kills_converge(&work, &template, &loaded, kills, 0);
}

/// The same kills with the store in PostgreSQL (a database on the test cluster): a writer
/// killed mid-run loses its connection, so its open transaction is rolled back and its writer
/// lock let go; the next writer closes the run as aborted, and the rerun converges.
#[test]
fn imports_into_a_store_in_postgres_killed_at_any_moment_converge_too() {
    let kills: u32 = std::env::var("ROSTER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(12, |n: u32| (n / 3).max(1));
    let (work, _, loaded) = generated(3000, 300);
    let template = PathBuf::from(testkit::postgres::database());
    let file = |name: &str| work.path().join(name).to_str().unwrap().to_owned();
    let (code, _, err) = roster(
        &template,
        &["org", "add", "gen", "--fixture", &file("tenant.json")],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = roster(&template, &["server", "load", &file("server.json")]);
    assert_eq!(code, 0, "{err}");
    kills_converge_in(Stores::Postgres, &work, &template, &loaded, kills, 3);
}

/// Where a test's stores are: directories, or databases on the test cluster.
#[derive(Clone, Copy)]
enum Stores {
    Dirs,
    Postgres,
}

impl Stores {
    /// A new store named `name`, a copy of `template`.
    fn copy(self, work: &tempfile::TempDir, template: &Path, name: &str) -> PathBuf {
        match self {
            Stores::Dirs => {
                let store = work.path().join(name);
                copy_dir(template, &store);
                store
            }
            Stores::Postgres => {
                PathBuf::from(testkit::postgres::copy_of(template.to_str().unwrap()))
            }
        }
    }

    fn remove(self, store: &Path) {
        if let Stores::Dirs = self {
            std::fs::remove_dir_all(store).unwrap();
        }
    }
}

/// Kills `IMPORT` over a copy of `template` at points spread over an uninterrupted run (which
/// exits `exit`), and checks each store after the kill and after the rerun.
fn kills_converge(
    work: &tempfile::TempDir,
    template: &Path,
    loaded: &ServerState,
    kills: u32,
    exit: i32,
) {
    kills_converge_in(Stores::Dirs, work, template, loaded, kills, exit)
}

fn kills_converge_in(
    stores: Stores,
    work: &tempfile::TempDir,
    template: &Path,
    loaded: &ServerState,
    kills: u32,
    exit: i32,
) {
    let (template, loaded) = (template.to_owned(), loaded.clone());

    // The uninterrupted run, and how long it takes.
    let reference_store = stores.copy(work, &template, "reference");
    let started = Instant::now();
    let (code, _, err) = roster(&reference_store, &IMPORT);
    let full = started.elapsed();
    assert_eq!(code, exit, "{err}");
    let reference = dump(&reference_store);
    assert_ne!(reference, loaded);

    let mut completed_before_kill = 0;
    for k in 0..kills {
        let store = stores.copy(work, &template, &format!("kill{k}"));
        // Kill points spread over the whole run, a little past its end too.
        let at = full.mul_f64(0.02 + 1.08 * f64::from(k) / f64::from(kills.max(1)));
        let mut import = Command::new(env!("CARGO_BIN_EXE_roster"));
        import.args(IMPORT).env("ROSTER_STORE", &store);
        if kill_after(import, at) {
            completed_before_kill += 1;
        }

        let (code, out, err) = roster(&store, &["verify"]);
        assert_eq!(
            code, 0,
            "kill {k} at {at:?}: the log must verify\n{out}{err}"
        );
        assert_eq!(
            dump(&store),
            server_from_log(&store, &loaded),
            "kill {k} at {at:?}: the server must be what the log says"
        );
        let runs: Value = serde_json::from_str(&roster(&store, &["runs", "--json"]).1).unwrap();
        let status = runs.as_array().unwrap().last().map(|r| r["status"].clone());
        assert!(
            matches!(
                status.as_ref().and_then(|s| s.as_str()),
                Some("aborted" | "completed") | None
            ),
            "kill {k}: {status:?}"
        );

        let expected = rerun_exit(&store);
        let (code, out, err) = roster(&store, &[&IMPORT[..], &["--json"]].concat());
        assert_eq!(code, expected, "kill {k}: the rerun finishes\n{err}");
        let _: Value = serde_json::from_str(&out).unwrap();
        let twice = added_twice(&store);
        assert!(twice.is_empty(), "kill {k}: entries added twice: {twice:?}");
        assert_eq!(
            dump(&store),
            reference,
            "kill {k} at {at:?}: the rerun ends with the uninterrupted server"
        );
        let (code, out, err) = roster(&store, &["verify", "--mirrors"]);
        assert_eq!(
            code, 0,
            "kill {k}: the log and its mirror verify\n{out}{err}"
        );
        stores.remove(&store);
    }
    println!("{kills} kill points survived ({completed_before_kill} runs had finished before their kill); full import {full:?}");
    assert!(
        completed_before_kill < kills,
        "the kills must interrupt runs, not only land after them"
    );
}

/// The JSON-file server target under the same kills: the file is replaced atomically, so
/// after any kill it is a whole, valid server file, no entry is added twice, and the rerun
/// ends with the file of an uninterrupted run. (A kill can leave a `.roster-*.tmp` file: a
/// partial write that never replaced anything.)
#[test]
fn imports_into_a_server_file_killed_at_any_moment_never_tear_it() {
    let kills: u32 = std::env::var("ROSTER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(12, |n: u32| (n / 3).max(1));
    let (work, template, loaded) = generated(3000, 300);
    let server = work.path().join("server.json");
    let import = |store: &Path, file: &Path| {
        let mut args: Vec<String> = IMPORT.iter().map(|a| a.to_string()).collect();
        args.push("--server-file".into());
        args.push(file.to_str().unwrap().into());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roster"));
        cmd.args(args).env("ROSTER_STORE", store);
        cmd
    };
    let read = |file: &Path| -> ServerState {
        serde_json::from_slice(&std::fs::read(file).unwrap())
            .unwrap_or_else(|e| panic!("{} is torn: {e}", file.display()))
    };

    let reference_dir = work.path().join("reference");
    copy_dir(&template, &reference_dir.join("store"));
    let reference_file = reference_dir.join("server.json");
    std::fs::copy(&server, &reference_file).unwrap();
    let started = Instant::now();
    let out = import(&reference_dir.join("store"), &reference_file)
        .output()
        .unwrap();
    let full = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let reference = read(&reference_file);
    assert_ne!(reference, loaded);

    let mut completed_before_kill = 0;
    for k in 0..kills {
        let dir = work.path().join(format!("file-kill{k}"));
        let (store, file) = (dir.join("store"), dir.join("server.json"));
        copy_dir(&template, &store);
        std::fs::copy(&server, &file).unwrap();
        let at = full.mul_f64(0.05 + 1.0 * f64::from(k) / f64::from(kills.max(1)));
        if kill_after(import(&store, &file), at) {
            completed_before_kill += 1;
        }
        let _whole = read(&file);
        assert_eq!(roster(&store, &["verify"]).0, 0, "kill {k} at {at:?}");

        let expected = rerun_exit(&store);
        let out = import(&store, &file).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(expected),
            "kill {k}: the rerun finishes: {out:?}"
        );
        let twice = added_twice(&store);
        assert!(twice.is_empty(), "kill {k}: entries added twice: {twice:?}");
        assert_eq!(
            read(&file),
            reference,
            "kill {k} at {at:?}: the rerun ends with the uninterrupted server file"
        );
        assert_eq!(roster(&store, &["verify"]).0, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    println!("{kills} kill points survived with a server file ({completed_before_kill} runs had finished before their kill); full import {full:?}");
    assert!(
        completed_before_kill < kills,
        "the kills must interrupt runs"
    );
}

/// The two moments of a server-file import that matter, killed exactly there by `strace`:
/// between the run's intent (flushed) and its write — the file is as it was, and the log says
/// nothing was applied — and right after the rename that replaced the file — the file holds
/// the run's changes, and the next open records them from the intent, attributed to the run.
/// Either way the log says what the file holds, and the rerun adds nothing twice.
#[test]
fn a_server_file_import_killed_at_its_write_is_settled_from_the_file() {
    let (work, template, loaded) = generated(3000, 300);
    let server = work.path().join("server.json");
    let read = |file: &Path| -> ServerState {
        serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
    };
    let args = |file: &Path| -> Vec<String> {
        let mut a: Vec<String> = IMPORT.iter().map(|s| s.to_string()).collect();
        a.extend(["--server-file".into(), file.to_str().unwrap().into()]);
        a
    };
    // The import into `file` on `store`, to completion: exit 3 (the tenant has conflicts).
    let import_to_end = |store: &Path, file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args(file))
            .env("ROSTER_STORE", store)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let reference = {
        let dir = work.path().join("reference");
        copy_dir(&template, &dir.join("store"));
        let file = dir.join("server.json");
        std::fs::copy(&server, &file).unwrap();
        import_to_end(&dir.join("store"), &file);
        read(&file)
    };
    for (moment, calls, when, says) in [
        (
            "rename",
            "rename,renameat,renameat2",
            1,
            "interrupted before it wrote the server file",
        ),
        // The directory is opened twice: to clear what killed writes left (when the run locks
        // the file), and to sync it right after the rename.
        (
            "sync",
            "open,openat",
            2,
            "interrupted after it wrote the server file",
        ),
    ] {
        let dir = work.path().join(moment);
        let (store, files) = (dir.join("store"), dir.join("files"));
        copy_dir(&template, &store);
        std::fs::create_dir_all(&files).unwrap();
        let file = files.join("server.json");
        std::fs::copy(&server, &file).unwrap();
        // The rename names the file; the directory is opened only to sync it, right after.
        let watched = if moment == "rename" { &file } else { &files };
        let out = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-P"])
            .arg(watched)
            .args([
                "-e",
                &format!("trace={calls}"),
                "-e",
                &format!("inject={calls}:signal=KILL:when={when}"),
            ])
            .arg(env!("CARGO_BIN_EXE_roster"))
            .args(args(&file))
            .env("ROSTER_STORE", &store)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            None,
            "{moment}: killed there: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after_kill = read(&file);
        if moment == "rename" {
            assert_eq!(after_kill, loaded, "{moment}: the file is as it was");
        } else {
            assert_eq!(
                after_kill, reference,
                "{moment}: the file holds the run's changes"
            );
        }

        let (code, _, err) = roster(&store, &["verify"]);
        assert_eq!(code, 0, "{moment}: {err}");
        assert!(err.contains("recorded as aborted"), "{moment}: {err}");
        let (_, report, _) = roster(&store, &["report", "last", "--json"]);
        let report: Value = serde_json::from_str(&report).unwrap();
        let (_, last, _) = roster(&store, &["events", "last"]);
        let finished = last.lines().last().unwrap();
        assert!(
            finished.contains("\"RunFinished\"")
                && finished.contains("\"aborted\"")
                && finished.contains(says),
            "{moment}: {finished}"
        );
        // The log says what the file holds: the loaded state and the recorded outcomes.
        let mut from_log = loaded.clone();
        for e in report["entries"].as_array().unwrap() {
            let e: engine::event::EntryOutcome = serde_json::from_value(e.clone()).unwrap();
            assert!(e.op.is_none(), "the report shows no operations");
        }
        let (_, events, _) = roster(&store, &["events", "--since", "1"]);
        for line in events.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["type"] == "Imported" {
                let e: engine::event::EntryOutcome =
                    serde_json::from_value(v["payload"].clone()).unwrap();
                if let Some(op) = &e.op {
                    from_log.apply(op);
                }
            }
        }
        assert_eq!(
            from_log, after_kill,
            "{moment}: the log says what the file holds"
        );

        import_to_end(&store, &file);
        assert!(added_twice(&store).is_empty(), "{moment}");
        assert_eq!(read(&file), reference, "{moment}");
        assert_eq!(roster(&store, &["verify"]).0, 0);
    }
}
