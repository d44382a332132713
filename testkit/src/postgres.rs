//! A throwaway PostgreSQL cluster for the tests of the PostgreSQL store: one per test process,
//! made with `initdb` in a temporary directory the first time a test asks for a database,
//! listening on a free loopback port (and a socket in its own directory), trust
//! authentication, stopped when the process exits. Each test gets a database of its own.
//!
//! The server binaries are `$ROSTER_PG_BIN` (a directory holding `initdb` and `pg_ctl`), else
//! the newest `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, which `.ci/setup`
//! installs), else `initdb` on PATH. PostgreSQL refuses to run as root: run as root, the
//! cluster runs as the unprivileged user `postgres` (the Debian package makes it; another with
//! `$ROSTER_PG_USER`). A test that cannot start the cluster fails saying how to install it;
//! it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The superuser `initdb` makes: every test database belongs to it.
const SUPERUSER: &str = "roster";

/// The role that must give its password ([`PASSWORD`]): the cluster trusts every other.
pub const PASSWORD_ROLE: &str = "roster_pw";

/// The role that may connect only over TLS: the cluster rejects it on plain TCP.
pub const TLS_ROLE: &str = "roster_tls";

/// [`PASSWORD_ROLE`]'s password.
pub const PASSWORD: &str = "Pw-9f3e1c-in-the-test-cluster";

struct Cluster {
    port: u16,
    /// The certificate authority that signed the cluster's TLS certificate (PEM file).
    ca: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
/// How to stop the cluster, and its directory, removed once it stopped.
static STOP: OnceLock<(Vec<String>, PathBuf)> = OnceLock::new();

/// A URL to a new, empty database on this process's cluster, started on first use.
///
/// Panics, saying how to install PostgreSQL, when the cluster cannot be started.
pub fn database() -> String {
    create("")
}

/// A URL to a new database that starts as a copy of the one at `url` (made by [`database`]):
/// a store copied as a test copies a store's directory. Nothing may be connected to `url`.
pub fn copy_of(url: &str) -> String {
    let (_, name) = url.rsplit_once('/').expect("a URL made by `database`");
    create(&format!(" TEMPLATE {name}"))
}

fn create(how: &str) -> String {
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(cluster) => cluster,
        Err(why) => panic!("{why}"),
    };
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let name = format!("t{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let mut admin = postgres::Client::connect(&url(cluster.port, "postgres"), postgres::NoTls)
        .expect("the test cluster takes connections");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}{how}"))
        .expect("a test database is created");
    url(cluster.port, &name)
}

/// The URL of the database at `url` for [`TLS_ROLE`] (made once, allowed everything on that
/// database), which the cluster takes only over TLS; no `sslmode` yet.
pub fn as_tls_role(url: &str) -> String {
    let (_, name) = url.rsplit_once('/').expect("a URL made by `database`");
    let port = match CLUSTER.get() {
        Some(Ok(cluster)) => cluster.port,
        _ => panic!("the test cluster was not started"),
    };
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("the test database");
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
                 CREATE ROLE {TLS_ROLE} LOGIN;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$;
             GRANT ALL ON DATABASE {name} TO {TLS_ROLE};
             GRANT ALL ON SCHEMA public TO {TLS_ROLE};"
        ))
        .expect("the TLS role is made");
    format!("postgres://{TLS_ROLE}@127.0.0.1:{port}/{name}")
}

/// The URL of the database at `url` for [`PASSWORD_ROLE`] (made once, owning nothing, allowed
/// everything on that database), without a password: the client must find it.
pub fn as_password_role(url: &str) -> String {
    let (_, name) = url.rsplit_once('/').expect("a URL made by `database`");
    let port = match CLUSTER.get() {
        Some(Ok(cluster)) => cluster.port,
        _ => panic!("the test cluster was not started"),
    };
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("the test database");
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
                 CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}';
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$;
             GRANT ALL ON DATABASE {name} TO {PASSWORD_ROLE};
             GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE};"
        ))
        .expect("the password role is made");
    format!("postgres://{PASSWORD_ROLE}@127.0.0.1:{port}/{name}")
}

/// The URL of `database` on the test cluster at `port`, as its superuser.
fn url(port: u16, database: &str) -> String {
    format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{database}")
}

fn how_to_install(what: &str) -> String {
    format!(
        "{what}: the PostgreSQL store's tests need PostgreSQL's server programs; install them with `.ci/setup` (Debian: apt-get install postgresql), or set ROSTER_PG_BIN to the directory holding initdb and pg_ctl"
    )
}

/// The directory holding `initdb` and `pg_ctl`.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("ROSTER_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    // The newest version: directories named by their major version.
    debian.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    if let Some(bin) = debian.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file());
    on_path.ok_or_else(|| how_to_install("initdb was not found"))
}

