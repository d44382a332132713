//! A store in PostgreSQL shared by two hosts — here two working directories, each with its own
//! home and configuration: one names the store in its config file, the other in
//! `$ROSTER_STORE`. They see one history; one writes at a time, naming itself to the other;
//! readers never wait; a database that cannot be reached is one line and exit 1; a backup
//! moves between a directory and PostgreSQL with the same chain head.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::fixtures;
use common::store::added_twice;
use engine::store::{Opening, PgStore};
use serde_json::Value;

/// A host of its own: a home, a config directory, a working directory.
struct Host {
    dir: tempfile::TempDir,
    /// How the host names the store: in its config file, or in `$ROSTER_STORE`.
    in_config: bool,
    url: String,
}

impl Host {
    fn new(url: &str, in_config: bool) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config/roster");
        std::fs::create_dir_all(&config).unwrap();
        if in_config {
            std::fs::write(config.join("config.toml"), format!("store = \"{url}\"\n")).unwrap();
        }
        Host {
            dir,
            in_config,
            url: url.to_owned(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_roster"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove("ROSTER_CONFIG")
            .env_remove("ROSTER_LOG")
            .env("NO_COLOR", "1");
        match self.in_config {
            true => c.env_remove("ROSTER_STORE"),
            false => c.env("ROSTER_STORE", &self.url),
        };
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut command = self.command(args);
        command.env_remove("PGPASSWORD").env_remove("PGUSER");
        command.envs(env.iter().copied());
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    }

    fn json(&self, args: &[&str]) -> Value {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }
}

fn demo(name: &str) -> String {
    fixtures()
        .join("demo")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

const IMPORT: [&str; 7] = [
    "import",
    "contoso",
    "--select-all",
    "--check-deleted",
    "--on-deleted",
    "disable",
    "--json",
];

#[test]
fn two_hosts_share_one_history_one_writer_at_a_time() {
    let url = testkit::postgres::database();
    let (a, b) = (Host::new(&url, true), Host::new(&url, false));
    let (code, out, err) = a.run(&["store"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("postgres://127.0.0.1:"), "{out}");
    assert!(!out.contains("roster@"), "no user shown: {out}");

    assert_eq!(
        a.run(&["org", "add", "contoso", "--fixture", &demo("tenant.json")])
            .0,
        0
    );
    assert_eq!(a.run(&["server", "load", &demo("server.json")]).0, 0);
    // B sees A's org and server at once.
    let orgs = b.json(&["org", "list", "--json"]);
    assert_eq!(orgs[0]["name"], "contoso", "{orgs}");

    let (code, out, err) = a.run(&IMPORT);
    assert!(code == 0 || code == 3, "{err}");
    let imported: Value = serde_json::from_str(&out).unwrap();
    let runs = b.json(&["runs", "--json"]);
    let last = runs.as_array().unwrap().last().unwrap();
    assert_eq!(last["run"], imported["run"], "B lists A's import");
    assert_eq!(b.run(&["verify"]).0, 0);
    let (code, _, err) = b.run(&["replay", "last"]);
    assert_eq!(code, 0, "{err}");

    // While A's sync holds the writer lock, B's import is told who holds it, and B's reads
    // go on.
    let held = PgStore::connect_writer(&url, "roster sync on host-a", Opening::Existing).unwrap();
    let (code, _, err) = b.run(&[&["--no-wait"][..], &IMPORT[..]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in use by roster sync on host-a"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for read in [
        &["runs"][..],
        &["verify"],
        &["report", "last"],
        &["events", "last"],
    ] {
        let (code, _, err) = b.run(read);
        assert!(
            code == 0 || code == 3,
            "{read:?} while a writer holds the store: {err}"
        );
    }
    drop(held);

    // B imports after A: the same selection over the same inputs changes nothing, and nothing
    // is added twice.
    let (code, _, err) = b.run(&IMPORT);
    assert!(code == 0 || code == 3, "{err}");
    assert!(added_twice(Path::new(&url)).is_empty());
    assert_eq!(a.run(&["verify"]).0, 0);
}

#[test]
fn an_unreachable_database_is_one_line_exit_1_and_no_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://alice9:pa55-w0rd@127.0.0.1:{port}/roster");
    let host = Host::new(&url, false);
    for args in [&IMPORT[..], &["runs"], &["verify"], &["org", "list"]] {
        let (code, out, err) = host.run(args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            !err.contains("pa55-w0rd") && !err.contains("alice9"),
            "{err}"
        );
        assert!(err.contains(&format!("127.0.0.1:{port}/roster")), "{err}");
    }
    // Not a roster store yet: reading commands say so and create nothing.
    let empty = testkit::postgres::database();
    let (code, _, err) = Host::new(&empty, false).run(&["runs"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("no roster store"), "{err}");
    assert!(PgStore::connect(&empty).is_err(), "nothing was created");
}

/// Backs up `host`'s store to `file`: the chain head the backup ends at.
fn backup(host: &Host, file: &Path) -> String {
    let taken = host.json(&["backup", "--out", file.to_str().unwrap(), "--json"]);
    taken["head"]["hash"].as_str().unwrap().to_owned()
}

#[test]
fn a_backup_moves_from_a_directory_to_postgres_and_back_with_the_same_chain_head() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let sled = Host::new(dir.to_str().unwrap(), false);
    assert_eq!(
        sled.run(&["org", "add", "contoso", "--fixture", &demo("tenant.json")])
            .0,
        0
    );
    assert_eq!(sled.run(&["server", "load", &demo("server.json")]).0, 0);
    let (code, _, err) = sled.run(&IMPORT);
    assert!(code == 0 || code == 3, "{err}");
    let file = |name: &str| -> PathBuf { work.path().join(name) };
    let head = backup(&sled, &file("one.backup"));

    let url = testkit::postgres::database();
    let pg = Host::new(&url, false);
    let (code, out, err) = pg.run(&[
        "restore",
        file("one.backup").to_str().unwrap(),
        "--head",
        &head,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&head) || err.contains(&head), "{out}{err}");
    let verified = pg.json(&["verify", "--json"]);
    assert_eq!(verified["head"]["hash"], head.as_str(), "{verified}");
    assert_eq!(pg.json(&["server", "dump"]), sled.json(&["server", "dump"]));

    let head = backup(&pg, &file("two.backup"));
    let back = Host::new(file("back").to_str().unwrap(), false);
    let (code, _, err) = back.run(&[
        "restore",
        file("two.backup").to_str().unwrap(),
        "--head",
        &head,
    ]);
    assert_eq!(code, 0, "{err}");
    let verified = back.json(&["verify", "--json"]);
    assert_eq!(verified["head"]["hash"], head.as_str(), "{verified}");
    assert_eq!(back.json(&["server", "dump"]), pg.json(&["server", "dump"]));
}

#[test]
fn the_password_comes_from_pgpassword_or_pgpass_and_is_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    let url = testkit::postgres::as_password_role(&testkit::postgres::database());
    let host = Host::new(&url, false);
    let add = ["org", "add", "contoso", "--fixture", &demo("tenant.json")];
    let one_line_exit_1 = |(code, out, err): (i32, String, String), why: &str| {
        assert_eq!(code, 1, "{why}: {out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{why}: {err}");
        err
    };
    // No password anywhere: refused.
    one_line_exit_1(host.run_with(&add, &[]), "no password");
    // A wrong one is refused and never shown.
    let wrong = "wrong-Pw-7d1a";
    let err = one_line_exit_1(host.run_with(&add, &[("PGPASSWORD", wrong)]), "wrong");
    assert!(!err.contains(wrong), "{err}");
    // $PGPASSWORD's is used.
    let (code, _, err) = host.run_with(&add, &[("PGPASSWORD", testkit::postgres::PASSWORD)]);
    assert_eq!(code, 0, "{err}");
    // So is ~/.pgpass's — only when no one else can read the file.
    let pgpass = host.dir.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# roster's store\n*:*:*:{}:{}\n",
            testkit::postgres::PASSWORD_ROLE,
            testkit::postgres::PASSWORD
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    one_line_exit_1(
        host.run_with(&["org", "list"], &[]),
        "a .pgpass others can read",
    );
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = host.run_with(&["org", "list"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("contoso"), "{out}");
    for said in [&out, &err] {
        assert!(!said.contains(testkit::postgres::PASSWORD), "{said}");
    }
}

#[test]
fn tls_is_spoken_when_asked_and_the_server_is_verified() {
    let url = testkit::postgres::as_tls_role(&testkit::postgres::database());
    let ca = testkit::postgres::ca_file();
    let add = ["org", "add", "contoso", "--fixture", &demo("tenant.json")];
    let refused = |host: &Host, why: &str| {
        let (code, out, err) = host.run(&add);
        assert_eq!(code, 1, "{why}: {out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{why}: {err}");
        err
    };
    // The server takes this role only over TLS.
    let err = refused(&Host::new(&url, false), "plain TCP");
    assert!(
        err.contains("encryption") || err.contains("pg_hba"),
        "{err}"
    );
    // verify-full against the CA that signed the server's certificate: in.
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let host = Host::new(&verified, false);
    let (code, _, err) = host.run(&add);
    assert_eq!(code, 0, "{err}");
    let orgs = host.json(&["org", "list", "--json"]);
    assert_eq!(orgs[0]["name"], "contoso", "{orgs}");
    // `require` verifies too: this host's roots do not know the test CA.
    let err = refused(
        &Host::new(&format!("{url}?sslmode=require"), false),
        "unknown CA",
    );
    assert!(err.contains("certificate") || err.contains("TLS"), "{err}");
    // Another CA's file: refused.
    let other = tempfile::tempdir().unwrap();
    let credential = testkit::credentials::Credential::current();
    let other_ca = other.path().join("other.pem");
    std::fs::write(&other_ca, &credential.cert_pem).unwrap();
    let wrong = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        other_ca.display()
    );
    refused(&Host::new(&wrong, false), "another CA");
    // A mode PostgreSQL does not know is bad input (exit 2): said, the URL's password never.
    let odd = url.replacen("roster_tls@", "roster_tls:s3cr3t-x@", 1) + "?sslmode=sometimes";
    let (code, out, err) = Host::new(&odd, false).run(&add);
    assert_eq!(code, 2, "an unknown sslmode: {out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("sometimes") && !err.contains("s3cr3t-x"),
        "{err}"
    );
}

#[test]
fn a_store_url_that_cannot_be_read_is_bad_input_and_its_password_is_never_shown() {
    for url in [
        "postgres://roster:s3cr3t-y@db.example:notaport/roster",
        "postgres://roster:s3cr3t-y@db.example/roster?sslcert=me.pem",
    ] {
        for args in [&["runs"][..], &["org", "list"], &["verify"]] {
            let (code, out, err) = Host::new(url, false).run(args);
            assert_eq!(code, 2, "{url} {args:?}: {out}{err}");
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(err.contains("URL"), "{err}");
            assert!(!format!("{out}{err}").contains("s3cr3t-y"), "{err}");
        }
    }
}

/// Adds a user to the tenant file, replacing the file whole (a sync may be reading it).
fn add_user(tenant: &Path, n: u32) {
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(tenant).unwrap()).unwrap();
    t["users"].as_array_mut().unwrap().push(serde_json::json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "displayName": format!("New Hire {n}"),
        "userPrincipalName": format!("new.hire{n}@contoso.com"),
        "accountEnabled": true,
        "userType": "Member",
    }));
    let next = tenant.with_extension("next");
    std::fs::write(&next, serde_json::to_vec(&t).unwrap()).unwrap();
    std::fs::rename(next, tenant).unwrap();
}

