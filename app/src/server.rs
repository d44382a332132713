//! The server's directory outside runs: load a server state (an administrative reset, not a
//! run), dump it, show one user with the imports that changed it.

use std::path::Path;

use adapters::target::{read_server_file, write_server_file};
use engine::model::{ServerState, ServerUser};
use engine::{EventStore, SledStore};

use crate::context::Context;
use crate::error::{Error, Result};

/// A server state file, read and checked (before any store is opened: bad input writes
/// nothing).
pub fn read_state(file: &Path) -> Result<ServerState> {
    Ok(read_server_file(file)?)
}

/// Replaces the target's directory (the server file, or the embedded server) with `state`.
pub fn load(ctx: &Context, store: Option<&SledStore>, state: &ServerState) -> Result<()> {
    match (&ctx.server_file, store) {
        (Some(target), _) => write_server_file(target, state).map_err(|e| {
            Error::Adapters(adapters::Error::io(
                format!("cannot write {}", target.display()),
                e,
            ))
        })?,
        (None, Some(store)) => {
            store.replace_server_state(state)?;
            store.flush()?;
        }
        (None, None) => unreachable!("the embedded server is loaded into an open store"),
    }
    Ok(())
}

/// The target's directory: the server file's, or the embedded server's.
pub fn state(ctx: &Context, store: Option<&SledStore>) -> Result<ServerState> {
    Ok(match (&ctx.server_file, store) {
        (Some(path), _) => read_server_file(path)?,
        (None, Some(store)) => store.server_state()?,
        (None, None) => unreachable!("the embedded server is read from an open store"),
    })
}

/// One server user and, when asked, every import that changed it.
pub struct Shown {
    /// `None` when the user is no longer on the server (deleted by an import).
    pub user: Option<ServerUser>,
    pub state: ServerState,
    pub history: Option<Vec<replay::history::HistoryItem>>,
}

pub fn show(
    ctx: &Context,
    store: Option<&SledStore>,
    login: &str,
    history: Option<&SledStore>,
) -> Result<Shown> {
    let state = state(ctx, store)?;
    let user = state.user(login).cloned();
    let history = match history {
        Some(log) => {
            let entra = user
                .as_ref()
                .and_then(|u| u.tenant_id.as_ref().zip(u.entra_id.as_ref()));
            Some(replay::history::user_history(log, login, entra)?)
        }
        None => None,
    };
    let known = user.is_some() || history.as_ref().is_some_and(|h| !h.is_empty());
    if !known {
        return Err(Error::bad_input(format!(
            "no server user with login {login:?}; `roster server dump` lists them"
        )));
    }
    Ok(Shown {
        user,
        state,
        history,
    })
}
