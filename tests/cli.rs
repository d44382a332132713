//! End-to-end checks of the binary that a transcript cannot show: exact JSON shapes of the
//! contract, reports read back from the log equal to what the run printed, the demo, and the
//! server left untouched by dry runs.

mod common;

use assert_cmd::Command;
use common::{fixtures, rewrite_and_rechain, IMPORT};
use serde_json::Value;

struct Session {
    store: tempfile::TempDir,
}

impl Session {
    /// A fresh store with the demo tenant as org `contoso` and the demo server loaded.
    fn demo() -> Session {
        let s = Session {
            store: tempfile::tempdir().unwrap(),
        };
        s.ok(&[
            "org",
            "add",
            "contoso",
            "--fixture",
            fixtures().join("demo/tenant.json").to_str().unwrap(),
        ]);
        s.ok(&[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ]);
        s
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("roster").unwrap();
        c.args(args)
            .env("ROSTER_STORE", self.store.path())
            .env("NO_COLOR", "1");
        c
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command expected to fail with `code`; its stderr.
    fn run_err(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args, 0)
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.run(&all, code)).unwrap()
    }
}

/// The keys of a JSON object, sorted (serde_json's `Value` sorts them).
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn sorted(mut k: Vec<&str>) -> Vec<&str> {
    k.sort();
    k
}

#[test]
fn json_shapes_follow_the_contract() {
    let s = Session::demo();
    let rows = s.json(&["search", "contoso", "golf"], 0);
    for row in rows.as_array().unwrap() {
        assert_eq!(
            keys(row),
            sorted(vec![
                "id",
                "name",
                "type",
                "department",
                "description",
                "upn"
            ])
        );
    }
    let plan = s.json(&["plan", "contoso", "--select-all", "--check-deleted"], 3);
    assert_eq!(
        keys(&plan),
        sorted(vec!["run", "org", "mode", "entries", "summary"])
    );
    assert_eq!(plan["mode"], "dry-run");
    assert_eq!(
        keys(&plan["summary"]),
        sorted(vec![
            "added",
            "updated",
            "unchanged",
            "skipped",
            "disabled",
            "deleted",
            "ignored",
            "conflict",
            "failed"
        ])
    );
    let summary = plan["summary"].as_object().unwrap();
    for e in plan["entries"].as_array().unwrap() {
        assert_eq!(
            keys(e),
            sorted(vec!["id", "name", "kind", "outcome", "detail", "changes"])
        );
        assert!(summary.contains_key(e["outcome"].as_str().unwrap()), "{e}");
        assert!(["user", "group"].contains(&e["kind"].as_str().unwrap()));
        for c in e["changes"].as_array().unwrap() {
            assert_eq!(keys(c), sorted(vec!["field", "from", "to"]));
        }
    }
    let deleted = s.json(&["deleted", "last"], 0);
    for d in deleted.as_array().unwrap() {
        assert_eq!(
            keys(d),
            sorted(vec![
                "id",
                "name",
                "kind",
                "evidence",
                "deletedAt",
                "action"
            ])
        );
    }
}

