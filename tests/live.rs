//! Live tenants end to end, as an admin runs them: `roster fake-graph` in one process, roster
//! in others, over loopback only. Sign-in both ways, the same search and plan as the fixture,
//! recordings, a failing enumeration that changes nothing, and no secret or token anywhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn faulty() -> Vec<&'static str> {
    vec![
        "--page-size",
        "2",
        "--throttle-every",
        "3",
        "--fail-every",
        "4",
        "--retry-after",
        "0.01",
        "--client-secret",
        SECRET,
    ]
}

fn entries(plan: &str) -> Value {
    serde_json::from_str::<Value>(plan).unwrap()["entries"].clone()
}

#[test]
fn a_live_tenant_searches_and_plans_exactly_like_its_fixture() {
    let fake = Fake::start(&fixtures().join("demo/tenant.json"), &faulty());
    let r = Roster::new();
    r.add_live("live", &fake);
    r.add_demo("fixture", &fixtures().join("demo/tenant.json"));
    assert_eq!(
        r.expect(0, &["search", "live", "--json"]),
        r.expect(0, &["search", "fixture", "--json"])
    );
    let live = r.expect(
        3,
        &["plan", "live", "--select-all", "--check-deleted", "--json"],
    );
    let fixture = r.expect(
        3,
        &[
            "plan",
            "fixture",
            "--select-all",
            "--check-deleted",
            "--json",
        ],
    );
    assert_eq!(entries(&live), entries(&fixture));
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    let stats = fake.stats();
    if !stats.is_null() {
        assert!(
            stats["throttled"].as_u64().unwrap() > 0 && stats["unexpected"] == 0,
            "{stats}"
        );
    }
}

