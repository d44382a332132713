//! `--scim`: imports into a real SCIM service (`scim2-server`, on loopback, one per test),
//! through the binary, compared with the same imports into the embedded server.

mod common;

use common::scim::{as_scim_holds, Service};
use common::{fixtures, Roster};
use engine::model::ServerState;
use serde_json::Value;

fn demo_server() -> ServerState {
    adapters::target::read_server_file(&fixtures().join("demo/server.json")).unwrap()
}

/// The entries of a run's JSON report, as (kind, id, outcome, detail, changes).
fn entries(json: &str) -> Vec<Value> {
    let report: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::json!({
                "kind": e["kind"], "id": e["id"], "name": e["name"], "outcome": e["outcome"],
                "detail": e["detail"], "changes": e["changes"],
            })
        })
        .collect()
}

/// An embedded run's entry as a run against a SCIM service decides it: a group's description
/// and type are not compared (the service cannot hold them), so a group that only they
/// changed is up to date.
fn as_scim_decides(mut entry: Value) -> Value {
    if entry["kind"] != "group" {
        // A SCIM service has no authentication types (decision rules 4): an added user is
        // said by its login alone.
        if entry["outcome"] == "added" {
            let detail = entry["detail"].as_str().unwrap().to_owned();
            entry["detail"] = detail
                .trim_end_matches(", authentication type Microsoft Entra ID")
                .into();
        }
        return entry;
    }
    let changes: Vec<Value> = entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["field"] != "description" && c["field"] != "type")
        .cloned()
        .collect();
    if changes.is_empty() && entry["outcome"] == "updated" {
        entry["outcome"] = "unchanged".into();
        entry["detail"] =
            format!("{}; already up to date", entry["detail"].as_str().unwrap()).into();
    }
    entry["changes"] = changes.into();
    entry
}

/// An entry as a run against a service that does not keep `unkept` decides it: changes to
/// those attributes are not compared.
fn as_decided_keeping_less(entry: Value, unkept: &[&str]) -> Value {
    let mut entry = as_scim_decides(entry);
    fn field_of(attribute: &str) -> &str {
        match attribute {
            "title" => "entra.jobTitle",
            "userType" => "entra.userType",
            "name.givenName" => "entra.givenName",
            "name.familyName" => "entra.surname",
            "emails" => "email",
            other => other,
        }
    }
    let dropped: Vec<&str> = unkept.iter().map(|a| field_of(a)).collect();
    let changes: Vec<Value> = entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !dropped.contains(&c["field"].as_str().unwrap()))
        .cloned()
        .collect();
    if changes.is_empty() && entry["outcome"] == "updated" {
        entry["outcome"] = "unchanged".into();
    }
    entry["changes"] = changes.into();
    entry
}

/// The users of `state` without the attributes a service does not keep.
fn keeping(state: &ServerState, unkept: &[&str]) -> ServerState {
    let unkept: Vec<String> = unkept.iter().map(|a| a.to_string()).collect();
    ServerState::from_parts(
        state.users().map(|u| u.clone().without(&unkept)),
        state.groups().cloned(),
    )
    .unwrap()
}

#[test]
fn demo_imports_into_scim_decide_and_end_as_into_the_embedded_server() {
    demo_imports_end_as_into_the_embedded_server(Service::start(), &[]);
}

/// The same scenarios against a second, independent implementation as a new user would
/// install it: django-scim2 on SQLite, which keeps no enterprise extension (department),
/// `title` or `userType`, makes its own `displayName` from the names, ignores members sent
/// with a group's `POST`, and answers a group's `PATCH replace` and the RFC's member removal
/// 501. roster learns in the first run what it does not keep; the service then holds what
/// the embedded server holds, but for those attributes, and a second import changes nothing.
#[test]
fn demo_imports_into_django_scim2_end_as_into_the_embedded_server() {
    demo_imports_end_as_into_the_embedded_server(
        Service::django(),
        &["department", "displayName", "title", "userType"],
    );
}

