//! Drawing the wizard: one function per page, overlays (help, the right-click menu, the
//! preview, a question) on top. Everything from the tenant goes through `render::cell`
//! (control characters escaped, bounded) before it reaches the terminal.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use engine::event::{DeletedAction, Mode};

use super::state::{Ask, Screen, Wizard, MENU, NEW_ORG_FIELDS};
use crate::render::{cell, outcome_label, summary_text};

/// Colours, or none (`NO_COLOR`): then only bold and reverse video mark things.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub colour: bool,
}

impl Theme {
    fn accent(self) -> Style {
        if self.colour {
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    fn error(self) -> Style {
        if self.colour {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    fn cursor(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn dim(self) -> Style {
        if self.colour {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
}

const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

pub fn draw(f: &mut Frame, w: &mut Wizard, theme: Theme, tick: usize) {
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(f.area());
    let (step, name) = match w.screen {
        Screen::Orgs | Screen::Reading => (1, "Organization"),
        Screen::Search => (2, "Users and groups"),
        Screen::Deleted => (3, "Deleted objects"),
        Screen::Review => (4, "Review"),
        Screen::Importing | Screen::Results => (5, "Results"),
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("roster wizard", theme.accent()),
            Span::raw(format!(" — step {step} of 5: {name}")),
            Span::styled(
                w.org_name()
                    .filter(|_| w.screen != Screen::Orgs)
                    // With a server to name, the arrow says what "org" would.
                    .map(|o| match w.target {
                        None => format!("   org {}", cell(o)),
                        Some(_) => format!("   {}", cell(o)),
                    })
                    .unwrap_or_default(),
                theme.dim(),
            ),
            Span::styled(
                w.target
                    .as_deref()
                    .map(|t| format!(" → {}", cell(t)))
                    .unwrap_or_default(),
                theme.dim(),
            ),
        ])),
        title,
    );
    let keys = match w.screen {
        Screen::Orgs => "↑/↓ choose · Enter read · c deleted objects · n New… · ? help · q quit",
        Screen::Reading | Screen::Importing => "please wait… · Ctrl-C quit",
        Screen::Search if w.editing => {
            "type · Enter search now · Ctrl-U clear · Esc leave the field"
        }
        Screen::Search => {
            "/ search · Space tick · a all · i invert · p review · Enter next · ? help"
        }
        Screen::Deleted => "Space mark · g ignore · d disable · x delete · Enter review · Esc back",
        Screen::Review if w.confirm.is_some() => "type delete · Enter import · Esc cancel",
        Screen::Review => "↑/↓ scroll · f filter by result · Enter import · Esc back · q quit",
        Screen::Results => "↑/↓ scroll · f filter by result · Enter or q close",
    };
    let status = if w.status.is_empty() {
        Line::from(Span::styled(keys, theme.dim()))
    } else {
        Line::from(Span::styled(cell(&w.status), theme.error()))
    };
    let counts = match w.screen {
        Screen::Search => format!(
            "{} of {} shown · {} ticked{}",
            w.shown.len(),
            w.rows.len(),
            w.ticked.len(),
            if w.note.is_empty() {
                String::new()
            } else {
                format!(" · {}", cell(&w.note))
            }
        ),
        Screen::Deleted => {
            let removing = w
                .deleted
                .iter()
                .filter(|d| d.action != DeletedAction::Ignore)
                .count();
            format!(
                "{} deleted objects · {removing} to disable or delete (at most {} at once){}",
                w.deleted.len(),
                engine::event::RunOptions::default().max_deletions,
                if w.note.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", cell(&w.note))
                }
            )
        }
        _ => String::new(),
    };
    f.render_widget(Paragraph::new(vec![Line::from(counts), status]), footer);

    match w.screen {
        Screen::Orgs => orgs(f, body, w, theme),
        Screen::Reading | Screen::Importing => busy(f, body, w, theme, tick),
        Screen::Search => search(f, body, w, theme),
        Screen::Deleted => deleted(f, body, w, theme),
        Screen::Review => review(f, body, w, theme),
        Screen::Results => results(f, body, w, theme),
    }
    if let Some(typed) = &w.confirm {
        let n = w.review_deletions();
        let lines = vec![
            Line::from(format!(
                "This import deletes {n} {} from the server for good.",
                if n == 1 { "object" } else { "objects" }
            )),
            Line::from("Type delete and press Enter to import; Esc goes back."),
            Line::from(""),
            Line::styled(format!("> {}_", cell(typed)), theme.cursor()),
        ];
        popup(f, body, "Confirm deletions", lines, 64, 7);
    }
    if let Some(ask) = w.ask {
        let text = match ask {
            Ask::Quit => {
                "Quit? The ticked entries and chosen actions will be lost. (y/n)".to_owned()
            }
            Ask::Delete => {
                "Delete the marked objects from the server for good when importing? (y/n)"
                    .to_owned()
            }
        };
        popup(f, body, "Confirm", vec![Line::from(text)], 64, 5);
    }
    if w.help {
        help(f, body);
    }
}

fn popup(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, width: u16, height: u16) {
    let w = width.min(area.width);
    let h = height.min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(title.to_owned()),
        ),
        r,
    );
}

fn help(f: &mut Frame, area: Rect) {
    let lines: Vec<Line> = [
        "Everywhere: ? help · Esc one step back · Ctrl-C quit at once",
        "  q quit (asks when ticks or actions would be lost)",
        "Organization: ↑/↓ choose · c check deleted objects · Enter read",
        "  n New…: a name, Tab, a tenant fixture file, Enter",
        "Search: / search (Enter search now · Ctrl-U clear · Esc leave)",
        "  Space tick (and move down) · a select all · i invert (of the rows",
        "  shown; the right mouse button opens the same menu, a click ticks)",
        "  p review now · Enter next: deleted objects, or the review",
        "Deleted objects: Space mark · g ignore · d disable · x delete",
        "  (asks) · Enter review",
        "Review: what the import would do, counted and listed · ↑/↓ scroll",
        "  f filter · Enter import (deletions: type delete) · Esc back",
        "Results: f filter by result · Enter or q close (the run id stays)",
        "Nothing is written before Enter on the review; an import finishes.",
        "Any key closes this help.",
    ]
    .into_iter()
    .map(Line::from)
    .collect();
    let height = lines.len() as u16 + 2;
    popup(f, area, "Help", lines, 72, height);
}

/// The last `room` characters of `s`, after "…" when it is cut.
fn tail(s: &str, room: usize) -> String {
    let n = s.chars().count();
    if n <= room {
        return s.to_owned();
    }
    let keep: String = s.chars().skip(n - room + 1).collect();
    format!("…{keep}")
}

/// Scrolls `offset` as little as possible to keep `selected` among the `height - 1` rows
/// under the header; returns the state for the rows from `offset` on (only those on screen are
/// built: at 100k rows, drawing stays cheap).
fn window(selected: usize, offset: &mut usize, height: u16) -> (usize, TableState) {
    let rows = usize::from(height.saturating_sub(1)).max(1);
    if selected < *offset {
        *offset = selected;
    } else if selected >= *offset + rows {
        *offset = selected + 1 - rows;
    }
    (
        rows,
        TableState::default().with_selected(Some(selected - *offset)),
    )
}

fn orgs(f: &mut Frame, area: Rect, w: &Wizard, theme: Theme) {
    let form = w.new_org.as_ref().map_or(1, |f| f.used() as u16);
    let [list, options] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(form + 2)]).areas(area);
    let rows: Vec<Row> = w
        .orgs
        .iter()
        .map(|o| Row::new(vec![cell(&o.name), cell(&o.source)]))
        .chain(std::iter::once(Row::new(vec![
            "New…".to_owned(),
            "press n: a tenant fixture file".to_owned(),
        ])))
        .collect();
    let mut state = TableState::default().with_selected(Some(w.org));
    f.render_stateful_widget(
        Table::new(rows, [Constraint::Length(24), Constraint::Min(20)])
            .header(Row::new(vec!["Organization", "Source"]).style(theme.accent()))
            .row_highlight_style(theme.cursor())
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title("Pick an organization"),
            ),
        list,
        &mut state,
    );
    let check = if w.check_deleted { "[x]" } else { "[ ]" };
    let mut lines = vec![Line::from(format!(
        "{check} Check deleted objects (c): deleted in Entra ID, still on the server"
    ))];
    if let Some(form) = &w.new_org {
        lines = NEW_ORG_FIELDS
            .iter()
            .zip(&form.fields)
            .take(form.used())
            .enumerate()
            .map(|(i, (label, value))| {
                let mark = if i == form.at { "▸" } else { " " };
                // A value longer than the line shows its end, where the typing is.
                let room = usize::from(options.width)
                    .saturating_sub(label.chars().count() + 5)
                    .max(8);
                let caret = if i == form.at { "_" } else { "" };
                Line::from(format!(
                    "{mark} {label}: {}{caret}",
                    tail(&cell(value), room)
                ))
            })
            .collect();
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(
            if w.new_org.is_some() {
                "New organization (Tab or Enter: next field; Enter on the last adds; Esc cancels)"
            } else {
                "Options"
            },
        )),
        options,
    );
}

