//! Output: human tables, JSON for scripts, CSV for spreadsheets, and the lines said on
//! stderr. Only this module knows how things look and where they go; commands hand it data.

pub mod attention;
mod audit;
mod dev;
mod html;
mod io;
mod org;
pub mod progress;
mod report;
mod runs;
mod server;
mod stream;

pub use html::report_html;

pub use audit::*;
pub use dev::*;
pub use io::{out, out_event_lines, out_json, out_json_line, out_with, say};
pub use org::*;
pub use progress::with_progress;
pub use report::*;
pub use runs::*;
pub use server::*;

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

/// The one line a failed command ends with: the outermost context and the root cause.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    let root = err.root_cause().to_string();
    if !msg.contains(&root) {
        msg = format!("{msg}: {root}");
    }
    format!("error: {}\n", adapters::error::one_line(&msg))
}

/// `3 entries`, `1 entry`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