/// The demo scenarios — import with deleted objects disabled and one deleted, the same again,
/// a later tenant (renames, members removed, users gone) with deleted objects deleted, and
/// the same again — through the binary against `service` and against the embedded server:
/// the same exit codes and decisions (exactly, where the service keeps everything; else but
/// for the `unkept` attributes, from the second import on), the service read back over HTTP
/// holding what the embedded server holds, nothing left to change at the end, and a fresh
/// store planning from the service alone what the importing store plans.
fn demo_imports_end_as_into_the_embedded_server(service: Service, unkept: &[&str]) {
    // The demo server as both start from: its Active Directory accounts local ones (SCIM has
    // no such kind); the embedded server keeps its groups' descriptions, which a SCIM service
    // does not hold and a run against it does not compare.
    let demo = demo_server();
    let start = ServerState::from_parts(
        as_scim_holds(&demo).users().cloned(),
        demo.groups().cloned(),
    )
    .unwrap();
    service.seed(&start);
    let (scim, embedded) = (Roster::new(), Roster::new());
    let tenant = fixtures().join("demo/tenant.json");
    let later = fixtures().join("scenarios/audit/tenant-later.json");
    for r in [&scim, &embedded] {
        r.add_org("contoso", &tenant);
    }
    let dir = tempfile::tempdir().unwrap();
    let start_file = dir.path().join("start.json");
    adapters::target::write_server_file(&start_file, &start).unwrap();
    embedded.expect(0, &["server", "load", start_file.to_str().unwrap()]);

    let delete = [
        "import",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--on-deleted",
        "delete",
        "--json",
        "--all",
    ];
    let steps: [&[&str]; 5] = [
        &[
            "import",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--on-deleted",
            "disable",
            "--action",
            "omar.haddad@contoso.com=delete",
            "--json",
            "--all",
        ],
        &[
            "import",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--json",
            "--all",
        ],
        &[
            "org",
            "set",
            "contoso",
            "--fixture",
            later.to_str().unwrap(),
        ],
        &delete,
        // The same again: nothing left to change.
        &delete,
    ];
    for (i, step) in steps.into_iter().enumerate() {
        let (code, out, err) = service.run(&scim, step);
        let (want_code, want_out, _) = embedded.run(step);
        assert_eq!(code, want_code, "{step:?}: {err}");
        if step[0] == "import" && unkept.is_empty() {
            let got = entries(&out);
            let want: Vec<Value> = entries(&want_out)
                .into_iter()
                .map(as_scim_decides)
                .collect();
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{step:?}");
            }
            assert_eq!(got.len(), want.len(), "{step:?}");
        } else if step[0] == "import" && i > 0 {
            // What was decided, and for whom; the details say what the service holds.
            let decided = |e: &Value| (e["id"].clone(), e["outcome"].clone(), e["changes"].clone());
            let got: Vec<_> = entries(&out)
                .into_iter()
                .map(|e| decided(&as_decided_keeping_less(e, unkept)))
                .collect();
            let want: Vec<_> = entries(&want_out)
                .into_iter()
                .map(|e| decided(&as_decided_keeping_less(e, unkept)))
                .collect();
            assert_eq!(got, want, "{step:?}");
        }
        let want: ServerState =
            serde_json::from_str(&embedded.expect(0, &["server", "dump"])).unwrap();
        assert_eq!(
            keeping(&service.directory().state, unkept),
            keeping(&as_scim_holds(&want), unkept),
            "{step:?}: the service holds what the embedded server holds"
        );
        if i == steps.len() - 1 {
            let settled = entries(&out).iter().all(|e| {
                ["unchanged", "skipped", "conflict"].contains(&e["outcome"].as_str().unwrap())
            });
            assert!(settled, "nothing left to change: {out}");
        }
        if i == 0 {
            // As the service holds them, read over HTTP: a disabled user's `active` is the
            // boolean false; a disabled group keeps its members, marked in its externalId;
            // the deleted user is gone.
            let dir = service.directory();
            let nora = dir
                .users
                .iter()
                .find(|u| u.user.login == "nora.sato@contoso.com")
                .unwrap();
            assert_eq!(
                service.resource("Users", &nora.id).unwrap()["active"],
                Value::Bool(false)
            );
            let vpn = dir
                .groups
                .iter()
                .find(|g| g.group.name == "Legacy VPN")
                .unwrap();
            let raw = service.resource("Groups", &vpn.id).unwrap();
            assert!(
                raw["externalId"].as_str().unwrap().ends_with("/disabled"),
                "{raw}"
            );
            let kept = want.group("Legacy VPN").unwrap();
            assert!(!kept.enabled);
            assert_eq!(vpn.member_ids.len(), kept.members.len());
            assert!(dir
                .users
                .iter()
                .all(|u| u.user.login != "omar.haddad@contoso.com"));
        }
    }
    assert_eq!(scim.run(&["verify"]).0, 0);
    // The log records the service's URL, never its token.
    let events = scim.expect(0, &["events", "--since", "1"]);
    assert!(events.contains(&format!("\"url\":\"{}\"", service.scim.url)));
    assert!(!events.contains(testkit::scim::TOKEN));
    assert!(!scim.printed.borrow().contains(testkit::scim::TOKEN));
    let (code, out, err) = service.run(&scim, &["replay", "last"]);
    assert_eq!(code, 0, "{out}{err}");

    // The service alone says what roster linked from which tenant: a fresh store plans
    // exactly what the store that imported plans.
    let fresh = Roster::new();
    fresh.add_org("contoso", &later);
    let plan = [
        "plan",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--on-deleted",
        "disable",
        "--json",
        "--all",
    ];
    let (code, out, err) = service.run(&fresh, &plan);
    assert_eq!(code, 3, "{err}");
    let (_, want, _) = service.run(&scim, &plan);
    assert!(
        entries(&out).iter().all(|e| e["outcome"] != "added"),
        "{out}"
    );
    let outcome = |e: &Value| (e["id"].clone(), e["outcome"].clone());
    let conflicts = |json: &str| -> Vec<_> {
        entries(json)
            .iter()
            .filter(|e| e["outcome"] == "conflict")
            .map(outcome)
            .collect()
    };
    assert_eq!(conflicts(&out), conflicts(&want));
    if unkept.is_empty() {
        assert_eq!(entries(&out), entries(&want));
    } else {
        // What the service does not keep beyond its schema, a fresh store learns from its
        // first import's answers (it writes them once); from then on it plans as the store
        // that imported.
        let import = [
            "import",
            "contoso",
            "--select-all",
            "--check-deleted",
            "--on-deleted",
            "disable",
        ];
        service.run(&fresh, &import);
        let (_, out, _) = service.run(&fresh, &plan);
        let decided: Vec<_> = entries(&out).iter().map(outcome).collect();
        let want: Vec<_> = entries(&want).iter().map(outcome).collect();
        assert_eq!(decided, want);
    }
}

