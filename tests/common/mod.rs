//! Helpers shared by the end-to-end tests: a `roster fake-graph` child process and a roster
//! store to run commands against, both cleaned up when dropped.
#![allow(dead_code)]

pub mod scim;
pub mod store;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const TENANT: &str = "3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11";
pub const SECRET: &str = "s3cr3t-V4lue~with.special_chars";
pub const CLIENT: &str = "0b9f8e7d-6c5b-4a39-8281-706f5e4d3c2b";

/// The demo's import as the tests run it: every user and group, deleted objects disabled,
/// the report as JSON.
pub const IMPORT: [&str; 7] = [
    "import",
    "contoso",
    "--select-all",
    "--check-deleted",
    "--on-deleted",
    "disable",
    "--json",
];

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A `roster fake-graph` child process, killed when dropped.
pub struct Fake {
    pub child: Child,
    pub url: String,
}

impl Fake {
    pub fn start(tenant: &Path, flags: &[&str]) -> Fake {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("fake-graph")
            .arg("--tenant")
            .arg(tenant)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "first line is the base URL: {url:?}"
        );
        Fake { child, url }
    }

    pub fn stats(&self) -> Value {
        let out = Command::new("curl")
            .args(["-s", &format!("{}/_fake/stats", self.url)])
            .output();
        match out {
            Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

impl Fake {
    /// Serves `tenant` from now on, as a new version (`POST /_fake/reload`).
    pub fn reload(&self, tenant: &Path) {
        self.post("reload", Some(tenant));
    }

    /// Expires every delta token issued so far (`POST /_fake/expire-delta`).
    pub fn expire_delta(&self) {
        self.post("expire-delta", None);
    }

    fn post(&self, what: &str, body: Option<&Path>) {
        let mut curl = Command::new("curl");
        curl.args(["-sf", "-X", "POST", &format!("{}/_fake/{what}", self.url)]);
        if let Some(file) = body {
            curl.arg("--data-binary")
                .arg(format!("@{}", file.display()));
        }
        let out = curl.output().unwrap();
        assert!(out.status.success(), "POST /_fake/{what}: {out:?}");
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Roster {
    pub store: tempfile::TempDir,
    /// Log at trace level (the leak test reads every log line).
    pub trace: bool,
    /// Everything every command printed, to search for leaks.
    pub printed: std::cell::RefCell<String>,
}

impl Roster {
    pub fn new() -> Roster {
        Roster {
            store: tempfile::tempdir().unwrap(),
            trace: false,
            printed: Default::default(),
        }
    }

    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with(args, &[])
    }

    /// Runs a command with extra environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .envs(env.iter().copied())
            .env("ROSTER_STORE", self.store.path())
            .env("ROSTER_CLIENT_SECRET", SECRET)
            .env("ROSTER_RETRY_BASE_MS", "1")
            .env("ROSTER_LOG", if self.trace { "trace" } else { "warn" })
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        self.printed
            .borrow_mut()
            .push_str(&format!("{stdout}\n{stderr}\n"));
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// Starts a command without waiting for it (stdout and stderr piped).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_STORE", self.store.path())
            .env("ROSTER_CLIENT_SECRET", SECRET)
            .env("ROSTER_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[track_caller]
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let (c, out, err) = self.run(args);
        assert_eq!(c, code, "{args:?}\nstdout: {out}\nstderr: {err}");
        out
    }

    /// Adds org `name` reading the fixture `tenant`.
    pub fn add_org(&self, name: &str, tenant: &Path) {
        self.expect(
            0,
            &["org", "add", name, "--fixture", tenant.to_str().unwrap()],
        );
    }

    /// Adds org `name` reading the fixture `tenant`, and loads the demo server.
    pub fn add_demo(&self, name: &str, tenant: &Path) {
        self.add_org(name, tenant);
        self.expect(
            0,
            &[
                "server",
                "load",
                fixtures().join("demo/server.json").to_str().unwrap(),
            ],
        );
    }

    pub fn add_live(&self, name: &str, fake: &Fake) {
        let args = add_live_args(name, TENANT, fake);
        self.expect(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// The attacker's tool: rewrites the first stored record `edit` changes (it returns the new
/// record, or `None` to leave one alone) and recomputes the hash chain from there on, as
/// someone with write access to the store could. Returns whether a record was rewritten.
pub fn rewrite_and_rechain(store: &Path, edit: impl Fn(&str) -> Option<String>) -> bool {
    let store = engine::SledStore::open(&store.join("db")).unwrap();
    let last = engine::EventStore::head(&store).seq.0;
    let mut prev = engine::event::Hash::GENESIS;
    let mut rewriting = false;
    for seq in 1..=last {
        let (_, record) = store.tamper().read(engine::Seq(seq));
        let mut record = String::from_utf8(record).unwrap();
        if !rewriting {
            if let Some(edited) = edit(&record) {
                record = edited;
                rewriting = true;
            }
        }
        let hash = engine::event::Hash::chain(&prev, record.as_bytes());
        if rewriting {
            store
                .tamper()
                .write(engine::Seq(seq), hash, record.as_bytes());
        }
        prev = hash;
    }
    engine::EventStore::flush(&store).unwrap();
    rewriting
}

/// A copy of the demo tenant in a directory of its own, for a test to change between runs.
/// Every file under `dir`, however deep (to look for what must not be in a store).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub fn demo_tenant_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("tenant.json");
    std::fs::copy(fixtures().join("demo/tenant.json"), &tenant).unwrap();
    (dir, tenant)
}

/// `org add NAME` for a live org of `tenant` reading `fake` with a client secret.
pub fn add_live_args(name: &str, tenant: &str, fake: &Fake) -> Vec<String> {
    add_live_args_at(name, tenant, &fake.url)
}

/// `org add NAME` for a live org of `tenant` reading the Graph at `url` with a client secret.
pub fn add_live_args_at(name: &str, tenant: &str, url: &str) -> Vec<String> {
    [
        "org",
        "add",
        name,
        "--tenant",
        tenant,
        "--auth",
        "client-secret",
        "--client-id",
        CLIENT,
        "--graph-url",
        url,
        "--login-url",
        url,
    ]
    .map(String::from)
    .to_vec()
}