#[test]
fn a_dry_run_changes_nothing_and_an_import_reports_what_the_log_holds() {
    let s = Session::demo();
    let before = s.ok(&["server", "dump"]);
    let planned = s.json(
        &[
            "plan",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--on-deleted",
            "disable",
        ],
        3,
    );
    assert_eq!(
        s.ok(&["server", "dump"]),
        before,
        "a dry run never changes the server"
    );

    // The import records what differs from the dry run before it; `--all` lists every entry.
    let imported = s.json(
        &[
            "import",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--on-deleted",
            "disable",
            "--all",
        ],
        3,
    );
    assert_ne!(s.ok(&["server", "dump"]), before);
    assert_eq!(imported["mode"], "apply");
    assert_eq!(
        planned["entries"], imported["entries"],
        "the import does exactly what the dry run showed"
    );

    let run = imported["run"].as_str().unwrap();
    assert_eq!(
        s.json(&["report", run, "--all"], 0),
        imported,
        "the report read back from the log is what the run printed"
    );
    assert_eq!(
        s.json(&["report", &run[..30], "--all"], 0),
        imported,
        "a run can be named by a prefix"
    );
    // Without --all, the entries the dry run already showed the same are not listed, and
    // the summary still counts them — but every entry that needs attention is listed, as
    // before or not: the conflicts (decision rules 3).
    let recorded = s.json(&["report", run], 0);
    assert_eq!(recorded["summary"], imported["summary"]);
    let listed = recorded["entries"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() < imported["entries"].as_array().unwrap().len());
    assert!(listed.iter().all(|e| e["outcome"] != "skipped"));
    let conflicts = |entries: &Value| -> Vec<Value> {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"] == "conflict")
            .cloned()
            .collect()
    };
    let all_conflicts = conflicts(&imported["entries"]);
    assert!(!all_conflicts.is_empty());
    assert_eq!(conflicts(&recorded["entries"]), all_conflicts);

    // The same conflicts again, reported by the import before: nothing new, exit 0.
    let table = s.run(&["import", "contoso", "--select-all"], 0);
    let second_run = table
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(s.ok(&["report", &second_run]), table, "the table too");
    assert!(
        !table.contains("Added successfully"),
        "a second import adds nothing:\n{table}"
    );
    assert!(
        table.contains("Conflict") && table.contains("Brian Johnson"),
        "the conflicts, known now, are still on screen:\n{table}"
    );
}

/// A run started as root under sudo records whom sudo ran it for (from `SUDO_UID`, named from
/// the user database), after the real account; elsewhere `SUDO_UID` changes nothing.
#[test]
fn a_run_under_sudo_records_whom_for() {
    let s = Session::demo();
    let out = s
        .cmd(&["import", "contoso", "--select", "Delia Dennis"])
        .env("SUDO_UID", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let runs = s.json(&["runs"], 0);
    let by = runs.as_array().unwrap().last().unwrap()["startedBy"]
        .as_str()
        .unwrap()
        .to_owned();
    // SAFETY: getuid cannot fail and touches no memory.
    let root = unsafe { libc::getuid() } == 0;
    assert_eq!(by.contains(", through sudo by "), root, "{by}");
    if root {
        assert!(
            by.starts_with("root (uid 0)") && by.ends_with("(uid 1)"),
            "{by}"
        );
    }
}

/// Commands that only read a run take the last one when none is named; `apply`, which changes
/// the server, must be told which dry run.
#[test]
fn reading_commands_default_to_the_last_run() {
    let s = Session::demo();
    s.run(&["import", "contoso", "--select", "Delia Dennis"], 0);
    assert_eq!(s.ok(&["report"]), s.ok(&["report", "last"]));
    assert_eq!(s.ok(&["deleted"]), s.ok(&["deleted", "last"]));
    assert_eq!(s.ok(&["replay"]), s.ok(&["replay", "last"]));
    s.run(&["apply"], 2);
}

#[test]
fn exit_codes_tell_conflicts_and_refusals_apart() {
    let s = Session::demo();
    s.run(&["import", "contoso", "--select", "Delia Dennis"], 0);
    s.run(&["import", "contoso", "--select", "Brian Johnson"], 3);
    // The same conflict again, unchanged: reported by the import before, nothing new.
    s.run(&["import", "contoso", "--select", "Brian Johnson"], 0);
    // A new one fails the run again; the known one does not count.
    s.run(
        &[
            "import",
            "contoso",
            "--select",
            "Brian Johnson",
            "--select",
            "Gerhart Moller",
        ],
        3,
    );
    s.run(
        &[
            "import",
            "contoso",
            "--select",
            "Delia Dennis",
            "--check-deleted",
            "--on-deleted",
            "delete",
            "--max-deletions",
            "1",
        ],
        4,
    );
    s.run(&["import", "contoso", "--select", "Nobody"], 2);
    s.run(&["import", "contoso"], 2);
    s.run(&["import"], 2);
    s.run(&["frobnicate"], 2);
    let runs = s.json(&["runs"], 0);
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "completed",
            "completed",
            "completed",
            "completed",
            "refused"
        ],
        "refusals are recorded, bad input is not"
    );
}