/// Imports into a SCIM service killed with SIGKILL at points spread over the run: after every
/// kill the log verifies and the run shows as aborted (or completed); the rerun ends with the
/// service an uninterrupted run leaves, nothing on it twice and nothing recorded as added
/// twice. `ROSTER_CRASH_KILLS=N` runs N kills (8 by default).
#[test]
fn imports_into_scim_killed_at_any_moment_converge_when_rerun() {
    killed_at_any_moment_converge_when_rerun(Service::start, 8);
}

/// The same against django-scim2: groups given their members by a second request, no filter
/// to look a create up by — killed between any two requests, the rerun still converges.
#[test]
fn imports_into_django_scim2_killed_at_any_moment_converge_when_rerun() {
    killed_at_any_moment_converge_when_rerun(Service::django, 4);
}

/// `kills` (or `ROSTER_CRASH_KILLS`) imports into a fresh `service()` each, killed at points
/// spread over the run; see [`imports_into_scim_killed_at_any_moment_converge_when_rerun`].
fn killed_at_any_moment_converge_when_rerun(service: fn() -> Service, kills: u32) {
    use common::store::{added_twice, copy_dir, generated, roster, IMPORT};
    use std::process::Command;
    use std::time::{Duration, Instant};

    let kills: u32 = std::env::var("ROSTER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(kills);
    let (work, template, loaded) = generated(300, 30);
    let start = as_scim_holds(&loaded);
    let import = |service: &Service, store: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_roster"));
        c.args(service.flag())
            .args(IMPORT)
            .args(["--json"])
            .env("ROSTER_STORE", store)
            .env("ROSTER_SCIM_TOKEN", testkit::scim::TOKEN);
        c
    };
    let fresh = || {
        let service = service();
        service.seed(&start);
        service
    };
    // Nothing on the service twice: one user per login and per Entra object, one group per
    // name and per Entra object.
    let once = |service: &Service| {
        let dir = service.directory();
        let mut seen = std::collections::HashSet::new();
        for u in &dir.users {
            assert!(seen.insert(format!("login {}", engine::ids::fold_case(&u.user.login))));
            if let Some(id) = &u.user.entra_id {
                assert!(seen.insert(format!("user {id}")), "{id} twice");
            }
        }
        for g in &dir.groups {
            assert!(seen.insert(format!("group {}", engine::ids::fold_case(&g.group.name))));
            if let Some(id) = &g.group.entra_id {
                assert!(seen.insert(format!("group {id}")), "{id} twice");
            }
        }
        dir.state
    };

    let reference = {
        let service = fresh();
        let store = work.path().join("reference");
        copy_dir(&template, &store);
        let began = Instant::now();
        let out = import(&service, &store).output().unwrap();
        let took = began.elapsed();
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (once(&service), took)
    };
    let (reference, took) = reference;
    assert_ne!(reference, start);

    let (mut interrupted, mut writing) = (0, 0);
    for k in 0..kills {
        let service = fresh();
        let store = work.path().join(format!("kill{k}"));
        copy_dir(&template, &store);
        let at = took.mul_f64(0.05 + 1.0 * f64::from(k) / f64::from(kills.max(1)));
        let mut child = import(&service, &store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at.max(Duration::from_millis(50)));
        let _ = child.kill();
        let _ = child.wait();

        let (code, out, err) = roster(&store, &["verify"]);
        assert_eq!(code, 0, "kill {k} at {at:?}: the log verifies\n{out}{err}");
        let runs: Value = serde_json::from_str(&roster(&store, &["runs", "--json"]).1).unwrap();
        let status = runs.as_array().unwrap().last().map(|r| r["status"].clone());
        let reason = roster(&store, &["report", "last"]).1;
        if status.as_ref().and_then(Value::as_str) == Some("aborted") {
            interrupted += 1;
            writing += usize::from(reason.contains("intended changes were not confirmed"));
        }
        assert!(
            matches!(
                status.as_ref().and_then(Value::as_str),
                Some("aborted" | "completed") | None
            ),
            "kill {k}: {status:?}"
        );
        let out = import(&service, &store).output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "kill {k}: the rerun finishes: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            once(&service),
            reference,
            "kill {k} at {at:?}: the rerun converges"
        );
        assert!(added_twice(&store).is_empty(), "kill {k}");
        assert_eq!(roster(&store, &["verify"]).0, 0);
        std::fs::remove_dir_all(&store).unwrap();
    }
    println!("{kills} kills: {interrupted} interrupted a run, {writing} while it wrote to the service; full import {took:?}");
    assert!(
        interrupted > 0,
        "the kills must interrupt runs, not only land after them"
    );
}

