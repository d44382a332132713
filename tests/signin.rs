//! Signing in without a secret, as an admin sets it up: an org whose app signs in with a
//! certificate, and one that signs in with a federated token the platform writes to a file —
//! through the binary, against `roster fake-graph` checking every claim as the identity
//! platform does. The certificates are made by each test (rcgen); none is kept in the repository.

mod common;

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use common::store::generated;
use common::*;
use serde_json::Value;
use testkit::credentials::Credential;

const ISSUER: &str = "https://oidc.ci.example/roster";
const SUBJECT: &str = "system:serviceaccount:roster:sync";

/// `org add NAME` for a live org of `tenant` signing in with `auth` (`--auth certificate
/// --certificate FILE`, say).
fn add_args<'a>(name: &'a str, tenant: &'a str, fake: &'a Fake, auth: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "org",
        "add",
        name,
        "--tenant",
        tenant,
        "--client-id",
        CLIENT,
        "--graph-url",
        &fake.url,
        "--login-url",
        &fake.url,
    ];
    args.extend_from_slice(auth);
    args
}

/// `org add NAME` for a live org of the demo tenant signing in with `auth`.
fn add_args_demo<'a>(name: &'a str, fake: &'a Fake, auth: &[&'a str]) -> Vec<&'a str> {
    add_args(name, TENANT, fake, auth)
}

/// Requests the fake's sign-in service has had (taken or refused).
fn sign_ins(fake: &Fake) -> u64 {
    fake.stats()["signInRequests"].as_u64().unwrap()
}

