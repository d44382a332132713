//! Real SCIM services for the tests, each started on a free loopback port, one per test,
//! stopped when dropped: `scim2-server` (PyPI), and `django-scim2` (PyPI; a stock Django
//! project around it in `testkit/django-scim/`, on SQLite) — two independent implementations.
//! `.ci/run` installs both into `.ci/venv`; elsewhere, set `ROSTER_SCIM2_SERVER` to
//! scim2-server's executable (or put it on PATH) and `ROSTER_DJANGO_PYTHON` to a Python with
//! django-scim2. A test that needs one fails saying how to install it; it never skips.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bearer token every test service asks for.
pub const TOKEN: &str = "scim-test-token";

/// What a service says it supports in its `ServiceProviderConfig` (RFC 7643 §5), for a
/// `scim2-server` started with [`Scim::start_offering`].
#[derive(Debug, Clone, Copy)]
pub struct Offers {
    pub patch: bool,
    pub bulk: bool,
    pub filter: bool,
    /// `filter.maxResults`: scim2-server also answers pages of at most this many.
    pub max_results: u64,
    pub etag: bool,
}

impl Offers {
    pub fn json(&self) -> String {
        let supported = |on: bool| serde_json::json!({"supported": on});
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": supported(self.patch),
            "bulk": {"supported": self.bulk, "maxOperations": if self.bulk { 1000 } else { 0 }, "maxPayloadSize": if self.bulk { 1 << 20 } else { 0 }},
            "filter": {"supported": self.filter, "maxResults": self.max_results},
            "changePassword": supported(false),
            "sort": supported(false),
            "etag": supported(self.etag),
            "authenticationSchemes": []
        })
        .to_string()
    }
}

/// A `scim2-server` on a free loopback port, stopped when dropped.
pub struct Scim {
    child: Child,
    /// Where its `ServiceProviderConfig` file is, when it was given one.
    _config: Option<tempfile::TempDir>,
    pub port: u16,
    /// The SCIM base URL, ending in `/v2/`.
    pub url: String,
}

impl Drop for Scim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free now and never handed out before in this process: the system hands a
/// port freed by one test to the next, and a service that lost the race for it would leave
/// its test talking to another test's service.
fn free_port() -> u16 {
    static HANDED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if HANDED.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// The `scim2-server` executable: `$ROSTER_SCIM2_SERVER`, the CI's virtual environment, or
/// the one on PATH.
pub fn scim2_server() -> PathBuf {
    if let Some(p) = std::env::var_os("ROSTER_SCIM2_SERVER").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/scim2-server");
    if venv.exists() {
        return venv;
    }
    let on_path = PathBuf::from("scim2-server");
    assert!(
        Command::new(&on_path).arg("--help").output().is_ok_and(|o| o.status.success()),
        "scim2-server is not installed: python3 -m venv .ci/venv && .ci/venv/bin/pip install scim2-server (.ci/run does), or set ROSTER_SCIM2_SERVER"
    );
    on_path
}

/// A Python with django-scim2: `$ROSTER_DJANGO_PYTHON`, else the CI's virtual environment.
pub fn django_python() -> PathBuf {
    let python = match std::env::var_os("ROSTER_DJANGO_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python"),
    };
    assert!(
        Command::new(&python)
            .args(["-c", "import django_scim"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "django-scim2 is not installed: python3 -m venv .ci/venv && .ci/venv/bin/pip install django-scim2 (.ci/run does), or set ROSTER_DJANGO_PYTHON"
    );
    python
}

/// Waits until `port` takes connections, for `what`.
fn wait_for(port: u16, what: &str, child: &mut Child) {
    let until = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < until, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Scim {
    /// A stock django-scim2 service on a fresh SQLite database (see
    /// `testkit/django-scim/serve.py`): it keeps no enterprise extension, `title` or
    /// `userType`, ignores members sent with a group's `POST`, answers a group's `PATCH
    /// replace` and the RFC's member-removal filter 501, announces no bulk and no filter.
    pub fn start_django() -> Scim {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let serve = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("django-scim/serve.py");
        let mut child = Command::new(django_python())
            .arg(serve)
            .args(["--port", &port.to_string(), "--token", TOKEN, "--db"])
            .arg(dir.path().join("directory.sqlite3"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(port, "django-scim2", &mut child);
        Scim {
            child,
            _config: Some(dir),
            port,
            url: format!("http://127.0.0.1:{port}/scim/v2/"),
        }
    }

    pub fn start() -> Scim {
        Scim::start_with(&[])
    }

    /// Started with a `ServiceProviderConfig` that offers only `offers`.
    pub fn start_offering(offers: Offers) -> Scim {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("service-provider-config.json");
        std::fs::write(&file, offers.json()).unwrap();
        let mut scim = Scim::start_with(&["--service-provider-config", file.to_str().unwrap()]);
        scim._config = Some(dir);
        scim
    }

    /// Started with `extra` arguments (`--service-provider-config FILE`, ...).
    pub fn start_with(extra: &[&str]) -> Scim {
        let port = free_port();
        let child = Command::new(scim2_server())
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                TOKEN,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = child;
        wait_for(port, "scim2-server", &mut child);
        Scim {
            child,
            _config: None,
            port,
            url: format!("http://127.0.0.1:{port}/v2/"),
        }
    }
}
