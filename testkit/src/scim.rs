//! A real SCIM service for the tests: `scim2-server` (PyPI), started on a free loopback port,
//! one per test, stopped when dropped. `.ci/run` installs it into `.ci/venv`; elsewhere, set
//! `ROSTER_SCIM2_SERVER` to its executable or put it on PATH. A test that needs it fails
//! saying how to install it; it never skips.

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

impl Scim {
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
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "scim2-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Scim {
            child,
            _config: None,
            port,
            url: format!("http://127.0.0.1:{port}/v2/"),
        }
    }
}
