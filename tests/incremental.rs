//! Incremental runs through the binary: a repeat records what changed, `report --all` gives
//! every entry as a full run records them, `--full` records everything, and an edited input
//! of an incremental run is caught by its digest.

mod common;

use common::*;
use serde_json::Value;

fn demo(r: &Roster) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, tenant) = demo_tenant_copy();
    r.add_demo("contoso", &tenant);
    (dir, tenant)
}

/// A run's JSON report. The demo's conflicts make the first import exit 3; a repeat that meets
/// them unchanged exits 0 (nothing new to attend to).
fn json(r: &Roster, code: i32, args: &[&str]) -> Value {
    serde_json::from_str(&r.expect(code, args)).unwrap()
}

fn events_of(r: &Roster, run: &str) -> Vec<Value> {
    r.expect(0, &["events", run])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn types_of(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// What a repeat of the demo import records when only its four conflicts need saying again.
const FOUR_CONFLICTS_AGAIN: [&str; 6] = [
    "RunStarted",
    "Imported",
    "Imported",
    "Imported",
    "Imported",
    "RunFinished",
];

#[test]
fn a_repeat_records_what_changed_and_report_all_gives_every_entry() {
    let r = Roster::new();
    let _tenant = demo(&r);
    let first = json(&r, 3, &IMPORT);
    let first_events = events_of(&r, first["run"].as_str().unwrap()).len();
    // The second run records the deleted objects now found already disabled; the third, only
    // what needs attention however often it was said before: the four conflicts.
    json(&r, 0, &IMPORT);
    let third = json(&r, 0, &IMPORT);
    let run = third["run"].as_str().unwrap();
    let events = events_of(&r, run);
    assert_eq!(
        types_of(&events),
        FOUR_CONFLICTS_AGAIN,
        "{first_events} before"
    );
    let started = &events[0]["payload"];
    assert!(started["base"].is_string() && started["inputsDigest"].is_string());
    let listed = third["entries"].as_array().unwrap();
    assert!(listed.len() == 4 && listed.iter().all(|e| e["outcome"] == "conflict"));
    assert_eq!(third["summary"]["unchanged"], 60);

    // A full run over the same inputs records every entry: --all shows the same rows.
    let full = json(&r, 0, &[&IMPORT[..], &["--full"]].concat());
    let full_run = full["run"].as_str().unwrap();
    assert!(events_of(&r, full_run)[0]["payload"].get("base").is_none());
    let all = json(&r, 0, &["report", run, "--all", "--json"]);
    assert_eq!(all["entries"], full["entries"]);
    assert_eq!(all["summary"], full["summary"]);
    assert_eq!(
        r.expect(0, &["report", run, "--all", "--format", "csv"])
            .replace(run, "RUN"),
        r.expect(0, &["report", full_run, "--format", "csv"])
            .replace(full_run, "RUN")
    );
    let table = r.expect(0, &["report", run]);
    assert!(
        table.contains("62 entries as before are not listed"),
        "{table}"
    );

    for run in ["last", "last~1", "last~2", "last~3"] {
        r.expect(0, &["replay", run]);
    }
    r.expect(0, &["verify"]);
    // The deleted objects of an incremental run are rebuilt from its chain.
    assert_eq!(
        json(&r, 0, &["deleted", "last~1", "--json"]),
        json(&r, 0, &["deleted", "last", "--json"])
    );
}

#[test]
fn a_changed_tenant_is_recorded_by_difference_and_diffed_replayed() {
    let r = Roster::new();
    let (_dir, tenant) = demo(&r);
    json(&r, 3, &IMPORT);
    json(&r, 0, &IMPORT);
    // Between runs: one user moves department, one is disabled, one is gone for good.
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&tenant).unwrap()).unwrap();
    let users = t["users"].as_array_mut().unwrap();
    let find = |users: &Vec<Value>, name: &str| {
        users.iter().position(|u| u["displayName"] == name).unwrap()
    };
    let i = find(users, "Adele Vance");
    users[i]["department"] = "Marketing".into();
    let i = find(users, "Alex Wilber");
    users[i]["accountEnabled"] = false.into();
    let i = find(users, "Lee Gu");
    users.remove(i);
    std::fs::write(&tenant, serde_json::to_vec(&t).unwrap()).unwrap();

    let changed = json(&r, 0, &IMPORT);
    let run = changed["run"].as_str().unwrap();
    let types: Vec<String> = events_of(&r, run)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    // Two users changed, one unlisted; the outcomes that differ (Adele updated, Alex — linked,
    // now disabled in Entra ID — disabled, Lee's server user disabled as missing) and nothing
    // else.
    assert_eq!(count("UserSeen"), 2, "{types:?}");
    assert_eq!(count("ObjectUnlisted"), 1, "{types:?}");
    // (And the four conflicts, recorded every run.)
    assert!(
        count("Imported") >= 3 + 4 && count("Imported") < 10 + 4,
        "{types:?}"
    );
    let outcomes: Vec<(String, String)> = changed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("Adele Vance", "updated"),
        ("Alex Wilber", "disabled"),
        ("Lee Gu", "disabled"),
    ] {
        assert!(
            outcomes.contains(&(expected.0.into(), expected.1.into())),
            "{outcomes:?}"
        );
    }
    r.expect(0, &["replay", run]);
    let diff = r.expect(0, &["diff", "last~1", "last"]);
    assert!(
        diff.contains("Lee Gu") && diff.contains("Marketing"),
        "{diff}"
    );
    let history = r.expect(0, &["server", "show", "AdeleV@contoso.com", "--history"]);
    assert!(history.contains("Updated successfully"), "{history}");
}

