//! Output: human tables, JSON for scripts, CSV for spreadsheets, and the lines said on
//! stderr. Only this module knows how things look and where they go; commands hand it data.

pub mod attention;
mod html;
mod io;
pub mod progress;
mod stream;

pub use html::report_html;

pub use io::{out, out_event_lines, out_json, out_json_line, out_with, say};
pub use progress::with_progress;

use comfy_table::{presets, Cell, ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;

use engine::event::{Change, EntryOutcome, Mode, Outcome, RunStatus, Summary};
use engine::model::{ServerState, ServerUser};
use engine::projection::{DeletedRow, Report, RunInfo};
use engine::search::SearchRow;
use engine::RunId;

/// A table in roster's look: fitted to the terminal's width when stdout is one (long cells
/// wrapped), left whole when it is not (a pipe, a file).
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(Cell::new));
    if let Some(width) = terminal_width() {
        t.set_width(width);
    }
    t
}

/// Keeps column `i` unwrapped (an id is copied whole from a table): the others wrap instead.
fn unwrapped(t: &mut Table, i: usize) {
    if let Some(column) = t.column_mut(i) {
        column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
    }
}

/// Whether a table shows its Id column: always through a pipe or with `--wide`; on a terminal
/// only when it is wide enough for ids beside the rest (`--json` always has them).
pub fn show_ids(wide: bool) -> bool {
    wide || terminal_width().is_none_or(|w| w >= 160)
}

/// The most characters of one value a table shows; `--json` shows it whole. (A table's cost
/// grows faster than its cells' lengths: a hostile 10 MB name must not take a minute.)
const MAX_CELL_CHARS: usize = 500;

/// Text from outside (a name, a UPN, a detail that quotes one) as a table shows it: control
/// characters escaped, so that no value can forge a row, a line or a terminal command, and
/// cut at [`MAX_CELL_CHARS`].
pub fn cell(s: &str) -> String {
    let shown = engine::text::printable(s);
    match shown.char_indices().nth(MAX_CELL_CHARS) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown.into_owned(),
    }
}

fn text(v: Option<&str>) -> String {
    cell(v.unwrap_or(""))
}

/// Warnings as lines for stderr: each escaped, identical ones said once with a count, and no
/// more than [`MAX_WARNINGS`] different ones (the run's events keep them all).
pub fn warnings(problems: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in problems {
        match index.get(p.as_str()) {
            Some(&i) => counts[i].1 += 1,
            None => {
                index.insert(p.as_str(), counts.len());
                counts.push((p.as_str(), 1));
            }
        }
    }
    let mut out = String::new();
    for (p, n) in counts.iter().take(MAX_WARNINGS) {
        let times = if *n > 1 {
            format!(" ({n} times)")
        } else {
            String::new()
        };
        out.push_str(&format!("warning: {}{times}\n", cell(p)));
    }
    if counts.len() > MAX_WARNINGS {
        let rest: usize = counts[MAX_WARNINGS..].iter().map(|(_, n)| n).sum();
        out.push_str(&format!(
            "warning: … and {rest} more warnings; `roster events RUN` records them all\n"
        ));
    }
    out
}

const MAX_WARNINGS: usize = 20;

pub fn search_table(rows: &[&SearchRow], ids: bool) -> String {
    let header = ["Name", "Type", "Department", "Description", "UPN", "Id"];
    let mut t = table(&header[..if ids { 6 } else { 5 }]);
    for r in rows {
        let mut row = vec![
            cell(&r.name),
            r.row_type.as_str().to_owned(),
            text(r.department.as_deref()),
            text(r.description.as_deref()),
            text(r.upn.as_deref()),
        ];
        if ids {
            row.push(r.id.to_string());
        }
        t.add_row(row);
    }
    unwrapped(&mut t, 5);
    let hidden = match ids {
        true => "",
        false => " (ids with --wide or --json)",
    };
    format!("{t}\n{}{hidden}\n", count(rows.len(), "entry", "entries"))
}