/// The assertion's first part as roster signs it for `cred`: a fixed header (the certificate's
/// thumbprints), so that the test can look for any assertion roster made.
fn assertion_header(cred: &Credential) -> String {
    use sha2::Digest as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let sha1 = Command::new("openssl")
        .args(["dgst", "-sha1", "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(&cred.cert_der)?;
            c.wait_with_output()
        })
        .expect("openssl")
        .stdout;
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5t": b64(&sha1),
        "x5t#S256": b64(&sha2::Sha256::digest(&cred.cert_der)),
    });
    b64(header.to_string().as_bytes())
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An org whose app signs in with a certificate reads a paged tenant of thousands through the
/// fake and imports exactly what an org signing in with a secret imports: the same entries,
/// the same inputs digest, each run by the application. No byte of the private key and no
/// assertion is left anywhere: the store (its token cache included), or anything printed at
/// trace level.
#[test]
fn a_certificate_org_imports_exactly_as_a_secret_org_does_and_leaves_no_key_behind() {
    let (work, _template, _) = generated(2_000, 200);
    let (tenant, server) = (
        work.path().join("tenant.json"),
        work.path().join("server.json"),
    );
    let keys = tempfile::tempdir().unwrap();
    let cred = Credential::current();
    let pair = cred.write_pair(&keys.path().join("roster.pem"));
    let uploaded = cred.write_certificate(&keys.path().join("uploaded.pem"));
    let fake = Fake::start(
        &tenant,
        &[
            "--client-secret",
            SECRET,
            "--trust-certificate",
            uploaded.to_str().unwrap(),
            "--page-size",
            "250",
        ],
    );
    let tenant_id = serde_json::from_slice::<Value>(&std::fs::read(&tenant).unwrap()).unwrap()
        ["tenantId"]
        .as_str()
        .unwrap()
        .to_owned();
    let import: Vec<&str> = common::store::IMPORT
        .into_iter()
        .chain(["--json"])
        .collect();
    let run = |r: &Roster, auth: &[&str]| -> (Value, Value) {
        r.expect(0, &add_args("gen", &tenant_id, &fake, auth));
        r.expect(0, &["server", "load", server.to_str().unwrap()]);
        let (code, out, err) = r.run(&import);
        assert!(code == 0 || code == 3, "{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        let started = r
            .expect(0, &["events", "--since", "1"])
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|e| e["type"] == "RunStarted")
            .unwrap();
        (report, started["payload"].clone())
    };
    let by_secret = Roster::new();
    let (secret_report, secret_started) = run(&by_secret, &["--auth", "client-secret"]);
    let by_certificate = Roster {
        trace: true,
        ..Roster::new()
    };
    let (cert_report, cert_started) = run(
        &by_certificate,
        &[
            "--auth",
            "certificate",
            "--certificate",
            pair.to_str().unwrap(),
        ],
    );
    let entries = cert_report["entries"].as_array().unwrap();
    assert!(entries.len() > 2_000, "{} entries", entries.len());
    assert_eq!(cert_report["entries"], secret_report["entries"]);
    assert_eq!(cert_report["summary"], secret_report["summary"]);
    assert_eq!(cert_started["inputsDigest"], secret_started["inputsDigest"]);
    assert!(cert_started["inputsDigest"].is_string());
    assert_eq!(
        cert_started["source"]["signedInAs"],
        format!("application {CLIENT}"),
        "{cert_started}"
    );
    assert!(
        fake.stats()["tokensIssued"].as_u64().unwrap() >= 2,
        "both signed in"
    );

    // Used again: replay, reports, the org list (the file's path, never its contents).
    for args in [
        &["runs"][..],
        &["report", "last", "--format", "csv"],
        &["verify"],
        &["org", "list", "--json"],
        &["replay", "last"],
        &["plan", "gen", "--select-all"],
    ] {
        by_certificate.run(args);
    }
    let listed = by_certificate.expect(0, &["org", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["source"]["auth"], "certificate");
    assert_eq!(
        listed[0]["source"]["certificate"],
        std::fs::canonicalize(&pair).unwrap().to_str().unwrap()
    );

    let printed = by_certificate.printed.borrow().clone();
    assert!(
        printed.contains("TRACE"),
        "the logs were read at trace level"
    );
    // The key as PEM (its full 64-character lines) and as DER (32-byte pieces): long enough
    // never to be met by chance.
    let mut needles: Vec<Vec<u8>> = cred
        .key_pem
        .lines()
        .filter(|l| l.len() == 64)
        .map(|l| l.as_bytes().to_vec())
        .collect();
    needles.extend(cred.key_der.chunks_exact(32).map(<[u8]>::to_vec));
    needles.push(assertion_header(&cred).into_bytes());
    for file in walk(by_certificate.store.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !holds(&bytes, needle),
                "{} holds the key or an assertion: {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    for needle in &needles {
        assert!(
            !holds(printed.as_bytes(), needle),
            "the output holds the key or an assertion"
        );
    }
}

/// Lines of a child's stream, as they come.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A `sync --every` daemon: its cycles' outcome lines.
struct Daemon {
    child: std::process::Child,
    stderr: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(r: &Roster, org: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["sync", org, "--every", "1s"])
            .env("ROSTER_STORE", r.store.path())
            .env("ROSTER_RETRY_BASE_MS", "1")
            .env("NO_COLOR", "1")
            .env_remove("ROSTER_CLIENT_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = lines(child.stderr.take().unwrap());
        Daemon { child, stderr }
    }

    /// The next cycle's outcome: `sync ORG: …` (what it repeats is said before, and skipped).
    fn cycle(&self) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(60))
                .expect("a sync cycle ends within a minute");
            if !line.contains(" repeats: ") {
                return line;
            }
        }
    }

    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }
}

/// Whether a `sync live` cycle's line says its run completed.
fn completed(line: &str) -> bool {
    line.contains("sync live: run ") && line.contains(" completed in ")
}