/// What a SCIM service or its settings get wrong is told in one line, exit 2 (1 when the
/// service cannot be reached), the token never shown, and nothing is recorded or changed.
#[test]
fn a_bad_token_url_or_service_is_refused_in_one_line_and_changes_nothing() {
    let service = Service::start();
    let r = Roster::new();
    let tenant = fixtures().join("demo/tenant.json");
    r.add_org("contoso", &tenant);
    let import = ["import", "contoso", "--select-all"];
    let url = service.scim.url.clone();
    let dead = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}/v2/")
    };
    let dir = tempfile::tempdir().unwrap();
    let open_token = dir.path().join("token");
    std::fs::write(&open_token, testkit::scim::TOKEN).unwrap();
    std::fs::set_permissions(
        &open_token,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let no_patch = testkit::scim::Scim::start_offering(testkit::scim::Offers {
        patch: false,
        bulk: false,
        filter: true,
        max_results: 100,
        etag: false,
    });
    // The flags, the environment, the exit code, and what the one line says.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--scim".into(), url.clone()],
            vec![("ROSTER_SCIM_TOKEN", "wrong-token")],
            2,
            "answered 401",
        ),
        (
            vec!["--scim".into(), url.clone()],
            vec![],
            2,
            "needs the service's bearer token",
        ),
        (
            vec!["--scim".into(), dead.clone()],
            vec![("ROSTER_SCIM_TOKEN", testkit::scim::TOKEN)],
            1,
            "cannot reach the SCIM service",
        ),
        (
            vec!["--scim".into(), url.replace("/v2/", "/nope/")],
            vec![("ROSTER_SCIM_TOKEN", testkit::scim::TOKEN)],
            2,
            "SCIM base URL",
        ),
        (
            vec!["--scim".into(), "http://scim.example.com/v2".into()],
            vec![("ROSTER_SCIM_TOKEN", testkit::scim::TOKEN)],
            2,
            "use https",
        ),
        (
            vec![
                "--scim".into(),
                "https://user:pw@scim.example.com/v2".into(),
            ],
            vec![],
            2,
            "credentials do not belong in the URL",
        ),
        (
            vec!["--scim".into(), no_patch.url.clone()],
            vec![("ROSTER_SCIM_TOKEN", testkit::scim::TOKEN)],
            2,
            "does not support PATCH",
        ),
        (
            vec![
                "--scim".into(),
                url.clone(),
                "--scim-token-file".into(),
                open_token.display().to_string(),
            ],
            vec![],
            2,
            "token",
        ),
        (
            vec![
                "--scim".into(),
                url.clone(),
                "--server-file".into(),
                "x.json".into(),
            ],
            vec![],
            2,
            "cannot be used with",
        ),
    ];
    for (flags, env, code, says) in cases {
        let args: Vec<&str> = flags.iter().map(String::as_str).chain(import).collect();
        let (got, out, err) = r.run_with(&args, &env);
        assert_eq!(got, code, "{flags:?}: {out}{err}");
        assert!(err.contains(says), "{flags:?}: {err}");
        if !flags.contains(&"--server-file".to_string()) {
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{flags:?}: one line: {err}"
            );
        }
        assert!(
            !err.contains(testkit::scim::TOKEN)
                && !err.contains("wrong-token")
                && !err.contains(":pw@"),
            "{err}"
        );
    }
    assert!(service.directory().users.is_empty(), "nothing was written");
    assert_eq!(
        r.expect(0, &["runs", "--json"]).trim(),
        "[]",
        "nothing was recorded"
    );

    // The server commands that would write to it are refused: imports alone change it.
    let server_json = fixtures().join("demo/server.json");
    for args in [
        vec!["server", "load", server_json.to_str().unwrap()],
        vec!["server", "disable", "AdeleV@contoso.com"],
    ] {
        let (code, _, err) = service.run(&r, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("roster changes it only by imports"), "{err}");
    }
    assert!(service.directory().users.is_empty());
}