#[test]
fn device_code_sign_in_from_the_command_line() {
    let fake = Fake::start(
        &fixtures().join("tenants/graph-docs.json"),
        &[
            "--approve-after",
            "1",
            "--signed-in",
            "megan.admin@contoso.example",
        ],
    );
    let r = Roster::new();
    let tenant = "dd1c2e8f-3a4b-4c5d-8e6f-7a8b9c0d1e2f";
    let (code, out, err) = r.run(&[
        "org",
        "add",
        "docs",
        "--tenant",
        tenant,
        "--graph-url",
        &fake.url,
        "--login-url",
        &fake.url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed in (device code)"), "{out}");
    assert!(
        err.contains(&format!(
            "open {}/devicelogin and enter the code FAKE-",
            fake.url
        )),
        "{err}"
    );
    let cache = r.store.path().join("tokens/docs.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The refresh token is cached: no prompt this time.
    let (_, _, err) = r.run(&["search", "docs", "golf"]);
    assert!(!err.contains("To sign in"), "{err}");

    // A run records who started it — the real uid's account, whatever $USER says — and the
    // administrator who signed in, from the ID token; runs, report and the HTML page show both.
    let (code, _, err) = r.run_with(
        &["plan", "docs", "--select-all", "--json"],
        &[("USER", "mallory")],
    );
    assert_eq!(code, 0, "{err}");
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    let run = &runs[0];
    let uid = unsafe { libc::getuid() };
    let by = run["startedBy"].as_str().unwrap();
    assert!(
        by.ends_with(&format!("(uid {uid})")) && !by.contains("mallory"),
        "{run}"
    );
    assert_eq!(run["signedInAs"], "megan.admin@contoso.example", "{run}");
    let id = run["run"].as_str().unwrap();
    let report = r.expect(0, &["report", id]);
    assert!(
        report.contains(&format!(
            "Started by {by}, signed in to Entra ID as megan.admin@contoso.example"
        )),
        "{report}"
    );
    let table = r.expect(0, &["runs"]);
    assert!(table.contains("megan.admin@contoso.example"), "{table}");
    let page = r.expect(0, &["report", id, "--format", "html"]);
    assert!(
        page.contains("<dt>Signed in to Entra ID as</dt><dd>megan.admin@contoso.example</dd>"),
        "{page}"
    );
    // Who signed in is not a secret, but the tokens still stay in the cache only.
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert!(cached.contains("megan.admin@contoso.example"));
    r.expect(0, &["org", "logout", "docs"]);
    assert!(!cache.exists());
    r.expect(2, &["org", "logout", "nope"]);
}

#[test]
fn bad_live_settings_are_refused_with_the_fix_and_nothing_is_saved() {
    let fake = Fake::start(
        &fixtures().join("tenants/graph-docs.json"),
        &["--client-secret", "other", "--forbid", "users"],
    );
    let r = Roster::new();
    let base = [
        "org",
        "add",
        "x",
        "--graph-url",
        &fake.url,
        "--login-url",
        &fake.url,
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    for (args, expect) in [
        (with(&["--tenant", "contoso"]), "is not a tenant id"),
        (
            with(&[
                "--tenant",
                "dd1c2e8f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
                "--auth",
                "client-secret",
            ]),
            "needs --client-id",
        ),
        (
            with(&[
                "--tenant",
                "dd1c2e8f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
                "--auth",
                "client-secret",
                "--client-id",
                CLIENT,
            ]),
            "AADSTS7000215",
        ),
        (
            with(&[
                "--tenant",
                "99999999-9999-4999-8999-999999999999",
                "--auth",
                "client-secret",
                "--client-id",
                CLIENT,
            ]),
            "check --tenant",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = r.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(expect) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let fake = Fake::start(
        &fixtures().join("tenants/graph-docs.json"),
        &["--forbid", "users"],
    );
    let args = add_live_args("x", "dd1c2e8f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", &fake);
    let (code, _, err) = r.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 2);
    assert!(err.contains("User.Read.All"), "{err}");
    assert!(r.expect(0, &["org", "list"]).contains("No orgs yet"));
}

#[test]
fn a_recording_is_a_fixture_that_plans_the_same() {
    let fake = Fake::start(&fixtures().join("demo/tenant.json"), &faulty());
    let r = Roster::new();
    r.add_live("live", &fake);
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("recorded.json");
    let anonymous = dir.path().join("anonymous.json");
    r.expect(0, &["record", "live", "--out", recorded.to_str().unwrap()]);
    r.expect(
        0,
        &[
            "record",
            "live",
            "--out",
            anonymous.to_str().unwrap(),
            "--anonymize",
        ],
    );
    r.expect(
        0,
        &["org", "add", "rec", "--fixture", recorded.to_str().unwrap()],
    );
    r.expect(
        0,
        &[
            "org",
            "add",
            "anon",
            "--fixture",
            anonymous.to_str().unwrap(),
        ],
    );
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    let live = r.expect(
        3,
        &["plan", "live", "--select-all", "--check-deleted", "--json"],
    );
    assert_eq!(
        entries(&live),
        entries(&r.expect(
            3,
            &["plan", "rec", "--select-all", "--check-deleted", "--json"]
        ))
    );
    // The recording is the tenant: every group's direct members, nested groups as groups and
    // devices as devices, are the original fixture's.
    let direct = |file: &std::path::Path| -> Vec<(String, Vec<(String, String)>)> {
        let t: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let mut groups: Vec<(String, Vec<(String, String)>)> = t["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let mut members: Vec<(String, String)> = g["members"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|m| {
                                (
                                    // The demo fixture leaves out the type of some users.
                                    m["@odata.type"]
                                        .as_str()
                                        .unwrap_or("#microsoft.graph.user")
                                        .to_owned(),
                                    m["id"].as_str().unwrap().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                members.sort();
                (g["id"].as_str().unwrap().to_owned(), members)
            })
            .collect();
        groups.sort();
        groups
    };
    let original = direct(&fixtures().join("demo/tenant.json"));
    for kind in [".group", ".device"] {
        assert!(original
            .iter()
            .any(|(_, m)| m.iter().any(|(t, _)| t.ends_with(kind))));
    }
    assert_eq!(direct(&recorded), original);
    // Anonymized: no name, UPN or mail survives, and the tenant's shape does.
    let text = std::fs::read_to_string(&anonymous).unwrap();
    for real in [
        "Adele",
        "AdeleV@contoso.com",
        "contoso.com",
        "fabrikam",
        "Golf",
    ] {
        assert!(
            !text.contains(real),
            "{real} leaked into the anonymized recording"
        );
    }
    let anon = r.expect(
        0,
        &[
            "plan",
            "anon",
            "--select-all",
            "--json",
            "--server-file",
            write_empty_server(dir.path()).to_str().unwrap(),
        ],
    );
    let summary = |s: &str| serde_json::from_str::<Value>(s).unwrap()["summary"].clone();
    assert_eq!(
        summary(&anon)["added"],
        43 + 15,
        "every enabled user and every group"
    );
    assert_eq!(summary(&anon)["skipped"], 3);
}

fn write_empty_server(dir: &Path) -> PathBuf {
    let p = dir.join("empty-server.json");
    std::fs::write(&p, "{\"users\": [], \"groups\": []}").unwrap();
    p
}

#[test]
fn an_enumeration_that_fails_half_way_changes_nothing() {
    let fake = Fake::start(
        &fixtures().join("demo/tenant.json"),
        &[
            "--page-size",
            "3",
            "--fail-after",
            "12",
            "--client-secret",
            SECRET,
        ],
    );
    let r = Roster::new();
    r.add_live("live", &fake);
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    let before = r.expect(0, &["server", "dump"]);
    let (code, out, err) = {
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args([
                "import",
                "live",
                "--select-all",
                "--check-deleted",
                "--on-deleted",
                "delete",
            ])
            .env("ROSTER_STORE", r.store.path())
            .env("ROSTER_CLIENT_SECRET", SECRET)
            .env("ROSTER_RETRY_BASE_MS", "1")
            .env("ROSTER_RETRY_ATTEMPTS", "3")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("aborted")
            && err.contains("gave up after 3 attempts")
            && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        r.expect(0, &["server", "dump"]),
        before,
        "nothing changed on the server"
    );
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "aborted");
    r.expect(0, &["verify"]);
}

#[test]
fn the_secret_and_the_tokens_never_leave_the_token_cache() {
    let fake = Fake::start(
        &fixtures().join("demo/tenant.json"),
        &["--client-secret", SECRET, "--page-size", "7"],
    );
    let r = Roster {
        trace: true,
        ..Roster::new()
    };
    r.add_live("live", &fake);
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    r.expect(3, &["import", "live", "--select-all", "--check-deleted"]);
    for args in [
        &["runs"][..],
        &["report", "last", "--format", "csv"],
        &["events", "--since", "1"],
        &["verify"],
        &["org", "list", "--json"],
        &["replay", "last"],
    ] {
        r.run(args);
    }
    let cache = std::fs::read_to_string(r.store.path().join("tokens/live.json")).unwrap();
    let token: Value = serde_json::from_str(&cache).unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("fake-at-"));
    let printed = r.printed.borrow().clone();
    assert!(
        printed.contains("TRACE") && printed.contains("graph response"),
        "the logs were read at trace level"
    );
    for needle in [SECRET, access.as_str()] {
        assert!(!printed.contains(needle), "printed output holds a secret");
        for file in walk(r.store.path()) {
            if file.starts_with(r.store.path().join("tokens")) {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds a secret",
                file.display()
            );
        }
    }
}

/// A sign-in service that answers a huge token or device-code lifetime (a number past any
/// clock, or a string of digits) is bounded, not trusted: sign-in, a renewal after the token
/// really expired, and device-code sign-in all work, with no panic.
#[test]
fn a_huge_lifetime_from_the_sign_in_service_is_bounded() {
    for value in [
        "9223372036854775807",
        "\"9223372036854775807\"",
        "18446744073709551615",
    ] {
        let fake = Fake::start(
            &fixtures().join("demo/tenant.json"),
            &[
                "--client-secret",
                SECRET,
                "--expires-in",
                value,
                "--token-ttl-s",
                "1",
            ],
        );
        let r = Roster::new();
        r.add_live("live", &fake);
        r.expect(0, &["plan", "live", "--select-all"]);
        // The fake's token has expired; roster's bounded clock still trusts it, is told 401,
        // and renews.
        std::thread::sleep(std::time::Duration::from_millis(1200));
        r.expect(0, &["plan", "live", "--select-all"]);
    }
    let fake = Fake::start(
        &fixtures().join("tenants/graph-docs.json"),
        &[
            "--approve-after",
            "1",
            "--expires-in",
            "18446744073709551615",
        ],
    );
    let r = Roster::new();
    let (code, _, err) = r.run(&[
        "org",
        "add",
        "docs",
        "--tenant",
        "dd1c2e8f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
        "--graph-url",
        &fake.url,
        "--login-url",
        &fake.url,
    ]);
    assert_eq!(code, 0, "{err}");
}

/// `roster fake-graph` reloads its tenant file on SIGHUP (a new version of the tenant, which
/// delta tokens see), and keeps serving the previous one when the file is broken.
#[test]
fn fake_graph_reloads_its_tenant_on_sighup() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("tenant.json");
    std::fs::copy(fixtures().join("demo/tenant.json"), &tenant).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["fake-graph", "--tenant"])
        .arg(&tenant)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // roster asks Linux for no transparent huge pages (src/main.rs): a kernel that says
    // whether a process has them says it has not.
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
        }
    }
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut hangup = |expect: &str| {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        loop {
            let line = stderr.next().expect("fake-graph says what it did").unwrap();
            if line.contains("reload") {
                assert!(line.contains(expect), "{line}");
                return;
            }
        }
    };
    hangup("(version 2)");
    std::fs::write(&tenant, b"{ broken").unwrap();
    hangup("still serving the previous version");
    std::fs::copy(fixtures().join("demo/tenant.json"), &tenant).unwrap();
    hangup("(version 3)");
    let _ = child.kill();
    let _ = child.wait();
}