fn busy(f: &mut Frame, area: Rect, w: &Wizard, theme: Theme, tick: usize) {
    let mut lines = vec![
        Line::from(""),
        Line::from(vec![
            Span::styled(
                format!(" {} ", SPINNER[tick % SPINNER.len()]),
                theme.accent(),
            ),
            Span::raw(cell(&w.busy)),
        ]),
    ];
    if !w.progress.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("   {}", w.progress),
            theme.dim(),
        )));
    }
    if let Some(sign_in) = &w.sign_in {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(cell(sign_in), theme.accent())));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn search(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    let [field, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(2)]).areas(area);
    let field_style = if w.editing {
        theme.cursor()
    } else {
        Style::default()
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("Search: "),
            Span::styled(
                format!("{}{}", cell(&w.query), if w.editing { "_" } else { "" }),
                field_style,
            ),
            Span::styled(
                if w.query.is_empty() && !w.editing {
                    "  (press / to search; empty shows everything)"
                } else {
                    ""
                },
                theme.dim(),
            ),
        ])),
        field,
    );
    // The top border, then the header.
    w.table_top = table.y + 2;
    let (visible, mut state) = window(
        w.cursor,
        &mut w.table_offset,
        table.height.saturating_sub(1),
    );
    let rows: Vec<Row> = w
        .shown
        .iter()
        .skip(w.table_offset)
        .take(visible)
        .map(|&i| {
            let r = &w.rows[i];
            let tick = if w.ticked.contains(&r.id) {
                "[x]"
            } else {
                "[ ]"
            };
            Row::new(vec![
                Cell::from(tick),
                Cell::from(cell(&r.name)),
                Cell::from(cell(&r.row_type)),
                Cell::from(cell(r.department.as_deref().unwrap_or(""))),
                Cell::from(cell(r.description.as_deref().unwrap_or(""))),
            ])
        })
        .collect();
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(3),
                Constraint::Percentage(30),
                Constraint::Length(21),
                Constraint::Percentage(20),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new(vec!["", "Name", "Type", "Department", "Description"]).style(theme.accent()),
        )
        .row_highlight_style(theme.cursor())
        .block(Block::default().borders(Borders::TOP)),
        table,
        &mut state,
    );
    if let Some(menu) = w.menu {
        let r = Rect {
            x: menu.x.min(area.right().saturating_sub(20)),
            y: menu.y.min(area.bottom().saturating_sub(4)),
            width: 20.min(area.width),
            height: 4.min(area.height),
        };
        let items: Vec<Line> = MENU
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == menu.item {
                    Line::styled(m.to_string(), theme.cursor())
                } else {
                    Line::from(m.to_string())
                }
            })
            .collect();
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(items).block(Block::default().borders(Borders::ALL)),
            r,
        );
    }
}