/// `sync --every` with a certificate keeps signing in as its tokens expire: every cycle signs a
/// new assertion (a fresh `jti`: the fake refuses one used again) and completes.
#[test]
fn sync_every_keeps_signing_in_with_the_certificate_as_tokens_expire() {
    let (_dir, tenant) = demo_tenant_copy();
    let keys = tempfile::tempdir().unwrap();
    let cred = Credential::current();
    let pair = cred.write_pair(&keys.path().join("roster.pem"));
    let uploaded = cred.write_certificate(&keys.path().join("uploaded.pem"));
    // Tokens the fake says live two seconds: every cycle needs a new one.
    let fake = Fake::start(
        &tenant,
        &[
            "--trust-certificate",
            uploaded.to_str().unwrap(),
            "--token-ttl-s",
            "2",
            "--expires-in",
            "2",
        ],
    );
    let r = Roster::new();
    r.expect(
        0,
        &add_args_demo(
            "live",
            &fake,
            &[
                "--auth",
                "certificate",
                "--certificate",
                pair.to_str().unwrap(),
            ],
        ),
    );
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    r.expect(3, &["import", "live", "--select-all"]);
    let issued = fake.stats()["tokensIssued"].as_u64().unwrap();
    let daemon = Daemon::start(&r, "live");
    for _ in 0..3 {
        let line = daemon.cycle();
        assert!(completed(&line), "{line}");
        std::thread::sleep(Duration::from_millis(2100));
    }
    daemon.stop();
    assert!(
        fake.stats()["tokensIssued"].as_u64().unwrap() >= issued + 3,
        "each cycle signed in again: {}",
        fake.stats()
    );
    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|run| run["status"] == "completed"),
        "{runs}"
    );
    r.expect(0, &["verify"]);
}