/// A live org reads only what changed since its last run (Graph delta through `fake-graph`,
/// with pages of two, throttling and 503s) and decides and records exactly what an org reading
/// the same tenant versions from fixtures does: the same inputs digest, the same entries, every
/// run replayed. An expired delta token makes the next run read the whole tenant, and say so.
/// From the third run on, each takes its base (the live one: the Entra objects whole) from the
/// mirror the run before left, which `verify --mirrors` finds equal to the log's fold.
#[test]
fn a_live_org_reads_only_the_changes_and_decides_as_its_fixture() {
    let first: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("demo/tenant.json")).unwrap())
            .unwrap();
    let mut versions = testkit::tenant_versions(&first);
    versions.push(versions.last().unwrap().clone());
    let dir = tempfile::tempdir().unwrap();
    let path = |i: usize| dir.path().join(format!("v{i}.json"));
    for (i, v) in versions.iter().enumerate() {
        std::fs::write(path(i), serde_json::to_vec(v).unwrap()).unwrap();
    }
    let fixture_tenant = dir.path().join("tenant.json");
    std::fs::copy(path(0), &fixture_tenant).unwrap();
    let fake = Fake::start(&path(0), &faulty());
    let (live, fixture) = (Roster::new(), Roster::new());
    live.add_live("contoso", &fake);
    let server = fixtures().join("demo/server.json");
    live.expect(0, &["server", "load", server.to_str().unwrap()]);
    fixture.add_demo("contoso", &fixture_tenant);
    let started = |r: &Roster| -> Value {
        let events = r.expect(0, &["events", "last"]);
        serde_json::from_str::<Value>(events.lines().next().unwrap()).unwrap()["payload"].clone()
    };
    let mut last_live_run = Value::Null;
    for i in 0..versions.len() {
        if i == versions.len() - 1 {
            fake.expire_delta();
        }
        if i > 0 {
            fake.reload(&path(i));
            std::fs::copy(path(i), &fixture_tenant).unwrap();
        }
        let (a, b) = (live.run(&IMPORT), fixture.run(&IMPORT));
        assert_eq!(a.0, b.0, "version {}: {a:?} {b:?}", i + 1);
        let (a_out, b_out): (Value, Value) = (
            serde_json::from_str(&a.1).unwrap(),
            serde_json::from_str(&b.1).unwrap(),
        );
        assert_eq!(a_out["entries"], b_out["entries"], "version {}", i + 1);
        assert_eq!(a_out["summary"], b_out["summary"], "version {}", i + 1);
        let (s_live, s_fixture) = (started(&live), started(&fixture));
        assert_eq!(
            s_live["inputsDigest"],
            s_fixture["inputsDigest"],
            "version {}",
            i + 1
        );
        let source = &s_live["source"];
        assert!(source["deltaLinks"]["users"].is_string(), "{source}");
        match i {
            0 => assert!(source.get("changesSince").is_none()),
            i if i == versions.len() - 1 => {
                assert!(source.get("changesSince").is_none(), "{source}");
                assert!(
                    a.2.contains("could not read only the changes since run")
                        && a.2.contains("syncStateNotFound"),
                    "{}",
                    a.2
                );
            }
            _ => assert_eq!(source["changesSince"], last_live_run, "{source}"),
        }
        last_live_run = a_out["run"].clone();
    }
    for run in ["last", "last~1", "last~2", "last~3", "last~4"] {
        live.expect(0, &["replay", run]);
    }
    live.expect(0, &["verify"]);
    // Each org's mirror — the live one keeping the Entra objects whole to read changes from —
    // is what folding its runs from the log gives.
    for r in [&live, &fixture] {
        let verified: Value =
            serde_json::from_str(&r.expect(0, &["verify", "--mirrors", "--json"])).unwrap();
        let mirrors = verified["mirrors"].as_array().unwrap();
        assert_eq!(mirrors.len(), 1, "{verified}");
        assert_eq!(mirrors[0]["state"], "matches", "{verified}");
    }
}

