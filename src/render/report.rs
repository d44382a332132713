//! A run's report: the table (fitted to the terminal, or streamed into a pipe), its JSON and
//! CSV, and the lines said around a run — a refusal, an abort, the hints after a dry run.

use super::*;

/// A report as the CLI shows it, whether just produced by a run or folded from the log.
pub struct ReportView<'a> {
    pub run: RunId,
    pub org: &'a str,
    pub mode: Mode,
    pub entries: &'a [EntryOutcome],
    /// Every entry counted (an incremental run lists only the entries it recorded).
    pub summary: Summary,
    /// The base of an incremental run.
    pub base: Option<RunId>,
    /// Every entry is listed.
    pub all: bool,
    pub status: Option<RunStatus>,
    pub reason: Option<&'a str>,
    /// Who started the run and whom Graph was read as, for a report read from the log.
    pub started_by: Option<&'a str>,
    pub signed_in_as: Option<&'a str>,
}

impl<'a> ReportView<'a> {
    pub fn from_report(run: RunId, r: &'a Report, all: bool) -> Self {
        ReportView {
            run,
            org: &r.org,
            mode: r.mode.unwrap_or(Mode::DryRun),
            entries: &r.entries,
            summary: r.summary(),
            base: r.base,
            all,
            status: r.status,
            reason: r.reason.as_deref(),
            started_by: Some(&r.started_by),
            signed_in_as: r.signed_in_as.as_deref(),
        }
    }
}

/// `root (uid 0)`, and `, signed in to Entra ID as admin@contoso.com` for a live org's run.
pub fn started_by_text(started_by: &str, signed_in_as: Option<&str>) -> String {
    match signed_in_as {
        Some(who) => format!(
            "{}, signed in to Entra ID as {}",
            cell(started_by),
            cell(who)
        ),
        None => cell(started_by),
    }
}

/// Entries a report shows on a terminal at most: the ones that need attention first; a pipe
/// gets every one.
const TERMINAL_ROWS: usize = 100;

/// The report as a table on `out`: on a terminal of `width` columns, the entries that need
/// attention (failures, conflicts, skips, then changes; at most [`TERMINAL_ROWS`]) fitted to
/// it, and the command that lists the rest; elsewhere every entry, written as it is made.
pub fn write_report_table(
    out: &mut (impl std::io::Write + ?Sized),
    r: &ReportView<'_>,
    terminal: Option<u16>,
) -> std::io::Result<()> {
    let what = match (r.mode, r.status) {
        (_, Some(RunStatus::Refused)) => "Refused (nothing was changed)",
        (Mode::DryRun, _) => "Dry run (nothing was changed)",
        (Mode::Apply, _) => "Import results",
    };
    writeln!(out, "{what} for org {}, run {}", cell(r.org), r.run)?;
    if let Some(by) = r.started_by {
        writeln!(out, "Started by {}", started_by_text(by, r.signed_in_as))?;
    }
    const HEADER: [&str; 4] = ["Name", "Kind", "Result", "Details"];
    let row = |e: &EntryOutcome| -> Vec<String> {
        let mut details = vec![cell(&e.detail)];
        details.extend(e.changes.iter().map(change_text));
        vec![
            cell(&e.name),
            e.kind.as_str().to_owned(),
            outcome_label(e.outcome, r.mode).to_owned(),
            details.join("\n"),
        ]
    };
    match terminal {
        Some(width) if !r.entries.is_empty() => {
            let mut shown: Vec<&EntryOutcome> = r
                .entries
                .iter()
                .filter(|e| attention(e.outcome).is_some())
                .collect();
            shown.sort_by_key(|e| attention(e.outcome));
            let needing = shown.len();
            shown.truncate(TERMINAL_ROWS);
            if !shown.is_empty() {
                let mut t = table(&HEADER);
                t.set_width(width);
                for e in &shown {
                    t.add_row(row(e));
                }
                writeln!(out, "{t}")?;
            }
            if shown.len() < r.entries.len() {
                let settled = r.entries.len() - needing;
                writeln!(
                    out,
                    "{} of {} shown{}; every one:\n  roster report {} | less",
                    shown.len(),
                    count(r.entries.len(), "entry", "entries"),
                    match settled {
                        0 => String::new(),
                        n => format!(" ({n} unchanged or ignored)"),
                    },
                    r.run
                )?;
            }
        }
        _ if !r.entries.is_empty() => {
            let mut columns = stream::Columns::new(&HEADER);
            for e in r.entries {
                columns.measure(&row(e));
            }
            columns.write_header(out, &HEADER)?;
            for e in r.entries {
                columns.write_row(out, &row(e))?;
            }
            columns.write_footer(out)?;
        }
        _ => {}
    }
    let status = match r.status {
        Some(RunStatus::Completed) => "completed".to_owned(),
        Some(s) => match r.reason {
            Some(why) => format!("{}: {}", s.as_str(), cell(why)),
            None => s.as_str().to_owned(),
        },
        None => "unfinished (interrupted)".to_owned(),
    };
    writeln!(out, "Summary: {} ({status})", summary_text(&r.summary))?;
    let listed = r.entries.len() as u64;
    let counted = Outcome::ALL
        .iter()
        .map(|o| u64::from(r.summary.get(*o)))
        .sum::<u64>();
    if let (Some(base), false, true) = (r.base, r.all, counted > listed) {
        writeln!(
            out,
            "Incremental run (base {base}): {} as before {} not listed; `roster report {} --all` lists every entry",
            count((counted - listed) as usize, "entry", "entries"),
            if counted - listed == 1 { "is" } else { "are" },
            r.run
        )?;
    }
    Ok(())
}

