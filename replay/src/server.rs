//! What the log says the embedded server holds: the directory the last run against it read,
//! with that run's changes made, then every administrator's change after it — or, after a
//! `server load`, the digest the load recorded. A restore checks the server a backup brings
//! against it, so that the server lines of a backup cannot say anything the log does not.

use engine::chain::{fold, Keep, Through};
use engine::event::{Event, RunStatus, TargetInfo};
use engine::model::{ServerOp, ServerState};
use engine::{RunId, Store, StoreError};

/// What the log says the embedded server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derived {
    /// The directory, record by record.
    State(ServerState),
    /// Its digest ([`ServerState::digest`]): it was loaded, or changed by an administrator
    /// since a load, and the log keeps digests of those.
    Digest(String),
    /// The log does not say: nothing it holds records the directory (a store loaded by a
    /// roster that did not record loads, with no run against it since), or an administrator's
    /// change recorded without a digest followed a load.
    Unknown,
}

impl Derived {
    /// Whether `server` is what the log says; `None` when the log does not say.
    pub fn matches(&self, server: &ServerState) -> Option<bool> {
        match self {
            Derived::State(s) => Some(s == server),
            Derived::Digest(d) => Some(*d == server.digest()),
            Derived::Unknown => None,
        }
    }

    /// The first record of `server` that is not what the log says, in words (escaped).
    pub fn first_difference(&self, server: &ServerState) -> Option<String> {
        let Derived::State(said) = self else {
            return (self.matches(server) == Some(false))
                .then(|| "its digest is not the one the log recorded".to_owned());
        };
        let shown = |k: &str| {
            engine::text::printable(k)
                .chars()
                .take(200)
                .collect::<String>()
        };
        for u in server.users() {
            match said.user(&u.login) {
                None => {
                    return Some(format!(
                        "user {}: not on the server the log says",
                        shown(&u.login)
                    ))
                }
                Some(s) if s != u => {
                    return Some(format!("user {}: not as the log says", shown(&u.login)))
                }
                _ => {}
            }
        }
        for g in server.groups() {
            match said.group(&g.name) {
                None => {
                    return Some(format!(
                        "group {}: not on the server the log says",
                        shown(&g.name)
                    ))
                }
                Some(s) if s != g => {
                    return Some(format!("group {}: not as the log says", shown(&g.name)))
                }
                _ => {}
            }
        }
        if let Some(u) = said.users().find(|u| server.user(&u.login).is_none()) {
            return Some(format!("user {}: missing", shown(&u.login)));
        }
        if let Some(g) = said.groups().find(|g| server.group(&g.name).is_none()) {
            return Some(format!("group {}: missing", shown(&g.name)));
        }
        None
    }
}

/// The first event of `run`.
fn first_event(
    store: &dyn Store,
    run: RunId,
) -> Result<Option<(Event, Option<Event>)>, StoreError> {
    let Some((first, last)) = store.run_ends(run)? else {
        return Ok(None);
    };
    let first = store.read_event(first)?.map(|e| e.event);
    let last = store.read_event(last)?.map(|e| e.event);
    Ok(first.map(|f| (f, last)))
}

/// Whether a run of the embedded server recorded the directory it read whole (its inputs
/// are complete): it finished, or was refused after reading, or was cut short after it had
/// started changing the server.
fn read_the_server(
    store: &dyn Store,
    run: RunId,
    last: Option<&Event>,
) -> Result<bool, StoreError> {
    Ok(match last {
        Some(Event::RunFinished(f)) => match f.status {
            RunStatus::Completed | RunStatus::Refused => true,
            RunStatus::Aborted => {
                let mut changed = false;
                store.visit_run(
                    run,
                    &|k| k == engine::event::EventKind::Imported,
                    &mut |_| changed = true,
                )?;
                changed
            }
        },
        _ => false,
    })
}

/// What the log says the embedded server holds now.
pub fn derive(store: &dyn Store) -> Result<Derived, crate::ReplayError> {
    // Back from the end of the log to the last event that said what the directory held;
    // the administrators' changes met on the way are made on it afterwards, oldest first.
    let mut edits: Vec<(ServerOp, Option<String>)> = Vec::new();
    let mut found = None;
    for run in store.runs()?.into_iter().rev() {
        let Some((first, last)) = first_event(store, run)? else {
            continue;
        };
        match first {
            Event::ServerEdited(e) => edits.push((e.op, e.server_digest)),
            Event::ServerLoaded(l) => {
                found = Some(Derived::Digest(l.server_digest));
                break;
            }
            Event::RunStarted(s)
                if s.target == TargetInfo::Embedded
                    && !s.source.fingerprint.is_empty()
                    && read_the_server(store, run, last.as_ref())? =>
            {
                let chain = fold(store, run, Through::Outcomes, Keep::Whole).map_err(|e| {
                    crate::ReplayError::Malformed {
                        run,
                        reason: e.to_string(),
                    }
                })?;
                found = Some(Derived::State(chain.server));
                break;
            }
            _ => {}
        }
    }
    let Some(mut derived) = found else {
        return Ok(Derived::Unknown);
    };
    for (op, digest) in edits.into_iter().rev() {
        derived = match (derived, digest) {
            (Derived::State(mut s), _) => {
                s.apply_quietly(&op);
                Derived::State(s)
            }
            (_, Some(d)) => Derived::Digest(d),
            (_, None) => Derived::Unknown,
        };
    }
    Ok(derived)
}
