//! `roster server show LOGIN --history`: every run that changed a server user, with the
//! changes, read from the `Imported` events. A user is followed across renames by its Entra
//! object id; a user never linked to Entra is found by its login.

use chrono::{DateTime, Utc};
use serde::Serialize;

use engine::event::{Change, Event, EventKind, Mode, Outcome};
use engine::ids::fold_case;
use engine::model::{Kind, ServerOp};
use engine::store::EventStore;
use engine::{ObjectId, RunId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub run: RunId,
    pub time: DateTime<Utc>,
    pub org: String,
    pub started_by: String,
    pub outcome: Outcome,
    pub detail: String,
    pub changes: Vec<Change>,
}

fn op_mentions(op: &ServerOp, login: &str) -> bool {
    let is = |l: &str| fold_case(l) == login;
    match op {
        ServerOp::PutUser {
            previous_login,
            user,
        } => is(&user.login) || previous_login.as_deref().is_some_and(is),
        ServerOp::SetUserEnabled { login, .. } | ServerOp::RemoveUser { login } => is(login),
        _ => false,
    }
}

/// Changes made to the server user `login` (linked to `entra`, if it is), oldest first.
pub fn user_history(
    store: &dyn EventStore,
    login: &str,
    entra: Option<(&TenantId, &ObjectId)>,
) -> Result<Vec<HistoryItem>, engine::StoreError> {
    let login = fold_case(login);
    let mut items = Vec::new();
    for run in store.runs()? {
        let events = store.read_run_where(run, &|k| {
            matches!(
                k,
                EventKind::RunStarted | EventKind::Imported | EventKind::ServerEdited
            )
        })?;
        // An administrator's change outside any import (`server enable|disable`).
        if let Some((env, Event::ServerEdited(e))) = events.first().map(|e| (e, &e.event)) {
            if op_mentions(&e.op, &login) {
                items.push(HistoryItem {
                    run,
                    time: env.time,
                    org: String::new(),
                    started_by: e.by.clone(),
                    outcome: Outcome::Updated,
                    detail: format!("an administrator's action: roster server {}", e.action),
                    changes: e.changes.clone(),
                });
            }
            continue;
        }
        let Some(Event::RunStarted(started)) = events.first().map(|e| &e.event) else {
            continue;
        };
        if started.mode != Mode::Apply {
            continue;
        }
        for env in &events {
            let Event::Imported(e) = &env.event else {
                continue;
            };
            if e.kind != Kind::User {
                continue;
            }
            let linked = entra.is_some_and(|(t, id)| *t == started.tenant_id && *id == e.id);
            let named = e.op.as_ref().is_some_and(|op| op_mentions(op, &login));
            if (linked || named) && e.op.is_some() {
                items.push(HistoryItem {
                    run,
                    time: env.time,
                    org: started.org.clone(),
                    started_by: started.started_by.clone(),
                    outcome: e.outcome,
                    detail: e.detail.clone(),
                    changes: e.changes.clone(),
                });
            }
        }
    }
    Ok(items)
}