/// The seed's wording: what the wizard shows for each entry.
pub fn outcome_label(outcome: Outcome, mode: Mode) -> &'static str {
    match (mode, outcome) {
        (Mode::Apply, Outcome::Added) => "Added successfully",
        (Mode::Apply, Outcome::Updated) => "Updated successfully",
        (Mode::Apply, Outcome::Skipped) => "Skipped: account disabled",
        (Mode::Apply, Outcome::Disabled) => "Disabled successfully",
        (Mode::Apply, Outcome::Deleted) => "Deleted successfully",
        (Mode::Apply, Outcome::Ignored) => "Ignored",
        (Mode::Apply, Outcome::Failed) => "Failed",
        (Mode::DryRun, Outcome::Added) => "Will be added",
        (Mode::DryRun, Outcome::Updated) => "Will be updated",
        (Mode::DryRun, Outcome::Skipped) => "Will be skipped: account disabled",
        (Mode::DryRun, Outcome::Disabled) => "Will be disabled",
        (Mode::DryRun, Outcome::Deleted) => "Will be deleted",
        (Mode::DryRun, Outcome::Ignored) => "Will be ignored",
        (Mode::DryRun, Outcome::Failed) => "Will fail",
        (_, Outcome::Unchanged) => "Unchanged",
        (_, Outcome::Conflict) => "Conflict",
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => cell(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn change_text(c: &Change) -> String {
    use engine::compare::{joined_and_left, some_of};
    match joined_and_left(c) {
        // Member lists can be long: show what joined and what left.
        Some((joined, left)) => {
            let mut parts = Vec::new();
            if !joined.is_empty() {
                let shown: Vec<String> = joined.iter().map(|v| value_text(v)).collect();
                parts.push(format!("+{} ({})", joined.len(), some_of(&shown, 5)));
            }
            if !left.is_empty() {
                let shown: Vec<String> = left.iter().map(|v| value_text(v)).collect();
                parts.push(format!("−{} ({})", left.len(), some_of(&shown, 5)));
            }
            format!("{}: {}", cell(&c.field), parts.join(", "))
        }
        None => format!(
            "{}: {} → {}",
            cell(&c.field),
            value_text(&c.from),
            value_text(&c.to)
        ),
    }
}

pub fn summary_text(s: &Summary) -> String {
    let parts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| s.get(**o) > 0)
        .map(|o| format!("{} {}", s.get(*o), o.as_str()))
        .collect();
    if parts.is_empty() {
        "no entries".into()
    } else {
        parts.join(", ")
    }
}

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

/// The width of the terminal stdout is, or `None` when it is not one (a pipe, a file).
pub fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(cols, _)| cols.max(40))
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