#[test]
fn the_server_file_target_is_written_only_by_imports() {
    let s = Session::demo();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.json");
    std::fs::copy(fixtures().join("demo/server.json"), &file).unwrap();
    let original = std::fs::read(&file).unwrap();
    let f = file.to_str().unwrap();
    s.run(&["plan", "contoso", "--select-all", "--server-file", f], 3);
    assert_eq!(std::fs::read(&file).unwrap(), original);
    s.run(
        &[
            "import",
            "contoso",
            "--select",
            "Adele Vance",
            "--server-file",
            f,
        ],
        0,
    );
    let state: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let adele = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "AdeleV@contoso.com")
        .unwrap();
    assert_eq!(adele["authType"], "entra");
    assert_eq!(adele["entra"]["jobTitle"], "Retail Manager");
    let embedded = s.json(&["server", "dump"], 0);
    assert!(embedded["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["login"] != "AdeleV@contoso.com"));
}

#[test]
fn the_demo_imports_the_bundled_tenant_into_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo");
    let run = || {
        Command::cargo_bin("roster")
            .unwrap()
            .args(["demo", "--store", store.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8(first.stdout).unwrap();
    assert!(
        text.contains("Added successfully") && text.contains("Skipped: account disabled"),
        "{text}"
    );
    assert!(
        text.contains("Disabled successfully") && text.contains("Updated successfully"),
        "{text}"
    );
    let again = run();
    assert_eq!(
        String::from_utf8(again.stdout).unwrap().lines().count(),
        text.lines().count(),
        "the demo starts afresh"
    );

    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("data"), "keep me").unwrap();
    Command::cargo_bin("roster")
        .unwrap()
        .args(["demo", "--store", precious.to_str().unwrap()])
        .assert()
        .code(2);
    assert_eq!(
        std::fs::read_to_string(precious.join("data")).unwrap(),
        "keep me"
    );
}

#[test]
fn apply_imports_exactly_the_reviewed_plan_or_refuses_when_it_went_stale() {
    let s = Session::demo();
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("tenant.json");
    std::fs::copy(fixtures().join("demo/tenant.json"), &tenant).unwrap();
    s.ok(&["org", "remove", "contoso"]);
    s.ok(&[
        "org",
        "add",
        "contoso",
        "--fixture",
        tenant.to_str().unwrap(),
    ]);

    // Reviewed, then the tenant changes before it is applied: refused, nothing changes.
    let reviewed = s.json(
        &[
            "plan",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--on-deleted",
            "disable",
        ],
        3,
    );
    let run = reviewed["run"].as_str().unwrap().to_owned();
    let edited = std::fs::read_to_string(&tenant)
        .unwrap()
        .replace("\"Retail Manager\"", "\"Store Manager\"");
    std::fs::write(&tenant, edited).unwrap();
    let before = s.ok(&["server", "dump"]);
    let out = s.cmd(&["apply", &run]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("Adele Vance") && stderr.contains("is stale"),
        "{stderr}"
    );
    assert_eq!(s.ok(&["server", "dump"]), before);

    // Reviewed again and applied unchanged: exactly the reviewed entries, recorded as applied from it.
    let reviewed = s.json(
        &[
            "plan",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--on-deleted",
            "disable",
        ],
        3,
    );
    let run = reviewed["run"].as_str().unwrap().to_owned();
    let applied = s.json(&["apply", &run], 3);
    assert_eq!(applied["mode"], "apply");
    assert_eq!(applied["entries"], reviewed["entries"]);
    let runs = s.json(&["runs"], 0);
    let last = runs.as_array().unwrap().last().unwrap();
    assert_eq!(last["appliedFrom"], run.as_str());
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "refused", "completed", "completed"]);

    // Only a completed dry run can be applied.
    s.run(&["apply", applied["run"].as_str().unwrap()], 2);
    s.run(&["apply", runs[1]["run"].as_str().unwrap()], 2);
    let replayed = s.json(&["replay", "last"], 0);
    assert_eq!(replayed["identical"], true);
}

