//! `roster sync`: the last import repeated — once, or every interval until a signal — with
//! the same selection re-resolved against the tenant as it is now, a failing cycle reported
//! without ending the loop, and the store free for auditors between cycles.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn demo(r: &Roster) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, tenant) = demo_tenant_copy();
    r.add_demo("contoso", &tenant);
    (dir, tenant)
}

/// Adds a user to the tenant file.
fn add_user(tenant: &std::path::Path, n: u32) {
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(tenant).unwrap()).unwrap();
    t["users"].as_array_mut().unwrap().push(serde_json::json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "displayName": format!("New Hire {n}"),
        "userPrincipalName": format!("new.hire{n}@contoso.com"),
        "accountEnabled": true,
        "userType": "Member",
    }));
    std::fs::write(tenant, serde_json::to_vec(&t).unwrap()).unwrap();
}

#[test]
fn sync_repeats_the_last_import_with_its_selection_resolved_again() {
    let r = Roster::new();
    let (_dir, tenant) = demo(&r);
    let (code, _, err) = r.run(&["sync", "contoso"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no import to repeat") && err.trim().lines().count() == 1,
        "{err}"
    );
    r.expect(3, &IMPORT);
    // A new hire appears in Entra ID: the repeated --select-all brings them in.
    add_user(&tenant, 1);
    // Its conflicts were all reported by the import: nothing new, exit 0.
    let out: Value = serde_json::from_str(&r.expect(0, &["sync", "contoso", "--json"])).unwrap();
    // Recorded: the new hire, and the deleted objects now found already disabled.
    let entries = out["entries"].as_array().unwrap();
    let added: Vec<&Value> = entries.iter().filter(|e| e["outcome"] == "added").collect();
    assert_eq!(added.len(), 1, "{entries:?}");
    assert_eq!(added[0]["name"], "New Hire 1");
    assert_eq!(out["summary"]["added"], 1);
    let events = r.expect(0, &["events", "last"]);
    assert!(events.contains("\"selectAll\":true") && events.contains("\"onDeleted\":\"disable\""));
    r.expect(0, &["replay", "last"]);
}

#[test]
fn sync_every_runs_until_a_signal_and_survives_a_failing_cycle() {
    let r = Roster::new();
    let (_dir, tenant) = demo(&r);
    r.expect(3, &["import", "contoso", "--select-all"]);
    let good = std::fs::read(&tenant).unwrap();
    // The first cycle cannot read the tenant.
    std::fs::write(&tenant, b"{ not json").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["sync", "contoso", "--every", "1s", "--json"])
        .env("ROSTER_STORE", r.store.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = |stream: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let stdout = lines(Box::new(child.stdout.take().unwrap()));
    let stderr = lines(Box::new(child.stderr.take().unwrap()));
    let wait = Duration::from_secs(60);

    // Every cycle first says what it repeats, then how it went.
    let cycle_line = || {
        let says = stderr.recv_timeout(wait).unwrap();
        assert!(
            says.starts_with("sync contoso repeats: --select-all (deleted objects not looked for: no --check-deleted) --max-deletions 50 into the embedded server")
                && says.contains("the org's last import"),
            "{says}"
        );
        stderr.recv_timeout(wait).unwrap()
    };
    let first = cycle_line();
    assert!(first.contains("sync contoso: failed:"), "{first}");
    // Between cycles the store is free: an auditor's read does not wait for the daemon.
    r.expect(0, &["runs"]);
    std::fs::write(&tenant, &good).unwrap();
    add_user(&tenant, 2);
    let report: Value = serde_json::from_str(&stdout.recv_timeout(wait).unwrap()).unwrap();
    let added: Vec<&Value> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "added")
        .collect();
    assert_eq!(added.len(), 1, "{report}");
    assert_eq!(added[0]["name"], "New Hire 2");
    let line = cycle_line();
    assert!(
        line.contains("completed") && line.contains("1 added") && line.contains("nothing new"),
        "{line}"
    );
    // The next cycle finds nothing new: it lists only what needs attention (the conflicts).
    let report: Value = serde_json::from_str(&stdout.recv_timeout(wait).unwrap()).unwrap();
    let entries = report["entries"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["outcome"] == "conflict"),
        "{report}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = stderr.iter().collect();
    assert!(rest.iter().any(|l| l == "sync stopped"), "{rest:?}");
    r.expect(0, &["verify"]);
}

/// What a sync repeats is said every time, can be shown, and once set is kept whatever
/// one-off imports come after; it cannot be set from a dry run or another org's run.
#[test]
fn sync_repeats_its_definition_whatever_one_off_imports_come_after() {
    let r = Roster::new();
    let (_dir, _tenant) = demo(&r);
    r.expect(3, &IMPORT);
    let shown = r.expect(0, &["sync", "contoso", "--show"]);
    assert!(
        shown.contains("--select-all --check-deleted --on-deleted disable --max-deletions 50")
            && shown.contains("the org's last import"),
        "{shown}"
    );
    let set = r.expect(
        0,
        &[
            "sync",
            "contoso",
            "--set-from",
            "last",
            "--max-deletions",
            "7",
        ],
    );
    assert!(
        set.contains("--max-deletions 7") && set.contains("the sync definition set by"),
        "{set}"
    );
    // A one-off import of one user, deleted objects not looked for.
    r.expect(0, &["import", "contoso", "--select", "Adele Vance"]);
    let (code, _, err) = r.run(&["sync", "contoso"]);
    assert_eq!(code, 0, "the conflicts are known: {err}");
    assert!(
        err.starts_with(
            "sync contoso repeats: --select-all --check-deleted --on-deleted disable --max-deletions 7"
        ) && err.contains("the sync definition set by"),
        "{err}"
    );
    let events = r.expect(0, &["events", "last"]);
    let started: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(started["payload"]["selection"]["selectAll"], true);
    assert_eq!(started["payload"]["options"]["onDeleted"], "disable");
    assert_eq!(started["payload"]["options"]["maxDeletions"], 7);
    // Not from a dry run; not with --every.
    r.expect(0, &["plan", "contoso", "--select-all"]);
    let (code, _, err) = r.run(&["sync", "contoso", "--set-from", "last"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a dry run"), "{err}");
    let (code, _, _) = r.run(&["sync", "contoso", "--show", "--every", "1m"]);
    assert_eq!(code, 2);
}