pub fn server_user_table(u: &ServerUser, state: &ServerState) -> String {
    let mut t = table(&["Property", "Value"]);
    let groups: Vec<String> = state
        .groups()
        .filter(|g| {
            let login = engine::ids::fold_case(&u.login);
            g.members.iter().any(|m| engine::ids::fold_case(m) == login)
        })
        .map(|g| cell(&g.name))
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("Login", cell(&u.login)),
        ("Display name", text(u.display_name.as_deref())),
        ("Email", text(u.email.as_deref())),
        ("Department", text(u.department.as_deref())),
        ("Authentication type", u.auth_type.label().to_owned()),
        (
            "Enabled",
            if u.enabled { "yes".into() } else { "no".into() },
        ),
        ("Groups", groups.join(", ")),
        (
            "Entra tenant",
            u.tenant_id
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        (
            "Entra object id",
            u.entra_id
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    if let Some(a) = &u.entra {
        for (k, v) in [
            ("Entra: userPrincipalName", a.user_principal_name.as_deref()),
            ("Entra: displayName", a.display_name.as_deref()),
            ("Entra: givenName", a.given_name.as_deref()),
            ("Entra: surname", a.surname.as_deref()),
            ("Entra: mail", a.mail.as_deref()),
            ("Entra: department", a.department.as_deref()),
            ("Entra: jobTitle", a.job_title.as_deref()),
            ("Entra: userType", a.user_type.map(|t| t.label())),
        ] {
            t.add_row(vec![k.to_owned(), text(v)]);
        }
    }
    format!("{t}\n")
}

pub fn history_table(items: &[replay::history::HistoryItem]) -> String {
    if items.is_empty() {
        return "History: no import has changed this user.\n".into();
    }
    let mut t = table(&["Run", "Time (UTC)", "Org", "By", "Result", "Changes"]);
    for i in items {
        let mut details = vec![cell(&i.detail)];
        details.extend(i.changes.iter().map(change_text));
        t.add_row(vec![
            i.run.to_string(),
            i.time.format("%Y-%m-%d %H:%M:%S").to_string(),
            // An administrator's action outside any import has no org.
            match i.org.as_str() {
                "" => "—".to_owned(),
                org => cell(org),
            },
            cell(&i.started_by),
            match i.org.as_str() {
                "" => "Changed by an administrator".to_owned(),
                _ => outcome_label(i.outcome, Mode::Apply).to_owned(),
            },
            details.join("\n"),
        ]);
    }
    format!("History:\n{t}\n")
}

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
pub fn recovered(r: &app::run::Recovered) -> String {
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

/// The device-code sign-in, as the admin reads it.
pub fn device_prompt(p: &adapters::auth::DevicePrompt) -> String {
    format!(
        "To sign in, open {} and enter the code {} (multi-factor authentication happens in the browser).\n",
        cell(&p.verification_uri),
        cell(&p.user_code)
    )
}

/// `roster org list`.
pub fn orgs_table(orgs: &[adapters::org::OrgConfig]) -> String {
    use adapters::org::OrgSource;
    if orgs.is_empty() {
        return "No orgs yet; add one with `roster org add NAME --fixture TENANT.json`.\n".into();
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(["Org", "Tenant", "Source", "Added (UTC)"]);
    for o in orgs {
        let source = match &o.source {
            OrgSource::Fixture { path } => format!("fixture {}", cell(&path.display().to_string())),
            OrgSource::Graph(g) => format!(
                "graph {} ({})",
                cell(g.graph_url.as_deref().unwrap_or(g.cloud.graph_root())),
                match g.auth {
                    adapters::auth::AuthMode::DeviceCode => "device code",
                    adapters::auth::AuthMode::ClientSecret => "client secret",
                }
            ),
        };
        t.add_row(vec![
            cell(&o.name),
            o.tenant_id.to_string(),
            source,
            o.added_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    format!("{t}\n")
}

/// `roster org add --fixture`.
pub fn org_added_from_fixture(added: &app::orgs::FixtureOrg, given: &std::path::Path) -> String {
    format!(
        "Added org {}: tenant {}, {} users, {} groups (fixture {}).\n",
        cell(&added.org.name),
        added.org.tenant_id,
        added.loaded.snapshot.users.len(),
        added.loaded.snapshot.groups.len(),
        cell(&given.display().to_string())
    )
}

/// `roster org set`.
pub fn org_set(set: &app::orgs::FixtureOrg, given: &std::path::Path) -> String {
    format!(
        "Org {} now reads fixture {}: tenant {}, {} users, {} groups; its runs stay its own.\n",
        cell(&set.org.name),
        cell(&given.display().to_string()),
        set.org.tenant_id,
        set.loaded.snapshot.users.len(),
        set.loaded.snapshot.groups.len(),
    )
}

/// `roster org add --tenant`.
pub fn org_added_live(org: &adapters::org::OrgConfig, auth: adapters::auth::AuthMode) -> String {
    let how = match auth {
        adapters::auth::AuthMode::DeviceCode => {
            "signed in (device code); the refresh token is cached so later commands do not prompt"
        }
        adapters::auth::AuthMode::ClientSecret => "signed in with the client secret (app-only)",
    };
    format!(
        "Added org {}: tenant {}, {how}; users and groups are readable.\n",
        cell(&org.name),
        org.tenant_id
    )
}

/// `roster org remove`, `login`, `logout`.
pub fn org_removed(name: &str) -> String {
    format!("Removed org {}; its runs stay in the log.\n", cell(name))
}

pub fn signed_in(org: &adapters::org::OrgConfig) -> String {
    format!(
        "Signed in to org {} (tenant {}).\n",
        cell(&org.name),
        org.tenant_id
    )
}

pub fn signed_out(name: &str, had_tokens: bool) -> String {
    if had_tokens {
        format!(
            "Signed out of org {}: its tokens are deleted.\n",
            cell(name)
        )
    } else {
        format!("Org {} had no saved sign-in.\n", cell(name))
    }
}

/// `roster record`.
pub fn recorded(
    org: &str,
    s: &engine::model::TenantSnapshot,
    anonymized: bool,
    out: &std::path::Path,
) -> String {
    format!(
        "Recorded org {}: {} users, {} groups, {} deleted users, {} deleted groups{} → {}\n",
        cell(org),
        s.users.len(),
        s.groups.len(),
        s.deleted_users.len(),
        s.deleted_groups.len(),
        if anonymized { " (anonymized)" } else { "" },
        cell(&out.display().to_string())
    )
}

/// After a dry run that found deleted objects: how to see them and act on them.
pub fn deleted_hint(run: RunId, deleted: usize) -> String {
    if deleted == 0 {
        return String::new();
    }
    format!(
        "{} found; `roster deleted {run}` lists them, `--action ID=disable|delete` acts on them.\n",
        count(deleted, "deleted object", "deleted objects")
    )
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

/// The one line a failed command ends with: the outermost context and the root cause.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    let root = err.root_cause().to_string();
    if !msg.contains(&root) {
        msg = format!("{msg}: {root}");
    }
    format!("error: {}\n", adapters::error::one_line(&msg))
}

/// `apply --approve`: whose approval of which refused run the import records.
pub fn approved(refused: RunId, by: &str) -> String {
    format!(
        "Approved by {}: the plan of refused run {refused}, imported as reviewed; the import records the approval.\n",
        cell(by)
    )
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

/// `3 entries`, `1 entry`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn aborted(run: RunId, why: &str) -> String {
    format!("error: run {run} aborted: {}\n", cell(why))
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

/// `roster server load`.
pub fn server_loaded(state: &ServerState, file: &std::path::Path) -> String {
    format!(
        "Loaded {} users and {} groups from {}.\n",
        state.users().len(),
        state.groups().len(),
        cell(&file.display().to_string())
    )
}

/// `roster server show` as JSON: the user alone, or with its history.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ShownJson<'a> {
    User(Option<&'a ServerUser>),
    WithHistory {
        user: Option<&'a ServerUser>,
        history: &'a [replay::history::HistoryItem],
    },
}

/// `server enable|disable`: what was done, and where it is recorded.
pub fn edited(e: &app::server::Edited, enabled: bool) -> String {
    let state = if enabled { "enabled" } else { "disabled" };
    match e {
        app::server::Edited::Recorded { run, login } => format!(
            "{} is {state} on the server; recorded as run {run} (`roster server show {} --history`).\n",
            cell(login),
            cell(login)
        ),
        app::server::Edited::Already { login } => {
            format!("{} already is {state}; nothing changed or recorded.\n", cell(login))
        }
    }
}

pub fn shown_json(shown: &app::server::Shown) -> ShownJson<'_> {
    match &shown.history {
        None => ShownJson::User(shown.user.as_ref()),
        Some(items) => ShownJson::WithHistory {
            user: shown.user.as_ref(),
            history: items,
        },
    }
}

/// `roster server show` as a table: the user's properties (or that it is gone), and its history.
pub fn shown(shown: &app::server::Shown, login: &str) -> String {
    let mut out = match &shown.user {
        Some(user) => server_user_table(user, &shown.state),
        None => format!("{} is no longer on the server.\n", cell(login)),
    };
    if let Some(items) = &shown.history {
        out.push_str(&history_table(items));
    }
    out
}

/// `roster verify`, when the log verifies.
pub fn verified(
    v: &replay::Verified,
    repairs: &[(engine::Seq, engine::event::LogRepaired)],
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
    text
}

pub fn verified_json(
    v: &replay::Verified,
    repairs: &[(engine::Seq, engine::event::LogRepaired)],
) -> Value {
    serde_json::json!({
        "ok": true,
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
pub fn restored(r: &app::backup::Restored, store: &std::path::Path) -> String {
    format!(
        "Restored {} events (chain head {}, event {}, as in the backup), {} orgs, {} server users and {} groups into {}; the log verifies, and {}.\n",
        r.verified.events,
        r.verified.head.hash,
        r.verified.head.seq,
        r.contents.orgs,
        r.contents.server_users,
        r.contents.server_groups,
        cell(&store.display().to_string()),
        if r.server_said {
            "the server is the one the log says"
        } else {
            "the server is the backup's (its digest checked; the log does not say what it holds: it was loaded by a roster that did not record loads, with no import since)"
        }
    )
}

/// `roster fake-graph`, on stderr once it serves (stdout has its URL).
/// `fake-graph` reloaded its tenant file (SIGHUP), or could not.
pub fn fake_reloaded(tenant: &std::path::Path, reloaded: adapters::Result<u64>) -> String {
    match reloaded {
        Ok(version) => format!(
            "fake-graph: reloaded {} (version {version})\n",
            cell(&tenant.display().to_string())
        ),
        Err(e) => format!(
            "fake-graph: cannot reload {}, still serving the previous version: {}\n",
            cell(&tenant.display().to_string()),
            cell(&e.to_string())
        ),
    }
}

pub fn fake_serving(tenant: &std::path::Path, url: &str) -> String {
    format!(
        "fake-graph: serving {} on {url} until killed\n",
        tenant.display()
    )
}

/// `roster fixture generate`.
pub fn generated(
    users: u64,
    groups: u64,
    seed: u64,
    out: &std::path::Path,
    server: Option<&std::path::Path>,
) -> String {
    format!(
        "Generated {users} users and {groups} groups (seed {seed}) in {}{}\n",
        out.display(),
        server
            .map(|s| format!(", server state in {}", s.display()))
            .unwrap_or_default()
    )
}