/// Runs `program args` from `bin`, as the cluster's user when this process is root.
fn command(bin: &Path, program: &str, args: &[&str]) -> Command {
    let program = bin.join(program);
    match running_as_root() {
        true => {
            let user = std::env::var("ROSTER_PG_USER").unwrap_or_else(|_| "postgres".into());
            let mut c = Command::new("runuser");
            c.args(["-u", &user, "--"]).arg(program).args(args);
            c
        }
        false => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .output()
        .map_err(|e| how_to_install(&format!("{what} could not be started ({e})")))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )),
    }
}

fn start() -> Result<Cluster, String> {
    let bin = binaries()?;
    let dir = tempfile::Builder::new()
        .prefix("roster-pg-")
        .tempdir()
        .map_err(|e| format!("no temporary directory for the test cluster: {e}"))?;
    let data = dir.path().join("data");
    if running_as_root() {
        // The cluster's user owns its directory; the directory above it stays traversable.
        let user = std::env::var("ROSTER_PG_USER").unwrap_or_else(|_| "postgres".into());
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        run(
            {
                let mut c = Command::new("chown");
                c.arg(&user).arg(&data).arg(dir.path());
                c
            },
            "chown of the test cluster's directory",
        )?;
    }
    let data_arg = data.to_string_lossy().into_owned();
    run(
        command(
            &bin,
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        ),
        &format!("initdb ({})", bin.display()),
    )?;
    // One role signs in with a password (the tests of $PGPASSWORD and ~/.pgpass), one only
    // over TLS; every other connection is trusted.
    let hba = data.join("pg_hba.conf");
    let trusted = std::fs::read_to_string(&hba).map_err(|e| format!("pg_hba.conf: {e}"))?;
    std::fs::write(
        &hba,
        format!(
            "host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n\
             hostssl all {TLS_ROLE} 127.0.0.1/32 trust\n\
             hostnossl all {TLS_ROLE} 127.0.0.1/32 reject\n\
             {trusted}"
        ),
    )
    .map_err(|e| format!("pg_hba.conf: {e}"))?;
    // TLS: a server certificate for 127.0.0.1 and localhost, signed by a CA made here.
    let ca = dir.path().join("ca.pem");
    let (cert, key) = certificates(&ca);
    std::fs::write(data.join("server.crt"), cert).map_err(|e| e.to_string())?;
    std::fs::write(data.join("server.key"), key).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(data.join("server.key"), private).map_err(|e| e.to_string())?;
    }
    if running_as_root() {
        let user = std::env::var("ROSTER_PG_USER").unwrap_or_else(|_| "postgres".into());
        run(
            {
                let mut c = Command::new("chown");
                c.arg(&user)
                    .arg(data.join("server.crt"))
                    .arg(data.join("server.key"))
                    .arg(&hba);
                c
            },
            "chown of the test cluster's certificate",
        )?;
    }
    let port = free_port();
    let options = format!(
        "-h 127.0.0.1 -p {port} -k {data_arg} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c ssl=on"
    );
    let log = format!("{data_arg}/server.log");
    run(
        command(
            &bin,
            "pg_ctl",
            &["-D", &data_arg, "-l", &log, "-o", &options, "-w", "start"],
        ),
        "pg_ctl start",
    )
    .map_err(|why| {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        format!("{why}\n{log}")
    })?;
    // Stopped when the process exits; a test process killed outright leaves it running in its
    // temporary directory.
    let stop = command(
        &bin,
        "pg_ctl",
        &["-D", &data_arg, "-m", "immediate", "stop"],
    );
    let mut argv = vec![stop.get_program().to_string_lossy().into_owned()];
    argv.extend(stop.get_args().map(|a| a.to_string_lossy().into_owned()));
    let _ = STOP.set((argv, dir.keep()));
    // SAFETY: `stop_cluster` is an `extern "C" fn()` that touches only the static set above.
    unsafe { libc::atexit(stop_cluster) };
    Ok(Cluster { port, ca })
}

/// A CA (written to `ca`, PEM) and a server certificate it signed for 127.0.0.1 and localhost:
/// the certificate and its key, PEM.
fn certificates(ca: &Path) -> (String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut params = rcgen::CertificateParams::new(Vec::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "roster test CA");
    let ca_cert = params.self_signed(&ca_key).expect("the CA certificate");
    std::fs::write(ca, ca_cert.pem()).expect("the CA file is written");
    let issuer = rcgen::Issuer::new(params, ca_key);
    let key = rcgen::KeyPair::generate().expect("a server key");
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("the server certificate");
    (server.pem(), key.serialize_pem())
}

/// The PEM file of the CA that signed the test cluster's certificate (the cluster started).
pub fn ca_file() -> PathBuf {
    match CLUSTER.get_or_init(start) {
        Ok(cluster) => cluster.ca.clone(),
        Err(why) => panic!("{why}"),
    }
}

extern "C" fn stop_cluster() {
    let Some((argv, dir)) = STOP.get() else {
        return;
    };
    if let [program, args @ ..] = argv.as_slice() {
        let _ = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