#[test]
fn an_edited_input_of_an_incremental_run_is_refused_by_name() {
    let r = Roster::new();
    let (_dir, tenant) = demo(&r);
    json(&r, 3, &IMPORT);
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&tenant).unwrap()).unwrap();
    t["users"][0]["department"] = "Marketing".into();
    std::fs::write(&tenant, serde_json::to_vec(&t).unwrap()).unwrap();
    let run = json(&r, 0, &IMPORT)["run"].as_str().unwrap().to_owned();
    let head = json(&r, 0, &["verify", "--json"])["head"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    // The attacker rewrites the recorded department and recomputes the chain after it.
    assert!(rewrite_and_rechain(r.store.path(), |record| {
        (record.contains(&run) && record.contains("\"department\":\"Marketing\""))
            .then(|| record.replacen("\"Marketing\"", "\"Sales\"", 1))
    }));
    // The chain was recomputed, so only the noted head and the digest tell.
    r.expect(0, &["verify"]);
    r.expect(1, &["verify", "--head", &head]);
    let (code, _, err) = r.run(&["replay", &run]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&run) && err.contains("do not match the digest"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `diff` of two imports: a user back from the recycle bin is *restored*, not new; outcomes
/// that only follow from the first import's changes (added → unchanged) are counted, not listed.
#[test]
fn diff_says_restored_and_leaves_out_what_the_first_import_settled() {
    let r = Roster::new();
    let (_dir, tenant) = demo(&r);
    json(&r, 3, &IMPORT);
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&tenant).unwrap()).unwrap();
    let bin = t["deletedUsers"].as_array_mut().unwrap();
    let i = bin
        .iter()
        .position(|u| u["displayName"] == "Pat Kelly")
        .unwrap();
    let mut pat = bin.remove(i);
    pat.as_object_mut().unwrap().remove("deletedDateTime");
    pat["userPrincipalName"] = "PatK@contoso.com".into();
    pat["accountEnabled"] = true.into();
    pat["userType"] = "Member".into();
    t["users"].as_array_mut().unwrap().push(pat);
    std::fs::write(&tenant, serde_json::to_vec(&t).unwrap()).unwrap();
    json(&r, 0, &IMPORT);
    let d = json(&r, 0, &["diff", "last~1", "last", "--json"]);
    let names = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("restored"), ["Pat Kelly"], "{d}");
    assert!(names("appeared").is_empty(), "{d}");
    assert!(d["settled"].as_u64().unwrap() > 40, "{d}");
    let outcomes = names("outcomes");
    assert!(outcomes.len() < 10, "{outcomes:?}");
    assert!(outcomes.contains(&"Pat Kelly".to_owned()), "{outcomes:?}");
    let text = r.expect(0, &["diff", "last~1", "last"]);
    assert!(
        text.contains("Restored in Entra ID") && text.contains("as A left them"),
        "{text}"
    );
}

