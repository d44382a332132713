//! The server's directory outside runs: load a server state (an administrative reset, not a
//! run), dump it, show one user with the imports that changed it.

use std::path::Path;

use adapters::target::{read_server_file, write_server_file};
use engine::event::{Change, Event, ServerEdited, ServerLoaded};
use engine::model::{DisabledBy, ServerOp, ServerState, ServerUser};
use engine::{RunId, Store};

use crate::context::{Context, Server};
use crate::error::{Error, Result};

/// A server state file, read and checked (before any store is opened: bad input writes
/// nothing).
pub fn read_state(file: &Path) -> Result<ServerState> {
    Ok(read_server_file(file)?)
}

/// Replaces the target's directory (the server file, or the embedded server) with `state`,
/// read from `file`. The embedded server's load is recorded (`ServerLoaded`: who, the file,
/// the directory's digest), so that the log always says what the server holds. A SCIM
/// service is refused: it is changed by imports only, each recorded.
pub fn load(
    ctx: &Context,
    store: Option<&dyn Store>,
    state: &ServerState,
    file: &Path,
) -> Result<()> {
    match (&ctx.server, store) {
        (Server::File(target), _) => write_server_file(target, state).map_err(|e| {
            Error::Adapters(adapters::Error::io(
                format!("cannot write {}", target.display()),
                e,
            ))
        })?,
        (Server::Scim(url), _) => return Err(scim_refused("load", url)),
        (Server::Embedded, Some(store)) => {
            let event = Event::ServerLoaded(ServerLoaded {
                by: ctx.started_by.clone(),
                file: file.display().to_string(),
                users: u32::try_from(state.users().len()).unwrap_or(u32::MAX),
                groups: u32::try_from(state.groups().len()).unwrap_or(u32::MAX),
                server_digest: state.digest(),
            });
            let at = ctx.clock.now();
            let run = ctx.clock.new_run_id(at);
            store.load_server_state(state, Some((run, at, &event)))?;
            store.flush()?;
        }
        (Server::Embedded, None) => {
            unreachable!("the embedded server is loaded into an open store")
        }
    }
    Ok(())
}

/// `server load|enable|disable` against a SCIM service: refused, nothing sent.
fn scim_refused(verb: &str, url: &str) -> Error {
    Error::bad_input(format!(
        "server {verb} does not write to a SCIM service ({}): roster changes it only by imports, each recorded; leave out --scim to {verb} the embedded server",
        adapters::address::shown(url)
    ))
}

/// Whether the `server` commands need the store for the server (the embedded one).
pub fn in_store(ctx: &Context) -> bool {
    ctx.server == Server::Embedded
}

/// The target's directory: the server file's, the SCIM service's, or the embedded server's.
pub fn state(ctx: &Context, store: Option<&dyn Store>) -> Result<ServerState> {
    Ok(match (&ctx.server, store) {
        (Server::File(path), _) => read_server_file(path)?,
        (Server::Scim(_), _) => match ctx.outside_target()? {
            Some(target) => target.load()?,
            None => unreachable!("a SCIM server opens as a target"),
        },
        (Server::Embedded, Some(store)) => store.server_state()?,
        (Server::Embedded, None) => unreachable!("the embedded server is read from an open store"),
    })
}

/// The server as a run of `org` against it would decide from — its state without what it
/// does not keep — and what it does not keep (a SCIM service: what it says, and what the
/// org's earlier runs against it saw): what a preview decides with, as the run will.
pub fn state_for(
    ctx: &Context,
    store: &dyn Store,
    org: &adapters::org::OrgConfig,
) -> Result<(ServerState, Vec<String>)> {
    match ctx.outside_target()? {
        Some(mut target) if matches!(ctx.server, Server::Scim(_)) => {
            let last = crate::history::last_completed_run(store, org, &target.info())?;
            target.inherit(&crate::history::unkept_seen(store, last.as_ref())?);
            let state = target.load()?;
            Ok((state, target.info().unkept().to_vec()))
        }
        _ => Ok((state(ctx, Some(store))?, Vec::new())),
    }
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
    store: Option<&dyn Store>,
    login: &str,
    history: Option<&dyn Store>,
) -> Result<Shown> {
    // The embedded server is read as far as the page needs: the user and every group.
    let state = match (&ctx.server, store) {
        (Server::Embedded, Some(store)) => store.server_user_and_groups(login)?,
        _ => state(ctx, store)?,
    };
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

/// What `server enable|disable` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edited {
    /// The change, recorded under a run id of its own.
    Recorded { run: RunId, login: String },
    /// The user already was so: nothing changed, nothing recorded.
    Already { login: String },
}

/// Refuses `server enable|disable` with `--server-file` or `--scim`: a server file is the
/// admin's own to edit, a SCIM service is changed by imports; only the embedded server's
/// changes are recorded with it.
pub fn embedded_only(ctx: &Context, verb: &str) -> Result<()> {
    match &ctx.server {
        Server::File(file) => Err(Error::bad_input(format!(
            "server {verb} changes the embedded server; {} is a server file of yours to edit (leave out --server-file)",
            file.display()
        ))),
        Server::Scim(url) => Err(scim_refused(verb, url)),
        Server::Embedded => Ok(()),
    }
}

/// Enables or disables a user of the embedded server, outside any import: the change and the
/// `ServerEdited` event recording it (who, what, the op) are one atomic batch, flushed. An
/// import later decides from the server as it then is; Entra is not asked.
pub fn set_enabled(ctx: &Context, store: &dyn Store, login: &str, enabled: bool) -> Result<Edited> {
    let verb = if enabled { "enable" } else { "disable" };
    embedded_only(ctx, verb)?;
    let mut state = store.server_state()?;
    let Some(user) = state.user(login) else {
        return Err(Error::bad_input(format!(
            "no server user with login {login:?}; `roster server dump` lists them"
        )));
    };
    let login = user.login.clone();
    // A disable is kept with who did it, so that an import does not enable the account again
    // when Entra ID has it enabled; an enable lets Entra's state rule again.
    let held = (!enabled).then_some(DisabledBy::Administrator);
    if user.enabled == enabled && user.disabled_by == held {
        return Ok(Edited::Already {
            login: login.to_string(),
        });
    }
    let mut changes = Vec::new();
    if user.enabled != enabled {
        changes.push(Change {
            field: "enabled".into(),
            from: (!enabled).into(),
            to: enabled.into(),
        });
    }
    if user.disabled_by != held {
        let by =
            |d: Option<DisabledBy>| d.map_or(serde_json::Value::Null, |_| "administrator".into());
        changes.push(Change {
            field: "disabledBy".into(),
            from: by(user.disabled_by),
            to: by(held),
        });
    }
    let op = ServerOp::PutUser {
        previous_login: None,
        user: std::sync::Arc::new(ServerUser {
            enabled,
            disabled_by: held,
            ..user.clone()
        }),
    };
    let writes = state.apply(&op);
    let event = Event::ServerEdited(ServerEdited {
        by: ctx.started_by.clone(),
        action: format!("{verb} {login}"),
        op,
        changes,
        server_digest: Some(state.digest()),
    });
    let (run, _) = crate::recover::record_alone(store, ctx.clock.as_ref(), event, &writes)?;
    Ok(Edited::Recorded {
        run,
        login: login.to_string(),
    })
}
