//! Promises of RELIABILITY.md that need a real process: one roster per store (and a crash
//! never leaves it locked), the deletion guard, and a server file that cannot be written.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// A copy of the demo server as a server file, in a directory of its own.
fn demo_server_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.json");
    std::fs::copy(fixtures().join("demo/server.json"), &file).unwrap();
    (dir, file)
}

fn demo() -> Roster {
    let r = Roster::new();
    r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    r
}

#[test]
fn a_second_process_is_turned_away_and_a_stale_lock_does_not_block() {
    let r = demo();
    {
        let _held =
            engine::store::StoreLock::acquire(r.store.path(), "roster import contoso").unwrap();
        let (code, out, err) = r.run(&["import", "contoso", "--select-all"]);
        assert_eq!(code, 1, "{out}{err}");
        let line = err.trim();
        assert!(line.lines().count() == 1, "{line}");
        assert!(
            line.contains(&format!(
                "is in use by PID {} (roster import contoso)",
                std::process::id()
            )),
            "{line}"
        );
    }
    // A lock file left by a process that died holds no lock: the next command just runs.
    std::fs::write(
        r.store.path().join("lock"),
        "PID 999999 (roster import contoso)",
    )
    .unwrap();
    r.expect(3, &["import", "contoso", "--select-all"]);
    r.expect(0, &["verify"]);
}

#[test]
fn an_empty_tenant_does_not_empty_the_server() {
    let r = demo();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(
        &empty,
        r#"{"tenantId": "3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11", "users": [], "groups": []}"#,
    )
    .unwrap();
    r.expect(0, &["org", "remove", "contoso"]);
    r.expect(
        0,
        &[
            "org",
            "add",
            "contoso",
            "--fixture",
            empty.to_str().unwrap(),
        ],
    );
    let before = r.expect(0, &["server", "dump"]);
    let (code, _, err) = r.run(&[
        "import",
        "contoso",
        "--check-deleted",
        "--on-deleted",
        "delete",
        "--max-deletions",
        "1000",
    ]);
    assert_eq!(code, 4);
    assert!(
        err.contains("returned no users while 8 server users are linked")
            && err.contains("--allow-empty-source"),
        "{err}"
    );
    assert_eq!(r.expect(0, &["server", "dump"]), before);
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "refused");
    // The admin who means it says so.
    let out = r.expect(
        0,
        &[
            "import",
            "contoso",
            "--check-deleted",
            "--on-deleted",
            "disable",
            "--max-deletions",
            "1000",
            "--allow-empty-source",
            "--json",
        ],
    );
    let summary = &serde_json::from_str::<Value>(&out).unwrap()["summary"];
    assert_eq!(
        summary["disabled"], 10,
        "the 8 linked users and 3 linked groups, but Jessica Sun is already disabled: {summary}"
    );
    assert_eq!(summary["unchanged"], 1, "{summary}");
}

/// Two roster processes never write one server file at once, whatever stores they use: the
/// second is turned away at once, naming the holder, and the file is untouched.
#[test]
fn a_server_file_is_locked_for_the_run() {
    let r = demo();
    let (dir, file) = demo_server_file();
    let before = std::fs::read(&file).unwrap();
    let _held = engine::store::LockFile::acquire(
        &dir.path().join("server.json.lock"),
        "roster import contoso",
    )
    .unwrap()
    .unwrap();
    let (code, out, err) = r.run(&[
        "import",
        "contoso",
        "--select-all",
        "--server-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "is in use by PID {} (roster import contoso); wait for it to finish",
            std::process::id()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert!(runs.as_array().unwrap().is_empty(), "nothing recorded");
}

/// The demo tenant fixture, to be edited.
fn demo_tenant() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("demo/tenant.json")).unwrap()).unwrap()
}

