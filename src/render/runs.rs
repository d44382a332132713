//! The runs in the log (`runs`), and `sync`: what it repeats and one line per cycle.

use super::*;

/// `roster runs` on a terminal or into a pipe: newest first; each run by its shortest unique
/// name (`names`, see `app::runs::short_ids`: every command takes it); the start to the minute.
/// Who started a run is shown where there is room for it (120 columns, or a pipe); on a
/// terminal, the org is said once above the table when every run shown is of one org.
pub fn runs_table(
    runs: &[RunInfo],
    names: &std::collections::HashMap<RunId, String>,
    width: Option<u16>,
) -> String {
    if runs.is_empty() {
        return "No runs yet.\n".into();
    }
    let who = width.is_none_or(|w| w >= 120);
    // The org, where the runs shown are not all of one (on a terminal; a pipe has every column).
    let org = width.is_none() || runs.iter().any(|r| r.org != runs[0].org);
    let mut columns = vec![("Run", true)];
    if org {
        columns.push(("Org", false));
    }
    columns.push(("Mode", true));
    if who {
        columns.push(("Started by", false));
    }
    columns.extend([
        ("Started (UTC)", true),
        ("Status", true),
        ("Summary", false),
    ]);
    let mut t = table(&columns.iter().map(|(name, _)| *name).collect::<Vec<_>>());
    for (i, (_, whole)) in columns.iter().enumerate() {
        if *whole {
            unwrapped(&mut t, i);
        }
    }
    for r in runs.iter().rev() {
        let mut row = vec![names
            .get(&r.run)
            .cloned()
            .unwrap_or_else(|| r.run.to_string())];
        if org {
            row.push(cell(&r.org));
        }
        row.push(r.mode.as_str().to_owned());
        if who {
            row.push(started_by_text(&r.started_by, r.signed_in_as.as_deref()));
        }
        row.extend([
            r.started_at.format("%Y-%m-%d %H:%M").to_string(),
            r.status
                .map(|s| s.as_str())
                .unwrap_or("aborted (interrupted)")
                .to_owned(),
            summary_text(&r.summary),
        ]);
        t.add_row(row);
    }
    let one_org = match org {
        true => String::new(),
        false => format!("Runs of org {}:\n", cell(&runs[0].org)),
    };
    format!("{one_org}{t}\n")
}

/// One cycle of `sync --every`, in one line: the run, how it ended, its counts, its time.
pub fn sync_line(
    at: chrono::DateTime<chrono::Utc>,
    org: &str,
    r: &app::run::RunResult,
    attention: &app::attention::Attention,
    took: std::time::Duration,
) -> String {
    let how = match &r.end {
        app::run::RunEnd::Completed => "completed".to_owned(),
        app::run::RunEnd::Refused(why) => format!("refused ({})", cell(&why.to_string())),
        app::run::RunEnd::Aborted(why) => format!("aborted ({})", cell(why)),
    };
    let kind = match (r.base.is_some(), r.changes_since.is_some()) {
        (true, true) => "incremental, changes read",
        (true, false) => "incremental",
        (false, true) => "full, changes read",
        (false, false) => "full",
    };
    // Whether the cycle needs attention: only a new conflict or failure does.
    let new = match attention.new_problems() {
        0 if r.summary().has_problems() => " — nothing new",
        0 => "",
        _ => " — NEW conflicts or failures, see `roster report` and `roster conflict list`",
    };
    format!(
        "{} sync {}: run {} {how} in {:.1} s ({kind}): {}{new}\n",
        at.format("%Y-%m-%dT%H:%M:%SZ"),
        cell(org),
        r.run,
        took.as_secs_f64(),
        summary_text(&r.summary())
    )
}

/// An import's selection and options as the flags that ask for them.
pub fn as_flags(
    selection: &engine::event::SelectionSpec,
    options: &engine::event::RunOptions,
) -> String {
    let mut f: Vec<String> = Vec::new();
    if selection.select_all {
        f.push("--select-all".into());
    }
    match selection.select.len() {
        0 => {}
        n @ 1..=3 => f.extend(selection.select.iter().take(n).map(|s| {
            // As typed in a shell: a name with a space quoted.
            if s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\'')
            {
                format!("--select {:?}", cell(s))
            } else {
                format!("--select {}", cell(s))
            }
        })),
        n => f.push(format!("--select … ({n} objects)")),
    }
    if let Some(term) = &selection.search {
        f.push(format!("--search {:?}", cell(term)));
    }
    if selection.invert {
        f.push("--invert".into());
    }
    if options.check_deleted {
        f.push(format!(
            "--check-deleted --on-deleted {}",
            options.on_deleted.as_str()
        ));
        if !options.actions.is_empty() {
            f.push(format!("--action … ({} objects)", options.actions.len()));
        }
    } else {
        f.push("(deleted objects not looked for: no --check-deleted)".into());
    }
    f.push(format!("--max-deletions {}", options.max_deletions));
    if options.allow_empty_source {
        f.push("--allow-empty-source".into());
    }
    f.join(" ")
}

/// What a sync repeats, and where that comes from; `full` adds how to change it.
pub fn sync_repeats(what: &app::sync::Repeated, given: &app::Server, full: bool) -> String {
    let server = match given {
        app::Server::Embedded => app::Server::of(&what.target),
        other => other.clone(),
    };
    let org = cell(&what.org);
    let origin = match &what.origin {
        app::sync::Origin::Definition { from, by, at } => format!(
            "the sync definition set by {} on {} from import {from}",
            cell(by),
            at.format("%Y-%m-%d %H:%M UTC")
        ),
        app::sync::Origin::LastImport(run) => {
            format!("the org's last import, {run} (no sync definition set)")
        }
    };
    let mut text = format!(
        "sync {org} repeats: {} into {} — {origin}\n",
        as_flags(&what.selection, &what.options),
        server.describe()
    );
    if full {
        text.push_str(&format!(
            "`roster sync {org} --set-from RUN` makes import RUN what it repeats, whatever one-off imports come after.\n"
        ));
    }
    text
}

/// A cycle of `sync --every` that failed; the next one still runs.
pub fn sync_failed(at: chrono::DateTime<chrono::Utc>, org: &str, e: &anyhow::Error) -> String {
    format!(
        "{} sync {}: failed: {}\n",
        at.format("%Y-%m-%dT%H:%M:%SZ"),
        cell(org),
        cell(&e.to_string())
    )
}

/// `roster runs`: the table, or why it is empty.
pub fn runs_list(
    runs: &[RunInfo],
    names: &std::collections::HashMap<RunId, String>,
    filtered: bool,
    width: Option<u16>,
) -> String {
    if runs.is_empty() && filtered {
        "No runs match these filters.\n".into()
    } else {
        runs_table(runs, names, width)
    }
}

/// After `roster demo`: where its store is, and what to try next.
pub fn demo_hint(dir: &std::path::Path) -> String {
    format!(
        "\nDemo store: {dir}\nExplore it, one command a line:\n  roster --store {dir} runs\n  roster --store {dir} report last\n  roster --store {dir} deleted last\n  roster --store {dir} server show AllanD@contoso.com\nor once for this shell: export ROSTER_STORE={dir}\n",
        dir = dir.display()
    )
}
