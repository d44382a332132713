//! `roster demo`: the main job in one command. It builds a fresh demo store, loads the bundled
//! server state, adds the bundled demo tenant as org `contoso`, runs a full import (every entry
//! selected, deleted objects checked and disabled) through the same path `roster import`
//! takes, and prints the report.

use std::path::PathBuf;

use anyhow::{Context, Result};

use adapters::clock::Clock;
use adapters::clock::SystemClock;
use adapters::org::{add_org, OrgConfig, OrgSource};
use adapters::target::{parse_server_state, EmbeddedTarget};
use app::run::{execute, RunRequest};
use engine::event::{DeletedAction, Mode, RunOptions, SelectionSpec};
use engine::store::Opening;
use engine::EventStore;

use crate::commands::{open_store, print_run, started_by, Ctx};
use crate::{Exit, UsageError};

const TENANT: &str = include_str!("../fixtures/demo/tenant.json");
const SERVER: &str = include_str!("../fixtures/demo/server.json");
/// Marks a directory as a demo store that `roster demo` may wipe and rebuild.
const MARKER: &str = ".roster-demo";

fn demo_dir(ctx: &Ctx) -> PathBuf {
    if std::env::args_os().any(|a| a == "--store") || std::env::var_os("ROSTER_STORE").is_some() {
        ctx.store_dir.clone()
    } else {
        dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("roster-demo")
    }
}

pub fn run(ctx: &Ctx) -> Result<Exit> {
    let dir = demo_dir(ctx);
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty && !dir.join(MARKER).exists() {
            return Err(UsageError(format!(
                "{} exists and is not a demo store; the demo starts from a fresh store: pass an empty or new --store DIR",
                dir.display()
            ))
            .into());
        }
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot reset the demo store {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let store = open_store(&dir, Opening::CreateIfMissing)?;
    std::fs::write(
        dir.join(MARKER),
        "roster demo store; `roster demo` may delete and rebuild it\n",
    )?;
    let tenant_path = dir.join("contoso-tenant.json");
    std::fs::write(&tenant_path, TENANT)?;

    let server = parse_server_state(SERVER.as_bytes(), "bundled demo server state")?;
    store.replace_server_state(&server)?;
    let loaded = adapters::fixture::parse_tenant(TENANT.as_bytes(), "bundled demo tenant")?;
    let org = OrgConfig {
        name: "contoso".into(),
        tenant_id: loaded.snapshot.tenant_id.clone(),
        source: OrgSource::Fixture { path: tenant_path },
        added_at: SystemClock.now(),
    };
    add_org(&store, &org)?;
    store.flush()?;

    let req = RunRequest {
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
        started_by: started_by(),
        applied_from: None,
        reviewed: None,
    };
    let mut target = EmbeddedTarget::new(&store);
    let env = ctx.source_env();
    let source = org.source(&env)?;
    let result = crate::live::with_progress(&env.stats, crate::live::is_live(&org), || {
        execute(
            &store,
            &org,
            source.as_ref(),
            &mut target,
            &req,
            &SystemClock,
        )
    })?;
    let exit = print_run(ctx, &org.name, &result)?;
    eprintln!(
        "\nDemo store: {dir}\nExplore it: roster --store {dir} runs | report last | deleted last | server show AllanD@contoso.com",
        dir = dir.display()
    );
    // Conflicts are part of the demo data: the demo succeeded if the run completed.
    Ok(if exit == Exit::Problems {
        Exit::Ok
    } else {
        exit
    })
}
