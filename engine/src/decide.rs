//! One run decided, the same way for an import and for its replay: the admin's selection and
//! options become *choices* — the selected entries, and an action for each deleted object —
//! and the choices become a *plan*, refused when a reviewed dry run went stale. A run records
//! the choices before its outcomes; replay chooses again from the recorded inputs, to compare,
//! and plans from the recorded choices, to compare the outcomes.
//!
//! Pure, like the planner: what was read goes in, decisions come out.

use crate::compare::{compare_entries, EntryDifference};
use crate::difference::Prepared;
use crate::event::{
    ActionChosen, Baseline, EntryOutcome, ObjectDeleted, RunOptions, SelectionSpec,
};
use crate::ids::{RunId, TenantId};
use crate::model::{ServerState, TenantSnapshot};
use crate::plan::{
    choose_deleted_actions, find_deleted, plan, Plan, PlanInput, Refusal, UnknownDeletedObject,
};
use crate::search::{resolve_selection, EmptySelection, SearchView, SelectionError};

/// What a run decides from: the tenant and the server as read, and the admin's options.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub tenant: &'a TenantId,
    pub snapshot: &'a TenantSnapshot,
    pub server: &'a ServerState,
    pub options: &'a RunOptions,
    /// What the org's last complete read listed, if known (the shrink guard).
    pub baseline: Option<&'a Baseline>,
    /// Whether the server keeps a group's description and type (see [`PlanInput`]).
    pub group_details: bool,
    /// The optional user attributes the server does not keep (see [`PlanInput`]).
    pub unkept: &'a [String],
    /// The decision rules (see [`PlanInput`]).
    pub rules: u32,
}

/// The choose step: the deleted objects found, and every choice made — or why the admin's
/// selection or actions cannot be resolved (the deleted objects are found either way: replay
/// compares them even when the choices no longer resolve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub deleted: Vec<ObjectDeleted>,
    pub choices: Result<Vec<ActionChosen>, ChoiceError>,
}

/// Why the admin's selection or actions cannot be resolved: bad input, nothing was decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error(transparent)]
    Selection(#[from] SelectionError),
    #[error(transparent)]
    UnknownDeleted(#[from] UnknownDeletedObject),
}

/// A dry run being applied (`roster apply`): the import goes ahead only if it decides exactly
/// these entries.
#[derive(Debug, Clone, Copy)]
pub struct Reviewed<'a> {
    pub run: RunId,
    pub entries: &'a [EntryOutcome],
}

/// The decide step: the plan, and — when a reviewed dry run was given — how today's decisions
/// differ from it (any difference refuses the plan as stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub plan: Plan,
    pub stale: Vec<EntryDifference>,
}

/// Resolves the selection (as the wizard's search page does) and finds the deleted objects
/// (with `check_deleted`) with the action chosen for each.
pub fn choose(inputs: &Inputs<'_>, selection: &SelectionSpec) -> Chosen {
    let options = inputs.options;
    let selected = {
        // The view is only for resolving the selection; the planner needs the memory after.
        let mut view = SearchView::from_snapshot(inputs.snapshot);
        let empty = if options.check_deleted {
            EmptySelection::Allowed
        } else {
            EmptySelection::Refused
        };
        resolve_selection(&mut view, selection, empty)
    };
    // What the org leaves out for good is neither chosen nor handled as deleted.
    let left_out = |id: &crate::ids::ObjectId| options.leave_out.contains(id);
    let deleted = if options.check_deleted {
        let mut found = find_deleted(inputs.tenant, inputs.snapshot, inputs.server);
        found.retain(|d| !left_out(&d.id));
        found
    } else {
        Vec::new()
    };
    let selected = selected.and_then(|mut s| {
        let before = s.len();
        s.retain(|c| !left_out(&c.id));
        if before > 0 && s.is_empty() && !options.check_deleted {
            return Err(SelectionError::AllLeftOut { selected: before });
        }
        Ok(s)
    });
    let choices = selected.map_err(ChoiceError::from).and_then(|selected| {
        let actions = choose_deleted_actions(&deleted, options.on_deleted, &options.actions)?;
        Ok(selected.into_iter().chain(actions).collect())
    });
    Chosen { deleted, choices }
}

/// Prepares to plan the run by difference (see [`crate::difference`]): what it needs before it
/// knows what changed since its base.
pub fn prepare_by_difference<'a>(
    inputs: &Inputs<'a>,
    deleted: &'a [ObjectDeleted],
    choices: &'a [ActionChosen],
) -> Prepared<'a> {
    crate::difference::prepare(plan_input(inputs, deleted, choices))
}

fn plan_input<'a>(
    inputs: &Inputs<'a>,
    deleted: &'a [ObjectDeleted],
    choices: &'a [ActionChosen],
) -> PlanInput<'a> {
    PlanInput {
        tenant: inputs.tenant,
        snapshot: inputs.snapshot,
        server: inputs.server,
        deleted,
        choices,
        options: inputs.options,
        baseline: inputs.baseline,
        group_details: inputs.group_details,
        unkept: inputs.unkept,
        rules: inputs.rules,
    }
}

/// Plans the run from its deleted objects and choices; a reviewed dry run that the plan no
/// longer matches refuses it (`Refusal::StalePlan`), whatever else the plan says.
pub fn decide(
    inputs: &Inputs<'_>,
    deleted: &[ObjectDeleted],
    choices: &[ActionChosen],
    reviewed: Option<Reviewed<'_>>,
) -> Decided {
    let mut plan = plan(plan_input(inputs, deleted, choices));
    let stale = match reviewed {
        Some(r) => compare_entries(r.entries, &plan.entries),
        None => Vec::new(),
    };
    if let (Some(r), false) = (reviewed, stale.is_empty()) {
        plan.refusal = Some(Refusal::StalePlan {
            reviewed: r.run,
            differences: stale.len() as u32,
        });
    }
    Decided { plan, stale }
}
