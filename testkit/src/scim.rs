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

/// A `scim2-server` on a free loopback port, stopped when dropped.
pub struct Scim {
    child: Child,
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

    /// Started with `extra` arguments (`--service-provider-config FILE`, ...).
    pub fn start_with(extra: &[&str]) -> Scim {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
            port,
            url: format!("http://127.0.0.1:{port}/v2/"),
        }
    }
}