fn deleted(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    let mut offset = 0;
    let (visible, mut state) = window(w.deleted_cursor, &mut offset, area.height.saturating_sub(1));
    let rows: Vec<Row> = w
        .deleted
        .iter()
        .skip(offset)
        .take(visible)
        .map(|d| {
            let o = &d.object;
            Row::new(vec![
                if d.marked { "*" } else { " " }.to_owned(),
                cell(&o.name),
                o.kind.as_str().to_owned(),
                o.evidence.as_str().to_owned(),
                o.deleted_at
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                d.action.as_str().to_owned(),
            ])
        })
        .collect();
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Percentage(35),
                Constraint::Length(6),
                Constraint::Length(13),
                Constraint::Length(11),
                Constraint::Min(8),
            ],
        )
        .header(
            Row::new(vec!["", "Name", "Kind", "Evidence", "Deleted at", "Action"])
                .style(theme.accent()),
        )
        .row_highlight_style(theme.cursor())
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("Deleted in Entra ID, still on the server: choose what happens to each"),
        ),
        area,
        &mut state,
    );
}

/// The review page: what the import would do, counted, then listed (scrollable, filterable).
fn review(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    // Five lines: a refusal may take two.
    let [head, table] = Layout::vertical([Constraint::Length(5), Constraint::Min(2)]).areas(area);
    let mut lines = vec![Line::from(vec![
        Span::styled("Review before importing", theme.accent()),
        Span::raw(" — nothing has been written yet"),
    ])];
    match &w.preview {
        Some(Ok(p)) => {
            let s = engine::event::Summary::of(&p.entries);
            lines.push(Line::from(format!(
                "{} to add, {} to change, {} to disable, {} to delete",
                s.added, s.updated, s.disabled, s.deleted
            )));
            let filter = match w.review_filter {
                Some(o) => format!("   showing: {} only (f)", o.as_str()),
                None => String::new(),
            };
            lines.push(Line::from(format!(
                "{} conflicts, {} skipped, {} unchanged, {} ignored{filter}",
                s.conflict, s.skipped, s.unchanged, s.ignored
            )));
            match &p.refusal {
                Some(why) => lines.push(Line::styled(
                    format!("Would be refused: {}", cell(why)),
                    theme.error(),
                )),
                None => lines.push(Line::styled(
                    "Enter imports this (a deletion asks you to type delete) · Esc goes back",
                    theme.dim(),
                )),
            }
        }
        Some(Err(msg)) => lines.push(Line::from(cell(msg))),
        None => {}
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), head);
    let shown = w.review_shown();
    let total = shown.len();
    let title = |first: usize, visible: usize| {
        if total > visible {
            format!(
                "entries {}–{} of {total} (↑/↓ PgUp/PgDn scroll)",
                first + 1,
                (first + visible).min(total)
            )
        } else {
            format!("{total} entries")
        }
    };
    entries_table(
        f,
        table,
        &shown,
        w.review_cursor,
        Mode::DryRun,
        Some(&title),
        theme,
    );
}

