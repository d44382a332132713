//! `roster demo`, the main job in one call: a fresh demo store with the bundled server state
//! loaded and the bundled 46-user tenant as org `contoso`, and a full import (every entry
//! selected, deleted objects checked and disabled) through the same path `roster import` takes.

use std::path::Path;

use adapters::org::{add_org, OrgConfig, OrgSource};
use adapters::target::parse_server_state;
use engine::event::{DeletedAction, Mode, RunOptions, SelectionSpec};
use engine::store::Opening;
use engine::Store;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::run::{RunRequest, RunResult};

const TENANT: &str = include_str!("../../fixtures/demo/tenant.json");
const SERVER: &str = include_str!("../../fixtures/demo/server.json");
/// Marks a directory as a demo store that `roster demo` may wipe and rebuild.
const MARKER: &str = ".roster-demo";

/// Builds the demo store in `dir` (the context's store is ignored) and imports the demo tenant.
/// A `dir` that holds anything but an earlier demo store is refused.
pub fn run(ctx: &Context, dir: &Path) -> Result<(Box<dyn Store>, OrgConfig, RunResult)> {
    let io = |what: &str, e: std::io::Error| {
        Error::Adapters(adapters::Error::io(
            format!("cannot {what} {}", dir.display()),
            e,
        ))
    };
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty && !dir.join(MARKER).exists() {
            return Err(Error::bad_input(format!(
                "{} exists and is not a demo store; the demo starts from a fresh store: pass an empty or new --store DIR",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(|e| io("reset the demo store", e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io("create", e))?;
    let demo = Context {
        store_dir: dir.to_owned(),
        local_dir: dir.to_owned(),
        server: crate::context::Server::Embedded,
        scim_token_file: None,
        holder: ctx.holder.clone(),
        started_by: ctx.started_by.clone(),
        clock: ctx.clock.clone(),
        prompt: ctx.prompt.clone(),
        stats: ctx.stats.clone(),
        stop: ctx.stop.clone(),
    };
    let store = demo.open(Opening::CreateIfMissing)?.store;
    std::fs::write(
        dir.join(MARKER),
        "roster demo store; `roster demo` may delete and rebuild it\n",
    )
    .map_err(|e| io("write into", e))?;
    let tenant_path = dir.join("contoso-tenant.json");
    std::fs::write(&tenant_path, TENANT).map_err(|e| io("write into", e))?;
    let server = parse_server_state(SERVER.as_bytes(), "bundled demo server state")?;
    crate::server::load(
        &demo,
        Some(&*store),
        &server,
        std::path::Path::new("bundled demo server state"),
    )?;
    let loaded = adapters::fixture::parse_tenant(TENANT.as_bytes(), "bundled demo tenant")?;
    let org = OrgConfig {
        name: "contoso".into(),
        tenant_id: loaded.snapshot.tenant_id.clone(),
        source: OrgSource::Fixture { path: tenant_path },
        added_at: ctx.clock.now(),
        left_out: Vec::new(),
        sync: None,
    };
    add_org(&*store, &org)?;
    store.flush()?;
    let request = RunRequest {
        mode: Mode::Apply,
        selection: SelectionSpec {
            select_all: true,
            ..SelectionSpec::default()
        },
        options: RunOptions {
            check_deleted: true,
            on_deleted: DeletedAction::Disable,
            ..RunOptions::default()
        },
        started_by: ctx.started_by.clone(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full: false,
        every_entry: false,
    };
    let (org, result) = crate::runs::plan_or_import(&demo, &*store, None, "contoso", &request)?;
    Ok((store, org, result))
}