/// Re-points org `contoso` at `tenant` (a JSON value), keeping its runs.
fn repoint(r: &Roster, dir: &std::path::Path, tenant: &Value) {
    let file = dir.join("tenant.json");
    std::fs::write(&file, serde_json::to_vec(tenant).unwrap()).unwrap();
    r.expect(0, &["org", "remove", "contoso"]);
    r.expect(
        0,
        &["org", "add", "contoso", "--fixture", file.to_str().unwrap()],
    );
}

/// A listing that suddenly holds under half of what the org's last complete read listed, or
/// no groups at all, is refused before it can disable or delete anything.
#[test]
fn a_listing_that_suddenly_shrank_or_lost_its_groups_does_not_empty_the_server() {
    let r = demo();
    r.expect(3, &["import", "contoso", "--select-all"]);
    let tenant = demo_tenant();
    let dir = tempfile::tempdir().unwrap();
    let before = r.expect(0, &["server", "dump"]);
    let disable = [
        "import",
        "contoso",
        "--check-deleted",
        "--on-deleted",
        "delete",
        "--max-deletions",
        "1000",
    ];

    let mut shrunk = tenant.clone();
    shrunk["users"].as_array_mut().unwrap().truncate(10);
    repoint(&r, dir.path(), &shrunk);
    let (code, _, err) = r.run(&disable);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("listed 10 users, under half of the 46 its last complete read listed")
            && err.contains("--allow-empty-source"),
        "{err}"
    );
    assert_eq!(r.expect(0, &["server", "dump"]), before);

    let mut no_groups = tenant.clone();
    no_groups["groups"] = Value::Array(vec![]);
    repoint(&r, dir.path(), &no_groups);
    let (code, _, err) = r.run(&disable);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("returned no groups while 16 server groups are linked"),
        "{err}"
    );
    assert_eq!(r.expect(0, &["server", "dump"]), before);
    // A dry run that removes nothing is not refused (its conflicts are the import's, known:
    // exit 0), and the refused runs are in the log.
    r.expect(0, &["plan", "contoso", "--select-all"]);
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "refused", "refused", "completed"]);
    r.expect(0, &["replay", "last~1"]);
}

const SELECT: [&str; 4] = ["--select", "Adele Vance", "--select", "Golf Assist"];

fn have_strace() {
    assert!(
        Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "these tests need strace (.ci/run installs it)"
    );
}

