//! The server's directory outside runs: `server load|dump|show`.

use anyhow::Result;

use crate::cli::ServerCommand;
use crate::context::Ctx;
use crate::render::{self, out, out_json, say};
use crate::Exit;

pub fn server(ctx: &Ctx, c: ServerCommand) -> Result<Exit> {
    match c {
        ServerCommand::Load { file } => {
            let state = app::server::read_state(&file)?;
            let store = match app::server::in_store(&ctx.app) {
                false => None,
                true => Some(ctx.create_store()?),
            };
            app::server::load(&ctx.app, store.as_deref(), &state, &file)?;
            say(&render::server_loaded(&state, &file));
            Ok(Exit::Ok)
        }
        ServerCommand::Enable { login } => set_enabled(ctx, &login, true),
        ServerCommand::Disable { login } => set_enabled(ctx, &login, false),
        ServerCommand::Dump => {
            let store = embedded(ctx)?;
            out_json(&app::server::state(&ctx.app, store.as_deref())?)?;
            Ok(Exit::Ok)
        }
        ServerCommand::Show { login, history } => {
            let store = embedded(ctx)?;
            let log = if history {
                match &store {
                    Some(_) => None,
                    None => Some(ctx.read_store()?),
                }
            } else {
                None
            };
            let history_from = if history {
                log.as_deref().or(store.as_deref())
            } else {
                None
            };
            let shown = app::server::show(&ctx.app, store.as_deref(), &login, history_from)?;
            if ctx.json {
                out_json(&render::shown_json(&shown))?;
            } else {
                out(&render::shown(&shown, &login))?;
            }
            Ok(Exit::Ok)
        }
    }
}

fn set_enabled(ctx: &Ctx, login: &str, enabled: bool) -> Result<Exit> {
    // Refused before a store is opened.
    app::server::embedded_only(&ctx.app, if enabled { "enable" } else { "disable" })?;
    let store = ctx.open_store()?;
    let edited = app::server::set_enabled(&ctx.app, &*store, login, enabled)?;
    say(&render::edited(&edited, enabled));
    Ok(Exit::Ok)
}

/// The store, when the embedded server is the target (no `--server-file` or `--scim`).
fn embedded(ctx: &Ctx) -> Result<Option<Box<dyn engine::Store>>> {
    Ok(match app::server::in_store(&ctx.app) {
        false => None,
        true => Some(ctx.read_store()?),
    })
}
