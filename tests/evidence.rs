//! Absence is not evidence: what Graph says becomes a fact only when it is whole and checked.
//! Each test drives the binary against a hostile Graph on loopback — `roster fake-graph`
//! serving a tenant roster would refuse as a file, or a proxy in front of it
//! (`common/proxy.rs`) that makes answers up — and checks that nothing is added, disabled,
//! deleted or taken out of a group on the word of an answer that is not whole.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

const ADELE: &str = "81cc897f-de9f-5e28-bccb-3cd17e637d0d";
const ALEX: &str = "d2e5a4b2-5104-563d-a9bf-cc8f2eba4878";
const CARLOS: &str = "28b9523c-025a-53b9-9a68-4ffe6d9d33a0";
const SANJAY: &str = "58cb1d3a-92b2-581a-baab-a222af06f73d";
const ENGINEERING: &str = "8d0c38ba-c16d-5312-a273-29c7f17417a5";

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn user_mut<'a>(t: &'a mut Value, id: &str) -> &'a mut Value {
    t["users"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|u| u["id"] == id)
        .unwrap()
}

/// A store with the demo server loaded and a live org `contoso` reading Graph at `url`.
fn live_demo(r: &Roster, url: &str) {
    let args = add_live_args_at("contoso", TENANT, url);
    r.expect(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
}

/// The demo's import (deleted objects disabled), its JSON report and what it said on stderr.
fn import(r: &Roster) -> (Value, String) {
    let (code, out, err) = r.run(&IMPORT);
    assert!(code == 0 || code == 3, "exit {code}\n{out}\n{err}");
    (serde_json::from_str(&out).unwrap(), err)
}

fn outcome<'a>(report: &'a Value, id: &str) -> Option<&'a str> {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .and_then(|e| e["outcome"].as_str())
}

/// The embedded server as `server dump` gives it.
fn server(r: &Roster) -> Value {
    serde_json::from_str(&r.expect(0, &["server", "dump"])).unwrap()
}

fn server_user<'a>(s: &'a Value, login: &str) -> Option<&'a Value> {
    s["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"].as_str().unwrap().eq_ignore_ascii_case(login))
}