/// `roster import contoso SELECTION --server-file FILE` on `r`'s store, run under `strace`
/// with `options` (what to trace, what to inject).
fn import_under_strace<S: AsRef<std::ffi::OsStr>>(
    r: &Roster,
    file: &std::path::Path,
    selection: &[&str],
    options: impl IntoIterator<Item = S>,
) -> std::process::Output {
    Command::new("strace")
        .args(["-f", "-qq"])
        .args(options)
        .arg(env!("CARGO_BIN_EXE_roster"))
        .args(["import", "contoso"])
        .args(selection)
        .arg("--server-file")
        .arg(file)
        .env("ROSTER_STORE", r.store.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Where, among the main thread's calls of `syscall`, the server file's own call falls: found
/// by tracing the same import on an identical store. The server file is the only file written
/// with `{"users": ...`, and the only one synced with fdatasync (sled uses fsync).
fn server_file_call(syscall: &str) -> usize {
    let r = demo();
    let (dir, file) = demo_server_file();
    let trace = dir.path().join("trace");
    let out = import_under_strace(
        &r,
        &file,
        &SELECT,
        [
            "-o".as_ref(),
            trace.as_os_str(),
            "-e".as_ref(),
            "trace=write,fdatasync,renameat".as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let main = text.split_whitespace().next().unwrap().to_owned();
    let calls: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&main)?.trim_start().split_once('('))
        .collect();
    let json_write = calls
        .iter()
        .position(|(name, args)| *name == "write" && args.contains(r#"{\n  \"users\""#))
        .expect("the server file is written");
    let fd = calls[json_write].1.split(',').next().unwrap().to_owned();
    let target = match syscall {
        "write" => json_write,
        "fdatasync" => {
            json_write
                + calls[json_write..]
                    .iter()
                    .position(|(name, args)| {
                        *name == "fdatasync" && args.starts_with(&format!("{fd})"))
                    })
                    .expect("the server file is synced")
        }
        "renameat" => calls
            .iter()
            .position(|(name, args)| *name == "renameat" && args.contains("server.json"))
            .expect("the server file is renamed"),
        other => panic!("{other}"),
    };
    calls[..=target]
        .iter()
        .filter(|(name, _)| *name == syscall)
        .count()
}

/// A server file that cannot be written — the disk is full while it is written, its fdatasync
/// fails, or the rename that replaces it fails (faults injected by `strace` into exactly that
/// call): the run ends with a clear error (exit 1), the file is untouched, no temporary file
/// is left, and the log says that no entry was applied.
#[test]
fn a_server_file_that_cannot_be_written_fails_the_run_cleanly() {
    have_strace();
    for (syscall, error, says) in [
        ("write", "ENOSPC", "No space left on device"),
        ("fdatasync", "EIO", "Input/output error"),
        ("renameat", "EIO", "Input/output error"),
    ] {
        let when = server_file_call(syscall);
        let r = demo();
        let (dir, file) = demo_server_file();
        let original = std::fs::read(&file).unwrap();
        let out = import_under_strace(
            &r,
            &file,
            &SELECT,
            [
                "-o".into(),
                "/dev/null".into(),
                "-e".into(),
                format!("trace={syscall}"),
                "-e".into(),
                format!("inject={syscall}:error={error}:when={when}"),
            ],
        );
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let case = format!("{syscall} -> {error}");
        assert_eq!(out.status.code(), Some(1), "{case}: {stdout}{stderr}");
        let line = stderr.trim();
        assert!(
            line.lines().count() == 1
                && line.contains("cannot write the server file")
                && line.contains(says)
                && line.contains("aborted"),
            "{case}: {stderr}"
        );
        assert!(
            std::fs::read(&file).unwrap() == original,
            "{case}: the server file is untouched"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            leftovers.iter().all(|f| ["server.json", "server.json.lock"].contains(&f.as_str())),
            "{case}: no temporary file is left (the lock file stays, as the store's does): {leftovers:?}"
        );
        let report: Value =
            serde_json::from_str(&r.expect(0, &["report", "last", "--json"])).unwrap();
        let outcomes: Vec<&str> = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes,
            ["failed", "failed", "failed"],
            "{case}: Adele, Isaiah (a member of Golf Assist) and the group: none applied"
        );
        assert!(report["entries"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("not applied: "));
        let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
        assert_eq!(runs[0]["status"], "aborted", "{case}");
        r.expect(0, &["verify"]);
    }
}

/// The directory fsync after the rename fails: the new file is already in place, so the run
/// says so — applied, with a warning that the rename may not survive a power loss — instead of
/// recording "not applied" for a change that is visible.
#[test]
fn a_directory_that_cannot_be_synced_is_told_not_hidden() {
    have_strace();
    let r = demo();
    let (dir, file) = demo_server_file();
    let original = std::fs::read(&file).unwrap();
    let out = import_under_strace(
        &r,
        &file,
        &["--select", "Adele Vance"],
        [
            "-o".as_ref(),
            "/dev/null".as_ref(),
            "-P".as_ref(),
            dir.path().as_os_str(),
            "-e".as_ref(),
            "trace=fsync".as_ref(),
            "-e".as_ref(),
            "inject=fsync:error=EIO".as_ref(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("was replaced, but its directory could not be synced: Input/output error"),
        "{stderr}"
    );
    assert!(
        std::fs::read(&file).unwrap() != original,
        "the file was replaced"
    );
    let report: Value = serde_json::from_str(&r.expect(0, &["report", "last", "--json"])).unwrap();
    assert_eq!(report["entries"][0]["outcome"], "added");
    r.expect(0, &["verify"]);
}

/// Ten million empty objects: refused at the first one, in bounded memory, with exit 2.
#[test]
fn ten_million_empty_objects_are_refused_in_bounded_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    f.write_all(b"{\"tenantId\": \"3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11\", \"users\": [{}")
        .unwrap();
    for _ in 1..10_000_000 {
        f.write_all(b",{}").unwrap();
    }
    f.write_all(b"]}").unwrap();
    f.flush().unwrap();
    drop(f);
    let store = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "max-rss-kb %M"])
        .arg(env!("CARGO_BIN_EXE_roster"))
        .args(["org", "add", "huge", "--fixture", path.to_str().unwrap()])
        .env("ROSTER_STORE", store.path())
        .output()
        .expect("GNU time is installed (.ci/run installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("users[0]: a user without a valid id: id is missing"),
        "{stderr}"
    );
    let rss: u64 = stderr
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("max-rss-kb ")
        .trim()
        .parse()
        .unwrap();
    assert!(rss < 200_000, "peak memory {rss} KB for a 30 MB file");
    assert!(
        !store.path().join("db").exists()
            || Command::new(env!("CARGO_BIN_EXE_roster"))
                .args(["org", "list"])
                .env("ROSTER_STORE", store.path())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("No orgs"))
                .unwrap()
    );
}

/// A fixture, server file or secret file that is not a regular file — a FIFO would block for
/// ever, `/dev/zero` would fill memory — is refused at once, in one line.
#[test]
fn inputs_that_are_not_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("tenant.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let store = tempfile::tempdir().unwrap();
    let demo = fixtures().join("demo/tenant.json");
    for args in [
        vec!["org", "add", "x", "--fixture", fifo.to_str().unwrap()],
        vec!["org", "add", "x", "--fixture", "/dev/zero"],
        vec!["server", "load", "/dev/zero"],
        vec!["server", "load", fifo.to_str().unwrap()],
    ]
    .into_iter()
    .chain([vec![
        "org",
        "add",
        "contoso",
        "--fixture",
        demo.to_str().unwrap(),
    ]])
    .chain([vec![
        "plan",
        "contoso",
        "--select-all",
        "--server-file",
        fifo.to_str().unwrap(),
    ]]) {
        let out = Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_roster"))
            .args(&args)
            .env("ROSTER_STORE", store.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if args[..2] == ["org", "add"] && args[2] == "contoso" {
            assert_eq!(out.status.code(), Some(0), "{err}");
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
}

/// Names, departments and UPNs from outside can hold newlines and terminal escapes, or be ten
/// megabytes long: every human output shows them escaped and cut, so nothing can forge a row,
/// an `error:` line or a screen clear, and a table stays small; a hundred thousand identical
/// warnings are one line with a count.
#[test]
fn hostile_names_reach_no_terminal_and_warnings_are_collapsed() {
    let mut tenant = demo_tenant();
    let users = tenant["users"].as_array_mut().unwrap();
    users[0]["displayName"] = "Adele\n│ Forged ┆ user ┆ Added successfully ┆ row │\u{1b}[2J".into();
    users[0]["department"] = "Sales\nerror: forged error line".into();
    users[0]["jobTitle"] = "\u{1b}]0;owned\u{7}\u{9b}31m".into();
    // Bidi controls and invisible characters: a name that shows as another.
    users[2]["displayName"] = "Ann\u{202e}nimda\u{2066}x\u{2069}\u{200b}\u{feff}".into();
    users[1]["displayName"] = "X".repeat(10 << 20).into();
    let stray = serde_json::json!({"@odata.type": "#microsoft.graph.user", "id": "0badc0de-0000-4000-8000-000000000000"});
    let groups = tenant["groups"].as_array_mut().unwrap();
    groups[0]["members"]
        .as_array_mut()
        .unwrap()
        .extend(std::iter::repeat_n(stray, 100_000));
    groups[1]["description"] = "line one\r\nwarning: forged".into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.json");
    std::fs::write(&file, serde_json::to_vec(&tenant).unwrap()).unwrap();

    let r = Roster::new();
    let (code, _, err) = r.run(&["org", "add", "evil", "--fixture", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    let clean = |what: &str, out: &str| {
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{9b}') && !out.contains('\r'),
            "{what}: a raw escape"
        );
        assert!(
            !out.chars().any(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}' | '\u{feff}')),
            "{what}: a raw bidi or invisible character"
        );
        assert!(
            out.len() < 1 << 20,
            "{what}: {} bytes: cells are cut",
            out.len()
        );
        for line in out.lines() {
            assert!(
                !line.starts_with("error:") && !line.starts_with("warning: forged"),
                "{what}: a forged line: {line}"
            );
        }
    };
    for args in [
        vec!["search", "evil"],
        vec!["import", "evil", "--select-all"],
        vec!["report", "last"],
        vec!["server", "show", "AdeleV@contoso.com"],
        vec!["runs"],
    ] {
        let (code, out, err) = r.run(&args);
        assert!(code == 0 || code == 3, "{args:?}: {err}");
        clean(&format!("{args:?} stdout"), &out);
        clean(&format!("{args:?} stderr"), &err);
        if args[0] == "import" || args[0] == "search" {
            assert!(
                err.contains("is not a user or group of the tenant; ignored (100000 times)"),
                "{args:?}: {err}"
            );
            assert!(
                err.lines().count() <= 22,
                "{args:?}: {} lines",
                err.lines().count()
            );
        }
    }
    let (_, out, _) = r.run(&["search", "evil", "nimda"]);
    assert!(out.contains("Ann\\u{202e}nimda"), "shown escaped: {out}");
    let (_, out, _) = r.run(&["search", "evil", "Adele"]);
    assert!(out.contains("Adele\\n│ Forged"), "shown escaped: {out}");
}

/// A login is the same login trimmed, case-folded and in Unicode NFC: `José` typed
/// decomposed in Entra ID and precomposed on the server, or with spaces around it, is one
/// account — here a local one, so the import is a conflict, never a second user. And a local
/// account that carries an Entra link is refused, never taken over.
#[test]
fn look_alike_logins_are_one_account_and_a_local_account_is_never_taken_over() {
    let mut tenant = demo_tenant();
    let users = tenant["users"].as_array_mut().unwrap();
    users[0]["userPrincipalName"] = "Jose\u{301}@contoso.com".into();
    users[1]["userPrincipalName"] = "  alexw@contoso.com ".into();
    let (id0, id1) = (users[0]["id"].clone(), users[1]["id"].clone());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenant.json");
    std::fs::write(&file, serde_json::to_vec(&tenant).unwrap()).unwrap();
    let local = |login: &str| serde_json::json!({"login": login, "displayName": login, "authType": "local", "enabled": true});
    let server = dir.path().join("server.json");
    std::fs::write(
        &server,
        serde_json::to_vec(&serde_json::json!({
            "users": [local("jos\u{e9}@contoso.com"), local("AlexW@contoso.com")],
            "groups": []
        }))
        .unwrap(),
    )
    .unwrap();
    let r = Roster::new();
    r.expect(
        0,
        &["org", "add", "contoso", "--fixture", file.to_str().unwrap()],
    );
    r.expect(0, &["server", "load", server.to_str().unwrap()]);
    let out = r.expect(
        3,
        &[
            "import",
            "contoso",
            "--select",
            id0.as_str().unwrap(),
            "--select",
            id1.as_str().unwrap(),
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["conflict", "conflict"], "{report}");
    let dump: Value = serde_json::from_str(&r.expect(0, &["server", "dump"])).unwrap();
    assert_eq!(
        dump["users"].as_array().unwrap().len(),
        2,
        "no second account"
    );

    let mut taken = local("bob@contoso.com");
    taken["entraId"] = id0.clone();
    taken["tenantId"] = tenant["tenantId"].clone();
    std::fs::write(
        &server,
        serde_json::to_vec(&serde_json::json!({"users": [taken], "groups": []})).unwrap(),
    )
    .unwrap();
    let (code, _, err) = r.run(&["server", "load", server.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("user bob@contoso.com has authType local and an entraId"),
        "{err}"
    );
}

/// Roster writes only into its own store: a directory of another tool (here with its own
/// `lock`) is refused before anything is written; a store's `lock` or `tokens` that is a
/// symbolic link is refused, never followed; a reading command never creates a store; a
/// `--store` that names a file says so.
#[test]
fn roster_writes_only_where_it_should() {
    let demo_tenant = fixtures().join("demo/tenant.json");
    let run = |store: &std::path::Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_STORE", store)
            .env("ROSTER_CLIENT_SECRET", SECRET)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let add = [
        "org",
        "add",
        "contoso",
        "--fixture",
        demo_tenant.to_str().unwrap(),
    ];

    // Another tool's directory.
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("lock"), "the other tool's lock").unwrap();
    std::fs::write(foreign.path().join("data.txt"), "its data").unwrap();
    let (code, err) = run(foreign.path(), &add);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a roster store") && err.contains("another tool's directory"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.path().join("lock")).unwrap(),
        "the other tool's lock"
    );

    // A reading command on a store that is not there; an import of an unknown org.
    let nowhere = foreign.path().join("nowhere");
    for args in [
        &["verify"][..],
        &["runs"],
        &["import", "contoso", "--select-all"],
    ] {
        let (code, err) = run(&nowhere, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("there is no roster store in"), "{err}");
        assert!(!nowhere.exists(), "{args:?} created a store");
    }
    // A file given as the store.
    let (code, err) = run(&foreign.path().join("data.txt"), &["verify"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a file, not a directory"), "{err}");

    // A store whose lock is a link to a file of the user's.
    let store = tempfile::tempdir().unwrap();
    assert_eq!(run(store.path(), &add).0, 0);
    let precious = foreign.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    std::fs::remove_file(store.path().join("lock")).unwrap();
    std::os::unix::fs::symlink(&precious, store.path().join("lock")).unwrap();
    let (code, err) = run(store.path(), &["runs"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    std::fs::remove_file(store.path().join("lock")).unwrap();

    // A store whose token directory is a link elsewhere: no token is written there, and its
    // mode is left alone.
    let fake = Fake::start(&demo_tenant, &["--client-secret", SECRET]);
    let elsewhere = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), store.path().join("tokens")).unwrap();
    let args = common::add_live_args("live", TENANT, &fake);
    let (code, err) = run(
        store.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    assert_eq!(
        std::fs::metadata(elsewhere.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

/// A server file reached through a symbolic link is written where the link points, and the
/// link stays a link; what a killed write left beside the file is cleared by the next run.
#[test]
fn a_linked_server_file_is_written_through_its_link_and_leftovers_are_cleared() {
    let r = demo();
    let (dir, file) = demo_server_file();
    let link = dir.path().join("current.json");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let leftover = dir.path().join(".server.json.roster-Ab12Cd.tmp");
    std::fs::write(&leftover, "").unwrap();
    r.expect(
        0,
        &[
            "import",
            "contoso",
            "--select",
            "Adele Vance",
            "--server-file",
            link.to_str().unwrap(),
        ],
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains("AdeleV@contoso.com"),
        "the target is written"
    );
    assert!(!leftover.exists(), "the leftover is removed");
}

/// An auditor's read waits while an import holds the store, saying once for whom, and then
/// reads; `--no-wait` fails at once. An import turned away does not wait (see above).
#[test]
fn a_reading_command_waits_for_the_store_unless_told_not_to() {
    let r = demo();
    let held = engine::store::StoreLock::acquire(r.store.path(), "roster import contoso").unwrap();
    let (code, _, err) = r.run(&["--no-wait", "runs"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in use by"), "{err}");
    let reader = {
        let store = r.store.path().to_owned();
        std::thread::spawn(move || {
            Command::new(env!("CARGO_BIN_EXE_roster"))
                .args(["runs", "--json"])
                .env("ROSTER_STORE", store)
                .env("NO_COLOR", "1")
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(
        !reader.is_finished(),
        "the read waits while the store is held"
    );
    drop(held);
    let out = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.matches("waiting for the store").count(),
        1,
        "said once: {err}"
    );
    assert!(err.contains("roster import contoso"), "{err}");
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(runs.is_array());
}

/// A database file damaged on disk (a byte flipped in sled's snapshot) is said in one plain
/// line — nothing could be verified, restore from a backup — exit 1, no library log noise and
/// no colour codes on a stderr that is not a terminal.
#[test]
fn a_damaged_database_file_is_said_in_one_plain_line() {
    let r = demo();
    r.expect(3, &["import", "contoso", "--select-all"]);
    let snap = std::fs::read_dir(r.store.path().join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        })
        .expect("sled wrote a snapshot");
    let mut bytes = std::fs::read(&snap).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&snap, bytes).unwrap();
    // As an admin runs it: no ROSTER_LOG set.
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("verify")
        .env("ROSTER_STORE", r.store.path())
        .env_remove("ROSTER_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("database file itself is damaged")
            && err.contains("nothing in it could be checked"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // Asked-for log lines, written to a pipe or a file: no colour codes either.
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("verify")
        .env("ROSTER_STORE", r.store.path())
        .env("ROSTER_LOG", "trace")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().count() > 1, "log lines were written: {err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

/// A run the deletion guard refused is imported as reviewed by `apply RUN --approve`: exactly
/// its plan (refused as stale when the import would now differ), the guard lifted as far as
/// that plan needs and no further, the approver and the refused run recorded.
#[test]
fn a_refused_plan_is_approved_as_reviewed_with_the_approver_recorded() {
    let r = demo();
    let guarded = [
        "import",
        "contoso",
        "--select",
        "Delia Dennis",
        "--check-deleted",
        "--on-deleted",
        "delete",
        "--max-deletions",
        "1",
    ];
    let (code, _, err) = r.run(&guarded);
    assert_eq!(code, 4, "{err}");
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    let refused = runs.as_array().unwrap().last().unwrap()["run"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        err.contains(&format!("`roster apply {refused} --approve`")),
        "the way forward is said: {err}"
    );
    let before = r.expect(0, &["server", "dump"]);

    // Pat Kelly is restored in Entra ID meanwhile: the plan approved no longer holds.
    let dir = tempfile::tempdir().unwrap();
    let mut tenant = demo_tenant();
    let bin = tenant["deletedUsers"].as_array_mut().unwrap();
    let i = bin
        .iter()
        .position(|u| u["displayName"] == "Pat Kelly")
        .unwrap();
    let mut pat = bin.remove(i);
    pat.as_object_mut().unwrap().remove("deletedDateTime");
    pat["accountEnabled"] = true.into();
    pat["userType"] = "Member".into();
    tenant["users"].as_array_mut().unwrap().push(pat);
    repoint(&r, dir.path(), &tenant);
    let (code, _, err) = r.run(&["apply", &refused, "--approve"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("stale"), "{err}");
    assert_eq!(r.expect(0, &["server", "dump"]), before, "nothing changed");

    // The tenant as it was: the plan is imported, its five deletions and no more.
    repoint(&r, dir.path(), &demo_tenant());
    let (code, out, err) = r.run(&["apply", &refused, "--approve", "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["deleted"], 5, "{report}");
    let events = r.expect(0, &["events", "last"]);
    let started: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    let approved = &started["payload"]["approved"];
    assert_eq!(approved["run"], refused.as_str());
    assert!(
        approved["by"].as_str().unwrap().contains("uid"),
        "{approved}"
    );
    assert!(approved["refusal"]
        .as_str()
        .unwrap()
        .contains("more than --max-deletions 1"));
    assert_eq!(started["payload"]["options"]["maxDeletions"], 5);
    r.expect(0, &["replay", "last"]);
    r.expect(0, &["verify"]);
    // Only a run a safety limit refused is approved.
    let (code, _, err) = r.run(&["apply", "last", "--approve"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not refused") && err.trim().lines().count() == 1,
        "{err}"
    );
}
