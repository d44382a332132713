//! The auditor's answers: `verify`, `replay`, `diff`, `backup`, `restore`, recovery at open.

use super::*;

fn differences_table(rows: impl Iterator<Item = (String, String, String)>) -> Table {
    let mut t = table(&["Entry", "Recorded", "Replayed"]);
    for (entry, recorded, replayed) in rows {
        t.add_row(vec![cell(&entry), cell(&recorded), cell(&replayed)]);
    }
    t
}

pub fn replay_text(r: &replay::Replayed) -> String {
    let mut out = String::new();
    if let Some(note) = &r.note {
        out.push_str(&format!("Note: {}\n", cell(note)));
    }
    if r.identical() {
        out.push_str(&format!(
            "Run {} replays identically ({}): the same deleted objects, the same choices and the same decisions for {}.\n",
            r.run,
            r.mode.as_str(),
            count(r.entries, "entry", "entries")
        ));
    } else {
        let t = differences_table(
            r.differences
                .iter()
                .map(|d| (d.entry.clone(), d.recorded.clone(), d.replayed.clone())),
        );
        out.push_str(&format!(
            "Run {} does NOT replay identically: {} difference{}.\n{t}\n",
            r.run,
            r.differences.len(),
            if r.differences.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

pub fn diff_text(d: &replay::diff::RunDiff) -> String {
    let mut out = format!("Org {}: run {} → run {}\n", cell(&d.org), d.a, d.b);
    let list = |title: &str, items: &[replay::diff::ObjectRef]| {
        if items.is_empty() {
            return String::new();
        }
        let mut t = table(&["Name", "Kind", "Id"]);
        for o in items {
            t.add_row(vec![
                cell(&o.name),
                o.kind.as_str().to_owned(),
                o.id.to_string(),
            ]);
        }
        format!("{title} ({}):\n{t}\n", items.len())
    };
    out.push_str(&list("Appeared in Entra ID", &d.appeared));
    out.push_str(&list(
        "Restored in Entra ID (from the recycle bin)",
        &d.restored,
    ));
    out.push_str(&list("Disappeared from Entra ID", &d.disappeared));
    if !d.changed.is_empty() {
        let mut t = table(&["Name", "Kind", "Changed attributes"]);
        for c in &d.changed {
            let fields: Vec<String> = c
                .fields
                .iter()
                .map(|f| {
                    change_text(&Change {
                        field: f.field.clone(),
                        from: f.a.clone(),
                        to: f.b.clone(),
                    })
                })
                .collect();
            t.add_row(vec![
                cell(&c.object.name),
                c.object.kind.as_str().to_owned(),
                fields.join("\n"),
            ]);
        }
        out.push_str(&format!(
            "Changed in Entra ID ({}):\n{t}\n",
            d.changed.len()
        ));
    }
    if !d.outcomes.is_empty() {
        let mut t = table(&["Name", "Kind", "Outcome in A", "Outcome in B"]);
        for o in &d.outcomes {
            t.add_row(vec![
                cell(&o.object.name),
                o.object.kind.as_str().to_owned(),
                cell(o.a.as_deref().unwrap_or("(not in run)")),
                cell(o.b.as_deref().unwrap_or("(not in run)")),
            ]);
        }
        out.push_str(&format!(
            "Outcomes that differ ({}):\n{t}\n",
            d.outcomes.len()
        ));
    }
    if d.settled > 0 {
        out.push_str(&format!(
            "{} that run A changed on the server, run B found as A left {} (not listed).\n",
            count(d.settled, "entry", "entries"),
            if d.settled == 1 { "it" } else { "them" }
        ));
    }
    if d.appeared.is_empty()
        && d.restored.is_empty()
        && d.disappeared.is_empty()
        && d.changed.is_empty()
        && d.outcomes.is_empty()
    {
        out.push_str("No differences.\n");
    }
    out
}

/// What opening the store found and did, as notes for stderr (nothing when it found nothing).
pub fn recovered(r: &app::recover::Recovered) -> String {
    let mut out = String::new();
    if let Some(cut) = &r.cut {
        out.push_str(&format!(
            "note: the store's last writes were torn ({}); run {}, unfinished, was cut back to event {} ({} events cut{}), and the cut is recorded in the log\n",
            cell(&cut.reason),
            cut.run,
            cut.from.0.saturating_sub(1),
            cut.events,
            if cut.server_rebuilt {
                "; the server's directory was rebuilt from the log"
            } else {
                ""
            }
        ));
    }
    for run in &r.closed {
        out.push_str(&format!(
            "note: run {run} was interrupted before it finished; it is now recorded as aborted\n"
        ));
    }
    out
}

/// `roster verify`, when the log verifies.
pub fn verified(
    v: &replay::Verified,
    repairs: &[(engine::Seq, engine::event::LogRepaired)],
    mirrors: &[app::mirror::MirrorCheck],
) -> String {
    let mut others = Vec::new();
    if v.edits > 0 {
        others.push(count(
            v.edits,
            "administrator's change",
            "administrators' changes",
        ));
    }
    if v.backups > 0 {
        others.push(count(v.backups, "backup", "backups"));
    }
    if v.acknowledgements > 0 {
        others.push(count(
            v.acknowledgements,
            "acknowledgement given or withdrawn",
            "acknowledgements given or withdrawn",
        ));
    }
    let edits = match others.len() {
        0 => String::new(),
        _ => format!(" and {}", others.join(" and ")),
    };
    let mut text = format!(
        "The log verifies: {} in {}{edits}; hash chain, sequence, runs and run index are intact.\nChain head: {} (event {})\n",
        count(v.events as usize, "event", "events"),
        count(v.runs, "run", "runs"),
        v.head.hash,
        v.head.seq
    );
    if let Some(at) = v.noted_head_at {
        text.push_str(&format!(
            "The noted head is event {at}: nothing up to it has changed.\n"
        ));
    }
    for (seq, r) in repairs {
        text.push_str(&format!(
            "Event {seq} records that the log was cut back from event {}: {} events of run {}, unfinished, were torn by a write error ({}).\n",
            r.cut_from, r.events_cut, r.run, cell(&r.reason)
        ));
    }
    for run in &v.unfinished {
        text.push_str(&format!(
            "Run {run} was interrupted before it finished (not tampering).\n"
        ));
    }
    for m in mirrors {
        text.push_str(&mirror_line(m));
    }
    text
}

/// One mirror as `verify` found it.
fn mirror_line(m: &app::mirror::MirrorCheck) -> String {
    use app::mirror::MirrorState;
    let of = mirror_name(m);
    let why = cell(m.why.as_deref().unwrap_or_default());
    match m.state {
        MirrorState::Matches => format!("The mirror of {of} matches the log.\n"),
        MirrorState::Vouched => format!(
            "The mirror of {of} is the one the log vouches for (`verify --mirrors` compares it with the log folded again).\n"
        ),
        MirrorState::NotUsed => format!(
            "The mirror of {of} is not used ({why}): the org's next run there folds the log and keeps a new one (not tampering).\n"
        ),
        MirrorState::Differs => format!("The mirror of {of} differs from the log: {why}.\n"),
    }
}

fn mirror_name(m: &app::mirror::MirrorCheck) -> String {
    let run = m
        .run
        .map(|r| format!(", after run {r}"))
        .unwrap_or_default();
    format!("org {} against {}{run}", cell(&m.org), cell(&m.server))
}

/// The error line of `verify` when a mirror differs from the log.
pub fn mirror_differs(m: &app::mirror::MirrorCheck) -> String {
    format!(
        "error: the mirror of {} differs from the log ({}): the store was changed outside roster, and the org's next run would take it; take a backup (`roster backup --out FILE`) and restore it into a new store (`roster --store NEW restore FILE`): a backup holds the log, not the mirrors\n",
        mirror_name(m),
        cell(m.why.as_deref().unwrap_or_default())
    )
}

pub fn verified_json(
    v: &replay::Verified,
    repairs: &[(engine::Seq, engine::event::LogRepaired)],
    mirrors: &[app::mirror::MirrorCheck],
) -> Value {
    let differs = mirrors
        .iter()
        .any(|m| m.state == app::mirror::MirrorState::Differs);
    serde_json::json!({
        "ok": !differs,
        "mirrors": mirrors,
        "events": v.events,
        "runs": v.runs,
        "edits": v.edits,
        "backups": v.backups,
        "acknowledgements": v.acknowledgements,
        "head": { "seq": v.head.seq.0, "hash": v.head.hash.to_hex() },
        "notedHeadAt": v.noted_head_at.map(|s| s.0),
        "unfinished": v.unfinished.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "repairs": repairs.iter().map(|(seq, r)| serde_json::json!({
            "seq": seq.0,
            "run": r.run.to_string(),
            "cutFrom": r.cut_from.0,
            "eventsCut": r.events_cut,
            "reason": r.reason,
            "serverRebuilt": r.server_rebuilt,
        })).collect::<Vec<_>>(),
    })
}

/// `roster verify --json`, when the log does not verify.
pub fn unverified_json(e: &replay::VerifyError) -> Value {
    let (seq, run) = match e {
        replay::VerifyError::Bad { seq, run, .. } => (Some(seq.0), run.map(|r| r.to_string())),
        _ => (None, None),
    };
    serde_json::json!({ "ok": false, "seq": seq, "run": run, "error": e.to_string() })
}

pub fn replayed_json(r: &replay::Replayed) -> Value {
    serde_json::json!({
        "run": r.run,
        "identical": r.identical(),
        "entries": r.entries,
        "differences": r.differences,
        "note": r.note,
    })
}

/// `roster backup`.
pub fn backed_up(c: &replay::backup::Contents, path: &std::path::Path) -> String {
    let path = cell(&path.display().to_string());
    format!(
        "Backed up {} events (chain head {}, event {}), {} orgs, {} server users and {} groups to {path}; `roster restore {path} --head {}` puts them in a new store (note the head somewhere roster cannot write: it proves the backup is this one).\n",
        c.events, c.head.hash, c.head.seq, c.orgs, c.server_users, c.server_groups, c.head.hash
    )
}

/// `roster restore`.
pub fn restored(r: &app::backup::Restored, store: &str) -> String {
    format!(
        "Restored {} events (chain head {}, event {}, as in the backup), {} orgs, {} server users and {} groups into {}; the log verifies, and {}.\n",
        r.verified.events,
        r.verified.head.hash,
        r.verified.head.seq,
        r.contents.orgs,
        r.contents.server_users,
        r.contents.server_groups,
        cell(store),
        if r.server_said {
            "the server is the one the log says"
        } else {
            "the server is the backup's (its digest checked; the log does not say what it holds: it was loaded by a roster that did not record loads, with no import since)"
        }
    )
}