/// How soon an entry with this outcome needs the admin's eye on a terminal; `None`: it does
/// not (nothing to do, nothing done).
fn attention(outcome: Outcome) -> Option<u8> {
    Some(match outcome {
        Outcome::Failed => 0,
        Outcome::Conflict => 1,
        Outcome::Skipped => 2,
        Outcome::Deleted => 3,
        Outcome::Disabled => 4,
        Outcome::Updated => 5,
        Outcome::Added => 6,
        Outcome::Unchanged | Outcome::Ignored => return None,
    })
}

#[derive(Serialize)]
struct EntryJson<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'a str,
    outcome: &'a str,
    detail: &'a str,
    changes: &'a [Change],
}

#[derive(Serialize)]
pub struct ReportJson<'a> {
    run: RunId,
    org: &'a str,
    mode: &'a str,
    entries: Vec<EntryJson<'a>>,
    summary: Summary,
}

/// The report in its JSON shape (docs/formats.md), to be serialized straight to the output.
pub fn report_json<'a>(r: &'a ReportView<'a>) -> ReportJson<'a> {
    let report = ReportJson {
        run: r.run,
        org: r.org,
        mode: r.mode.as_str(),
        entries: r
            .entries
            .iter()
            .map(|e| EntryJson {
                id: e.id.as_str(),
                name: &e.name,
                kind: e.kind.as_str(),
                outcome: e.outcome.as_str(),
                detail: &e.detail,
                changes: &e.changes,
            })
            .collect(),
        summary: r.summary,
    };
    report
}

pub fn report_csv(r: &ReportView<'_>) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "run", "org", "mode", "kind", "id", "name", "outcome", "result", "detail", "changes",
    ])?;
    for e in r.entries {
        let changes: Vec<String> = e.changes.iter().map(change_text).collect();
        w.write_record([
            r.run.to_string().as_str(),
            r.org,
            r.mode.as_str(),
            e.kind.as_str(),
            e.id.as_str(),
            &e.name,
            e.outcome.as_str(),
            outcome_label(e.outcome, r.mode),
            &e.detail,
            &changes.join("; "),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

pub fn deleted_table(rows: &[DeletedRow], ids: bool) -> String {
    if rows.is_empty() {
        return "No deleted objects were found on the server.\n".into();
    }
    let header = ["Name", "Kind", "Evidence", "Deleted at", "Action", "Id"];
    let mut t = table(&header[..if ids { 6 } else { 5 }]);
    for r in rows {
        let mut row = vec![
            cell(&r.name),
            r.kind.as_str().to_owned(),
            r.evidence.as_str().to_owned(),
            r.deleted_at
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            r.action.map(|a| a.as_str()).unwrap_or("ignore").to_owned(),
        ];
        if ids {
            row.push(r.id.to_string());
        }
        t.add_row(row);
    }
    unwrapped(&mut t, 5);
    match ids {
        true => format!("{t}\n"),
        false => format!("{t}\nIds with --wide or --json.\n"),
    }
}

pub fn stale_table(diffs: &[engine::compare::EntryDifference]) -> String {
    let mut t = table(&["Entry", "Reviewed", "Now"]);
    for d in diffs {
        t.add_row(vec![
            format!("{} {}", d.kind.as_str(), cell(&d.name)),
            cell(d.recorded.as_deref().unwrap_or("(no entry)")),
            cell(d.replayed.as_deref().unwrap_or("(no entry)")),
        ]);
    }
    format!("The reviewed plan went stale; what changed since it was reviewed:\n{t}")
}

/// After a dry run that found deleted objects: how to see them and act on them.
/// A run whose inputs were its base's ([`app::mirror::BaseFrom::Settled`]).
pub fn as_before(base: RunId) -> String {
    format!("The tenant and the server are as run {base} found them (the same file, the same server version): its decisions stand, nothing was read again\n")
}

pub fn deleted_hint(run: RunId, deleted: usize) -> String {
    if deleted == 0 {
        return String::new();
    }
    format!(
        "{} found; `roster deleted {run}` lists them, `--action ID=disable|delete` acts on them.\n",
        count(deleted, "deleted object", "deleted objects")
    )
}

/// Said after the wizard leaves the screen, when it imported: the run, and how to see it again.
pub fn wizard_left(r: &crate::wizard::state::ResultsView) -> String {
    format!(
        "The wizard's import: run {} ({}): {}. `roster report {}` shows it again.\n",
        r.run,
        cell(&r.status),
        summary_text(&Summary::of(&r.entries)),
        r.run
    )
}

/// `apply --approve`: whose approval of which refused run the import records.
pub fn approved(refused: RunId, by: &str) -> String {
    format!(
        "Approved by {}: the plan of refused run {refused}, imported as reviewed; the import records the approval.\n",
        cell(by)
    )
}

pub fn refused(run: RunId, why: &engine::plan::Refusal) -> String {
    let approvable = !matches!(why, engine::plan::Refusal::StalePlan { .. });
    let why = why
        .to_string()
        .replace("`roster deleted RUN`", &format!("`roster deleted {run}`"));
    let approve = if approvable {
        format!(" — or, reviewed, import exactly this plan: `roster apply {run} --approve`")
    } else {
        String::new()
    };
    format!(
        "error: run {run} refused, nothing was changed: {}{approve}\n",
        cell(&why)
    )
}

/// After a dry run: how to import exactly what it showed.
pub fn apply_hint(run: RunId) -> String {
    format!("Nothing was changed. `roster apply {run}` imports exactly this plan (or refuses if it went stale).\n")
}

pub fn aborted(run: RunId, why: &str) -> String {
    format!("error: run {run} aborted: {}\n", cell(why))
}