fn results(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    let Some(r) = w.results.clone() else { return };
    let [head, table] = Layout::vertical([Constraint::Length(4), Constraint::Min(2)]).areas(area);
    let summary = engine::event::Summary::of(&r.entries);
    let filter = match w.filter {
        Some(o) => format!("   showing: {} only (f)", o.as_str()),
        None => String::new(),
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(
                    match r.mode {
                        Mode::Apply => "Import results",
                        Mode::DryRun => "Dry run",
                    },
                    theme.accent(),
                ),
                Span::raw(format!(" — run {}", r.run)),
            ]),
            Line::from(format!("Status: {}", cell(&r.status))),
            Line::from(format!("Summary: {}{filter}", summary_text(&summary))),
            Line::from(Span::styled(
                if r.problems.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{} warnings while reading the tenant (roster report {} shows the run)",
                        r.problems.len(),
                        r.run
                    )
                },
                theme.dim(),
            )),
        ])
        .wrap(Wrap { trim: false }),
        head,
    );
    let shown = w.results_shown();
    entries_table(f, table, &shown, w.results_cursor, r.mode, None, theme);
}

/// Entries as the review and the results pages list them: name, kind, what is (or would be)
/// done, details; only the rows on screen built, the cursor's row kept in view. `title`, given
/// the first row shown and how many fit, names the table.
fn entries_table(
    f: &mut Frame,
    area: Rect,
    entries: &[&engine::event::EntryOutcome],
    cursor: usize,
    mode: Mode,
    title: Option<&dyn Fn(usize, usize) -> String>,
    theme: Theme,
) {
    let mut offset = 0;
    let (visible, mut state) = window(cursor, &mut offset, area.height.saturating_sub(1));
    let rows: Vec<Row> = entries
        .iter()
        .skip(offset)
        .take(visible)
        .map(|e| {
            Row::new(vec![
                cell(&e.name),
                e.kind.as_str().to_owned(),
                outcome_label(e.outcome, mode).to_owned(),
                cell(&e.detail),
            ])
        })
        .collect();
    let (result, width) = match mode {
        // "Will be skipped: account disabled", whole.
        Mode::DryRun => ("Would be", 34),
        Mode::Apply => ("Result", 26),
    };
    let mut block = Block::default().borders(Borders::TOP);
    if let Some(title) = title {
        block = block.title(title(offset, visible));
    }
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Percentage(25),
                Constraint::Length(6),
                Constraint::Length(width),
                Constraint::Min(10),
            ],
        )
        .header(Row::new(vec!["Name", "Kind", result, "Details"]).style(theme.accent()))
        .row_highlight_style(theme.cursor())
        .block(block),
        area,
        &mut state,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wizard::state::{Done, PreviewView, ResultsView};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    /// The screen as text, 80×24 (the smallest terminal the wizard promises to stay usable in).
    fn screen(w: &mut Wizard) -> String {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| draw(f, w, Theme { colour: false }, 0)).unwrap();
        let buf = t.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                line.trim_end().to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn press(w: &mut Wizard, text: &str) {
        for c in text.chars() {
            let code = match c {
                '\n' => KeyCode::Enter,
                '\t' => KeyCode::Tab,
                c => KeyCode::Char(c),
            };
            w.key(KeyEvent::new(code, KeyModifiers::NONE));
        }
    }

    #[test]
    fn each_page_as_drawn() {
        let mut w = crate::wizard::state::tests::on_search();
        let orgs = {
            let mut o = Wizard::new(w.orgs.clone(), None);
            screen(&mut o)
        };
        insta::assert_snapshot!("1_organizations", orgs);
        let reading = {
            let mut r = Wizard::new(w.orgs.clone(), None);
            press(&mut r, "\n");
            r.done(Done::SignIn(
                "To sign in, open https://microsoft.com/devicelogin and enter the code FAKE-1234 (this screen waits and checks).".into(),
            ));
            screen(&mut r)
        };
        insta::assert_snapshot!("1_reading_and_signing_in", reading);
        press(&mut w, "  ");
        insta::assert_snapshot!("2_search", screen(&mut w));
        press(&mut w, "/golf\n");
        insta::assert_snapshot!("2_search_narrowed", screen(&mut w));
        w.menu = Some(crate::wizard::state::Menu {
            x: 20,
            y: 8,
            item: 1,
        });
        insta::assert_snapshot!("2_search_menu", screen(&mut w));
        w.menu = None;
        press(&mut w, "a");
        // p: the review at once, here of a plan that would be refused.
        press(&mut w, "p");
        w.done(Done::Preview(Ok(PreviewView {
            entries: vec![],
            refusal: Some(
                "it would disable or delete 60 objects, more than --max-deletions 50".into(),
            ),
        })));
        insta::assert_snapshot!("4_review_refused", screen(&mut w));
        w.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        press(&mut w, "\n");
        press(&mut w, "  dx");
        insta::assert_snapshot!("3_deleted_asking", screen(&mut w));
        press(&mut w, "y");
        insta::assert_snapshot!("3_deleted", screen(&mut w));
        press(&mut w, "?");
        insta::assert_snapshot!("help", screen(&mut w));
        press(&mut w, "z");
        // Enter: the review, with what the import would do; a deletion asks for `delete`.
        press(&mut w, "\n");
        let row = |name: &str, outcome, detail: &str| engine::event::EntryOutcome {
            kind: engine::model::Kind::User,
            id: engine::ObjectId::parse("0b0b0b0b-1111-4222-8333-444455556666").unwrap(),
            name: name.into(),
            outcome,
            reason: None,
            detail: detail.into(),
            changes: vec![],
            op: Some(engine::model::ServerOp::RemoveUser { login: "x".into() }),
        };
        w.done(Done::Preview(Ok(PreviewView {
            entries: vec![
                row(
                    "Adele Vance",
                    engine::event::Outcome::Added,
                    "login AdeleV@contoso.com",
                ),
                row(
                    "Pat Kelly",
                    engine::event::Outcome::Deleted,
                    "deleted from the server",
                ),
            ],
            refusal: None,
        })));
        insta::assert_snapshot!("4_review", screen(&mut w));
        press(&mut w, "\ndel");
        insta::assert_snapshot!("4_review_confirm", screen(&mut w));
        press(&mut w, "ete\n");
        assert_eq!(w.screen, crate::wizard::state::Screen::Importing);
        let entries = vec![engine::event::EntryOutcome {
            kind: engine::model::Kind::User,
            id: engine::ObjectId::parse("0b0b0b0b-1111-4222-8333-444455556666").unwrap(),
            name: "Adele Vance".into(),
            outcome: engine::event::Outcome::Added,
            reason: None,
            detail: "login AdeleV@contoso.com".into(),
            changes: vec![],
            op: None,
        }];
        w.done(Done::Imported(Ok(ResultsView {
            run: "01a22302-9520-7290-90fd-b2d5378b5f71".into(),
            mode: Mode::Apply,
            entries,
            status: "completed".into(),
            problems: vec![],
        })));
        insta::assert_snapshot!("5_results", screen(&mut w));
        // A refusal (the deletion guard) is the run's status, on screen.
        w.done(Done::Imported(Ok(ResultsView {
            run: "01a22302-9520-7290-90fd-b2d5378b5f72".into(),
            mode: Mode::Apply,
            entries: vec![],
            status: "refused: it would disable or delete 60 objects, more than --max-deletions 50"
                .into(),
            problems: vec![],
        })));
        insta::assert_snapshot!("5_results_refused", screen(&mut w));
        // A live read under way: its progress.
        let mut r = Wizard::new(w.orgs.clone(), None);
        press(&mut r, "\n");
        r.progress = "Graph: 1200 objects in 13 pages, 14 requests".into();
        insta::assert_snapshot!("1_reading_progress", screen(&mut r));
    }

    /// A review of 100,000 entries draws what fits, counts them all and says where it is.
    #[test]
    fn a_large_review_shows_what_fits_and_scrolls() {
        let mut w = crate::wizard::state::tests::on_search();
        let entry = engine::event::EntryOutcome {
            kind: engine::model::Kind::User,
            id: engine::ObjectId::parse("0b0b0b0b-1111-4222-8333-444455556666").unwrap(),
            name: "Someone".into(),
            outcome: engine::event::Outcome::Added,
            reason: None,
            detail: String::new(),
            changes: vec![],
            op: None,
        };
        press(&mut w, "ap");
        w.done(Done::Preview(Ok(PreviewView {
            entries: vec![entry; 100_000],
            refusal: None,
        })));
        let s = screen(&mut w);
        assert!(s.contains("100000 to add, 0 to change"), "{s}");
        assert!(s.contains("entries 1–"), "{s}");
        assert!(s.contains("of 100000 (↑/↓ PgUp/PgDn scroll)"), "{s}");
        w.key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE));
        let s = screen(&mut w);
        assert!(s.contains("–100000 of 100000"), "{s}");
    }

    /// A New… field longer than the line shows its end, where the admin types.
    #[test]
    fn a_long_new_org_field_shows_its_end() {
        let mut w = Wizard::new(vec![], None);
        press(&mut w, "nacme\t");
        let long = format!("/srv/{}tenant-recording.json", "deep/".repeat(30));
        press(&mut w, &long);
        let s = screen(&mut w);
        assert!(s.contains("deep/deep/tenant-recording.json_"), "{s}");
        assert!(s.contains(": …"), "{s}");
    }

    #[test]
    fn the_title_names_a_server_that_is_not_the_embedded_one() {
        let mut w = crate::wizard::state::tests::on_search();
        assert!(!screen(&mut w).lines().next().unwrap().contains('→'));
        w.target = Some("SCIM 127.0.0.1:8080".into());
        let s = screen(&mut w);
        let title = s.lines().next().unwrap();
        assert!(title.contains("→ SCIM 127.0.0.1:8080"), "{title}");
    }

    #[test]
    fn text_from_the_tenant_is_escaped_on_screen() {
        let mut w = crate::wizard::state::tests::on_search();
        w.rows[0].name = "evil\u{1b}[2J\u{7}name".into();
        let s = screen(&mut w);
        assert!(!s.contains('\u{1b}') && !s.contains('\u{7}'), "{s}");
        assert!(s.contains("evil"), "{s}");
    }
}
