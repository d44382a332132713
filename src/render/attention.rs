//! What needs the admin's attention: how a run's conflicts and failures stand (new, reported
//! before, acknowledged), `roster conflict list|ack|unack`, and what an org leaves out.

use adapters::org::LeftOut;
use app::attention::{Ack, Acked, Attention, LeftOutChange, OrgProblems, Standing};
use engine::event::{EntryOutcome, Summary};
use engine::RunId;

use super::{cell, count, table, unwrapped};

/// How an acknowledgement reads after an entry's detail and in lists.
fn acknowledged(a: &Ack) -> String {
    let note = a
        .ack
        .note
        .as_deref()
        .map(|n| format!(": {}", cell(n)))
        .unwrap_or_default();
    format!(
        "acknowledged by {} on {}{note}",
        cell(&a.ack.by),
        a.at.format("%Y-%m-%d")
    )
}

/// The entries with each acknowledged problem's detail saying so (the table's view; JSON
/// keeps the detail as decided).
pub fn annotated(entries: &[EntryOutcome], attention: &Attention) -> Vec<EntryOutcome> {
    entries
        .iter()
        .map(|e| match attention.of(e) {
            Some(Standing::Acknowledged(a)) => EntryOutcome {
                detail: format!("{} ({})", e.detail, acknowledged(a)),
                ..e.clone()
            },
            _ => e.clone(),
        })
        .collect()
}

/// After a completed run with conflicts or failures: which of them are new (the run exits 3)
/// and which were known (reported as they are by the last import, or acknowledged).
pub fn attention_line(org: &str, summary: &Summary, attention: &Attention) -> String {
    if !summary.has_problems() {
        return String::new();
    }
    let problems = problems_text(summary);
    let mut known = Vec::new();
    if attention.reported() > 0 {
        let by = attention
            .reported_by()
            .map(|r| format!(" by import {r}"))
            .unwrap_or_default();
        known.push(format!("{} reported before{by}", attention.reported()));
    }
    if attention.acknowledged() > 0 {
        known.push(format!("{} acknowledged", attention.acknowledged()));
    }
    let org = cell(org);
    match attention.new_problems() {
        0 => format!(
            "{problems}, none new ({}): nothing new to attend to, exit 0; `roster conflict list {org}` lists them\n",
            known.join(", ")
        ),
        n => {
            let known = if known.is_empty() {
                String::new()
            } else {
                format!("; {}", known.join(", "))
            };
            format!(
                "{problems}, {n} new{known}: exit 3. Reviewed? `roster conflict ack {org} OBJECT` quiets one while it stays as it is; `roster org leave-out {org} OBJECT` leaves one out for good\n"
            )
        }
    }
}

/// "2 conflicts", "1 failure", "1 conflict and 2 failures".
fn problems_text(summary: &Summary) -> String {
    let mut parts = Vec::new();
    if summary.conflict > 0 {
        parts.push(count(summary.conflict as usize, "conflict", "conflicts"));
    }
    if summary.failed > 0 {
        parts.push(count(summary.failed as usize, "failure", "failures"));
    }
    parts.join(" and ")
}

/// `roster conflict list`.
pub fn conflicts_list(orgs: &[OrgProblems]) -> String {
    let mut out = String::new();
    for o in orgs {
        let org = cell(&o.org);
        match o.run {
            None => out.push_str(&format!("Org {org}: no completed run yet.\n")),
            Some(run) if o.problems.is_empty() => out.push_str(&format!(
                "Org {org}: no conflict or failure in its last run ({run}).\n"
            )),
            Some(run) => {
                let mut t = table(&["Entry", "Outcome", "Detail", "Standing", "Id"]);
                for p in &o.problems {
                    let standing = match &p.standing {
                        Standing::New => "new".to_owned(),
                        Standing::Reported(r) => format!("reported before (import {r})"),
                        Standing::Acknowledged(a) => acknowledged(a),
                    };
                    t.add_row(vec![
                        format!("{} {}", p.entry.kind.as_str(), cell(&p.entry.name)),
                        p.entry.outcome.as_str().to_owned(),
                        cell(&p.entry.detail),
                        standing,
                        p.entry.id.to_string(),
                    ]);
                }
                unwrapped(&mut t, 4);
                let summary = engine::event::Summary::of(
                    &o.problems
                        .iter()
                        .map(|p| p.entry.clone())
                        .collect::<Vec<_>>(),
                );
                out.push_str(&format!(
                    "Org {org}: {} in its last run ({run}):\n{t}\n",
                    problems_text(&summary)
                ));
            }
        }
        if !o.unused.is_empty() {
            let names: Vec<String> = o
                .unused
                .iter()
                .map(|a| {
                    format!(
                        "{} {} ({})",
                        a.ack.kind.as_str(),
                        cell(&a.ack.name),
                        a.ack.id
                    )
                })
                .collect();
            out.push_str(&format!(
                "  Acknowledged, but no longer a problem in that run: {} (`roster conflict unack {org} OBJECT` withdraws one)\n",
                names.join(", ")
            ));
        }
        if !o.left_out.is_empty() {
            out.push_str(&format!(
                "  Left out for good: {} (`roster org leave-out {org}` lists them)\n",
                count(o.left_out.len(), "object", "objects")
            ));
        }
    }
    out
}