/// Ctrl-C while a live tenant is read: the read is given up at once, the run is recorded as
/// aborted, one line says that nothing was changed, and the log verifies.
#[test]
fn ctrl_c_while_reading_a_live_tenant_says_nothing_was_changed() {
    let fake = Fake::start(
        &fixtures().join("demo/tenant.json"),
        &["--page-size", "2", "--latency-ms", "300"],
    );
    let r = Roster::new();
    r.add_live("live", &fake);
    r.add_demo("fixture", &fixtures().join("demo/tenant.json"));
    let before = r.expect(0, &["server", "dump"]);
    let child = r.spawn(&["import", "live", "--select-all"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: run ")
            && lines[0].ends_with(
                " aborted: interrupted (Ctrl-C) while reading the tenant; nothing was changed on the server"
            ),
        "{err}"
    );
    assert_eq!(r.expect(0, &["server", "dump"]), before);
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "aborted", "{runs}");
    r.expect(0, &["verify"]);
}

/// A Graph that cannot be reached is said at once, naming the host and the real time taken,
/// and nothing is retried for minutes: an https:// URL to a plain-http server, then a port
/// where nothing listens any more. The run that met it is recorded as aborted.
#[test]
fn an_unreachable_graph_fails_at_once_naming_the_host() {
    let r = Roster::new();
    let fake = Fake::start(&fixtures().join("demo/tenant.json"), &[]);
    let args = add_live_args("live", TENANT, &fake);
    r.expect(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let host = fake.url.trim_start_matches("http://").to_owned();
    let https = fake.url.replacen("http://", "https://", 1);
    let mut tls = add_live_args_at("tls", TENANT, &https);
    // Signing in at the fake's own (http) URL; only Graph is asked over https.
    let login = tls.len() - 1;
    tls[login] = fake.url.clone();
    let (code, _, err) = r.run(&tls.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("cannot reach Graph at {host}"))
            && err.contains("does not speak TLS")
            && err.contains("after 1 attempt in"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    drop(fake);
    let (code, _, err) = r.run(&["import", "live", "--select-all"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach Graph at {host}: the connection was refused"
        )) && err.contains("after 1 attempt in"),
        "{err}"
    );
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "aborted", "{runs}");
    r.expect(0, &["verify"]);
}