fn group_members(s: &Value, name: &str) -> Vec<String> {
    s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .map(|g| {
            g["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// The last run's source, as `events` shows its `RunStarted`.
fn last_source(r: &Roster) -> Value {
    let events = r.expect(0, &["events", "last"]);
    let started: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    started["payload"]["source"].clone()
}

/// A whole read that finds `accountEnabled` left out or `null` never adds the user as
/// enabled: the user is left out, the listing incomplete (so nobody counts as missing from
/// it); and the same answer inside a change listing is not laid over what was known.
#[test]
fn a_user_whose_account_state_did_not_come_is_left_out_never_enabled() {
    let (_dir, tenant) = demo_tenant_copy();
    let mut t = read_json(&tenant);
    user_mut(&mut t, CARLOS)
        .as_object_mut()
        .unwrap()
        .remove("accountEnabled");
    user_mut(&mut t, SANJAY)["accountEnabled"] = Value::Null;
    write_json(&tenant, &t);
    let fake = Fake::start(&tenant, &[]);
    let r = Roster::new();
    live_demo(&r, &fake.url);

    let (report, err) = import(&r);
    for (id, what) in [
        (CARLOS, "accountEnabled is missing"),
        (SANJAY, "accountEnabled is null"),
    ] {
        assert_eq!(outcome(&report, id), None, "{id} left out: {report}");
        assert!(err.contains(what) && err.contains(id), "{what}: {err}");
    }
    assert!(server_user(&server(&r), "carlos.ruiz@contoso.com").is_none());
    // The users listing is incomplete: Omar Haddad, missing from it, is not disabled.
    assert!(
        !report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "Omar Haddad"),
        "{report}"
    );
    let source = last_source(&r);
    assert_eq!(source["completeness"]["users"], false, "{source}");

    // The tenant read whole again: a complete read, and the next runs read only the changes.
    let (_dir2, good) = demo_tenant_copy();
    fake.reload(&good);
    let (report, _) = import(&r);
    assert_eq!(outcome(&report, CARLOS), Some("skipped"), "{report}");
    assert_eq!(last_source(&r)["completeness"]["users"], true);
    // Adele, added and enabled, has `accountEnabled` taken away in Graph's changes (sent as
    // null): the changes are not applied, the tenant is read whole, and she is left out —
    // still enabled on the server as before, never "enabled" by default nor disabled.
    let mut t = read_json(&good);
    user_mut(&mut t, ADELE)
        .as_object_mut()
        .unwrap()
        .remove("accountEnabled");
    write_json(&good, &t);
    fake.reload(&good);
    let (report, err) = import(&r);
    assert_eq!(outcome(&report, ADELE), None, "{report}");
    assert!(err.contains("could not read only the changes"), "{err}");
    assert!(err.contains("accountEnabled"), "{err}");
    assert_eq!(
        server_user(&server(&r), "AdeleV@contoso.com").unwrap()["enabled"],
        true
    );
}

/// A made-up `@removed` in Graph's user changes (Graph still serves the users) takes nobody
/// out of a group and disables nobody, in this run or the next.
#[test]
fn a_made_up_removal_in_the_changes_is_confirmed_before_it_counts() {
    let (_dir, tenant) = demo_tenant_copy();
    let fake = Fake::start(&tenant, &[]);
    let forge = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let forging = forge.clone();
    let proxy = proxy::Proxy::start(
        &fake.url,
        |_| None,
        move |seen, body| {
            let delta = seen.path.starts_with("/v1.0/users/delta")
                && !seen.path.contains("deltatoken=latest")
                && body.get("@odata.deltaLink").is_some();
            if delta && forging.load(std::sync::atomic::Ordering::SeqCst) {
                let value = body["value"].as_array_mut().unwrap();
                value.push(json!({"id": ADELE, "@removed": {"reason": "deleted"}}));
                value.push(json!({"id": ALEX, "@removed": {"reason": "changed"}}));
            }
        },
    );
    let r = Roster::new();
    live_demo(&r, &proxy.url);
    import(&r);
    let before = server(&r);
    assert!(group_members(&before, "Sales Team").contains(&"adelev@contoso.com".to_owned()));

    forge.store(true, std::sync::atomic::Ordering::SeqCst);
    let (report, err) = import(&r);
    assert!(
        last_source(&r)["changesSince"].is_string(),
        "read the changes"
    );
    assert!(
        err.contains("could not be confirmed") && err.contains(ADELE) && err.contains(ALEX),
        "{err}"
    );
    assert!(
        !proxy.requests(&format!("users/{ADELE}")).is_empty()
            || !proxy.requests("$batch").is_empty(),
        "the removal was asked about"
    );
    for id in [ADELE, ALEX] {
        assert!(
            !matches!(outcome(&report, id), Some("disabled" | "deleted")),
            "{report}"
        );
    }
    assert_eq!(server(&r), before, "nothing changed on the server");
    assert_eq!(last_source(&r)["completeness"]["users"], false);

    // The next run, the forgery gone, reads the whole tenant (its base was incomplete) and
    // still disables nobody.
    forge.store(false, std::sync::atomic::Ordering::SeqCst);
    let (report, _) = import(&r);
    assert!(last_source(&r)["changesSince"].is_null(), "a whole read");
    for id in [ADELE, ALEX] {
        assert!(
            !matches!(outcome(&report, id), Some("disabled" | "deleted")),
            "{report}"
        );
    }
    assert_eq!(server(&r), before);
}

/// A user deleted and then restored in Entra ID: Graph's group changes say nothing of her
/// memberships either time (the fake behaves as Graph here), and the sync reads her groups
/// again, so that it ends where a whole read of the tenant ends.
#[test]
fn a_restored_user_gets_her_groups_back_under_sync() {
    let (_dir, tenant) = demo_tenant_copy();
    let fake = Fake::start(&tenant, &[]);
    let proxy = proxy::Proxy::start(&fake.url, |_| None, |_, _| {});
    let r = Roster::new();
    live_demo(&r, &proxy.url);
    import(&r);
    let original = read_json(&tenant);

    // Deleted: in the recycle bin, out of her groups.
    let mut t = original.clone();
    let users = t["users"].as_array_mut().unwrap();
    let i = users.iter().position(|u| u["id"] == ADELE).unwrap();
    let mut adele = users.remove(i);
    adele["deletedDateTime"] = "2026-12-01T10:00:00Z".into();
    t["deletedUsers"].as_array_mut().unwrap().push(adele);
    for g in t["groups"].as_array_mut().unwrap() {
        if let Some(m) = g["members"].as_array_mut() {
            m.retain(|m| m["id"] != ADELE);
        }
    }
    write_json(&tenant, &t);
    fake.reload(&tenant);
    let (_, out, err) = r.run(&["sync", "contoso", "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
    assert_eq!(outcome(&report, ADELE), Some("disabled"), "{report}");
    assert!(!group_members(&server(&r), "Sales Team").contains(&"adelev@contoso.com".to_owned()));

    // Restored: back in the users and in her groups, which Graph's group changes do not say.
    write_json(&tenant, &original);
    fake.reload(&tenant);
    let (_, out, err) = r.run(&["sync", "contoso", "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
    assert!(
        last_source(&r)["changesSince"].is_string(),
        "read the changes"
    );
    assert_eq!(outcome(&report, ADELE), Some("updated"), "{report}");
    assert!(
        !proxy
            .requests(&format!("users/{ADELE}/memberOf"))
            .is_empty()
            || !proxy.requests("$batch").is_empty(),
        "her groups were read again"
    );
    let now = server(&r);
    for g in ["Sales Team", "All Company", "Golf Assist"] {
        assert!(
            group_members(&now, g).contains(&"adelev@contoso.com".to_owned()),
            "{g}: {now}"
        );
    }
    // A whole read plans nothing more: the sync ended where it ends.
    let (_, out, _) = r.run(&[
        "plan",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--on-deleted",
        "disable",
        "--full",
        "--json",
    ]);
    let plan: Value = serde_json::from_str(&out).unwrap();
    let changes: Vec<&Value> = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e["outcome"].as_str(),
                Some("added" | "updated" | "disabled" | "deleted")
            )
        })
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

/// A group with hidden membership, read by an app without `Member.Read.Hidden`: Graph lists
/// none of its members, and roster leaves the group out instead of emptying it on the server,
/// naming the permission; with the permission, the group is read as any other.
#[test]
fn a_group_with_hidden_members_is_left_out_without_the_permission() {
    let (_dir, tenant) = demo_tenant_copy();
    let mut t = read_json(&tenant);
    for g in t["groups"].as_array_mut().unwrap() {
        if g["id"] == ENGINEERING {
            g["visibility"] = "HiddenMembership".into();
        }
    }
    write_json(&tenant, &t);
    let fake = Fake::start(&tenant, &["--deny-permission", "Member.Read.Hidden"]);
    let r = Roster::new();
    live_demo(&r, &fake.url);
    let before = group_members(&server(&r), "Engineering");
    let (report, err) = import(&r);
    assert_eq!(outcome(&report, ENGINEERING), None, "{report}");
    assert!(err.contains("Member.Read.Hidden"), "{err}");
    // Its members stay (Allan's login follows his rename in Entra ID, as memberships do).
    assert_eq!(
        group_members(&server(&r), "Engineering"),
        ["alland@contoso.com"],
        "{before:?}"
    );
    // The groups listing is incomplete: Legacy VPN, missing from it, is not disabled.
    assert!(!report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "Legacy VPN"));

    let granted = Fake::start(&tenant, &[]);
    let r = Roster::new();
    live_demo(&r, &granted.url);
    let (report, _) = import(&r);
    assert_eq!(outcome(&report, ENGINEERING), Some("updated"), "{report}");
    assert!(group_members(&server(&r), "Engineering").len() > before.len());
}

/// A nextLink chain that never ends (every page new) is followed only so far: by pages, and
/// by time. The run fails in one line, recorded as aborted, nothing changed.
#[test]
fn an_endless_paging_chain_is_given_up_within_its_bounds() {
    let (_dir, tenant) = demo_tenant_copy();
    let fake = Fake::start(&tenant, &[]);
    let (upstream, first) = (fake.url.clone(), fake.url.clone());
    let proxy = proxy::Proxy::start(
        &fake.url,
        move |seen| {
            let n: u64 = seen.path.split("endless-").nth(1)?.parse().ok()?;
            Some((
                200,
                json!({"value": [], "@odata.nextLink": format!("{upstream}/v1.0/users?$skiptoken=endless-{}", n + 1)}),
            ))
        },
        move |seen, body| {
            if seen.path.starts_with("/v1.0/users?") {
                body["@odata.nextLink"] = format!("{first}/v1.0/users?$skiptoken=endless-1").into();
            }
        },
    );
    let r = Roster::new();
    live_demo(&r, &proxy.url);
    let before = server(&r);
    for env in [("ROSTER_MAX_PAGES", "40"), ("ROSTER_MAX_LISTING_S", "1")] {
        let (code, out, err) = r.run_with(&IMPORT, &[env]);
        assert_eq!(code, 1, "{env:?}\n{out}\n{err}");
        assert!(err.contains("listing users"), "{err}");
        let why = if env.0 == "ROSTER_MAX_PAGES" {
            "past 40 pages"
        } else {
            "still going after"
        };
        assert!(err.contains(why), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(server(&r), before);
    let runs = r.expect(0, &["runs", "--json"]);
    assert!(runs.contains("aborted"), "{runs}");
}

/// A linked user follows Entra ID's account state: disabled on the server when Entra disables
/// it, enabled again when Entra enables it — unless an administrator disabled it here
/// (`roster server disable`), which no import undoes. Every run replays.
#[test]
fn a_linked_user_follows_entra_account_state_but_not_over_an_administrator() {
    let r = Roster::new();
    let (_dir, tenant) = demo_tenant_copy();
    r.add_demo("contoso", &tenant);
    import(&r);
    let enabled =
        |r: &Roster, login: &str| server_user(&server(r), login).unwrap()["enabled"].clone();
    assert_eq!(enabled(&r, "AdeleV@contoso.com"), true);

    // Entra disables Adele: so does the import.
    let mut t = read_json(&tenant);
    user_mut(&mut t, ADELE)["accountEnabled"] = false.into();
    write_json(&tenant, &t);
    let (report, _) = import(&r);
    assert_eq!(outcome(&report, ADELE), Some("disabled"), "{report}");
    assert_eq!(enabled(&r, "AdeleV@contoso.com"), false);
    r.expect(0, &["replay", "last"]);
    // Entra enables her again: so does the import.
    user_mut(&mut t, ADELE)["accountEnabled"] = true.into();
    write_json(&tenant, &t);
    let (report, _) = import(&r);
    assert_eq!(outcome(&report, ADELE), Some("updated"), "{report}");
    assert_eq!(enabled(&r, "AdeleV@contoso.com"), true);
    r.expect(0, &["replay", "last"]);

    // An administrator disables her here: imports leave her disabled, and say so.
    r.expect(0, &["server", "disable", "AdeleV@contoso.com"]);
    let dump = server(&r);
    assert_eq!(
        server_user(&dump, "AdeleV@contoso.com").unwrap()["disabledBy"],
        "administrator"
    );
    let (report, _) = import(&r);
    let adele = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == ADELE)
        .expect("her outcome differs from the last run's: listed");
    assert_eq!(adele["outcome"], "unchanged", "{adele}");
    assert!(
        adele["detail"]
            .as_str()
            .unwrap()
            .contains("disabled on the server by an administrator"),
        "{adele}"
    );
    assert_eq!(enabled(&r, "AdeleV@contoso.com"), false);
    r.expect(0, &["replay", "last"]);
    // Until the administrator enables her.
    r.expect(0, &["server", "enable", "AdeleV@contoso.com"]);
    assert!(server_user(&server(&r), "AdeleV@contoso.com").unwrap()["disabledBy"].is_null());
    import(&r);
    assert_eq!(enabled(&r, "AdeleV@contoso.com"), true);
    let verify = r.expect(0, &["verify"]);
    // The load that set the server up, and the two the test made.
    assert!(verify.contains("3 administrators' changes"), "{verify}");
    for run in r
        .expect(0, &["runs", "--json"])
        .parse::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
    {
        r.expect(0, &["replay", run["run"].as_str().unwrap()]);
    }
}

/// The lines of a backup, and a forger's tools: one line replaced, the end line made to
/// agree (count and digest), the `BackupTaken` event's digest made to agree and rechained.
mod forge {
    use sha2::Digest;

    pub fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn sha(lines: &[String]) -> String {
        let mut h = sha2::Sha256::new();
        for l in lines {
            h.update(l.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// The end line recomputed for the lines before it.
    pub fn fix_end(lines: &mut Vec<String>) {
        lines.pop();
        let end = serde_json::json!({"end": {"lines": lines.len() + 1, "digest": sha(lines)}});
        lines.push(end.to_string());
    }

    /// The `BackupTaken` event (the log's last) made to hold the digest of the lines after
    /// it, its hash recomputed and the header's head with it; then the end line.
    pub fn fix_all(lines: &mut Vec<String>) {
        let last_event = lines
            .iter()
            .rposition(|l| l.starts_with("{\"event\""))
            .unwrap();
        let after: Vec<String> = lines[last_event + 1..lines.len() - 1].to_vec();
        let mut line: serde_json::Value = serde_json::from_str(&lines[last_event]).unwrap();
        let mut record: serde_json::Value =
            serde_json::from_str(line["event"]["record"].as_str().unwrap()).unwrap();
        record["event"]["contentsDigest"] = sha(&after).into();
        let c = |k: &str| {
            after
                .iter()
                .filter(|l| l.starts_with(&format!("{{\"{k}\"")))
                .count()
        };
        record["event"]["orgs"] = c("org").into();
        record["event"]["serverUsers"] = c("serverUser").into();
        record["event"]["serverGroups"] = c("serverGroup").into();
        let record = record.to_string();
        let prev: serde_json::Value = serde_json::from_str(&lines[last_event - 1]).unwrap();
        let prev = engine::event::Hash::from_hex(prev["event"]["hash"].as_str().unwrap()).unwrap();
        let hash = engine::event::Hash::chain(&prev, record.as_bytes());
        line["event"]["record"] = record.into();
        line["event"]["hash"] = hash.to_hex().into();
        lines[last_event] = line.to_string();
        let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        header["header"]["head"]["hash"] = hash.to_hex().into();
        lines[0] = header.to_string();
        fix_end(lines);
    }
}

/// A backup is whole or refused: its org and server lines are covered by digests the chain
/// holds, and its server must be the one its log says. An added local account, a user renamed
/// and disabled, an org added or pointed at another file — each is refused however far the
/// forger goes in making the digests agree, short of the chain head noted at backup time, which
/// `restore --head` checks. Nothing is left behind.
#[test]
fn a_backup_whose_lines_were_edited_restores_nothing() {
    let r = Roster::new();
    let (_dir, tenant) = demo_tenant_copy();
    r.add_demo("contoso", &tenant);
    import(&r);
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("store.jsonl");
    let (code, _, said) = r.run(&["backup", "--out", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{said}");
    let head = said.split("--head ").nth(1).unwrap()[..64].to_owned();
    let text = std::fs::read_to_string(&backup).unwrap();
    let original = forge::lines(&text);
    assert!(original.last().unwrap().contains("\"digest\""));

    let restore =
        |name: &str, lines: &[String], noted: bool| -> (i32, String, std::path::PathBuf) {
            let file = work.path().join(format!("{name}.jsonl"));
            std::fs::write(&file, lines.join("\n") + "\n").unwrap();
            let target = work.path().join(format!("into-{name}"));
            let mut args = vec![
                "--store",
                target.to_str().unwrap(),
                "restore",
                file.to_str().unwrap(),
            ];
            if noted {
                args.extend(["--head", head.as_str()]);
            }
            let (code, _, err) = r.run(&args);
            (code, err, target)
        };
    let refused = |name: &str, lines: &[String], says: &str| {
        let (code, err, target) = restore(name, lines, false);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!target.exists(), "{name}: nothing left behind");
    };
    let user_line = |login: &str| {
        original
            .iter()
            .position(|l| {
                l.starts_with("{\"serverUser\"") && l.contains(&format!("\"login\":\"{login}\""))
            })
            .unwrap()
    };
    let org_line = original
        .iter()
        .position(|l| l.starts_with("{\"org\""))
        .unwrap();

    // A local account `backdoor` added.
    let mut backdoor = original.clone();
    let at = user_line("AdeleV@contoso.com");
    backdoor.insert(
        at,
        json!({"serverUser": {"login": "backdoor", "authType": "local", "enabled": true}})
            .to_string(),
    );
    // An existing user renamed and disabled.
    let mut renamed = original.clone();
    let at = user_line("AlexW@contoso.com");
    renamed[at] = renamed[at]
        .replace(
            "AlexW@contoso.com\",\"displayName",
            "alex.w@contoso.com\",\"displayName",
        )
        .replace("\"enabled\":true", "\"enabled\":false");
    // An org added, and the org's fixture pointed at another file.
    let mut extra_org = original.clone();
    extra_org.insert(
        org_line,
        original[org_line].replace("\"name\":\"contoso\"", "\"name\":\"evil\""),
    );
    let mut shadow = original.clone();
    let path: Value = serde_json::from_str(&original[org_line]).unwrap();
    let fixture = path["org"]["settings"]["source"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    shadow[org_line] = original[org_line].replace(&fixture, "/etc/shadow");
    assert_ne!(shadow[org_line], original[org_line]);

    for (name, edited) in [
        ("backdoor", &backdoor),
        ("renamed", &renamed),
        ("extra-org", &extra_org),
        ("shadow", &shadow),
    ] {
        // As edited: the end line no longer counts or covers them.
        refused(&format!("{name}-plain"), edited, "line ");
        // The end line made to agree: the BackupTaken event's digest does not.
        let mut e = edited.clone();
        forge::fix_end(&mut e);
        refused(
            &format!("{name}-end"),
            &e,
            "not the ones the log says the backup holds",
        );
        // That event rewritten and rechained too: the server is not the one the log says...
        let mut e = edited.clone();
        forge::fix_all(&mut e);
        if name == "backdoor" || name == "renamed" {
            refused(
                &format!("{name}-all"),
                &e,
                "the server records are not the server the backup's log says",
            );
        }
        // ...and the chain no longer ends at the head noted when the backup was taken.
        let (code, err, target) = restore(&format!("{name}-noted"), &e, true);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains("not at the chain head noted"), "{err}");
        assert!(!target.exists());
    }

    // A line of a gigabyte is refused after reading a bounded part of it.
    let huge = work.path().join("huge.jsonl");
    {
        let f = std::fs::File::create(&huge).unwrap();
        std::io::Write::write_all(
            &mut &f,
            format!("{}\n{{\"event\": \"", original[0]).as_bytes(),
        )
        .unwrap();
        f.set_len(1 << 30).unwrap();
    }
    let target = work.path().join("into-huge");
    let (code, _, err) = r.run(&[
        "--store",
        target.to_str().unwrap(),
        "restore",
        huge.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2: longer than"), "{err}");
    assert!(!target.exists());

    // The backup as written restores, with the noted head, and its server is the log's.
    let (code, err, target) = restore("whole", &original, true);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the server is the one the log says"), "{err}");
    assert!(target.exists());
}

/// What reaches a terminal from outside, and what roster says of it: a login holding a
/// control character is refused, a secret that cannot be one line is refused in one line, a
/// device is not a token file, credentials in a URL are never said, and a service that drips
/// its answer is said to have timed out.
#[test]
fn messages_say_what_is_wrong_and_never_what_is_secret() {
    let r = Roster::new();
    let dir = tempfile::tempdir().unwrap();
    // A server file with an escape sequence in a login.
    let file = dir.path().join("server.json");
    std::fs::write(
        &file,
        json!({"users": [{"login": "ann\u{1b}[2J@x.com", "authType": "local"}]}).to_string(),
    )
    .unwrap();
    let (code, _, err) = r.run(&["server", "load", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds a control or invisible character") && !err.contains('\u{1b}'),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);

    // A SCIM token file that is a device; a token with a line break.
    let scim = ["--scim", "http://127.0.0.1:9/v2", "server", "dump"];
    let (code, _, err) = r.run(&[&["--scim-token-file", "/dev/zero"][..], &scim].concat());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not a regular file") && !err.contains("chmod"),
        "{err}"
    );
    let (code, _, err) = r.run_with(&scim, &[("ROSTER_SCIM_TOKEN", "abc\ndef")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds a line break") && !err.contains("abc"),
        "{err}"
    );
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cr3t\u{0}more").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, _, err) =
        r.run(&[&["--scim-token-file", secret.to_str().unwrap()][..], &scim].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NUL") && !err.contains("s3cr3t"), "{err}");
    // No token at all: nothing is sent to the service — not even the discovery.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    let (code, _, err) = r.run(&["--scim", &url, "server", "dump"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("needs the service's bearer token") && err.contains("nothing was sent"),
        "{err}"
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection was made without a token"
    );

    // Credentials in a URL: refused for Graph, and never said back; `roster store` shows a
    // configured SCIM URL without them.
    let (code, _, err) = r.run(&[
        "org",
        "add",
        "x",
        "--tenant",
        TENANT,
        "--graph-url",
        "https://admin:hunter2@graph.example",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("credentials do not belong") && !err.contains("hunter2"),
        "{err}"
    );
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "scim = \"https://admin:hunter2@scim.example/v2\"\n",
    )
    .unwrap();
    let (_, out, err) = r.run_with(&["store"], &[("ROSTER_CONFIG", config.to_str().unwrap())]);
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );

    // A service that sends its headers and then drips its body: a timeout, said as one.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v2", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{");
                std::thread::sleep(std::time::Duration::from_secs(5));
            });
        }
    });
    let (code, _, err) = r.run_with(
        &["--scim", &url, "server", "dump"],
        &[
            ("ROSTER_SCIM_TOKEN", "t"),
            ("ROSTER_HTTP_TIMEOUT_S", "1"),
            ("ROSTER_RETRY_ATTEMPTS", "1"),
        ],
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("timed out while sending its answer"), "{err}");
    assert!(!err.contains("PATCH"), "{err}");
}

/// Ctrl-C in the middle of a long step (reading a 300,000-user tenant file): the process
/// ends — at the step's end if it looks within a second, else stopped where it is — in one
/// line, and the store it leaves verifies with no run completed; the next import finishes.
#[test]
fn ctrl_c_in_a_long_step_ends_the_run_promptly_and_the_log_survives() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("big.json");
    let r = Roster::new();
    r.expect(
        0,
        &[
            "fixture",
            "generate",
            "--users",
            "300000",
            "--groups",
            "3000",
            "--seed",
            "1",
            "--out",
            tenant.to_str().unwrap(),
        ],
    );
    r.add_org("big", &tenant);
    let child = r.spawn(&["import", "big", "--select-all"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    let verify = r.expect(0, &["verify"]);
    assert!(verify.contains("The log verifies"), "{verify}");
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "completed"),
        "{runs}"
    );
    r.expect(0, &["import", "big", "--select-all"]);
}