/// The mirror beside the log: `verify` says the log vouches for it, `verify --mirrors` that it
/// matches the log folded again; one forged (an outcome changed, the stamp's hash made to fit)
/// is found by `--mirrors`, exit 1, with the way out — a backup restored into a new store,
/// which holds the log and no mirror, verifies.
#[test]
fn verify_checks_the_mirror_and_finds_a_forged_one() {
    let r = Roster::new();
    let _tenant = demo(&r);
    json(&r, 3, &IMPORT);
    json(&r, 0, &IMPORT);
    let verified = json(&r, 0, &["verify", "--json"]);
    let mirrors = verified["mirrors"].as_array().unwrap();
    assert_eq!(mirrors.len(), 1, "{verified}");
    assert_eq!(mirrors[0]["org"], "contoso");
    assert_eq!(mirrors[0]["server"], "embedded");
    assert_eq!(mirrors[0]["state"], "vouched");
    let verified = json(&r, 0, &["verify", "--mirrors", "--json"]);
    assert_eq!(verified["mirrors"][0]["state"], "matches");
    let text = r.expect(0, &["verify"]);
    assert!(
        text.contains("The mirror of org contoso against embedded, after run"),
        "{text}"
    );

    // Forge: the last outcome's "changed the server" flag flipped, the stamp made to fit.
    {
        let store = engine::SledStore::open(&r.store.path().join("db")).unwrap();
        let tree = store.raw_tree();
        let keys: Vec<_> = tree.scan_prefix(b"M").keys().map(Result::unwrap).collect();
        let (stamp_key, part_key) = (
            keys.iter().find(|k| k[17] == b'h').unwrap(),
            keys.iter().find(|k| k[17] == b'p').unwrap(),
        );
        let body = tree.get(part_key).unwrap().unwrap();
        let mut main = lz4_flex::decompress_size_prepended(&body[8..]).unwrap();
        *main.last_mut().unwrap() ^= 1;
        let main = lz4_flex::compress_prepend_size(&main);
        let mut forged = (main.len() as u64).to_le_bytes().to_vec();
        forged.extend_from_slice(&main);
        let mut stamp: Value =
            serde_json::from_slice(&tree.get(stamp_key).unwrap().unwrap()).unwrap();
        stamp["body"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&forged)).into();
        tree.insert(part_key, forged).unwrap();
        tree.insert(stamp_key, serde_json::to_vec(&stamp).unwrap())
            .unwrap();
        engine::EventStore::flush(&store).unwrap();
    }
    let (code, out, err) = r.run(&["verify", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = r.run(&["verify", "--mirrors", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["ok"], false);
    assert_eq!(verified["mirrors"][0]["state"], "differs");
    assert_eq!(verified["mirrors"][0]["why"], "the last outcomes differ");
    assert!(
        err.contains("differs from the log (the last outcomes differ)")
            && err.contains("restore FILE"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // The way out the line gives.
    let elsewhere = tempfile::tempdir().unwrap();
    let backup = elsewhere.path().join("forged.backup");
    let backup = backup.to_str().unwrap();
    r.expect(0, &["backup", "--out", backup]);
    let fresh = elsewhere.path().join("store");
    let fresh = fresh.to_str().unwrap();
    r.expect(0, &["--store", fresh, "restore", backup]);
    let verified = json(&r, 0, &["--store", fresh, "verify", "--json"]);
    assert_eq!(
        verified["mirrors"].as_array().unwrap().len(),
        0,
        "{verified}"
    );
}

/// A fixture org that nothing changed in: the run after one that changed nothing takes that
/// run's decisions — the same file (its bytes' SHA-256, recorded in `RunStarted`), the same
/// server version — records only what needs attention, replays and verifies. A changed byte,
/// a changed server or `--all` read and decide again.
#[test]
fn a_run_over_unchanged_inputs_takes_its_base_s_decisions() {
    use sha2::Digest;
    let r = Roster::new();
    let (_dir, tenant) = demo(&r);
    json(&r, 3, &IMPORT);
    let second = json(&r, 0, &IMPORT);
    let stands = |stderr: &str| stderr.contains("its decisions stand, nothing was read again");
    let run = |args: &[&str]| -> (Value, String) {
        let (code, out, err) = r.run(args);
        assert_eq!(code, 0, "{err}");
        (serde_json::from_str(&out).unwrap(), err)
    };

    let (third, err) = run(&IMPORT);
    assert!(stands(&err), "{err}");
    assert_eq!(third["summary"], second["summary"]);
    let listed = third["entries"].as_array().unwrap();
    assert!(listed.len() == 4 && listed.iter().all(|e| e["outcome"] == "conflict"));
    let events = events_of(&r, third["run"].as_str().unwrap());
    assert_eq!(types_of(&events), FOUR_CONFLICTS_AGAIN);
    let bytes = std::fs::read(&tenant).unwrap();
    assert_eq!(
        events[0]["payload"]["source"]["content"],
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    r.expect(0, &["replay", "last"]);
    let verified = r.expect(0, &["verify", "--mirrors"]);
    assert!(verified.contains("matches the log"), "{verified}");
    let all = json(&r, 0, &["report", "last", "--all", "--json"]);
    let before = json(&r, 0, &["report", "last~1", "--all", "--json"]);
    assert_eq!(all["entries"], before["entries"]);

    // One byte more in the file (the same tenant): read and decided again, the same outcomes.
    std::fs::write(&tenant, [&bytes[..], b"\n"].concat()).unwrap();
    let (again, err) = run(&IMPORT);
    assert!(!stands(&err), "{err}");
    assert_eq!(again["summary"], second["summary"]);
    let (_, err) = run(&IMPORT);
    assert!(stands(&err), "{err}");

    // Every entry asked for: every entry decided.
    let (every, err) = run(&[&IMPORT[..], &["--all"]].concat());
    assert!(!stands(&err), "{err}");
    assert_eq!(every["entries"].as_array().unwrap().len(), 66);

    // The server loaded again as it was before the first import: read, and what it lacks
    // added again.
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    let (code, out, err) = r.run(&IMPORT);
    assert!(!stands(&err), "{code} {err}");
    let reloaded: Value = serde_json::from_str(&out).unwrap();
    assert!(reloaded["summary"]["added"].as_u64().unwrap() > 0, "{out}");
    r.expect(0, &["verify", "--mirrors"]);
}
