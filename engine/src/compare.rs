//! Comparing two lists of entry outcomes: what replay reports when a run's recorded decisions
//! differ from the planner's, and what `apply` shows when a reviewed plan went stale.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::event::{Change, EntryOutcome};
use crate::ids::ObjectId;
use crate::model::Kind;

/// One entry whose recorded and replayed outcomes differ; `None` when one side has no entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryDifference {
    pub kind: Kind,
    pub id: ObjectId,
    pub name: String,
    pub recorded: Option<String>,
    pub replayed: Option<String>,
}

/// The entry in one line: outcome, detail and changes (not the server operation).
pub fn describe(e: &EntryOutcome) -> String {
    let mut s = format!("{}: {}", e.outcome.as_str(), e.detail);
    if !e.changes.is_empty() {
        let changes: Vec<String> = e.changes.iter().map(describe_change).collect();
        s.push_str(&format!(" [{}]", changes.join("; ")));
    }
    s
}

/// Two entries described by what differs between them: their one-line descriptions, or their
/// server operations when those are all that differ.
fn describe_pair(a: &EntryOutcome, b: &EntryOutcome) -> (String, String) {
    let (x, y) = (describe(a), describe(b));
    if x != y || a.reason != b.reason {
        let reason = |e: &EntryOutcome| {
            e.reason
                .map(|r| format!(" (reason {r:?})"))
                .unwrap_or_default()
        };
        if x == y {
            return (format!("{x}{}", reason(a)), format!("{y}{}", reason(b)));
        }
        return (x, y);
    }
    let op = |e: &EntryOutcome| {
        format!(
            "operation {}",
            serde_json::to_string(&e.op).unwrap_or_default()
        )
    };
    (op(a), op(b))
}

fn describe_change(c: &Change) -> String {
    match joined_and_left(c) {
        Some((joined, left)) => {
            let text = |v: &Value| v.as_str().map_or(v.to_string(), str::to_owned);
            let mut parts = Vec::new();
            if !joined.is_empty() {
                let shown: Vec<String> = joined.iter().map(|v| text(v)).collect();
                parts.push(format!("+{} ({})", joined.len(), some_of(&shown, 3)));
            }
            if !left.is_empty() {
                let shown: Vec<String> = left.iter().map(|v| text(v)).collect();
                parts.push(format!("-{} ({})", left.len(), some_of(&shown, 3)));
            }
            format!("{}: {}", c.field, parts.join(", "))
        }
        None => format!("{}: {} -> {}", c.field, c.from, c.to),
    }
}

/// For a change of a list (a group's members, which are long): what joined and what left, in
/// order. `None` for any other change. Each list is looked up in a set of the other: a group
/// can list a whole tenant, and one member more must not cost its size squared.
pub fn joined_and_left(c: &Change) -> Option<(Vec<&Value>, Vec<&Value>)> {
    let (Value::Array(from), Value::Array(to)) = (&c.from, &c.to) else {
        return None;
    };
    let (was, is): (HashSet<_>, HashSet<_>) = (
        from.iter().map(text_key).collect(),
        to.iter().map(text_key).collect(),
    );
    Some((
        to.iter().filter(|v| !was.contains(&text_key(v))).collect(),
        from.iter().filter(|v| !is.contains(&text_key(v))).collect(),
    ))
}

/// A JSON value by its text, to compare and look up: a string as it is, anything else as JSON
/// (told apart by the flag).
fn text_key(v: &Value) -> (bool, std::borrow::Cow<'_, str>) {
    match v {
        Value::String(s) => (true, std::borrow::Cow::Borrowed(s.as_str())),
        other => (false, std::borrow::Cow::Owned(other.to_string())),
    }
}

/// The first `shown` of `items`, and how many more there are: `a, b and 3 more`.
pub fn some_of(items: &[String], shown: usize) -> String {
    let first = items[..items.len().min(shown)].join(", ");
    match items.len().saturating_sub(shown) {
        0 => first,
        more => format!("{first} and {more} more"),
    }
}

/// Differences between two entry lists, matched by (kind, id). If every entry matches but the
/// order differs (operations apply in order), that is one difference too.
pub fn compare_entries(a: &[EntryOutcome], b: &[EntryOutcome]) -> Vec<EntryDifference> {
    if a == b {
        return Vec::new();
    }
    let key = |e: &EntryOutcome| (e.kind, e.id.clone());
    let left: BTreeMap<_, &EntryOutcome> = a.iter().map(|e| (key(e), e)).collect();
    let right: BTreeMap<_, &EntryOutcome> = b.iter().map(|e| (key(e), e)).collect();
    let mut out = Vec::new();
    // In the order of the first list, then what only the second has.
    for e in a
        .iter()
        .chain(b.iter().filter(|e| !left.contains_key(&key(e))))
    {
        let (l, r) = (left.get(&key(e)), right.get(&key(e)));
        if l != r {
            let (recorded, replayed) = match (l, r) {
                (Some(l), Some(r)) => {
                    let (x, y) = describe_pair(l, r);
                    (Some(x), Some(y))
                }
                _ => (l.map(|x| describe(x)), r.map(|x| describe(x))),
            };
            out.push(EntryDifference {
                kind: e.kind,
                id: e.id.clone(),
                name: e.name.clone(),
                recorded,
                replayed,
            });
        }
    }
    if out.is_empty() {
        let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
        let e = &a[first];
        out.push(EntryDifference {
            kind: e.kind,
            id: e.id.clone(),
            name: e.name.clone(),
            recorded: Some(format!("entry {} of {}", first + 1, a.len())),
            replayed: b
                .iter()
                .position(|x| key(x) == key(e))
                .map(|p| format!("entry {} of {}", p + 1, b.len())),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(from: Value, to: Value) -> Change {
        Change {
            field: "members".into(),
            from,
            to,
        }
    }

    #[test]
    fn what_joined_and_left_a_list_keeps_each_side_in_order() {
        let c = members(
            json!(["a", "b", "c", "1", 2, {"x": 1}]),
            json!(["d", "c", "a", 1, 2, {"x": 1}, "e"]),
        );
        let (joined, left) = joined_and_left(&c).unwrap();
        assert_eq!(joined, vec![&json!("d"), &json!(1), &json!("e")]);
        assert_eq!(left, vec![&json!("b"), &json!("1")]);
        assert!(joined_and_left(&members(json!("a"), json!(["a"]))).is_none());
        // A whole tenant's worth: one member left, one joined.
        let all: Vec<String> = (0..50_000).map(|i| format!("user{i}@x.com")).collect();
        let mut now = all[1..].to_vec();
        now.push("new@x.com".into());
        let change = members(json!(all), json!(now));
        let (joined, left) = joined_and_left(&change).unwrap();
        assert_eq!(joined, vec![&json!("new@x.com")]);
        assert_eq!(left, vec![&json!("user0@x.com")]);
    }
}