#[test]
fn a_sync_every_second_on_one_host_and_imports_on_another_interleave_without_duplicates() {
    let url = testkit::postgres::database();
    let (a, b) = (Host::new(&url, true), Host::new(&url, false));
    let tenant = a.dir.path().join("tenant.json");
    std::fs::copy(demo("tenant.json"), &tenant).unwrap();
    let tenant_arg = tenant.to_str().unwrap();
    assert_eq!(
        a.run(&["org", "add", "contoso", "--fixture", tenant_arg]).0,
        0
    );
    assert_eq!(a.run(&["server", "load", &demo("server.json")]).0, 0);
    let (code, _, err) = a.run(&IMPORT);
    assert_eq!(code, 3, "{err}");

    let mut sync = a
        .command(&["sync", "contoso", "--every", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(a.dir.path().join("sync.err")).unwrap())
        .spawn()
        .unwrap();
    // New hires arrive while host B imports everything by hand, again and again: when the
    // sync holds the store B is told so, and tries again a moment later.
    let (mut imported, mut turned_away) = (0, 0);
    for n in 1..=6 {
        add_user(&tenant, n);
        for _ in 0..100 {
            let (code, _, err) = b.run(&IMPORT);
            if code == 1 && err.contains("in use by") {
                turned_away += 1;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            assert!(code == 0 || code == 3, "{err}");
            imported += 1;
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    Command::new("kill")
        .args(["-TERM", &sync.id().to_string()])
        .status()
        .unwrap();
    let said = || std::fs::read_to_string(a.dir.path().join("sync.err")).unwrap();
    assert_eq!(sync.wait().unwrap().code(), Some(0), "{}", said());
    assert_eq!(
        imported, 6,
        "every import of host B went through ({turned_away} turned away first)"
    );

    let (code, out, err) = b.run(&["verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let twice = added_twice(Path::new(&url));
    assert!(twice.is_empty(), "added twice: {twice:?}");
    let runs = b.json(&["runs", "--json"]);
    let runs = runs.as_array().unwrap();
    assert!(
        runs.iter().all(|r| !r["status"].is_null()),
        "every run closed"
    );
    // The first import and B's six by hand, and the sync's cycles besides.
    assert!(runs.len() > 1 + 6, "runs: {}", runs.len());
    // Every new hire is on the server once.
    let dump = b.json(&["server", "dump"]);
    for n in 1..=6 {
        let login = format!("new.hire{n}@contoso.com");
        let found = dump["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["login"] == login.as_str())
            .count();
        assert_eq!(found, 1, "{login}");
    }
}
