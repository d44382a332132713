//! `roster diff RUN_A RUN_B`: what changed between two imports of the same org — objects that
//! appeared in (or were restored to), disappeared from, or changed in Entra ID, and entries
//! whose outcome differs in meaning (not merely settled by the first run's change).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use engine::event::EntryOutcome;
use engine::model::Kind;
use engine::projection::{Report, RunInputs};
use engine::store::EventStore;
use engine::{ObjectId, RunId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub kind: Kind,
    pub id: ObjectId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub a: Value,
    pub b: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeChange {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunDiff {
    pub a: RunId,
    pub b: RunId,
    pub org: String,
    pub appeared: Vec<ObjectRef>,
    /// In A's recycle bin, listed again in B: restored in Entra ID.
    pub restored: Vec<ObjectRef>,
    pub disappeared: Vec<ObjectRef>,
    pub changed: Vec<Changed>,
    /// Outcomes whose meaning differs; not those A's change settled (below).
    pub outcomes: Vec<OutcomeChange>,
    /// Entries A changed on the server that B found as A left them (added, updated or
    /// disabled → unchanged; deleted → no longer there): counted, not listed.
    pub settled: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("run {0} is not in the log")]
    NoSuchRun(RunId),
    #[error("runs {a} and {b} are of different orgs ({org_a} and {org_b}); diff compares imports of one org")]
    DifferentOrgs {
        a: RunId,
        b: RunId,
        org_a: String,
        org_b: String,
    },
    #[error("run {run}: {reason}")]
    Malformed { run: RunId, reason: String },
    #[error(transparent)]
    Store(#[from] engine::StoreError),
}

/// Every object a run saw in Entra ID, as JSON attributes, keyed by kind and id.
fn objects(inputs: &RunInputs) -> BTreeMap<(Kind, ObjectId), (String, Value)> {
    let mut out = BTreeMap::new();
    for u in &inputs.snapshot.users {
        out.insert(
            (Kind::User, u.id.clone()),
            (
                u.name().to_owned(),
                serde_json::to_value(u).unwrap_or_default(),
            ),
        );
    }
    for g in &inputs.snapshot.groups {
        let mut value = serde_json::to_value(g).unwrap_or_default();
        // Members by name: ids mean nothing to a reader.
        let mut names: Vec<String> = g
            .member_users
            .iter()
            .map(|id| {
                inputs
                    .snapshot
                    .user(id)
                    .map_or_else(|| id.to_string(), |u| u.name().to_owned())
            })
            .collect();
        names.sort();
        value["memberUsers"] = names.into();
        out.insert((Kind::Group, g.id.clone()), (g.name().to_owned(), value));
    }
    out
}

fn field_changes(a: &Value, b: &Value) -> Vec<FieldChange> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            a: a.get(k).cloned().unwrap_or(Value::Null),
            b: b.get(k).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

fn outcome_line(e: &EntryOutcome) -> String {
    if e.detail.is_empty() {
        e.outcome.as_str().to_owned()
    } else {
        format!("{}: {}", e.outcome.as_str(), e.detail)
    }
}

pub fn diff_runs(store: &dyn EventStore, a: RunId, b: RunId) -> Result<RunDiff, DiffError> {
    // Complete inputs and every entry, for incremental runs too (rebuilt from their chain).
    let load = |run: RunId| -> Result<(RunInputs, Report), DiffError> {
        crate::rebuild::inputs_and_report(store, run).map_err(|e| match e {
            crate::rebuild::RebuildError::NoSuchRun(r) => DiffError::NoSuchRun(r),
            crate::rebuild::RebuildError::Store(s) => DiffError::Store(s),
            other => DiffError::Malformed {
                run,
                reason: other.to_string(),
            },
        })
    };
    let (ia, ra) = load(a)?;
    let (ib, rb) = load(b)?;
    if ia.started.org != ib.started.org {
        return Err(DiffError::DifferentOrgs {
            a,
            b,
            org_a: ia.started.org,
            org_b: ib.started.org,
        });
    }
    let (oa, ob) = (objects(&ia), objects(&ib));
    let reference = |(kind, id): &(Kind, ObjectId), name: &str| ObjectRef {
        kind: *kind,
        id: id.clone(),
        name: name.to_owned(),
    };
    let by_name = |mut v: Vec<ObjectRef>| {
        v.sort_by_key(|o| (o.kind, o.name.to_lowercase()));
        v
    };
    // Listed in B, not in A: restored if A found it in a recycle bin, else new.
    let binned_a: std::collections::HashSet<(Kind, &ObjectId)> = (ia.snapshot.deleted_users.iter())
        .map(|d| (Kind::User, &d.id))
        .chain(
            ia.snapshot
                .deleted_groups
                .iter()
                .map(|d| (Kind::Group, &d.id)),
        )
        .collect();
    let in_bin_a = |(kind, id): &(Kind, ObjectId)| binned_a.contains(&(*kind, id));
    let mut restored = Vec::new();
    let mut appeared = Vec::new();
    for (k, (n, _)) in ob.iter().filter(|(k, _)| !oa.contains_key(*k)) {
        if in_bin_a(k) {
            restored.push(reference(k, n));
        } else {
            appeared.push(reference(k, n));
        }
    }
    let disappeared = oa
        .iter()
        .filter(|(k, _)| !ob.contains_key(*k))
        .map(|(k, (n, _))| reference(k, n))
        .collect();
    let mut changed: Vec<Changed> = oa
        .iter()
        .filter_map(|(k, (_, va))| {
            let (name, vb) = ob.get(k)?;
            let fields = field_changes(va, vb);
            (!fields.is_empty()).then(|| Changed {
                object: reference(k, name),
                fields,
            })
        })
        .collect();
    let key = |e: &EntryOutcome| (e.kind, e.id.clone());
    let ea: BTreeMap<_, &EntryOutcome> = ra.entries.iter().map(|e| (key(e), e)).collect();
    let eb: BTreeMap<_, &EntryOutcome> = rb.entries.iter().map(|e| (key(e), e)).collect();
    let mut keys: Vec<&(Kind, ObjectId)> = ea.keys().chain(eb.keys()).collect();
    keys.sort();
    keys.dedup();
    let name_of = |k: &(Kind, ObjectId)| {
        ea.get(k)
            .or(eb.get(k))
            .map(|e| e.name.to_lowercase())
            .unwrap_or_default()
    };
    keys.sort_by_key(|k| (k.0, name_of(k)));
    let mut settled = 0;
    let outcomes = keys
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (ea.get(k), eb.get(k));
            let same = matches!((x, y), (Some(x), Some(y)) if x.outcome == y.outcome && x.changes == y.changes);
            if same {
                return None;
            }
            if x.is_some_and(|x| settles(x, y.copied())) {
                settled += 1;
                return None;
            }
            let name = x.or(y).map(|e| e.name.as_str()).unwrap_or_default();
            Some(OutcomeChange { object: reference(k, name), a: x.map(|e| outcome_line(e)), b: y.map(|e| outcome_line(e)) })
        })
        .collect();
    changed.sort_by_key(|c| (c.object.kind, c.object.name.to_lowercase()));
    Ok(RunDiff {
        a,
        b,
        org: ia.started.org,
        appeared: by_name(appeared),
        restored: by_name(restored),
        disappeared: by_name(disappeared),
        changed,
        outcomes,
        settled,
    })
}

/// Whether B's outcome for an entry is only the consequence of A's change: what A added,
/// updated or disabled is unchanged in B; what A deleted is no longer an entry.
fn settles(a: &EntryOutcome, b: Option<&EntryOutcome>) -> bool {
    use engine::event::Outcome::*;
    matches!(
        (a.outcome, b.map(|b| b.outcome)),
        (Added | Updated | Disabled, Some(Unchanged)) | (Deleted, None)
    )
}
