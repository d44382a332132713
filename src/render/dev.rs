//! Developers' tools: `fake-graph`, `fixture generate`.

use super::*;

/// `roster fake-graph`, on stderr once it serves (stdout has its URL).
/// `fake-graph` reloaded its tenant file (SIGHUP), or could not.
pub fn fake_reloaded(tenant: &std::path::Path, reloaded: adapters::Result<u64>) -> String {
    match reloaded {
        Ok(version) => format!(
            "fake-graph: reloaded {} (version {version})\n",
            cell(&tenant.display().to_string())
        ),
        Err(e) => format!(
            "fake-graph: cannot reload {}, still serving the previous version: {}\n",
            cell(&tenant.display().to_string()),
            cell(&e.to_string())
        ),
    }
}

pub fn fake_serving(tenant: &std::path::Path, url: &str) -> String {
    format!(
        "fake-graph: serving {} on {url} until killed\n",
        tenant.display()
    )
}

/// `roster fixture generate`.
pub fn generated(
    users: u64,
    groups: u64,
    seed: u64,
    out: &std::path::Path,
    server: Option<&std::path::Path>,
) -> String {
    format!(
        "Generated {users} users and {groups} groups (seed {seed}) in {}{}\n",
        out.display(),
        server
            .map(|s| format!(", server state in {}", s.display()))
            .unwrap_or_default()
    )
}