#[test]
fn replay_shows_what_a_rewritten_log_claims_against_what_its_inputs_decide() {
    let s = Session::demo();
    s.run(&["import", "contoso", "--select", "Sales Team"], 0);
    let head = s.json(&["verify"], 0)["head"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    // The head as noted: all of it, or its first 16 digits (upper case too); not fewer.
    let noted = s.json(&["verify", "--head", &head[..16].to_uppercase()], 0);
    assert_eq!(
        noted["notedHeadAt"],
        s.json(&["verify", "--head", &head], 0)["notedHeadAt"]
    );
    assert!(noted["notedHeadAt"].is_u64(), "{noted}");
    s.run(&["verify", "--head", &head[..15]], 2);
    // The attacker: rewrite Adele's outcome and recompute the whole chain after it.
    assert!(rewrite_and_rechain(s.store.path(), |record| {
        record
            .contains("\"Adele Vance\",\"outcome\":\"added\"")
            .then(|| record.replacen("\"outcome\":\"added\"", "\"outcome\":\"skipped\"", 1))
    }));
    s.run(&["verify"], 0);
    s.run(&["verify", "--head", &head], 1);
    s.run(&["verify", "--head", &head[..16]], 1);
    let out = s.cmd(&["replay", "last"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let run = text.split_whitespace().nth(1).unwrap().to_owned();
    insta::assert_snapshot!("replay_differences", text.replace(&run, "[run]"));
}

/// `--on-deleted` without `--check-deleted` is refused as `--action` without it is: one line
/// saying why, exit 2, nothing recorded.
#[test]
fn deleted_object_options_need_check_deleted() {
    let s = Session::demo();
    let before = s.json(&["runs"], 0);
    for extra in [
        &["--on-deleted", "delete"][..],
        &["--on-deleted", "disable"][..],
        &["--action", "Omar Haddad=delete"][..],
    ] {
        let args = [&["import", "contoso", "--select-all"][..], extra].concat();
        let err = s.run_err(&args, 2);
        assert!(err.contains("needs --check-deleted"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // `ignore` is what not checking does anyway.
    s.run(
        &["plan", "contoso", "--select-all", "--on-deleted", "ignore"],
        3,
    );
    let after = s.json(&["runs"], 0);
    assert_eq!(
        after.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1
    );
}

/// Shell completions for every shell clap knows, and a man page, generated from the command
/// line itself: they name every command (the wizard included); the bash script parses.
#[test]
fn completions_and_the_man_page_cover_every_command() {
    let s = Session::demo();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = s.ok(&["completions", shell]);
        for cmd in ["wizard", "import", "verify", "report"] {
            assert!(script.contains(cmd), "{shell}: {cmd}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("roster.bash");
            std::fs::write(&file, &script).unwrap();
            let ok = std::process::Command::new("bash")
                .arg("-n")
                .arg(&file)
                .status()
                .unwrap();
            assert!(ok.success(), "the bash completion script parses");
        }
    }
    let man = s.ok(&["manpage"]);
    assert!(man.contains(".TH roster 1"), "{man}");
    assert!(man.contains("wizard") && man.contains("completions"));
    s.run(&["completions", "tcsh"], 2);

    // Every page roster(1) and the others refer to is generated, into a directory made for it
    // (as on a fresh home).
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".local/share/man/man1");
    s.ok(&["manpage", "--dir", dir.to_str().unwrap()]);
    let pages: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for page in [
        "roster.1",
        "roster-org.1",
        "roster-org-add.1",
        "roster-import.1",
    ] {
        assert!(pages.contains(page), "{page}: {pages:?}");
    }
    let mut references = 0;
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        // A reference is `roster\-org(1)` in roff: the word before each "(1)".
        for (at, _) in text.match_indices("(1)") {
            let word = text[..at]
                .rsplit(|c: char| c.is_whitespace() || c == ',')
                .next()
                .unwrap_or_default()
                .replace("\\-", "-");
            if word.starts_with("roster-") {
                assert!(
                    pages.contains(&format!("{word}.1")),
                    "{page} names {word}(1)"
                );
                references += 1;
            }
        }
    }
    assert!(
        references > 20,
        "roster(1) refers to a page per command: {references}"
    );

    // Each option's help is its own: none runs into the next one's.
    let help = s.ok(&["fake-graph", "--help"]);
    let latency = help
        .split("--latency-ms")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap();
    assert!(!latency.contains("slow-every"), "{latency}");
}

/// `--server-file` is never ignored silently: a command that uses the server refuses a file
/// that is not there; one that does not read the server says it has no effect.
#[test]
fn a_server_file_is_refused_or_said_to_have_no_effect() {
    let s = Session::demo();
    let missing = s.store.path().join("no-such-server.json");
    let missing = missing.to_str().unwrap();
    for args in [
        &[
            "--server-file",
            missing,
            "import",
            "contoso",
            "--select-all",
        ][..],
        &["--server-file", missing, "server", "dump"][..],
    ] {
        let err = s.run_err(args, 2);
        assert!(
            err.contains("cannot read server state: no such file"),
            "{err}"
        );
    }
    for args in [
        &["--server-file", missing, "search", "contoso", "adele"][..],
        &["--server-file", missing, "runs"][..],
    ] {
        let err = s.run_err(args, 0);
        assert!(err.contains("has no effect here"), "{args:?}: {err}");
    }
}

/// A server file written by another tool: `entra` is informational — absent, `null`, `{}` or
/// partial — and is accepted; the link is `entraId` + `tenantId`.
#[test]
fn a_server_file_with_empty_or_partial_entra_attributes_loads() {
    let s = Session::demo();
    let file = s.store.path().join("other-tool.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "users": [
                {"login": "local1", "authType": "local", "entra": {}},
                {"login": "local2", "authType": "local", "entra": null},
                {"login": "AdeleV@contoso.com", "authType": "entra",
                 "entraId": "81cc897f-de9f-5e28-bccb-3cd17e637d0d",
                 "tenantId": "3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11",
                 "entra": {"department": "Sales"}}
            ],
            "groups": []
        })
        .to_string(),
    )
    .unwrap();
    s.ok(&["server", "load", file.to_str().unwrap()]);
    let dump = s.json(&["server", "dump"], 0);
    assert_eq!(dump["users"].as_array().unwrap().len(), 3, "{dump}");
    // The linked user is recognised by its link, and its attributes brought up to date.
    let plan = s.json(&["plan", "contoso", "--select", "Adele Vance"], 0);
    let adele = &plan["entries"][0];
    assert_eq!(adele["outcome"], "updated", "{plan}");
}

/// `roster store` says which store and server this shell uses, and what the store holds; it
/// never creates one.
#[test]
fn store_says_where_the_commands_read_and_write() {
    let s = Session::demo();
    let text = s.ok(&["store"]);
    assert!(text.contains(s.store.path().to_str().unwrap()), "{text}");
    assert!(
        text.contains("embedded server") && text.contains("1 org (contoso)"),
        "{text}"
    );
    let j = s.json(&["store"], 0);
    assert_eq!(j["exists"], true);
    assert_eq!(j["contents"]["orgs"][0], "contoso");
    let nowhere = s.store.path().join("not-a-store-yet");
    let text = s.ok(&["--store", nowhere.to_str().unwrap(), "store"]);
    assert!(text.contains("nothing yet"), "{text}");
    assert!(!nowhere.exists(), "nothing was created");
}

/// `server show` of one user reads that user and the groups, not the whole directory, and
/// names every group that lists the user, whatever the case it is listed in.
#[test]
fn server_show_names_the_groups_that_list_the_user() {
    let s = Session::demo();
    s.run(&IMPORT, 3);
    let dump = s.json(&["server", "dump"], 0);
    let groups = dump["groups"].as_array().unwrap();
    let listed = |login: &str| -> Vec<String> {
        groups
            .iter()
            .filter(|g| {
                g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m.as_str().unwrap().eq_ignore_ascii_case(login))
            })
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (login, of) = dump["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap().to_owned())
        .map(|l| {
            let of = listed(&l);
            (l, of)
        })
        .max_by_key(|(_, of)| of.len())
        .unwrap();
    assert!(of.len() >= 2, "the demo has a user in two groups: {of:?}");
    let table = s.ok(&["server", "show", &login.to_uppercase()]);
    let row = table
        .lines()
        .find(|l| l.contains("Groups"))
        .unwrap_or_else(|| panic!("{table}"));
    for name in &of {
        assert!(row.contains(name.as_str()), "{name} in {row}");
    }
    assert_eq!(
        s.json(&["server", "show", &login], 0)["login"],
        login.as_str()
    );
    let unknown = s.run_err(&["server", "show", "nobody@contoso.com"], 2);
    assert!(unknown.contains("no server user with login"), "{unknown}");
}

/// `server enable` undoes a disable at once, without waiting for Entra: the change and who
/// made it are one event of their own, shown in the user's history, replayed, verified; asked
/// again, nothing is recorded; a server file or an unknown login is refused.
#[test]
fn an_admin_enables_a_disabled_user_and_the_log_says_who() {
    let s = Session::demo();
    s.run(&IMPORT, 3);
    let dump = s.json(&["server", "dump"], 0);
    let login = dump["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["enabled"] == false && u["entraId"].is_string() && u["login"] != "EmilyB@contoso.com"
        })
        .expect("the import disabled a deleted user")["login"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = s.json(&["verify"], 0)["events"].as_u64().unwrap();

    let said = s.run_err(&["server", "enable", &login], 0);
    assert!(
        said.contains(&format!(
            "{login} is enabled on the server; recorded as run "
        )),
        "{said}"
    );
    let run = said.split("recorded as run ").nth(1).unwrap()[..36].to_owned();
    let user = s.json(&["server", "show", &login, "--history"], 0);
    assert_eq!(user["user"]["enabled"], true, "{user}");
    let last = user["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["run"], run.as_str(), "{user}");
    let uid = unsafe { libc::getuid() };
    assert!(
        last["startedBy"]
            .as_str()
            .unwrap()
            .ends_with(&format!("(uid {uid})")),
        "{last}"
    );
    assert_eq!(
        last["detail"],
        format!("an administrator's action: roster server enable {login}")
    );
    assert_eq!(last["changes"][0]["from"], false);
    assert_eq!(last["changes"][0]["to"], true);
    // One event, under a run of its own; it verifies and replays; `runs` lists imports only.
    assert_eq!(
        s.json(&["verify"], 0)["events"].as_u64().unwrap(),
        events + 1
    );
    let replayed = s.ok(&["replay", &run]);
    assert!(
        replayed.contains("an administrator's action, not an import"),
        "{replayed}"
    );
    assert!(replayed.contains("replays identically"), "{replayed}");
    let lines = s.ok(&["events", &run]);
    assert_eq!(lines.lines().count(), 1);
    assert!(lines.contains("\"type\":\"ServerEdited\""), "{lines}");
    assert_eq!(s.json(&["runs"], 0).as_array().unwrap().len(), 1);

    // Again: nothing to do, nothing recorded.
    let again = s.run_err(&["server", "enable", &login], 0);
    assert!(
        again.contains("already is enabled; nothing changed or recorded"),
        "{again}"
    );
    assert_eq!(
        s.json(&["verify"], 0)["events"].as_u64().unwrap(),
        events + 1
    );
    // And back: disable is recorded the same way.
    s.run_err(&["server", "disable", &login], 0);
    assert_eq!(s.json(&["server", "show", &login], 0)["enabled"], false);

    let file = s.store.path().join("server.json");
    let refused = s.run_err(
        &[
            "--server-file",
            file.to_str().unwrap(),
            "server",
            "enable",
            &login,
        ],
        2,
    );
    assert!(refused.contains("changes the embedded server"), "{refused}");
    let unknown = s.run_err(&["server", "enable", "nobody@contoso.com"], 2);
    assert!(unknown.contains("no server user with login"), "{unknown}");
    assert_eq!(
        s.json(&["verify"], 0)["events"].as_u64().unwrap(),
        events + 2
    );
}

/// `org set` points a fixture org at another file of its tenant, keeping its runs; another
/// tenant's file, a live org or an unknown org is refused and nothing changes.
#[test]
fn org_set_repoints_a_fixture_org_to_a_file_of_its_tenant() {
    let s = Session::demo();
    s.run(&IMPORT, 3);
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("moved.json");
    std::fs::copy(fixtures().join("demo/tenant.json"), &moved).unwrap();
    let said = s.run_err(
        &[
            "org",
            "set",
            "contoso",
            "--fixture",
            moved.to_str().unwrap(),
        ],
        0,
    );
    assert!(said.contains("Org contoso now reads fixture"), "{said}");
    let orgs = s.json(&["org", "list"], 0);
    assert!(orgs.to_string().contains("moved.json"), "{orgs}");
    // The next import reads the new file and goes on from the org's runs.
    s.run(&["import", "contoso", "--select-all"], 0);
    assert_eq!(s.json(&["runs"], 0).as_array().unwrap().len(), 2);

    let other = fixtures().join("tenants/graph-docs.json");
    let refused = s.run_err(
        &[
            "org",
            "set",
            "contoso",
            "--fixture",
            other.to_str().unwrap(),
        ],
        2,
    );
    assert!(refused.contains("is not org contoso's tenant"), "{refused}");
    let unknown = s.run_err(
        &["org", "set", "nope", "--fixture", moved.to_str().unwrap()],
        2,
    );
    assert!(unknown.contains("unknown org"), "{unknown}");
    assert!(s
        .json(&["org", "list"], 0)
        .to_string()
        .contains("moved.json"));
}

/// The config file sets the store, and run defaults, once; the environment and flags win; a
/// config roster cannot use is one line naming the file and the line, exit 2.
#[test]
fn a_config_file_sets_the_store_and_defaults_and_flags_win() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("roster");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "# roster's settings\nstore = \"store\"\n\n[defaults]\non-deleted = \"disable\"\nmax-deletions = 3\n",
    )
    .unwrap();
    let roster = |args: &[&str]| {
        let out = Command::cargo_bin("roster")
            .unwrap()
            .args(args)
            .env_remove("ROSTER_STORE")
            .env_remove("ROSTER_CONFIG")
            .env("XDG_CONFIG_HOME", home.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let tenant = fixtures().join("demo/tenant.json");
    let server = fixtures().join("demo/server.json");
    assert_eq!(
        roster(&[
            "org",
            "add",
            "contoso",
            "--fixture",
            tenant.to_str().unwrap()
        ])
        .0,
        0
    );
    assert!(
        dir.join("store/roster-store").exists(),
        "the config's store, relative to it"
    );
    assert_eq!(roster(&["server", "load", server.to_str().unwrap()]).0, 0);
    let (_, out, _) = roster(&["store"]);
    assert!(out.contains("(named by the config file "), "{out}");
    assert!(
        out.contains(&format!("Config: {}", dir.join("config.toml").display())),
        "{out}"
    );

    // The config's defaults: deleted objects disabled, at most 3 (the demo has 5, and one
    // linked user disabled in Entra ID: refused).
    let (code, _, err) = roster(&["import", "contoso", "--select-all", "--check-deleted"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("6 ") && err.contains("3"), "{err}");
    // A flag wins.
    let (code, out, err) = roster(&[
        "import",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--max-deletions",
        "10",
        "--json",
    ]);
    assert_eq!(code, 3, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["disabled"], 6, "{report}");

    // The environment wins over the file.
    let other = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("roster")
        .unwrap()
        .arg("store")
        .env("ROSTER_STORE", other.path())
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("(named by $ROSTER_STORE)"));

    std::fs::write(
        dir.join("config.toml"),
        "store = \"store\"\nmax-deletions = 3\n",
    )
    .unwrap();
    let (code, _, err) = roster(&["runs"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("config.toml: line 2: unknown field `max-deletions`"),
        "{err}"
    );
}

/// An object left out of an org for good is not imported as a member of a selected group, nor
/// handled as deleted; taken back, it is again. The runs record what they left out.
#[test]
fn an_object_left_out_is_neither_imported_as_a_member_nor_handled_as_deleted() {
    let s = Session::demo();
    let names = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let group = ["plan", "contoso", "--select", "Engineering Leads"];
    let before = s.json(&group, 0);
    let members: Vec<String> = names(&before, "entries")
        .into_iter()
        .filter(|n| n != "Engineering Leads")
        .collect();
    assert_eq!(members.len(), 2, "{before}");
    let deleted = s.json(
        &[
            "plan",
            "contoso",
            "--select",
            "Engineering Leads",
            "--check-deleted",
            "--on-deleted",
            "disable",
        ],
        0,
    );
    let gone = s.json(&["deleted"], 0);
    let gone_name = gone[0]["name"].as_str().unwrap().to_owned();
    let gone_id = gone[0]["id"].as_str().unwrap().to_owned();
    assert!(names(&deleted, "entries").contains(&gone_name), "{deleted}");

    s.ok(&["org", "leave-out", "contoso", &members[0], &gone_id]);
    let listed = s.ok(&["org", "leave-out", "contoso"]);
    assert!(
        listed.contains(&members[0]) && listed.contains(&gone_id),
        "{listed}"
    );
    let after = s.json(&group, 0);
    let left: Vec<String> = names(&after, "entries");
    assert!(
        !left.contains(&members[0]) && left.contains(&members[1]),
        "{after}"
    );
    let plan = s.json(
        &[
            "plan",
            "contoso",
            "--select",
            "Engineering Leads",
            "--check-deleted",
            "--on-deleted",
            "disable",
        ],
        0,
    );
    assert!(!names(&plan, "entries").contains(&gone_name), "{plan}");
    let events = s.ok(&["events", "last"]);
    assert!(events.contains("\"leaveOut\":["), "the run records it");
    // Everything selected left out: refused in one line, nothing recorded.
    let runs = s.json(&["runs"], 0).as_array().unwrap().len();
    let err = s.run_err(&["plan", "contoso", "--select", &members[0]], 2);
    assert!(err.contains("left out of the org for good"), "{err}");
    assert_eq!(s.json(&["runs"], 0).as_array().unwrap().len(), runs);

    s.ok(&["org", "take-back", "contoso", &members[0]]);
    let back = s.json(&group, 0);
    assert!(names(&back, "entries").contains(&members[0]), "{back}");
}
