//! The wizard's session: an org's tenant and the server read once, so that the search page,
//! the deleted-objects page and the dry-run preview answer from memory — and write nothing.
//! The import itself is an ordinary run ([`crate::runs::plan_or_import`]), which reads both
//! again: what it records is exactly what `roster import` with the same selection records.

use engine::decide::{self, Inputs};
use engine::event::{EntryOutcome, ObjectDeleted, RunOptions, SelectionSpec};
use engine::model::{ServerState, TenantSnapshot};
use engine::plan::Refusal;
use engine::search::SearchView;
use engine::Store;

use adapters::org::OrgConfig;

use crate::context::Context;
use crate::error::{Error, Result};

pub struct Session {
    pub org: OrgConfig,
    /// Whether the server keeps a group's description and type (a SCIM service does not).
    pub group_details: bool,
    /// The optional user attributes the server does not keep
    /// ([`crate::server::state_for`]).
    pub unkept: Vec<String>,
    pub snapshot: TenantSnapshot,
    pub server: ServerState,
    /// Non-fatal oddities met while reading the tenant.
    pub problems: Vec<String>,
}

/// What a dry run of a selection would do, decided in memory (nothing recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub entries: Vec<EntryOutcome>,
    pub refusal: Option<Refusal>,
}

/// Reads `org`'s tenant and the server (the server from `store`, which the caller may close
/// before the tenant is read: a live tenant can take a while).
pub fn open(ctx: &Context, store: &dyn Store, org: &str) -> Result<Session> {
    let org = crate::orgs::get(store, org)?;
    let (server, unkept) = crate::server::state_for(ctx, store, &org)?;
    read(ctx, org, server, unkept)
}

/// Reads `org`'s tenant; `server` is the server as read before, without the optional user
/// attributes it does not keep (`unkept`).
pub fn read(
    ctx: &Context,
    org: OrgConfig,
    server: ServerState,
    unkept: Vec<String>,
) -> Result<Session> {
    let loaded = org.source(&ctx.source_env())?.read()?;
    if loaded.snapshot.tenant_id != org.tenant_id {
        return Err(Error::bad_input(format!(
            "the tenant read is {}, not org {}'s tenant {}",
            loaded.snapshot.tenant_id, org.name, org.tenant_id
        )));
    }
    Ok(Session {
        group_details: ctx.keeps_group_details(),
        unkept,
        org,
        snapshot: loaded.snapshot,
        server,
        problems: loaded.problems,
    })
}

impl Session {
    /// Every user and group, as the search page lists them.
    pub fn search_view(&self) -> SearchView {
        SearchView::from_snapshot(&self.snapshot)
    }

    fn inputs<'a>(&'a self, options: &'a RunOptions) -> Inputs<'a> {
        Inputs {
            tenant: &self.org.tenant_id,
            snapshot: &self.snapshot,
            server: &self.server,
            options,
            baseline: None,
            group_details: self.group_details,
            unkept: &self.unkept,
            rules: engine::event::DECISION_RULES,
        }
    }

    /// The objects deleted in Entra ID that still exist on the server.
    /// (What the org leaves out is not among them.)
    pub fn deleted(&self) -> Vec<ObjectDeleted> {
        let mut found =
            engine::plan::find_deleted(&self.org.tenant_id, &self.snapshot, &self.server);
        let left_out = self.org.leave_out();
        found.retain(|d| !left_out.contains(&d.id));
        found
    }

    /// What importing `selection` with `options` would do, decided as a run decides it.
    pub fn preview(&self, selection: &SelectionSpec, options: &RunOptions) -> Result<Preview> {
        // What the org leaves out, as the run will (`runs::plan_or_import`).
        let options = RunOptions {
            leave_out: self.org.leave_out(),
            ..options.clone()
        };
        let inputs = self.inputs(&options);
        let chosen = decide::choose(&inputs, selection);
        let choices = chosen
            .choices
            .map_err(|e| Error::bad_input(e.to_string()))?;
        let decided = decide::decide(&inputs, &chosen.deleted, &choices, None);
        Ok(Preview {
            entries: decided.plan.entries,
            refusal: decided.plan.refusal,
        })
    }
}