/// A reviewed dry run is applied, and a sync repeated, against the service the run was made
/// for, without `--scim` (the token given again); `apply` against another server is refused.
/// The run's report, `store` and the HTML page name the service.
#[test]
fn apply_and_sync_go_back_to_the_service_the_run_was_made_for() {
    let service = Service::start();
    let r = Roster::new();
    let tenant = fixtures().join("demo/tenant.json");
    r.add_org("contoso", &tenant);
    let token = [("ROSTER_SCIM_TOKEN", testkit::scim::TOKEN)];
    let (code, _, err) = service.run(&r, &["plan", "contoso", "--select-all"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        service.directory().users.is_empty(),
        "a dry run writes nothing"
    );

    let (code, _, err) = r.run_with(
        &["--server-file", "elsewhere.json", "apply", "last"],
        &token,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("apply it against the same server"), "{err}");
    let (code, out, err) = r.run_with(&["apply", "last", "--json"], &token);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(service.directory().users.len(), 43, "{out}");

    let (code, out, err) = r.run_with(&["sync", "contoso", "--json"], &token);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"unchanged\":"), "{out}");
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);

    let html = r.expect(0, &["report", "last", "--format", "html"]);
    assert!(html.contains(&format!(
        "the SCIM service <code>{}</code>",
        service.scim.url
    )));
    let (_, store, _) = service.run(&r, &["store"]);
    assert!(store.contains("the SCIM service at"), "{store}");
}

/// An import records its differences from the org's last run against the same server only:
/// after an import into the embedded server, the first import into a service records
/// everything; the next one records its differences from that one.
#[test]
fn a_run_is_based_only_on_a_run_against_the_same_server() {
    let service = Service::start();
    let r = Roster::new();
    r.add_org("contoso", &fixtures().join("demo/tenant.json"));
    let import = ["import", "contoso", "--select-all"];
    r.expect(0, &import);
    let base_of_last = |r: &Roster| {
        let first = r.expect(0, &["events", "last"]);
        let started: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        started["payload"]["base"].as_str().map(str::to_owned)
    };
    let runs = |r: &Roster| -> Vec<String> {
        let all: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .map(|x| x["run"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(service.run(&r, &import).0, 0);
    assert_eq!(base_of_last(&r), None, "the embedded run is not its base");
    let scim_run = runs(&r).last().cloned();
    assert_eq!(service.run(&r, &import).0, 0);
    assert_eq!(base_of_last(&r), scim_run);
}

/// The config file names the service and the token file once (`scim`, `scim-token-file`,
/// relative to the file); naming both a server file and a service is refused.
#[test]
fn the_config_file_names_the_service_and_its_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let service = Service::start();
    let r = Roster::new();
    r.add_org("contoso", &fixtures().join("demo/tenant.json"));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("scim-token");
    std::fs::write(&token, testkit::scim::TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "scim = \"{}\"\nscim-token-file = \"scim-token\"\n",
            service.scim.url
        ),
    )
    .unwrap();
    let env = [("ROSTER_CONFIG", config.to_str().unwrap())];
    let (code, _, err) = r.run_with(&["import", "contoso", "--select-all"], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(service.directory().users.len(), 43);

    std::fs::write(
        &config,
        format!(
            "scim = \"{}\"\nserver-file = \"s.json\"\n",
            service.scim.url
        ),
    )
    .unwrap();
    let (code, _, err) = r.run_with(&["runs"], &env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server-file and scim both name the server"),
        "{err}"
    );
}