/// What an import ends with when the certificate cannot sign in: exit 2, one line saying what
/// to do, and nothing in the log but a run closed as aborted.
fn refused_import(r: &Roster, want: &str) -> String {
    r.expect(0, &["org", "logout", "live"]);
    let before = r.expect(0, &["events", "--since", "1"]).lines().count();
    let (code, out, err) = r.run(&["import", "live", "--select-all"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(want), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let events: Vec<Value> = r
        .expect(0, &["events", "--since", "1"])
        .lines()
        .skip(before)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["RunStarted", "RunFinished"], "{events:?}");
    assert_eq!(events[1]["payload"]["status"], "aborted", "{events:?}");
    err
}

/// A certificate that cannot work is said in one line, and nothing is imported: expired or not
/// yet valid (said before any request), readable by others (refused before it is read), or not
/// the one uploaded to the app (the sign-in service's AADSTS700027, with what to check).
#[test]
fn a_certificate_that_cannot_sign_in_is_said_in_one_line_and_nothing_is_imported() {
    let (_dir, tenant) = demo_tenant_copy();
    let keys = tempfile::tempdir().unwrap();
    let cred = Credential::current();
    let pair = cred.write_pair(&keys.path().join("roster.pem"));
    let uploaded = cred.write_certificate(&keys.path().join("uploaded.pem"));
    let now = chrono::Utc::now();
    // A second certificate uploaded to the app, ten days from its end.
    let soon = Credential::rsa(
        now - chrono::Duration::days(300),
        now + chrono::Duration::days(10),
    );
    let soon_uploaded = soon.write_certificate(&keys.path().join("soon.pem"));
    let fake = Fake::start(
        &tenant,
        &[
            "--trust-certificate",
            uploaded.to_str().unwrap(),
            "--trust-certificate",
            soon_uploaded.to_str().unwrap(),
        ],
    );
    let r = Roster::new();
    let add = add_args_demo(
        "live",
        &fake,
        &[
            "--auth",
            "certificate",
            "--certificate",
            pair.to_str().unwrap(),
        ],
    );
    r.expect(0, &add);
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );

    for (cred, want) in [
        (
            Credential::rsa(
                now - chrono::Duration::days(90),
                now - chrono::Duration::hours(1),
            ),
            "the certificate expired on",
        ),
        (
            Credential::rsa(
                now + chrono::Duration::days(1),
                now + chrono::Duration::days(90),
            ),
            "is not valid before",
        ),
    ] {
        cred.write_pair(&pair);
        let asked = sign_ins(&fake);
        let err = refused_import(&r, want);
        assert!(err.contains("roster.pem"), "{err}");
        assert_eq!(sign_ins(&fake), asked, "said before any request");
    }

    Credential::current().write_pair(&pair);
    let err = refused_import(&r, "AADSTS700027");
    assert!(
        err.contains("upload the certificate to the app registration"),
        "{err}"
    );

    cred.write_pair(&pair);
    std::fs::set_permissions(&pair, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let asked = sign_ins(&fake);
    refused_import(&r, "run `chmod 600");
    assert_eq!(sign_ins(&fake), asked, "refused before any request");
    // Adding an org with such a file is refused too, and nothing is saved.
    let (code, _, err) = r.run(&add_args_demo(
        "other",
        &fake,
        &[
            "--auth",
            "certificate",
            "--certificate",
            pair.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("chmod 600") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!r.expect(0, &["org", "list"]).contains("other"));

    std::fs::set_permissions(&pair, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    r.expect(3, &["import", "live", "--select-all"]);
    r.expect(0, &["verify"]);

    // A certificate near its end still signs in, and says so at every sign-in.
    soon.write_pair(&pair);
    r.expect(0, &["org", "logout", "live"]);
    let (code, _, err) = r.run(&["plan", "live", "--select-all"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("expires on") && err.contains("(in 9 days)"),
        "{err}"
    );
}

/// The fake checks each claim of an assertion as the identity platform does: the wrong key,
/// the wrong audience, another app, an expired assertion and a replayed `jti` are each refused
/// with the platform's error, and roster's own assertion is taken once.
#[test]
fn the_fake_sign_in_service_checks_every_claim() {
    let (_dir, tenant) = demo_tenant_copy();
    let keys = tempfile::tempdir().unwrap();
    let cred = Credential::current();
    let uploaded = cred.write_certificate(&keys.path().join("uploaded.pem"));
    let fake = Fake::start(
        &tenant,
        &["--trust-certificate", uploaded.to_str().unwrap()],
    );
    let endpoint = format!("{}/{TENANT}/oauth2/v2.0/token", fake.url);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let thumb = b64(&sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        &cred.cert_der,
    )));
    let post = |assertion: &str| -> (u16, Value) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-X", "POST", &endpoint])
            .args(["--data-urlencode", "grant_type=client_credentials"])
            .args(["--data-urlencode", &format!("client_id={CLIENT}")])
            .args([
                "--data-urlencode",
                "scope=https://graph.microsoft.com/.default",
            ])
            .args([
                "--data-urlencode",
                "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ])
            .args(["--data-urlencode", &format!("client_assertion={assertion}")])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), serde_json::from_str(body).unwrap())
    };
    // Signed by `key`, naming the uploaded certificate by its thumbprint.
    let signed = |key: &Credential, claims: Value| -> String {
        key.sign_with_header(
            &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": thumb}),
            &claims,
        )
    };
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, client: &str, exp: i64, jti: &str| serde_json::json!({"aud": aud, "iss": client, "sub": client, "jti": jti, "nbf": now - 60, "exp": exp});
    let code = |answer: &(u16, Value)| answer.1["error_codes"][0].as_u64().unwrap_or(0);
    let good = signed(&cred, claims(&endpoint, CLIENT, now + 600, "one"));
    let taken = post(&good);
    assert_eq!(taken.0, 200, "{:?}", taken.1);
    assert!(taken.1["access_token"].is_string());
    assert_eq!(code(&post(&good)), 50013, "a replayed jti");
    let stranger = Credential::current();
    assert_eq!(
        code(&post(&signed(
            &stranger,
            claims(&endpoint, CLIENT, now + 600, "two")
        ))),
        700027,
        "the wrong key"
    );
    assert_eq!(
        code(&post(&signed(
            &cred,
            claims(
                "https://login.microsoftonline.com/x/oauth2/v2.0/token",
                CLIENT,
                now + 600,
                "three"
            )
        ))),
        50013,
        "the wrong audience"
    );
    assert_eq!(
        code(&post(&signed(
            &cred,
            claims(
                &endpoint,
                "99999999-9999-4999-8999-999999999999",
                now + 600,
                "four"
            )
        ))),
        700021,
        "another app"
    );
    assert_eq!(
        code(&post(&signed(
            &cred,
            claims(&endpoint, CLIENT, now - 3600, "five")
        ))),
        700024,
        "expired"
    );
    assert_eq!(code(&post("not.a.jwt")), 50027, "malformed");
}

/// Writes `text` to `path` the way Kubernetes renews a projected token: into a new directory,
/// then the `..data` link swapped to it and the old directory removed; `path` itself is a link
/// to `..data/token`.
fn renew(path: &Path, text: &str) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = path.parent().unwrap();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fresh = dir.join(format!("..{n}"));
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join("token"), text).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(format!("..{n}"), dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
    if std::fs::symlink_metadata(path).is_err() {
        std::os::unix::fs::symlink("..data/token", path).unwrap();
    }
}

/// An org signing in with workload identity federation reads its token file again at every
/// sign-in: `sync --every` keeps working as the platform renews the token (as Kubernetes does:
/// through a link swapped to a new directory, the old one removed); a file holding a
/// token of another subject, an expired token or nothing is said in one line and that cycle
/// records only an aborted run; the next good token is taken.
#[test]
fn a_federated_org_reads_its_token_file_again_at_every_sign_in() {
    let (_dir, tenant) = demo_tenant_copy();
    let keys = tempfile::tempdir().unwrap();
    let issuer = Credential::current();
    let issuer_cert = issuer.write_certificate(&keys.path().join("issuer.pem"));
    let fake = Fake::start(
        &tenant,
        &[
            "--trust-federated",
            ISSUER,
            "--federated-certificate",
            issuer_cert.to_str().unwrap(),
            "--federated-subject",
            SUBJECT,
            "--token-ttl-s",
            "2",
            "--expires-in",
            "2",
        ],
    );
    let tokens = keys.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let file = tokens.join("token");
    let hour = chrono::Duration::hours(1);
    let r = Roster::new();
    let add = add_args_demo(
        "live",
        &fake,
        &[
            "--auth",
            "federated",
            "--assertion-file",
            file.to_str().unwrap(),
        ],
    );

    // Adding the org checks the file first.
    renew(&file, &issuer.federated_token(ISSUER, SUBJECT, -hour));
    let (code, _, err) = r.run(&add);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the federated token expired at") && err.lines().count() == 1,
        "{err}"
    );
    renew(&file, &issuer.federated_token(ISSUER, SUBJECT, hour));
    r.expect(0, &add);
    let listed = r.expect(0, &["org", "list"]);
    assert!(listed.contains("federated token"), "{listed}");
    r.expect(
        0,
        &[
            "server",
            "load",
            fixtures().join("demo/server.json").to_str().unwrap(),
        ],
    );
    r.expect(3, &["import", "live", "--select-all"]);

    let daemon = Daemon::start(&r, "live");
    let first = daemon.cycle();
    assert!(completed(&first), "{first}");
    // The platform writes another token each time; a cycle after the write reads it.
    let until = |want: &str| {
        for _ in 0..4 {
            let line = daemon.cycle();
            if line.contains(want) {
                return line;
            }
        }
        panic!("no cycle said {want:?}");
    };
    renew(
        &file,
        &issuer.federated_token(ISSUER, "repo:someone/else:ref:refs/heads/main", hour),
    );
    let line = until("AADSTS700213");
    assert!(
        line.contains("federated credential") && line.contains("failed"),
        "{line}"
    );
    renew(
        &file,
        &issuer.federated_token(ISSUER, SUBJECT, -chrono::Duration::minutes(5)),
    );
    until("the federated token expired at");
    renew(&file, "");
    until("the federated token file is empty");
    renew(&file, &issuer.federated_token(ISSUER, SUBJECT, hour));
    until(" completed in ");
    daemon.stop();

    let runs: Value = serde_json::from_str(&r.expect(0, &["runs", "--json"])).unwrap();
    let aborted = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["status"] == "aborted")
        .count();
    assert!(aborted >= 3, "{runs}");
    for run in runs.as_array().unwrap() {
        if run["status"] == "aborted" {
            let id = run["run"].as_str().unwrap();
            let events = r.expect(0, &["events", id]);
            assert_eq!(
                events.lines().count(),
                2,
                "only the run's start and end: {events}"
            );
        }
    }
    r.expect(0, &["verify"]);
    // No token the platform wrote is kept: they all begin with the issuer's header.
    let header = issuer.federated_token(ISSUER, SUBJECT, hour);
    let header = header.split('.').next().unwrap();
    for file in walk(r.store.path()) {
        assert!(
            !holds(&std::fs::read(&file).unwrap(), header.as_bytes()),
            "{} holds a federated token",
            file.display()
        );
    }
}