/// A live org that nothing changed in: once a run changed nothing, the next asks Graph only
/// whether anything changed — both change listings empty, both recycle bins as they were — and
/// takes that run's decisions: a handful of requests, the problems recorded again, the delta
/// links renewed. A change in the tenant is read and decided again; the run after it that
/// finds nothing new takes its decisions again.
#[test]
fn a_live_org_that_nothing_changed_in_takes_its_last_decisions() {
    let first: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("demo/tenant.json")).unwrap())
            .unwrap();
    let versions = testkit::tenant_versions(&first);
    let dir = tempfile::tempdir().unwrap();
    let (v0, v1) = (dir.path().join("v0.json"), dir.path().join("v1.json"));
    std::fs::write(&v0, serde_json::to_vec(&versions[0]).unwrap()).unwrap();
    std::fs::write(&v1, serde_json::to_vec(&versions[1]).unwrap()).unwrap();
    let fake = Fake::start(&v0, &["--client-secret", SECRET]);
    let r = Roster::new();
    r.add_live("contoso", &fake);
    let server = fixtures().join("demo/server.json");
    r.expect(0, &["server", "load", server.to_str().unwrap()]);
    let stands = |stderr: &str| stderr.contains("its decisions stand, nothing was read again");
    let import = |expect_stands: bool| -> (Value, u64) {
        let before = fake.stats()["graphRequests"].as_u64().unwrap();
        let (code, out, err) = r.run(&IMPORT);
        assert!(code == 0 || code == 3, "{err}");
        assert_eq!(stands(&err), expect_stands, "{err}");
        let requests = fake.stats()["graphRequests"].as_u64().unwrap() - before;
        (serde_json::from_str(&out).unwrap(), requests)
    };
    import(false);
    let (second, _) = import(false);
    let (third, requests) = import(true);
    assert!(requests <= 5, "{requests} Graph requests");
    assert_eq!(third["summary"], second["summary"]);
    let events: Vec<Value> = r
        .expect(0, &["events", "last"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let source = &events[0]["payload"]["source"];
    assert_eq!(source["changesSince"], second["run"], "{source}");
    assert!(source["deltaLinks"]["users"].is_string(), "{source}");
    assert!(source["content"].is_string(), "{source}");
    assert!(events[1..events.len() - 1]
        .iter()
        .all(|e| e["type"] == "Imported" && e["payload"]["outcome"] == "conflict"));
    r.expect(0, &["replay", "last"]);
    let verified = r.expect(0, &["verify", "--mirrors"]);
    assert!(verified.contains("matches the log"), "{verified}");

    // The tenant changes: read (only the changes) and decided again; then nothing new.
    fake.reload(&v1);
    let (changed, changed_requests) = import(false);
    // The changes are asked for once: the quiet check's listings are the run's.
    assert!(
        changed_requests <= 2 * requests,
        "{changed_requests} Graph requests for a change, {requests} for none"
    );
    assert_ne!(changed["summary"], third["summary"]);
    import(false);
    let (quiet, _) = import(true);
    // Graph no longer knows the links (an expired delta token): that is no evidence that
    // nothing changed — the run reads the whole tenant, and says why.
    fake.expire_delta();
    let (code, out, err) = r.run(&IMPORT);
    assert_eq!(code, 0, "{err}");
    assert!(!stands(&err), "{err}");
    let whole: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(whole["summary"], quiet["summary"]);
    let started: Value =
        serde_json::from_str(r.expect(0, &["events", "last"]).lines().next().unwrap()).unwrap();
    assert!(started["payload"]["source"].get("changesSince").is_none());
    assert!(
        err.contains("syncStateNotFound") || out.contains("syncStateNotFound"),
        "{err}"
    );
    // That whole read changed nothing: the next run's inputs are its, and it says nothing of
    // the whole read (its own read was two empty listings and the bins).
    let (code, out, err) = r.run(&IMPORT);
    assert_eq!(code, 0, "{err}");
    assert!(
        stands(&err) && !err.contains("could not read only the changes"),
        "{err}"
    );
    let quiet: Value = serde_json::from_str(&out).unwrap();
    let all = r.expect(0, &["report", "last", "--all", "--json"]);
    let all: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["summary"], quiet["summary"]);
    r.expect(0, &["verify", "--mirrors"]);
}