pub fn conflict_acked(org: &str, acked: &Acked) -> String {
    match acked {
        Acked::Recorded { run, entry } => format!(
            "Acknowledged the {} of {} {} in org {} (recorded as {run}): a later run that meets it unchanged (same outcome, same detail) does not exit 3 for it; if it changes, it is new again.\n",
            entry.outcome.as_str(),
            entry.kind.as_str(),
            cell(&entry.name),
            cell(org),
        ),
        Acked::Already { entry } => format!(
            "The {} of {} {} is already acknowledged as it is; nothing recorded.\n",
            entry.outcome.as_str(),
            entry.kind.as_str(),
            cell(&entry.name)
        ),
    }
}

pub fn conflict_withdrawn(org: &str, object: &str, withdrawn: Option<&(RunId, Ack)>) -> String {
    match withdrawn {
        Some((run, a)) => format!(
            "Withdrew the acknowledgement of {} {} in org {} (recorded as {run}): its {} counts as new again.\n",
            a.ack.kind.as_str(),
            cell(&a.ack.name),
            cell(org),
            a.ack.outcome.as_str()
        ),
        None => format!(
            "Nothing named {} is acknowledged in org {}; nothing recorded.\n",
            cell(object),
            cell(org)
        ),
    }
}

/// Before a run's report: that the org leaves objects out of it.
pub fn leaving_out(org: &str, left: &[LeftOut]) -> String {
    if left.is_empty() {
        return String::new();
    }
    format!(
        "note: org {} leaves {} out of its runs (`roster org leave-out {}` lists {})\n",
        cell(org),
        count(left.len(), "object", "objects"),
        cell(org),
        if left.len() == 1 { "it" } else { "them" }
    )
}

/// `roster org leave-out ORG`: what the org leaves out.
pub fn left_out_list(org: &str, left: &[LeftOut]) -> String {
    if left.is_empty() {
        return format!(
            "Org {} leaves nothing out; `roster org leave-out {} OBJECT` leaves a user or group out for good.\n",
            cell(org),
            cell(org)
        );
    }
    let mut t = table(&["Entry", "Left out by", "On", "Id"]);
    for l in left {
        t.add_row(vec![
            format!("{} {}", l.kind.as_str(), cell(&l.name)),
            cell(&l.by),
            l.at.format("%Y-%m-%d").to_string(),
            l.id.to_string(),
        ]);
    }
    unwrapped(&mut t, 3);
    format!(
        "Org {} leaves {} out of every run (`roster org take-back {} OBJECT` brings one back):\n{t}\n",
        cell(org),
        count(left.len(), "object", "objects"),
        cell(org)
    )
}

pub fn left_out_changed(org: &str, change: &LeftOutChange, leaving: bool) -> String {
    let names = |l: &[LeftOut]| {
        l.iter()
            .map(|l| format!("{} {}", l.kind.as_str(), cell(&l.name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    if !change.changed.is_empty() {
        out.push_str(&if leaving {
            format!(
                "Org {}'s runs leave out from now on: {} — never imported, not as a member of a selected group either, never handled as deleted.\n",
                cell(org),
                names(&change.changed)
            )
        } else {
            format!(
                "Org {}'s runs take back: {}.\n",
                cell(org),
                names(&change.changed)
            )
        });
    }
    if !change.already.is_empty() {
        let already: Vec<String> = change.already.iter().map(|s| cell(s)).collect();
        out.push_str(&if leaving {
            format!("Already left out: {}.\n", already.join(", "))
        } else {
            format!("Not left out: {}.\n", already.join(", "))
        });
    }
    out
}
