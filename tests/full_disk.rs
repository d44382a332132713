//! A full disk, a failing write, a torn end of the log: roster refuses a run the disk cannot
//! hold before it writes, never hangs on a write error, and after one the store opens again,
//! cut back to a log that verifies, with a server that matches it.
//!
//! The small disks are tmpfs mounts (CI runs as root); write errors are injected by `strace`
//! into sled's own writes; torn ends are made with the store's tamper tools, in the shapes sled
//! 0.34 leaves after a full disk (a chunk the run index lists but sled lost).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::store::*;
use engine::store::EventStore;
use engine::{Seq, SledStore};
use serde_json::Value;

const PLAN: [&str; 4] = ["plan", "gen", "--select-all", "--check-deleted"];

/// A tmpfs of `mib` MiB on a directory of its own, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(mib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs, which needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Runs roster, killing it (and failing the test) if it has not exited after two minutes.
fn run_bounded(mut cmd: Command) -> (i32, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("roster hung: still running after two minutes ({cmd:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line on stderr, `error: …`, plain: no library log line, no colour codes.
#[track_caller]
fn one_plain_error_line(err: &str) -> &str {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains("sled"), "{err}");
    lines[0]
}

fn runs(store: &Path) -> Vec<Value> {
    let (code, out, err) = roster(store, &["runs", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_run_the_disk_cannot_hold_is_refused_before_it_writes() {
    let (work, template, loaded) = generated(3000, 300);
    let disk = SmallDisk::new(8);
    let store = disk.path().join("store");
    copy_dir(&template, &store);
    let file = work.path().join("server.json");
    let before = std::fs::read(&file).unwrap();
    let file_arg = ["--server-file", file.to_str().unwrap()];
    for args in [
        PLAN.to_vec(),
        IMPORT.to_vec(),
        [&IMPORT[..], &file_arg].concat(),
    ] {
        let (code, _, err) = roster(&store, &args);
        assert_eq!(code, 1, "{args:?}: {err}");
        let line = one_plain_error_line(&err);
        assert!(
            line.contains("not enough free disk space for the store")
                && line.contains("this run needs about")
                && line.contains("--store"),
            "{line}"
        );
        assert!(runs(&store).is_empty(), "{args:?}: nothing is recorded");
        assert_eq!(dump(&store), loaded, "{args:?}: the server is unchanged");
        assert_eq!(std::fs::read(&file).unwrap(), before);
    }
    let (code, out, _) = roster(&store, &["verify"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("1 event in 0 runs and 1 administrator's change"),
        "only the load that set the server up: {out}"
    );

    // A server file on a disk that holds it but not its next version: the write is refused,
    // every entry is recorded as not applied, and the file stays as it was.
    let tiny = SmallDisk::new(1);
    let file = tiny.path().join("server.json");
    std::fs::write(&file, &before).unwrap();
    let store = work.path().join("roomy");
    copy_dir(&template, &store);
    let (code, _, err) = roster(
        &store,
        &[&IMPORT[..], &["--server-file", file.to_str().unwrap()]].concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not enough free disk space in") && err.contains("aborted"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(runs(&store).last().unwrap()["status"], "aborted");
    let (code, report, _) = roster(&store, &["report", "last", "--json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["summary"]["added"], 0, "nothing applied");
    assert!(report["summary"]["failed"].as_u64().unwrap() > 0);
    assert_eq!(roster(&store, &["verify"]).0, 0);
}

/// Fails the test, saying how to install it, where strace is missing.
fn needs_strace() {
    assert!(
        Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs strace (.ci/run installs it)"
    );
}

/// `import`/`plan` under strace, sled's `calls` on its file failing with `error` from the
/// `from`-th on (counted per thread).
fn with_failing_writes(
    store: &Path,
    args: &[&str],
    (calls, error, from): (&str, &str, u32),
) -> (i32, String) {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(store.join("db/db"))
        .args([
            "-e",
            &format!("trace={calls}"),
            "-e",
            &format!("inject={calls}:error={error}:when={from}+"),
        ])
        .arg(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_STORE", store);
    run_bounded(cmd)
}

#[test]
fn a_write_error_never_hangs_roster_and_the_store_opens_again() {
    needs_strace();
    let (work, template, loaded) = generated(3000, 300);
    let full = ("pwrite64", "ENOSPC", 1);
    let failing_sync = ("fsync,fdatasync", "EIO", 1);
    // Writes fail from the first (sure to fail the run), or from a later one (where they
    // fall depends on sled's threads: mid-run, or not at all).
    let cases = [
        (&PLAN[..], full, "disk is full"),
        (&IMPORT[..], full, "disk is full"),
        (
            &IMPORT[..],
            failing_sync,
            "could not be read or written: Input/output error",
        ),
        (&PLAN[..], ("pwrite64", "ENOSPC", 4), "disk is full"),
        (&IMPORT[..], ("pwrite64", "ENOSPC", 8), "disk is full"),
    ];
    let mut failed = 0;
    for (i, (args, fault, says)) in cases.into_iter().enumerate() {
        let store = work.path().join(format!("store{i}"));
        copy_dir(&template, &store);
        let (code, err) = with_failing_writes(&store, args, fault);
        if code == 1 {
            failed += 1;
            let line = one_plain_error_line(&err);
            assert!(line.contains(says), "{fault:?}: {line}");
        } else {
            assert!(
                matches!(code, 0 | 3),
                "{args:?} {fault:?}: exit {code}: {err}"
            );
        }
        let (code, out, err) = roster(&store, &["verify"]);
        assert_eq!(
            code, 0,
            "{args:?} {fault:?}: the store opens and verifies\n{out}{err}"
        );
        assert!(!err.contains("sled"), "{err}");
        assert_eq!(
            dump(&store),
            server_from_log(&store, &loaded),
            "{args:?} {fault:?}: the server is what the log says"
        );
        // And the next run works.
        let expected = rerun_exit(&store);
        let (code, _, err) = roster(&store, &IMPORT);
        assert_eq!(code, expected, "{err}");
        assert_eq!(roster(&store, &["verify"]).0, 0);
    }
    assert!(failed >= 3, "the sure faults fail their runs");
}

/// A store after `plan` (run 1) and `import` (run 2) of a generated tenant, the server it was
/// loaded with, and the server an uninterrupted import leaves.
fn two_runs() -> (tempfile::TempDir, PathBuf, engine::model::ServerState) {
    let (work, template, loaded) = generated(3000, 300);
    let store = work.path().join("store");
    copy_dir(&template, &store);
    assert_eq!(roster(&store, &PLAN).0, 3);
    assert_eq!(roster(&store, &[&IMPORT[..], &["--full"]].concat()).0, 3);
    (work, store, loaded)
}

/// Each import's or dry run's sequence numbers, oldest first (the load that set the server up
/// is a run of one event of its own, left out).
fn run_seqs(store: &Path) -> Vec<Vec<Seq>> {
    let db = SledStore::open(&store.join("db")).unwrap();
    db.runs()
        .unwrap()
        .into_iter()
        .map(|r| db.run_seqs(r).unwrap())
        .filter(|seqs| seqs.len() > 1)
        .collect()
}

#[test]
fn a_torn_end_of_the_log_is_cut_back_and_the_server_rebuilt_from_the_log() {
    let (work, store, loaded) = two_runs();
    let reference = dump(&store);
    let import = run_seqs(&store).pop().unwrap();
    assert!(import.len() > 5000, "the import spans many chunks");
    // What a full disk left: the run's last event never written, and an outcome chunk lost
    // while its run-index entry and its server records survived.
    let lost = import[import.len() - 1500];
    {
        let db = SledStore::open(&store.join("db")).unwrap();
        db.tamper()
            .truncate_after(Seq(import.last().unwrap().0 - 1));
        db.tamper().drop_chunk(lost);
        db.flush().unwrap();
        assert_eq!(
            db.server_state().unwrap(),
            reference,
            "the lost chunk's server records survived"
        );
    }
    // And the empty snapshot a failed snapshot write leaves, which sled would take for the
    // newest and refuse to open.
    std::fs::write(store.join("db/snap.FFFFFFFFFFFFFFFF.generating"), b"").unwrap();

    let (code, out, err) = roster(&store, &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("note: the store's last writes were torn (chunk")
            && err.contains("indexed for run")
            && err.contains("was cut back to event")
            && err.contains("rebuilt from the log"),
        "{err}"
    );
    assert!(
        out.contains("records that the log was cut back from event"),
        "{out}"
    );
    let runs = runs(&store);
    assert_eq!(
        runs.len(),
        2,
        "the repair is not a run of its own in `runs`"
    );
    assert_eq!(runs[1]["status"], "aborted");
    // The kept outcomes are what the server holds.
    let server = dump(&store);
    assert_eq!(server, server_from_log(&store, &loaded));
    assert_ne!(server, reference);
    let (_, events, _) = roster(&store, &["events", "--since", "1"]);
    let repaired: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "LogRepaired")
        .collect();
    assert_eq!(repaired.len(), 1);
    assert!(repaired[0]["payload"]["cutFrom"].as_u64().unwrap() <= lost.0);
    assert_eq!(repaired[0]["payload"]["serverRebuilt"], true);

    // The next import finishes the work, adding nothing twice.
    assert_eq!(roster(&store, &IMPORT).0, 3);
    assert!(added_twice(&store).is_empty());
    assert_eq!(dump(&store), reference);
    assert_eq!(roster(&store, &["verify"]).0, 0);
    drop(work);
}

#[test]
fn damage_outside_the_unfinished_run_is_left_for_verify_to_name() {
    let (_work, store, _) = two_runs();
    let plan = &run_seqs(&store)[0];
    let damaged = plan[plan.len() / 2];
    {
        let db = SledStore::open(&store.join("db")).unwrap();
        db.tamper().drop_chunk(damaged);
        db.flush().unwrap();
    }
    let head_before = SledStore::open(&store.join("db")).unwrap().head();
    let (code, out, err) = roster(&store, &["verify"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("does not verify at event"), "{err}");
    assert!(!err.contains("cut back"), "{err}");
    assert_eq!(
        SledStore::open(&store.join("db")).unwrap().head(),
        head_before,
        "nothing was cut or written"
    );
}

#[test]
fn a_backup_restores_into_a_new_store_with_the_same_chain_and_refuses_any_change() {
    let (work, store, _) = two_runs();
    let backup = work.path().join("store.backup.jsonl");
    let (code, _, err) = roster(&store, &["backup", "--out", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (_, verified, _) = roster(&store, &["verify"]);
    let head = verified.lines().nth(1).unwrap().to_owned();
    assert!(head.starts_with("Chain head: "), "{verified}");

    let restored = work.path().join("restored");
    let (code, _, err) = roster(&restored, &["restore", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the log verifies"), "{err}");
    let (code, out, _) = roster(&restored, &["verify"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().nth(1).unwrap(),
        head,
        "the same chain, hash for hash"
    );
    for args in [
        &["server", "dump"][..],
        &["runs", "--json"],
        &["org", "list", "--json"],
    ] {
        assert_eq!(
            roster(&restored, args).1,
            roster(&store, args).1,
            "{args:?}"
        );
    }
    assert_eq!(roster(&restored, &["replay", "last"]).0, 0);
    // Into a store that is not empty: refused.
    let (code, _, err) = roster(&restored, &["restore", backup.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not empty"), "{err}");

    // A backup edited anywhere, or cut short, restores nothing.
    let text = std::fs::read_to_string(&backup).unwrap();
    let edited = text.replacen("\\\"unchanged\\\"", "\\\"updated\\\"", 1);
    assert_ne!(edited, text);
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 3].join("\n") + "\n";
    for (what, bytes, says) in [
        ("edited", edited, "does not follow event"),
        ("cut", cut, "cut short"),
    ] {
        let file = work.path().join(format!("{what}.jsonl"));
        std::fs::write(&file, bytes).unwrap();
        let target = work.path().join(format!("into-{what}"));
        let (code, _, err) = roster(&target, &["restore", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{what}: {err}");
        assert!(err.contains(says) && err.contains("line "), "{what}: {err}");
        assert!(
            !target.exists(),
            "{what}: nothing restored, not even a store begun"
        );
    }
}

/// The same write errors in a run over unchanged inputs (its base's decisions taken): the run
/// fails in one line or finishes, the store opens and verifies — its mirror too — and the next
/// run works.
#[test]
fn a_write_error_in_a_run_over_unchanged_inputs_leaves_a_store_that_works() {
    needs_strace();
    let (work, template, loaded) = generated(3000, 300);
    assert_eq!(roster(&template, &IMPORT).0, 3);
    assert_eq!(roster(&template, &IMPORT).0, 0);
    let cases = [
        ("pwrite64", "ENOSPC", 1),
        ("fsync,fdatasync", "EIO", 1),
        ("pwrite64", "ENOSPC", 2),
    ];
    let mut failed = 0;
    for (i, fault) in cases.into_iter().enumerate() {
        let store = work.path().join(format!("store{i}"));
        copy_dir(&template, &store);
        let (code, err) = with_failing_writes(&store, &IMPORT, fault);
        if code == 1 {
            failed += 1;
            one_plain_error_line(&err);
        } else {
            assert_eq!(code, 0, "{fault:?}: {err}");
        }
        let (code, out, err) = roster(&store, &["verify", "--mirrors"]);
        assert_eq!(code, 0, "{fault:?}: the store verifies\n{out}{err}");
        assert_eq!(
            dump(&store),
            server_from_log(&store, &loaded),
            "{fault:?}: the server is what the log says"
        );
        let (code, _, err) = roster(&store, &IMPORT);
        assert_eq!(code, 0, "{fault:?}: the next run works: {err}");
        assert_eq!(roster(&store, &["verify", "--mirrors"]).0, 0);
    }
    assert!(failed >= 2, "the sure faults fail their runs");
}
